package ordermodel

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"tradeunit"
)

var (
	k1   = Key{Mchid: "1900000001", OutTradeNo: "k1"}
	k2   = Key{Mchid: "1900000001", OutTradeNo: "k2"}
	tea  = Body{Description: "tea", Total: 800}
	cake = Body{Description: "cake", Total: 2500}
)

const (
	no1 = "1000011795260543000000000017"
	no2 = "1000021795260543000000000025"
)

// call is one operation of a scripted history, from..to in time (to: Never
// when the call had no answer).
type call struct {
	client   int
	from, to int64
	in       Input
	out      Output
}

func ops(calls ...call) []porcupine.Operation {
	var h []porcupine.Operation
	for _, c := range calls {
		h = append(h, porcupine.Operation{ClientId: c.client, Input: c.in, Call: c.from, Output: c.out, Return: c.to})
	}
	return h
}

func create(b Body) Input { return Input{Key: k1, Op: Create, Body: b} }
func lookup() Input       { return Input{Key: k1, Op: Lookup} }
func get(no string) Input { return Input{Key: k1, Op: Get, OrderNo: no} }
func pay(no, pid string) Input {
	return Input{Key: k1, Op: Pay, OrderNo: no, PaymentID: pid}
}
func closeOrder(no string) Input { return Input{Key: k1, Op: Close, OrderNo: no} }

func order(no string, b Body, st tradeunit.TradeState, pid string) Output {
	return Output{Order: Order{OrderNo: no, Body: b, State: st, PaymentID: pid}}
}

func fails(code tradeunit.Code) Output { return Output{Code: code} }

var (
	unknown = Output{Unknown: true}
	ok      = Output{}
)

