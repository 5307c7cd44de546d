package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"regexp"
)

// Role is what a certificate's holder is, and so what it may call.
type Role string

// The roles of a tradeunit cluster.
const (
	RoleProxy     Role = "proxy"     // routes merchants' calls to units and shards
	RoleUnit      Role = "unit"      // a unit's logic service
	RoleDirectory Role = "directory" // a directory shard's service
	RoleChecker   Role = "checker"   // the health checker: probe orders only
	RoleAdmin     Role = "admin"     // an operator: changes the routing table
	RoleRelay     Role = "relay"     // a unit's outbox relay
	RoleQuery     Role = "query"     // the query store's consumer
	RoleServer    Role = "server"    // infrastructure serving the cluster: etcd, NATS
)

// Roles lists every role, for flags' help and validation.
var Roles = []Role{RoleProxy, RoleUnit, RoleDirectory, RoleChecker, RoleAdmin, RoleRelay, RoleQuery, RoleServer}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

// organization is the O of every subject this package issues.
const organization = "tradeunit"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// checkName reports a name that would not read well in a subject or a file
// name.
func checkName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("pki: name %q: want 1-64 letters, digits, '.', '_', '@' or '-'", name)
	}
	return nil
}

// Identity is who a verified certificate names.
type Identity struct {
	Role    Role
	Name    string // which one: unit-3, alice
	Subject string // the certificate's whole subject, as history records it
	Serial  string // hex, as revoke takes it
}

// String is "role name": what logs and errors show.
func (id Identity) String() string { return string(id.Role) + " " + id.Name }

// ErrNoIdentity is returned for a certificate this package did not shape.
var ErrNoIdentity = errors.New("pki: certificate names no tradeunit role")

// IdentityOf reads the role and name of cert. It checks the shape only:
// verification (chain, expiry, revocation) is the handshake's.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	role := Role(cert.Subject.CommonName)
	if !role.Valid() || len(cert.Subject.OrganizationalUnit) != 1 {
		return Identity{}, fmt.Errorf("%w (subject %s)", ErrNoIdentity, cert.Subject)
	}
	return Identity{Role: role, Name: cert.Subject.OrganizationalUnit[0], Subject: cert.Subject.String(),
		Serial: cert.SerialNumber.Text(16)}, nil
}

func subject(role Role, name string) pkix.Name {
	return pkix.Name{CommonName: string(role), OrganizationalUnit: []string{name}, Organization: []string{organization}}
}

// ReadIdentity reads who the first certificate of file names.
func ReadIdentity(file string) (Identity, error) {
	certs, err := readCerts(file)
	if err != nil {
		return Identity{}, err
	}
	return IdentityOf(certs[0])
}
