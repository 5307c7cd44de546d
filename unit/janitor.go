package unit

import (
	"context"
	"log/slog"
	"time"
)

// ProbeDeleter deletes the health checker's old probe orders;
// tradeunit.Store implements it.
type ProbeDeleter interface {
	DeleteProbeOrders(ctx context.Context, createdBefore time.Time, limit int) (int, error)
}

// JanitorConfig configures RunJanitor. The zero value uses the defaults.
type JanitorConfig struct {
	// Retention is how long probe orders are kept (default 10 minutes):
	// long enough to look into a failed probe, short enough that probes
	// never weigh on a unit.
	Retention time.Duration
	// Every is how often the janitor runs (default Retention/5).
	Every time.Duration
	// Batch bounds the orders deleted in one transaction (default 500), so
	// that the janitor never holds the unit's storage for long.
	Batch   int
	Now     func() time.Time // time.Now if nil
	Logger  *slog.Logger     // slog.Default() if nil
	Deleted func(n int)      // called with each batch's count (metrics); may be nil
}

// RunJanitor deletes probe orders older than the retention, every
// cfg.Every, until ctx ends. Every replica of a unit may run one: deleting is
// idempotent and batched.
func RunJanitor(ctx context.Context, store ProbeDeleter, cfg JanitorConfig) {
	if cfg.Retention <= 0 {
		cfg.Retention = 10 * time.Minute
	}
	if cfg.Every <= 0 {
		cfg.Every = cfg.Retention / 5
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cutoff := cfg.Now().Add(-cfg.Retention)
		for ctx.Err() == nil {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second) // a storage that hangs must not hold the janitor
			n, err := store.DeleteProbeOrders(dctx, cutoff, cfg.Batch)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					cfg.Logger.Warn("probe janitor: delete failed; retrying at the next run", "err", err)
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
