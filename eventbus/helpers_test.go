package eventbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tradeunit"
	"tradeunit/eventbus"
)

// machineNATS returns the URL of the NATS server the tests share
// (TRADEUNIT_TEST_NATS, else 127.0.0.1:4222), skipping the test if none
// answers — except under CI=true, where it fails.
func machineNATS(t *testing.T) string {
	t.Helper()
	url := os.Getenv("TRADEUNIT_TEST_NATS")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("a NATS server with JetStream is required under CI=true (%s): %v", url, err)
		}
		t.Skipf("no NATS server at %s (set TRADEUNIT_TEST_NATS): %v", url, err)
	}
	nc.Close()
	return url
}

// startEmbedded starts an embedded server in a temporary directory, shut
// down when the test ends.
func startEmbedded(t *testing.T) *eventbus.Embedded {
	t.Helper()
	e, err := eventbus.StartEmbedded(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// eachServer runs test against the shared NATS server and an embedded one.
func eachServer(t *testing.T, test func(t *testing.T, url string)) {
	t.Run("nats", func(t *testing.T) { test(t, machineNATS(t)) })
	t.Run("embedded", func(t *testing.T) { test(t, startEmbedded(t).URL()) })
}

// testConfig returns a configuration on url with a stream and a subject
// prefix of the test's own, the stream deleted when the test ends.
func testConfig(t *testing.T, url string) eventbus.Config {
	t.Helper()
	id := fmt.Sprintf("%08x", rand.Uint32())
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	cfg := eventbus.DefaultConfig()
	cfg.URL = url
	cfg.Name = "tradeunit-test-" + name
	cfg.Stream = "TEST_" + name + "_" + id
	cfg.Subject = "tradeunit_test." + id
	cfg.ConnectTimeout = 5 * time.Second
	cfg.PublishTimeout = 5 * time.Second
	cfg.FetchWait = 200 * time.Millisecond
	cfg.AckWait = 2 * time.Second
	cfg.NakDelay = 50 * time.Millisecond
	t.Cleanup(func() { deleteStream(t, url, cfg.Stream) })
	return cfg
}

func deleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return // an embedded server already shut down takes its streams along
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil && err != jetstream.ErrStreamNotFound {
		t.Logf("delete stream %s: %v", stream, err)
	}
}

func openBus(t *testing.T, cfg eventbus.Config) *eventbus.Bus {
	t.Helper()
	b, err := eventbus.Open(context.Background(), cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// testLog logs to the test's output.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// event returns unit's event seq.
func event(unit tradeunit.UnitID, seq int64) tradeunit.OrderEvent {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond)
	return tradeunit.OrderEvent{Schema: tradeunit.EventSchema, ID: tradeunit.EventID(unit, seq), Unit: unit, Seq: seq,
		Type: "ORDER_CREATED", Time: now, Order: tradeunit.EventOrder{OrderNo: fmt.Sprintf("o-%d-%d", unit, seq),
			Mchid: "m1", OutTradeNo: fmt.Sprintf("t-%d", seq), Total: 100, Currency: "CNY", State: "NOTPAY",
			CreateTime: now, UpdateTime: now, Version: 1}}
}

// events returns n events of each of units, interleaved: seq 1 of every
// unit, then seq 2, ...
func events(units []tradeunit.UnitID, from, n int64) []tradeunit.OrderEvent {
	var evs []tradeunit.OrderEvent
	for seq := from; seq < from+n; seq++ {
		for _, u := range units {
			evs = append(evs, event(u, seq))
		}
	}
	return evs
}

// sink records what a consumer handled, in order.
type sink struct {
	mu      sync.Mutex
	events  []tradeunit.OrderEvent
	batches int
	caught  []time.Time
}

func (s *sink) handle(_ context.Context, evs []tradeunit.OrderEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	s.batches++
	return nil
}

func (s *sink) caughtUp(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caught = append(s.caught, at)
}

func (s *sink) got() []tradeunit.OrderEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]tradeunit.OrderEvent(nil), s.events...)
}

// caughtUpSince reports whether caughtUp was called with a time after t.
func (s *sink) caughtUpSince(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.caught) > 0 && s.caught[len(s.caught)-1].After(t)
}

// ids returns the ids handled, each with how often.
func (s *sink) ids() map[string]int {
	m := map[string]int{}
	for _, ev := range s.got() {
		m[ev.ID]++
	}
	return m
}

// consume runs b.Consume until the returned stop is called (or the test
// ends); stop waits for Consume to return and checks its error.
func consume(t *testing.T, b *eventbus.Bus, durable string, batch int, handle eventbus.Handler, caughtUp func(time.Time)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, durable, batch, handle, caughtUp) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Consume: got %v, want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Consume did not return within 30s of its context's end")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond) // polling the condition, not waiting for it
	}
}

func publish(t *testing.T, b *eventbus.Bus, evs []tradeunit.OrderEvent) {
	t.Helper()
	if err := b.Publish(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}
