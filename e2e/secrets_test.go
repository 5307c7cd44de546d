package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/internal/etcdtest"
	"tradeunit/routing"
)

// TestNoPasswordInAnyOutput runs a cluster on etcd with one unit on a
// replicated MariaDB set whose users have passwords (made at random, kept
// in the set's secrets file), drives orders through it, runs the operator's
// commands (listings as text and JSON, the storage view, the history, a
// failover) and then reads everything the system printed, logged, served
// or kept: every process's log, every command's output, every metrics
// endpoint, the checker's API, every key and value in etcd (history
// included) and every file the cluster wrote. None holds a password.
func TestNoPasswordInAnyOutput(t *testing.T) {
	dir := t.TempDir()
	set := startSet(t, filepath.Join(dir, "mariadb"))
	passwords := setPasswords(t, set.SecretsPath())
	etcd := etcdtest.Start(t, 1)
	spec := etcd.Spec("/secrets")
	const replicated = tradeunit.UnitID(2)
	db := "tradeunit_u2"
	in := set.Instances
	c := startCluster(t, options{units: 2, replicas: 2, routesSpec: spec, etcd: etcd, health: checkerEvery(200 * time.Millisecond),
		unitMetrics: true, secrets: set.SecretsPath(),
		storageOf: func(id tradeunit.UnitID) routing.Storage {
			if id != replicated {
				return routing.Storage{Primary: dsn.MustParse(fmt.Sprintf("sqlite:%s/unit-%d.db", dir, id))}
			}
			return routing.Storage{Primary: in[0].AppStorage(db), Replicas: []dsn.DSN{in[1].AppStorage(db), in[2].AppStorage(db)}}
		}})
	api := newClient(t, c, 0)
	waitReport(t, c.HealthURL, 20*time.Second, "every unit healthy", allHealthy(2))
	for i := 0; i < 20; i++ {
		no := api.mustCreate(uniq("secret"), 100)
		want(t, "pay", api.call("POST", "/v3/orders/"+no+"/pay", map[string]any{"payment_id": uniq("p")}), 200, "")
	}

	var seen bytes.Buffer // everything read, to grep at the end
	admin := func(args ...string) {
		t.Helper()
		cmd := exec.Command(binary, append([]string{"admin"}, append(append(args, "--routes", spec, "--secrets", set.SecretsPath()), adminArgs(c)...)...)...)
		out, err := cmd.CombinedOutput()
		seen.Write(out)
		if err != nil {
			t.Fatalf("tradeunit admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	admin("units", "--health", c.HealthURL)
	admin("units", "--json")
	admin("units", "--storage")
	admin("units", "--storage", "--json")
	admin("failover", "--unit", replicated.String())
	admin("units", "--storage", "--json")
	admin("history", "--json")
	if !strings.Contains(seen.String(), in[1].Addr()) && !strings.Contains(seen.String(), in[2].Addr()) {
		t.Fatalf("the storage view names no replica; output:\n%s", seen.String())
	}

	seen.WriteString(scrape(t, c.ProxyURL+"/metrics"))
	seen.WriteString(scrapeInternal(t, c, c.HealthURL+"/metrics"))
	seen.WriteString(scrapeInternal(t, c, c.HealthURL+"/v1/units"))
	for _, u := range c.Units {
		for _, r := range u.Replicas {
			seen.WriteString(scrapeInternal(t, c, r.MetricsURL()))
		}
	}
	seen.Write(etcdDump(t, etcd))
	// Every file the cluster wrote: logs, addresses, credentials, SQLite.
	filepath.WalkDir(c.Dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			data, _ := os.ReadFile(path)
			seen.Write(data)
		}
		return nil
	})

	for user, pw := range passwords {
		if strings.Contains(seen.String(), pw) {
			t.Errorf("the password of %s appears in the output", user)
		}
	}
	// The check can fail: the set's own secrets file holds them.
	secretsFile, _ := os.ReadFile(set.SecretsPath())
	for user, pw := range passwords {
		if !bytes.Contains(secretsFile, []byte(pw)) {
			t.Fatalf("the password of %s is not in the secrets file the test greps for", user)
		}
	}
	t.Logf("%d bytes of output, logs, metrics, etcd and files read; no password in them", seen.Len())
}

// setPasswords reads a local set's passwords from its secrets file.
func setPasswords(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Passwords map[string]string `json:"passwords"`
	}
	if err := json.Unmarshal(data, &f); err != nil || len(f.Passwords) == 0 {
		t.Fatalf("secrets file %s: %v", path, err)
	}
	for user, pw := range f.Passwords {
		if len(pw) < 16 {
			t.Fatalf("the password of %s is %d characters, want a long random one", user, len(pw))
		}
	}
	return f.Passwords
}

// etcdDump returns every key and value in etcd.
func etcdDump(t *testing.T, c *etcdtest.Cluster) []byte {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Members[0].ClientURL}, TLS: c.Admin(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, kv := range resp.Kvs {
		out.Write(kv.Key)
		out.WriteByte('=')
		out.Write(kv.Value)
		out.WriteByte('\n')
	}
	if !bytes.Contains(out.Bytes(), []byte("/secrets/storage-history/")) {
		t.Fatalf("etcd holds no storage history; dump:\n%s", out.String())
	}
	return out.Bytes()
}
