package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"tradeunit"
)

// Op is one kind of operation in a run's mix.
type Op string

// The operations.
const (
	OpCreate   Op = "create"
	OpPay      Op = "pay"
	OpQuery    Op = "query"     // by order number
	OpQueryOut Op = "query-out" // by the merchant's out_trade_no
	OpRefund   Op = "refund"
	OpClose    Op = "close"
)

var allOps = []Op{OpCreate, OpPay, OpQuery, OpQueryOut, OpRefund, OpClose}

// Mix weighs the operations of a run.
type Mix map[Op]int

// ParseMix parses "create=4,pay=3,query=6,refund=1,close=1".
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("mix %q: want op=weight,... with integer weights", s)
		}
		op := Op(name)
		if !validOp(op) {
			return nil, fmt.Errorf("mix %q: unknown op %q (want create, pay, query, query-out, refund, close)", s, name)
		}
		m[op] = n
	}
	if m[OpCreate] == 0 {
		return nil, fmt.Errorf("mix %q: needs create > 0: the other operations work on created orders", s)
	}
	return m, nil
}

func validOp(op Op) bool {
	for _, o := range allOps {
		if o == op {
			return true
		}
	}
	return false
}

// Config configures a run.
type Config struct {
	Target      Target
	Concurrency int           // closed loop: clients; open loop: most requests in flight
	Rate        float64       // > 0: open loop at this many requests per second
	Duration    time.Duration // run length (or until Requests)
	Requests    int           // stop after this many requests if > 0
	Mix         Mix           // default create only
	Progress    io.Writer     // a live line per second; nil for none
	Verify      bool          // read every acknowledged order back at the end
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
	// After continues on the orders an earlier run over the same target
	// acknowledged, creating none: an operation that needs an order in a
	// state none is in ends its client instead of becoming a create, so a
	// run of one kind of operation measures that kind alone. Its Verify
	// checks every order of both runs.
	After *Result
}

// Result is the outcome of a run.
type Result struct {
	Mode          string           `json:"mode"` // closed or open
	Concurrency   int              `json:"concurrency"`
	Rate          float64          `json:"rate,omitempty"`
	Seconds       float64          `json:"seconds"`
	Requests      int64            `json:"requests"`
	Throughput    float64          `json:"throughput"` // requests/s
	Creates       int64            `json:"creates"`    // acknowledged
	CreatesPerSec float64          `json:"creates_per_sec"`
	CreateRetries int64            `json:"create_retries"` // extra unit attempts reported by the proxy
	Errors        int64            `json:"errors"`
	ErrorsByCode  map[string]int64 `json:"errors_by_code,omitempty"`
	Latency       Latency          `json:"latency"` // all operations
	PerOp         map[Op]*OpResult `json:"per_op"`
	Verification  *Verification    `json:"verification,omitempty"`
	hist          *hdrhistogram.Histogram
	ledger        *ledger
}

// OpResult is one operation's share of a run.
type OpResult struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Latency  Latency `json:"latency"`
	hist     *hdrhistogram.Histogram
}

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max())}
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 120_000_000, 3) } // 1 µs .. 120 s

// worker is one client's private state, merged at the end.
type worker struct {
	id       int
	rng      *rand.Rand
	hist     map[Op]*hdrhistogram.Histogram
	errs     map[Op]int64
	codes    map[string]int64
	n        map[Op]int64
	creates  int64
	retries  int64
	outSeq   int
	fallback int64
}

