// Package orderno encodes and decodes order numbers: fixed-length decimal
// strings that a person can read out on a support call and that carry the
// number of the transaction unit holding the order, so a router can send a
// request to the right unit without a lookup table.
//
// Version 1 is exactly 28 ASCII digits:
//
//	V      1 digit    format version, 1
//	UUUUU  5 digits   unit number, 1..99999
//	T…T    10 digits  creation time, Unix seconds UTC
//	S…S    11 digits  per-unit sequence, 0..99,999,999,999
//	C      1 digit    Damm check digit over the 27 digits before it
//
// Digits only, because people read them aloud and type them into keypads.
// Time precedes the sequence so that the numbers of one unit sort as text in
// the order they were created, which keeps storage indexes append-mostly.
// The Damm check digit catches every single mistyped digit and every swap of
// two neighbouring digits, the two mistakes people make most, so such a typo
// is rejected instead of naming some other order, perhaps in another unit.
//
// Every version keeps the same envelope, the version digit first and a Damm
// check digit over the whole number last, so that a number is verified before
// any of its digits, the version included, is trusted.
package orderno

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"tradeunit"
)

// Len is the length of a version 1 order number. Storage columns and request
// validators size themselves by it.
const Len = 28

// MaxSeq is the largest sequence number an order number can carry: the
// sequence field is 11 digits wide. A unit that reaches it must stop creating
// orders rather than wrap around and repeat an order number.
const MaxSeq = 99_999_999_999

// maxUnix is the largest creation time that fits the 10-digit time field,
// 2286-11-20T17:46:39Z.
const maxUnix = 9_999_999_999

// No is a decoded order number. Its zero value is not a valid order number.
type No struct {
	// Version is the format version, the number's first digit. New makes
	// version 1; Parse reports the version it read.
	Version uint8
	// Unit is the transaction unit that holds the order.
	Unit tradeunit.UnitID
	// Time is the creation time in UTC, in whole seconds, because the
	// number has no room for more.
	Time time.Time
	// Seq is the order's sequence number within its unit, which makes the
	// number unique even for orders created in the same second.
	Seq uint64
}

// New returns the version 1 order number of an order created in unit at t
// with the sequence number seq. It drops t's fraction of a second and its
// location, so that the result equals what Parse returns for its String.
//
// An error from New is a fault of the calling service (a misconfigured unit,
// an exhausted sequence, a broken clock), not of an API caller, so it carries
// no tradeunit code and is reported as SYSTEM_ERROR.
func New(unit tradeunit.UnitID, t time.Time, seq uint64) (No, error) {
	sec := t.Unix()
	switch {
	case unit < 1 || unit > tradeunit.MaxUnitID:
		return No{}, fmt.Errorf("orderno: unit number %d out of range 1..%d", unit, tradeunit.MaxUnitID)
	case sec < 0 || sec > maxUnix:
		return No{}, fmt.Errorf("orderno: creation time %s out of range %s..%s",
			t.UTC().Format(time.RFC3339), time.Unix(0, 0).UTC().Format(time.RFC3339),
			time.Unix(maxUnix, 0).UTC().Format(time.RFC3339))
	case seq > MaxSeq:
		return No{}, fmt.Errorf("orderno: sequence number %d exceeds %d", seq, uint64(MaxSeq))
	}
	return No{Version: 1, Unit: unit, Time: time.Unix(sec, 0).UTC(), Seq: seq}, nil
}

// String returns the order number as text. For a No that New or Parse would
// not produce (such as the zero No, or one with a field out of range) it
// returns "", so that an invalid value never passes for an order number.
func (n No) String() string {
	var buf [maxLen]byte
	return string(n.AppendTo(buf[:0]))
}

// AppendTo appends the order number as text to dst and returns the extended
// buffer; it lets hot paths write order numbers into a reused buffer. Like
// String, it appends nothing for a No that New or Parse would not produce.
func (n No) AppendTo(dst []byte) []byte {
	f := formatOf(n.Version)
	if f == nil {
		return dst
	}
	d, ok := f.encode(n)
	if !ok {
		return dst
	}
	d[0] = n.Version
	// The check digit is the interim digit after all the others: with the
	// table's diagonal all zeros, appending it brings the whole to 0.
	last := f.length - 1
	d[last] = checksum(d[:last])
	for i := range d {
		d[i] += '0'
	}
	return append(dst, d[:f.length]...)
}

