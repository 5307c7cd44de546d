package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEverySocketOfDevRequiresACertificate scans every listening TCP socket
// of a `tradeunit dev` cluster (the dev process and its descendants): each
// is the proxy's public API, or refuses a TLS client without a certificate
// and answers plaintext HTTP with nothing it would serve.
func TestEverySocketOfDevRequiresACertificate(t *testing.T) {
	dir := t.TempDir()
	dev := startDev(t, "", "--data", dir, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0")
	defer dev.stop()
	u, err := url.Parse(dev.url)
	if err != nil {
		t.Fatal(err)
	}
	public := u.Host
	// Every process dev starts listens within its start; poll until the
	// set of sockets stops growing for a while.
	var addrs []string
	stable := 0
	for deadline := time.Now().Add(20 * time.Second); stable < 5 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		now := listeningSockets(t, dev.pid)
		if len(now) == len(addrs) {
			stable++
		} else {
			stable = 0
		}
		addrs = now
	}
	if len(addrs) < 2 {
		t.Fatalf("found %d listening sockets (%v), want the proxy's and the internal ones", len(addrs), addrs)
	}
	sawPublic := false
	for _, addr := range addrs {
		if addr == public {
			sawPublic = true
			continue
		}
		if err := tlsWithoutCertificate(addr); err == nil {
			t.Errorf("%s: a TLS client without a certificate was served", addr)
		}
		if answer := plaintextHTTP(addr); strings.HasPrefix(answer, "HTTP/") && !strings.Contains(answer[:min(len(answer), 16)], " 400") {
			t.Errorf("%s: plaintext HTTP answered %.60q", addr, answer)
		}
	}
	if !sawPublic {
		t.Errorf("the proxy's API %s is not among the sockets %v", public, addrs)
	}
}

// tlsWithoutCertificate completes a handshake presenting no certificate and
// makes one request: nil if the server served it.
func tlsWithoutCertificate(addr string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	// Under TLS 1.3 the server judges the client's certificate after the
	// client's handshake is done: the refusal comes on the first read.
	if _, err := fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 2") {
		return fmt.Errorf("answered %q", line)
	}
	return nil
}

// plaintextHTTP sends a plaintext request and returns what came back
// within 2 s.
func plaintextHTTP(addr string) string {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	b, _ := io.ReadAll(io.LimitReader(conn, 512))
	return string(b)
}

// listeningSockets returns the addresses (host:port, loopback for a
// wildcard) of the TCP sockets in LISTEN state that pid or a descendant
// holds: the inodes of their fds matched against /proc/net/tcp{,6}.
func listeningSockets(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	for _, p := range descendants(pid) {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", p))
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			if addr, err := procAddr(fields[1]); err == nil {
				out = append(out, addr)
			}
		}
		f.Close()
	}
	return out
}

// procAddr decodes /proc/net/tcp's "0100007F:1F90" (address in host byte
// order, 32-bit words) to a dialable host:port.
func procAddr(s string) (string, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		return "", err
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return "", err
	}
	for i := 0; i+4 <= len(raw); i += 4 { // each word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	ip := net.IP(raw)
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), nil
}

// descendants returns pid and every process below it.
func descendants(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// The command name may hold spaces; the fields after ")" are
		// state and parent.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(s)))
		children[ppid] = append(children[ppid], p)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}
