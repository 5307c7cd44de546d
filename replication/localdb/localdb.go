// Package localdb starts a replicated set of MariaDB servers on loopback
// ports (or, placed, on other addresses: Config.Places), each with its own
// data directory, for development and tests: one primary and replicas,
// GTID replication with semi-synchronous acknowledgement, configured as
// production storage is (see myCnf and the replication package). It runs
// the mariadbd binaries of the machine and leaves any other MariaDB (the
// service on 3306) alone.
//
// Every server has root@127.0.0.1, the replication user repl and the
// application user tradeunit (ALL on `tradeunit\_%`.*, no SUPER, so
// read_only fences it), at 127.0.0.1 or Config.UserHost (root there too),
// each with a password made at random when the set is
// created and kept only in its secrets file, DIR/secrets.json (mode 600;
// package secrets reads it). A server always starts read-only; the
// set makes its primary writable with replication.Promote and points the
// replicas at it with replication.Repoint, the operations a failover uses.
package localdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"tradeunit/replication"
	"tradeunit/secrets"
)

// Config configures Start. Start from DefaultConfig.
type Config struct {
	// Dir holds the set: set.json and one directory per instance. A Dir
	// with a set.json is resumed: same instances, ports and data.
	Dir string
	// Instances is the number of servers, one primary and the rest
	// replicas: 2 to 9 (a lone semi-sync primary blocks every commit).
	// Instances and BasePort apply to a new set; a resumed one keeps its
	// own.
	Instances int
	// BasePort is the first instance's port, the others follow; 0 picks
	// free ports.
	BasePort int
	// Logger receives progress.
	Logger *slog.Logger
	// Mariadbd and InstallDB are the binaries; empty finds them on PATH or
	// in the usual places.
	Mariadbd, InstallDB string
	// Places puts instance i (the first is the primary) somewhere other
	// than loopback, e.g. in a network namespace standing for a machine
	// room; instances beyond the list, and by default all, are on
	// 127.0.0.1. Like Instances, it applies to a new set.
	Places []Place
	// UserHost is the host part of the accounts of root, repl and the
	// application user: who may connect. Default 127.0.0.1; a set placed
	// on other addresses names them, e.g. "10.77.%", since its replicas
	// and clients connect from there.
	UserHost string
}

// Place is where one instance runs.
type Place struct {
	// Host is the address the server binds and is reached at; "" is
	// 127.0.0.1.
	Host string `json:"host,omitempty"`
	// Prefix is the command mariadbd runs under, e.g. ip netns exec NAME;
	// none runs it directly. mariadb-install-db needs no network and runs
	// directly either way.
	Prefix []string `json:"prefix,omitempty"`
}

// DefaultConfig returns a set of three servers on free ports in dir,
// logging nothing.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, Instances: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Validate reports a bad setting; it changes nothing.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("localdb: Config.Dir is required")
	}
	if c.Logger == nil {
		return errors.New("localdb: no logger")
	}
	if c.Instances < 2 || c.Instances > 9 {
		return fmt.Errorf("localdb: %d instances: want 2 to 9 (one primary, semi-sync replicas)", c.Instances)
	}
	if c.BasePort < 0 || c.BasePort+c.Instances > 65536 {
		return fmt.Errorf("localdb: base port %d out of range", c.BasePort)
	}
	if len(c.Places) > c.Instances {
		return fmt.Errorf("localdb: %d places for %d instances", len(c.Places), c.Instances)
	}
	for i, p := range c.Places {
		if p.Host != "" && net.ParseIP(p.Host) == nil {
			return fmt.Errorf("localdb: place of instance %d: host %q is not an IP address (bind_address, and skip_name_resolve)", i+1, p.Host)
		}
	}
	return nil
}

// Set is a running replicated set.
type Set struct {
	Dir       string
	Instances []*Instance

	logger    *slog.Logger
	passwords *secrets.Secrets
	userHost  string
}

