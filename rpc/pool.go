package rpc

import (
	"errors"
	"sync"

	"google.golang.org/grpc"

	"tradeunit"
)

// ErrPoolClosed is returned by Pool.Client after Close.
var ErrPoolClosed = errors.New("rpc: client pool closed")

// Pool holds one Client per logic-service address, dialed on first use: the
// tradeunit.LogicDialer of the proxy and the health checker, which drop the
// clients of addresses that leave the routing table with Retain.
type Pool struct {
	opts []grpc.DialOption

	mu      sync.RWMutex
	clients map[string]*Client
	closed  bool
}

// NewPool returns an empty Pool whose clients are dialed with opts (see
// Dial).
func NewPool(opts ...grpc.DialOption) *Pool {
	return &Pool{opts: opts, clients: map[string]*Client{}}
}

var _ tradeunit.LogicDialer = (*Pool)(nil)

// Conn implements tradeunit.LogicDialer.
func (p *Pool) Conn(addr string) (tradeunit.LogicConn, error) {
	c, err := p.Client(addr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Directory implements tradeunit.LogicDialer: one Client serves both APIs.
func (p *Pool) Directory(addr string) (tradeunit.DirectoryConn, error) {
	c, err := p.Client(addr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Client returns the client of addr, dialing it if needed.
func (p *Pool) Client(addr string) (*Client, error) {
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
		return nil, ErrPoolClosed
	}
	c, err := Dial(addr, p.opts...)
	if err != nil {
		return nil, err
	}
	p.clients[addr] = c
	return c, nil
}

// Retain closes and forgets the clients of addresses not in keep, and
// returns those addresses.
func (p *Pool) Retain(keep map[string]bool) (closed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, c := range p.clients {
		if !keep[addr] {
			delete(p.clients, addr)
			c.Close()
			closed = append(closed, addr)
		}
	}
	return closed
}

// Close closes every client; later calls to Client fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, c := range p.clients {
		c.Close()
		delete(p.clients, addr)
	}
	return nil
}
