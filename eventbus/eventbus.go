// Package eventbus carries tradeunit.OrderEvents over NATS JetStream: units'
// relays Publish their outbox events, consumers (the query store) Consume
// them through durable pull consumers.
//
// Delivery is at least once, end to end. Publish returns nil only once the
// server has stored every event; a caller that gets an error publishes the
// batch again, and the stream stores an event once however often it is
// published within Config.Duplicates (its ID is the message id). Consume
// acknowledges a batch only after its handler returned nil, so an event is
// handled at least once and, after a failure, possibly again: handlers must
// be idempotent (Order.Version tells a stale event from a new one).
//
// Each unit has its own subject, <prefix>.unit.<N>, and a batch published in
// one call is stored in its order. Order across a retried batch is not
// promised: if the server stored events 1 and 3 of a batch and lost 2 (it
// restarted between them), the retry stores 2 after 3.
//
// After a successful Open the connection is kept: a server that goes away
// and comes back is reconnected to transparently, for as long as it takes.
// Meanwhile Publish fails (its timeout) and Consume logs and keeps fetching.
package eventbus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tradeunit"
)

// Bus is a connection to the event stream. It is safe for concurrent use.
type Bus struct {
	cfg   Config
	log   *slog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	stats stats
}

// Open connects to the NATS server of cfg.URL, retrying until
// cfg.ConnectTimeout, and creates the stream or brings its settings up to
// cfg. It fails if no server answers in time, if JetStream is not enabled,
// or if the stream exists with settings that cannot be changed (its storage,
// or subjects another stream holds). log (nil: none) gets disconnects,
// reconnects and consumers' troubles.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{cfg: cfg, log: log.With("component", "eventbus", "stream", cfg.Stream)}
	nc, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	b.nc = nc
	// Unacknowledged async publishes are forgotten after PublishTimeout, so
	// that a Publish that gave up leaves nothing behind.
	b.js, err = jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("eventbus: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := b.ensureStream(sctx); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// Close closes the connection. Publish and Consume calls still running fail
// or end.
func (b *Bus) Close() error {
	b.nc.Close()
	return nil
}

// Config returns the bus's configuration.
func (b *Bus) Config() Config { return b.cfg }

// Connected reports whether the bus is connected to a server now.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Subject returns the subject unit's events are published on.
func (b *Bus) Subject(unit tradeunit.UnitID) string {
	return b.cfg.Subject + ".unit." + strconv.FormatUint(uint64(unit), 10)
}

func (b *Bus) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        b.cfg.Stream,
		Description: "tradeunit order events, one subject per unit",
		Subjects:    []string{b.cfg.Subject + ".unit.*"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.MaxAge,
		MaxBytes:    b.cfg.MaxBytes,
		MaxMsgs:     -1,
		Duplicates:  b.cfg.Duplicates,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
	}
}

// ensureStream creates the stream or updates its limits to the config's.
func (b *Bus) ensureStream(ctx context.Context) error {
	if _, err := b.js.CreateOrUpdateStream(ctx, b.streamConfig()); err != nil {
		return fmt.Errorf("eventbus: create or update stream %s on %s: %w", b.cfg.Stream, redact(b.cfg.URL), err)
	}
	return nil
}

// connect dials until a server answers or ConnectTimeout passes: programs
// started together (tradeunit dev, a compose file) need not start in order.
func (b *Bus) connect(ctx context.Context) (*nats.Conn, error) {
	log := b.log
	opts := []nats.Option{
		nats.Name(b.cfg.Name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		// A server that vanished without closing the connection (a host
		// gone, a partition) is noticed within a minute.
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("reconnected to NATS", "server", c.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) { log.Debug("NATS connection closed") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS error", "err", err)
		}),
	}
	if b.cfg.TLS != nil && strings.Contains(strings.ToLower(b.cfg.URL), "tls://") {
		opts = append(opts, nats.Secure(b.cfg.TLS))
	}
	deadline := time.Now().Add(b.cfg.ConnectTimeout)
	var last error
	for attempt := 1; ; attempt++ {
		timeout := max(time.Until(deadline), 10*time.Millisecond)
		nc, err := nats.Connect(b.cfg.URL, append(opts, nats.Timeout(timeout))...)
		if err == nil {
			log.Info("connected to NATS", "server", nc.ConnectedUrlRedacted(), "attempts", attempt)
			return nc, nil
		}
		last = err
		wait := min(backoff(attempt), time.Until(deadline))
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("eventbus: connect to %s: %w (last error: %v)", redact(b.cfg.URL), ctx.Err(), last)
		case <-t.C:
		}
	}
	return nil, fmt.Errorf("eventbus: no NATS server reachable at %s within %v: %w", redact(b.cfg.URL), b.cfg.ConnectTimeout, last)
}

// backoff is the wait before retry attempt (1, 2, ...): doubling from 50ms
// to 5s, with up to a fifth of jitter so that many clients of a restarted
// server do not come back in step.
func backoff(attempt int) time.Duration {
	d := 5 * time.Second
	if attempt < 8 {
		d = min(d, 50*time.Millisecond<<(attempt-1))
	}
	return d + rand.N(d/5+1)
}

// redact returns urls (comma-separated) without their user information, so
// that a password or token in the URL never reaches a log or an error.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.Host == "" {
			if strings.Contains(p, "@") {
				parts[i] = "(unparsable URL)"
			}
			continue
		}
		if u.User != nil {
			u.User = url.User("REDACTED")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// DeleteStream deletes the bus's stream and every event in it: for tests
// and tear-downs of a whole deployment, never for a running one.
func (b *Bus) DeleteStream(ctx context.Context) error {
	return b.js.DeleteStream(ctx, b.cfg.Stream)
}
