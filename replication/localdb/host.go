package localdb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ErrNoMariaDB is returned by Available and Start when the MariaDB server
// binaries (mariadbd, mariadb-install-db) cannot be found.
var ErrNoMariaDB = errors.New("MariaDB server binaries not found")

// binaries are the MariaDB programs a set runs.
type binaries struct{ mariadbd, installDB string }

// Available reports whether the MariaDB server binaries are installed: nil,
// or an error wrapping ErrNoMariaDB.
func Available() error {
	_, err := findBinaries(Config{})
	return err
}

func findBinaries(cfg Config) (binaries, error) {
	b := binaries{mariadbd: cfg.Mariadbd, installDB: cfg.InstallDB}
	if b.mariadbd == "" {
		b.mariadbd = lookPath("mariadbd", "/usr/sbin/mariadbd", "/usr/local/sbin/mariadbd", "/usr/local/mysql/bin/mariadbd")
	}
	if b.installDB == "" {
		b.installDB = lookPath("mariadb-install-db", "/usr/bin/mariadb-install-db", "/usr/local/mysql/scripts/mariadb-install-db")
	}
	if b.mariadbd == "" || b.installDB == "" {
		return b, fmt.Errorf("%w (want mariadbd and mariadb-install-db; Debian: apt-get install mariadb-server)", ErrNoMariaDB)
	}
	return b, nil
}

// lookPath finds name on PATH, else the first of the usual places that
// exists (/usr/sbin is not on every user's PATH).
func lookPath(name string, usual ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range usual {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// pickPorts returns n loopback ports: base, base+1, ... when base > 0,
// else random ones below the kernel's ephemeral range; each is checked
// free. Not a port the kernel picks: that comes from the ephemeral range,
// where every outgoing connection (the tests' own, the replicas') also
// draws its local port, and one could take it in the second before
// mariadbd binds. A port checked free is still not promised.
func pickPorts(base, n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	lo, hi := portRange()
	for i := range n {
		var l net.Listener
		var err error
		if base > 0 {
			l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
		} else {
			for range 100 {
				if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo))); err == nil {
					break
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("localdb: port for instance %d: %w", i+1, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portRange is where pickPorts draws from: from 10000 up to the start of
// the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range,
// 32768 by default).
func portRange() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if start, err := strconv.Atoi(f[0]); err == nil && start > lo+1000 {
				hi = start
			}
		}
	}
	return lo, hi
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
