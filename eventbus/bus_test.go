package eventbus_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"tradeunit"
	"tradeunit/eventbus"
)

var units = []tradeunit.UnitID{1, 2, 3}

func TestRoundTripKeepsEachUnitsOrder(t *testing.T) {
	eachServer(t, func(t *testing.T, url string) {
		b := openBus(t, testConfig(t, url))
		want := events(units, 1, 40)
		for i := 0; i < len(want); i += 25 {
			publish(t, b, want[i:min(i+25, len(want))])
		}
		var s sink
		consume(t, b, "query", 7, s.handle, nil)
		eventually(t, 10*time.Second, "every event consumed", func() bool { return len(s.got()) >= len(want) })

		got := s.got()
		if len(got) != len(want) {
			t.Fatalf("consumed %d events, want %d", len(got), len(want))
		}
		next := map[tradeunit.UnitID]int64{}
		for _, ev := range got {
			if ev.Seq != next[ev.Unit]+1 {
				t.Fatalf("unit %d: got seq %d, want %d", ev.Unit, ev.Seq, next[ev.Unit]+1)
			}
			next[ev.Unit] = ev.Seq
		}
		if got, want := got[0], want[0]; got.ID != want.ID || !got.Time.Equal(want.Time) || got.Order != want.Order {
			t.Errorf("first event: got %+v, want %+v", got, want)
		}
		if st := b.Stats(); st.Published != uint64(len(want)) || st.Consumed != uint64(len(want)) {
			t.Errorf("stats: got published %d consumed %d, want %d each", st.Published, st.Consumed, len(want))
		}
	})
}

func TestPublishedTwiceDeliveredOnce(t *testing.T) {
	eachServer(t, func(t *testing.T, url string) {
		b := openBus(t, testConfig(t, url))
		a, c := event(1, 1), event(1, 2)
		publish(t, b, []tradeunit.OrderEvent{a, a, c}) // twice in a batch
		publish(t, b, []tradeunit.OrderEvent{a, c})    // a retried batch
		var s sink
		consume(t, b, "query", 10, s.handle, s.caughtUp)
		published := time.Now()
		eventually(t, 10*time.Second, "caught up", func() bool { return s.caughtUpSince(published) })

		ids := s.ids()
		if len(ids) != 2 || ids[a.ID] != 1 || ids[c.ID] != 1 {
			t.Errorf("consumed %v, want %s and %s once each", ids, a.ID, c.ID)
		}
		if got, want := b.Stats().Duplicates, uint64(3); got != want {
			t.Errorf("duplicates: got %d, want %d", got, want)
		}
	})
}

func TestHandlerErrorRedelivers(t *testing.T) {
	eachServer(t, func(t *testing.T, url string) {
		b := openBus(t, testConfig(t, url))
		want := events(units, 1, 10)
		publish(t, b, want)
		var s sink
		failures := 3
		handle := func(ctx context.Context, evs []tradeunit.OrderEvent) error {
			for _, ev := range evs {
				if ev.ID == want[12].ID && failures > 0 { // a batch in the middle
					failures--
					return errors.New("store unavailable")
				}
			}
			return s.handle(ctx, evs)
		}
		consume(t, b, "query", 5, handle, s.caughtUp)
		published := time.Now()
		eventually(t, 15*time.Second, "caught up", func() bool { return s.caughtUpSince(published) })

		ids := s.ids()
		for _, ev := range want {
			if ids[ev.ID] == 0 {
				t.Errorf("event %s was lost", ev.ID)
			}
		}
		st := b.Stats()
		if st.HandlerErrors != 3 {
			t.Errorf("handler errors: got %d, want 3", st.HandlerErrors)
		}
		if st.Redeliveries < 3 {
			t.Errorf("redeliveries: got %d, want at least 3", st.Redeliveries)
		}
	})
}

func TestDurableConsumerResumes(t *testing.T) {
	eachServer(t, func(t *testing.T, url string) {
		cfg := testConfig(t, url)
		b := openBus(t, cfg)
		first := events(units, 1, 5)
		publish(t, b, first)
		var s1 sink
		stop := consume(t, b, "query", 4, s1.handle, s1.caughtUp)
		published := time.Now()
		eventually(t, 10*time.Second, "first run caught up", func() bool { return s1.caughtUpSince(published) })
		stop()

		second := events(units, 6, 5)
		publish(t, b, second)
		// Another bus, as a restarted program would open.
		b2 := openBus(t, cfg)
		var s2 sink
		consume(t, b2, "query", 4, s2.handle, s2.caughtUp)
		published = time.Now()
		eventually(t, 10*time.Second, "second run caught up", func() bool { return s2.caughtUpSince(published) })

		got := s2.got()
		if len(got) != len(second) {
			t.Fatalf("second run consumed %d events, want %d (the ones published after the first stopped)", len(got), len(second))
		}
		for i, ev := range got {
			if ev.ID != second[i].ID {
				t.Errorf("second run event %d: got %s, want %s", i, ev.ID, second[i].ID)
			}
		}
	})
}