// SecretsPath is the set's secrets file: the passwords of its users.
func (s *Set) SecretsPath() string { return filepath.Join(s.Dir, "secrets.json") }

// Passwords knows the passwords of the set's users.
func (s *Set) Passwords() *secrets.Secrets { return s.passwords }

// makePasswords makes the set's passwords and writes its secrets file.
func (s *Set) makePasswords() error {
	pw := map[string]string{}
	for _, user := range []string{RootUser, ReplUser, AppUser} {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		pw[user] = hex.EncodeToString(b[:])
	}
	if err := secrets.Write(s.SecretsPath(), pw); err != nil {
		return err
	}
	return s.loadPasswords()
}

func (s *Set) loadPasswords() error {
	p, err := secrets.Load(s.SecretsPath(), nil)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("localdb: %s has no secrets file: it was made by an older tradeunit with well-known passwords; remove the directory and start a new set", s.Dir)
	}
	s.passwords = p
	return err
}

// setFile records what a later Start needs to resume the set.
type setFile struct {
	Instances []instanceFile `json:"instances"`
	UserHost  string         `json:"user_host,omitempty"`
}

type instanceFile struct {
	Name     string `json:"name"`
	ServerID int    `json:"server_id"`
	Port     int    `json:"port"`
	Place
}

// Start starts a set in cfg.Dir: a new one (install, start, create users,
// promote the first instance, point the others at it) or, when Dir holds
// one, the same set again, whose primary is the one instance without a
// replication source. It returns once every replica is connected and
// acknowledging.
func Start(ctx context.Context, cfg Config) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bins, err := findBinaries(cfg)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Set{Dir: dir, logger: cfg.Logger, userHost: cfg.UserHost}
	data, err := os.ReadFile(s.statePath())
	switch {
	case err == nil:
		err = s.resume(ctx, data, bins)
	case errors.Is(err, os.ErrNotExist):
		err = s.create(ctx, cfg, bins)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Set) statePath() string { return filepath.Join(s.Dir, "set.json") }

func (s *Set) create(ctx context.Context, cfg Config, bins binaries) error {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	ports, err := pickPorts(cfg.BasePort, cfg.Instances)
	if err != nil {
		return err
	}
	if err := s.makePasswords(); err != nil {
		return err
	}
	state := setFile{UserHost: cfg.UserHost}
	for i, port := range ports {
		name := fmt.Sprintf("db%d", i+1)
		if _, err := os.Stat(filepath.Join(s.Dir, name)); err == nil {
			return fmt.Errorf("localdb: %s holds %s but no set.json: remove it or use another directory", s.Dir, name)
		}
		r := instanceFile{Name: name, ServerID: i + 1, Port: port}
		if i < len(cfg.Places) {
			r.Place = cfg.Places[i]
		}
		s.Instances = append(s.Instances, s.newInstance(r, bins))
		state.Instances = append(state.Instances, r)
	}
	t0 := time.Now()
	if err := s.each(func(in *Instance) error { return in.install(ctx) }); err != nil {
		return err
	}
	s.logger.Info("mariadb data directories installed", "dir", s.Dir, "took", time.Since(t0).Round(time.Millisecond))
	err = s.each(func(in *Instance) error {
		role := Replica
		if in == s.Instances[0] {
			role = Primary
		}
		if err := in.StartAs(ctx, role); err != nil {
			return err
		}
		return in.createUsers(ctx)
	})
	if err != nil {
		return err
	}
	if err := s.wire(ctx, s.Instances[0], true); err != nil {
		return err
	}
	data, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(s.statePath(), append(data, '\n'), 0o644)
}

