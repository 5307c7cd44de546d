package failover

import (
	"context"

	"tradeunit/routing"
)

// repoint re-points unit u's replicas that the round saw replicating from
// another server than the primary: a failover stopped after its remap (its
// controller killed) leaves them on the old primary, and the new one then
// has no replica to acknowledge and takes no changes, while answering
// every check. Only a primary that answers writable is repointed to.
func (c *Controller) repoint(ctx context.Context, u routing.UnitStorage, e Evidence, off bool) {
	if off || !u.HasPrimary() || e.PrimaryErr != nil || e.PrimaryFenced {
		return
	}
	stray := false
	for _, r := range e.Replicas {
		stray = stray || r.Err == nil && r.IO != "" && r.Source != u.Primary.Server()
	}
	if !stray {
		return
	}
	now := c.cfg.Now()
	key := "repoint " + u.Primary.Server()
	c.mu.Lock()
	next := c.rejoinAfter[key]
	c.mu.Unlock()
	if now.Before(next) {
		return
	}
	log := c.log.With("unit", u.Unit, "primary", u.Primary.Server())
	done, err := c.deps.Failover.RepointStorage(ctx, routing.UnitRef(u.Unit), c.options(log))
	if len(done) > 0 {
		c.repoints.Add(int64(len(done)))
		c.metrics.repoints.Add(float64(len(done)))
		log.Warn("replicas re-pointed to the primary (a failover stopped before it re-pointed them)", "replicas", done)
	}
	if err != nil {
		log.Error("re-point failed", "err", err)
		c.holdRejoin(key, now)
	}
}
