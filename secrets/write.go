package secrets

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Write writes passwords (keyed USER or USER@HOST:PORT, as in the package
// doc) to a secrets file at path that Load reads back: atomically (a
// temporary file in the same directory, synced, renamed over path, the
// directory synced), with mode 0600, creating the directory with mode 0700
// if it is missing. The local MariaDB set stores the passwords it generates
// with it. Errors: PARAM_ERROR for a bad key; otherwise the file system's:
// path is then unchanged, unless only the sync of the directory failed.
// Messages never hold a password.
func Write(path string, passwords map[string]string) (err error) {
	canon := make(map[string]string, len(passwords))
	for k, pw := range passwords {
		key, err := parseKey(k)
		if err != nil {
			return paramError(nil, "write secrets file %s: %v", path, err)
		}
		if _, dup := canon[key]; dup {
			return paramError(nil, "write secrets file %s: key %q names the same user and server as another key", path, k)
		}
		canon[key] = pw
	}
	b, err := json.MarshalIndent(struct {
		Passwords map[string]string `json:"passwords"`
	}{canon}, "", "  ")
	if err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	b = append(b, '\n')

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes it 0600 less the umask; say 0600 whatever the umask.
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write secrets file %s: %w", path, err)
	}
	// The rename is durable once the directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write secrets file %s: sync directory: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write secrets file %s: sync directory: %w", path, err)
	}
	return nil
}
