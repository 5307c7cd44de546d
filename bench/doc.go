// Package bench is the load generator of tradeunit and the scenarios that
// reproduce its published figures (see README.md and RESULTS.md beside it).
//
// A run drives one Target — the public API through a proxy, one unit's logic
// service directly, or a unit's storage directly — in a closed loop (N
// clients, each waiting for its answer) or an open loop (a fixed arrival
// rate; latency is measured from when a request was due, not from when it
// was sent, so a slow system cannot hide its queueing: no coordinated
// omission). It keeps a ledger of every acknowledged order and its last
// acknowledged state and, at the end, reads every order back: a run that
// loses or misstates an order fails.
package bench
