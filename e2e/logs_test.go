package e2e

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"tradeunit/daemon"
)

// TestRequestIDInUnitLog: the Request-ID a merchant gets back is on the
// log line of the unit that served the request, so one request can be
// followed from the proxy into the unit.
func TestRequestIDInUnitLog(t *testing.T) {
	debug := daemon.DefaultLogConfig()
	debug.Level = slog.LevelDebug
	c := startCluster(t, options{units: 2, replicas: 1, unitLog: &debug})
	api := newClient(t, c, 0)
	r := api.call("POST", "/v3/orders", createBody(uniq("reqid"), 100))
	want(t, "create", r, 200, "")
	id := r.header.Get("Request-ID")
	served := c.Unit(unitOf(r)).Replicas[0]
	waitFor(t, 5*time.Second, "the unit's log names request "+id, func() bool {
		data, _ := os.ReadFile(served.LogPath())
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "request_id="+id) && strings.Contains(line, "method=CreateOrder") {
				return true
			}
		}
		return false
	})
}
