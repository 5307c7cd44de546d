package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"tradeunit"
	"tradeunit/cluster"
	"tradeunit/replication"
	"tradeunit/replication/localdb"
)

// The rooms tests stand three Linux network namespaces for three machine
// rooms: each has one veth link to a bridge in the root namespace, and an
// address on the private network 10.77.0.0/16, where the root namespace
// (the proxy, the clients and the failover controller) is 10.77.0.1. One
// layer-2 segment: rooms reach each other without IP forwarding on the
// host, and taking a room's link down cuts it off from everyone while its
// processes run on.
const (
	// roomPrefix names every namespace and link the tests make, so that a
	// run removes what a killed earlier one left.
	roomPrefix = "tu-room-"
	roomBridge = roomPrefix + "br"
	// roomNet is the root namespace's address on the rooms' network, with
	// the network's length.
	roomNet = "10.77.0.1/16"
	// roomUserHost is the host part of the MariaDB accounts: every room,
	// and the root namespace, connects from this network.
	roomUserHost = "10.77.%"
)

// room is one network namespace standing for a machine room.
type room struct {
	name string // the zone in the routing table and topology: a, b, c
	ns   string // the namespace, tu-room-NAME
	link string // the root side of its veth; down cuts the room off
	ip   string // its address: 10.77.N.2 for the N-th room
}

// prefix runs a command inside the room.
func (r *room) prefix() []string { return []string{"ip", "netns", "exec", r.ns} }

// place runs p inside the room, listening on the room's address.
func (r *room) place(p *cluster.Process) { p.Host, p.Prefix = r.ip, r.prefix() }

// dbPlace is where a MariaDB instance in the room runs.
func (r *room) dbPlace() localdb.Place { return localdb.Place{Host: r.ip, Prefix: r.prefix()} }

// needNetns skips the test when network namespaces cannot be made (not
// root, no ip command), except under CI=true, where it fails.
func needNetns(t *testing.T) {
	t.Helper()
	err := func() error {
		if os.Geteuid() != 0 {
			return fmt.Errorf("network namespaces need root (euid %d)", os.Geteuid())
		}
		if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns list: %v: %s", err, out)
		}
		return nil
	}()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// ip runs the ip command; failing, it fails the test.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// startRooms makes one room per name, addressed in order 10.77.1.2, 10.77.2.2,
// ... Its cleanup, registered first so that it runs after the processes
// in the rooms have stopped, removes them again.
func startRooms(t *testing.T, names ...string) []*room {
	t.Helper()
	needNetns(t)
	removeRooms()
	t.Cleanup(removeRooms)
	ip(t, "link", "add", roomBridge, "type", "bridge")
	ip(t, "addr", "add", roomNet, "dev", roomBridge)
	ip(t, "link", "set", roomBridge, "up")
	var rooms []*room
	for i, name := range names {
		r := &room{name: name, ns: roomPrefix + name, link: roomPrefix + name, ip: fmt.Sprintf("10.77.%d.2", i+1)}
		ip(t, "netns", "add", r.ns)
		ip(t, "link", "add", r.link, "type", "veth", "peer", "name", "eth0", "netns", r.ns)
		ip(t, "link", "set", r.link, "master", roomBridge, "up")
		ip(t, "-n", r.ns, "addr", "add", r.ip+"/16", "dev", "eth0")
		ip(t, "-n", r.ns, "link", "set", "eth0", "up")
		ip(t, "-n", r.ns, "link", "set", "lo", "up")
		rooms = append(rooms, r)
	}
	return rooms
}

// removeRooms kills what runs in the tests' namespaces and removes them
// and their links: the end of a test, or the leftovers of a killed run.
func removeRooms() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], roomPrefix) {
			killIn(f[0])
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		// "7: tu-room-a@if2: <...>": the name ends at '@' or ':'.
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, roomPrefix) {
			exec.Command("ip", "link", "del", name).Run()
		}
	}
}

