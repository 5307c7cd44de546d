package localdb

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"tradeunit/dsn"
	"tradeunit/secrets"
)

// The users every instance has. Their passwords are made at random when the
// set is created and kept in the set's secrets file (Set.SecretsPath), mode
// 600: nothing else holds them.
const (
	// RootUser administers the servers (fence, promote, repoint).
	RootUser = "root"
	// ReplUser is the replication user (REPLICATION SLAVE).
	ReplUser = "repl"
	// AppUser is the application user: ALL on `tradeunit\_%`.*, PROCESS
	// (the event relay reads INNODB_TRX), and neither SUPER nor READ ONLY
	// ADMIN, so that read_only fences it.
	AppUser = "tradeunit"
)

const (
	startTimeout = 60 * time.Second
	// stopTimeout bounds a clean shutdown. A primary with commits waiting
	// for acknowledgement waits for them at shutdown, up to the 24 h
	// semi-sync timeout: past this, the instance is killed.
	stopTimeout = 30 * time.Second
)

// loopback is where an instance runs unless its Place says otherwise.
const loopback = "127.0.0.1"

// Instance is one mariadbd of a Set, with its own port and data directory.
type Instance struct {
	Name     string // "db1", "db2", ...
	ServerID int
	Host     string // the address it binds: 127.0.0.1 unless placed elsewhere (Config.Places)
	Port     int
	Dir      string // the instance's directory: my.cnf, error.log, data/
	DataDir  string

	bins      binaries
	prefix    []string // the command mariadbd runs under (Place.Prefix)
	userHost  string   // the host part of its accounts (Config.UserHost)
	logger    *slog.Logger
	passwords *secrets.Secrets

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	role Role // of the last start
}

// Addr is the instance's TCP address.
func (in *Instance) Addr() string { return net.JoinHostPort(in.Host, strconv.Itoa(in.Port)) }

// RootDSN is the go-sql-driver DSN of root, with its password (all
// privileges: administration and the replication package). It is for the
// process that holds the set's secrets: never print it.
func (in *Instance) RootDSN() string { return in.driverDSN(RootUser, "") }

// AppDSN is the go-sql-driver DSN of the application user on database db,
// with its password (never print it). read_only fences this user (it lacks
// SUPER and READ ONLY ADMIN); db must match `tradeunit\_%` for it to have
// rights there.
func (in *Instance) AppDSN(db string) string { return in.driverDSN(AppUser, db) }

// AppStorage is the storage DSN of the application user on database db,
// as the storage topology names it: without a password, which the logic
// services find in the set's secrets file.
func (in *Instance) AppStorage(db string) dsn.DSN {
	return dsn.MustParse("mysql:" + AppUser + "@tcp(" + in.Addr() + ")/" + db)
}

func (in *Instance) driverDSN(user, db string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = user, "tcp", in.Addr(), db
	cfg.Passwd, _ = in.passwords.Password(user, in.Addr())
	return cfg.FormatDSN()
}

// ConfigPath is the instance's my.cnf.
func (in *Instance) ConfigPath() string { return filepath.Join(in.Dir, "my.cnf") }

// ErrorLogPath is the server's error log.
func (in *Instance) ErrorLogPath() string { return filepath.Join(in.Dir, "error.log") }

func (in *Instance) tmpDir() string { return filepath.Join(in.Dir, "tmp") }

// SocketPath is the server's Unix socket, in the data directory.
func (in *Instance) SocketPath() string { return filepath.Join(in.DataDir, "mariadbd.sock") }

// Pid is the server's process id, 0 when it is not running.
func (in *Instance) Pid() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil {
		return 0
	}
	return in.cmd.Process.Pid
}

// Running reports whether the server process is running (or paused).
func (in *Instance) Running() bool { return in.Pid() != 0 }

// Start starts the server again, on the same port and data directory, in
// the role of its last start. It returns once the server answers; the
// server is read-only (replication.Promote makes it writable).
func (in *Instance) Start(ctx context.Context) error {
	in.mu.Lock()
	role := in.role
	in.mu.Unlock()
	return in.StartAs(ctx, role)
}

