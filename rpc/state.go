package rpc

import (
	"sync/atomic"
	"time"

	"google.golang.org/grpc/connectivity"
)

// Down reports whether the connection to the replica is in failure. gRPC
// fails calls on such a connection at once without sending them, so a caller
// may skip the replica knowing the call never reached it.
func (c *Client) Down() bool {
	s := c.conn.GetState()
	return s == connectivity.TransientFailure || s == connectivity.Shutdown
}

// redialEvery bounds how often Reconnect skips gRPC's reconnect back-off.
const redialEvery = 500 * time.Millisecond

// Reconnect makes a connection in failure try to connect again now rather
// than at the end of its back-off, at most once per redialEvery. A caller
// with no live replica left uses it so that a replica that has come back is
// used within redialEvery, not after a back-off of seconds.
func (c *Client) Reconnect() {
	now := time.Now().UnixNano()
	last := c.lastRedial.Load()
	if now-last < int64(redialEvery) || !c.lastRedial.CompareAndSwap(last, now) {
		return
	}
	c.conn.ResetConnectBackoff()
}

// redialState is embedded in Client.
type redialState struct{ lastRedial atomic.Int64 }
