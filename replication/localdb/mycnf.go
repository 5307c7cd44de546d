package localdb

import (
	"fmt"
	"strings"
)

// Role is what an instance starts as. The settings that must differ
// between a primary and a replica at startup follow from it (see myCnf);
// a server never starts writable either way.
type Role int

const (
	// Primary starts with the semi-sync primary side on and init_rpl_role
	// MASTER: crash recovery commits the transactions its binlog holds,
	// which its replicas may already have.
	Primary Role = iota
	// Replica starts with the semi-sync primary side off and init_rpl_role
	// SLAVE: crash recovery rolls back and truncates from the binlog the
	// transactions that were waiting for an acknowledgement, so that an
	// old primary can rejoin the replica that replaced it.
	Replica
)

// String names the role: primary or replica.
func (r Role) String() string {
	if r == Primary {
		return "primary"
	}
	return "replica"
}

// semiSyncTimeoutMS is rpl_semi_sync_master_timeout: 24 h. A primary with
// no acknowledging replica blocks commits this long before it would fall
// back to asynchronous replication: in practice, never. The unit's health
// check sees Rpl_semi_sync_master_clients = 0 and takes it out of create.
const semiSyncTimeoutMS = 24 * 60 * 60 * 1000

// myCnf is the whole configuration of one instance, written before every
// start and passed with --defaults-file, so that the file is the truth a
// developer can read.
func myCnf(in *Instance, role Role) string {
	semiMaster, rplRole := "ON", "MASTER"
	if role == Replica {
		semiMaster, rplRole = "OFF", "SLAVE"
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("# Written by tradeunit/replication/localdb before each start: edits are overwritten.")
	line("# Started as: %s.", role)
	line("[mysqld]")
	line("server_id = %d", in.ServerID)
	line("port = %d", in.Port)
	line("bind_address = %s", in.Host)
	line("socket = %s", in.SocketPath())
	line("datadir = %s", in.DataDir)
	line("pid_file = %s/mariadbd.pid", in.DataDir)
	line("# Its own tmpdir: servers sharing /tmp collide on temporary table names")
	line("# (mariadb-install-db run in parallel fails now and then).")
	line("tmpdir = %s", in.tmpDir())
	line("log_error = %s", in.ErrorLogPath())
	line("skip_name_resolve")
	line("")
	line("# Durable: a commit is on disk before it is acknowledged.")
	line("log_bin = binlog")
	line("relay_log = relay-bin")
	line("binlog_format = ROW")
	line("log_slave_updates = ON")
	line("sync_binlog = 1")
	line("innodb_flush_log_at_trx_commit = 1")
	line("gtid_strict_mode = 1")
	line("gtid_domain_id = 0")
	line("")
	line("# Semi-sync: a commit is acknowledged once a replica has it. No silent")
	line("# fall back to asynchronous: with no replica, commits wait.")
	line("rpl_semi_sync_master_enabled = %s", semiMaster)
	line("rpl_semi_sync_slave_enabled = ON")
	line("rpl_semi_sync_master_wait_point = AFTER_SYNC")
	line("rpl_semi_sync_master_wait_no_slave = ON")
	line("rpl_semi_sync_master_timeout = %d", semiSyncTimeoutMS)
	line("# Crash recovery as a replica truncates unacknowledged transactions (10.11.9+;")
	line("# a startup option only: SELECT @@init_rpl_role fails in 10.11).")
	line("init_rpl_role = %s", rplRole)
	line("")
	line("# Never writable at start: promotion (read_only=OFF) is an explicit act,")
	line("# so a primary that crashes and restarts cannot become a second primary.")
	line("read_only = ON")
	line("relay_log_recovery = ON")
	line("slave_parallel_mode = optimistic")
	line("slave_parallel_threads = 4")
	line("slave_net_timeout = 5")
	line("")
	line("# Small and quick to start: these are development and test servers.")
	line("innodb_buffer_pool_size = 64M")
	line("innodb_log_file_size = 32M")
	line("innodb_log_buffer_size = 8M")
	line("aria_pagecache_buffer_size = 8M")
	line("key_buffer_size = 1M")
	line("performance_schema = OFF")
	line("max_connections = 200")
	line("table_open_cache = 400")
	line("character_set_server = utf8mb4")
	line("collation_server = utf8mb4_bin")
	return b.String()
}