// killIn kills -9 every process in namespace ns and returns how many.
func killIn(ns string) int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	n := 0
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// lose kills -9 everything running in the room at once, as a power cut
// would, and returns how many processes that was.
func (r *room) lose() int { return killIn(r.ns) }

// cut takes the room's link down: its processes run on, unreachable, and
// reach no one. heal brings the link back.
func (r *room) cut(t *testing.T)  { t.Helper(); ip(t, "link", "set", r.link, "down") }
func (r *room) heal(t *testing.T) { t.Helper(); ip(t, "link", "set", r.link, "up") }

// roomOf returns the room whose address is host, or nil.
func roomOf(rooms []*room, host string) *room {
	for _, r := range rooms {
		if r.ip == host {
			return r
		}
	}
	return nil
}

// roomEvent is what clients saw of a room's loss or cut: the failure
// window runs from the event to the end of the last failed request.
type roomEvent struct {
	at time.Time // the kill or the cut
	// before counts the requests that failed before it: should be none.
	before int
	// failed and seen count the requests in the window (in flight at the
	// event, or started before the window's end) that failed, and all.
	failed, seen int
	// why counts the window's failures by op, status and code.
	why    map[string]int
	window time.Duration
	// createsBack is when, after the event, the last failed create ended:
	// from then on every create succeeded (0: none failed).
	createsBack time.Duration
	// rto is the event to the end of the first change (create or pay)
	// acknowledged on unit u that started after it.
	rto time.Duration
	// reads of unit u's orders that started between the event and the rto.
	reads haCount
	// slow counts the successful requests, from the event on, that took
	// over a second, and slowest is the longest.
	slow    int
	slowest time.Duration
}

// measureRoomEvent computes what clients saw of an event at at, unit u
// being the one whose primary was in the room.
func measureRoomEvent(events []haEvent, at time.Time, u tradeunit.UnitID) roomEvent {
	m := roomEvent{at: at, why: map[string]int{}}
	var last time.Time
	for _, e := range events {
		switch {
		case e.ok:
			if e.unit == u && (e.op == "create" || e.op == "pay") && !e.start.Before(at) && (m.rto == 0 || e.end.Sub(at) < m.rto) {
				m.rto = e.end.Sub(at)
			}
		case e.end.Before(at):
			m.before++
		default:
			if e.end.After(last) {
				last = e.end
			}
			if e.op == "create" && e.end.Sub(at) > m.createsBack {
				m.createsBack = e.end.Sub(at)
			}
		}
	}
	if !last.IsZero() {
		m.window = last.Sub(at)
	}
	for _, e := range events {
		if !e.end.Before(at) && !e.start.After(at.Add(m.window)) {
			m.seen++
			if !e.ok {
				m.failed++
				m.why[fmt.Sprintf("%s unit %d: %d %s", e.op, e.unit, e.status, e.code)]++
			}
		}
	}
	for _, e := range events {
		if d := e.end.Sub(e.start); e.ok && !e.end.Before(at) {
			m.slowest = max(m.slowest, d)
			if d > time.Second {
				m.slow++
			}
		}
	}
	for _, op := range []string{"query", "query-eventual", "lookup"} {
		n := countEvents(events, op, u, at, at.Add(m.rto))
		m.reads.total, m.reads.ok, m.reads.replica, m.reads.degraded = m.reads.total+n.total, m.reads.ok+n.ok, m.reads.replica+n.replica, m.reads.degraded+n.degraded
	}
	return m
}

// roomBounds are what a drill asserts of a roomEvent.
type roomBounds struct {
	rto, window, creates time.Duration
	failedShare          float64
}

// check asserts the bounds of what clients saw.
func (m roomEvent) check(t *testing.T, b roomBounds) {
	t.Helper()
	if m.before > 0 {
		t.Errorf("%d requests failed before the event, want none", m.before)
	}
	if f := float64(m.failed) / float64(max(m.seen, 1)); f > b.failedShare {
		t.Errorf("failed share %d of %d = %.2f, want at most %.2f", m.failed, m.seen, f, b.failedShare)
	}
	if m.window > b.window {
		t.Errorf("failure window %v, want at most %v", m.window, b.window)
	}
	if m.createsBack > b.creates {
		t.Errorf("creates back to 100%% after %v, want within %v", m.createsBack, b.creates)
	}
	if m.rto == 0 || m.rto > b.rto {
		t.Errorf("RTO %v, want within %v", m.rto, b.rto)
	}
}

