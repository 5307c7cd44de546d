package orderno_test

import (
	"testing"
	"time"

	"tradeunit"
	"tradeunit/orderno"
)

var (
	benchNo   = orderno.No{Version: 1, Unit: 12345, Time: time.Unix(1735689600, 0).UTC(), Seq: 12345678901}
	benchStr  = benchNo.String()
	sinkStr   string
	sinkNo    orderno.No
	sinkUnit  tradeunit.UnitID
	sinkBytes []byte
)

func BenchmarkString(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkStr = benchNo.String()
	}
}

func BenchmarkAppendTo(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = benchNo.AppendTo(buf[:0])
	}
	sinkBytes = buf
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		n, err := orderno.Parse(benchStr)
		if err != nil {
			b.Fatal(err)
		}
		sinkNo = n
	}
}

func BenchmarkUnitOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		u, err := orderno.UnitOf(benchStr)
		if err != nil {
			b.Fatal(err)
		}
		sinkUnit = u
	}
}

// BenchmarkEncodeParse encodes into a reused buffer and parses the bytes back,
// as a service writing and then routing a number would.
func BenchmarkEncodeParse(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = benchNo.AppendTo(buf[:0])
		n, err := orderno.Parse(string(buf))
		if err != nil {
			b.Fatal(err)
		}
		sinkNo = n
	}
}
