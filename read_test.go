package tradeunit

import (
	"context"
	"testing"
)

func TestConsistency(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Consistency
		code Code
	}{{"", RealTime, ""}, {"realtime", RealTime, ""}, {"strong", RealTime, ""}, {"eventual", Eventual, ""}, {"stale", "", CodeParamError}} {
		got, err := ParseConsistency(tt.in)
		if got != tt.want || ErrorCode(err) != tt.code {
			t.Errorf("ParseConsistency(%q): got %q, %v; want %q, code %q", tt.in, got, err, tt.want, tt.code)
		}
	}
	ctx := context.Background()
	if ConsistencyFrom(ctx) != RealTime || WithConsistency(ctx, RealTime) != ctx {
		t.Error("a context without a consistency must read real-time, and setting real-time must not change it")
	}
	eventual := WithConsistency(ctx, Eventual)
	if ConsistencyFrom(eventual) != Eventual || ConsistencyFrom(WithConsistency(eventual, "")) != RealTime {
		t.Error("WithConsistency must set the consistency, and \"\" must reset it to real-time")
	}
}
