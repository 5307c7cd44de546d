// Package daemon holds what every tradeunit program shares: its HTTP server
// settings, its logger, its metrics registry, the address handshake with
// whoever started it, and the binding of configuration to flags. Each
// program's own wiring lives in a package of its own beside this one
// (daemon/proxyd, daemon/healthd, daemon/unitd), as one Main value that
// cmd/tradeunit, the local cluster, the benchmarks and the tests all start
// the same way, so that what the tests run is what ships.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/pki"
	"tradeunit/routing"
)

// HTTPConfig bounds an HTTP server, so that a slow or stuck client (a body
// announced and never sent, headers dribbled byte by byte) cannot hold a
// connection and its goroutine forever.
type HTTPConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// ShutdownTimeout bounds the graceful stop: requests in flight get
	// this long to finish.
	ShutdownTimeout time.Duration
}

// DefaultHTTPConfig returns the bounds of every tradeunit HTTP server.
func DefaultHTTPConfig() HTTPConfig {
	return HTTPConfig{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ShutdownTimeout: 10 * time.Second}
}

// Validate reports a bound that is not positive; it changes nothing.
func (c HTTPConfig) Validate() error {
	if c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 ||
		c.MaxHeaderBytes <= 0 || c.ShutdownTimeout <= 0 {
		return fmt.Errorf("http: every timeout and the header limit must be positive, got %+v", c)
	}
	return nil
}

// Flags binds the settings to flags of fs, their defaults the current values.
func (c *HTTPConfig) Flags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ReadHeaderTimeout, "http-read-header-timeout", c.ReadHeaderTimeout, "time a client has to send a request's headers")
	fs.DurationVar(&c.ReadTimeout, "http-read-timeout", c.ReadTimeout, "time a client has to send a whole request, body included")
	fs.DurationVar(&c.WriteTimeout, "http-write-timeout", c.WriteTimeout, "time to write a response")
	fs.DurationVar(&c.IdleTimeout, "http-idle-timeout", c.IdleTimeout, "how long an idle keep-alive connection is kept")
	fs.IntVar(&c.MaxHeaderBytes, "http-max-header-bytes", c.MaxHeaderBytes, "largest request header block accepted")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time requests in flight get to finish at shutdown")
}

// Server returns an HTTP server of h with these bounds, logging its own
// errors (a TLS handshake, a bad request line) to log.
func (c HTTPConfig) Server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// LogConfig says how a program logs.
type LogConfig struct {
	Level  slog.Level
	Format string // "text" or "json"
}

// DefaultLogConfig logs at info level, as text.
func DefaultLogConfig() LogConfig { return LogConfig{Level: slog.LevelInfo, Format: "text"} }

// Validate reports an unknown format; it changes nothing.
func (c LogConfig) Validate() error {
	if c.Format != "text" && c.Format != "json" {
		return fmt.Errorf("log format must be text or json, got %q", c.Format)
	}
	return nil
}

// Flags binds the settings to flags of fs.
func (c *LogConfig) Flags(fs *flag.FlagSet) {
	fs.TextVar(&c.Level, "log-level", c.Level, "log level: debug, info, warn or error")
	fs.StringVar(&c.Format, "log-format", c.Format, "log format: text or json")
}

