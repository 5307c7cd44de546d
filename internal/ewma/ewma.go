// Package ewma is the latency average that the health checker (of its
// probes) and each proxy (of its own calls) keep per unit, and that
// selection's speed factor compares.
package ewma

import "time"

// Latency is an exponentially weighted moving average of latencies that
// leaves out the first sample. The first successful call to a unit pays for
// the connection (dial, TLS handshake), tens of milliseconds on a busy
// machine: seeding the average with it made a new unit look slow, and a
// unit that looks slow gets few calls to correct it. The zero value is
// empty.
type Latency struct {
	sampled bool          // the first sample came: the next ones count
	value   time.Duration // 0 until the second sample
}

// Observe adds a sample with weight alpha, in (0, 1].
func (l *Latency) Observe(sample time.Duration, alpha float64) {
	switch {
	case !l.sampled:
		l.sampled = true
	case l.value == 0:
		l.value = sample
	default:
		l.value += time.Duration(alpha * float64(sample-l.value))
	}
}

// Value returns the average, 0 while it is unknown (before the second
// sample).
func (l Latency) Value() time.Duration { return l.value }
