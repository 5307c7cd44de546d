package health

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"tradeunit"
)

// Target is one unit to probe.
type Target struct {
	Unit  tradeunit.UnitID
	Addrs []string // its logic-service replicas
	// Order is true for a unit that takes new orders: the probe creates,
	// queries and closes an order. Other units (warm, cold, draining) get a
	// read: they serve their orders but must not take new ones.
	Order bool
	// Timeout bounds each call of the probe.
	Timeout time.Duration
}

// ReplicaResult is the outcome of probing one replica.
type ReplicaResult struct {
	Addr    string
	Err     error         // nil if the probe passed
	Latency time.Duration // mean time of one call of the probe
}

// Prober runs one probe of a unit against each of its replicas.
type Prober interface {
	Probe(ctx context.Context, t Target) []ReplicaResult
}

// RPCProber probes units through their normal path (their logic services'
// connections, gRPC in production), as the probe
// merchant (tradeunit.ProbeMchid): a real order, written to and read from the
// unit's storage, so a unit whose storage is read-only, full or slow fails
// or shows its latency.
type RPCProber struct {
	Dialer tradeunit.LogicDialer
}

// Probe probes every replica of t at once.
func (p *RPCProber) Probe(ctx context.Context, t Target) []ReplicaResult {
	out := make([]ReplicaResult, len(t.Addrs))
	var wg sync.WaitGroup
	for i, addr := range t.Addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = p.probeReplica(ctx, t, addr)
		}()
	}
	wg.Wait()
	return out
}

func (p *RPCProber) probeReplica(ctx context.Context, t Target, addr string) ReplicaResult {
	res := ReplicaResult{Addr: addr}
	c, err := p.Dialer.Conn(addr)
	if err != nil {
		res.Err = err
		return res
	}
	if c.Down() {
		c.Reconnect() // a replica that came back is seen at this probe, not after gRPC's back-off
	}
	start := time.Now()
	calls := 0
	step := func(what string, call func(ctx context.Context) error) bool {
		if res.Err != nil {
			return false
		}
		cctx, cancel := context.WithTimeout(ctx, t.Timeout)
		defer cancel()
		calls++
		if err := call(cctx); err != nil {
			res.Err = fmt.Errorf("%s: %w", what, err)
			return false
		}
		return true
	}
	if t.Order {
		var o *tradeunit.Order
		step("create", func(ctx context.Context) (err error) {
			o, err = c.CreateOrder(ctx, tradeunit.CreateOrderRequest{
				Mchid: tradeunit.ProbeMchid, OutTradeNo: probeOutTradeNo(t.Unit),
				Description: "health probe", Amount: tradeunit.Amount{Total: 1, Currency: tradeunit.DefaultCurrency},
			})
			return err
		})
		step("query", func(ctx context.Context) error {
			got, err := c.Order(ctx, tradeunit.ProbeMchid, o.OrderNo)
			if err == nil && got.OrderNo != o.OrderNo {
				err = fmt.Errorf("asked for order %s, got %s", o.OrderNo, got.OrderNo)
			}
			return err
		})
		step("close", func(ctx context.Context) error {
			_, err := c.CloseOrder(ctx, tradeunit.ProbeMchid, o.OrderNo)
			return err
		})
	} else {
		step("read", func(ctx context.Context) error {
			_, err := c.OrderByOutTradeNo(ctx, tradeunit.ProbeMchid, "probe-read")
			if tradeunit.IsCode(err, tradeunit.CodeNotFound) {
				return nil // the unit answered from its storage
			}
			if err == nil {
				return nil
			}
			return err
		})
	}
	res.Latency = time.Since(start) / time.Duration(max(calls, 1))
	return res
}

// probeRun makes probe order numbers unique across checkers and restarts.
var probeRun = func() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// probeOutTradeNo returns a fresh merchant order number for a probe of
// unit u: "probe-U-RUN-NANOS", at most 32 characters.
func probeOutTradeNo(u tradeunit.UnitID) string {
	return "probe-" + strconv.FormatUint(uint64(u), 36) + "-" + probeRun + "-" +
		strconv.FormatInt(time.Now().UnixNano(), 36)
}
