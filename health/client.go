package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Follow long-polls the checker at baseURL (e.g. http://127.0.0.1:8081) and
// calls update with every new report, until ctx ends. When the checker
// cannot be reached or stops answering, it calls lost once per outage and
// keeps trying; the next report ends the outage.
//
// Each poll waits at most three probe intervals (at least 1s), and the
// request gives up one interval (at least 1s) after that, so a checker that
// hangs is noticed within a few seconds.
func Follow(ctx context.Context, baseURL string, update func(*Report), lost func(error)) {
	FollowWith(ctx, &http.Client{}, baseURL, update, lost)
}

// FollowWith is Follow with client's transport: a client with a
// certificate for a checker served over mutual TLS (daemon.InternalClient).
// Its Timeout should be zero: every poll has its own deadline.
func FollowWith(ctx context.Context, client *http.Client, baseURL string, update func(*Report), lost func(error)) {
	base := strings.TrimRight(baseURL, "/") + "/v1/units"
	var (
		version  uint64
		interval = time.Second
		healthy  = true
		backoff  = 100 * time.Millisecond
	)
	for ctx.Err() == nil {
		poll := min(max(3*interval, time.Second), MaxPollTimeout)
		q := url.Values{"timeout": {poll.String()}}
		if version != 0 {
			q.Set("wait", fmt.Sprint(version))
		}
		rctx, cancel := context.WithTimeout(ctx, poll+max(interval, time.Second))
		r, err := fetch(rctx, client, base+"?"+q.Encode())
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if healthy {
				healthy = false
				lost(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			version = 0 // ask for the current report at once when it is back
			continue
		}
		healthy, backoff = true, 100*time.Millisecond
		if r.IntervalMS > 0 {
			interval = time.Duration(r.IntervalMS) * time.Millisecond
		}
		if r.Version != version {
			version = r.Version
			update(r)
		}
	}
}

func fetch(ctx context.Context, client *http.Client, u string) (*Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("health checker answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var r Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode health report: %w", err)
	}
	return &r, nil
}

// Fetch returns the checker's current report, from its base URL.
func Fetch(ctx context.Context, baseURL string) (*Report, error) {
	return FetchWith(ctx, &http.Client{}, baseURL)
}

// FetchWith is Fetch with client's transport (a certificate for a checker
// over mutual TLS); the call gives up after 5 s.
func FetchWith(ctx context.Context, client *http.Client, baseURL string) (*Report, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return fetch(ctx, client, strings.TrimSuffix(baseURL, "/")+"/v1/units")
}
