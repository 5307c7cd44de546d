package orderno_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/orderno"
)

// dammTable is copied from the literature independently of the package, so
// that a typo in the package's table fails the golden tests.
var dammTable = [10][10]byte{
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

// withCheck appends the Damm check digit to a string of ASCII digits.
func withCheck(t testing.TB, body string) string {
	t.Helper()
	var c byte
	for i := 0; i < len(body); i++ {
		if body[i] < '0' || body[i] > '9' {
			t.Fatalf("withCheck(%q): not a digit at %d", body, i)
		}
		c = dammTable[c][body[i]-'0']
	}
	return body + string('0'+c)
}

func TestDammTable(t *testing.T) {
	// The worked example of the literature: 572 has check digit 4.
	if got, want := withCheck(t, "572"), "5724"; got != want {
		t.Errorf("withCheck(572) = %v, want %v", got, want)
	}
}

func mustNew(t testing.TB, unit tradeunit.UnitID, tm time.Time, seq uint64) orderno.No {
	t.Helper()
	n, err := orderno.New(unit, tm, seq)
	if err != nil {
		t.Fatalf("New(%d, %v, %d): %v", unit, tm, seq, err)
	}
	return n
}

func mustParse(t testing.TB, s string) orderno.No {
	t.Helper()
	n, err := orderno.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return n
}

// sameNo compares field by field: == on time.Time also compares locations.
func sameNo(t testing.TB, got, want orderno.No) {
	t.Helper()
	if got.Version != want.Version || got.Unit != want.Unit || got.Seq != want.Seq ||
		!got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestGolden(t *testing.T) {
	tests := []struct {
		unit tradeunit.UnitID
		unix int64
		seq  uint64
		want string
	}{
		{1, 1700000000, 42, "1000011700000000000000000428"},
		{99999, 9999999999, orderno.MaxSeq, "1999999999999999999999999994"},
		{12345, 1735689600, 7, "1123451735689600000000000073"},
	}
	for _, tt := range tests {
		n := mustNew(t, tt.unit, time.Unix(tt.unix, 0), tt.seq)
		if got := n.String(); got != tt.want {
			t.Errorf("New(%d, %d, %d).String() = %v, want %v", tt.unit, tt.unix, tt.seq, got, tt.want)
		}
		if got, want := withCheck(t, tt.want[:orderno.Len-1]), tt.want; got != want {
			t.Errorf("independent check digit: got %v, want %v", got, want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		unit tradeunit.UnitID
		tm   time.Time
		seq  uint64
	}{
		{"minimum", 1, time.Unix(0, 0), 0},
		{"maximum", 99999, time.Unix(9999999999, 0), orderno.MaxSeq},
		{"unit 1 max seq", 1, time.Unix(9999999999, 0), orderno.MaxSeq},
		{"unit max seq 0", 99999, time.Unix(0, 0), 0},
		{"now", 42, now, 123456789},
		{"now in another zone with nanoseconds", 7, now.In(time.FixedZone("CST", 8*3600)), 1},
		{"just before the end", 500, time.Unix(9999999999, 999999999), 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNew(t, tt.unit, tt.tm, tt.seq)
			want := orderno.No{Version: 1, Unit: tt.unit, Time: time.Unix(tt.tm.Unix(), 0).UTC(), Seq: tt.seq}
			sameNo(t, n, want)
			s := n.String()
			if got, want := len(s), orderno.Len; got != want {
				t.Errorf("len(String()) = %v, want %v", got, want)
			}
			if got, want := string(n.AppendTo([]byte("x"))), "x"+s; got != want {
				t.Errorf("AppendTo = %v, want %v", got, want)
			}
			sameNo(t, mustParse(t, s), want)
			unit, err := orderno.UnitOf(s)
			if err != nil || unit != tt.unit {
				t.Errorf("UnitOf(%q) = %v, %v, want %v, nil", s, unit, err, tt.unit)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		unit tradeunit.UnitID
		tm   time.Time
		seq  uint64
		want string // in the message
	}{
		{"unit 0", 0, time.Unix(1, 0), 0, "unit"},
		{"unit too large", 100000, time.Unix(1, 0), 0, "unit"},
		{"unit max uint32", 1<<32 - 1, time.Unix(1, 0), 0, "unit"},
		{"before 1970", 1, time.Unix(-1, 0), 0, "time"},
		{"half a second before 1970", 1, time.Unix(0, -1), 0, "time"},
		{"zero time", 1, time.Time{}, 0, "time"},
		{"after 2286", 1, time.Unix(10000000000, 0), 0, "time"},
		{"seq too large", 1, time.Unix(1, 0), orderno.MaxSeq + 1, "sequence"},
		{"seq max uint64", 1, time.Unix(1, 0), 1<<64 - 1, "sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := orderno.New(tt.unit, tt.tm, tt.seq)
			if err == nil {
				t.Fatalf("New = %+v, nil, want error", n)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			// A failing New is the service's fault, not the API caller's.
			if got, want := tradeunit.ErrorCode(err), tradeunit.CodeInternal; got != want {
				t.Errorf("ErrorCode = %v, want %v", got, want)
			}
		})
	}
}

func TestInvalidNoFormatsEmpty(t *testing.T) {
	tests := []orderno.No{
		{},
		{Version: 2, Unit: 1, Time: time.Unix(0, 0), Seq: 0},
		{Version: 200, Unit: 1, Time: time.Unix(0, 0), Seq: 0},
		{Version: 1, Unit: 0, Time: time.Unix(0, 0), Seq: 0},
		{Version: 1, Unit: 1, Time: time.Time{}, Seq: 0},
		{Version: 1, Unit: 1, Time: time.Unix(0, 0), Seq: orderno.MaxSeq + 1},
	}
	for _, n := range tests {
		if got, want := n.String(), ""; got != want {
			t.Errorf("%+v.String() = %v, want %v", n, got, want)
		}
		if got, want := string(n.AppendTo([]byte("x"))), "x"; got != want {
			t.Errorf("%+v.AppendTo = %v, want %v", n, got, want)
		}
	}
}

var valid = "1000011700000000000000000428"

// maxMessage bounds an error message whatever the input: at most 40 bytes of
// input are shown, which quoting can stretch to 160 characters (\x02), plus
// the longest explanation.
const maxMessage = 300

// badInputs are rejected, each with its sentinel. Shared with the fuzz seeds.
var badInputs = []struct {
	name string
	in   string
	want error
}{
	{"empty", "", orderno.ErrLength},
	{"short", "123", orderno.ErrLength},
	{"one short", valid[:27], orderno.ErrLength},
	{"one long", valid + "0", orderno.ErrLength},
	{"long", strings.Repeat("1", 1000), orderno.ErrLength},
	{"letters", "1000011700000000000000000ABC", orderno.ErrNotDigit},
	{"short letters", "abc", orderno.ErrNotDigit},
	{"all letters", strings.Repeat("x", 28), orderno.ErrNotDigit},
	{"inner space", "10000 1700000000000000000428", orderno.ErrNotDigit},
	{"leading space", " " + valid, orderno.ErrNotDigit},
	{"trailing space", valid + " ", orderno.ErrNotDigit},
	{"trailing newline", valid + "\n", orderno.ErrNotDigit},
	{"spaces", strings.Repeat(" ", 28), orderno.ErrNotDigit},
	{"unicode digit alone", "１", orderno.ErrNotDigit},
	{"unicode digit inside", valid[:27] + "８", orderno.ErrNotDigit},
	{"arabic-indic digits", strings.Repeat("٣", 14), orderno.ErrNotDigit},
	{"invalid utf-8", valid[:27] + "\xff", orderno.ErrNotDigit},
	{"NUL", valid[:27] + "\x00", orderno.ErrNotDigit},
	{"leading plus", "+" + valid[1:], orderno.ErrNotDigit},
	{"leading minus", "-" + valid[1:], orderno.ErrNotDigit},
	{"plus prepended", "+" + valid, orderno.ErrNotDigit},
	{"minus prepended", "-" + valid, orderno.ErrNotDigit},
	{"bad check digit", valid[:27] + "9", orderno.ErrChecksum},
	{"all zeros", strings.Repeat("0", 28), orderno.ErrVersion}, // check digit of zeros is 0
	{"version 0", "0000011700000000000000000427", orderno.ErrVersion},
	{"version 9", "9000011700000000000000000429", orderno.ErrVersion},
	{"unit 00000", "1000001700000000000000000420", orderno.ErrField},
}

func TestParseRejects(t *testing.T) {
	for _, tt := range badInputs {
		t.Run(tt.name, func(t *testing.T) {
			n, err := orderno.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, nil, want %v", tt.in, n, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Parse(%q) error = %v, want %v", tt.in, err, tt.want)
			}
			var pe *orderno.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if got, want := pe.Input, tt.in; got != want {
				t.Errorf("Input = %q, want %q", got, want)
			}
			if got, want := pe.Code(), tradeunit.CodeParamError; got != want {
				t.Errorf("Code() = %v, want %v", got, want)
			}
			if got, want := tradeunit.ErrorCode(err), tradeunit.CodeParamError; got != want {
				t.Errorf("tradeunit.ErrorCode = %v, want %v", got, want)
			}
			if n != (orderno.No{}) {
				t.Errorf("Parse returned %+v with an error, want the zero No", n)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "order number ") || strings.Contains(msg, "PARAM_ERROR") || strings.Contains(msg, "orderno") {
				t.Errorf("message %q should start with \"order number \" and carry no internals", msg)
			}
			if len(msg) > maxMessage {
				t.Errorf("message is %d bytes long, want at most %d: %q", len(msg), maxMessage, msg)
			}
			unit, uerr := orderno.UnitOf(tt.in)
			if uerr == nil || !errors.Is(uerr, tt.want) || unit != 0 {
				t.Errorf("UnitOf(%q) = %v, %v, want 0, %v", tt.in, unit, uerr, tt.want)
			}
		})
	}
}

func TestParseErrorMessages(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"123", `order number "123" must be 28 digits, got 3`},
		{"", `order number "" is empty; it must be 28 digits`},
		{"12a", `order number "12a" must contain only the digits 0-9, found 'a' at position 3`},
		{"１", `order number "１" must contain only the digits 0-9, found '１' at position 1`},
		{"ab\xffc", `order number "ab\xffc" must contain only the digits 0-9, found 'a' at position 1`},
		{"12\xff", `order number "12\xff" must contain only the digits 0-9, found byte 0xFF at position 3`},
		{valid[:27] + "9", `order number "1000011700000000000000000429" has a wrong check digit: a digit may be mistyped or two digits swapped`},
		{"9000011700000000000000000429", `order number "9000011700000000000000000429" has unknown format version 9 (its first digit)`},
		{"1000001700000000000000000420", `order number "1000001700000000000000000420" has unit number 00000, outside 1..99999`},
		{strings.Repeat("7", 100), `order number "7777777777777777777777777777777777777777"... must be 28 digits, got 100`},
		// Truncation backs up to a character boundary: 13 three-byte
		// characters fit in 40 bytes, the 14th would not.
		{strings.Repeat("１", 20), `order number "` + strings.Repeat("１", 13) + `"... must contain only the digits 0-9, found '１' at position 1`},
	}
	for _, tt := range tests {
		_, err := orderno.Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", tt.in)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("Parse(%q):\ngot  %v\nwant %v", tt.in, got, tt.want)
		}
	}
	// A ParseError built by hand still has a sensible message.
	e := &orderno.ParseError{Input: "x", Err: orderno.ErrNotDigit}
	if got, want := e.Error(), `order number "x" is invalid`; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, want := tradeunit.ErrorMessage(e), "order number must contain only the digits 0-9"; got != want {
		t.Errorf("tradeunit.ErrorMessage = %v, want %v", got, want)
	}
}

// randomNos returns n valid order numbers from a fixed seed.
func randomNos(t testing.TB, n int) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	for i := range out {
		unit := tradeunit.UnitID(1 + r.IntN(int(tradeunit.MaxUnitID)))
		sec := r.Int64N(9999999999 + 1)
		seq := r.Uint64N(orderno.MaxSeq + 1)
		out[i] = mustNew(t, unit, time.Unix(sec, 0), seq).String()
	}
	return out
}

