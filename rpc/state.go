package rpc

import (
	"sync/atomic"
	"time"

	"google.golang.org/grpc/connectivity"
)

// Down reports whether the connection to the replica is in failure (gRPC
// fails calls on such a connection at once without sending them, so a
// caller may skip the replica knowing the call never reached it), or a call
// on it got no answer less than silentFor ago (Silent).
func (c *Client) Down() bool {
	if time.Now().UnixNano() < c.silentUntil.Load() {
		return true
	}
	s := c.conn.GetState()
	return s == connectivity.TransientFailure || s == connectivity.Shutdown
}

// silentFor is how long a replica that gave no answer in time counts as
// down: callers try it after its peers meanwhile, and a call that finds no
// peer answering still tries it (replicas.Call's second pass).
const silentFor = 3 * time.Second

// Silent marks the replica as down for silentFor: a call sent on the
// connection got no answer in time.
func (c *Client) Silent() { c.silentUntil.Store(time.Now().Add(silentFor).UnixNano()) }

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
type redialState struct{ lastRedial, silentUntil atomic.Int64 }
