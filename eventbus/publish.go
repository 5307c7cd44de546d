package eventbus

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tradeunit"
)

// Publish publishes events, each on its unit's subject with its ID as the
// message id, and returns once the stream has acknowledged them all, or
// fails after Config.PublishTimeout (or when ctx is done) naming how many
// were not. On an error the caller publishes the batch again: events already
// stored within the de-duplication window are not stored twice. An event
// without an ID or unit is refused before anything is sent.
func (b *Bus) Publish(ctx context.Context, events []tradeunit.OrderEvent) error {
	if len(events) == 0 {
		return nil
	}
	msgs := make([]*nats.Msg, len(events))
	for i := range events {
		ev := &events[i]
		if ev.ID == "" || ev.Unit == 0 {
			return fmt.Errorf("eventbus: publish: event %d of the batch has no ID or no unit (id %q, unit %d)", i, ev.ID, ev.Unit)
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("eventbus: encode event %s: %w", ev.ID, err)
		}
		msgs[i] = &nats.Msg{Subject: b.Subject(ev.Unit), Data: data}
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()

	// All go out before any ack is awaited: one round trip for the batch,
	// and one connection keeps each subject's messages in slice order.
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var sendErr error
	for i, m := range msgs {
		f, err := b.js.PublishMsgAsync(m, jetstream.WithMsgID(events[i].ID), jetstream.WithExpectStream(b.cfg.Stream))
		if err != nil {
			// Sending the rest would store them after a gap: stop here.
			sendErr = fmt.Errorf("send event %s: %w", events[i].ID, err)
			break
		}
		futures = append(futures, f)
	}
	var first error
	var failed uint64
	for i, f := range futures {
		var err error
		select {
		case ack := <-f.Ok():
			b.stats.published.Add(1)
			if ack.Duplicate {
				b.stats.duplicates.Add(1)
			}
			continue
		case err = <-f.Err():
		case <-ctx.Done():
			err = ctx.Err()
		}
		failed++
		if first == nil {
			first = fmt.Errorf("event %s: %w", events[i].ID, err)
		}
	}
	failed += uint64(len(msgs) - len(futures))
	if first == nil {
		first = sendErr
	}
	if failed == 0 {
		return nil
	}
	b.stats.publishErrors.Add(failed)
	return fmt.Errorf("eventbus: publish: %d of %d events not acknowledged: %w", failed, len(msgs), first)
}
