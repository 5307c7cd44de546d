package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"tradeunit/cluster"
	"tradeunit/daemon"
	"tradeunit/health"
	"tradeunit/pki"
	"tradeunit/proxy"
)

// TestDevCommand runs `tradeunit dev` as a new user would: the curl example it
// prints works as printed, Ctrl-C stops it cleanly, and a restart on the same
// data directory has every order.
func TestDevCommand(t *testing.T) {
	needCurl(t)
	dir := filepath.Join(t.TempDir(), "data")

	dev := startDev(t, "", "--data", dir, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0", "--probe-interval", "200ms")
	url, curl, stop := dev.url, dev.curl, dev.stop
	out, err := exec.Command("bash", "-c", curl).Output()
	if err != nil {
		t.Fatalf("printed curl example failed: %v\n%s", err, curl)
	}
	var order map[string]any
	if err := json.Unmarshal(out, &order); err != nil || order["trade_state"] != "NOTPAY" {
		t.Fatalf("printed curl example answered %q (%v), want a NOTPAY order", out, err)
	}
	checkDevHealth(t, dev.healthURL)
	checkShippedPrograms(t, dir, dev)
	stop()

	creds, err := proxy.LoadCredentials(filepath.Join(dir, "dev-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	dev = startDev(t, "", "--data", dir, "--listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0")
	url, stop = dev.url, dev.stop
	defer stop()
	api := &client{t: t, base: url, key: creds.Merchants[0].APIKey, http: &http.Client{Timeout: 30 * time.Second}}
	got := api.call("GET", "/v3/orders/"+order["order_no"].(string), nil)
	want(t, "order after restart", got, 200, "")
}

// devRun is a running `tradeunit dev`.
type devRun struct {
	url, healthURL string // the proxy's and the health checker's
	curl           string // the printed curl example
	stop           func() // interrupts it and checks it exits cleanly
	pid            int    // the dev process's
}

// startDev starts `tradeunit dev` and returns what it printed.
func startDev(t *testing.T, cwd string, args ...string) devRun {
	t.Helper()
	var url, healthURL, curl string
	var stop func()
	cmd := exec.Command(binary, append([]string{"dev"}, args...)...)
	cmd.Dir = cwd
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	urlRe := regexp.MustCompile(`proxy at (http://\S+)`)
	healthRe := regexp.MustCompile(`health checker: (https?://\S+)/v1/units`)
	var curlLines []string
	timeout := time.After(30 * time.Second)
	for url == "" || !strings.Contains(strings.Join(curlLines, "\n"), "-d '") || healthURL == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("tradeunit dev exited during start")
			}
			if m := urlRe.FindStringSubmatch(line); m != nil {
				url = m[1]
			}
			if m := healthRe.FindStringSubmatch(line); m != nil {
				healthURL = m[1]
			}
			if strings.HasPrefix(strings.TrimSpace(line), "curl ") || len(curlLines) > 0 && strings.HasSuffix(curlLines[len(curlLines)-1], "\\") {
				curlLines = append(curlLines, line)
			}
		case <-timeout:
			cmd.Process.Kill()
			t.Fatal("tradeunit dev did not print its URL and example within 30s")
		}
	}
	go func() {
		for range lines { // keep reading, so that dev never blocks on its output
		}
	}()
	curl = strings.Join(curlLines, "\n")
	stop = func() {
		t.Helper()
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("tradeunit dev after Ctrl-C: %v, want a clean exit", err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("tradeunit dev did not stop within 30s of Ctrl-C")
		}
	}
	dataDir := filepath.Join(cwd, "data")
	for i, a := range args {
		if a == "--data" && i+1 < len(args) {
			dataDir = args[i+1]
		}
	}
	if keys, err := pki.Load(pki.FilesIn(filepath.Join(dataDir, "pki", "ca"), filepath.Join(dataDir, "pki"), "admin")); err == nil {
		internalClients.Store(healthURL, daemon.InternalClient(keys))
	}
	return devRun{url: url, healthURL: healthURL, curl: curl, stop: stop, pid: cmd.Process.Pid}
}

