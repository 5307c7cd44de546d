package proxy

import "tradeunit/routing"

// retainClients closes the connections of logic services that left the
// routing table t; the dialer connects to the others on first use.
func (p *Proxy) retainClients(t *routing.Table) {
	keep := map[string]bool{}
	for _, u := range t.Units {
		for _, a := range u.LogicAddrs {
			keep[a] = true
		}
	}
	for _, addr := range p.dialer.Retain(keep) {
		p.log.Info("closed client of removed logic service", "addr", addr)
	}
}
