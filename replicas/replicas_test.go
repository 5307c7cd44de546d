package replicas

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"tradeunit"
)

// replica is one replica as a test scripts it.
type replica struct {
	undialable bool
	down       bool  // known down: skipped on the first pass
	answer     error // what a call returns: nil, an answer, or a NoAnswer
	calls      int
	reconnects int
	silenced   int
}

func (r *replica) Down() bool { return r.down }
func (r *replica) Reconnect() { r.reconnects++ }

// Silent counts; TestSilentReplicaIsTriedLast's replicas also go down.
func (r *replica) Silent() { r.silenced++ }

func TestCall(t *testing.T) {
	noAnswer := tradeunit.NoAnswer("test", "timed out", context.DeadlineExceeded)
	refused := tradeunit.Unavailable("test", "nothing written", nil)
	used := tradeunit.Errorf(tradeunit.CodeOutTradeNoUsed, "used")
	cases := []struct {
		name     string
		replicas []*replica
		// want: the error's code ("" for success), whether it is
		// ErrNoReplica, whether the outcome is unknown, whether sent.
		wantCode    tradeunit.Code
		wantNone    bool
		wantUnknown bool
		wantSent    bool
		wantCalls   []int
	}{
		{name: "one answers", replicas: []*replica{{}}, wantSent: true, wantCalls: []int{1}},
		{name: "a refusal is an answer: no other replica is called",
			replicas: []*replica{{answer: refused}, {answer: refused}}, wantCode: tradeunit.CodeUnitUnavailable,
			wantSent: true, wantCalls: []int{1, 0}},
		{name: "no answer moves to the next replica",
			replicas: []*replica{{answer: noAnswer}, {}}, wantSent: true, wantCalls: []int{1, 1}},
		{name: "none answers: the outcome is unknown",
			replicas: []*replica{{answer: noAnswer}, {answer: noAnswer}}, wantCode: tradeunit.CodeUnitUnavailable,
			wantNone: true, wantUnknown: true, wantSent: true, wantCalls: []int{1, 1}},
		{name: "a sent call that got no answer stays unknown when the next cannot be dialed",
			replicas: []*replica{{answer: noAnswer}, {undialable: true}}, wantCode: tradeunit.CodeUnitUnavailable,
			wantNone: true, wantUnknown: true, wantSent: true, wantCalls: []int{1, 0}},
		{name: "a refusal after a sent call that got no answer leaves the outcome unknown",
			replicas: []*replica{{answer: noAnswer}, {answer: refused}}, wantCode: tradeunit.CodeUnitUnavailable,
			wantUnknown: true, wantSent: true, wantCalls: []int{1, 1}},
		{name: "an answer about the data after a sent call that got no answer stands",
			replicas: []*replica{{answer: noAnswer}, {answer: used}}, wantCode: tradeunit.CodeOutTradeNoUsed,
			wantSent: true, wantCalls: []int{1, 1}},
		{name: "nothing dialed: nothing sent, the outcome is known",
			replicas: []*replica{{undialable: true}, {undialable: true}}, wantCode: tradeunit.CodeUnitUnavailable,
			wantNone: true, wantCalls: []int{0, 0}},
		{name: "a replica known down is skipped while another is live",
			replicas: []*replica{{down: true}, {}}, wantSent: true, wantCalls: []int{0, 1}},
		{name: "all known down: the second pass reconnects and calls",
			replicas: []*replica{{down: true}, {down: true}}, wantSent: true, wantCalls: []int{1, 0}},
		{name: "no replica", wantCode: tradeunit.CodeUnitUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addrs := make([]string, len(tc.replicas))
			byAddr := map[string]*replica{}
			for i, r := range tc.replicas {
				addrs[i] = fmt.Sprint("replica-", i)
				byAddr[addrs[i]] = r
			}
			var first string
			dial := func(addr string) (*replica, error) {
				if first == "" {
					first = addr
				}
				if r := byAddr[addr]; !r.undialable {
					return r, nil
				}
				return nil, errors.New("dial " + addr + ": refused")
			}
			// The walk starts at a random replica: try until it starts at the
			// first, so that the calls each replica gets are known.
			for range 200 {
				for _, r := range tc.replicas {
					r.calls, r.reconnects = 0, 0
				}
				first = ""
				v, sent, err := Call(context.Background(), "unit 1", addrs, time.Second, dial,
					func(ctx context.Context, r *replica) (string, error) {
						r.calls++
						if r.answer != nil {
							return "", r.answer
						}
						return "ok", nil
					})
				if len(addrs) > 0 && first != addrs[0] {
					continue // started elsewhere
				}
				if got := tradeunit.ErrorCode(err); got != tc.wantCode {
					t.Fatalf("code = %q (%v), want %q", got, err, tc.wantCode)
				}
				if tc.wantCode == "" && v != "ok" {
					t.Fatalf("value = %q", v)
				}
				if got := errors.Is(err, ErrNoReplica); got != tc.wantNone {
					t.Fatalf("ErrNoReplica = %v (%v), want %v", got, err, tc.wantNone)
				}
				if got := tradeunit.OutcomeUnknown(err); got != tc.wantUnknown {
					t.Fatalf("outcome unknown = %v (%v), want %v", got, err, tc.wantUnknown)
				}
				if sent != tc.wantSent {
					t.Fatalf("sent = %v, want %v", sent, tc.wantSent)
				}
				for i, r := range tc.replicas {
					if r.calls != tc.wantCalls[i] {
						t.Fatalf("replica %d called %d times, want %d", i, r.calls, tc.wantCalls[i])
					}
				}
				return
			}
			t.Fatal("the walk never started at the first replica")
		})
	}
}

// silentReplica goes down when told it gave no answer, as rpc.Client does
// for a moment.
type silentReplica struct{ replica }

func (r *silentReplica) Silent() { r.silenced++; r.down = true }

// TestSilentReplicaIsTriedLast: a replica whose call got no answer within
// the call's timeout is told so (Silent) and then skipped while another
// answers; one whose caller gave up is not: that says nothing of it.
func TestSilentReplicaIsTriedLast(t *testing.T) {
	noAnswer := tradeunit.NoAnswer("test", "timed out", context.DeadlineExceeded)
	cut, live := &silentReplica{replica{answer: noAnswer}}, &silentReplica{}
	byAddr := map[string]*silentReplica{"cut": cut, "live": live}
	dial := func(addr string) (*silentReplica, error) { return byAddr[addr], nil }
	call := func(ctx context.Context, r *silentReplica) (string, error) {
		r.calls++
		if r.answer != nil {
			return "", r.answer
		}
		return "ok", nil
	}
	for i := 0; i < 50; i++ {
		if _, _, err := Call(context.Background(), "unit 1", []string{"cut", "live"}, time.Second, dial, call); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if cut.calls != 1 || cut.silenced != 1 || live.calls != 50 {
		t.Fatalf("the silent replica got %d calls (silenced %d), the live one %d; want 1, 1, 50", cut.calls, cut.silenced, live.calls)
	}

	gaveUp := &silentReplica{}
	ctx, cancel := context.WithCancel(context.Background())
	_, _, err := Call(ctx, "unit 1", []string{"x"}, time.Second, func(string) (*silentReplica, error) { return gaveUp, nil },
		func(context.Context, *silentReplica) (string, error) {
			cancel()
			return "", tradeunit.NoAnswer("test", "canceled", context.Canceled)
		})
	if err == nil || gaveUp.silenced != 0 {
		t.Fatalf("a caller giving up: err %v, replica silenced %d times, want an error and 0", err, gaveUp.silenced)
	}
}