// TestReadmeExamples runs the README's API examples, exactly as written,
// against `tradeunit dev` started with its defaults (./data, 127.0.0.1:8080).
func TestReadmeExamples(t *testing.T) {
	needCurl(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "With `tradeunit dev` running")
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(text[start:])
	if start < 0 || block == nil {
		t.Fatal("README has no API example block")
	}
	cwd := t.TempDir()
	dev := startDev(t, cwd)
	defer dev.stop()
	script := "set -e\n" + block[1]
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = cwd
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README examples failed: %v\n%s", err, out)
	}
	got := string(out)
	for _, want := range []string{`"trade_state":"SUCCESS"`, `"out_refund_no":"readme-r1"`, `"status":"SUCCESS"`, "204", `"as_of"`, `"hash_type":"SHA1"`, "交易时间"} {
		if !strings.Contains(got, want) {
			t.Fatalf("README examples printed no %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `"code"`) {
		t.Fatalf("README examples printed an error:\n%s", got)
	}
}

// needCurl fails under CI, and skips elsewhere, when curl is missing.
func needCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required under CI=true")
		}
		t.Skip("curl not installed")
	}
}

// checkDevHealth: the checker of `tradeunit dev` lists every unit with its
// verdict and latency, once it has probed them all.
func checkDevHealth(t *testing.T, url string) {
	t.Helper()
	var r health.Report
	waitFor(t, 10*time.Second, "dev's checker judges every unit", func() bool {
		r = getReport(t, url)
		if len(r.Units) != 4 {
			return false
		}
		for _, u := range r.Units {
			if u.Verdict != health.Healthy || u.LatencyEWMAMS <= 0 || u.Samples == 0 {
				return false
			}
		}
		return true
	})
}

// checkShippedPrograms starts tradeunit proxy and tradeunit health, as an
// operator would, over the routing table and merchants of a running
// tradeunit dev, and checks that dev's proxy and checker are those
// programs: every metric family the shipped ones export (the Go runtime's
// and the process's included) is exported by dev's, and both refuse an
// oversized request header the same way.
func checkShippedPrograms(t *testing.T, dir string, dev devRun) {
	t.Helper()
	routes, merchants := filepath.Join(dir, "routes.json"), filepath.Join(dir, "dev-credentials.json")
	checker := cluster.NewProcess(binary, t.TempDir(), "health", func(listen, addrFile string) []string {
		return append([]string{"health", "--routes", routes, "--listen", listen, "--addr-file", addrFile}, tlsArgs(dir, "checker")...)
	})
	px := cluster.NewProcess(binary, t.TempDir(), "proxy", func(listen, addrFile string) []string {
		return append([]string{"proxy", "--routes", routes, "--merchants", merchants, "--listen", listen, "--addr-file", addrFile,
			"--health", dev.healthURL}, tlsArgs(dir, "proxy")...)
	})
	for _, p := range []*cluster.Process{checker, px} {
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
	}
	shippedHealth := "https://" + checker.Addr()
	internalClients.Store(shippedHealth, internalClient(dev.healthURL))
	for _, pair := range [][2]string{{dev.url, "http://" + px.Addr()}, {dev.healthURL, shippedHealth}} {
		devURL, shippedURL := pair[0], pair[1]
		devFamilies := families(scrape(t, devURL+"/metrics"))
		shipped := families(scrape(t, shippedURL+"/metrics"))
		for _, f := range []string{"go_goroutines", "process_cpu_seconds_total", "tradeunit_routing_table_revision"} {
			if !shipped[f] {
				t.Errorf("%s exports no %s", shippedURL, f)
			}
		}
		for f := range shipped {
			if !devFamilies[f] {
				t.Errorf("tradeunit dev at %s exports no %s, which the shipped program exports", devURL, f)
			}
		}
		for _, url := range []string{devURL, shippedURL} {
			req, _ := http.NewRequest("GET", url+"/healthz", nil)
			req.Header.Set("X-Big", strings.Repeat("x", 100<<10))
			resp, err := http1(internalClient(url)).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s: a 100 KiB header got %d, want 431", url, resp.StatusCode)
			}
		}
	}
}

// http1 is client speaking HTTP/1.1 only: over TLS, Go's HTTP/2 client
// refuses to send a header block larger than the server's advertised
// limit, so the server's answer to one is only seen over HTTP/1.1.
func http1(client *http.Client) *http.Client {
	t, ok := client.Transport.(*http.Transport)
	if !ok {
		return client
	}
	t = t.Clone()
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	t.TLSClientConfig = t.TLSClientConfig.Clone()
	t.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return &http.Client{Transport: t}
}

// families returns the metric families of a Prometheus text exposition.
func families(exposition string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			out[strings.Fields(f)[0]] = true
		}
	}
	return out
}
