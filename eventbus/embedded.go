package eventbus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a NATS server with JetStream running inside this process:
// what tradeunit dev and the tests use, so that nothing need be installed.
type Embedded struct {
	srv *server.Server
}

// EmbeddedOption changes how StartEmbedded starts its server.
type EmbeddedOption func(*embeddedOptions)

type embeddedOptions struct {
	log *slog.Logger
	tls *tls.Config
}

// WithTLS has the server accept only TLS clients presenting a certificate
// that cfg verifies: pki.Keys.ServerTLS of a role-server certificate, so
// that only the cluster's relays and consumers reach the events.
func WithTLS(cfg *tls.Config) EmbeddedOption {
	return func(o *embeddedOptions) { o.tls = cfg }
}

// WithServerLog has the server log to log (at its level: debug adds the
// server's debug lines). Without it the server logs nothing.
func WithServerLog(log *slog.Logger) EmbeddedOption {
	return func(o *embeddedOptions) { o.log = log }
}

// StartEmbedded starts a server storing its streams under dir and listening
// on addr ("127.0.0.1:0" picks a free port; URL tells which). Started again
// on the same dir, it has the streams and consumers it had when shut down.
func StartEmbedded(dir, addr string, opts ...EmbeddedOption) (*Embedded, error) {
	var o embeddedOptions
	for _, opt := range opts {
		opt(&o)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("eventbus: embedded server address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("eventbus: embedded server address %q: bad port", addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT // the server reads 0 as its default, 4222
	}
	if dir == "" {
		return nil, errors.New("eventbus: an embedded server needs a storage directory")
	}
	sopts := &server.Options{
		ServerName: "tradeunit-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true, // the program's own signal handling stays its own
		NoLog:      o.log == nil,
	}
	if o.tls != nil {
		// TLSVerify: a client without a certificate is refused; the
		// configuration's own verification decides which are accepted.
		sopts.TLS, sopts.TLSVerify, sopts.TLSConfig, sopts.TLSTimeout = true, true, o.tls, 2
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("eventbus: embedded server: %w", err)
	}
	if o.log != nil {
		l := o.log.With("component", "nats-server")
		srv.SetLogger(serverLog{l}, l.Enabled(context.Background(), slog.LevelDebug), false)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("eventbus: embedded server on %s not ready within 10s", addr)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("eventbus: embedded server on %s: JetStream did not start (storage %s)", addr, dir)
	}
	return &Embedded{srv: srv}, nil
}

// URL returns the server's client URL, nats://HOST:PORT.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Addr returns the address the server listens on, HOST:PORT: what to start
// it on again to keep its clients' URL.
func (e *Embedded) Addr() string { return e.srv.Addr().String() }

// Shutdown stops the server, closing its clients' connections, and waits
// until it has stopped and flushed its storage.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// serverLog writes the server's log lines to a slog.Logger.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(format string, v ...any) { s.l.Info(fmt.Sprintf(format, v...)) }
func (s serverLog) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLog) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLog) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLog) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLog) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
