package tradeunit

// LogicConn is a caller's connection to one logic-service replica: the
// replica's OrderService, and what a caller needs to route around a replica
// that is down. Calls that get no answer fail with an error for which
// Answered is false. The gRPC client (package rpc) implements it.
type LogicConn interface {
	OrderService
	// Down reports that the connection is known to be down (a call would
	// fail at once without reaching the replica), or that a call on it just
	// got no answer in time (Silent): a caller tries the other replicas
	// first.
	Down() bool
	// Reconnect asks a connection that is down to try again now rather than
	// at the end of its back-off (at most a few times a second), so that a
	// replica that came back is used at once.
	Reconnect()
	// Silent records that a call sent on the connection got no answer in
	// time. A replica cut off without its connections being reset (a room
	// whose links went down) would otherwise keep taking its share of the
	// calls, each waiting out its timeout, until keepalive notices.
	Silent()
}

// DirectoryConn is a caller's connection to one directory shard's service
// replica: the shard's DirectoryStore, and Down/Reconnect/Silent as
// LogicConn's.
type DirectoryConn interface {
	DirectoryStore
	Down() bool
	Reconnect()
	Silent()
}

// LogicDialer hands out connections to logic services and directory shards
// by address, made on first use and kept for later calls. The proxy and the
// health checker each hold one; rpc.Pool implements it over gRPC, tests over
// fakes.
type LogicDialer interface {
	// Conn returns the connection to the logic service at addr
	// ("host:port").
	Conn(addr string) (LogicConn, error)
	// Directory returns the connection to the directory shard service at
	// addr.
	Directory(addr string) (DirectoryConn, error)
	// Retain closes the connections of addresses keep does not hold, and
	// returns those addresses.
	Retain(keep map[string]bool) (closed []string)
	// Close closes every connection; later Conn calls fail.
	Close() error
}