// StartAs starts the server as role (see Role: it decides the semi-sync
// primary side and crash recovery). An old primary that is to rejoin
// after a failover starts as Replica.
func (in *Instance) StartAs(ctx context.Context, role Role) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil {
		return fmt.Errorf("%s is already running", in.Name)
	}
	if err := os.MkdirAll(in.tmpDir(), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(in.ConfigPath(), []byte(myCnf(in, role)), 0o644); err != nil {
		return err
	}
	out, err := os.OpenFile(filepath.Join(in.Dir, "mariadbd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	argv := append(slices.Clone(in.prefix), in.bins.mariadbd)
	argv = append(argv, serverArgs(in.ConfigPath())...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", in.Name, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(done)
	}()
	in.cmd, in.done, in.role = cmd, done, role
	if err := in.waitReady(ctx, done); err != nil {
		in.stopLocked(syscall.SIGKILL, stopTimeout)
		log, _ := os.ReadFile(in.ErrorLogPath())
		return fmt.Errorf("start %s: %w; %s ends with:\n%s", in.Name, err, in.ErrorLogPath(), lastLines(string(log), 15))
	}
	in.logger.Debug("mariadb started", "instance", in.Name, "port", in.Port, "role", role, "pid", cmd.Process.Pid)
	return nil
}

// serverArgs are mariadbd's arguments: --defaults-file must come first.
// As root, mariadbd refuses to run unless told which user to run as; it
// stays root, which can read a test's private temporary directory.
func serverArgs(cnf string) []string {
	args := []string{"--defaults-file=" + cnf}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return args
}

// waitReady waits until the server answers over TCP: root runs a query,
// or is refused for its password (a new instance's root has none yet) or
// for its host (a new instance placed off loopback has no account for us
// yet: see createUsers).
func (in *Instance) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	db, err := sql.Open("mysql", in.RootDSN()+"?timeout=1s")
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		qctx, qcancel := context.WithTimeout(ctx, time.Second)
		_, err := db.ExecContext(qctx, "SELECT 1")
		qcancel()
		var me *mysql.MySQLError
		if err == nil || errors.As(err, &me) && (me.Number == 1045 || me.Number == 1130) { // ER_ACCESS_DENIED_ERROR, ER_HOST_NOT_PRIVILEGED
			return nil
		}
		select {
		case <-exited:
			return errors.New("mariadbd exited during start")
		case <-ctx.Done():
			return fmt.Errorf("not answering: %w (last: %v)", ctx.Err(), err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Stop shuts the server down cleanly (SIGTERM), and kills it if it has not
// exited within 30 s (a primary waits at shutdown for acknowledgements it
// is owed).
func (in *Instance) Stop() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stopLocked(syscall.SIGTERM, stopTimeout)
}

// Kill kills the server at once (SIGKILL), as a crash or a power cut
// would, and waits for the process to be gone.
func (in *Instance) Kill() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stopLocked(syscall.SIGKILL, stopTimeout)
}

func (in *Instance) stopLocked(sig syscall.Signal, timeout time.Duration) error {
	if in.cmd == nil {
		return nil
	}
	p := in.cmd.Process
	if err := p.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", in.Name, err)
	}
	p.Signal(syscall.SIGCONT) // a paused server must run to shut down
	select {
	case <-in.done:
	case <-time.After(timeout):
		in.logger.Warn("mariadb did not stop in time; killing it", "instance", in.Name, "timeout", timeout)
		p.Kill()
		<-in.done
	}
	in.cmd = nil
	return nil
}

// Pause freezes the server (SIGSTOP): its connections stay open and its
// kernel still accepts TCP, but it answers nothing, like a hung host.
func (in *Instance) Pause() error { return in.send(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (in *Instance) Resume() error { return in.send(syscall.SIGCONT) }

func (in *Instance) send(sig syscall.Signal) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil {
		return fmt.Errorf("%s is not running", in.Name)
	}
	return in.cmd.Process.Signal(sig)
}

// Rebuild replaces the instance's data with a fresh, empty server, started
// as a Replica with no source: the remedy for a server holding errant
// transactions. The caller then makes it replicate (replication.Rejoin);
// it fetches the whole history from its new source, which works because
// these servers keep every binlog (production would restore a backup).
func (in *Instance) Rebuild(ctx context.Context) error {
	if err := in.Kill(); err != nil {
		return err
	}
	if err := os.RemoveAll(in.DataDir); err != nil {
		return err
	}
	if err := in.install(ctx); err != nil {
		return err
	}
	if err := in.StartAs(ctx, Replica); err != nil {
		return err
	}
	return in.createUsers(ctx)
}

// install creates the data directory with mariadb-install-db, writing
// my.cnf first so that the files match the server's settings.
func (in *Instance) install(ctx context.Context) error {
	for _, d := range []string{in.DataDir, in.tmpDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(in.ConfigPath(), []byte(myCnf(in, Replica)), 0o644); err != nil {
		return err
	}
	args := []string{"--defaults-file=" + in.ConfigPath(), "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, in.bins.installDB, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", in.bins.installDB, args, err, lastLines(out.String(), 20))
	}
	return nil
}

// createUsers gives root its password and creates the replication and
// application users, outside the binlog: every instance has them whatever
// its role, and no instance starts with a GTID of its own, so all start
// from the same empty history. It connects over the server's Unix socket
// as root@localhost (no password, all privileges, from
// mariadb-install-db), which works wherever the server listens: an
// instance placed off loopback has no account for our TCP address yet.
// The accounts are at userHost (Config.UserHost); root keeps
// root@127.0.0.1 too.
func (in *Instance) createUsers(ctx context.Context) error {
	install := mysql.NewConfig()
	install.User, install.Net, install.Addr = RootUser, "unix", in.SocketPath()
	// Client-side interpolation: CREATE USER takes no server-side parameters.
	install.InterpolateParams = true
	db, err := sql.Open("mysql", install.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	pw := func(user string) string { p, _ := in.passwords.Password(user, in.Addr()); return p }
	at := func(user string) string { return "'" + user + "'@'" + in.userHost + "'" }
	type stmt struct {
		sql  string
		args []any
	}
	var rootElsewhere []stmt
	if in.userHost != loopback {
		rootElsewhere = []stmt{
			{"CREATE USER IF NOT EXISTS " + at(RootUser) + " IDENTIFIED BY ?", []any{pw(RootUser)}},
			{"GRANT ALL PRIVILEGES ON *.* TO " + at(RootUser) + " WITH GRANT OPTION", nil},
		}
	}
	stmts := []stmt{
		{"SET SESSION sql_log_bin = 0", nil},
		{"CREATE USER IF NOT EXISTS " + at(ReplUser) + " IDENTIFIED BY ?", []any{pw(ReplUser)}},
		{"GRANT REPLICATION SLAVE ON *.* TO " + at(ReplUser), nil},
		{"CREATE USER IF NOT EXISTS " + at(AppUser) + " IDENTIFIED BY ?", []any{pw(AppUser)}},
		{"GRANT ALL PRIVILEGES ON `tradeunit\\_%`.* TO " + at(AppUser), nil},
		// The event relay reads information_schema.INNODB_TRX (which
		// transactions may still commit an outbox event): a user without
		// PROCESS is refused it.
		{"GRANT PROCESS ON *.* TO " + at(AppUser), nil},
	}
	stmts = append(stmts, rootElsewhere...)
	// mariadb-install-db left root@127.0.0.1 without a password.
	stmts = append(stmts, stmt{"ALTER USER '" + RootUser + "'@'127.0.0.1' IDENTIFIED BY ?", []any{pw(RootUser)}})
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q.sql, q.args...); err != nil {
			// The statement names no password: the arguments do.
			return fmt.Errorf("%s: %s: %w", in.Name, q.sql, err)
		}
	}
	return nil
}
