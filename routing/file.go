package routing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tradeunit"
)

// ErrConflict reports that a document changed while an update was being
// made. Updates wrap it in a *tradeunit.Error.
var ErrConflict = errors.New("routing document changed during update")

// Options configures the backends. Start from DefaultOptions.
type Options struct {
	// PollInterval is how often a file backend checks its file.
	PollInterval time.Duration
	// CheckInterval is how often an etcd reader checks that etcd answers
	// and that it holds the latest document; the watch delivers changes at
	// once, the check catches what a broken watch missed.
	CheckInterval time.Duration
	Logger        *slog.Logger
	// TLS, if set, is how etcd is reached: https, with this client
	// configuration (a client certificate etcd authenticates). nil: http.
	TLS *tls.Config
}

// DefaultOptions returns the options every program uses unless told
// otherwise.
func DefaultOptions() Options {
	return Options{PollInterval: 200 * time.Millisecond, CheckInterval: 500 * time.Millisecond, Logger: slog.Default()}
}

// Validate reports a bad option; it changes nothing.
func (o Options) Validate() error {
	if o.PollInterval <= 0 || o.CheckInterval <= 0 {
		return errors.New("routing: poll and check intervals must be positive")
	}
	if o.Logger == nil {
		return errors.New("routing: no logger")
	}
	return nil
}

// racyWindow is how long after a file's modification time its size and
// mtime are not trusted to reveal a further change: a second write within the
// filesystem's timestamp granularity may keep both. Until then the file is
// re-read (and hashed) on every poll.
const racyWindow = 2 * time.Second

// File is a document backed by a JSON file, polled for changes. Edit the
// file with its Update (or WriteFile / UpdateFile) so that a reader never
// sees it half written; an invalid file is logged and ignored, and the last
// good version stays.
type File[D any, P document[D]] struct {
	path     string
	interval time.Duration
	log      *slog.Logger
	feed     *broadcaster[D]

	cancel    context.CancelFunc
	done      chan struct{} // closed when the poll loop has returned
	closeOnce sync.Once

	// Used only by the poll loop after the file is opened.
	stat     fs.FileInfo // of the last read, if it can be trusted to detect change
	seenHash [sha256.Size]byte
	goodHash [sha256.Size]byte // of the file the current version came from
	readErr  string            // the last read error logged, so it is logged once

	// ownRevision is the revision this File's own Update last wrote and
	// published, so the poll does not take it for a foreign change.
	ownRevision atomic.Int64
}

// TableFile is the routing table in a file.
type TableFile = File[Table, *Table]

// TopologyFile is the storage topology in a file.
type TopologyFile = File[Topology, *Topology]

// OpenFile loads and validates the routing table at path, then polls the
// file every opts.PollInterval and publishes each new valid table. It fails
// if the file is missing or invalid (PARAM_ERROR).
func OpenFile(path string, opts Options) (*TableFile, error) { return openFile[Table](path, opts) }

// OpenTopologyFile is OpenFile for the storage topology.
func OpenTopologyFile(path string, opts Options) (*TopologyFile, error) {
	return openFile[Topology](path, opts)
}

// TopologyPath is where the storage topology lives beside the routing table
// file at path: routes.json → routes.storage.json.
func TopologyPath(tablePath string) string {
	return strings.TrimSuffix(tablePath, ".json") + ".storage.json"
}

func openFile[D any, P document[D]](path string, opts Options) (*File[D, P], error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	name := P(nil).kind().name
	f := &File[D, P]{path: path, interval: opts.PollInterval, log: opts.Logger, done: make(chan struct{})}
	fi, data, err := f.read()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	d, err := parse[D, P](data)
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", name, path, err)
	}
	f.feed = newBroadcaster(d)
	f.remember(fi, data)
	f.goodHash = f.seenHash

	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(ctx)
	return f, nil
}

// Current returns the current version; it is never nil.
func (f *File[D, P]) Current() *D { return f.feed.current.Load() }

// Watch returns a channel that receives the current version at once, then
// every new one; see Feed.
func (f *File[D, P]) Watch(ctx context.Context) <-chan *D { return f.feed.watch(ctx) }

// Path returns the file's path.
func (f *File[D, P]) Path() string { return f.path }

// Close stops polling and closes every Watch channel. It always returns nil.
func (f *File[D, P]) Close() error {
	f.closeOnce.Do(func() {
		f.cancel()
		<-f.done
		f.feed.close()
	})
	return nil
}

func (f *File[D, P]) run(ctx context.Context) {
	defer close(f.done)
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f.poll()
		}
	}
}

// read stats the file, then reads it: in this order, the stat is never newer
// than the content, so a change between the two is seen on the next poll.
func (f *File[D, P]) read() (fs.FileInfo, []byte, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, nil, err
	}
	return fi, data, nil
}

// remember records what was read: the stat, unless the file changed so
// recently that a further change could keep the same size and mtime.
func (f *File[D, P]) remember(fi fs.FileInfo, data []byte) {
	f.stat = nil
	if time.Since(fi.ModTime()) > racyWindow {
		f.stat = fi
	}
	f.seenHash = sha256.Sum256(data)
}

