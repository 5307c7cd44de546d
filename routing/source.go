package routing

import (
	"context"
	"sync"
	"sync/atomic"
)

// Source publishes the current routing table and its changes. Tables it
// publishes are normalized and valid, and must not be changed by readers.
type Source interface {
	// Current returns the current table. It is never nil after a
	// successful open, and cheap (an atomic load): call it on every request.
	Current() *Table
	// Watch returns a channel that receives the current table at once,
	// then every new one. A slow reader only misses intermediate tables,
	// never the latest. The channel is closed when ctx ends or the source
	// closes.
	Watch(ctx context.Context) <-chan *Table
	// Close stops the source and closes every Watch channel.
	Close() error
}

// broadcaster holds the current table and fans each new one out to
// watchers. Backends embed its behaviour: publish on change, close on Close.
type broadcaster struct {
	current atomic.Pointer[Table]

	mu       sync.Mutex // serializes publish, watch and close
	closed   bool
	watchers map[*watcher]struct{}
}

type watcher struct {
	ch   chan *Table // buffered(1): holds the newest unread table
	stop func() bool // stops the context.AfterFunc that removes the watcher
}

func newBroadcaster(initial *Table) *broadcaster {
	b := &broadcaster{watchers: make(map[*watcher]struct{})}
	b.current.Store(initial)
	return b
}

// publish makes t current and offers it to every watcher.
func (b *broadcaster) publish(t *Table) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.current.Store(t)
	for w := range b.watchers {
		offer(w.ch, t)
	}
}

// offer puts t into ch, replacing a table the reader has not taken yet.
// Only the caller (under b.mu) sends on ch, so the loop ends at the latest
// on its second pass.
func offer(ch chan *Table, t *Table) {
	for {
		select {
		case ch <- t:
			return
		default:
		}
		select {
		case <-ch: // drop the unread older table
		default:
		}
	}
}

func (b *broadcaster) watch(ctx context.Context) <-chan *Table {
	ch := make(chan *Table, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch
	}
	if cur := b.current.Load(); cur != nil {
		ch <- cur
	}
	w := &watcher{ch: ch}
	b.watchers[w] = struct{}{}
	w.stop = context.AfterFunc(ctx, func() { b.unwatch(w) })
	return ch
}

func (b *broadcaster) unwatch(w *watcher) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.watchers[w]; ok {
		delete(b.watchers, w)
		close(w.ch)
	}
}

// close closes every watcher's channel; later publishes are ignored and
// later watches get a closed channel.
func (b *broadcaster) close() {
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
