package proxy

import (
	"context"
	"log/slog"
	"sync"

	"tradeunit/routing"
	"tradeunit/rpc"
)

// pool holds one RPC client per logic-service address in the routing table,
// dialed on first use and closed when its address leaves the table.
type pool struct {
	mu      sync.RWMutex
	clients map[string]*rpc.Client
	closed  bool
}

func newPool() *pool { return &pool{clients: map[string]*rpc.Client{}} }

// client returns the client of addr, dialing it if needed.
func (p *pool) client(addr string) (*rpc.Client, error) {
	p.mu.RLock()
	c := p.clients[addr]
	p.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[addr]; c != nil {
		return c, nil
	}
	if p.closed {
		return nil, errPoolClosed
	}
	c, err := rpc.Dial(addr)
	if err != nil {
		return nil, err
	}
	p.clients[addr] = c
	return c, nil
}

// follow closes the clients of addresses that left the routing table, until
// ctx ends.
func (p *pool) follow(ctx context.Context, src routing.Source, log *slog.Logger) {
	for t := range src.Watch(ctx) {
		keep := map[string]bool{}
		for _, u := range t.Units {
			for _, a := range u.LogicAddrs {
				keep[a] = true
			}
		}
		p.mu.Lock()
		for addr, c := range p.clients {
			if !keep[addr] {
				delete(p.clients, addr)
				c.Close()
				log.Info("closed client of removed logic service", "addr", addr)
			}
		}
		p.mu.Unlock()
	}
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, c := range p.clients {
		c.Close()
		delete(p.clients, addr)
	}
}