func TestModel(t *testing.T) {
	notpay := order(no1, tea, tradeunit.StateNotPay, "")
	paid := order(no1, tea, tradeunit.StateSuccess, "p1")
	cases := []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"a key's life: create, repeat, conflict, pay, close refused, lookups", ops(
			call{0, 0, 10, lookup(), fails(tradeunit.CodeNotFound)},
			call{0, 11, 20, create(tea), notpay},
			call{1, 12, 30, lookup(), notpay},
			call{1, 31, 40, create(cake), fails(tradeunit.CodeOutTradeNoUsed)},
			call{0, 21, 50, pay(no1, "p1"), paid},
			call{2, 41, 45, get(no1), notpay}, // concurrent with the pay
			call{1, 51, 60, pay(no1, "p1"), paid},
			call{1, 61, 70, pay(no1, "p2"), fails(tradeunit.CodeOrderPaid)},
			call{2, 51, 70, closeOrder(no1), fails(tradeunit.CodeOrderPaid)},
			call{0, 71, 80, create(tea), paid},
		), porcupine.Ok},
		{"close, close again, pay refused", ops(
			call{0, 0, 10, create(tea), notpay},
			call{0, 11, 20, closeOrder(no1), ok},
			call{1, 21, 30, closeOrder(no1), ok},
			call{0, 31, 40, pay(no1, "p1"), fails(tradeunit.CodeOrderClosed)},
			call{1, 41, 50, lookup(), order(no1, tea, tradeunit.StateClosed, "")},
		), porcupine.Ok},
		{"two different orders for one key", ops(
			call{0, 0, 10, create(tea), notpay},
			call{1, 5, 15, create(tea), order(no2, tea, tradeunit.StateNotPay, "")},
		), porcupine.Illegal},
		{"a lookup returns another order than the create", ops(
			call{0, 0, 10, create(tea), notpay},
			call{1, 20, 30, lookup(), order(no2, tea, tradeunit.StateNotPay, "")},
		), porcupine.Illegal},
		{"an acknowledged order lost: 404 after the create returned", ops(
			call{0, 0, 10, create(tea), notpay},
			call{1, 20, 30, lookup(), fails(tradeunit.CodeNotFound)},
		), porcupine.Illegal},
		{"a 404 concurrent with the create", ops(
			call{0, 0, 10, create(tea), notpay},
			call{1, 5, 30, lookup(), fails(tradeunit.CodeNotFound)},
		), porcupine.Ok},
		{"a create with no answer takes effect late: 404, then its order", ops(
			call{0, 0, Never, create(tea), unknown},
			call{1, 10, 20, lookup(), fails(tradeunit.CodeNotFound)},
			call{1, 30, 40, lookup(), notpay},
			call{2, 50, 60, pay(no1, "p1"), paid},
		), porcupine.Ok},
		{"a create with no answer never takes effect", ops(
			call{0, 0, Never, create(cake), unknown},
			call{1, 10, 20, create(tea), notpay},
			call{1, 30, 40, lookup(), notpay},
		), porcupine.Ok},
		{"a create with no answer cannot take effect before the create", ops(
			call{1, 0, 10, lookup(), fails(tradeunit.CodeNotFound)},
			call{0, 20, Never, create(tea), unknown},
			call{2, 0, 5, lookup(), notpay},
		), porcupine.Illegal},
		{"OUT_TRADE_NO_USED for a create that had no answer, then that body's order", ops(
			call{0, 0, Never, create(cake), unknown},
			call{1, 10, 20, create(tea), fails(tradeunit.CodeOutTradeNoUsed)},
			call{2, 30, 40, create(tea), notpay},
		), porcupine.Illegal},
		{"OUT_TRADE_NO_USED on a key without an order", ops(
			call{1, 10, 20, create(tea), fails(tradeunit.CodeOutTradeNoUsed)},
		), porcupine.Illegal},
		{"a pay with no answer, then a close: the pay never happened", ops(
			call{0, 0, 10, create(tea), notpay},
			call{0, 20, Never, pay(no1, "p1"), unknown},
			call{1, 30, 40, closeOrder(no1), ok},
			call{1, 50, 60, get(no1), order(no1, tea, tradeunit.StateClosed, "")},
		), porcupine.Ok},
		{"a pay with no answer took effect: a later get sees it", ops(
			call{0, 0, 10, create(tea), notpay},
			call{0, 20, Never, pay(no1, "p1"), unknown},
			call{1, 30, 40, get(no1), notpay},
			call{1, 50, 60, get(no1), paid},
			call{2, 70, 80, pay(no1, "p2"), fails(tradeunit.CodeOrderPaid)},
		), porcupine.Ok},
		{"paid after it was closed", ops(
			call{0, 0, 10, create(tea), notpay},
			call{0, 20, 30, closeOrder(no1), ok},
			call{1, 40, 50, pay(no1, "p1"), paid},
		), porcupine.Illegal},
		{"paid by two payments", ops(
			call{0, 0, 10, create(tea), notpay},
			call{0, 20, 30, pay(no1, "p1"), paid},
			call{1, 25, 35, pay(no1, "p2"), order(no1, tea, tradeunit.StateSuccess, "p2")},
		), porcupine.Illegal},
		{"a stale read after a pay", ops(
			call{0, 0, 10, create(tea), notpay},
			call{0, 20, 30, pay(no1, "p1"), paid},
			call{1, 40, 50, get(no1), notpay},
		), porcupine.Illegal},
		{"the key's order superseded", ops(
			call{0, 0, 10, create(tea), notpay},
			call{0, 20, 30, pay(no1, "p1"), fails(tradeunit.CodeOrderSuperseded)},
		), porcupine.Illegal},
		{"a create answers with another body", ops(
			call{0, 0, 10, create(tea), order(no1, cake, tradeunit.StateNotPay, "")},
		), porcupine.Illegal},
		{"two keys are independent", ops(
			call{0, 0, 10, create(tea), notpay},
			call{1, 5, 15, Input{Key: k2, Op: Create, Body: tea}, order(no2, tea, tradeunit.StateNotPay, "")},
			call{1, 20, 30, Input{Key: k2, Op: Lookup}, order(no2, tea, tradeunit.StateNotPay, "")},
		), porcupine.Ok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(Model(), tc.history, 0); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRetriesWithoutAnswer: a client retrying a create through an outage
// makes many calls without an answer; Partition keeps the earliest of each
// input, which decides the same, and the check stays fast.
func TestRetriesWithoutAnswer(t *testing.T) {
	var retries []call
	for i := range int64(40) {
		retries = append(retries, call{int(i % 4), 10 * i, Never, create(cake), unknown},
			call{int(i % 4), 10*i + 1, Never, pay(no1, "p1"), unknown})
	}
	legal := ops(append([]call{{5, 0, 5, create(tea), notpayOf(no1, tea)}}, retries...)...)
	illegal := ops(append(retries,
		call{5, 500, 510, create(tea), fails(tradeunit.CodeOutTradeNoUsed)},
		call{5, 520, 530, lookup(), fails(tradeunit.CodeNotFound)})...)
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{{"legal", legal, porcupine.Ok}, {"illegal", illegal, porcupine.Illegal}} {
		parts := Partition(tc.history)
		if len(parts) != 1 || len(parts[0]) != len(tc.history)-78 {
			t.Fatalf("%s: partitions %d, %d calls: want 1 of %d", tc.name, len(parts), len(parts[0]), len(tc.history)-78)
		}
		if got := porcupine.CheckOperationsTimeout(Model(), tc.history, 10*time.Second); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func notpayOf(no string, b Body) Output { return order(no, b, tradeunit.StateNotPay, "") }

// TestVisualize writes the visualization of an illegal history: what the
// end-to-end check writes when it fails.
func TestVisualize(t *testing.T) {
	h := ops(
		call{0, 0, 10, create(tea), order(no1, tea, tradeunit.StateNotPay, "")},
		call{1, 20, 30, lookup(), fails(tradeunit.CodeNotFound)},
	)
	res, info := porcupine.CheckOperationsVerbose(Model(), h, 0)
	if res != porcupine.Illegal {
		t.Fatalf("got %v, want %v", res, porcupine.Illegal)
	}
	if err := porcupine.VisualizePath(Model(), info, t.TempDir()+"/history.html"); err != nil {
		t.Fatal(err)
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		in   Input
		out  Output
		want string
	}{
		{create(tea), order(no1, tea, tradeunit.StateNotPay, ""), "create(tea/800) → …00000017 tea/800 NOTPAY"},
		{pay(no1, "p1"), unknown, "pay(…00000017, p1) → ?"},
		{closeOrder(no1), ok, "close(…00000017) → ok"},
		{lookup(), fails(tradeunit.CodeNotFound), "lookup() → RESOURCE_NOT_EXISTS"},
	} {
		if got := Describe(tc.in, tc.out); got != tc.want {
			t.Errorf("Describe(%v, %v) = %q, want %q", tc.in, tc.out, got, tc.want)
		}
	}
}
