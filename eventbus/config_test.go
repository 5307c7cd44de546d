package eventbus_test

import (
	"flag"
	"strings"
	"testing"
	"time"

	"tradeunit/eventbus"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*eventbus.Config)
		bad    string // in the error; "" for valid
	}{
		{"default", func(*eventbus.Config) {}, ""},
		{"unlimited bytes", func(c *eventbus.Config) { c.MaxBytes = -1 }, ""},
		{"bounded bytes", func(c *eventbus.Config) { c.MaxBytes = 1 << 30 }, ""},
		{"no url", func(c *eventbus.Config) { c.URL = " " }, "URL"},
		{"stream with a dot", func(c *eventbus.Config) { c.Stream = "A.B" }, "stream name"},
		{"empty stream", func(c *eventbus.Config) { c.Stream = "" }, "stream name"},
		{"subject with a wildcard", func(c *eventbus.Config) { c.Subject = "tradeunit.*" }, "subject prefix"},
		{"subject with an empty token", func(c *eventbus.Config) { c.Subject = "tradeunit..events" }, "subject prefix"},
		{"no max age", func(c *eventbus.Config) { c.MaxAge = 0 }, "max age"},
		{"zero bytes", func(c *eventbus.Config) { c.MaxBytes = 0 }, "max bytes"},
		{"window longer than retention", func(c *eventbus.Config) { c.MaxAge = time.Minute }, "duplicates window"},
		{"no window", func(c *eventbus.Config) { c.Duplicates = 0 }, "duplicates window"},
		{"no replicas", func(c *eventbus.Config) { c.Replicas = 0 }, "replicas"},
		{"six replicas", func(c *eventbus.Config) { c.Replicas = 6 }, "replicas"},
		{"no connect timeout", func(c *eventbus.Config) { c.ConnectTimeout = 0 }, "timeouts"},
		{"no publish timeout", func(c *eventbus.Config) { c.PublishTimeout = -time.Second }, "timeouts"},
		{"fetch wait too short", func(c *eventbus.Config) { c.FetchWait = time.Millisecond }, "fetch wait"},
		{"no ack wait", func(c *eventbus.Config) { c.AckWait = 0 }, "ack wait"},
		{"no ack pending", func(c *eventbus.Config) { c.MaxAckPending = 0 }, "max ack pending"},
		{"negative nak delay", func(c *eventbus.Config) { c.NakDelay = -1 }, "nak delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := eventbus.DefaultConfig()
			tt.change(&c)
			before := c
			err := c.Validate()
			if c != before {
				t.Errorf("Validate changed the config: got %+v, want %+v", c, before)
			}
			switch {
			case tt.bad == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad)):
				t.Errorf("got %v, want an error about %s", err, tt.bad)
			}
		})
	}
}

func TestConfigFlags(t *testing.T) {
	c := eventbus.DefaultConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.Flags(fs, "bus-")
	if got, want := fs.Lookup("bus-max-age").DefValue, (7 * 24 * time.Hour).String(); got != want {
		t.Errorf("--bus-max-age default: got %v, want %v", got, want)
	}
	if err := fs.Parse([]string{"--bus-url", "nats://h:4222", "--bus-stream", "S", "--bus-duplicates", "1m", "--bus-max-bytes", "1000"}); err != nil {
		t.Fatal(err)
	}
	want := eventbus.DefaultConfig()
	want.URL, want.Stream, want.Duplicates, want.MaxBytes = "nats://h:4222", "S", time.Minute, 1000
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
}
