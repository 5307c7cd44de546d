package e2e

import (
	"bufio"
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

	"tradeunit/proxy"
)

// TestDevCommand runs `tradeunit dev` as a new user would: the curl example it
// prints works as printed, Ctrl-C stops it cleanly, and a restart on the same
// data directory has every order.
func TestDevCommand(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	dir := filepath.Join(t.TempDir(), "data")

	url, curl, stop := startDev(t, dir)
	out, err := exec.Command("bash", "-c", curl).Output()
	if err != nil {
		t.Fatalf("printed curl example failed: %v\n%s", err, curl)
	}
	var order map[string]any
	if err := json.Unmarshal(out, &order); err != nil || order["trade_state"] != "NOTPAY" {
		t.Fatalf("printed curl example answered %q (%v), want a NOTPAY order", out, err)
	}
	stop()

	creds, err := proxy.LoadCredentials(filepath.Join(dir, "dev-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	url, _, stop = startDev(t, dir)
	defer stop()
	api := &client{t: t, base: url, key: creds.Merchants[0].APIKey, http: &http.Client{Timeout: 30 * time.Second}}
	got := api.call("GET", "/v3/orders/"+order["order_no"].(string), nil)
	want(t, "order after restart", got, 200, "")
}

// startDev starts `tradeunit dev` and returns its URL, its printed curl
// example, and a function that interrupts it and checks it exits cleanly.
func startDev(t *testing.T, dir string) (url, curl string, stop func()) {
	t.Helper()
	cmd := exec.Command(binary, "dev", "--data", dir, "--listen", "127.0.0.1:0")
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
	var curlLines []string
	timeout := time.After(30 * time.Second)
	for url == "" || !strings.Contains(strings.Join(curlLines, "\n"), "-d '") {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("tradeunit dev exited during start")
			}
			if m := urlRe.FindStringSubmatch(line); m != nil {
				url = m[1]
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
	return url, strings.Join(curlLines, "\n"), func() {
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
}
