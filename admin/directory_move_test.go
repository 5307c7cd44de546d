package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/routing"
	"tradeunit/store/dirstore"
)

// moveRange is the range the move tests move: the first buckets of shard
// 1 (SplitBuckets gives it 0-2047).
var moveRange = routing.BucketRange{From: 0, To: 15}

func moveOptions() MoveOptions {
	o := DefaultMoveOptions()
	o.Settle, o.Page = time.Millisecond, 2 // nothing to wait for in process; several pages a bucket
	return o
}

// seedShard1 puts entries on shard 1: inside moveRange, several per
// bucket in a few buckets, at versions 1 to 3 (pending, moved on with an
// abandoned attempt, committed), and outside it. It returns both, as
// stored.
func seedShard1(t *testing.T, w *dirWorld) (inside, outside []*tradeunit.DirectoryEntry) {
	t.Helper()
	ctx := context.Background()
	s := w.shards[1]
	for i := 0; len(inside) < 12 || len(outside) < 3; i++ {
		k := orderKey(fmt.Sprintf("seed-%07d", i))
		b := k.Bucket()
		in := moveRange.Contains(b)
		if in && len(inside) >= 12 || !in && (b > 2047 || len(outside) >= 3) {
			continue
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		e := &tradeunit.DirectoryEntry{Key: k, State: tradeunit.EntryPending, Attempt: tradeunit.Attempt{Unit: 1, ID: uint64(i + 1)},
			Fingerprint: "fp", Created: now, Updated: now, Version: 1}
		chain := []*tradeunit.DirectoryEntry{e}
		if i%3 > 0 {
			e = e.Next(func(n *tradeunit.DirectoryEntry) {
				n.Abandoned, n.Attempt = []tradeunit.Attempt{n.Attempt}, tradeunit.Attempt{Unit: 2, ID: 1<<63 | uint64(i)}
			})
			chain = append(chain, e)
		}
		if i%3 == 2 {
			e = e.Next(func(n *tradeunit.DirectoryEntry) {
				n.State, n.RecordNo = tradeunit.EntryCommitted, "1000020000000000000000000011"
			})
			chain = append(chain, e)
		}
		for _, c := range chain {
			if r := s.Put(ctx, []*tradeunit.DirectoryEntry{c}); r[0].Err != nil {
				t.Fatal(r[0].Err)
			}
		}
		got, err := s.Entry(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if in {
			inside = append(inside, got)
		} else {
			outside = append(outside, got)
		}
	}
	return inside, outside
}

// wantEntries fails unless s holds exactly want, field for field.
func wantEntries(t *testing.T, what string, s *dirstore.Store, want []*tradeunit.DirectoryEntry) {
	t.Helper()
	for _, e := range want {
		got, err := s.Entry(context.Background(), e.Key)
		if err != nil || !sameEntry(got, e) {
			t.Fatalf("%s: %s is %+v, %v; want %+v", what, e.Key, got, err, e)
		}
	}
}

// countRange counts s's entries in r.
func countRange(t *testing.T, s *dirstore.Store, r routing.BucketRange) int64 {
	t.Helper()
	var n int64
	for b := r.From; b <= r.To; b++ {
		c, err := s.CountBucket(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		n += c
	}
	return n
}

func shardRanges(t *testing.T, w *dirWorld, id routing.ShardID) (buckets, frozen string) {
	t.Helper()
	s, ok := w.routes.Current().Directory.Shard(id)
	if !ok {
		t.Fatalf("no shard %d", id)
	}
	return FormatRanges(s.Buckets), FormatRanges(s.Frozen)
}

func stepNames(res *MoveResult) []string {
	var out []string
	for _, s := range res.Steps {
		out = append(out, s.Name)
	}
	return out
}

// TestMoveCopiesVerifiesAndSwitches: a move gives the target every entry
// of the range exactly as it was (versions included, so compare-and-swap
// goes on), switches the range in one table change, deletes the source's
// copies and nothing else; a second run finds it done; a move back puts
// the ranges together again.
func TestMoveCopiesVerifiesAndSwitches(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	inside, outside := seedShard1(t, w)
	rev := w.routes.Current().Revision
	var progress []string
	o := moveOptions()
	o.Progress = func(s MoveStep) { progress = append(progress, s.Name) }
	res, err := w.a.Move(ctx, moveRange, 2, o)
	if err != nil {
		t.Fatalf("Move: %v", err)
	}
	wantSteps := []string{"check", "freeze", "settle", "copy", "verify", "switch", "cleanup"}
	if !slices.Equal(stepNames(res), wantSteps) || !slices.Equal(progress, wantSteps) {
		t.Fatalf("steps %v, progress %v; want %v", stepNames(res), progress, wantSteps)
	}
	if res.From != 1 || res.To != 2 || res.Copied != int64(len(inside)) || res.Deleted != int64(len(inside)) || res.Revision != rev+2 {
		t.Fatalf("result %+v; want %d copied and deleted, revision %d", res, len(inside), rev+2)
	}
	if b, f := shardRanges(t, w, 1); b != "16-2047" || f != "" {
		t.Fatalf("shard 1: buckets %s frozen %q", b, f)
	}
	if b, f := shardRanges(t, w, 2); b != "0-15,2048-4095" || f != "" {
		t.Fatalf("shard 2: buckets %s frozen %q", b, f)
	}
	wantEntries(t, "the target", w.shards[2], inside)
	if n := countRange(t, w.shards[1], moveRange); n != 0 {
		t.Fatalf("the source keeps %d entries of the range", n)
	}
	wantEntries(t, "the source, outside the range", w.shards[1], outside)
	// A create that read an entry before the move writes its next version
	// on the target; one that read an older version loses there.
	e := inside[0]
	next := e.Next(func(n *tradeunit.DirectoryEntry) { n.Abandoned = nil })
	if e.State == tradeunit.EntryPending {
		next = e.Next(func(n *tradeunit.DirectoryEntry) { n.Attempt.ID++ })
	}
	if r := w.shardOf(e.Key).Put(ctx, []*tradeunit.DirectoryEntry{next}); r[0].Err != nil {
		t.Fatalf("a put at version %d after the move: %v", next.Version, r[0].Err)
	}
	if r := w.shardOf(e.Key).Put(ctx, []*tradeunit.DirectoryEntry{next}); !errors.Is(r[0].Err, tradeunit.ErrVersionConflict) {
		t.Fatalf("the same version again: %v, want a conflict", r[0].Err)
	}
	h, err := w.a.History(ctx, 5)
	if err != nil || len(h) < 2 || !strings.Contains(h[0].What, "switch") || !strings.Contains(h[1].What, "freeze") || h[0].Who != "test" {
		t.Fatalf("history %+v, %v; want the freeze, then the switch, by test", h, err)
	}

	again, err := w.a.Move(ctx, moveRange, 2, moveOptions())
	if err != nil || !again.AlreadyMoved || again.Deleted != 0 || w.routes.Current().Revision != rev+2 {
		t.Fatalf("second run: %+v, %v; want already moved, nothing changed", again, err)
	}
	back, err := w.a.Move(ctx, moveRange, 1, moveOptions())
	if err != nil || back.Copied != int64(len(inside)) {
		t.Fatalf("move back: %+v, %v", back, err)
	}
	if b, _ := shardRanges(t, w, 1); b != "0-2047" {
		t.Fatalf("shard 1 after the move back: %s", b)
	}
	if n := countRange(t, w.shards[2], moveRange); n != 0 {
		t.Fatalf("shard 2 keeps %d entries after the move back", n)
	}
}

// TestMoveRefusesAndChangesNothing: moves that cannot be made are refused
// before anything is written.
func TestMoveRefusesAndChangesNothing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, w *dirWorld)
		r     routing.BucketRange
		to    routing.ShardID
		want  string
	}{
		{name: "a range of two shards", r: routing.BucketRange{From: 2040, To: 2050}, to: 2, want: "span shards 1 and 2"},
		{name: "an unknown shard", r: moveRange, to: 9, want: "shard 9 is not in the directory"},
		{name: "a range out of bounds", r: routing.BucketRange{From: 10, To: 4096}, to: 2, want: "within 0-4095"},
		{name: "a masked target", r: moveRange, to: 2, want: "masked",
			setup: func(t *testing.T, w *dirWorld) {
				w.update(t, func(d *routing.Directory) { d.Shards[1].Available = false })
			}},
		{name: "another move's frozen buckets", r: moveRange, to: 2, want: "another move",
			setup: func(t *testing.T, w *dirWorld) { freeze(t, w, 15) }},
		{name: "buckets frozen on the target itself", r: moveRange, to: 1, want: "another move of them",
			setup: func(t *testing.T, w *dirWorld) { freeze(t, w, 3) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newDirWorld(t)
			inside, _ := seedShard1(t, w)
			if tt.setup != nil {
				tt.setup(t, w)
			}
			before, _ := w.routes.Current().Marshal()
			_, err := w.a.Move(context.Background(), tt.r, tt.to, moveOptions())
			if !tradeunit.IsCode(err, tradeunit.CodeParamError) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want PARAM_ERROR saying %q", err, tt.want)
			}
			if after, _ := w.routes.Current().Marshal(); string(after) != string(before) {
				t.Fatalf("the table changed:\n%s\nwas\n%s", after, before)
			}
			wantEntries(t, "shard 1", w.shards[1], inside)
			if n := countRange(t, w.shards[2], moveRange); n != 0 {
				t.Fatalf("shard 2 got %d entries", n)
			}
		})
	}
}

