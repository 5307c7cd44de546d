// Package ordermodel is the sequential specification of one merchant key's
// order, as the public API promises it, for checking histories of concurrent
// calls for linearizability with porcupine
// (github.com/anishathalye/porcupine).
//
// A key (mchid, out_trade_no) has no order, or exactly one, for ever: a create
// makes it (or finds it: the same body returns it again, another body is
// OUT_TRADE_NO_USED), a lookup by out_trade_no returns it or 404 while there
// is none, and pay, close and a query by order number act on it by the state
// machine of tradeunit's order.go (NOTPAY → SUCCESS by one payment id, NOTPAY
// → CLOSED; both idempotent; ORDER_PAID, ORDER_CLOSED otherwise).
//
// A call without a definite answer (a 503, a 500, a transport error) may or
// may not have taken effect: record it with Output.Unknown and a Return of
// Never, so that the checker may place its effect anywhere after its call,
// including after every other call (which is the same as never).
package ordermodel

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/anishathalye/porcupine"

	"tradeunit"
)

// Never is the Return time of a call with no definite answer: it may take
// effect at any time after its call.
const Never int64 = math.MaxInt64

// Key is a merchant key, the unit of the history's partition.
type Key struct {
	Mchid      string
	OutTradeNo string
}

// Op names an operation of the API.
type Op uint8

// The operations.
const (
	Create Op = iota + 1 // POST /v3/orders
	Pay                  // POST /v3/orders/{order_no}/pay
	Close                // POST /v3/orders/{order_no}/close
	Lookup               // GET /v3/orders/out-trade-no/{out_trade_no}
	Get                  // GET /v3/orders/{order_no}
)

