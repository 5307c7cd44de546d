package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"tradeunit"
	"tradeunit/internal/ordermodel"
)

// The history side of TestLinearizable: clients calling the public API on
// a few merchant keys at once, each call recorded with its call and return
// times on one monotonic clock and its outcome as ordermodel reads it.

// linHistory is the record of every call, and the numbers the answers gave.
type linHistory struct {
	start time.Time

	mu    sync.Mutex
	ops   []porcupine.Operation
	known map[ordermodel.Key]string // the order number an answer gave for the key
	keys  []ordermodel.Key          // every key called, in first-call order
	count linCounts
	errs  []string
}

// linCounts are the figures of a run.
type linCounts struct {
	ops, unknown  int // recorded calls; of them, without a definite answer
	status503     int
	codes503      map[tradeunit.Code]int
	status500     int
	transport     int // calls the proxy did not answer at all
	droppedReads  int // reads without an answer: they say nothing
	unknownByOp   map[ordermodel.Op]int
	definiteCodes map[tradeunit.Code]int
}

func newLinHistory() *linHistory {
	return &linHistory{start: time.Now(), known: map[ordermodel.Key]string{},
		count: linCounts{codes503: map[tradeunit.Code]int{}, unknownByOp: map[ordermodel.Op]int{}, definiteCodes: map[tradeunit.Code]int{}}}
}

// now is the time since the run started on the monotonic clock.
func (h *linHistory) now() int64 { return int64(time.Since(h.start)) }

// orderNo returns the number an answer gave for k, if any.
func (h *linHistory) orderNo(k ordermodel.Key) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.known[k]
}

// do makes the call in on api and records it; it reports whether the call
// had a definite answer.
func (h *linHistory) do(client int, api *client, in ordermodel.Input) bool {
	h.mu.Lock()
	if _, ok := h.known[in.Key]; !ok {
		h.known[in.Key] = ""
		h.keys = append(h.keys, in.Key)
	}
	h.mu.Unlock()
	call := h.now()
	r, err := api.try(linRequest(in))
	ret := h.now()
	out, problem := linOutcome(in, r, err)

	// The return time is taken before the number is published, so that a
	// call made with it starts after the call that learnt it returned.
	h.mu.Lock()
	defer h.mu.Unlock()
	if problem != "" {
		h.errs = append(h.errs, problem)
	}
	switch {
	case err != nil:
		h.count.transport++
	case r.status == 503:
		h.count.status503++
		h.count.codes503[tradeunit.Code(r.code())]++
	case r.status >= 500:
		h.count.status500++
		h.errs = append(h.errs, fmt.Sprintf("%s: %d %v", ordermodel.Describe(in, out), r.status, r.body))
	}
	if out.Unknown {
		if in.Op == ordermodel.Lookup || in.Op == ordermodel.Get {
			h.count.droppedReads++
			return false
		}
		h.count.unknown++
		h.count.unknownByOp[in.Op]++
		ret = ordermodel.Never
	} else if out.Code != "" {
		h.count.definiteCodes[out.Code]++
	}
	h.count.ops++
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	if no := out.Order.OrderNo; no != "" && h.known[in.Key] == "" {
		h.known[in.Key] = no
	}
	return !out.Unknown
}

// linRequest is the API request of a call.
func linRequest(in ordermodel.Input) (method, path string, body any) {
	switch in.Op {
	case ordermodel.Create:
		return "POST", "/v3/orders", map[string]any{"out_trade_no": in.Key.OutTradeNo, "description": in.Body.Description,
			"amount": map[string]any{"total": in.Body.Total, "currency": "CNY"}}
	case ordermodel.Pay:
		return "POST", "/v3/orders/" + in.OrderNo + "/pay", map[string]any{"payment_id": in.PaymentID}
	case ordermodel.Close:
		return "POST", "/v3/orders/" + in.OrderNo + "/close", nil
	case ordermodel.Lookup:
		return "GET", "/v3/orders/out-trade-no/" + url.PathEscape(in.Key.OutTradeNo), nil
	}
	return "GET", "/v3/orders/" + in.OrderNo, nil
}

