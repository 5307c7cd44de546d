package admin

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"tradeunit"
	"tradeunit/store/dirstore"
)

// bucketReader reads a bucket's entries in key order, a page at a time.
type bucketReader struct {
	s     *dirstore.Store
	b     int
	page  int
	buf   []*tradeunit.DirectoryEntry
	after tradeunit.MerchantKey
	done  bool
}

// next returns the next entry, or nil after the last.
func (r *bucketReader) next(ctx context.Context) (*tradeunit.DirectoryEntry, error) {
	if len(r.buf) == 0 && !r.done {
		page, err := r.s.EntriesInBucket(ctx, r.b, r.after, r.page)
		if err != nil {
			return nil, err
		}
		r.done = len(page) < r.page
		if len(page) > 0 {
			r.after = page[len(page)-1].Key
		}
		r.buf = page
	}
	if len(r.buf) == 0 {
		return nil, nil
	}
	e := r.buf[0]
	r.buf = r.buf[1:]
	return e, nil
}

// copyBucket makes dst's copy of bucket b exactly src's: it drops what dst
// holds of b (an earlier attempt's copy), then imports src's entries as
// they are, a page per transaction. It returns how many it copied.
func copyBucket(ctx context.Context, src, dst *dirstore.Store, b, page int) (int64, error) {
	if _, err := dst.DeleteBucket(ctx, b); err != nil {
		return 0, fmt.Errorf("empty the target's bucket: %w", err)
	}
	var n int64
	for after := (tradeunit.MerchantKey{}); ; {
		entries, err := src.EntriesInBucket(ctx, b, after, page)
		if err != nil {
			return n, fmt.Errorf("read the source: %w", err)
		}
		if len(entries) > 0 {
			if err := dst.Import(ctx, entries); err != nil {
				return n, fmt.Errorf("import into the target: %w", err)
			}
			n += int64(len(entries))
			after = entries[len(entries)-1].Key
		}
		if len(entries) < page {
			return n, nil
		}
	}
}

// bucketDigest sums a bucket's entries: how many, and a hash of every
// field of each, in key order.
type bucketDigest struct {
	n   int64
	sum [sha256.Size]byte
}

// digestBucket reads bucket b of s whole and sums it.
func digestBucket(ctx context.Context, s *dirstore.Store, b, page int) (bucketDigest, error) {
	h := sha256.New()
	r := &bucketReader{s: s, b: b, page: page}
	var d bucketDigest
	for {
		e, err := r.next(ctx)
		if err != nil {
			return d, err
		}
		if e == nil {
			copy(d.sum[:], h.Sum(nil))
			return d, nil
		}
		d.n++
		fmt.Fprintln(h, entryText(e))
	}
}

// entryText writes every field of an entry, times at microseconds.
func entryText(e *tradeunit.DirectoryEntry) string {
	return fmt.Sprintf("%q %q %q %s %d:%d %q %q %v %d %d %d", e.Key.Mchid, e.Key.Kind, e.Key.Value, e.State,
		e.Attempt.Unit, e.Attempt.ID, e.Fingerprint, e.RecordNo, e.Abandoned,
		tradeunit.UnixMicros(e.Created), tradeunit.UnixMicros(e.Updated), e.Version)
}

func sameEntry(a, b *tradeunit.DirectoryEntry) bool {
	return a.Key == b.Key && a.State == b.State && a.Attempt == b.Attempt && a.Fingerprint == b.Fingerprint &&
		a.RecordNo == b.RecordNo && slices.Equal(a.Abandoned, b.Abandoned) && a.Version == b.Version &&
		tradeunit.UnixMicros(a.Created) == tradeunit.UnixMicros(b.Created) && tradeunit.UnixMicros(a.Updated) == tradeunit.UnixMicros(b.Updated)
}

// compareBucket checks that bucket b holds the same entries on src and
// dst: equal counts, then every entry equal, in key order. It returns
// src's digest, and what differs ("" when nothing does).
func compareBucket(ctx context.Context, src, dst *dirstore.Store, b, page int) (bucketDigest, string, error) {
	var d bucketDigest
	ns, err := src.CountBucket(ctx, b)
	if err != nil {
		return d, "", err
	}
	nd, err := dst.CountBucket(ctx, b)
	if err != nil {
		return d, "", err
	}
	if ns != nd {
		return d, fmt.Sprintf("%d entries on the source, %d on the target", ns, nd), nil
	}
	h := sha256.New()
	rs, rd := &bucketReader{s: src, b: b, page: page}, &bucketReader{s: dst, b: b, page: page}
	for {
		es, err := rs.next(ctx)
		if err != nil {
			return d, "", err
		}
		ed, err := rd.next(ctx)
		if err != nil {
			return d, "", err
		}
		switch {
		case es == nil && ed == nil:
			copy(d.sum[:], h.Sum(nil))
			return d, "", nil
		case es == nil || ed == nil:
			return d, "the entries changed while they were compared", nil
		case !sameEntry(es, ed):
			return d, fmt.Sprintf("source %s, target %s", entryText(es), entryText(ed)), nil
		}
		d.n++
		fmt.Fprintln(h, entryText(es))
	}
}
