package routing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tradeunit"
)

const fastPoll = 10 * time.Millisecond

// newTable returns a valid table of hot units with the given ids.
func newTable(rev int64, ids ...tradeunit.UnitID) *Table {
	t := &Table{Revision: rev}
	for _, id := range ids {
		t.Units = append(t.Units, Unit{
			ID:         id,
			LogicAddrs: []string{fmt.Sprintf("127.0.0.1:%d", 9000+id)},
			Available:  true,
			AcceptNew:  true,
		})
	}
	t.Normalize()
	return t
}

// mustWriteTable writes a table file at a new path in a temporary directory.
func mustWriteTable(t *testing.T, tbl *Table) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routing.json")
	if err := WriteFile(path, tbl); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	return path
}

// mustOpenFile opens path and closes it when the test ends.
func mustOpenFile(t *testing.T, path string, opts Options) *TableFile {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	f, err := OpenFile(path, opts)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pollOptions are the default options with another poll interval and,
// unless nil, logger.
func pollOptions(poll time.Duration, log *slog.Logger) Options {
	o := DefaultOptions()
	o.PollInterval = poll
	if log != nil {
		o.Logger = log
	}
	return o
}

// waitFor polls cond until it holds or timeout passes, and reports whether it
// held.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// receive returns the next table from ch, failing after timeout or if ch is
// closed.
func receive(t *testing.T, ch <-chan *Table, timeout time.Duration) *Table {
	t.Helper()
	select {
	case tbl, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want a table")
		}
		return tbl
	case <-time.After(timeout):
		t.Fatalf("no table on the watch channel within %v", timeout)
		return nil
	}
}

// waitClosed fails unless ch is closed within timeout; tables still
// buffered are skipped.
func waitClosed(t *testing.T, ch <-chan *Table, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("watch channel not closed within %v", timeout)
		}
	}
}

// logBuffer collects log output from the poll goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

