package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar draws a long command's progress (a query store rebuild, a
// move to cold storage): one line redrawn in place on a terminal, a plain
// line every two seconds otherwise.
type progressBar struct {
	w        io.Writer
	terminal bool
	prefix   string // of a plain line
	start    time.Time
	last     time.Time
	share    float64 // done, 0..1
	line     string
	drawn    bool
}

func newProgressBar(w io.Writer, prefix string) *progressBar {
	b := &progressBar{w: w, prefix: prefix, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			b.terminal = true
		}
	}
	return b
}

// show records the progress, share done (0..1) and line, and draws it if
// the last drawing is old enough.
func (b *progressBar) show(share float64, line string) {
	b.share, b.line = min(max(share, 0), 1), line
	now := time.Now()
	every := 2 * time.Second
	if b.terminal {
		every = 100 * time.Millisecond
	}
	if now.Sub(b.last) < every {
		return
	}
	b.last = now
	b.draw()
}

func (b *progressBar) draw() {
	b.drawn = true
	if b.terminal {
		const width = 30
		filled := int(b.share * width)
		fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %s\x1b[K", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), b.share*100, b.line)
		return
	}
	fmt.Fprintf(b.w, "%s: %3.0f%% %s\n", b.prefix, b.share*100, b.line)
}

// done draws the last progress, if any, and ends its line.
func (b *progressBar) done() {
	if !b.drawn && b.line == "" {
		return
	}
	b.draw()
	if b.terminal {
		fmt.Fprintln(b.w)
	}
}

// rateAndETA is how fast done grows since the bar started, and when it
// reaches total ("-" when unknown).
func (b *progressBar) rateAndETA(done, total int64) (float64, string) {
	rate := float64(done) / max(time.Since(b.start).Seconds(), 1e-3)
	if rate <= 0 || total <= done {
		return rate, "-"
	}
	return rate, (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
}
