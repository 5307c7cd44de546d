package dirstore_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/batch"
	"tradeunit/dsn"
	"tradeunit/store/dirstore"
	"tradeunit/store/storetest"
)

// crashEnv names the storage the crash child writes to.
const crashEnv = "DIRSTORE_CRASH_DSN"

// TestCrashLosesNothingAcknowledged runs writers in a child process, which
// put entries through a Batcher and print each answer, and kills it
// (SIGKILL) in the middle of its batches. Reopened, the storage holds every
// entry the child was told was stored, at its version or later; an entry
// whose Put failed with a definite error is not at that version. On SQLite
// the verifier is then shown to catch a planted loss. (A killed process,
// not a power cut: what synchronous=FULL adds is not tested here.)
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	for name, d := range map[string]func(t *testing.T) dsn.DSN{
		"sqlite": func(t *testing.T) dsn.DSN { return sqliteDSN(t) },
		"mysql":  func(t *testing.T) dsn.DSN { return storetest.NewMySQLDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) { testCrash(t, d(t)) })
	}
}

func testCrash(t *testing.T, d dsn.DSN) {
	open(t, d).Close() // create and migrate before the child starts
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+d.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	answers := map[string][]told{} // by key value
	var acks int
	lines := bufio.NewScanner(out)
	timeout := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timeout.Stop()
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 4 {
			continue // the test framework's own output
		}
		v, _ := strconv.ParseInt(f[2], 10, 64)
		answers[f[1]] = append(answers[f[1]], told{version: v, failed: f[0] == "err", unknown: f[3] == "unknown"})
		if f[0] == "ack" {
			acks++
		}
		if acks == crashAcks {
			cmd.Process.Kill() // mid-batch: the writers never pause
		}
	}
	cmd.Wait()
	if acks < crashAcks {
		t.Fatalf("the child acknowledged %d Puts before it ended, want %d", acks, crashAcks)
	}
	s := open(t, d)
	problems, unknown := verifyCrash(t, s, answers)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d Puts acknowledged, %d keys, %d answers with an unknown outcome; %d problems", acks, len(answers), unknown, len(problems))
	if d.Scheme != dsn.SQLite || len(problems) > 0 {
		return
	}
	// The verifier catches a loss: delete one acknowledged entry.
	for value, ts := range answers {
		if ts[0].failed {
			continue
		}
		raw, err := sql.Open("sqlite", "file:"+d.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec("DELETE FROM directory_entries WHERE value = ?", value); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, told := range ts {
			if !told.failed {
				want++
			}
		}
		if problems, _ := verifyCrash(t, s, answers); len(problems) != want {
			t.Errorf("a planted loss of %s: the verifier found %v, want %d problems", value, problems, want)
		}
		break
	}
}

// crashAcks is how many acknowledged Puts the child makes before the kill.
const crashAcks = 2000

// told is one answer the crash child was given.
type told struct {
	version int64
	failed  bool
	unknown bool // the error leaves the outcome unknown
}

// verifyCrash checks the storage against every answer of the child, and
// counts the answers with an unknown outcome.
func verifyCrash(t *testing.T, s *dirstore.Store, answers map[string][]told) (problems []string, unknown int) {
	t.Helper()
	for value, ts := range answers {
		e, err := s.Entry(context.Background(), tradeunit.MerchantKey{Mchid: crashMchid, Kind: tradeunit.KeyOrder, Value: value})
		var have int64
		if err == nil {
			have = e.Version
		} else if !tradeunit.IsCode(err, tradeunit.CodeNotFound) {
			t.Fatalf("Entry(%s): %v", value, err)
		}
		for _, told := range ts {
			switch {
			case !told.failed && have < told.version:
				problems = append(problems, fmt.Sprintf("%s: acknowledged at version %d, stored at %d (0: none): lost", value, told.version, have))
			case told.failed && !told.unknown && have >= told.version:
				problems = append(problems, fmt.Sprintf("%s: refused at version %d, but stored at %d", value, told.version, have))
			case told.failed && told.unknown:
				unknown++
			}
		}
	}
	return problems, unknown
}

const crashMchid = "1900000077"

// TestCrashChild is the child of TestCrashLosesNothingAcknowledged: it runs
// only with crashEnv set, and writes until it is killed.
func TestCrashChild(t *testing.T) {
	ds := os.Getenv(crashEnv)
	if ds == "" {
		t.Skip("the child of TestCrashLosesNothingAcknowledged")
	}
	ctx := context.Background()
	s, err := dirstore.Open(ctx, dsn.MustParse(ds), storetest.TestPasswords())
	if err != nil {
		t.Fatal(err)
	}
	b, err := dirstore.NewBatched(s, batch.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	tell := func(e *tradeunit.DirectoryEntry, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			fmt.Printf("ack %s %d -\n", e.Key.Value, e.Version)
		case tradeunit.OutcomeUnknown(err):
			fmt.Printf("err %s %d unknown\n", e.Key.Value, e.Version)
		default:
			fmt.Printf("err %s %d definite\n", e.Key.Value, e.Version)
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				at := time.Now()
				e := &tradeunit.DirectoryEntry{
					Key:   tradeunit.MerchantKey{Mchid: crashMchid, Kind: tradeunit.KeyOrder, Value: fmt.Sprintf("crash-%d-%d-%d", os.Getpid(), w, i)},
					State: tradeunit.EntryPending, Attempt: tradeunit.Attempt{Unit: 1, ID: uint64(i + 1)},
					Fingerprint: "fp", Created: at, Updated: at, Version: 1,
				}
				r := b.Put(ctx, []*tradeunit.DirectoryEntry{e})[0]
				tell(e, r.Err)
				if r.Err != nil {
					continue
				}
				c := e.Clone()
				c.State, c.RecordNo, c.Version = tradeunit.EntryCommitted, fmt.Sprintf("1%027d", i), 2
				tell(c, b.Put(ctx, []*tradeunit.DirectoryEntry{c})[0].Err)
			}
		})
	}
	wg.Wait()
}