// TestMoveThatFailsBeforeItsSwitchIsUndone: a failure after the copy, and
// a cancellation while settling, leave the range on its shard, unfrozen,
// and no copy on the target.
func TestMoveThatFailsBeforeItsSwitchIsUndone(t *testing.T) {
	for _, how := range []string{"after the copy", "cancelled"} {
		t.Run(how, func(t *testing.T) {
			w := newDirWorld(t)
			inside, _ := seedShard1(t, w)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := moveOptions()
			if how == "cancelled" {
				o.Settle = time.Hour
				o.Progress = func(s MoveStep) {
					if s.Name == "freeze" {
						cancel()
					}
				}
			} else {
				o.afterVerify = func() error {
					if n := countRange(t, w.shards[2], moveRange); n != int64(len(inside)) {
						t.Errorf("the target holds %d entries before the switch, want %d", n, len(inside))
					}
					return errors.New("the operator's host died")
				}
			}
			res, err := w.a.Move(ctx, moveRange, 2, o)
			if err == nil || !strings.Contains(err.Error(), "nothing moved") || !strings.Contains(err.Error(), "unfrozen") {
				t.Fatalf("got %v, want the failure and that nothing moved", err)
			}
			if names := stepNames(res); names[len(names)-1] != "undo" {
				t.Fatalf("steps %v, want the undo last", names)
			}
			if b, f := shardRanges(t, w, 1); b != "0-2047" || f != "" {
				t.Fatalf("shard 1: buckets %s frozen %q; want all its buckets, none frozen", b, f)
			}
			wantEntries(t, "shard 1", w.shards[1], inside)
			if n := countRange(t, w.shards[2], moveRange); n != 0 {
				t.Fatalf("shard 2 keeps %d partial copies", n)
			}
		})
	}
}

