// Package replication operates the replicated MariaDB storage of a unit:
// one primary and replicas, GTID replication with semi-synchronous
// acknowledgement. It reads a server's state (Inspect, Lag), and does the
// steps of a failover (Fence, MostAdvanced, WaitApplied, Promote, Repoint)
// and of bringing a server back (ErrantGTIDs, Rejoin). Every operation
// takes a go-sql-driver DSN of an administrative user (root), opens one
// connection, and is bounded by its context; InspectPrimary and
// HeartbeatAge need no privilege beyond the application user's, for a
// unit's logic service to check its primary and measure its replicas.
//
// # Why no acknowledged order is lost
//
// The servers run with (see replication/localdb for the whole my.cnf):
//
//   - sync_binlog=1 and innodb_flush_log_at_trx_commit=1: a commit is on
//     disk before it is acknowledged;
//   - rpl_semi_sync_master_wait_point=AFTER_SYNC: the primary writes the
//     transaction to its binlog, waits until a replica has received it,
//     and only then commits it in the engine and answers the client. No
//     one, on the primary either, sees a transaction no replica has;
//   - rpl_semi_sync_master_wait_no_slave=ON and a very long
//     rpl_semi_sync_master_timeout (24 h): without an acknowledging
//     replica, commits wait instead of silently continuing asynchronously.
//     Rpl_semi_sync_master_status stays ON and Status.Acknowledged is false
//     (no clients): the unit reports itself unhealthy and creates go to
//     other units. (MariaDB's default timeout, 10 s, turns semi-sync OFF
//     after one wait, and from then on the primary acknowledges commits
//     that exist nowhere else.)
//   - gtid_strict_mode=1: sequence numbers of a domain only grow, so
//     positions compare and divergence is an error, not a silent fork.
//
// So an acknowledged commit is on at least one replica. Each replica
// receives a prefix of the primary's stream, so the replica that has
// received the most (MostAdvanced) holds every acknowledged commit; Promote
// applies all it received before it forgets its source.
//
// # Failover, in order
//
//  1. Fence the old primary (read_only, its clients killed); if it cannot
//     be reached it must be known dead, or cut off by other means:
//     StopReceiving on every replica leaves it no one to acknowledge a
//     commit.
//  2. Inspect every replica; MostAdvanced chooses one, or refuses.
//  3. WaitApplied on it, then Promote it (semi-sync primary side on, writable).
//  4. Point the routing table's storage mapping at it (before traffic,
//     as seed 003 says), then Repoint the other replicas to it: until one
//     acknowledges, its commits wait.
//  5. Later, restart the old primary read-only with init_rpl_role=SLAVE and
//     Rejoin it; with errant transactions, rebuild it instead.
//
// # Two MariaDB behaviours this package works around (seen on 10.11.19)
//
// A replica with rpl_semi_sync_master_enabled=ON (and log_slave_updates,
// wait_no_slave, no replicas of its own) blocks its own applier "Waiting for
// semi-sync ACK from slave": Promote turns the primary side on, Repoint
// turns it off. And SET GLOBAL read_only=ON waits for commits in progress,
// including one waiting for an acknowledgement that will not come: Fence
// kills client connections before setting it.
package replication
