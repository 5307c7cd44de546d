// Package etcdtest starts real etcd servers for tests: one member, or a
// three-member cluster on loopback, each with a temporary data directory,
// as a deployment runs them: clients over TLS with certificates of a
// test CA (--client-cert-auth), and etcd's authentication on, each
// tradeunit role an etcd user (routing.SetupEtcdAuth).
package etcdtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"tradeunit/pki"
	"tradeunit/routing"
)

// Member is one etcd server process.
type Member struct {
	Name      string
	ClientURL string // https://127.0.0.1:PORT
	args      []string
	dir       string
	cmd       *exec.Cmd
	done      chan struct{}
	tb        testing.TB
}

// Cluster is a running etcd cluster.
type Cluster struct {
	Members []*Member
	// CA issued the members' certificates; clients need one of its
	// certificates (Client) to connect.
	CA    *pki.CA
	auth  bool
	admin *tls.Config
	tb    testing.TB
}

// Admin is an operator's client configuration (role admin, which may
// write the tables), made once per cluster.
func (c *Cluster) Admin() *tls.Config {
	if c.admin == nil {
		c.admin = c.Client(pki.RoleAdmin, "etcdtest-admin")
	}
	return c.admin
}

// Spec returns the routing-table spec of the cluster: etcd://HOSTS/PREFIX.
// Its first use with a new prefix turns on etcd's authentication for it
// (once per cluster: etcd has one auth switch).
func (c *Cluster) Spec(prefix string) string {
	var hosts []string
	for _, m := range c.Members {
		hosts = append(hosts, strings.TrimPrefix(m.ClientURL, "https://"))
	}
	spec := "etcd://" + strings.Join(hosts, ",") + prefix
	if !c.auth {
		c.auth = true
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		auth := routing.DefaultEtcdAuth()
		auth.WholeKeyspace = true
		if err := routing.SetupEtcdAuth(ctx, spec, c.Admin(), auth, "root-password"); err != nil {
			c.tb.Fatal(err)
		}
	}
	return spec
}

// Client returns the TLS configuration of a client with a new certificate
// of the cluster's CA for role and name: what a program of that role
// connects to etcd with.
func (c *Cluster) Client(role pki.Role, name string) *tls.Config {
	c.tb.Helper()
	k, err := c.CA.IssueKeys(c.tb.TempDir(), pki.Request{Role: role, Name: name})
	if err != nil {
		c.tb.Fatal(err)
	}
	return k.ClientTLS()
}

// Binary returns the etcd binary, skipping the test if there is none —
// except under CI=true, where it fails.
func Binary(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("etcd is required under CI=true (Debian package etcd-server)")
		}
		tb.Skip("etcd not installed (apt-get install etcd-server)")
	}
	return path
}

// Start starts a cluster of n members (1 or 3) with a CA of its own, and
// stops it when the test ends.
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ca, err := pki.InitCA(filepath.Join(tb.TempDir(), "ca"), "etcdtest CA")
	if err != nil {
		tb.Fatal(err)
	}
	return StartWithCA(tb, n, ca)
}

// StartWithCA is Start with the members' certificates issued by ca (a
// local cluster's: cluster.Config.CADir), so that the programs' own
// certificates are trusted.
func StartWithCA(tb testing.TB, n int, ca *pki.CA) *Cluster {
	tb.Helper()
	bin := Binary(tb)
	dir := tb.TempDir()
	server, err := ca.IssueFiles(dir, pki.Request{Role: pki.RoleServer, Name: "etcd"})
	if err != nil {
		tb.Fatal(err)
	}
	type ports struct{ client, peer int }
	ps := make([]ports, n)
	var initial []string
	for i := range ps {
		ps[i] = ports{freePort(tb), freePort(tb)}
		initial = append(initial, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, ps[i].peer))
	}
	c := &Cluster{CA: ca, tb: tb}
	for i, p := range ps {
		name := fmt.Sprintf("m%d", i)
		m := &Member{Name: name, ClientURL: fmt.Sprintf("https://127.0.0.1:%d", p.client), dir: dir, tb: tb}
		m.args = []string{bin, "--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", p.peer),
			"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", p.peer),
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "tradeunit-test", "--heartbeat-interval", "50", "--election-timeout", "500",
			"--log-level", "error",
			"--cert-file", server.Cert, "--key-file", server.Key, "--trusted-ca-file", server.CA, "--client-cert-auth"}
		m.Start()
		c.Members = append(c.Members, m)
	}
	tb.Cleanup(func() {
		for _, m := range c.Members {
			m.Kill()
		}
	})
	for _, m := range c.Members {
		m.waitReady()
	}
	return c
}

// Start starts (or restarts, on the same data directory) the member.
func (m *Member) Start() {
	m.tb.Helper()
	m.cmd = exec.Command(m.args[0], m.args[1:]...)
	log, err := os.OpenFile(filepath.Join(m.dir, m.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.tb.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		m.tb.Fatalf("start etcd: %v", err)
	}
	m.done = make(chan struct{})
	go func() { m.cmd.Wait(); log.Close(); close(m.done) }()
}

// Kill kills the member at once.
func (m *Member) Kill() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// waitReady waits until the member accepts client connections.
func (m *Member) waitReady() {
	m.tb.Helper()
	addr := strings.TrimPrefix(m.ClientURL, "https://")
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-m.done:
			m.tb.Fatalf("etcd %s exited during start; see %s", m.Name, filepath.Join(m.dir, m.Name+".log"))
		default:
		}
	}
	m.tb.Fatalf("etcd %s not ready within 20s", m.Name)
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
