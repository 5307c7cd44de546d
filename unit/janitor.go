package unit

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// ProbeDeleter deletes the health checker's old probe orders;
// tradeunit.Store implements it.
type ProbeDeleter interface {
	DeleteProbeOrders(ctx context.Context, createdBefore time.Time, limit int) (int, error)
}

// JanitorConfig configures RunJanitor. Start from DefaultJanitorConfig.
type JanitorConfig struct {
	// Retention is how long probe orders are kept: long enough to look
	// into a failed probe, short enough that probes never weigh on a unit.
	Retention time.Duration
	// Every is how often the janitor runs.
	Every time.Duration
	// Batch bounds the orders deleted in one transaction, so that the
	// janitor never holds the unit's storage for long.
	Batch   int
	Now     func() time.Time // time.Now if nil
	Deleted func(n int)      // called with each batch's count (metrics); may be nil
}

// DefaultJanitorConfig keeps probe orders 10 minutes, looking every 2.
func DefaultJanitorConfig() JanitorConfig {
	return JanitorConfig{Retention: 10 * time.Minute, Every: 2 * time.Minute, Batch: 500}
}

// Validate reports a bad setting; it changes nothing.
func (c JanitorConfig) Validate() error {
	if c.Retention <= 0 || c.Every <= 0 || c.Batch < 1 {
		return fmt.Errorf("unit: janitor needs a positive retention, period and batch, got %v, %v, %d", c.Retention, c.Every, c.Batch)
	}
	return nil
}

// RunJanitor deletes probe orders older than the retention, every
// cfg.Every, until ctx ends. Every replica of a unit may run one: deleting is
// idempotent and batched.
func RunJanitor(ctx context.Context, store ProbeDeleter, cfg JanitorConfig, log *slog.Logger) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cutoff := now().Add(-cfg.Retention)
		for ctx.Err() == nil {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a storage that hangs must not hold the janitor
			n, err := store.DeleteProbeOrders(dctx, cutoff, cfg.Batch)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("probe janitor: delete failed; retrying at the next run", "err", err)
				}
				break
			}
			if cfg.Deleted != nil && n > 0 {
				cfg.Deleted(n)
			}
			if n < cfg.Batch {
				break
			}
		}
	}
}
