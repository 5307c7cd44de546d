package eventbus_test

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startServerProcess starts a nats-server process (from PATH or
// /usr/sbin) with JetStream storing under dir, listening on addr; stop
// sends it SIGTERM, a clean shutdown, and waits for it to exit. Without the
// binary the test is skipped, except under CI=true, where it fails.
func startServerProcess(t *testing.T, dir, addr string) (string, func()) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/nats-server")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nats-server is required under CI=true (Debian package nats-server)")
		}
		t.Skip("nats-server not installed (apt-get install nats-server)")
	}
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "-a", host, "-p", port, "-js", "-sd", dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("nats-server on %s did not stop within 20s of SIGTERM", addr)
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			t.Fatalf("nats-server on %s exited: %s", addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on %s not listening within 10s: %s", addr, out.String())
		}
		time.Sleep(10 * time.Millisecond) // polling the port, not waiting for it
	}
	return "nats://" + addr, stop
}
