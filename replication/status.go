package replication

import (
	"context"
	"fmt"
	"time"
)

// Role is what a server is doing in its replication set, as Inspect sees
// it.
type Role int

const (
	// RolePrimary: writable (read_only=OFF) and not replicating from anyone.
	RolePrimary Role = iota + 1
	// RoleReplica: has a replication source configured, running or not.
	RoleReplica
	// RoleFenced: read-only and not replicating: a fenced old primary, a
	// server restarted read-only, or one waiting to be promoted or rejoined.
	RoleFenced
)

// String names the role: primary, replica, fenced.
func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	case RoleFenced:
		return "fenced"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Status is what Inspect reads from one server.
type Status struct {
	Addr     string // host:port from the DSN
	ServerID uint32
	Version  string
	// ReadOnly is @@read_only: users without READ ONLY ADMIN (in 10.11,
	// without SUPER) cannot write. It does not stop root.
	ReadOnly bool

	BinlogPos   GTIDList // @@gtid_binlog_pos: the last GTID of each domain in the binlog
	BinlogState GTIDList // @@gtid_binlog_state: the last GTID of each domain and server
	CurrentPos  GTIDList // @@gtid_current_pos
	SlavePos    GTIDList // @@gtid_slave_pos: what the replication applier has applied

	// Replica is the SHOW SLAVE STATUS of the default connection; nil when
	// no source is configured.
	Replica *ReplicaStatus

	SemiSync SemiSync
}

// ReplicaStatus is the part of SHOW SLAVE STATUS a failover needs.
type ReplicaStatus struct {
	SourceHost string
	SourcePort int
	// IORunning is Slave_IO_Running: "Yes", "No", "Connecting" (the
	// source is down or unreachable, and the thread keeps retrying) or
	// "Preparing" (connected, setting up the stream).
	IORunning  string
	SQLRunning bool
	// ReceivedPos is Gtid_IO_Pos: the last complete transaction the IO
	// thread wrote to the relay log. A semi-sync acknowledgement is sent
	// for what is received, not for what is applied, so this, not
	// AppliedPos, is what a failover compares.
	ReceivedPos GTIDList
	// AppliedPos is @@gtid_slave_pos (also in Status.SlavePos).
	AppliedPos GTIDList
	// SecondsBehindMaster is MariaDB's own lag figure; nil when it is NULL
	// (applier stopped, or receiver reconnecting). It is coarse (whole
	// seconds), derived from event timestamps, and 0 both while the
	// replica idles and while its link is silently cut (until
	// slave_net_timeout ends the connection): it cannot tell "caught up"
	// from "cut off". Use Lag.
	SecondsBehindMaster *int
	LastIOErrno         int
	LastIOError         string
	LastSQLErrno        int
	LastSQLError        string
	SQLState            string // Slave_SQL_Running_State
}

// Receiving reports whether the IO thread is connected to its source.
func (r *ReplicaStatus) Receiving() bool { return r.IORunning == "Yes" }

// SemiSync is the semi-synchronous replication state of a server.
type SemiSync struct {
	// MasterEnabled is @@rpl_semi_sync_master_enabled: commits wait for an
	// acknowledgement. On only on the primary: a replica with it on makes
	// its own applier wait for acknowledgements no one sends.
	MasterEnabled bool
	// MasterOn is Rpl_semi_sync_master_status. OFF while MasterEnabled
	// means the primary timed out waiting and fell back to asynchronous
	// replication: commits are no longer guaranteed to be on a replica.
	MasterOn bool
	// Clients is Rpl_semi_sync_master_clients: connected replicas that
	// acknowledge. 0 on an enabled primary means every commit waits. A hung
	// replica (paused, or behind a black-holed link until slave_net_timeout)
	// still counts: see LongestWait.
	Clients int
	// WaitSessions is Rpl_semi_sync_master_wait_sessions: commits waiting
	// for an acknowledgement right now.
	WaitSessions int
	// LongestWait is how long the oldest commit now waiting for an
	// acknowledgement has waited (0: none waits). Under load commits wait
	// a fraction of a millisecond; one that has waited a second means no
	// replica is acknowledging, whatever Clients says.
	LongestWait time.Duration
	// YesTx and NoTx count commits acknowledged and not acknowledged
	// (Rpl_semi_sync_master_yes_tx, _no_tx) since start.
	YesTx, NoTx uint64
	// Timeout is @@rpl_semi_sync_master_timeout: how long a commit waits
	// before the primary falls back to asynchronous replication.
	Timeout time.Duration
	// WaitPoint is @@rpl_semi_sync_master_wait_point; AFTER_SYNC is the
	// lossless one.
	WaitPoint string
	// WaitNoSlave is @@rpl_semi_sync_master_wait_no_slave.
	WaitNoSlave bool
	// SlaveEnabled is @@rpl_semi_sync_slave_enabled: as a replica, this
	// server acknowledges.
	SlaveEnabled bool
}

// Role classifies the server.
func (s Status) Role() Role {
	switch {
	case s.Replica != nil:
		return RoleReplica
	case !s.ReadOnly:
		return RolePrimary
	}
	return RoleFenced
}

// Acknowledged reports whether a commit on this server can get a
// semi-sync acknowledgement: semi-sync is enabled and on, and at least one
// replica is connected to acknowledge. A primary for which this is false
// either blocks commits (no replica) or commits without the guarantee
// (fell back to asynchronous): either way it should not take new orders.
// True is not enough: the connected replicas may hang; a health check also
// bounds SemiSync.LongestWait, or times a real commit.
func (s Status) Acknowledged() bool {
	return s.SemiSync.MasterEnabled && s.SemiSync.MasterOn && s.SemiSync.Clients > 0
}

