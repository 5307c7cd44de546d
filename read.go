package tradeunit

import (
	"context"
	"time"
)

// Consistency is what a read asks of the data it returns. A unit's storage
// is one primary and replicas; the primary has every acknowledged change,
// a replica lags behind it.
type Consistency string

// The consistencies a read may ask for.
const (
	// RealTime reads see every change acknowledged before them: they go to
	// the unit's primary. It is the default. When the primary is down, the
	// unit serves them from a replica in degraded mode (ReadInfo.Degraded)
	// rather than failing.
	RealTime Consistency = "realtime"
	// Eventual reads accept data a bounded time old: a unit serves them
	// from a replica whose measured lag is under its bound (the logic
	// service's --replica-max-lag), and from the primary when no replica is
	// fresh enough.
	Eventual Consistency = "eventual"
)

// ParseConsistency parses a read's consistency: "" or "realtime" (also
// "strong") is RealTime, "eventual" is Eventual. Errors: PARAM_ERROR.
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "", string(RealTime), "strong":
		return RealTime, nil
	case string(Eventual):
		return Eventual, nil
	}
	return "", Errorf(CodeParamError, "consistency must be realtime or eventual, got %q", s)
}

type consistencyKey struct{}

// WithConsistency returns a context whose reads ask for c. The proxy sets it
// from the API request, the RPC layer carries it to the unit, and the unit's
// read methods (OrderService.Order, OrderByOutTradeNo, Refund) honour it;
// changes always go to the primary whatever it says.
func WithConsistency(ctx context.Context, c Consistency) context.Context {
	if c == "" {
		c = RealTime
	}
	if ConsistencyFrom(ctx) == c {
		return ctx
	}
	return context.WithValue(ctx, consistencyKey{}, c)
}

// ConsistencyFrom returns the consistency a read with ctx asks for: RealTime
// unless WithConsistency said otherwise.
func ConsistencyFrom(ctx context.Context) Consistency {
	if c, ok := ctx.Value(consistencyKey{}).(Consistency); ok {
		return c
	}
	return RealTime
}

// ReadSource names the server a result was read from.
type ReadSource string

// The sources of a result. The zero value means the primary: every change,
// and every real-time read of a healthy unit, is served there.
const (
	FromPrimary ReadSource = ""
	FromReplica ReadSource = "replica"
)

// ReadInfo says where a result was read from and how fresh it is. The zero
// value is a result of the primary.
type ReadInfo struct {
	Source ReadSource
	// Degraded is set on a real-time read that the primary could not serve
	// (down, or the unit failing over) and a replica served instead: the
	// result may miss recent changes.
	Degraded bool
	// Staleness bounds how old a replica's data may be: the age of the
	// newest primary heartbeat the replica had applied when it was chosen,
	// plus the time since that was measured. 0 for the primary.
	Staleness time.Duration
}
