package routing

import (
	"context"
	"sync"
	"sync/atomic"
)

// Feed publishes the current version of a document (the routing table, or
// the storage topology) and its changes. Documents it publishes are
// normalized and valid, and must not be changed by readers.
type Feed[D any] interface {
	// Current returns the current document. It is never nil after a
	// successful open, and cheap (an atomic load): call it on every request.
	Current() *D
	// Watch returns a channel that receives the current document at once,
	// then every new one. A slow reader only misses intermediate versions,
	// never the latest. The channel is closed when ctx ends or the feed
	// closes.
	Watch(ctx context.Context) <-chan *D
	// Close stops the feed and closes every Watch channel.
	Close() error
}

// Source publishes the routing table: what proxies and health checkers read.
type Source = Feed[Table]

// TopologySource publishes the storage topology: what logic services,
// controllers and operators read.
type TopologySource = Feed[Topology]

// broadcaster holds the current document and fans each new one out to
// watchers. Backends embed its behaviour: publish on change, close on Close.
type broadcaster[D any] struct {
	current atomic.Pointer[D]

	mu       sync.Mutex // serializes publish, watch and close
	closed   bool
	watchers map[*watcher[D]]struct{}
}

type watcher[D any] struct {
	ch   chan *D     // buffered(1): holds the newest unread document
	stop func() bool // stops the context.AfterFunc that removes the watcher
}

func newBroadcaster[D any](initial *D) *broadcaster[D] {
	b := &broadcaster[D]{watchers: make(map[*watcher[D]]struct{})}
	b.current.Store(initial)
	return b
}

// publish makes d current and offers it to every watcher.
func (b *broadcaster[D]) publish(d *D) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.current.Store(d)
	for w := range b.watchers {
		offer(w.ch, d)
	}
}

// offer puts d into ch, replacing a document the reader has not taken yet.
// Only the caller (under b.mu) sends on ch, so the loop ends at the latest
// on its second pass.
func offer[D any](ch chan *D, d *D) {
	for {
		select {
		case ch <- d:
			return
		default:
		}
		select {
		case <-ch: // drop the unread older document
		default:
		}
	}
}

func (b *broadcaster[D]) watch(ctx context.Context) <-chan *D {
	ch := make(chan *D, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch
	}
	if cur := b.current.Load(); cur != nil {
		ch <- cur
	}
	w := &watcher[D]{ch: ch}
	b.watchers[w] = struct{}{}
	w.stop = context.AfterFunc(ctx, func() { b.unwatch(w) })
	return ch
}

func (b *broadcaster[D]) unwatch(w *watcher[D]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.watchers[w]; ok {
		delete(b.watchers, w)
		close(w.ch)
	}
}

// close closes every watcher's channel; later publishes are ignored and
// later watches get a closed channel.
func (b *broadcaster[D]) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for w := range b.watchers {
		w.stop()
		delete(b.watchers, w)
		close(w.ch)
	}
}
