package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process of the tradeunit binary that serves on a
// listen address and reports the address it bound by writing it to a file
// (its --addr-file flag), so that it can listen on port 0.
type Process struct {
	Name string // e.g. "unit-2-r1"; names its log file
	// Host is the address it listens on when it has none yet; "" is
	// 127.0.0.1. Set before the first Start.
	Host string
	// Prefix is the command it runs under, e.g. ip netns exec NAME to
	// run it in a network namespace standing for a machine room; none
	// runs the binary directly. The process id is the binary's as long
	// as the prefix execs it (ip netns exec does), so Kill reaches it.
	Prefix []string

	binary, dir string
	args        func(listen, addrFile string) []string

	mu   sync.Mutex
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// NewProcess returns a Process, not started, running binary with args(listen,
// addrFile); its logs go to dir/logs/name.log.
func NewProcess(binary, dir, name string, args func(listen, addrFile string) []string) *Process {
	return &Process{Name: name, binary: binary, dir: dir, args: args}
}

// Addr returns the address the process serves on.
func (r *Process) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Pid returns the process id, or 0 when it is not running.
func (r *Process) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// LogPath is where the process's output goes.
func (r *Process) LogPath() string { return filepath.Join(r.dir, "logs", r.Name+".log") }

// Start starts the process, on its previous address if it had one, and
// waits until it serves.
func (r *Process) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runningLocked() {
		return fmt.Errorf("%s is already running", r.Name)
	}
	listen := r.addr
	if listen == "" {
		host := r.Host
		if host == "" {
			host = "127.0.0.1"
		}
		listen = net.JoinHostPort(host, "0")
	}
	addrFile := filepath.Join(r.dir, "run", r.Name+".addr")
	os.Remove(addrFile)
	if err := os.MkdirAll(filepath.Dir(addrFile), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.LogPath()), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(r.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	argv := append(slices.Clone(r.Prefix), r.binary)
	argv = append(argv, r.args(listen, addrFile)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", r.Name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	r.cmd, r.done = cmd, done

	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(addrFile); err == nil && strings.HasSuffix(string(data), "\n") {
			r.addr = strings.TrimSpace(string(data))
			return nil
		}
		select {
		case <-done:
			r.cmd = nil
			return fmt.Errorf("%s exited during start; see %s", r.Name, r.LogPath())
		case <-ctx.Done():
			r.stopLocked(syscall.SIGKILL)
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stopLocked(syscall.SIGKILL)
			return fmt.Errorf("%s did not start within 30s; see %s", r.Name, r.LogPath())
		}
	}
}

// Stop stops the process gracefully (SIGTERM: it finishes calls in flight).
func (r *Process) Stop() error { return r.signal(syscall.SIGTERM) }

// Kill kills the process at once (SIGKILL), as a crash would.
func (r *Process) Kill() error { return r.signal(syscall.SIGKILL) }

// Running reports whether the process is running: started, and neither
// stopped nor exited on its own (crashed).
func (r *Process) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runningLocked()
}

func (r *Process) runningLocked() bool {
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *Process) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopLocked(sig)
}

// stopLocked signals the process and waits for it to exit; r.mu is held.
func (r *Process) stopLocked(sig syscall.Signal) error {
	if r.cmd == nil {
		return nil
	}
	if err := r.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	r.cmd.Process.Signal(syscall.SIGCONT) // a paused process must run to handle SIGTERM
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
	return nil
}

// Pause freezes the process (SIGSTOP): it keeps its connections open but
// answers nothing, like a hung host or a full stop-the-world pause.
func (r *Process) Pause() error { return r.send(syscall.SIGSTOP) }

// Resume lets a paused process run again (SIGCONT).
func (r *Process) Resume() error { return r.send(syscall.SIGCONT) }

func (r *Process) send(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return fmt.Errorf("%s is not running", r.Name)
	}
	return r.cmd.Process.Signal(sig)
}
