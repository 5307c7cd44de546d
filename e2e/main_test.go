// Package e2e holds the end-to-end and failure tests: whole clusters of real
// processes on loopback sockets over real SQLite files and MariaDB
// databases, driven through the public REST API.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the tradeunit command the clusters run, built once per test run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tradeunit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tradeunit")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
		// A race-built process sleeps a second at exit (atexit_sleep_ms) so
		// that late reports get out; the tests stop hundreds of processes,
		// and races are reported when they happen anyway.
		os.Setenv("GORACE", "atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	}
	build := exec.Command("go", append(args, "tradeunit/cmd/tradeunit")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tradeunit:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