func (o Op) String() string {
	switch o {
	case Create:
		return "create"
	case Pay:
		return "pay"
	case Close:
		return "close"
	case Lookup:
		return "lookup"
	case Get:
		return "get"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Body is what a create asks for: the fields whose equality makes a create a
// repeat rather than a conflict.
type Body struct {
	Description string
	Total       int64
}

// Input is one call.
type Input struct {
	Key       Key
	Op        Op
	Body      Body   // Create
	OrderNo   string // Pay, Close, Get: a number an earlier answer gave for Key
	PaymentID string // Pay
}

// Order is what an answer said of an order.
type Order struct {
	OrderNo   string
	Body      Body
	State     tradeunit.TradeState
	PaymentID string
}

// Output is how one call ended.
type Output struct {
	// Unknown marks a call without a definite answer; its Return must be
	// Never.
	Unknown bool
	// Code is a definite refusal's error code; "" for success.
	Code tradeunit.Code
	// Order is the order a successful Create, Pay, Lookup or Get
	// returned (Close returns none).
	Order Order
}

// State is one key's state: no order yet, or its one order. While the order
// is known only from a create with no answer, its number is "" and the
// first answer that names it binds it.
type State struct {
	Exists bool
	Order  Order
}

// Step reports whether a call could have returned out in state s, and the
// state after it.
func Step(s State, in Input, out Output) (bool, State) {
	if out.Unknown {
		return true, effect(s, in)
	}
	switch in.Op {
	case Create:
		switch {
		case !s.Exists:
			// Every refusal of a create needs an order: only success.
			o := out.Order
			if out.Code != "" || o.OrderNo == "" || o.Body != in.Body || o.State != tradeunit.StateNotPay || o.PaymentID != "" {
				return false, s
			}
			return true, State{Exists: true, Order: o}
		case s.Order.Body != in.Body:
			return out.Code == tradeunit.CodeOutTradeNoUsed, s
		case out.Code != "":
			return false, s
		}
		return s.matches(out.Order)
	case Lookup:
		switch {
		case !s.Exists:
			return out.Code == tradeunit.CodeNotFound, s
		case out.Code != "":
			return false, s
		}
		return s.matches(out.Order)
	}
	// Pay, Close and Get name a number that an earlier answer gave: the
	// key's one order.
	s, ok := s.bind(in.OrderNo)
	if !ok {
		return false, s
	}
	paid := s.Order.State == tradeunit.StateSuccess
	switch in.Op {
	case Get:
		if out.Code != "" {
			return false, s
		}
		return s.matches(out.Order)
	case Pay:
		switch {
		case s.Order.State == tradeunit.StateNotPay:
			if out.Code != "" {
				return false, s
			}
			s.Order.State, s.Order.PaymentID = tradeunit.StateSuccess, in.PaymentID
			return s.matches(out.Order)
		case paid && s.Order.PaymentID == in.PaymentID:
			if out.Code != "" {
				return false, s
			}
			return s.matches(out.Order)
		case paid:
			return out.Code == tradeunit.CodeOrderPaid, s
		case s.Order.State == tradeunit.StateClosed:
			return out.Code == tradeunit.CodeOrderClosed, s
		}
	case Close:
		switch s.Order.State {
		case tradeunit.StateNotPay, tradeunit.StateClosed:
			s.Order.State = tradeunit.StateClosed
			return out.Code == "", s
		case tradeunit.StateSuccess:
			return out.Code == tradeunit.CodeOrderPaid, s
		}
	}
	return false, s
}

// effect is the state after in took effect, for a call without an answer:
// what it would have done had it succeeded.
func effect(s State, in Input) State {
	switch in.Op {
	case Create:
		if !s.Exists {
			return State{Exists: true, Order: Order{Body: in.Body, State: tradeunit.StateNotPay}}
		}
	case Pay, Close:
		b, ok := s.bind(in.OrderNo)
		if !ok || b.Order.State != tradeunit.StateNotPay {
			return s
		}
		if in.Op == Pay {
			b.Order.State, b.Order.PaymentID = tradeunit.StateSuccess, in.PaymentID
		} else {
			b.Order.State = tradeunit.StateClosed
		}
		return b
	}
	return s
}

// bind returns s with its order's number set to no if it was unknown, and
// whether no is the number of s's order.
func (s State) bind(no string) (State, bool) {
	if !s.Exists || no == "" {
		return s, false
	}
	if s.Order.OrderNo == "" {
		s.Order.OrderNo = no
	}
	return s, s.Order.OrderNo == no
}

// matches reports whether o is s's order as it is (binding its number), and
// returns s with its number bound.
func (s State) matches(o Order) (bool, State) {
	b, ok := s.bind(o.OrderNo)
	return ok && b.Order == o, b
}

// Partition splits a history by key: a history is linearizable if and only
// if each key's history is. It also leaves out every call without an answer
// that an earlier such call of the same input subsumes: its effect, applied
// if legal, is idempotent and no call undoes it, so whenever the later one
// could have taken effect the earlier one could have too (and a retried
// call without an answer, as clients do in an outage, would otherwise make
// the check exponential in the retries).
func Partition(history []porcupine.Operation) [][]porcupine.Operation {
	first := map[Input]int{} // the earliest call without an answer, by input
	for i, op := range history {
		in := op.Input.(Input)
		if j, ok := first[in]; op.Output.(Output).Unknown && (!ok || op.Call < history[j].Call) {
			first[in] = i
		}
	}
	var keys []Key
	byKey := map[Key][]porcupine.Operation{}
	for i, op := range history {
		in := op.Input.(Input)
		if op.Output.(Output).Unknown && first[in] != i {
			continue
		}
		if _, ok := byKey[in.Key]; !ok {
			keys = append(keys, in.Key)
		}
		byKey[in.Key] = append(byKey[in.Key], op)
	}
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

// Model returns the porcupine model of a history of calls whose inputs are
// Input and outputs Output, partitioned by key.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: Partition,
		Init:      func() any { return State{} },
		Step: func(s, in, out any) (bool, any) {
			return Step(s.(State), in.(Input), out.(Output))
		},
		Equal: func(a, b any) bool { return a.(State) == b.(State) },
		Hash:  func(s any) uint64 { return hash(s.(State)) },
		DescribeOperation: func(in, out any) string {
			return Describe(in.(Input), out.(Output))
		},
		DescribeState: func(s any) string { return s.(State).String() },
	}
}

func hash(s State) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%t\x00%s\x00%s\x00%d\x00%s\x00%s", s.Exists, s.Order.OrderNo, s.Order.Body.Description,
		s.Order.Body.Total, s.Order.State, s.Order.PaymentID)
	return h.Sum64()
}

// Describe writes a call as the visualization shows it, e.g.
// "pay(…0017, p1) → SUCCESS".
func Describe(in Input, out Output) string {
	var call string
	switch in.Op {
	case Create:
		call = fmt.Sprintf("create(%s/%d)", in.Body.Description, in.Body.Total)
	case Pay:
		call = fmt.Sprintf("pay(%s, %s)", short(in.OrderNo), in.PaymentID)
	case Close, Get:
		call = fmt.Sprintf("%s(%s)", in.Op, short(in.OrderNo))
	default:
		call = in.Op.String() + "()"
	}
	switch {
	case out.Unknown:
		return call + " → ?"
	case out.Code != "":
		return call + " → " + string(out.Code)
	case in.Op == Close:
		return call + " → ok"
	}
	return call + " → " + out.Order.String()
}

func (o Order) String() string {
	s := fmt.Sprintf("%s %s/%d %s", short(o.OrderNo), o.Body.Description, o.Body.Total, o.State)
	if o.PaymentID != "" {
		s += " by " + o.PaymentID
	}
	return s
}

func (s State) String() string {
	if !s.Exists {
		return "no order"
	}
	return s.Order.String()
}

// short abbreviates an order number to its last digits; "?" for unknown.
func short(no string) string {
	switch {
	case no == "":
		return "?"
	case len(no) > 8:
		return "…" + no[len(no)-8:]
	}
	return no
}