// log writes the figures to the test's log, as bench/RESULTS.md quotes them.
func (m roomEvent) log(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: RTO (event → first change acknowledged on the unit) %v; failure window %v; failed requests in it %d of %d (%.1f%%); creates back to 100%% after %v; reads of the unit meanwhile %d of %d ok (%d from a replica, %d degraded); from the event on, %d successful requests took over 1 s, the slowest %v",
		what, m.rto.Round(time.Millisecond), m.window.Round(time.Millisecond), m.failed, m.seen, share(m.failed, m.seen),
		m.createsBack.Round(time.Millisecond), m.reads.ok, m.reads.total, m.reads.replica, m.reads.degraded, m.slow, m.slowest.Round(time.Millisecond))
	for _, k := range slices.Sorted(maps.Keys(m.why)) {
		t.Logf("  failed: %d × %s", m.why[k], k)
	}
}

// isolatedView is what a cut-off server says of itself, asked through its
// Unix socket: the file system reaches into a room its network does not.
type isolatedView struct {
	readOnly     bool
	semiClients  int    // Rpl_semi_sync_master_clients: replicas acknowledging
	waitSessions int    // Rpl_semi_sync_master_wait_sessions: commits waiting for one
	binlogPos    string // @@gtid_binlog_pos: what its binlog holds, acknowledged or not
	// probeState is the thread state of writeThroughSocket's insert, if
	// it is still running.
	probeState string
}

// socketDB opens in as root@localhost over its Unix socket
// (mariadb-install-db's account, without a password).
func socketDB(t *testing.T, in *localdb.Instance) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "unix", in.SocketPath(), 2*time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// viewThroughSocket asks in about itself over its Unix socket.
func viewThroughSocket(t *testing.T, in *localdb.Instance) isolatedView {
	t.Helper()
	db := socketDB(t, in)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var v isolatedView
	if err := db.QueryRowContext(ctx, "SELECT @@global.read_only, @@global.gtid_binlog_pos").Scan(&v.readOnly, &v.binlogPos); err != nil {
		t.Fatalf("%s through its socket: %v", in.Name, err)
	}
	// The probe's client gave up, but its server thread goes on with the
	// commit.
	db.QueryRowContext(ctx, "SELECT STATE FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO "+probeTable+"%'").Scan(&v.probeState)
	for name, dst := range map[string]*int{"Rpl_semi_sync_master_clients": &v.semiClients, "Rpl_semi_sync_master_wait_sessions": &v.waitSessions} {
		var n string
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&n, dst); err != nil {
			t.Fatalf("%s through its socket: %s: %v", in.Name, name, err)
		}
	}
	return v
}

// probeTable is where writeThroughSocket writes: a table of its own, so
// that the write waits for nothing but its acknowledgement (a logic
// service's heartbeat, waiting on the isolated server too, holds locks in
// the heartbeat table).
const probeTable = replication.HeartbeatDB + ".isolation_probe"

// createProbeTable creates probeTable on the primary, for every server.
func createProbeTable(t *testing.T, primary *localdb.Instance) {
	t.Helper()
	rootExec(t, primary, "CREATE TABLE IF NOT EXISTS "+probeTable+" (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB")
}

// writeThroughSocket commits a row in probeTable on in as root (whom
// read_only would not stop) over its Unix socket and returns the error,
// nil if the commit was acknowledged within wait. On a semi-sync primary
// no replica can reach, it never is: the commit waits in the binlog for
// an acknowledgement, and a restart as a replica drops it.
func writeThroughSocket(t *testing.T, in *localdb.Instance, wait time.Duration) error {
	t.Helper()
	db := socketDB(t, in)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := db.ExecContext(ctx, "INSERT INTO "+probeTable+" () VALUES ()")
	return err
}