// Logger returns the logger these settings describe, writing to w.
func (c LogConfig) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// NewRegistry returns a process's metrics registry, with the Go runtime and
// process collectors. Each program registers on its own registry: no global
// state.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsHandler serves reg's metrics.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Listen listens on addr and, if addrFile is set, writes the bound address
// there once listening, so that whoever started the program with port 0
// learns the port.
func Listen(addr, addrFile string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if addrFile != "" {
		if err := WriteAddrFile(addrFile, ln.Addr().String()); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

// WriteAddrFile writes addr and a newline atomically, so a reader never sees
// half an address.
func WriteAddrFile(path, addr string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(addr + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// HTTPServer is an HTTP server a program runs, with its failure reported.
type HTTPServer struct {
	*http.Server
	Addr     string // the bound address
	shutdown time.Duration
	failed   chan error
}

// ServeHTTP serves h on addr (writing the bound address to addrFile if set)
// with the bounds of cfg, until Close. It is plaintext: for the public API.
func ServeHTTP(addr, addrFile string, h http.Handler, cfg HTTPConfig, log *slog.Logger) (*HTTPServer, error) {
	return ServeInternal(addr, addrFile, h, cfg, nil, log)
}

// ServeInternal serves h like ServeHTTP, for an endpoint inside the cluster
// (metrics, the checker's API): with keys, over mutual TLS (keys.ServerTLS:
// a client without a certificate of the cluster's CA is refused at the
// handshake); with nil keys, plaintext, as a program without TLS runs.
func ServeInternal(addr, addrFile string, h http.Handler, cfg HTTPConfig, keys *pki.Keys, log *slog.Logger) (*HTTPServer, error) {
	ln, err := Listen(addr, addrFile)
	if err != nil {
		return nil, err
	}
	s := &HTTPServer{Server: cfg.Server(h, log), Addr: ln.Addr().String(), shutdown: cfg.ShutdownTimeout, failed: make(chan error, 1)}
	serve := func() error { return s.Serve(ln) }
	if keys != nil {
		s.TLSConfig = keys.ServerTLS()
		// The certificate comes from TLSConfig (reloaded per handshake),
		// not from files named here.
		serve = func() error { return s.ServeTLS(ln, "", "") }
	}
	go func() {
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			s.failed <- err
		}
	}()
	return s, nil
}

// InternalURL returns the base URL of an internal HTTP endpoint at addr
// (host:port) as served by ServeInternal with keys: https with keys,
// http without.
func InternalURL(addr string, keys *pki.Keys) string {
	if keys != nil {
		return "https://" + addr
	}
	return "http://" + addr
}

// InternalClient returns an HTTP client for internal endpoints: with keys,
// it presents keys' certificate and accepts only servers of keys' CAs
// (keys.ClientTLS); with nil keys, a plain client.
func InternalClient(keys *pki.Keys) *http.Client {
	if keys == nil {
		return &http.Client{}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = keys.ClientTLS()
	return &http.Client{Transport: t}
}

// Failed receives the error that stopped the server, if it stops by itself.
func (s *HTTPServer) Failed() <-chan error { return s.failed }

// Close stops the server gracefully: no new connection, requests in flight
// get the shutdown timeout to finish.
func (s *HTTPServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
	defer cancel()
	return s.Shutdown(ctx)
}

// Args returns the command line (command, then flags) that makes a program
// started with it parse to cur: only the flags whose values differ from
// def's, so a child process keeps its own defaults for everything else.
// Both configurations bind the same flags (their Flags method).
func Args[C any, P interface {
	*C
	Flags(*flag.FlagSet)
}](command string, def, cur C) []string {
	d := flag.NewFlagSet("defaults", flag.ContinueOnError)
	P(&def).Flags(d)
	c := flag.NewFlagSet("config", flag.ContinueOnError)
	P(&cur).Flags(c)
	args := []string{command}
	c.VisitAll(func(f *flag.Flag) {
		if df := d.Lookup(f.Name); df == nil || df.Value.String() != f.Value.String() {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	return args
}

// RegisterRoutesMetrics exports what a process knows of its routing table:
// the revision it serves, and whether that table may be stale because etcd
// could not be reached (it keeps serving its last good copy meanwhile).
func RegisterRoutesMetrics(reg *prometheus.Registry, routes interface{ Current() *routing.Table }) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tradeunit_routing_table_revision", Help: "Revision of the routing table this process serves.",
	}, func() float64 { return float64(routes.Current().Revision) }))
	if s, ok := routes.(interface{ Stale() bool }); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tradeunit_routing_table_stale",
			Help: "1 while etcd cannot be reached and the last good routing table is served.",
		}, func() float64 {
			if s.Stale() {
				return 1
			}
			return 0
		}))
	}
}

// UnitVar binds a unit number to a flag of fs.
func UnitVar(fs *flag.FlagSet, p *tradeunit.UnitID, name, usage string) {
	fs.Var((*unitValue)(p), name, usage)
}

type unitValue tradeunit.UnitID

func (u *unitValue) String() string { return strconv.FormatUint(uint64(*u), 10) }

func (u *unitValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return fmt.Errorf("want a unit number 1..%d", tradeunit.MaxUnitID)
	}
	*u = unitValue(n)
	return nil
}

// ParseFlags binds a program's configuration to fs with flags, parses args,
// refuses positional arguments and validates the result: the ParseFlags of
// every program's Main. validate must read the configuration when called
// (a closure, not a method value of a Config value, which would copy it
// before the flags are parsed).
func ParseFlags(fs *flag.FlagSet, args []string, flags func(*flag.FlagSet), validate func() error) error {
	flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return validate()
}

// Closers closes what a program opened, the last first.
type Closers []func() error

// Add adds f to what Close closes.
func (c *Closers) Add(f func() error) { *c = append(*c, f) }