func TestSubstitutionsCaught(t *testing.T) {
	for _, s := range randomNos(t, 50) {
		mustParse(t, s)
		b := []byte(s)
		for i := range b {
			orig := b[i]
			for c := byte('0'); c <= '9'; c++ {
				if c == orig {
					continue
				}
				b[i] = c
				// The check digit is verified before any field, so
				// every typo is reported as one, even one in the
				// version or unit digits.
				if _, err := orderno.Parse(string(b)); !errors.Is(err, orderno.ErrChecksum) {
					t.Errorf("Parse(%s) (position %d of %s changed) error = %v, want %v", b, i, s, err, orderno.ErrChecksum)
				}
			}
			b[i] = orig
		}
	}
}

func TestTranspositionsCaught(t *testing.T) {
	for _, s := range randomNos(t, 50) {
		b := []byte(s)
		for i := 0; i+1 < len(b); i++ {
			if b[i] == b[i+1] {
				continue
			}
			b[i], b[i+1] = b[i+1], b[i]
			if _, err := orderno.Parse(string(b)); !errors.Is(err, orderno.ErrChecksum) {
				t.Errorf("Parse(%s) (positions %d,%d of %s swapped) error = %v, want %v", b, i, i+1, s, err, orderno.ErrChecksum)
			}
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
}

func TestSortOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var created []string
	sec := int64(1) // single digits at first, to exercise zero padding
	seq := uint64(0)
	for range 2000 {
		// Several orders per second sometimes, and jumps of up to a month.
		switch r.IntN(3) {
		case 0:
		case 1:
			sec++
		default:
			sec += r.Int64N(30 * 24 * 3600)
		}
		seq += 1 + r.Uint64N(1000)
		created = append(created, mustNew(t, 777, time.Unix(sec, 0), seq).String())
	}
	sorted := slices.Clone(created)
	r.Shuffle(len(sorted), func(i, j int) { sorted[i], sorted[j] = sorted[j], sorted[i] })
	slices.Sort(sorted)
	if !slices.Equal(sorted, created) {
		for i := range sorted {
			if sorted[i] != created[i] {
				t.Fatalf("sorted[%d] = %v, want %v (creation order)", i, sorted[i], created[i])
			}
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters may allocate")
	}
	n := mustNew(t, 12345, time.Unix(1735689600, 0), 7)
	s := n.String()
	buf := make([]byte, 0, 64)
	b := []byte(s)
	var sink orderno.No
	var unitSink tradeunit.UnitID
	tests := []struct {
		name string
		f    func()
	}{
		{"Parse", func() { sink, _ = orderno.Parse(s) }},
		{"Parse(string(bytes))", func() { sink, _ = orderno.Parse(string(b)) }},
		{"UnitOf", func() { unitSink, _ = orderno.UnitOf(s) }},
		{"UnitOf(string(bytes))", func() { unitSink, _ = orderno.UnitOf(string(b)) }},
		{"AppendTo", func() { buf = n.AppendTo(buf[:0]) }},
		{"AppendTo then Parse", func() {
			buf = n.AppendTo(buf[:0])
			sink, _ = orderno.Parse(string(buf))
		}},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got != 0 {
			t.Errorf("%s: got %v allocs, want %v", tt.name, got, 0)
		}
	}
	if got := testing.AllocsPerRun(100, func() { s = n.String() }); got != 1 {
		t.Errorf("String: got %v allocs, want %v", got, 1)
	}
	sameNo(t, sink, n)
	if unitSink != n.Unit {
		t.Errorf("got %v, want %v", unitSink, n.Unit)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range randomNos(f, 5) {
		f.Add(s)
	}
	f.Add(valid)
	f.Add("1999999999999999999999999994")
	for _, tt := range badInputs {
		f.Add(tt.in)
	}
	sentinels := []error{orderno.ErrLength, orderno.ErrNotDigit, orderno.ErrChecksum, orderno.ErrVersion, orderno.ErrField}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := orderno.Parse(s)
		unit, uerr := orderno.UnitOf(s)
		if err != nil {
			if uerr == nil {
				t.Fatalf("Parse(%q) failed (%v) but UnitOf succeeded", s, err)
			}
			var pe *orderno.ParseError
			if !errors.As(err, &pe) || pe.Input != s {
				t.Fatalf("Parse(%q) error %#v is not a *ParseError with the input", s, err)
			}
			kinds := 0
			for _, k := range sentinels {
				if errors.Is(err, k) {
					kinds++
				}
			}
			if kinds != 1 {
				t.Fatalf("Parse(%q) error %v matches %d sentinels, want 1", s, err, kinds)
			}
			if msg := err.Error(); len(msg) > maxMessage {
				t.Fatalf("Parse(%q) message is %d bytes long, want at most %d", s, len(msg), maxMessage)
			}
			return
		}
		if got := n.String(); got != s {
			t.Fatalf("Parse(%q).String() = %v, want %v", s, got, s)
		}
		if uerr != nil || unit != n.Unit {
			t.Fatalf("UnitOf(%q) = %v, %v, want %v, nil", s, unit, uerr, n.Unit)
		}
		again, err := orderno.New(n.Unit, n.Time, n.Seq)
		if err != nil {
			t.Fatalf("New rejects the fields of parsed %q: %v", s, err)
		}
		sameNo(t, again, n)
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add(uint32(1), int64(0), uint64(0))
	f.Add(uint32(99999), int64(9999999999), uint64(orderno.MaxSeq))
	f.Add(uint32(0), int64(-1), uint64(orderno.MaxSeq+1))
	f.Add(uint32(100000), int64(10000000000), uint64(1<<64-1))
	f.Add(uint32(4242), int64(1735689600), uint64(12345678901))
	f.Fuzz(func(t *testing.T, unit uint32, unix int64, seq uint64) {
		n, err := orderno.New(tradeunit.UnitID(unit), time.Unix(unix, 0), seq)
		inRange := unit >= 1 && unit <= 99999 && unix >= 0 && unix <= 9999999999 && seq <= orderno.MaxSeq
		if (err == nil) != inRange {
			t.Fatalf("New(%d, %d, %d) error = %v, want error: %v", unit, unix, seq, err, !inRange)
		}
		if err != nil {
			return
		}
		s := n.String()
		if len(s) != orderno.Len {
			t.Fatalf("len(%q) = %v, want %v", s, len(s), orderno.Len)
		}
		sameNo(t, mustParse(t, s), orderno.No{Version: 1, Unit: tradeunit.UnitID(unit), Time: time.Unix(unix, 0), Seq: seq})
	})
}