// Run runs a benchmark and, if asked, verifies every acknowledged order.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Target == nil {
		return nil, fmt.Errorf("bench: no target")
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 16
	}
	if cfg.Duration <= 0 && cfg.Requests <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Mix == nil {
		cfg.Mix = Mix{OpCreate: 1}
	}
	l := &ledger{}
	if cfg.After != nil {
		l = cfg.After.ledger
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	runID := strconv.FormatInt(time.Now().UnixNano()/1e6%1e10, 36)
	var (
		ops     atomic.Int64
		errs    atomic.Int64
		started = time.Now()
		workers = make([]*worker, cfg.Concurrency)
	)
	runCtx := ctx
	var cancel context.CancelFunc
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	ended := func() bool { return runEnded(runCtx) }
	// claim reserves one request of a Requests-bounded run.
	var claimed atomic.Int64
	claim := func() bool { return cfg.Requests <= 0 || claimed.Add(1) <= int64(cfg.Requests) }

	var due chan time.Time // open loop: when each request was due
	if cfg.Rate > 0 {
		due = make(chan time.Time, 65536)
		go func() {
			defer close(due)
			interval := time.Duration(float64(time.Second) / cfg.Rate)
			for i := 0; ; i++ {
				at := started.Add(time.Duration(i) * interval)
				if d := time.Until(at); d > 0 {
					select {
					case <-time.After(d):
					case <-runCtx.Done():
						return
					}
				}
				if !claim() {
					return
				}
				select {
				case due <- at:
				case <-runCtx.Done():
					return
				}
			}
		}()
	}

	stopProgress := startProgress(cfg.Progress, started, &ops, &errs, l)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))),
			hist: map[Op]*hdrhistogram.Histogram{}, errs: map[Op]int64{}, codes: map[string]int64{}, n: map[Op]int64{}}
		for _, op := range allOps {
			w.hist[op] = newHist()
		}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var start time.Time
				if due != nil {
					at, ok := <-due
					if !ok {
						return
					}
					start = at
				} else {
					if ended() || !claim() {
						return
					}
					start = time.Now()
				}
				op, err := w.do(runCtx, cfg, runID, l)
				if errors.Is(err, errNoOrder) {
					return // After: this client's kind of order has run out
				}
				if err != nil && ended() {
					return // the run ended under this request: not the system's error
				}
				lat := time.Since(start).Microseconds()
				w.hist[op].RecordValue(max(lat, 1))
				w.n[op]++
				ops.Add(1)
				if err != nil {
					w.errs[op]++
					w.codes[string(tradeunit.ErrorCode(err))]++
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	stopProgress()

	res := merge(workers, cfg, elapsed)
	res.ledger = l
	if cfg.Verify {
		v := res.Verify(ctx, cfg.Target)
		res.Verification = &v
	}
	return res, nil
}

