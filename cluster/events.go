package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"tradeunit"
	"tradeunit/daemon"
	"tradeunit/daemon/queryd"
	"tradeunit/daemon/relayd"
	"tradeunit/dsn"
	"tradeunit/eventbus"
	"tradeunit/pki"
)

// Events configures a cluster's event flow: unit → relay → bus → query
// store. Start from DefaultEvents.
type Events struct {
	// Bus is the event bus; an empty URL runs an embedded NATS server with
	// JetStream, its data in Dir/nats, so that a new user needs nothing
	// installed.
	Bus eventbus.Config
	// BusTLS, when set, is the embedded server's side of mutual TLS (the
	// ServerTLS of a role-server certificate of the cluster's CA): it then
	// refuses every client without a certificate of that CA. nil:
	// plaintext. Relays and the consumer bring their own client side
	// from their --tls-* files.
	BusTLS *tls.Config
	// RelaysPerUnit relay processes run for each unit (one publishes, the
	// others wait for its lease).
	RelaysPerUnit int
	// Relay is the configuration every relay starts from; its unit,
	// storage, bus and metrics address are the cluster's.
	Relay relayd.Config
	// Query is the query store's consumer, run in this process; an empty
	// Store is an SQLite file in Dir. The proxy serves the listing,
	// statistics and bills from the same store.
	Query queryd.Config
}

// DefaultEvents returns an event flow over an embedded bus, two relays
// per unit and an SQLite query store.
func DefaultEvents() *Events {
	e := &Events{Bus: eventbus.DefaultConfig(), RelaysPerUnit: 2, Relay: relayd.DefaultConfig(), Query: queryd.DefaultConfig()}
	e.Bus.URL = ""
	// The query store knows it is complete up to a fetch that found
	// nothing: a short wait keeps the published lag short.
	e.Bus.FetchWait = 250 * time.Millisecond
	return e
}

// Relay is one relay process of a unit.
type Relay struct {
	*Process
	Unit   tradeunit.UnitID
	scheme string // of its metrics URL
}

// MetricsURL is the relay's metrics endpoint.
func (r *Relay) MetricsURL() string { return r.scheme + "://" + r.Addr() + "/metrics" }

// busTLS is the embedded bus's side of mutual TLS: Events.BusTLS, or a
// certificate of the cluster's own (role server) unless it runs plaintext.
func (c *Cluster) busTLS() (*tls.Config, error) {
	if c.cfg.Events.BusTLS != nil || c.pki == nil {
		return c.cfg.Events.BusTLS, nil
	}
	keys, err := c.pki.ca.IssueKeys(c.pki.dir, pki.Request{Role: pki.RoleServer, Name: "nats"})
	if err != nil {
		return nil, err
	}
	return keys.ServerTLS(), nil
}

// startEvents starts the bus (unless external), then the query store's
// consumer; relays start with their units (startRelays).
func (c *Cluster) startEvents(ctx context.Context) error {
	ev := c.cfg.Events
	bus := ev.Bus
	if bus.URL == "" {
		var opts []eventbus.EmbeddedOption
		busTLS, err := c.busTLS()
		if err != nil {
			return err
		}
		if busTLS != nil {
			opts = append(opts, eventbus.WithTLS(busTLS))
		}
		emb, err := eventbus.StartEmbedded(filepath.Join(c.Dir, "nats"), "127.0.0.1:0", opts...)
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		c.Bus = emb
		bus.URL = emb.URL()
	}
	c.busConfig = bus
	q := ev.Query
	q.Bus = bus
	if q.Store == "" {
		q.Store = "sqlite:" + filepath.Join(c.Dir, "query.db")
	}
	c.QueryStore = q.Store
	var err error
	if q.TLS, err = c.issue(pki.RoleQuery, "query"); err != nil {
		return err
	}
	c.Query = &queryd.Main{Config: q, Common: daemon.Common{Logger: c.cfg.Logger}}
	if err := c.Query.Run(ctx); err != nil {
		c.Query = nil
		return fmt.Errorf("query store consumer: %w", err)
	}
	return nil
}

// startRelays starts unit id's relays, following its storage in the
// storage topology at spec (as its logic services do).
func (c *Cluster) startRelays(ctx context.Context, id tradeunit.UnitID, spec string) error {
	ev := c.cfg.Events
	if ev == nil {
		return nil
	}
	cfg := ev.Relay
	cfg.Relay.Unit, cfg.Bus, cfg.Secrets = id, c.busConfig, c.cfg.Unit.Secrets
	cfg.DB, cfg.Routes = dsn.DSN{}, spec
	for i := 1; i <= ev.RelaysPerUnit; i++ {
		name := fmt.Sprintf("relay-%d-%d", id, i)
		rc := cfg
		rc.Relay.Holder = name
		var err error
		if rc.TLS, err = c.issue(pki.RoleRelay, name); err != nil {
			return err
		}
		r := &Relay{Unit: id, scheme: schemeOf(rc.TLS), Process: NewProcess(c.cfg.Binary, c.cfg.Dir, name, func(listen, addrFile string) []string {
			rc := rc
			rc.Metrics, rc.MetricsAddrFile = listen, addrFile
			return rc.Args()
		})}
		if err := r.Start(ctx); err != nil {
			return err
		}
		c.mu.Lock()
		c.Relays = append(c.Relays, r)
		c.mu.Unlock()
	}
	return nil
}

// closeEvents stops the relays, the consumer and the embedded bus.
func (c *Cluster) closeEvents() error {
	var errs []error
	c.mu.Lock()
	relays := c.Relays
	c.mu.Unlock()
	for _, r := range relays {
		errs = append(errs, r.Stop())
	}
	if c.Query != nil {
		errs = append(errs, c.Query.Close())
		c.Query = nil
	}
	if c.Bus != nil {
		c.Bus.Shutdown()
		c.Bus = nil
	}
	return errors.Join(errs...)
}