func TestOpenFile(t *testing.T) {
	path := mustWriteTable(t, newTable(4, 3, 1, 2))
	f := mustOpenFile(t, path, DefaultOptions())
	cur := f.Current()
	if cur == nil {
		t.Fatal("Current: got nil")
	}
	if got, want := cur.Revision, int64(4); got != want {
		t.Errorf("revision: got %v, want %v", got, want)
	}
	if got, want := len(cur.Units), 3; got != want {
		t.Errorf("units: got %v, want %v", got, want)
	}
	if _, ok := cur.Unit(2); !ok {
		t.Errorf("Unit(2): got not found, want found")
	}
	if got, want := f.interval, DefaultOptions().PollInterval; got != want {
		t.Errorf("default poll interval: got %v, want %v", got, want)
	}
	allocs := testing.AllocsPerRun(100, func() { f.Current() })
	if allocs != 0 {
		t.Errorf("Current allocations: got %v, want 0", allocs)
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "invalid.json")
	if err := os.WriteFile(invalid, []byte(`{"revision":1,"units":[{"unit":0}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := OpenFile(filepath.Join(dir, "missing.json"), DefaultOptions())
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	for _, path := range []string{invalid, garbage} {
		_, err := OpenFile(path, DefaultOptions())
		if got, want := tradeunit.ErrorCode(err), tradeunit.CodeParamError; got != want {
			t.Errorf("%s: got %v (%v), want %v", filepath.Base(path), got, err, want)
		}
	}
}

func TestFileReload(t *testing.T) {
	path := mustWriteTable(t, newTable(1, 1))
	f := mustOpenFile(t, path, DefaultOptions()) // the default interval
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := f.Watch(ctx)
	if got, want := receive(t, ch, time.Second).Revision, int64(1); got != want {
		t.Fatalf("first watched table: got revision %v, want %v", got, want)
	}

	start := time.Now()
	if err := WriteFile(path, newTable(2, 1, 2)); err != nil {
		t.Fatal(err)
	}
	watched := receive(t, ch, time.Second)
	watchLatency := time.Since(start)
	if got, want := watched.Revision, int64(2); got != want {
		t.Errorf("watched table: got revision %v, want %v", got, want)
	}
	if watchLatency >= time.Second {
		t.Errorf("watch latency: got %v, want < 1s", watchLatency)
	}
	if got, want := f.Current().Revision, int64(2); got != want {
		t.Errorf("Current: got revision %v, want %v", got, want)
	}
	if _, ok := f.Current().Unit(2); !ok {
		t.Errorf("Current().Unit(2): got not found, want found")
	}
	t.Logf("reload seen after %v (poll interval %v)", watchLatency, DefaultOptions().PollInterval)

	// Current alone, without a watcher in the way.
	start = time.Now()
	if err := WriteFile(path, newTable(3, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	ok := waitFor(t, time.Second, func() bool { return f.Current().Revision == 3 })
	if elapsed := time.Since(start); !ok || elapsed >= time.Second {
		t.Errorf("Current reload: got revision %v after %v, want 3 within 1s", f.Current().Revision, elapsed)
	}
}

func TestFileKeepsLastGoodTable(t *testing.T) {
	good, err := newTable(2, 1, 2).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content []byte
	}{
		{"garbage", []byte("\x00\x01 not a routing table")},
		{"half written", good[:len(good)/2]},
		{"empty", nil},
		{"invalid table", []byte(`{"revision":2,"units":[{"unit":0,"storage":{"primary":"p"}}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := mustWriteTable(t, newTable(1, 1))
			var logs logBuffer
			f := mustOpenFile(t, path, pollOptions(fastPoll, logs.logger()))
			ch := f.Watch(context.Background())
			receive(t, ch, time.Second)

			// Replace the file whole, so that the poller sees only this content.
			tmp := path + ".new"
			if err := os.WriteFile(tmp, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
			if !waitFor(t, time.Second, func() bool { return logs.count("level=WARN") > 0 }) {
				t.Fatalf("no warning logged within 1s; log:\n%s", logs.buf.String())
			}
			time.Sleep(10 * fastPoll) // polls of the unchanged bad file, which must log nothing more
			if got, want := logs.count("level=WARN"), 1; got != want {
				t.Errorf("warnings for one bad file: got %v, want %v", got, want)
			}
			if got, want := f.Current().Revision, int64(1); got != want {
				t.Errorf("Current after a bad file: got revision %v, want %v", got, want)
			}
			select {
			case tbl := <-ch:
				t.Errorf("watch after a bad file: got revision %v, want nothing", tbl.Revision)
			default:
			}

			// A good file is taken again.
			if err := WriteFile(path, newTable(2, 1, 2)); err != nil {
				t.Fatal(err)
			}
			if got, want := receive(t, ch, time.Second).Revision, int64(2); got != want {
				t.Errorf("after a good file: got revision %v, want %v", got, want)
			}
		})
	}
}

func TestFileInPlaceRewrite(t *testing.T) {
	// An editor that writes the file in place (not through WriteFile): the
	// size and mtime may not change, but the content hash does.
	path := mustWriteTable(t, newTable(1, 1))
	f := mustOpenFile(t, path, pollOptions(fastPoll, nil))
	for rev := int64(2); rev <= 5; rev++ {
		data, err := newTable(rev, 1).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if !waitFor(t, time.Second, func() bool { return f.Current().Revision == rev }) {
			t.Fatalf("in-place rewrite: got revision %v, want %v", f.Current().Revision, rev)
		}
	}
}

func TestWatchSlowReader(t *testing.T) {
	path := mustWriteTable(t, newTable(1, 1))
	f := mustOpenFile(t, path, pollOptions(fastPoll, nil))
	ch := f.Watch(context.Background())
	for rev := int64(2); rev <= 4; rev++ {
		if err := WriteFile(path, newTable(rev, 1)); err != nil {
			t.Fatal(err)
		}
		if !waitFor(t, time.Second, func() bool { return f.Current().Revision == rev }) {
			t.Fatalf("Current: got revision %v, want %v", f.Current().Revision, rev)
		}
	}
	if got, want := receive(t, ch, time.Second).Revision, int64(4); got != want {
		t.Errorf("slow reader: got revision %v, want %v (the latest)", got, want)
	}
	select {
	case tbl := <-ch:
		t.Errorf("slow reader: got another table (revision %v), want none", tbl.Revision)
	default:
	}
}

func TestWatchContextEnds(t *testing.T) {
	path := mustWriteTable(t, newTable(1, 1))
	f := mustOpenFile(t, path, pollOptions(fastPoll, nil))

	ctx, cancel := context.WithCancel(context.Background())
	ch := f.Watch(ctx)
	other := f.Watch(context.Background())
	cancel()
	waitClosed(t, ch, time.Second)

	// The other watcher still gets tables.
	receive(t, other, time.Second)
	if err := WriteFile(path, newTable(2, 1)); err != nil {
		t.Fatal(err)
	}
	if got, want := receive(t, other, time.Second).Revision, int64(2); got != want {
		t.Errorf("other watcher: got revision %v, want %v", got, want)
	}

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	waitClosed(t, f.Watch(done), time.Second)
}

func TestFileClose(t *testing.T) {
	path := mustWriteTable(t, newTable(1, 1))
	f, err := OpenFile(path, pollOptions(fastPoll, nil))
	if err != nil {
		t.Fatal(err)
	}
	ch := f.Watch(context.Background())
	receive(t, ch, time.Second)

	if err := f.Close(); err != nil {
		t.Fatalf("Close: got %v, want nil", err)
	}
	waitClosed(t, ch, time.Second)
	select {
	case <-f.done:
	default:
		t.Error("poll loop still running after Close")
	}
	waitClosed(t, f.Watch(context.Background()), time.Second)

	if err := WriteFile(path, newTable(2, 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * fastPoll) // polls there would have been, had Close not stopped them
	if got, want := f.Current().Revision, int64(1); got != want {
		t.Errorf("Current after Close and a change: got revision %v, want %v", got, want)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routing.json")
	tbl := &Table{Revision: 1, Units: []Unit{
		{ID: 2},
		{ID: 1},
	}}
	if err := WriteFile(path, tbl); err != nil {
		t.Fatal(err)
	}
	if got, want := unitIDs(tbl.Units), []tradeunit.UnitID{2, 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("WriteFile changed its table: got %v, want %v", got, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := unitIDs(back.Units), []tradeunit.UnitID{1, 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("written units: got %v, want %v", got, want)
	}
	if !strings.Contains(string(data), `"partition": "normal"`) {
		t.Errorf("written file has no defaults filled:\n%s", data)
	}

	bad := newTable(2, 1)
	bad.Units[0].Temperature = "lukewarm"
	err = WriteFile(path, bad)
	if got, want := tradeunit.ErrorCode(err), tradeunit.CodeParamError; got != want {
		t.Errorf("invalid table: got %v (%v), want %v", got, err, want)
	}
	if err := WriteFile(path, nil); err == nil {
		t.Errorf("nil table: got no error, want one")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, data) {
		t.Errorf("a rejected write changed the file:\n%s", after)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "routing.json routing.json.lock"; got != want {
		t.Errorf("directory: got %v, want %v (no temporary files left)", got, want)
	}
}

func TestUpdateFile(t *testing.T) {
	path := mustWriteTable(t, newTable(5, 1, 2))
	read := func() *Table {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		return tbl
	}

	got, err := UpdateFile(path, func(tbl *Table) error {
		u, _ := tbl.Unit(2)
		u.AcceptNew = false // drain
		tbl.Revision = 100  // ignored: UpdateFile sets the revision
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := got.Revision, int64(6); got != want {
		t.Errorf("returned revision: got %v, want %v", got, want)
	}
	onDisk := read()
	if got, want := onDisk.Revision, int64(6); got != want {
		t.Errorf("file revision: got %v, want %v", got, want)
	}
	if u, _ := onDisk.Unit(2); u.AcceptNew {
		t.Errorf("unit 2 accept_new: got true, want false")
	}

	errStop := errors.New("stop")
	if _, err := UpdateFile(path, func(tbl *Table) error {
		tbl.Units = nil
		return errStop
	}); !errors.Is(err, errStop) {
		t.Errorf("fn fails: got %v, want %v", err, errStop)
	}
	_, err = UpdateFile(path, func(tbl *Table) error {
		tbl.Units = append(tbl.Units, Unit{ID: 0})
		return nil
	})
	if got, want := tradeunit.ErrorCode(err), tradeunit.CodeParamError; got != want {
		t.Errorf("invalid change: got %v (%v), want %v", got, err, want)
	}
	if got, want := read().Revision, int64(6); got != want {
		t.Errorf("revision after failed updates: got %v, want %v", got, want)
	}

	// An editor that writes without the lock, between UpdateFile's read and
	// its write.
	_, err = UpdateFile(path, func(tbl *Table) error {
		data, err := newTable(50, 9).Marshal()
		if err != nil {
			return err
		}
		return os.WriteFile(path, data, 0o644)
	})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("concurrent unlocked write: got %v, want %v", err, ErrConflict)
	}
	if got, want := read().Revision, int64(50); got != want {
		t.Errorf("after a conflict: got revision %v, want %v (the other editor's)", got, want)
	}

	if _, err := UpdateFile(filepath.Join(t.TempDir(), "missing.json"), func(*Table) error { return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
}

// countUpdate adds one to unit 1's "count" label and sets unit id's "n"
// label to n, adding unit id if it is missing.
func countUpdate(id tradeunit.UnitID, n int) func(*Table) error {
	return func(tbl *Table) error {
		u1, ok := tbl.Unit(1)
		if !ok {
			return errors.New("unit 1 missing")
		}
		c, _ := strconv.Atoi(u1.Labels["count"])
		if u1.Labels == nil {
			u1.Labels = map[string]string{}
		}
		u1.Labels["count"] = strconv.Itoa(c + 1)

		u, ok := tbl.Unit(id)
		if !ok {
			tbl.Units = append(tbl.Units, newTable(0, id).Units[0])
			u = &tbl.Units[len(tbl.Units)-1]
		}
		if u.Labels == nil {
			u.Labels = map[string]string{}
		}
		u.Labels["n"] = strconv.Itoa(n)
		return nil
	}
}

// checkCounts checks that every update was kept: the revision and unit 1's
// count went up once per update, and each updater's unit has its last value.
func checkCounts(t *testing.T, path string, updates int, ids []tradeunit.UnitID, last int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tbl.Revision, int64(1+updates); got != want {
		t.Errorf("revision: got %v, want %v", got, want)
	}
	u1, _ := tbl.Unit(1)
	if got, want := u1.Labels["count"], strconv.Itoa(updates); got != want {
		t.Errorf("unit 1 count: got %v, want %v", got, want)
	}
	for _, id := range ids {
		u, ok := tbl.Unit(id)
		if !ok {
			t.Errorf("unit %d: got missing, want present", id)
			continue
		}
		if got, want := u.Labels["n"], strconv.Itoa(last); got != want {
			t.Errorf("unit %d label n: got %v, want %v", id, got, want)
		}
	}
}

func TestUpdateFileConcurrent(t *testing.T) {
	const goroutines, updates = 8, 10
	path := mustWriteTable(t, newTable(1, 1))
	f := mustOpenFile(t, path, pollOptions(fastPoll, nil))

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*updates)
	var ids []tradeunit.UnitID
	for g := range goroutines {
		id := tradeunit.UnitID(100 + g)
		ids = append(ids, id)
		wg.Go(func() {
			for n := range updates {
				if _, err := UpdateFile(path, countUpdate(id, n)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("UpdateFile: %v", err)
	}
	checkCounts(t, path, goroutines*updates, ids, updates-1)
	if !waitFor(t, time.Second, func() bool { return f.Current().Revision == 1+goroutines*updates }) {
		t.Errorf("Current: got revision %v, want %v", f.Current().Revision, 1+goroutines*updates)
	}
}

// TestUpdateFileProcesses runs updaters in child processes (this test binary
// running TestUpdaterProcess) beside updaters in this one: the flock keeps
// every update.
func TestUpdateFileProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, updates = 2, 15
	path := mustWriteTable(t, newTable(1, 1))

	var wg sync.WaitGroup
	ids := []tradeunit.UnitID{200}
	for p := range procs {
		id := tradeunit.UnitID(201 + p)
		ids = append(ids, id)
		cmd := exec.Command(os.Args[0], "-test.run=^TestUpdaterProcess$")
		cmd.Env = append(os.Environ(),
			"ROUTING_UPDATER_PATH="+path,
			"ROUTING_UPDATER_UNIT="+strconv.Itoa(int(id)),
			"ROUTING_UPDATER_COUNT="+strconv.Itoa(updates))
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("updater process for unit %d: %v\n%s", id, err, out)
			}
		})
	}
	wg.Go(func() {
		for n := range updates {
			if _, err := UpdateFile(path, countUpdate(200, n)); err != nil {
				t.Errorf("UpdateFile: %v", err)
			}
		}
	})
	wg.Wait()
	checkCounts(t, path, (procs+1)*updates, ids, updates-1)
}

// TestUpdaterProcess is the child of TestUpdateFileProcesses.
func TestUpdaterProcess(t *testing.T) {
	path := os.Getenv("ROUTING_UPDATER_PATH")
	if path == "" {
		t.Skip("run by TestUpdateFileProcesses")
	}
	id, err := strconv.Atoi(os.Getenv("ROUTING_UPDATER_UNIT"))
	if err != nil {
		t.Fatal(err)
	}
	count, err := strconv.Atoi(os.Getenv("ROUTING_UPDATER_COUNT"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range count {
		if _, err := UpdateFile(path, countUpdate(tradeunit.UnitID(id), n)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileRemovedAndOld(t *testing.T) {
	path := mustWriteTable(t, newTable(1, 1))
	// An old file: its size and mtime are trusted to show a change.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	f := mustOpenFile(t, path, pollOptions(fastPoll, logs.logger()))

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, time.Second, func() bool { return logs.count("unreadable") > 0 }) {
		t.Fatalf("no warning for a removed file within 1s; log:\n%s", logs.buf.String())
	}
	time.Sleep(10 * fastPoll) // polls of the still missing file, which must log nothing more
	if got, want := logs.count("unreadable"), 1; got != want {
		t.Errorf("warnings for a removed file: got %v, want %v", got, want)
	}
	if got, want := f.Current().Revision, int64(1); got != want {
		t.Errorf("Current after removal: got revision %v, want %v", got, want)
	}

	if err := WriteFile(path, newTable(2, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if !waitFor(t, time.Second, func() bool { return f.Current().Revision == 2 }) {
		t.Errorf("after the file came back: got revision %v, want 2", f.Current().Revision)
	}
}