// Parse decodes an order number. It accepts only the exact form String
// produces: no spaces, signs or non-ASCII digits. Every error is a
// *ParseError wrapping one of ErrLength, ErrNotDigit, ErrChecksum,
// ErrVersion or ErrField.
//
// Parse does not keep s, so a caller holding a []byte can pass string(b)
// without an allocation.
func Parse(s string) (No, error) {
	d, f, perr := verify(s)
	if perr != nil {
		return No{}, perr
	}
	n, detail := f.decode(d)
	if detail != "" {
		return No{}, newError(s, ErrField, detail)
	}
	return n, nil
}

// UnitOf returns the unit of an order number, for routers. It validates
// exactly as Parse does, so a router never forwards a number its unit would
// reject, and a mistyped number is refused rather than routed to another
// unit.
func UnitOf(s string) (tradeunit.UnitID, error) {
	n, err := Parse(s)
	return n.Unit, err
}

// maxLen bounds the length of every version, so that a number fits a fixed
// array. Formats take and return that array by value: passing a string or a
// pointer through the version table, an indirect call, would make the
// compiler move every input and buffer to the heap.
const maxLen = 32

// digits holds an order number as digit values 0..9, not ASCII.
type digits [maxLen]byte

// format is one version of the layout: what lies between the version digit
// and the check digit. The envelope around it is handled once, in verify and
// AppendTo.
type format struct {
	length int // in digits, including the version and check digits
	// decode reads the fields of a verified number. For a field out of
	// range it returns a message for the caller, finishing "order number
	// "…" ", instead of a No.
	decode func(d digits) (n No, detail string)
	// encode writes n's fields, leaving the version and check digits to
	// AppendTo; ok is false if n does not fit this version.
	encode func(n No) (d digits, ok bool)
}

// formats is indexed by the version digit. A new version is added beside
// the old ones, never in place of one, because numbers already handed out
// must stay readable. Version 0 is never used: spreadsheets and number
// parsers drop a leading zero, which would silently shorten such a number.
var formats = [10]*format{
	1: {length: Len, decode: decodeV1, encode: encodeV1},
}

func formatOf(version uint8) *format {
	if version >= uint8(len(formats)) {
		return nil
	}
	return formats[version]
}

// Field offsets of version 1.
const (
	v1Unit  = 1
	v1Time  = 6
	v1Seq   = 16
	v1Check = 27
)

func decodeV1(d digits) (No, string) {
	unit := tradeunit.UnitID(num(d[v1Unit:v1Time]))
	if unit < 1 || unit > tradeunit.MaxUnitID {
		return No{}, "has unit number " + text(d[v1Unit:v1Time]) + ", outside 1.." + tradeunit.MaxUnitID.String()
	}
	// Ten digits and eleven digits cannot exceed maxUnix and MaxSeq, so
	// the unit is the only field that can be out of range.
	return No{
		Version: 1,
		Unit:    unit,
		Time:    time.Unix(int64(num(d[v1Time:v1Seq])), 0).UTC(),
		Seq:     num(d[v1Seq:v1Check]),
	}, ""
}

func encodeV1(n No) (d digits, ok bool) {
	sec := n.Time.Unix()
	if n.Unit < 1 || n.Unit > tradeunit.MaxUnitID || sec < 0 || sec > maxUnix || n.Seq > MaxSeq {
		return d, false
	}
	put(d[v1Unit:v1Time], uint64(n.Unit))
	put(d[v1Time:v1Seq], uint64(sec))
	put(d[v1Seq:v1Check], n.Seq)
	return d, true
}

// put writes v into b as digit values, zero-padded; v must fit.
func put(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(v % 10)
		v /= 10
	}
}

// num reads digit values as a number; b is at most 19 digits, so it cannot
// overflow.
func num(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v*10 + uint64(x)
	}
	return v
}

// text renders digit values as ASCII, for messages.
func text(b []byte) string {
	t := make([]byte, len(b))
	for i, x := range b {
		t[i] = '0' + x
	}
	return string(t)
}

