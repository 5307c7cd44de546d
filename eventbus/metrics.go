package eventbus

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a bus's counts since Open, over all its Publish and Consume
// calls.
type Stats struct {
	// Published counts events the server acknowledged, Duplicates those of
	// them it had already stored (a retried batch).
	Published, Duplicates uint64
	// PublishErrors counts events not acknowledged (their batch failed).
	PublishErrors uint64
	// Consumed counts events handed to handlers that returned nil.
	Consumed uint64
	// HandlerErrors counts batches whose handler failed (delivered again).
	HandlerErrors uint64
	// DecodeFailures counts messages that were not an OrderEvent and were
	// terminated: a consumer never sees them.
	DecodeFailures uint64
	// Redeliveries counts messages delivered more than once.
	Redeliveries uint64
}

type stats struct {
	published, duplicates, publishErrors, consumed, handlerErrors, decodeFailures, redeliveries atomic.Uint64
}

// Stats returns the bus's counts now.
func (b *Bus) Stats() Stats {
	s := &b.stats
	return Stats{Published: s.published.Load(), Duplicates: s.duplicates.Load(), PublishErrors: s.publishErrors.Load(),
		Consumed: s.consumed.Load(), HandlerErrors: s.handlerErrors.Load(), DecodeFailures: s.decodeFailures.Load(),
		Redeliveries: s.redeliveries.Load()}
}

// Collectors returns the bus's metrics, for the program's registry:
// tradeunit_eventbus_{published,duplicates,publish_errors,consumed,
// handler_errors,decode_failures,redeliveries}_total and
// tradeunit_eventbus_connected.
func (b *Bus) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tradeunit_eventbus_" + name + "_total", Help: help},
			func() float64 { return float64(v.Load()) })
	}
	s := &b.stats
	return []prometheus.Collector{
		counter("published", "Events published and acknowledged by the stream.", &s.published),
		counter("duplicates", "Published events the stream already held (dropped by de-duplication).", &s.duplicates),
		counter("publish_errors", "Events whose publication was not acknowledged (the batch is retried).", &s.publishErrors),
		counter("consumed", "Events handled by consumers and acknowledged.", &s.consumed),
		counter("handler_errors", "Batches whose handler failed and that are delivered again.", &s.handlerErrors),
		counter("decode_failures", "Messages that were not an order event, terminated without being handled.", &s.decodeFailures),
		counter("redeliveries", "Messages delivered to a consumer more than once.", &s.redeliveries),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tradeunit_eventbus_connected", Help: "1 while connected to a NATS server."},
			func() float64 {
				if b.nc.IsConnected() {
					return 1
				}
				return 0
			}),
	}
}

// RegisterMetrics registers the bus's Collectors on reg.
func (b *Bus) RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range b.Collectors() {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
