package replication_test

import (
	"errors"
	"slices"
	"testing"

	"tradeunit/replication"
)

func TestParseGTIDList(t *testing.T) {
	g := func(d, s uint32, q uint64) replication.GTID { return replication.GTID{Domain: d, Server: s, Seq: q} }
	good := []struct {
		in   string
		want replication.GTIDList
		str  string
	}{
		{"", nil, ""},
		{"  ", nil, ""},
		{"0-1-100", replication.GTIDList{g(0, 1, 100)}, "0-1-100"},
		{"0-1-100,1-2-5", replication.GTIDList{g(0, 1, 100), g(1, 2, 5)}, "0-1-100,1-2-5"},
		{"1-2-5,0-1-100", replication.GTIDList{g(1, 2, 5), g(0, 1, 100)}, "0-1-100,1-2-5"},
		{"0-1-100,\n0-2-101", replication.GTIDList{g(0, 1, 100), g(0, 2, 101)}, "0-1-100,0-2-101"},
		{" 0-1-1 , 0-3-2 ", replication.GTIDList{g(0, 1, 1), g(0, 3, 2)}, "0-1-1,0-3-2"},
		{"4294967295-4294967295-18446744073709551615", replication.GTIDList{g(4294967295, 4294967295, 18446744073709551615)},
			"4294967295-4294967295-18446744073709551615"},
		{"0-0-0", replication.GTIDList{g(0, 0, 0)}, "0-0-0"},
	}
	for _, tc := range good {
		got, err := replication.ParseGTIDList(tc.in)
		if err != nil {
			t.Errorf("ParseGTIDList(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("ParseGTIDList(%q): got %v, want %v", tc.in, got, tc.want)
		}
		if got.String() != tc.str {
			t.Errorf("ParseGTIDList(%q).String(): got %q, want %q", tc.in, got.String(), tc.str)
		}
	}

	bad := []string{
		"0", "0-1", "0-1-", "-1-2", "0--2", "0-1-2-3", "a-1-2", "0-b-2", "0-1-c", "0-1-+2", "+0-1-2", "0-1-0x10",
		"0-1-2,", ",0-1-2", "0-1-2,,0-1-3", "0-1-2;0-1-3", "0-1-2 0-1-3",
		"4294967296-1-1", "0-4294967296-1", "0-1-18446744073709551616",
		"0-1-5,0-1-6", // same domain and server twice
		"0-1-\x00", "０-1-2", "0-1-2\u00a0",
	}
	for _, in := range bad {
		l, err := replication.ParseGTIDList(in)
		var ge *replication.GTIDError
		if !errors.As(err, &ge) {
			t.Errorf("ParseGTIDList(%q): got %v, %v, want a *GTIDError", in, l, err)
			continue
		}
		if ge.Input != in {
			t.Errorf("ParseGTIDList(%q): error input %q", in, ge.Input)
		}
	}
}

func TestParseGTID(t *testing.T) {
	g, err := replication.ParseGTID("0-2-17")
	if err != nil || g != (replication.GTID{Domain: 0, Server: 2, Seq: 17}) || g.String() != "0-2-17" {
		t.Fatalf("ParseGTID(0-2-17): got %v, %v", g, err)
	}
	for _, in := range []string{"", "0-2-17,0-3-1", "0-2", "x"} {
		if _, err := replication.ParseGTID(in); err == nil {
			t.Errorf("ParseGTID(%q): got no error", in)
		}
	}
}

func FuzzParseGTIDList(f *testing.F) {
	for _, s := range []string{"", "0-1-100,1-2-5", "0-1-2,", "4294967296-1-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := replication.ParseGTIDList(s)
		if err != nil {
			return
		}
		again, err := replication.ParseGTIDList(l.String())
		if err != nil || len(again) != len(l) {
			t.Fatalf("%q: String %q does not parse back: %v", s, l.String(), err)
		}
	})
}

func TestSeqIncludes(t *testing.T) {
	l := mustList(t, "0-1-100,0-2-103,1-2-5")
	if seq, ok := l.Seq(0); !ok || seq != 103 {
		t.Errorf("Seq(0): got %d, %v, want 103, true", seq, ok)
	}
	if _, ok := l.Seq(7); ok {
		t.Error("Seq(7): got a sequence number for an absent domain")
	}
	cases := []struct {
		have, p string
		want    bool
	}{
		{"0-1-100", "", true},
		{"0-1-100", "0-1-100", true},
		{"0-1-100", "0-1-99", true},
		{"0-1-100", "0-1-101", false},
		{"0-2-101", "0-1-100", true}, // strict mode: seq orders the domain whatever the server
		{"0-1-100", "1-1-1", false},
		{"0-1-100,1-1-3", "0-1-100,1-1-2", true},
		{"", "0-1-1", false},
	}
	for _, tc := range cases {
		if got := mustList(t, tc.have).Includes(mustList(t, tc.p)); got != tc.want {
			t.Errorf("%q.Includes(%q): got %v, want %v", tc.have, tc.p, got, tc.want)
		}
	}
}

func TestErrant(t *testing.T) {
	cases := []struct {
		name, have, ref, want string
	}{
		{"same", "0-1-100", "0-1-100", ""},
		{"behind", "0-1-90", "0-1-100,0-2-120", ""},
		{"replicated then new primary wrote", "0-1-100", "0-1-100,0-2-105", ""},
		{"old primary committed one more", "0-1-101", "0-1-100,0-2-105", "0-1-101"},
		{"same seq, other server: divergence", "0-1-101", "0-1-100,0-2-101", "0-1-101"},
		{"local write on a replica", "0-1-100,0-3-101", "0-1-100", "0-3-101"},
		{"other domain", "0-1-100,1-1-4", "0-1-100", "1-1-4"},
		{"empty old", "", "0-1-3", ""},
		{"empty new", "0-1-3", "", "0-1-3"},
	}
	for _, tc := range cases {
		got := replication.Errant(mustList(t, tc.have), mustList(t, tc.ref)).String()
		if got != tc.want {
			t.Errorf("%s: Errant(%q, %q): got %q, want %q", tc.name, tc.have, tc.ref, got, tc.want)
		}
	}
}

func mustList(t *testing.T, s string) replication.GTIDList {
	t.Helper()
	l, err := replication.ParseGTIDList(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
