package routing

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory is a document held in memory: for a process that owns its own
// table (a test, a benchmark) and needs no file or etcd. It implements
// Store; its history lives as long as it does.
type Memory[D any, P document[D]] struct {
	feed *broadcaster[D]

	mu      sync.Mutex // serializes updates
	history []Change
}

// NewMemory returns a Memory holding a normalized copy of d. Errors:
// PARAM_ERROR if d is invalid.
func NewMemory[D any, P document[D]](d P) (*Memory[D, P], error) {
	c := P(d.Clone())
	c.Normalize()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Memory[D, P]{feed: newBroadcaster((*D)(c))}, nil
}

// NewMemoryTable is NewMemory for a routing table.
func NewMemoryTable(t *Table) (*Memory[Table, *Table], error) { return NewMemory(t) }

// NewMemoryTopology is NewMemory for a storage topology.
func NewMemoryTopology(t *Topology) (*Memory[Topology, *Topology], error) { return NewMemory(t) }

// Current implements Feed.
func (m *Memory[D, P]) Current() *D { return m.feed.current.Load() }

// Watch implements Feed.
func (m *Memory[D, P]) Watch(ctx context.Context) <-chan *D { return m.feed.watch(ctx) }

// Close implements Feed.
func (m *Memory[D, P]) Close() error { m.feed.close(); return nil }

// Update implements Store.
func (m *Memory[D, P]) Update(_ context.Context, change Change, fn func(*D) error) (*D, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := P(m.Current())
	next := P(cur.Clone())
	if err := fn((*D)(next)); err != nil {
		return nil, err
	}
	next.setRevision(cur.revision() + 1)
	next.Normalize()
	if err := next.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", next.kind().name, err)
	}
	change.Revision, change.Time = next.revision(), time.Now().UTC()
	m.history = append(m.history, change)
	m.feed.publish((*D)(next))
	return (*D)(next), nil
}

// History implements Store.
func (m *Memory[D, P]) History(_ context.Context, limit int) ([]Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Change
	for i := len(m.history) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, m.history[i])
	}
	return out, nil
}
