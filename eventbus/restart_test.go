package eventbus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/eventbus"
)

// TestServerRestartLosesNothing restarts the server (on the same storage and
// address) while a relay publishes and a consumer reads, each on a
// connection of its own, and checks that every event whose Publish returned
// nil was consumed: with an embedded server, and with a nats-server process
// of our own stopped by SIGTERM.
func TestServerRestartLosesNothing(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testRestart(t, startEmbeddedServer) })
	t.Run("process", func(t *testing.T) { testRestart(t, startServerProcess) })
}

// startServer starts a server on dir and addr and returns its URL and what
// stops it (and waits until it has stopped).
type startServer func(t *testing.T, dir, addr string) (url string, stop func())

func startEmbeddedServer(t *testing.T, dir, addr string) (string, func()) {
	t.Helper()
	e, err := eventbus.StartEmbedded(dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	return e.URL(), e.Shutdown
}

func testRestart(t *testing.T, start startServer) {
	dir, addr := t.TempDir(), freeAddr(t)
	url, stop := start(t, dir, addr)
	cfg := testConfig(t, url)
	cfg.PublishTimeout = 2 * time.Second
	pub, sub := openBus(t, cfg), openBus(t, cfg)
	var s sink
	consume(t, sub, "query", 20, s.handle, nil)

	// The relay: a batch per round, retried until acknowledged, as a
	// unit's relay does.
	var mu sync.Mutex
	var acked []string
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		for seq := int64(1); ctx.Err() == nil; seq++ {
			batch := events(units, seq, 1)
			for ctx.Err() == nil {
				if err := pub.Publish(ctx, batch); err != nil {
					retryPause(ctx)
					continue
				}
				mu.Lock()
				for _, ev := range batch {
					acked = append(acked, ev.ID)
				}
				mu.Unlock()
				break
			}
		}
	}()

	eventually(t, 10*time.Second, "events published and consumed before the restart", func() bool {
		return ackedN() >= 60 && len(s.got()) >= 60
	})
	stop()
	eventually(t, 10*time.Second, "both connections lost", func() bool { return !pub.Connected() && !sub.Connected() })
	before := ackedN()
	_, stop = start(t, dir, addr)
	t.Cleanup(stop)
	eventually(t, 30*time.Second, "publishing after the restart", func() bool { return ackedN() >= before+60 })
	eventually(t, 10*time.Second, "both connections back", func() bool { return pub.Connected() && sub.Connected() })
	cancel()
	<-relayDone

	mu.Lock()
	want := append([]string(nil), acked...)
	mu.Unlock()
	var missing []string
	eventually(t, 30*time.Second, "every acknowledged event consumed", func() bool {
		ids := s.ids()
		missing = missing[:0]
		for _, id := range want {
			if ids[id] == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
	perUnit := map[tradeunit.UnitID]int{}
	for _, ev := range s.got() {
		perUnit[ev.Unit]++
	}
	t.Logf("acknowledged %d events (%d before the restart), consumed %d %v; stats %+v / %+v",
		len(want), before, len(s.got()), perUnit, pub.Stats(), sub.Stats())
}

// retryPause is the relay's pause between attempts at a failed batch: a
// backoff, not a synchronisation.
func retryPause(ctx context.Context) {
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
