package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
)

// toxics is the in-process toxiproxy server of a test: real TCP proxies
// that delay or black-hole the bytes between a client and a server.
type toxics struct {
	t      *testing.T
	server *toxiproxy.ApiServer

	mu sync.Mutex
	n  int
}

func newToxics(t *testing.T) *toxics {
	return &toxics{t: t, server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())}
}

// link is one TCP proxy in front of an upstream address.
type link struct {
	t *testing.T
	p *toxiproxy.Proxy
}

// link starts a TCP proxy on a loopback port in front of upstream.
func (x *toxics) link(upstream string) *link {
	x.t.Helper()
	l, err := x.tryLink(upstream)
	if err != nil {
		x.t.Fatal(err)
	}
	return l
}

// tryLink is link for other goroutines than the test's.
func (x *toxics) tryLink(upstream string) (*link, error) {
	x.mu.Lock()
	x.n++
	name := fmt.Sprintf("link-%d", x.n)
	x.mu.Unlock()
	p := toxiproxy.NewProxy(x.server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start TCP proxy to %s: %w", upstream, err)
	}
	x.t.Cleanup(p.Stop)
	return &link{t: x.t, p: p}, nil
}

// Addr is where clients connect instead of the upstream.
func (l *link) Addr() string {
	l.p.Lock()
	defer l.p.Unlock()
	return l.p.Listen
}

func (l *link) add(name, stream, typ, attrs string) {
	l.t.Helper()
	doc := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"attributes":%s}`, name, typ, stream, attrs)
	if _, err := l.p.Toxics.AddToxicJson(strings.NewReader(doc)); err != nil {
		l.t.Fatalf("add toxic %s: %v", name, err)
	}
}

// Cut makes the link stop answering: bytes in both directions are dropped
// and connections stay open, as with a dead host or a partition.
func (l *link) Cut() {
	l.add("cut_down", "downstream", "timeout", `{"timeout":0}`)
	l.add("cut_up", "upstream", "timeout", `{"timeout":0}`)
}

// Delay adds latency to every chunk the upstream sends back.
func (l *link) Delay(ms int) {
	l.add("delay", "downstream", "latency", fmt.Sprintf(`{"latency":%d}`, ms))
}

// Restore removes every toxic.
func (l *link) Restore() { l.p.Toxics.ResetToxics(context.Background()) }

// tappedNet routes one client's gRPC connections (the health checker's)
// through links made on first use, so that the client's network alone can
// fail.
type tappedNet struct {
	x *toxics

	mu    sync.Mutex
	links map[string]*link
	cut   bool
}

func newTappedNet(x *toxics) *tappedNet { return &tappedNet{x: x, links: map[string]*link{}} }

// DialOption is the grpc option that routes a client through the links.
func (n *tappedNet) DialOption() grpc.DialOption {
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		n.mu.Lock()
		l := n.links[addr]
		if l == nil {
			var err error
			if l, err = n.x.tryLink(addr); err != nil {
				n.mu.Unlock()
				return nil, err
			}
			if n.cut {
				l.Cut()
			}
			n.links[addr] = l
		}
		n.mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", l.Addr())
	})
}

// Cut cuts every link, now and later.
func (n *tappedNet) Cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = true
	for _, l := range n.links {
		l.Cut()
	}
}

// Restore heals every link.
func (n *tappedNet) Restore() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = false
	for _, l := range n.links {
		l.Restore()
	}
}
