package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"tradeunit"
)

// Replica is one logic-service process of a unit.
type Replica struct {
	Unit tradeunit.UnitID
	Name string // e.g. "unit-2-r1"
	DSN  string

	binary, dir string
	block       int64

	mu   sync.Mutex
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr returns the replica's gRPC address.
func (r *Replica) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// LogPath is where the replica's output goes.
func (r *Replica) LogPath() string { return filepath.Join(r.dir, "logs", r.Name+".log") }

// Start starts the process, on its previous address if it had one, and
// waits until it serves.
func (r *Replica) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return fmt.Errorf("%s is already running", r.Name)
	}
	listen := r.addr
	if listen == "" {
		listen = "127.0.0.1:0"
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
	args := []string{"unit", "--unit", r.Unit.String(), "--db", r.DSN, "--listen", listen, "--addr-file", addrFile}
	if r.block > 0 {
		args = append(args, "--sequence-block", fmt.Sprint(r.block))
	}
	cmd := exec.Command(r.binary, args...)
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
func (r *Replica) Stop() error { return r.signal(syscall.SIGTERM) }

// Kill kills the process at once (SIGKILL), as a crash would.
func (r *Replica) Kill() error { return r.signal(syscall.SIGKILL) }

// Running reports whether the process is running.
func (r *Replica) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd != nil
}

func (r *Replica) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopLocked(sig)
}

// stopLocked signals the process and waits for it to exit; r.mu is held.
func (r *Replica) stopLocked(sig syscall.Signal) error {
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
func (r *Replica) Pause() error { return r.send(syscall.SIGSTOP) }

// Resume lets a paused process run again (SIGCONT).
func (r *Replica) Resume() error { return r.send(syscall.SIGCONT) }

func (r *Replica) send(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return fmt.Errorf("%s is not running", r.Name)
	}
	return r.cmd.Process.Signal(sig)
}
