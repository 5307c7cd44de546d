package eventbus

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
)

// Config is the bus adapter's configuration. Start from DefaultConfig; the
// stream settings (MaxAge, MaxBytes, Duplicates, Replicas) are applied to
// the stream by every Open, so the last program to open it sets them.
type Config struct {
	// URL names the NATS server, or several separated by commas.
	URL string
	// Name is the connection's name, as the server's monitoring shows it.
	Name string
	// Stream is the JetStream stream holding the events.
	Stream string
	// Subject is the subject prefix: a unit's events are published on
	// <Subject>.unit.<N>, and the stream holds <Subject>.unit.*.
	Subject string
	// MaxAge is how long the stream keeps an event: a consumer that falls
	// further behind than this loses events.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size (the oldest events go first); -1
	// is unlimited.
	MaxBytes int64
	// Duplicates is the de-duplication window: an event published again
	// within it (same ID) is stored once.
	Duplicates time.Duration
	// Replicas is the number of copies of the stream in a NATS cluster.
	Replicas int
	// ConnectTimeout bounds Open: connecting (retried until then) and
	// making sure of the stream.
	ConnectTimeout time.Duration
	// PublishTimeout bounds one Publish call: every event of the batch must
	// be acknowledged by then.
	PublishTimeout time.Duration

	// FetchWait is how long a consumer's fetch waits for a first message;
	// it is also how late Consume notices that it is caught up.
	FetchWait time.Duration
	// AckWait is how long a delivered batch may take to be handled before
	// the server delivers it again.
	AckWait time.Duration
	// MaxAckPending bounds the events delivered to a durable consumer and
	// not yet acknowledged; a Consume batch may not exceed it.
	MaxAckPending int
	// NakDelay is how long a batch whose handler failed waits before it is
	// delivered again.
	NakDelay time.Duration

	// TLS, when set, is the client side of mutual TLS to a server named
	// by a tls:// URL (the program's pki.Keys.ClientTLS); not a flag: a
	// program sets it from its --tls-* files. A nats:// URL names a server
	// without TLS, and the certificate is not offered.
	TLS *tls.Config
}

// DefaultConfig returns the configuration of a bus on a local NATS server.
func DefaultConfig() Config {
	return Config{
		URL:            "nats://127.0.0.1:4222",
		Name:           "tradeunit",
		Stream:         "TRADEUNIT_EVENTS",
		Subject:        "tradeunit.events",
		MaxAge:         7 * 24 * time.Hour,
		MaxBytes:       -1,
		Duplicates:     10 * time.Minute,
		Replicas:       1,
		ConnectTimeout: 10 * time.Second,
		PublishTimeout: 10 * time.Second,
		FetchWait:      time.Second,
		AckWait:        30 * time.Second,
		MaxAckPending:  1000,
		NakDelay:       time.Second,
	}
}

// Validate reports every bad setting; it changes nothing.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("eventbus: "+format, args...)) }
	if strings.TrimSpace(c.URL) == "" {
		bad("a NATS URL is required")
	}
	if err := checkName(c.Stream); err != nil {
		bad("stream name %q: %v", c.Stream, err)
	}
	if err := checkSubject(c.Subject); err != nil {
		bad("subject prefix %q: %v", c.Subject, err)
	}
	if c.MaxAge <= 0 {
		bad("max age must be positive, got %v", c.MaxAge)
	}
	if c.MaxBytes != -1 && c.MaxBytes <= 0 {
		bad("max bytes must be positive or -1 (unlimited), got %d", c.MaxBytes)
	}
	// The server refuses a window longer than the retention.
	if c.Duplicates <= 0 || c.Duplicates > c.MaxAge {
		bad("duplicates window must be positive and at most the max age (%v), got %v", c.MaxAge, c.Duplicates)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("replicas must be 1..5, got %d", c.Replicas)
	}
	if c.ConnectTimeout <= 0 || c.PublishTimeout <= 0 {
		bad("connect and publish timeouts must be positive, got %v and %v", c.ConnectTimeout, c.PublishTimeout)
	}
	if c.FetchWait < 10*time.Millisecond {
		bad("fetch wait must be at least 10ms, got %v", c.FetchWait)
	}
	if c.AckWait <= 0 {
		bad("ack wait must be positive, got %v", c.AckWait)
	}
	if c.MaxAckPending < 1 {
		bad("max ack pending must be at least 1, got %d", c.MaxAckPending)
	}
	if c.NakDelay < 0 {
		bad("nak delay must not be negative, got %v", c.NakDelay)
	}
	return errors.Join(errs...)
}

// Flags binds the configuration to flags of fs named prefix+name ("bus-"
// gives --bus-url); each flag's default is the field's current value.
func (c *Config) Flags(fs *flag.FlagSet, prefix string) {
	fs.StringVar(&c.URL, prefix+"url", c.URL, "NATS server URL (several separated by commas)")
	fs.StringVar(&c.Name, prefix+"name", c.Name, "name of the NATS connection, as the server shows it")
	fs.StringVar(&c.Stream, prefix+"stream", c.Stream, "JetStream stream of the order events")
	fs.StringVar(&c.Subject, prefix+"subject", c.Subject, "subject prefix: a unit's events go to PREFIX.unit.N")
	fs.DurationVar(&c.MaxAge, prefix+"max-age", c.MaxAge, "how long the stream keeps an event (a consumer further behind loses events)")
	fs.Int64Var(&c.MaxBytes, prefix+"max-bytes", c.MaxBytes, "largest size of the stream, oldest events dropped first; -1 is unlimited")
	fs.DurationVar(&c.Duplicates, prefix+"duplicates", c.Duplicates, "de-duplication window: an event published again within it is stored once")
	fs.IntVar(&c.Replicas, prefix+"replicas", c.Replicas, "copies of the stream in a NATS cluster")
	fs.DurationVar(&c.ConnectTimeout, prefix+"connect-timeout", c.ConnectTimeout, "time to reach a NATS server at start")
	fs.DurationVar(&c.PublishTimeout, prefix+"publish-timeout", c.PublishTimeout, "time for a batch of events to be acknowledged")
	fs.DurationVar(&c.FetchWait, prefix+"fetch-wait", c.FetchWait, "how long a consumer's fetch waits for events")
	fs.DurationVar(&c.AckWait, prefix+"ack-wait", c.AckWait, "time a consumer has to handle a batch before it is delivered again")
	fs.IntVar(&c.MaxAckPending, prefix+"max-ack-pending", c.MaxAckPending, "most events delivered to a consumer and not yet acknowledged")
	fs.DurationVar(&c.NakDelay, prefix+"nak-delay", c.NakDelay, "how long a batch whose handling failed waits before it is delivered again")
}

// checkName reports why s is not a usable stream or consumer name: the name
// is a token of the JetStream API's subjects.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(s, " \t\r\n.*>/\\") {
		return errors.New("must not contain whitespace, '.', '*', '>', '/' or '\\'")
	}
	return nil
}

// checkSubject reports why s is not a usable subject prefix: dot-separated
// tokens, none empty, no wildcards.
func checkSubject(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return errors.New("has an empty token")
		}
		if strings.ContainsAny(tok, " \t\r\n*>") {
			return errors.New("must not contain whitespace or wildcards")
		}
	}
	return nil
}
