package relay

import (
	"reflect"
	"testing"
	"time"

	"tradeunit"
)

func evs(ids ...int64) []tradeunit.Event {
	out := make([]tradeunit.Event, len(ids))
	for i, id := range ids {
		out[i] = tradeunit.Event{ID: id}
	}
	return out
}

func ids(events []tradeunit.Event) []int64 {
	out := []int64{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// TestTracker walks reads through the tracker: what it publishes, the gaps
// it keeps and the cursor it would store.
func TestTracker(t *testing.T) {
	type read struct {
		endGaps bool    // the writers of every open gap have ended before this read
		got     []int64 // what the read returned
		publish []int64
		gaps    []tradeunit.IDRange
		cursor  int64
	}
	tests := []struct {
		name  string
		start int64
		reads []read
	}{
		{"no gaps", 0, []read{
			{got: []int64{1, 2, 3}, publish: []int64{1, 2, 3}, gaps: []tradeunit.IDRange{}, cursor: 3},
			{got: nil, publish: []int64{}, gaps: []tradeunit.IDRange{}, cursor: 3},
		}},
		{"resumes after its cursor", 10, []read{
			{got: []int64{11, 12}, publish: []int64{11, 12}, gaps: []tradeunit.IDRange{}, cursor: 12},
		}},
		{"a late commit fills its gap and is published then", 0, []read{
			{got: []int64{1, 3, 4}, publish: []int64{1, 3, 4}, gaps: []tradeunit.IDRange{{Lo: 2, Hi: 2}}, cursor: 1},
			{got: []int64{5}, publish: []int64{5}, gaps: []tradeunit.IDRange{{Lo: 2, Hi: 2}}, cursor: 1},
			{got: []int64{2, 6}, publish: []int64{2, 6}, gaps: []tradeunit.IDRange{}, cursor: 6},
		}},
		{"a gap is kept until its writers ended, then dropped by the next read", 0, []read{
			{got: []int64{1, 4}, publish: []int64{1, 4}, gaps: []tradeunit.IDRange{{Lo: 2, Hi: 3}}, cursor: 1},
			{got: nil, publish: []int64{}, gaps: []tradeunit.IDRange{{Lo: 2, Hi: 3}}, cursor: 1},
			{endGaps: true, got: []int64{5}, publish: []int64{5}, gaps: []tradeunit.IDRange{}, cursor: 5},
		}},
		{"an id found inside a gap splits it", 0, []read{
			{got: []int64{1, 6}, publish: []int64{1, 6}, gaps: []tradeunit.IDRange{{Lo: 2, Hi: 5}}, cursor: 1},
			{got: []int64{3}, publish: []int64{3}, gaps: []tradeunit.IDRange{{Lo: 2, Hi: 2}, {Lo: 4, Hi: 5}}, cursor: 1},
			{got: []int64{2}, publish: []int64{2}, gaps: []tradeunit.IDRange{{Lo: 4, Hi: 5}}, cursor: 3},
		}},
		{"a late event found in the read that makes its gap final is still published", 0, []read{
			{got: []int64{1, 3}, publish: []int64{1, 3}, gaps: []tradeunit.IDRange{{Lo: 2, Hi: 2}}, cursor: 1},
			{endGaps: true, got: []int64{2}, publish: []int64{2}, gaps: []tradeunit.IDRange{}, cursor: 3},
		}},
		{"gaps seen in separate reads end separately", 0, []read{
			{got: []int64{2}, publish: []int64{2}, gaps: []tradeunit.IDRange{{Lo: 1, Hi: 1}}, cursor: 0},
			{endGaps: true, got: []int64{4}, publish: []int64{4}, gaps: []tradeunit.IDRange{{Lo: 3, Hi: 3}}, cursor: 2},
			{got: []int64{3}, publish: []int64{3}, gaps: []tradeunit.IDRange{}, cursor: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(tt.start)
			now := time.Unix(1000, 0)
			for i, rd := range tt.reads {
				if rd.endGaps {
					for j := range tr.gaps {
						tr.gaps[j].asked, tr.gaps[j].ended = true, true
					}
				}
				if got := ids(tr.observe(evs(rd.got...), now)); !reflect.DeepEqual(got, rd.publish) {
					t.Fatalf("read %d: published %v, want %v", i, got, rd.publish)
				}
				gaps := tr.ranges()
				if !reflect.DeepEqual(gaps, rd.gaps) {
					t.Fatalf("read %d: gaps %v, want %v", i, gaps, rd.gaps)
				}
				if tr.cursor != rd.cursor {
					t.Fatalf("read %d: cursor %d, want %d", i, tr.cursor, rd.cursor)
				}
			}
		})
	}
}
