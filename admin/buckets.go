package admin

import (
	"fmt"
	"strconv"
	"strings"

	"tradeunit"
	"tradeunit/routing"
)

// ParseBucketRange parses "FROM-TO" (both included) or a single "N".
// Errors: PARAM_ERROR.
func ParseBucketRange(s string) (routing.BucketRange, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		to = from
	}
	f, err1 := strconv.Atoi(from)
	t, err2 := strconv.Atoi(to)
	r := routing.BucketRange{From: f, To: t}
	if err1 != nil || err2 != nil || f < 0 || t >= tradeunit.DirectoryBuckets || f > t {
		return r, paramErrorf("buckets %q: want FROM-TO within 0-%d, FROM not above TO", s, tradeunit.DirectoryBuckets-1)
	}
	return r, nil
}

// formatRange writes a range as ParseBucketRange reads it.
func formatRange(r routing.BucketRange) string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// FormatRanges writes ranges as "0-1023,2048".
func FormatRanges(rs []routing.BucketRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = formatRange(r)
	}
	return strings.Join(parts, ",")
}

// bucketSet is a set of buckets; the ranges of a shard are small lists,
// and a set of all 4096 is the simplest exact arithmetic on them.
type bucketSet [tradeunit.DirectoryBuckets]bool

func setOf(rs ...routing.BucketRange) *bucketSet {
	var s bucketSet
	for _, r := range rs {
		for b := max(r.From, 0); b <= min(r.To, tradeunit.DirectoryBuckets-1); b++ {
			s[b] = true
		}
	}
	return &s
}

// ranges returns the set as sorted ranges, adjacent ones merged.
func (s *bucketSet) ranges() []routing.BucketRange {
	var out []routing.BucketRange
	for b := 0; b < len(s); b++ {
		if !s[b] {
			continue
		}
		from := b
		for b+1 < len(s) && s[b+1] {
			b++
		}
		out = append(out, routing.BucketRange{From: from, To: b})
	}
	return out
}

// covers reports whether every bucket of r is in the set.
func (s *bucketSet) covers(r routing.BucketRange) bool {
	for b := r.From; b <= r.To; b++ {
		if !s[b] {
			return false
		}
	}
	return true
}

// overlaps reports whether a bucket of r is in the set.
func (s *bucketSet) overlaps(r routing.BucketRange) bool {
	for b := r.From; b <= r.To; b++ {
		if s[b] {
			return true
		}
	}
	return false
}

// plus returns rs with r added, merged.
func plus(rs []routing.BucketRange, r routing.BucketRange) []routing.BucketRange {
	return setOf(append(rs, r)...).ranges()
}

// minus returns rs without the buckets of r.
func minus(rs []routing.BucketRange, r routing.BucketRange) []routing.BucketRange {
	s := setOf(rs...)
	for b := r.From; b <= r.To; b++ {
		s[b] = false
	}
	return s.ranges()
}

// bucketCount is how many buckets rs hold.
func bucketCount(rs []routing.BucketRange) int {
	n := 0
	for _, r := range rs {
		n += r.To - r.From + 1
	}
	return n
}