// Close closes everything added, the last first, and forgets it.
func (c *Closers) Close() error {
	var errs []error
	for i := len(*c) - 1; i >= 0; i-- {
		errs = append(errs, (*c)[i]())
	}
	*c = nil
	return errors.Join(errs...)
}

// BatchFlags binds a batcher's configuration to the flags PREFIXbatch-max,
// -wait and -off of fs; what names the calls batched ("creates") and into
// what ("storage transaction").
func BatchFlags(fs *flag.FlagSet, c *batch.Config, prefix, what, into string) {
	fs.IntVar(&c.MaxSize, prefix+"batch-max", c.MaxSize, "most "+what+" one "+into+" takes (group commit)")
	fs.DurationVar(&c.MaxWait, prefix+"batch-wait", c.MaxWait, "how long one of the "+what+" may wait for others to share its "+into+"; 0 sends at once what arrived meanwhile")
	fs.IntVar(&c.Flushers, prefix+"batch-flushers", c.Flushers, "most "+what+" batches in flight at once")
	fs.BoolVar(&c.Disabled, prefix+"batch-off", c.Disabled, "each of the "+what+" in a "+into+" of its own (the baseline of the group-commit benchmark)")
}

// RegisterBatchMetrics exports a group commit's counts as
// tradeunit_<name>_batches_total, tradeunit_<name>s_total and
// tradeunit_<name>s_waiting (name: "directory_put", "unit_create"); its
// batch size is items over batches.
func RegisterBatchMetrics(reg prometheus.Registerer, name, what string, stats func() batch.Stats) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tradeunit_" + name + "_batches_total",
			Help: "Storage transactions the " + what + " were committed in (group commit)."},
			func() float64 { return float64(stats().Batches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tradeunit_" + name + "s_total",
			Help: "The " + what + " committed in those transactions."},
			func() float64 { return float64(stats().Items) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tradeunit_" + name + "s_waiting",
			Help: "The " + what + " waiting for the next transaction now."},
			func() float64 { return float64(stats().Pending) }),
	)
}

// OpenRoutes opens the routing table a program follows, named by spec (a
// file, or etcd://HOST:PORT/PREFIX), logging its reloads to log. With keys
// (nil for none), etcd is reached over mutual TLS.
func OpenRoutes(ctx context.Context, spec string, keys *pki.Keys, log *slog.Logger) (routing.Editor, error) {
	if spec == "" {
		return nil, errors.New("no routing table: pass --routes FILE or etcd://HOST:PORT/PREFIX")
	}
	opts := RoutingOptions(keys, log)
	return routing.Open(ctx, spec, opts)
}

// RoutingOptions are how a program follows its routing table and storage
// topology: logging to log, and reaching etcd over mutual TLS with keys
// (nil: plaintext).
func RoutingOptions(keys *pki.Keys, log *slog.Logger) routing.Options {
	opts := routing.DefaultOptions()
	opts.Logger = log
	if keys != nil {
		opts.TLS = keys.ClientTLS()
	}
	return opts
}

// Common is what every program's Main starts the same way: its logger, its
// metrics registry, the routing table it follows and what it must close.
type Common struct {
	// Logger is the program's logger; nil: made from its LogConfig, to
	// standard error.
	Logger *slog.Logger
	// Registry receives the program's metrics, the Go runtime's and the
	// process's included; made by Start.
	Registry *prometheus.Registry
	// Keys are the program's certificate and trust, loaded by Start from
	// its TLS files; nil when it runs without TLS.
	Keys *pki.Keys
	Closers
}

// Start makes the logger (unless set) and the registry, and loads the
// keys tls names.
func (c *Common) Start(log LogConfig, tls pki.Files) (err error) {
	if c.Logger == nil {
		c.Logger = log.Logger(os.Stderr)
	}
	c.Registry = NewRegistry()
	if c.Keys, err = pki.LoadIfEnabled(tls); err != nil {
		return err
	}
	if c.Keys != nil {
		c.Logger.Info("mutual TLS", "identity", c.Keys.Identity().String(), "subject", c.Keys.Identity().Subject)
	}
	return nil
}

// Routes returns src, or when it is nil the routing table spec names,
// opened and closed with the program; its revision is in the metrics.
func (c *Common) Routes(ctx context.Context, spec string, src routing.Source) (routing.Source, error) {
	if src == nil {
		ed, err := OpenRoutes(ctx, spec, c.Keys, c.Logger)
		if err != nil {
			return nil, err
		}
		c.Add(ed.Close)
		src = ed
	}
	RegisterRoutesMetrics(c.Registry, src)
	return src, nil
}
