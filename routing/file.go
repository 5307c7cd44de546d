package routing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"tradeunit"
)

// ErrConflict reports that the routing table changed while an update was
// being made. UpdateFile wraps it in a *tradeunit.Error.
var ErrConflict = errors.New("routing table changed during update")

// DefaultPollInterval is how often a File checks its file when FileOptions
// names no interval.
const DefaultPollInterval = 200 * time.Millisecond

// racyWindow is how long after a file's modification time its size and
// mtime are not trusted to reveal a further change: a second write within the
// filesystem's timestamp granularity may keep both. Until then the file is
// re-read (and hashed) on every poll.
const racyWindow = 2 * time.Second

// FileOptions configures OpenFile. The zero value is ready to use.
type FileOptions struct {
	PollInterval time.Duration // DefaultPollInterval when 0
	Logger       *slog.Logger  // slog.Default() when nil
}

// File is a Source backed by a JSON file, polled for changes. Edit the file
// with WriteFile or UpdateFile so that a reader never sees it half written;
// an invalid file is logged and ignored, and the last good table stays.
type File struct {
	path     string
	interval time.Duration
	log      *slog.Logger
	feed     *broadcaster

	cancel    context.CancelFunc
	done      chan struct{} // closed when the poll loop has returned
	closeOnce sync.Once

	// Used only by the poll loop after OpenFile returns.
	stat     fs.FileInfo // of the last read, if it can be trusted to detect change
	seenHash [sha256.Size]byte
	goodHash [sha256.Size]byte // of the file the current table came from
	readErr  string            // the last read error logged, so it is logged once

	// ownRevision is the revision this File's own Update last wrote and
	// published, so the poll does not take it for a foreign change.
	ownRevision atomic.Int64
}

var _ Source = (*File)(nil)

// OpenFile loads and validates the routing table at path, then polls the file
// every opts.PollInterval and publishes each new valid table. It fails if the
// file is missing or invalid (PARAM_ERROR).
func OpenFile(path string, opts FileOptions) (*File, error) {
	f := &File{path: path, interval: opts.PollInterval, log: opts.Logger, done: make(chan struct{})}
	if f.interval <= 0 {
		f.interval = DefaultPollInterval
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	fi, data, err := f.read()
	if err != nil {
		return nil, fmt.Errorf("open routing table: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("open routing table %s: %w", path, err)
	}
	f.feed = newBroadcaster(t)
	f.remember(fi, data)
	f.goodHash = f.seenHash

	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(ctx)
	return f, nil
}

// Current returns the current table; it is never nil.
func (f *File) Current() *Table { return f.feed.current.Load() }

// Watch returns a channel that receives the current table at once, then every
// new one; see Source.
func (f *File) Watch(ctx context.Context) <-chan *Table { return f.feed.watch(ctx) }

// Close stops polling and closes every Watch channel. It always returns nil.
func (f *File) Close() error {
	f.closeOnce.Do(func() {
		f.cancel()
		<-f.done
		f.feed.close()
	})
	return nil
}

func (f *File) run(ctx context.Context) {
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
func (f *File) read() (fs.FileInfo, []byte, error) {
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
func (f *File) remember(fi fs.FileInfo, data []byte) {
	f.stat = nil
	if time.Since(fi.ModTime()) > racyWindow {
		f.stat = fi
	}
	f.seenHash = sha256.Sum256(data)
}

// unchanged reports whether fi shows the same file as the last trusted stat.
func (f *File) unchanged(fi fs.FileInfo) bool {
	return f.stat != nil && os.SameFile(f.stat, fi) &&
		f.stat.Size() == fi.Size() && f.stat.ModTime().Equal(fi.ModTime())
}

// poll reloads the file if it changed and publishes it if it is valid.
func (f *File) poll() {
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
		return // back to the current table's content
	}
	t, err := Parse(data)
	if err != nil {
		// Logged once per content: an unchanged bad file is not parsed again.
		f.log.Warn("routing table file invalid; keeping the last good table",
			"path", f.path, "err", err, "revision", f.Current().Revision)
		return
	}
	f.goodHash = f.seenHash
	cur := f.Current()
	if t.Revision == cur.Revision && t.Revision == f.ownRevision.Load() {
		return // our own Update wrote it and published it already
	}
	if t.Revision <= cur.Revision {
		f.log.Warn("routing table revision did not increase", "path", f.path,
			"revision", t.Revision, "previous", cur.Revision)
	}
	f.feed.publish(t)
	f.log.Info("routing table reloaded", "path", f.path, "revision", t.Revision, "units", len(t.Units))
}

// warnUnreadable logs err unless it was the last one logged; a successful
// read resets it.
func (f *File) warnUnreadable(err error) {
	if err.Error() == f.readErr {
		return
	}
	f.readErr = err.Error()
	f.log.Warn("routing table file unreadable; keeping the last good table",
		"path", f.path, "err", err, "revision", f.Current().Revision)
}

// WriteFile validates t and writes it to path so that readers see the old
// file or the new one, never a part: it writes a temporary file in the same
// directory, syncs it and renames it over path. It holds the lock that
// UpdateFile holds. t is not changed; the file gets its normalized form.
// Errors: PARAM_ERROR if t is invalid.
func WriteFile(path string, t *Table) error {
	unlock, err := lockFile(path)
	if err != nil {
		return err
	}
	defer unlock()
	if t == nil {
		return tradeunit.Errorf(tradeunit.CodeParamError, "routing table: nil table")
	}
	c := t.Clone()
	c.Normalize()
	return writeLocked(path, c)
}

// writeLocked validates the normalized table t and writes it to path; the
// caller holds the lock.
func writeLocked(path string, t *Table) error {
	if err := t.Validate(); err != nil {
		return err
	}
	data, err := t.Marshal()
	if err != nil {
		return err
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("write routing table: %w", err)
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
func UpdateFile(path string, fn func(*Table) error) (*Table, error) {
	unlock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	defer unlock()

	before, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update routing table: %w", err)
	}
	cur, err := Parse(before)
	if err != nil {
		return nil, fmt.Errorf("update routing table %s: %w", path, err)
	}
	next := cur.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	next.Revision = cur.Revision + 1
	next.Normalize()
	now, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update routing table: %w", err)
	}
	if !bytes.Equal(now, before) {
		return nil, &tradeunit.Error{
			Code:    tradeunit.CodeInvalidRequest,
			Message: fmt.Sprintf("routing table changed during update from revision %d", cur.Revision),
			Op:      "routing.UpdateFile",
			Err:     ErrConflict,
		}
	}
	if err := writeLocked(path, next); err != nil {
		return nil, err
	}
	return next, nil
}
