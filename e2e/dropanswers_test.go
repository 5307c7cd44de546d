package e2e

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// answerDrop is a TCP forwarder in front of one gRPC server that can lose
// the server's answers and nothing else: the caller's requests reach the
// server as they are (a create commits there), while the HTTP/2 frames of
// the answers (HEADERS, DATA, RST_STREAM of a stream) are dropped. The
// connection's own frames (SETTINGS, PING, WINDOW_UPDATE, GOAWAY) still
// pass, so the connection stays up, new ones are made, flow control keeps
// the requests coming, and every call times out: its outcome is unknown.
//
// toxiproxy cannot do this: its toxics act on bytes, and one that withholds
// the server's bytes stops reading them, so the server's writes block and,
// with them, its reading of further requests.
type answerDrop struct {
	upstream string
	ln       net.Listener
	dropping atomic.Bool
	dropped  atomic.Int64 // answer frames dropped

	mu     sync.Mutex
	conns  map[net.Conn]bool // both ends of every connection
	closed bool
	wg     sync.WaitGroup
}

// newAnswerDrop starts a forwarder to upstream on a loopback port; it
// passes everything until Drop, and stops when the test ends.
func newAnswerDrop(t *testing.T, upstream string) *answerDrop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &answerDrop{upstream: upstream, ln: ln, conns: map[net.Conn]bool{}}
	d.wg.Add(1)
	go d.accept()
	t.Cleanup(d.close)
	return d
}

// Addr is where callers connect instead of the upstream.
func (d *answerDrop) Addr() string { return d.ln.Addr().String() }

// Drop starts dropping the server's answers, on every connection.
func (d *answerDrop) Drop() { d.dropping.Store(true) }

// Restore passes everything again. The connections that lost answers are
// closed first: their header compression state is behind the server's, so
// none may carry on; callers reconnect.
func (d *answerDrop) Restore() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.conns {
		c.Close()
	}
	clear(d.conns)
	d.dropping.Store(false)
}

// Dropped returns how many frames of answers were dropped.
func (d *answerDrop) Dropped() int64 { return d.dropped.Load() }

func (d *answerDrop) close() {
	d.ln.Close()
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.Restore()
	d.wg.Wait()
}

func (d *answerDrop) accept() {
	defer d.wg.Done()
	for {
		down, err := d.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", d.upstream)
		if err != nil {
			down.Close()
			continue
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			down.Close()
			up.Close()
			return
		}
		d.conns[down], d.conns[up] = true, true
		d.wg.Add(2)
		d.mu.Unlock()
		go func() {
			defer d.wg.Done()
			io.Copy(up, down) // requests, as they are
			d.drop(down, up)
		}()
		go func() {
			defer d.wg.Done()
			d.answers(down, up)
			d.drop(down, up)
		}()
	}
}

// drop closes both ends of a connection.
func (d *answerDrop) drop(down, up net.Conn) {
	down.Close()
	up.Close()
	d.mu.Lock()
	delete(d.conns, down)
	delete(d.conns, up)
	d.mu.Unlock()
}

// answers copies the server's HTTP/2 frames to the caller, but for those of
// answers while dropping. The server's side of a connection has no preface:
// it is frames from the first byte (RFC 9113 §3.4, §4.1).
func (d *answerDrop) answers(down, up net.Conn) {
	r := bufio.NewReaderSize(up, 64<<10)
	w := bufio.NewWriterSize(down, 64<<10)
	var head [9]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		if cap(payload) < n {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		stream := (uint32(head[5])<<24 | uint32(head[6])<<16 | uint32(head[7])<<8 | uint32(head[8])) & 0x7fffffff
		if stream != 0 && answerFrame(head[3]) && d.dropping.Load() {
			d.dropped.Add(1)
			continue
		}
		w.Write(head[:])
		w.Write(payload)
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// answerFrame reports whether frames of type typ on a stream carry (or end)
// the answer to a call: DATA, HEADERS, RST_STREAM, PUSH_PROMISE and
// CONTINUATION.
func answerFrame(typ byte) bool {
	switch typ {
	case 0x0, 0x1, 0x3, 0x5, 0x9:
		return true
	}
	return false
}
