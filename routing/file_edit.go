package routing

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"
)

// Update implements Editor: UpdateFile under the file's lock, then one line
// in the history file beside it (PATH.history, JSON lines).
func (f *File) Update(ctx context.Context, change Change, fn func(*Table) error) (*Table, error) {
	t, err := UpdateFile(f.path, fn)
	if err != nil {
		return nil, err
	}
	// Publish at once, so that the editor reads its own change; the poll
	// will find the file holds what is current.
	f.ownRevision.Store(t.Revision)
	if t.Revision > f.Current().Revision {
		f.feed.publish(t)
	}
	change.Revision, change.Time = t.Revision, time.Now().UTC()
	line, err := json.Marshal(change)
	if err != nil {
		return t, err
	}
	h, err := os.OpenFile(f.path+".history", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return t, err
	}
	defer h.Close()
	_, err = h.Write(append(line, '\n'))
	return t, err
}

// History implements Editor.
func (f *File) History(ctx context.Context, limit int) ([]Change, error) {
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