func (s *Set) resume(ctx context.Context, data []byte, bins binaries) error {
	var state setFile
	if err := json.Unmarshal(data, &state); err != nil {
		return fmt.Errorf("localdb: %s: %w", s.statePath(), err)
	}
	if len(state.Instances) < 2 {
		return fmt.Errorf("localdb: %s lists %d instances", s.statePath(), len(state.Instances))
	}
	if err := s.loadPasswords(); err != nil {
		return err
	}
	s.userHost = state.UserHost
	for _, r := range state.Instances {
		s.Instances = append(s.Instances, s.newInstance(r, bins))
	}
	// Every instance restarts as a replica: read-only, and crash recovery
	// that cannot make an old primary diverge. The primary is then the one
	// that replicates from no one.
	if err := s.each(func(in *Instance) error { return in.StartAs(ctx, Replica) }); err != nil {
		return err
	}
	var primaries []*Instance
	for _, in := range s.Instances {
		st, err := replication.Inspect(ctx, in.RootDSN())
		if err != nil {
			return err
		}
		if st.Replica == nil {
			primaries = append(primaries, in)
		}
	}
	if len(primaries) != 1 {
		var names []string
		for _, in := range primaries {
			names = append(names, in.Name)
		}
		return fmt.Errorf("localdb: cannot tell the primary of %s: instances without a replication source: %v", s.Dir, names)
	}
	primaries[0].mu.Lock()
	primaries[0].role = Primary
	primaries[0].mu.Unlock()
	return s.wire(ctx, primaries[0], false)
}

// wire promotes primary, points the replicas at it (repoint: on a new set;
// a resumed replica keeps its source), and waits until every replica
// acknowledges.
func (s *Set) wire(ctx context.Context, primary *Instance, repoint bool) error {
	if err := replication.Promote(ctx, primary.RootDSN()); err != nil {
		return err
	}
	for _, in := range s.Instances {
		if in != primary && repoint {
			if err := replication.Repoint(ctx, in.RootDSN(), s.Source(primary)); err != nil {
				return err
			}
		}
	}
	want := len(s.Instances) - 1
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st, err := replication.Inspect(ctx, primary.RootDSN())
		if err == nil && st.SemiSync.Clients >= want {
			s.logger.Info("mariadb set ready", "primary", primary.Name, "replicas", want)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localdb: %s has %d of %d semi-sync replicas after 30s (last error: %v)",
				primary.Name, st.SemiSync.Clients, want, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Set) newInstance(r instanceFile, bins binaries) *Instance {
	dir := filepath.Join(s.Dir, r.Name)
	host, userHost := r.Host, s.userHost
	if host == "" {
		host = loopback
	}
	if userHost == "" {
		userHost = loopback
	}
	return &Instance{Name: r.Name, ServerID: r.ServerID, Host: host, Port: r.Port, Dir: dir, DataDir: filepath.Join(dir, "data"),
		bins: bins, prefix: r.Prefix, userHost: userHost, logger: s.logger, passwords: s.passwords, role: Replica}
}

// each runs f on every instance at once and joins the errors.
func (s *Set) each(f func(*Instance) error) error {
	errs := make([]error, len(s.Instances))
	var wg sync.WaitGroup
	for i, in := range s.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(in)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Source is how a replica reaches in as its source.
func (s *Set) Source(in *Instance) replication.Source {
	pw, _ := s.passwords.Password(ReplUser, in.Addr())
	return replication.Source{Host: in.Host, Port: in.Port, User: ReplUser, Password: pw}
}

// Primary returns the instance that is now the writable primary, by
// asking every running instance: after a failover it is no longer the
// first. It is an error if there is not exactly one.
func (s *Set) Primary(ctx context.Context) (*Instance, error) {
	var found []*Instance
	for _, in := range s.Instances {
		if !in.Running() {
			continue
		}
		st, err := replication.Inspect(ctx, in.RootDSN())
		if err == nil && st.Role() == replication.RolePrimary {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("localdb: %d writable primaries", len(found))
	}
	return found[0], nil
}

// Instance returns the instance named name, or nil.
func (s *Set) Instance(name string) *Instance {
	for _, in := range s.Instances {
		if in.Name == name {
			return in
		}
	}
	return nil
}

// Close shuts every server down cleanly, at once. The data stays in Dir.
func (s *Set) Close() error {
	return s.each(func(in *Instance) error { return in.Stop() })
}