// Inspect reads the replication state of the server of a go-sql-driver DSN
// (a user with SUPER or REPLICATION CLIENT/SLAVE MONITOR: root). An
// unreachable server is an error wrapping ErrUnreachable.
func Inspect(ctx context.Context, dsn string) (Status, error) {
	s, err := dial(ctx, dsn)
	if err != nil {
		return Status{}, err
	}
	defer s.Close()
	return s.status(ctx)
}

func (s *session) status(ctx context.Context) (Status, error) {
	st, err := s.primaryStatus(ctx)
	if err != nil {
		return st, err
	}
	st.Replica, err = s.replicaStatus(ctx)
	return st, err
}

// primaryStatus reads everything of Status but Replica: what any user may
// read.
func (s *session) primaryStatus(ctx context.Context) (Status, error) {
	st := Status{Addr: s.addr}
	v, _, err := s.row(ctx, `SELECT @@server_id AS server_id, @@version AS version, @@read_only AS read_only,
		@@gtid_binlog_pos AS binlog_pos, @@gtid_binlog_state AS binlog_state,
		@@gtid_current_pos AS current_pos, @@gtid_slave_pos AS slave_pos,
		@@rpl_semi_sync_master_enabled AS m_enabled, @@rpl_semi_sync_slave_enabled AS s_enabled,
		@@rpl_semi_sync_master_timeout AS m_timeout, @@rpl_semi_sync_master_wait_point AS m_wait_point,
		@@rpl_semi_sync_master_wait_no_slave AS m_wait_no_slave`)
	if err != nil {
		return st, err
	}
	st.ServerID = uint32(atou(v["server_id"]))
	st.Version = v["version"]
	st.ReadOnly = onOff(v["read_only"])
	for _, f := range []struct {
		dst *GTIDList
		col string
	}{{&st.BinlogPos, "binlog_pos"}, {&st.BinlogState, "binlog_state"}, {&st.CurrentPos, "current_pos"}, {&st.SlavePos, "slave_pos"}} {
		if *f.dst, err = ParseGTIDList(v[f.col]); err != nil {
			return st, fmt.Errorf("%s: @@gtid_%s: %w", s.addr, f.col, err)
		}
	}
	st.SemiSync = SemiSync{
		MasterEnabled: onOff(v["m_enabled"]),
		SlaveEnabled:  onOff(v["s_enabled"]),
		Timeout:       time.Duration(atou(v["m_timeout"])) * time.Millisecond,
		WaitPoint:     v["m_wait_point"],
		WaitNoSlave:   onOff(v["m_wait_no_slave"]),
	}
	g, err := s.pairs(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_%'")
	if err != nil {
		return st, err
	}
	st.SemiSync.MasterOn = onOff(g["rpl_semi_sync_master_status"])
	st.SemiSync.Clients = atoi(g["rpl_semi_sync_master_clients"])
	st.SemiSync.WaitSessions = atoi(g["rpl_semi_sync_master_wait_sessions"])
	st.SemiSync.YesTx = atou(g["rpl_semi_sync_master_yes_tx"])
	st.SemiSync.NoTx = atou(g["rpl_semi_sync_master_no_tx"])
	var waitMS float64
	if err := s.conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(TIME_MS), 0) FROM information_schema.PROCESSLIST
		WHERE STATE = 'Waiting for semi-sync ACK from slave'`).Scan(&waitMS); err != nil {
		return st, fmt.Errorf("%s: semi-sync waits: %w", s.addr, err)
	}
	st.SemiSync.LongestWait = time.Duration(waitMS * float64(time.Millisecond))
	return st, nil
}

// replicaStatus reads SHOW SLAVE STATUS; nil when no source is configured.
func (s *session) replicaStatus(ctx context.Context) (*ReplicaStatus, error) {
	v, ok, err := s.row(ctx, "SHOW SLAVE STATUS")
	if err != nil || !ok {
		return nil, err
	}
	r := &ReplicaStatus{
		SourceHost:   v["Master_Host"],
		SourcePort:   atoi(v["Master_Port"]),
		IORunning:    v["Slave_IO_Running"],
		SQLRunning:   v["Slave_SQL_Running"] == "Yes",
		LastIOErrno:  atoi(v["Last_IO_Errno"]),
		LastIOError:  v["Last_IO_Error"],
		LastSQLErrno: atoi(v["Last_SQL_Errno"]),
		LastSQLError: v["Last_SQL_Error"],
		SQLState:     v["Slave_SQL_Running_State"],
	}
	if sbm, ok := v["Seconds_Behind_Master"]; ok {
		n := atoi(sbm)
		r.SecondsBehindMaster = &n
	}
	if r.ReceivedPos, err = ParseGTIDList(v["Gtid_IO_Pos"]); err != nil {
		return nil, fmt.Errorf("%s: Gtid_IO_Pos: %w", s.addr, err)
	}
	if r.AppliedPos, err = s.appliedPos(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *session) appliedPos(ctx context.Context) (GTIDList, error) {
	var pos string
	if err := s.conn.QueryRowContext(ctx, "SELECT @@gtid_slave_pos").Scan(&pos); err != nil {
		return nil, fmt.Errorf("%s: %w", s.addr, err)
	}
	l, err := ParseGTIDList(pos)
	if err != nil {
		return nil, fmt.Errorf("%s: @@gtid_slave_pos: %w", s.addr, err)
	}
	return l, nil
}
