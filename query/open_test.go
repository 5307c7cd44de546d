package query_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/query"
)

func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		target string
		cfg    query.Config
		code   tradeunit.Code
	}{
		{"", query.DefaultConfig(), tradeunit.CodeParamError},
		{"mysql:root@tcp(127.0.0.1:3306)/q", query.DefaultConfig(), tradeunit.CodeParamError},
		{"sqlite:", query.DefaultConfig(), tradeunit.CodeParamError},
		{"postgres://u:secret@127.0.0.1:5432/q", query.DefaultConfig(), tradeunit.CodeParamError},
		{"postgres://u@127.0.0.1:5432/q?password=secret", query.DefaultConfig(), tradeunit.CodeParamError},
		{"postgres://u@127.0.0.1:5432/", query.DefaultConfig(), tradeunit.CodeParamError},
		{"sqlite:" + filepath.Join(t.TempDir(), "q.db"), query.Config{}, tradeunit.CodeParamError},
		// Nothing listens on port 1.
		{"postgres://postgres@127.0.0.1:1/q?sslmode=disable&connect_timeout=2", query.DefaultConfig(), tradeunit.CodeQueryUnavailable},
		{"sqlite:" + filepath.Join(t.TempDir(), "missing", "dir", "q.db"), query.DefaultConfig(), tradeunit.CodeQueryUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := query.Open(ctx, tt.target, tt.cfg)
			if err == nil {
				s.Close()
			}
			if !tradeunit.IsCode(err, tt.code) {
				t.Fatalf("got %v, want %s", err, tt.code)
			}
			if testing.Verbose() {
				t.Log(err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("got %q, want no password in it", err)
			}
		})
	}
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	target := "sqlite:" + filepath.Join(t.TempDir(), "q.db")
	for range 2 {
		s, err := query.Open(context.Background(), target, query.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestStoreUnreachableAfterOpen(t *testing.T) {
	s := openSQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ListOrders(ctx, query.ListQuery{Mchid: "1900000001"}); !tradeunit.IsCode(err, tradeunit.CodeQueryUnavailable) {
		t.Errorf("canceled: got %v, want QUERY_STORE_UNAVAILABLE", err)
	}
}

func TestDate(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{{"2026-12-01", true}, {"2024-02-29", true}, {"2026-02-29", false}, {"2026-12-1", false}, {"", false}, {"1969-12-31", false}}
	for _, tt := range tests {
		d, err := query.ParseDate(tt.in)
		if (err == nil) != tt.ok || (tt.ok && d.String() != tt.in) {
			t.Errorf("ParseDate(%q): got %v, %v, want ok %v", tt.in, d, err, tt.ok)
		}
	}
	d := query.Date{Year: 2026, Month: 12, Day: 31}
	if got, want := d.End(query.ChinaStandardTime), time.Date(2026, 12, 31, 16, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("got end %v, want %v", got, want)
	}
}

func TestConfigValidateChangesNothing(t *testing.T) {
	c := query.Config{}
	if err := c.Validate(); !tradeunit.IsCode(err, tradeunit.CodeParamError) || c.Zone != nil {
		t.Errorf("got %v and zone %v, want PARAM_ERROR and no zone set", err, c.Zone)
	}
	if err := query.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: got %v, want valid", err)
	}
}
