package localdb

import "syscall"

// childProcAttr puts a server in its own process group, so that Ctrl-C in
// the terminal reaches only the Go program, which stops the servers itself;
// and has the kernel shut the server down cleanly (SIGTERM) if the program
// dies without doing so, so that no test leaves a mariadbd behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
