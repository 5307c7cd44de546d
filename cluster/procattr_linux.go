package cluster

import "syscall"

// childProcAttr puts a child in its own process group, so that Ctrl-C in the
// terminal reaches only the cluster, which stops the children in order; and
// has the kernel stop the child if the cluster dies without doing so.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
