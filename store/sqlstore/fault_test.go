package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"tradeunit"
)

// The fault tests (fault_sqlite_test.go, fault_mysql_test.go) run each
// fault on a unit storage of its own: runFault seeds one NOTPAY order,
// injects the fault, calls CreateOrder (a new order), PayOrder (the seeded
// order) and Order (a read of it), removes the fault, and then reads what
// the calls left in the storage. It asserts the code of each call, whether
// its outcome is unknown, and whether its change was written; no injected
// fault may ever come back as SYSTEM_ERROR.

const faultMchid = "1900000109"

// faultOrder is order n of a family (seed, test, fill): every order has
// the same size, which the disk-full fault relies on.
func faultOrder(family string, n int) *tradeunit.Order {
	no := fmt.Sprintf("%s-%08d", family, n)
	return &tradeunit.Order{OrderNo: no, Mchid: faultMchid, OutTradeNo: "out-" + no, Description: "fault test",
		Amount: tradeunit.Amount{Total: 100, Currency: "CNY"}, CreateTime: time.Now().UTC().Truncate(time.Microsecond)}
}

// faultPaymentID is the payment of the seeded order.
const faultPaymentID = "pay-00000001"

// maybe is an expected boolean: no, yes, or either, for what a fault's
// timing decides (each case says why).
type maybe int

const (
	no maybe = iota
	yes
	either
)

func (m maybe) allows(v bool) bool { return m == either || (m == yes) == v }

func (m maybe) String() string { return [...]string{"false", "true", "either"}[m] }

// want is the expected result of one call under a fault.
type want struct {
	code     tradeunit.Code // "" for success
	unknown  maybe          // tradeunit.OutcomeUnknown(err)
	written  maybe          // the call's change is in the storage afterwards; reads: ignored
	deadline bool           // err is the caller's own deadline (errors.Is DeadlineExceeded)
}

// nothingWritten is the answer to expect for a definite refusal.
var nothingWritten = want{code: tradeunit.CodeUnitUnavailable, unknown: no, written: no}

// faultRun is one fault on one store.
type faultRun struct {
	store *Store
	// inject starts the fault and returns what ends it.
	inject func() (restore func())
	// around runs each write (CreateOrder, PayOrder) under the fault;
	// nil runs it as it is.
	around func(call func() error) error
	// timeout bounds each call under the fault (default 20s).
	timeout             time.Duration
	create, pay, reader want
}

func runFault(t *testing.T, r faultRun) {
	t.Helper()
	ctx := context.Background()
	seed := faultOrder("seed", 1)
	if _, _, err := r.store.CreateOrder(ctx, seed); err != nil {
		t.Fatalf("seed order: %v", err)
	}
	if r.around == nil {
		r.around = func(call func() error) error { return call() }
	}
	if r.timeout == 0 {
		r.timeout = 20 * time.Second
	}
	bounded := func(f func(ctx context.Context) error) func() error {
		return func() error {
			ctx, cancel := context.WithTimeout(ctx, r.timeout)
			defer cancel()
			return f(ctx)
		}
	}
	fresh := faultOrder("test", 1)

	restore := r.inject()
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()
	createErr := r.around(bounded(func(ctx context.Context) error {
		_, _, err := r.store.CreateOrder(ctx, fresh)
		return err
	}))
	payErr := r.around(bounded(func(ctx context.Context) error {
		_, err := r.store.PayOrder(ctx, faultMchid, seed.OrderNo, faultPaymentID, time.Now())
		return err
	}))
	readErr := bounded(func(ctx context.Context) error {
		_, err := r.store.Order(ctx, seed.OrderNo)
		return err
	})()
	restore()
	restored = true

	// What the calls left, read once the fault is gone.
	_, err := r.store.Order(ctx, fresh.OrderNo)
	created := err == nil
	if err != nil && !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("read the created order after the fault: %v", err)
	}
	o, err := r.store.Order(ctx, seed.OrderNo)
	if err != nil {
		t.Fatalf("read the seeded order after the fault: %v", err)
	}
	paid := o.State == tradeunit.StateSuccess

	checkCall(t, "CreateOrder", createErr, created, r.create)
	checkCall(t, "PayOrder", payErr, paid, r.pay)
	checkCall(t, "Order", readErr, false, want{code: r.reader.code, unknown: r.reader.unknown, written: either, deadline: r.reader.deadline})
}

func checkCall(t *testing.T, call string, err error, written bool, w want) {
	t.Helper()
	if code := tradeunit.ErrorCode(err); code == tradeunit.CodeInternal {
		t.Errorf("%s: SYSTEM_ERROR for an injected fault: %v", call, err)
	} else if code != w.code {
		t.Errorf("%s: code %q, want %q (err: %v)", call, code, w.code, err)
	}
	if u := tradeunit.OutcomeUnknown(err); !w.unknown.allows(u) {
		t.Errorf("%s: OutcomeUnknown %v, want %v (err: %v)", call, u, w.unknown, err)
	}
	if !w.written.allows(written) {
		t.Errorf("%s: written %v, want %v", call, written, w.written)
	}
	if d := errors.Is(err, context.DeadlineExceeded); d != w.deadline {
		t.Errorf("%s: errors.Is(err, context.DeadlineExceeded) = %v, want %v (err: %v)", call, d, w.deadline, err)
	}
	if err != nil {
		t.Logf("%s: %v", call, err)
	}
}

// poll calls cond every 5 ms until it holds, failing the test after
// timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
