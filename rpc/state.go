package rpc

import "google.golang.org/grpc/connectivity"

// Down reports whether the connection to the replica is in failure. gRPC
// fails calls on such a connection at once without sending them, so a caller
// may skip the replica knowing the call never reached it.
func (c *Client) Down() bool {
	s := c.conn.GetState()
	return s == connectivity.TransientFailure || s == connectivity.Shutdown
}
