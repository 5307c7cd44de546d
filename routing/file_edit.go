package routing

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"
)

// Update implements Store: UpdateFile under the file's lock, then one line
// in the history file beside it (PATH.history, JSON lines).
func (f *File[D, P]) Update(ctx context.Context, change Change, fn func(*D) error) (*D, error) {
	d, err := updateFile[D, P](f.path, fn)
	if err != nil {
		return nil, err
	}
	// Publish at once, so that the editor reads its own change; the poll
	// will find the file holds what is current.
	rev := P(d).revision()
	f.ownRevision.Store(rev)
	if rev > P(f.Current()).revision() {
		f.feed.publish(d)
	}
	return d, appendHistory(f.path, change, rev)
}

// appendHistory records change, which produced revision rev of the
// document at path, in path's history file.
func appendHistory(path string, change Change, rev int64) error {
	change.Revision, change.Time = rev, time.Now().UTC()
	line, err := json.Marshal(change)
	if err != nil {
		return err
	}
	h, err := os.OpenFile(path+".history", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer h.Close()
	_, err = h.Write(append(line, '\n'))
	return err
}

// History implements Store.
func (f *File[D, P]) History(ctx context.Context, limit int) ([]Change, error) {
	h, err := os.Open(f.path + ".history")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var all []Change
	sc := bufio.NewScanner(h)
	for sc.Scan() {
		var c Change
		if json.Unmarshal(sc.Bytes(), &c) == nil {
			all = append(all, c)
		}
	}
	out := make([]Change, 0, min(limit, len(all)))
	for i := len(all) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, all[i])
	}
	return out, sc.Err()
}