func TestCaughtUpWhenDrained(t *testing.T) {
	eachServer(t, func(t *testing.T, url string) {
		b := openBus(t, testConfig(t, url))
		var s sink
		consume(t, b, "query", 10, s.handle, s.caughtUp)
		start := time.Now()
		eventually(t, 10*time.Second, "caught up on an empty stream", func() bool { return s.caughtUpSince(start) })

		want := events(units, 1, 30)
		publish(t, b, want)
		published := time.Now()
		eventually(t, 10*time.Second, "caught up after publishing", func() bool { return s.caughtUpSince(published) })
		if got := len(s.got()); got != len(want) {
			t.Errorf("consumed when caught up: got %d, want %d", got, len(want))
		}
		n, err := b.Pending(context.Background(), "query")
		if err != nil || n != 0 {
			t.Errorf("Pending: got %d, %v, want 0, nil", n, err)
		}
	})
}

func TestPendingCountsWhatIsLeft(t *testing.T) {
	b := openBus(t, testConfig(t, startEmbedded(t).URL()))
	if _, err := b.Pending(context.Background(), "nobody"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("Pending of no consumer: got %v, want ErrConsumerNotFound", err)
	}
	var s sink
	stop := consume(t, b, "query", 10, s.handle, s.caughtUp)
	start := time.Now()
	eventually(t, 10*time.Second, "caught up", func() bool { return s.caughtUpSince(start) })
	stop()
	publish(t, b, events(units, 1, 4))
	// The consumer's count follows the stream a moment after a publish is
	// acknowledged (under load, a first read saw 0): poll, and never more.
	var n uint64
	var err error
	eventually(t, 10*time.Second, "12 pending", func() bool {
		n, err = b.Pending(context.Background(), "query")
		if err != nil || n > 12 {
			t.Fatalf("Pending: got %d, %v, want 12, nil", n, err)
		}
		return n == 12
	})
}

func TestBadMessageTerminated(t *testing.T) {
	eachServer(t, func(t *testing.T, url string) {
		cfg := testConfig(t, url)
		b := openBus(t, cfg)
		publish(t, b, events(units, 1, 3))
		// A message some other program put on a unit's subject.
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		for _, data := range []string{"not json", `{"schema":1}`} {
			if _, err := js.Publish(context.Background(), b.Subject(2), []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		publish(t, b, events(units, 4, 3))

		var s sink
		consume(t, b, "query", 4, s.handle, s.caughtUp)
		published := time.Now()
		eventually(t, 10*time.Second, "caught up", func() bool { return s.caughtUpSince(published) })
		if got, want := len(s.got()), 18; got != want {
			t.Errorf("consumed: got %d events, want %d", got, want)
		}
		if got := b.Stats().DecodeFailures; got != 2 {
			t.Errorf("decode failures: got %d, want 2", got)
		}
		if n, err := b.Pending(context.Background(), "query"); err != nil || n != 0 {
			t.Errorf("Pending: got %d, %v, want 0, nil", n, err)
		}
	})
}

func TestPublishRefusesEventWithoutID(t *testing.T) {
	b := openBus(t, testConfig(t, startEmbedded(t).URL()))
	ev := event(1, 1)
	ev.ID = ""
	if err := b.Publish(context.Background(), []tradeunit.OrderEvent{event(1, 2), ev}); err == nil {
		t.Fatal("Publish of an event without id: got nil, want an error")
	}
	if st := b.Stats(); st.Published != 0 {
		t.Errorf("published: got %d, want 0 (nothing sent)", st.Published)
	}
}

func TestOpenFailsWithoutServer(t *testing.T) {
	cfg := testConfig(t, "nats://user:secret@"+freeAddr(t))
	cfg.ConnectTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err := eventbus.Open(context.Background(), cfg, nil)
	if err == nil {
		t.Fatal("Open with no server: got nil, want an error")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Open took %v, want about the connect timeout (300ms)", took)
	}
	if msg := err.Error(); !strings.Contains(msg, "no NATS server reachable") || strings.Contains(msg, "secret") {
		t.Errorf("error: got %q, want it to say no server was reachable, without the password", msg)
	}
}

func TestOpenWaitsForServerStartingLate(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(t, "nats://"+addr)
	cfg.ConnectTimeout = 20 * time.Second
	opened := make(chan error, 1)
	go func() {
		b, err := eventbus.Open(context.Background(), cfg, testLog(t))
		if err == nil {
			b.Close()
		}
		opened <- err
	}()
	e, err := eventbus.StartEmbedded(t.TempDir(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	if err := <-opened; err != nil {
		t.Errorf("Open while the server starts: got %v, want nil", err)
	}
}

func TestCollectorsRegister(t *testing.T) {
	b := openBus(t, testConfig(t, startEmbedded(t).URL()))
	publish(t, b, events(units, 1, 1))
	reg := prometheus.NewRegistry()
	if err := b.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	for name, want := range map[string]float64{"tradeunit_eventbus_published_total": 3, "tradeunit_eventbus_connected": 1,
		"tradeunit_eventbus_decode_failures_total": 0, "tradeunit_eventbus_redeliveries_total": 0,
		"tradeunit_eventbus_publish_errors_total": 0, "tradeunit_eventbus_consumed_total": 0} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s: got %v (registered %v), want %v", name, v, ok, want)
		}
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