// damm is the quasigroup of order 10 from Damm's thesis (2004), as commonly
// published: totally anti-symmetric with a zero diagonal, which is what makes
// it detect all single-digit errors and all adjacent transpositions.
var damm = [10][10]byte{
	{0, 3, 1, 7, 5, 9, 8, 6, 4, 2},
	{7, 0, 9, 2, 1, 5, 4, 8, 6, 3},
	{4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
	{1, 7, 5, 0, 9, 8, 3, 4, 2, 6},
	{6, 1, 2, 3, 0, 4, 5, 9, 7, 8},
	{3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
	{5, 8, 6, 9, 7, 2, 0, 1, 3, 4},
	{8, 9, 4, 5, 3, 6, 2, 0, 1, 7},
	{9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
	{2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
}

// dammPairs steps the Damm check over two digits at once, halving the chain
// of dependent table lookups that bounds the speed of Parse and AppendTo.
// Both the index and the entries carry the interim digit times 100, so a step
// is one addition and one load; the table has 1024 entries so that masking the
// index with 1023 lets the compiler drop the bounds check.
var dammPairs = func() (t [1024]uint16) {
	for c := range 10 {
		for a := range 10 {
			for b := range 10 {
				t[100*c+10*a+b] = 100 * uint16(damm[damm[c][a]][b])
			}
		}
	}
	return t
}()

// checksum returns the interim Damm digit after the digit values in d: the
// check digit to append, or 0 if d ends with a correct check digit.
func checksum(d []byte) byte {
	var c uint // the interim digit, times 100
	if len(d)%2 == 1 {
		// Pair the first digit with a leading 0, which changes nothing:
		// the interim digit starts at 0 and damm[0][0] is 0.
		c = uint(dammPairs[d[0]])
		d = d[1:]
	}
	for ; len(d) >= 2; d = d[2:] {
		c = uint(dammPairs[(c+10*uint(d[0])+uint(d[1]))&1023])
	}
	return byte(c / 100)
}

// verify checks the envelope every version shares, in the order that gives a
// caller the most useful message: the characters, the length, the check
// digit, and only then the version digit, which a typo could have changed.
// It returns the digits and the version's format.
func verify(s string) (d digits, f *format, err *ParseError) {
	if !knownLength(len(s)) {
		return d, nil, lengthError(s)
	}
	b := d[:len(s)]
	for i := range b {
		x := s[i] - '0'
		if x > 9 {
			return d, nil, notDigitError(s, i)
		}
		b[i] = x
	}
	if checksum(b) != 0 {
		return d, nil, newError(s, ErrChecksum,
			"has a wrong check digit: a digit may be mistyped or two digits swapped")
	}
	f = formatOf(d[0])
	if f == nil {
		return d, nil, newError(s, ErrVersion,
			"has unknown format version "+strconv.Itoa(int(d[0]))+" (its first digit)")
	}
	if len(s) != f.length {
		return d, nil, newError(s, ErrLength, "must be "+strconv.Itoa(f.length)+
			" digits for version "+strconv.Itoa(int(d[0]))+", got "+strconv.Itoa(len(s)))
	}
	return d, f, nil
}

// knownLength reports whether some version has n digits.
func knownLength(n int) bool {
	if n > maxLen {
		return false
	}
	for _, f := range formats {
		if f != nil && f.length == n {
			return true
		}
	}
	return false
}

// lengthError reports a wrong length, unless s has a character that is not a
// digit: then the count of digits would be meaningless ("１" is three bytes),
// and the character is what the caller has to fix.
func lengthError(s string) *ParseError {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return notDigitError(s, i)
		}
	}
	var want []string
	for _, f := range formats {
		if f != nil && !contains(want, strconv.Itoa(f.length)) {
			want = append(want, strconv.Itoa(f.length))
		}
	}
	if s == "" {
		return newError(s, ErrLength, "is empty; it must be "+strings.Join(want, " or ")+" digits")
	}
	return newError(s, ErrLength, "must be "+strings.Join(want, " or ")+" digits, got "+strconv.Itoa(len(s)))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// notDigitError reports the character at byte offset i, counting its
// position in characters as the caller sees them.
func notDigitError(s string, i int) *ParseError {
	r, size := utf8.DecodeRuneInString(s[i:])
	found := strconv.QuoteRune(r)
	if r == utf8.RuneError && size <= 1 {
		found = fmt.Sprintf("byte 0x%02X", s[i])
	}
	pos := utf8.RuneCountInString(s[:i]) + 1
	return newError(s, ErrNotDigit,
		"must contain only the digits 0-9, found "+found+" at position "+strconv.Itoa(pos))
}
