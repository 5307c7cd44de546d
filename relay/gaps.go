package relay

import (
	"time"

	"tradeunit"
)

// tracker follows one unit's outbox. Events are numbered when inserted but
// become visible when their transaction commits, and on MySQL in another
// order, so the relay reads past numbers it has not seen yet (gaps) instead
// of waiting for them, and keeps reading the gaps until it knows they are
// final: every write transaction open when the gap was seen has ended, and a
// read after that still lacks them (they were rolled back). The cursor, the
// position a restarted relay resumes from, never passes an open gap: a crash
// repeats events (the bus de-duplicates by id), it never skips one.
type tracker struct {
	cursor int64 // every event up to it was published or will never exist
	read   int64 // every event in (cursor, read] was published, except gaps
	gaps   []gap // in id order
}

// gap is ids not seen yet, all seen missing in the same read.
type gap struct {
	tradeunit.IDRange
	seen    time.Time
	writers tradeunit.Writers // the transactions that may still fill it
	asked   bool              // writers is known
	ended   bool              // they all ended: the next read is final
}

func newTracker(cursor int64) *tracker { return &tracker{cursor: cursor, read: cursor} }

// ranges returns the gaps' ranges, for the next read.
func (t *tracker) ranges() []tradeunit.IDRange {
	out := make([]tradeunit.IDRange, len(t.gaps))
	for i, g := range t.gaps {
		out[i] = g.IDRange
	}
	return out
}

// observe takes the result of a read that asked for the gaps and for events
// after t.read (oldest first, as ReadOutbox returns them): events that fill
// a gap shrink it, events after t.read move it, and numbers skipped on the
// way become gaps seen at now. Gaps whose writers had ended before the read
// are final: what of them is still missing is dropped. It returns the events
// to publish, in id order.
func (t *tracker) observe(events []tradeunit.Event, now time.Time) []tradeunit.Event {
	var found []int64
	var fresh []tradeunit.Event
	for _, e := range events {
		switch {
		case e.ID > t.read:
			if e.ID > t.read+1 {
				t.gaps = append(t.gaps, gap{IDRange: tradeunit.IDRange{Lo: t.read + 1, Hi: e.ID - 1}, seen: now})
			}
			t.read = e.ID
			fresh = append(fresh, e)
		case t.inGap(e.ID):
			found = append(found, e.ID)
			fresh = append(fresh, e)
		}
	}
	t.fill(found)
	t.dropFinal()
	t.cursor = t.read
	if len(t.gaps) > 0 {
		t.cursor = t.gaps[0].Lo - 1
	}
	return fresh
}

func (t *tracker) inGap(id int64) bool {
	for _, g := range t.gaps {
		if id >= g.Lo && id <= g.Hi {
			return true
		}
	}
	return false
}

// fill removes ids (ascending) from the gaps, splitting a gap around an id
// found inside it.
func (t *tracker) fill(ids []int64) {
	for _, id := range ids {
		for i := 0; i < len(t.gaps); i++ {
			g := t.gaps[i]
			if id < g.Lo || id > g.Hi {
				continue
			}
			var parts []gap
			if id > g.Lo {
				left := g
				left.Hi = id - 1
				parts = append(parts, left)
			}
			if id < g.Hi {
				right := g
				right.Lo = id + 1
				parts = append(parts, right)
			}
			t.gaps = append(t.gaps[:i], append(parts, t.gaps[i+1:]...)...)
			break
		}
	}
}

// dropFinal forgets the gaps that were final before the read that just
// ended: their writers had all ended, so what is still missing was rolled
// back.
func (t *tracker) dropFinal() {
	kept := t.gaps[:0]
	for _, g := range t.gaps {
		if !g.ended {
			kept = append(kept, g)
		}
	}
	t.gaps = kept
}

// open returns the number of ids in gaps.
func (t *tracker) open() int64 {
	var n int64
	for _, g := range t.gaps {
		n += g.Hi - g.Lo + 1
	}
	return n
}

// oldest returns when the oldest open gap was seen (zero: none).
func (t *tracker) oldest() time.Time {
	var at time.Time
	for _, g := range t.gaps {
		if at.IsZero() || g.seen.Before(at) {
			at = g.seen
		}
	}
	return at
}
