package proxy

import "tradeunit/routing"

// retainClients closes the connections of logic services and directory
// shard replicas that left the routing table t; the dialer connects to the
// others on first use.
func (p *Proxy) retainClients(t *routing.Table) {
	keep := map[string]bool{}
	for _, u := range t.Units {
		for _, a := range u.LogicAddrs {
			keep[a] = true
		}
	}
	if t.Directory != nil {
		for _, s := range t.Directory.Shards {
			for _, a := range s.LogicAddrs {
				keep[a] = true
			}
		}
	}
	for _, addr := range p.dialer.Retain(keep) {
		p.log.Info("closed client of a replica that left the routing table", "addr", addr)
	}
}