// runEnded reports whether a run of ctx is over: ctx has ended, or its
// deadline has passed though its timer has not fired yet. A gRPC server
// enforces the deadline a call carries with a timer of its own, so a call's
// DEADLINE_EXCEEDED can come back first, and then every new call's at once:
// the end of the run, not the system's errors.
func runEnded(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// Verify reads every order the run was told was created back from t and
// compares it with what the run last saw acknowledged.
func (r *Result) Verify(ctx context.Context, t Target) Verification {
	return r.ledger.verify(ctx, t, min(r.Concurrency, 32))
}

// errNoOrder ends a client of a run After another: no order is in the state
// its operation needs.
var errNoOrder = errors.New("no order left for this operation")

// do runs one operation of the mix. An operation that needs an order in a
// state none is in becomes a create (After: ends the client).
func (w *worker) do(ctx context.Context, cfg Config, runID string, l *ledger) (Op, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	op := w.pick(cfg.Mix)
	var e *entry
	switch op {
	case OpPay, OpClose:
		e = l.take(false)
	case OpRefund:
		e = l.take(true)
	case OpQuery:
		if e := l.any(); e != nil {
			_, _, err := cfg.Target.Query(ctx, e.no)
			return op, err
		}
	case OpQueryOut:
		if e := l.any(); e != nil {
			no, err := cfg.Target.QueryByOutTradeNo(ctx, e.out)
			if err == nil && no != e.no {
				err = fmt.Errorf("out_trade_no %s: got order %s, created as %s", e.out, no, e.no)
			}
			return op, err
		}
	}
	if op != OpCreate && e == nil {
		if cfg.After != nil {
			return op, errNoOrder
		}
		op = OpCreate
		w.fallback++
	}
	if op == OpCreate {
		w.outSeq++
		out := fmt.Sprintf("b%s-%d-%d", runID, w.id, w.outSeq)
		total := int64(100 + w.rng.IntN(10000))
		no, attempts, err := cfg.Target.Create(ctx, out, total)
		w.retries += int64(max(attempts-1, 0))
		if err == nil {
			w.creates++
			l.add(&entry{no: no, out: out, total: total, state: tradeunit.StateNotPay})
		}
		return op, err
	}
	defer l.give(e)
	var err error
	switch op {
	case OpPay:
		if err = cfg.Target.Pay(ctx, e.no, "pay-"+e.no[10:]); err == nil {
			e.state = tradeunit.StateSuccess
		}
	case OpClose:
		if err = cfg.Target.Close(ctx, e.no); err == nil {
			e.state = tradeunit.StateClosed
		}
	case OpRefund:
		amount := min(e.total-e.refunded, e.total/4+1)
		e.refunds++
		if err = cfg.Target.Refund(ctx, e.no, fmt.Sprintf("r%s-%d", e.no[10:], e.refunds), amount); err == nil {
			e.state, e.refunded = tradeunit.StateRefund, e.refunded+amount
		}
	}
	if code := tradeunit.ErrorCode(err); code == codeTransport || code == tradeunit.CodeInternal || code == tradeunit.CodeUnitUnavailable {
		e.uncertain = true // the change may or may not have happened
	}
	return op, err
}

func (w *worker) pick(m Mix) Op {
	total := 0
	for _, op := range allOps {
		total += m[op]
	}
	r := w.rng.IntN(total)
	for _, op := range allOps {
		if r < m[op] {
			return op
		}
		r -= m[op]
	}
	return OpCreate
}

func merge(workers []*worker, cfg Config, elapsed time.Duration) *Result {
	res := &Result{Mode: "closed", Concurrency: cfg.Concurrency, Rate: cfg.Rate, Seconds: elapsed.Seconds(),
		ErrorsByCode: map[string]int64{}, PerOp: map[Op]*OpResult{}, hist: newHist()}
	if cfg.Rate > 0 {
		res.Mode = "open"
	}
	for _, op := range allOps {
		res.PerOp[op] = &OpResult{hist: newHist()}
	}
	for _, w := range workers {
		for _, op := range allOps {
			r := res.PerOp[op]
			r.hist.Merge(w.hist[op])
			r.Requests += w.n[op]
			r.Errors += w.errs[op]
		}
		for c, n := range w.codes {
			res.ErrorsByCode[c] += n
		}
		res.Creates += w.creates
		res.CreateRetries += w.retries
	}
	for _, op := range allOps {
		r := res.PerOp[op]
		if r.Requests == 0 {
			delete(res.PerOp, op)
			continue
		}
		r.Latency = summarize(r.hist)
		res.hist.Merge(r.hist)
		res.Requests += r.Requests
		res.Errors += r.Errors
	}
	res.Latency = summarize(res.hist)
	res.Throughput = float64(res.Requests) / elapsed.Seconds()
	res.CreatesPerSec = float64(res.Creates) / elapsed.Seconds()
	return res
}

// startProgress prints a live line each second until the returned func is called.
func startProgress(w io.Writer, started time.Time, ops, errs *atomic.Int64, l *ledger) func() {
	if w == nil {
		return func() {}
	}
	// On a terminal the line is redrawn in place; in a log, one line a second.
	lead, tail := "", "\n"
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			lead, tail = "\r", ""
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last int64
		for {
			select {
			case <-done:
				if lead != "" {
					fmt.Fprintln(w)
				}
				return
			case <-tick.C:
				n := ops.Load()
				fmt.Fprintf(w, "%s%5.0fs  %9d requests  %7d/s  %6d errors  %8d orders %s",
					lead, time.Since(started).Seconds(), n, n-last, errs.Load(), l.len(), tail)
				last = n
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// Codes returns the error codes of r in a stable order.
func (r *Result) Codes() []string {
	var out []string
	for c := range r.ErrorsByCode {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
