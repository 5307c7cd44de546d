// Package replicas calls one of a unit's (or a directory shard's) service
// replicas: every call of their APIs is idempotent, so a call that gets no
// answer from one replica is made again on the next, and the first answer
// counts. The proxy and the directory's reconciler both call this way.
package replicas

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"tradeunit"
)

// ErrNoReplica marks the error of a call no replica answered.
var ErrNoReplica = errors.New("no replica answered")

// Conn is a connection to one replica.
type Conn interface {
	// Down reports that a call would fail at once without being sent, or
	// that the replica just gave no answer (Silent).
	Down() bool
	// Reconnect asks a connection that is down to try again now.
	Reconnect()
	// Silent records that a call sent on it got no answer in time.
	Silent()
}

// Call calls what (named in errors: "unit 3") at one of addrs, starting at
// a random one, each call bounded by timeout. The first pass skips replicas
// whose connection is known down; if none was live, the second pass asks
// them to reconnect now and calls them, so that a replica that came back
// is used at once. It returns the first answer (tradeunit.Answered),
// whether any call was sent (a create's attempt is used up only then), or,
// if a replica refused (UNIT_UNAVAILABLE, SYSTEM_ERROR) after an earlier one
// got the call and gave no answer, an error whose outcome is unknown; or,
// once every replica failed, UNIT_UNAVAILABLE wrapping ErrNoReplica and the
// last failure of a call that was sent (else the last failure).
func Call[C Conn, T any](ctx context.Context, what string, addrs []string, timeout time.Duration,
	dial func(addr string) (C, error), call func(ctx context.Context, c C) (T, error)) (v T, sent bool, err error) {
	return CallNearFirst(ctx, what, addrs, nil, timeout, dial, call)
}

// CallNearFirst is Call over the replicas near, then those far: each pass
// tries every near replica (from a random one) before any far one (from a
// random one), so a caller stays in its own zone while a replica there
// answers, spreads its calls over them, and crosses zones only when none
// does.
func CallNearFirst[C Conn, T any](ctx context.Context, what string, near, far []string, timeout time.Duration,
	dial func(addr string) (C, error), call func(ctx context.Context, c C) (T, error)) (v T, sent bool, err error) {
	n := len(near) + len(far)
	if n == 0 {
		return v, false, tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "%s has no service address", what)
	}
	// The i-th replica to try, without building the list: a call must not
	// allocate for the order it tries replicas in.
	startNear, startFar := randStart(len(near)), randStart(len(far))
	nth := func(i int) string {
		if i < len(near) {
			return near[(startNear+i)%len(near)]
		}
		return far[(startFar+i-len(near))%len(far)]
	}
	// lastErr is the last failure; sentErr the last of a call that was
	// sent, which is what the caller must hear: that call may have been
	// applied, whatever the replicas after it said.
	var lastErr, sentErr error
	for pass := 0; pass < 2 && !sent; pass++ {
		for i := 0; i < n; i++ {
			addr := nth(i)
			c, err := dial(addr)
			if err != nil {
				lastErr = err
				continue
			}
			if pass == 0 && c.Down() {
				// gRPC fails calls on a connection in failure at once, without
				// sending them, and a replica that just gave no answer is
				// likely to again: skip it, calling it only if no other
				// answers.
				lastErr = tradeunit.Errorf(tradeunit.CodeUnitUnavailable, "%s: replica %s is down", what, addr)
				continue
			}
			if pass == 1 {
				c.Reconnect()
			}
			sent = true
			actx, cancel := context.WithTimeout(ctx, timeout)
			got, err := call(actx, c)
			cancel()
			if tradeunit.Answered(err) {
				if sentErr != nil && err != nil && refusal(err) {
					// This replica wrote nothing, but an earlier one got the
					// call and gave no answer: that one may have applied it.
					err = &tradeunit.Error{Code: tradeunit.CodeUnitUnavailable, Message: what + " is unavailable; retry later",
						Op: "replicas.Call", Err: fmt.Errorf("%w: replica %s: %w; an earlier replica got the call and gave no answer: %w",
							tradeunit.ErrOutcomeUnknown, addr, err, sentErr)}
				}
				return got, sent, err
			}
			lastErr, sentErr = err, err
			if ctx.Err() != nil {
				break // the caller gave up: that says nothing of the replica
			}
			c.Silent()
		}
	}
	if sentErr != nil {
		lastErr = sentErr
	}
	var zero T
	return zero, sent, &tradeunit.Error{
		Code:    tradeunit.CodeUnitUnavailable,
		Message: what + " is unavailable; retry later",
		Op:      "replicas.Call",
		Err:     fmt.Errorf("%w: %w", ErrNoReplica, lastErr),
	}
}

func randStart(n int) int {
	if n == 0 {
		return 0
	}
	return rand.IntN(n)
}

// refusal reports whether err is a replica's answer that it could not do
// the call (nothing written by it), as opposed to an answer about the data.
func refusal(err error) bool {
	code := tradeunit.ErrorCode(err)
	return code == tradeunit.CodeUnitUnavailable || code == tradeunit.CodeInternal
}