// unchanged reports whether fi shows the same file as the last trusted stat.
func (f *File[D, P]) unchanged(fi fs.FileInfo) bool {
	return f.stat != nil && os.SameFile(f.stat, fi) &&
		f.stat.Size() == fi.Size() && f.stat.ModTime().Equal(fi.ModTime())
}

// poll reloads the file if it changed and publishes it if it is valid.
func (f *File[D, P]) poll() {
	name := P(nil).kind().name
	fi, err := os.Stat(f.path)
	if err != nil {
		f.warnUnreadable(err)
		return
	}
	if f.unchanged(fi) {
		return
	}
	fi, data, err := f.read()
	if err != nil {
		f.warnUnreadable(err)
		return
	}
	f.readErr = ""
	prevSeen := f.seenHash
	f.remember(fi, data)
	if f.seenHash == prevSeen {
		return // content already handled (touched, or still being written)
	}
	if f.seenHash == f.goodHash {
		return // back to the current version's content
	}
	d, err := parse[D, P](data)
	cur := P(f.Current())
	if err != nil {
		// Logged once per content: an unchanged bad file is not parsed again.
		f.log.Warn(name+" file invalid; keeping the last good version",
			"path", f.path, "err", err, "revision", cur.revision())
		return
	}
	f.goodHash = f.seenHash
	rev := P(d).revision()
	if rev == cur.revision() && rev == f.ownRevision.Load() {
		return // our own Update wrote it and published it already
	}
	if rev <= cur.revision() {
		f.log.Warn(name+" revision did not increase", "path", f.path, "revision", rev, "previous", cur.revision())
	}
	f.feed.publish(d)
	f.log.Info(name+" reloaded", "path", f.path, "revision", rev)
}

// warnUnreadable logs err unless it was the last one logged; a successful
// read resets it.
func (f *File[D, P]) warnUnreadable(err error) {
	if err.Error() == f.readErr {
		return
	}
	f.readErr = err.Error()
	f.log.Warn(P(nil).kind().name+" file unreadable; keeping the last good version",
		"path", f.path, "err", err, "revision", P(f.Current()).revision())
}

// WriteFile validates t and writes it to path so that readers see the old
// file or the new one, never a part: it writes a temporary file in the same
// directory, syncs it and renames it over path. It holds the lock that
// UpdateFile holds. t is not changed; the file gets its normalized form.
// Errors: PARAM_ERROR if t is invalid.
func WriteFile(path string, t *Table) error { return writeFile(path, t) }

// WriteTopologyFile is WriteFile for the storage topology.
func WriteTopologyFile(path string, t *Topology) error { return writeFile(path, t) }

func writeFile[D any, P document[D]](path string, d P) error {
	unlock, err := lockFile(path)
	if err != nil {
		return err
	}
	defer unlock()
	if d == nil {
		return tradeunit.Errorf(tradeunit.CodeParamError, "%s: nil document", d.kind().name)
	}
	c := P(d.Clone())
	c.Normalize()
	return writeLocked(path, c)
}

// writeLocked validates the normalized document d and writes it to path;
// the caller holds the lock.
func writeLocked[D any, P document[D]](path string, d P) error {
	if err := d.Validate(); err != nil {
		return err
	}
	data, err := d.Marshal()
	if err != nil {
		return err
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("write %s: %w", d.kind().name, err)
	}
	return nil
}

// writeAtomic replaces path with data through a synced temporary file and a
// rename, then syncs the directory so that the rename survives a crash.
func writeAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	perm := fs.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // renamed; only the directory sync is lost
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// UpdateFile changes the routing table at path: it reads the table, applies
// fn to a clone, bumps the revision and writes it with WriteFile. Updaters in
// this process and in others are serialized by a lock on path+".lock", so no
// update is lost. If fn fails, nothing is written and its error is returned.
// It returns the table written. Errors: those of fn; PARAM_ERROR if the file
// or the changed table is invalid; INVALID_REQUEST wrapping ErrConflict if
// the file changed under the lock (an editor that does not take it).
func UpdateFile(path string, fn func(*Table) error) (*Table, error) { return updateFile(path, fn) }

// UpdateTopologyFile is UpdateFile for the storage topology.
func UpdateTopologyFile(path string, fn func(*Topology) error) (*Topology, error) {
	return updateFile(path, fn)
}

func updateFile[D any, P document[D]](path string, fn func(*D) error) (*D, error) {
	name := P(nil).kind().name
	unlock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	defer unlock()

	before, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", name, err)
	}
	cur, err := parse[D, P](before)
	if err != nil {
		return nil, fmt.Errorf("update %s %s: %w", name, path, err)
	}
	next := P(P(cur).Clone())
	if err := fn((*D)(next)); err != nil {
		return nil, err
	}
	next.setRevision(P(cur).revision() + 1)
	next.Normalize()
	now, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", name, err)
	}
	if !bytes.Equal(now, before) {
		return nil, &tradeunit.Error{
			Code:    tradeunit.CodeInvalidRequest,
			Message: fmt.Sprintf("%s changed during update from revision %d", name, P(cur).revision()),
			Op:      "routing.UpdateFile",
			Err:     ErrConflict,
		}
	}
	if err := writeLocked(path, next); err != nil {
		return nil, err
	}
	return (*D)(next), nil
}
