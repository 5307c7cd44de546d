package eventbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tradeunit"
)

// Handler handles a batch of events in stream order. Returning nil
// acknowledges them all; an error has them delivered again (after
// Config.NakDelay), with whatever came after them.
type Handler func(ctx context.Context, events []tradeunit.OrderEvent) error

// Consume reads every event of the stream through the durable consumer
// named durable (created if new: it starts at the stream's first event,
// then resumes where its last acknowledgement left it), in batches of up to
// batch events, until ctx is done; it returns nil then, and an error only
// for bad arguments.
//
// A message that is not an OrderEvent is logged, terminated (never
// delivered again) and counted, and the rest go on. When a fetch finds the
// consumer drained (nothing left to deliver, nothing delivered and not yet
// acknowledged), caughtUp (if not nil) is called with the time that fetch
// started: every event stored before then has been handled. A lost server
// is logged and waited for; Consume keeps fetching.
//
// The events a handler gets may repeat ones it had (a redelivery, a
// duplicate published outside the de-duplication window) and, after a
// handler error, come after later ones; an event of a newer Schema than the
// handler knows is the handler's to refuse.
func (b *Bus) Consume(ctx context.Context, durable string, batch int, handle Handler, caughtUp func(at time.Time)) error {
	if err := checkName(durable); err != nil {
		return fmt.Errorf("eventbus: consumer name %q: %w", durable, err)
	}
	if batch < 1 || batch > b.cfg.MaxAckPending {
		return fmt.Errorf("eventbus: consume batch must be 1..%d (max ack pending), got %d", b.cfg.MaxAckPending, batch)
	}
	if handle == nil {
		return errors.New("eventbus: consume needs a handler")
	}
	log := b.log.With("consumer", durable)
	var cons jetstream.Consumer
	failures := 0 // consecutive, for the backoff
	fail := func(what string, err error) {
		failures++
		log.Warn(what, "err", err, "attempt", failures)
		wait(ctx, backoff(failures))
	}
	for ctx.Err() == nil {
		if cons == nil {
			c, err := b.ensureConsumer(ctx, durable)
			if err != nil {
				fail("creating the durable consumer failed; retrying", err)
				continue
			}
			cons = c
		}
		start := time.Now()
		r, err := b.fetch(ctx, cons, batch, log)
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				cons = nil // deleted, or the server lost its state: make it again
			}
			if ctx.Err() == nil {
				fail("fetching events failed; retrying", err)
			}
			continue
		}
		if len(r.events) > 0 {
			if err := handle(ctx, r.events); err != nil {
				b.stats.handlerErrors.Add(1)
				log.Warn("handling a batch failed; it will be delivered again", "err", err, "events", len(r.events), "delay", b.cfg.NakDelay)
				for _, m := range r.msgs {
					_ = m.NakWithDelay(b.cfg.NakDelay) // lost, the ack wait redelivers it
				}
				// Waiting out the delay has the next fetch begin with the
				// redelivered batch rather than with what came after it.
				wait(ctx, b.cfg.NakDelay)
				continue
			}
			b.stats.consumed.Add(uint64(len(r.events)))
		}
		if err := b.ack(ctx, r.msgs); err != nil {
			fail("acknowledging a batch failed; it will be delivered again", err)
			continue
		}
		failures = 0
		if caughtUp == nil || (len(r.msgs) > 0 && r.pending > 0) {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			if ctx.Err() == nil {
				fail("reading the consumer's state failed", err)
			}
			continue
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			caughtUp(start)
		}
	}
	return nil
}

// fetched is one fetch's messages and the events decoded from them.
type fetched struct {
	msgs    []jetstream.Msg // decoded or not; all to be acknowledged
	events  []tradeunit.OrderEvent
	pending uint64 // left to deliver after the last message
}

// fetch returns up to batch messages, waiting up to FetchWait for the first.
func (b *Bus) fetch(ctx context.Context, cons jetstream.Consumer, batch int, log *slog.Logger) (fetched, error) {
	fctx, cancel := context.WithTimeout(ctx, b.cfg.FetchWait)
	defer cancel()
	mb, err := cons.Fetch(batch, jetstream.FetchContext(fctx))
	if err != nil {
		return fetched{}, err
	}
	var r fetched
	for m := range mb.Messages() {
		meta, err := m.Metadata()
		if err == nil {
			r.pending = meta.NumPending
			if meta.NumDelivered > 1 {
				b.stats.redeliveries.Add(1)
			}
		}
		var ev tradeunit.OrderEvent
		if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" {
			if err == nil {
				err = errors.New("no event id")
			}
			b.stats.decodeFailures.Add(1)
			log.Warn("terminating a message that is not an order event", "subject", m.Subject(), "seq", streamSeq(meta), "err", err)
			// Term, not TermWithReason: servers before 2.10.4 ignore the
			// latter and would deliver the message forever.
			if err := m.Term(); err != nil {
				log.Warn("terminating a bad message failed; it will come again", "err", err)
			}
			continue
		}
		r.msgs = append(r.msgs, m)
		r.events = append(r.events, ev)
	}
	// A fetch cut short (its context, a lost connection) still hands over
	// what it got; messages in flight come again after the ack wait.
	if err := mb.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && len(r.msgs) == 0 {
		return r, err
	}
	if ctx.Err() != nil && len(r.msgs) == 0 {
		return r, ctx.Err()
	}
	return r, nil
}

// ack acknowledges msgs, the last one synchronously: the server handles a
// connection's acks in order, so once the last is confirmed all are.
func (b *Bus) ack(ctx context.Context, msgs []jetstream.Msg) error {
	if len(msgs) == 0 {
		return nil
	}
	for _, m := range msgs[:len(msgs)-1] {
		if err := m.Ack(); err != nil {
			return err
		}
	}
	// Handled events are acknowledged even when ctx just ended.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.PublishTimeout)
	defer cancel()
	return msgs[len(msgs)-1].DoubleAck(actx)
}

// ensureConsumer creates or updates the durable consumer, and the stream if
// it is gone (a server that lost its storage).
func (b *Bus) ensureConsumer(ctx context.Context, durable string) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "tradeunit order events consumer",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    -1, // a batch is retried until its handler takes it
		MaxAckPending: b.cfg.MaxAckPending,
		FilterSubject: b.cfg.Subject + ".unit.*",
	}
	cctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
	defer cancel()
	c, err := b.js.CreateOrUpdateConsumer(cctx, b.cfg.Stream, cfg)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := b.ensureStream(cctx); err != nil {
			return nil, err
		}
		c, err = b.js.CreateOrUpdateConsumer(cctx, b.cfg.Stream, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s: %w", durable, err)
	}
	return c, nil
}

// Pending returns how far the durable consumer is behind: the events not yet
// delivered to it plus those delivered and not yet acknowledged. Errors:
// jetstream.ErrConsumerNotFound if there is no such consumer.
func (b *Bus) Pending(ctx context.Context, durable string) (uint64, error) {
	c, err := b.js.Consumer(ctx, b.cfg.Stream, durable)
	if err != nil {
		return 0, fmt.Errorf("eventbus: consumer %s: %w", durable, err)
	}
	info := c.CachedInfo() // just fetched by Consumer
	return info.NumPending + uint64(info.NumAckPending), nil
}

func streamSeq(meta *jetstream.MsgMetadata) uint64 {
	if meta == nil {
		return 0
	}
	return meta.Sequence.Stream
}

// wait waits d or until ctx is done.
func wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
