//go:build !linux

package localdb

import "syscall"

// childProcAttr puts a server in its own process group, so that Ctrl-C in
// the terminal reaches only the Go program, which stops the servers itself.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
