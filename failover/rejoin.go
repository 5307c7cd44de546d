package failover

import (
	"context"
	"errors"
	"time"

	"tradeunit/replication"
	"tradeunit/routing"
)

// rejoin brings back unit u's fenced servers that answer again read-only
// (Config.Rejoin). A server is never rejoined while writable: it may have
// been restarted as a primary and taken writes no one else has.
func (c *Controller) rejoin(ctx context.Context, u routing.UnitStorage, off bool) {
	if !c.cfg.Rejoin || off || !u.HasPrimary() || len(u.Fenced) == 0 {
		return
	}
	log := c.log.With("unit", u.Unit, "primary", u.Primary.Server())
	for _, d := range u.Fenced {
		server := d.Server()
		now := c.cfg.Now()
		c.mu.Lock()
		next := c.rejoinAfter[server]
		c.mu.Unlock()
		if now.Before(next) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CheckTimeout)
		ro, err := c.deps.Observer.ReadOnly(cctx, d)
		cancel()
		if err != nil {
			continue // still down: the usual state of a fenced server, not worth a line a round
		}
		if !ro {
			log.Warn("fenced server is back writable: not rejoined (restart it read-only, as a replica)", "server", server)
			c.holdRejoin(server, now)
			continue
		}
		_, err = c.deps.Failover.RejoinStorage(ctx, routing.UnitRef(u.Unit), server, c.options(log))
		switch {
		case err == nil:
			c.rejoins.Add(1)
			c.metrics.rejoins.WithLabelValues("done").Inc()
			log.Warn("fenced server rejoined as a replica", "server", server)
		case errors.Is(err, replication.ErrErrantGTIDs):
			c.rejoinsRefused.Add(1)
			c.metrics.rejoins.WithLabelValues("errant").Inc()
			log.Error("fenced server holds errant transactions: not rejoined; rebuild it from the primary", "server", server, "err", err)
			c.holdRejoin(server, now)
		default:
			c.metrics.rejoins.WithLabelValues("error").Inc()
			log.Error("rejoin failed", "server", server, "err", err)
			c.holdRejoin(server, now)
		}
	}
}

// holdRejoin waits MinInterval (at least a few rounds) before trying
// server again.
func (c *Controller) holdRejoin(server string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rejoinAfter[server] = now.Add(max(c.cfg.MinInterval, 10*c.cfg.Every))
}
