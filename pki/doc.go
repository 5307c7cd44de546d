// Package pki is the cluster's trust: a certificate authority of its own,
// certificates that name each process's role, and the mutual-TLS
// configurations every internal connection uses.
//
// A certificate's subject is CN=<role>, OU=<name>, O=tradeunit: the role
// (proxy, unit, checker, admin, ...) decides what its holder may call, and
// the name says which one it is (unit-3, alice). The role is the common
// name because etcd takes a client certificate's common name as its user,
// so one etcd user per role grants each role its rights on the routing
// table.
//
// Keys, certificates and the revocation list are files, named in each
// program's configuration (Files) and never in the routing table. Keys
// reloads them when they change, so certificates rotate without a restart
// and a revocation takes effect within a second.
package pki