// TestMoveResumesAFrozenRange: a move that stopped after its freeze (its
// process died) leaves the range frozen and maybe a partial copy; the same
// move again resumes from the freeze and replaces the partial copy.
func TestMoveResumesAFrozenRange(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	inside, _ := seedShard1(t, w)
	w.update(t, func(d *routing.Directory) { d.Shards[0].Frozen = []routing.BucketRange{moveRange} })
	// A partial copy: an older version of one entry, and an entry the
	// source does not hold.
	partial := inside[0].Clone()
	partial.Version = 1
	stray := orderKey("stray-0")
	for i := 1; !moveRange.Contains(stray.Bucket()); i++ {
		stray = orderKey(fmt.Sprintf("stray-%d", i))
	}
	if err := w.shards[2].Import(ctx, []*tradeunit.DirectoryEntry{partial, {Key: stray, State: tradeunit.EntryPending,
		Attempt: tradeunit.Attempt{Unit: 1, ID: 9}, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	res, err := w.a.Move(ctx, moveRange, 2, moveOptions())
	if err != nil {
		t.Fatalf("resumed move: %v", err)
	}
	if !strings.Contains(res.Steps[1].Detail, "resuming") {
		t.Fatalf("freeze step %+v, want it to say it resumes", res.Steps[1])
	}
	if n := countRange(t, w.shards[2], moveRange); n != int64(len(inside)) {
		t.Fatalf("the target holds %d entries of the range, want exactly the source's %d", n, len(inside))
	}
	wantEntries(t, "the target", w.shards[2], inside)
	if e, err := w.shards[2].Entry(ctx, stray); !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
		t.Fatalf("the partial copy's stray entry survived: %+v, %v", e, err)
	}
	if b, f := shardRanges(t, w, 2); b != "0-15,2048-4095" || f != "" {
		t.Fatalf("shard 2: %s frozen %q", b, f)
	}
}

// TestMoveKeepsASourceCopyThatChangedAfterItsVerification: a write that
// reaches the source after the verification (one the settle time should
// have kept out) is not deleted with the copies: the move says so, and a
// later run, once the operator has looked, deletes it.
func TestMoveKeepsASourceCopyThatChangedAfterItsVerification(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	inside, _ := seedShard1(t, w)
	late := inside[3]
	o := moveOptions()
	o.afterVerify = func() error {
		n := late.Next(func(n *tradeunit.DirectoryEntry) { n.Fingerprint = "late" })
		if n.State == tradeunit.EntryCommitted {
			n = late.Next(func(n *tradeunit.DirectoryEntry) { n.Abandoned = nil })
		}
		if r := w.shards[1].Put(ctx, []*tradeunit.DirectoryEntry{n}); r[0].Err != nil {
			t.Errorf("late write: %v", r[0].Err)
		}
		return nil
	}
	res, err := w.a.Move(ctx, moveRange, 2, o)
	b := late.Key.Bucket()
	if err == nil || !strings.Contains(err.Error(), "after they were verified") || !slices.Equal(res.Kept, []int{b}) {
		t.Fatalf("got %v, kept %v; want the late write reported and bucket %d kept", err, res.Kept, b)
	}
	if got, _ := shardRanges(t, w, 2); got != "0-15,2048-4095" {
		t.Fatalf("the switch was not made: shard 2 holds %s", got)
	}
	if n, _ := w.shards[1].CountBucket(ctx, b); n == 0 {
		t.Fatalf("bucket %d's copy on the source was deleted", b)
	}
	again, err := w.a.Move(ctx, moveRange, 2, moveOptions())
	if err != nil || !again.AlreadyMoved || again.Deleted == 0 || countRange(t, w.shards[1], moveRange) != 0 {
		t.Fatalf("later run: %+v, %v; want the kept copies deleted", again, err)
	}
}

// TestAbortUnfreezesAndDropsTheCopies: an abort ends a move that stopped
// before its switch.
func TestAbortUnfreezesAndDropsTheCopies(t *testing.T) {
	w := newDirWorld(t)
	ctx := context.Background()
	inside, _ := seedShard1(t, w)
	w.update(t, func(d *routing.Directory) { d.Shards[0].Frozen = []routing.BucketRange{moveRange} })
	if err := w.shards[2].Import(ctx, inside[:5]); err != nil {
		t.Fatal(err)
	}
	res, err := w.a.Abort(ctx, moveRange, 2, moveOptions())
	if err != nil || res.Deleted != 5 {
		t.Fatalf("Abort: %+v, %v; want 5 copies deleted", res, err)
	}
	if b, f := shardRanges(t, w, 1); b != "0-2047" || f != "" {
		t.Fatalf("shard 1: %s frozen %q", b, f)
	}
	wantEntries(t, "shard 1", w.shards[1], inside)
	if _, err := w.a.Move(ctx, moveRange, 2, moveOptions()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.a.Abort(ctx, moveRange, 2, moveOptions()); !tradeunit.IsCode(err, tradeunit.CodeParamError) || !strings.Contains(err.Error(), "done") {
		t.Fatalf("abort of a finished move: %v, want PARAM_ERROR saying it is done", err)
	}
}

// TestShardsListing: the listing shows each shard's buckets, what is
// frozen, its storage and, asked to, its entries.
func TestShardsListing(t *testing.T) {
	w := newDirWorld(t)
	inside, outside := seedShard1(t, w)
	freeze(t, w, 7)
	views, err := w.a.Shards(context.Background(), true)
	if err != nil || len(views) != 2 {
		t.Fatalf("Shards: %+v, %v", views, err)
	}
	v := views[0]
	if v.Shard != 1 || FormatRanges(v.Buckets) != "0-2047" || v.BucketN != 2048 || FormatRanges(v.Frozen) != "7" ||
		v.Entries != int64(len(inside)+len(outside)) || v.Storage.Scheme != "sqlite" || !v.Available || v.Error != "" {
		t.Fatalf("shard 1: %+v", v)
	}
	if views[1].Entries != 0 || views[1].BucketN != 2048 {
		t.Fatalf("shard 2: %+v", views[1])
	}
	uncounted, err := w.a.Shards(context.Background(), false)
	if err != nil || uncounted[0].Entries != -1 {
		t.Fatalf("uncounted: %+v, %v", uncounted, err)
	}
}

func TestParseBucketRange(t *testing.T) {
	for in, want := range map[string]routing.BucketRange{"0-15": {From: 0, To: 15}, "7": {From: 7, To: 7}, "0-4095": routing.AllBuckets} {
		if got, err := ParseBucketRange(in); err != nil || got != want {
			t.Errorf("ParseBucketRange(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a-b", "5-3", "-1-2", "0-4096", "1-2-3"} {
		if _, err := ParseBucketRange(in); !tradeunit.IsCode(err, tradeunit.CodeParamError) {
			t.Errorf("ParseBucketRange(%q): %v, want PARAM_ERROR", in, err)
		}
	}
}