// linOutcome reads an answer as the model does: a 5xx or no answer at all
// is unknown, 200 an order, 204 success, anything else a definite refusal.
// problem names an answer about another key.
func linOutcome(in ordermodel.Input, r response, err error) (_ ordermodel.Output, problem string) {
	switch {
	case err != nil || r.status >= 500:
		return ordermodel.Output{Unknown: true}, ""
	case r.status == 204:
		return ordermodel.Output{}, ""
	case r.status != 200:
		return ordermodel.Output{Code: tradeunit.Code(r.code())}, ""
	}
	amount, _ := r.body["amount"].(map[string]any)
	total, _ := amount["total"].(float64)
	o := ordermodel.Order{OrderNo: r.str("order_no"), Body: ordermodel.Body{Description: r.str("description"), Total: int64(total)},
		State: tradeunit.TradeState(r.str("trade_state")), PaymentID: r.str("payment_id")}
	if r.str("mchid") != in.Key.Mchid || r.str("out_trade_no") != in.Key.OutTradeNo {
		problem = fmt.Sprintf("%s: an order of %s/%s", ordermodel.Describe(in, ordermodel.Output{Order: o}), r.str("mchid"), r.str("out_trade_no"))
	}
	return ordermodel.Output{Order: o}, problem
}

// linKeys hands out keys: slots keys are in use at once, each for perKey
// calls, then replaced by a new one, so that many keys live their whole
// life (create, pay or close, repeats) under the failures, and each key's
// history stays short to check.
type linKeys struct {
	run    string
	mchids []string
	perKey int64
	calls  []atomic.Int64 // per slot
}

func newLinKeys(mchids []string, slots int, perKey int64) *linKeys {
	return &linKeys{run: fmt.Sprintf("lin%d", time.Now().UnixNano()%1e9), mchids: mchids, perKey: perKey,
		calls: make([]atomic.Int64, slots)}
}

// next returns the key of a call on a random slot, and its merchant's index.
func (k *linKeys) next(rng *rand.Rand) (ordermodel.Key, int) {
	slot := rng.IntN(len(k.calls))
	gen := (k.calls[slot].Add(1) - 1) / k.perKey
	m := slot % len(k.mchids)
	return ordermodel.Key{Mchid: k.mchids[m], OutTradeNo: fmt.Sprintf("%s-%d-%d", k.run, slot, gen)}, m
}

// The two bodies a key's creates use: mostly the first, so that repeats
// return the key's order; sometimes the other, a conflict (or the key's
// order, if it won).
var linBodies = [2]ordermodel.Body{{Description: "linearizable tea", Total: 800}, {Description: "linearizable cake", Total: 2500}}

// linCall picks a random call on key, whose order's number (if an answer
// gave one) is no.
func linCall(rng *rand.Rand, key ordermodel.Key, no string) ordermodel.Input {
	in := ordermodel.Input{Key: key, Op: ordermodel.Create, Body: linBodies[0]}
	if rng.IntN(100) < 15 {
		in.Body = linBodies[1]
	}
	n := rng.IntN(100)
	switch {
	case no == "" && n < 35, no != "" && n < 20:
		in.Op, in.Body = ordermodel.Lookup, ordermodel.Body{}
	case no == "", n < 45:
		// a create
	case n < 60:
		in.Op, in.Body, in.OrderNo = ordermodel.Get, ordermodel.Body{}, no
	case n < 85:
		in.Op, in.Body, in.OrderNo = ordermodel.Pay, ordermodel.Body{}, no
		in.PaymentID = fmt.Sprintf("%s-p%d", key.OutTradeNo, 1+rng.IntN(2))
	default:
		in.Op, in.Body, in.OrderNo = ordermodel.Close, ordermodel.Body{}, no
	}
	return in
}
