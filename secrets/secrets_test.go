package secrets_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tradeunit"
	"tradeunit/dsn"
	"tradeunit/secrets"
)

func TestPassword(t *testing.T) {
	file := map[string]string{
		"tradeunit@10.0.0.1:3306": "file-server",
		"tradeunit":               "file-user",
		"root":                    "",
		"repl@DB1.example.com:1":  "file-db1",
	}
	env := map[string]string{
		"TRADEUNIT_PASSWORD_TRADEUNIT_10_0_0_2_3306": "env-server",
		"TRADEUNIT_PASSWORD_REPL":                    "env-user",
		"TRADEUNIT_PASSWORD_ADMIN_10_0_0_1_3306":     "env-admin-server",
		"TRADEUNIT_PASSWORD_ADMIN":                   "env-admin-user",
	}
	s := load(t, file, env)
	for _, tt := range []struct {
		user, addr string
		want       string
		ok         bool
	}{
		{"tradeunit", "10.0.0.1:3306", "file-server", true},  // file for the server over file for the user
		{"tradeunit", "10.0.0.2:3306", "env-server", true},   // env for the server over file for the user
		{"tradeunit", "10.0.0.3:3306", "file-user", true},    // file for the user
		{"tradeunit", "", "file-user", true},                 // no server: the user's
		{"admin", "10.0.0.1:3306", "env-admin-server", true}, // env for the server over env for the user
		{"admin", "10.0.0.9:3306", "env-admin-user", true},   // env for the user
		{"repl", "db1.example.com:1", "file-db1", true},      // file for the server over env for the user
		{"repl", "db2.example.com:1", "env-user", true},      // env for the user over nothing
		{"root", "10.0.0.1:3306", "", true},                  // an empty password is one
		{"nobody", "10.0.0.1:3306", "", false},               // none
		{"", "10.0.0.1:3306", "", false},                     // no user
		{"tradeunit@10.0.0.1:3306", "", "", false},           // a user with '@' reads no server's key
		{"TRADEUNIT", "10.0.0.1:3306", "", false},            // file keys are case-sensitive
		{"tradeunit", "[::ffff:10.0.0.1]:3306", "file-user", true},
	} {
		got, ok := s.Password(tt.user, tt.addr)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Password(%q, %q): got %q, %v, want %q, %v", tt.user, tt.addr, got, ok, tt.want, tt.ok)
		}
	}
}

func TestPrecedence(t *testing.T) {
	const user, addr = "u", "h:1"
	for _, tt := range []struct {
		name      string
		file, env map[string]string
		want      string
	}{
		{"all four", map[string]string{"u@h:1": "file-server", "u": "file-user"},
			map[string]string{"TRADEUNIT_PASSWORD_U_H_1": "env-server", "TRADEUNIT_PASSWORD_U": "env-user"}, "env-server"},
		{"no env for the server", map[string]string{"u@h:1": "file-server", "u": "file-user"},
			map[string]string{"TRADEUNIT_PASSWORD_U": "env-user"}, "file-server"},
		{"users only", map[string]string{"u": "file-user"},
			map[string]string{"TRADEUNIT_PASSWORD_U": "env-user"}, "env-user"},
		{"file user only", map[string]string{"u": "file-user"}, nil, "file-user"},
		{"another server", map[string]string{"u@h:2": "file-other", "u": "file-user"},
			map[string]string{"TRADEUNIT_PASSWORD_U_H_2": "env-other"}, "file-user"},
		{"empty env counts as unset", map[string]string{"u": "file-user"},
			map[string]string{"TRADEUNIT_PASSWORD_U_H_1": "", "TRADEUNIT_PASSWORD_U": ""}, "file-user"},
		{"server spelled otherwise in the file", map[string]string{"u@H:01": "file-server"}, nil, "file-server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := load(t, tt.file, tt.env)
			if got, _ := s.Password(user, addr); got != tt.want {
				t.Errorf("Password(%q, %q): got %q, want %q", user, addr, got, tt.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	s := secrets.FromEnv(mapEnv(map[string]string{"TRADEUNIT_PASSWORD_ROOT_127_0_0_1_3307": "pw"}))
	if got, ok := s.Password("root", "127.0.0.1:3307"); got != "pw" || !ok {
		t.Errorf("Password: got %q, %v, want %q, true", got, ok, "pw")
	}
	if got, ok := s.Password("root", "127.0.0.1:3308"); got != "" || ok {
		t.Errorf("Password on another server: got %q, %v, want \"\", false", got, ok)
	}
	if got, ok := secrets.FromEnv(nil).Password("root", ""); got != "" || ok {
		t.Errorf("FromEnv(nil).Password: got %q, %v, want \"\", false", got, ok)
	}
}

func TestNil(t *testing.T) {
	for _, s := range []*secrets.Secrets{nil, {}} {
		if got, ok := s.Password("root", "h:1"); got != "" || ok {
			t.Errorf("%v.Password: got %q, %v, want \"\", false", s, got, ok)
		}
		if got := s.String(); got != "secrets: none" {
			t.Errorf("String: got %q, want %q", got, "secrets: none")
		}
	}
	// A nil *Secrets in the interface is usable too.
	var p dsn.Passwords = (*secrets.Secrets)(nil)
	d, err := dsn.Parse("mysql:root@tcp(h:1)/")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := d.MySQLConfig(p)
	if err != nil || cfg.Passwd != "" {
		t.Errorf("MySQLConfig(nil *Secrets): got %v, %v, want an empty password", cfg, err)
	}
}

func TestMySQLConfig(t *testing.T) {
	s := load(t, map[string]string{"tradeunit@127.0.0.1:3307": "Hunter2Secret"}, nil)
	d, err := dsn.Parse("mysql:tradeunit@tcp(127.0.0.1:3307)/tradeunit_u1?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := d.MySQLConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Passwd != "Hunter2Secret" {
		t.Errorf("Passwd: got %q, want %q", cfg.Passwd, "Hunter2Secret")
	}
}

func TestEnvName(t *testing.T) {
	for _, tt := range []struct{ user, addr, want string }{
		{"root", "", "TRADEUNIT_PASSWORD_ROOT"},
		{"tradeunit", "127.0.0.1:3307", "TRADEUNIT_PASSWORD_TRADEUNIT_127_0_0_1_3307"},
		{"repl.user-1", "db-1.Example.com:3306", "TRADEUNIT_PASSWORD_REPL_USER_1_DB_1_EXAMPLE_COM_3306"},
		{"u", "[::1]:3306", "TRADEUNIT_PASSWORD_U___1_3306"},
		{"u", "[0:0::1]:3306", "TRADEUNIT_PASSWORD_U___1_3306"},
		{"u", "h:03306", "TRADEUNIT_PASSWORD_U_H_3306"},
		{"Ünï", "", "TRADEUNIT_PASSWORD__N_"}, // one _ per character, not per byte,
		{"a$b", "", "TRADEUNIT_PASSWORD_A_B"},
		{"u", "not-an-addr", "TRADEUNIT_PASSWORD_U_NOT_AN_ADDR"},
	} {
		if got := secrets.EnvName(tt.user, tt.addr); got != tt.want {
			t.Errorf("EnvName(%q, %q): got %q, want %q", tt.user, tt.addr, got, tt.want)
		}
	}
}

func TestLoadMode(t *testing.T) {
	for _, tt := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o610, false},
		{0o601, false},
		{0o666, false},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secrets.json")
			if err := os.WriteFile(path, []byte(`{"passwords": {"root": "Hunter2Secret"}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			// Chmod, since WriteFile's mode is less the umask.
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			s, err := secrets.Load(path, nil)
			if tt.ok {
				if err != nil {
					t.Fatalf("Load of a %04o file: got %v, want no error", tt.mode, err)
				}
				if got, _ := s.Password("root", ""); got != "Hunter2Secret" {
					t.Errorf("Password: got %q, want %q", got, "Hunter2Secret")
				}
				return
			}
			if err == nil {
				t.Fatalf("Load of a %04o file: got no error, want one", tt.mode)
			}
			msg := err.Error()
			for _, want := range []string{path, fmt.Sprintf("mode %04o", tt.mode), "chmod 600 " + path} {
				if !strings.Contains(msg, want) {
					t.Errorf("Load: got %q, want it to contain %q", msg, want)
				}
			}
			if !tradeunit.IsCode(err, tradeunit.CodeParamError) {
				t.Errorf("Load: got code %s, want %s", tradeunit.ErrorCode(err), tradeunit.CodeParamError)
			}
		})
	}
}

func TestLoadBad(t *testing.T) {
	for _, tt := range []struct {
		name, text, want string
	}{
		{"unknown field", `{"passwords": {}, "users": {}}`, `unknown field "users"`},
		{"not JSON", `{"passwords": {"root": Hunter2Secret}}`, "not valid JSON at byte"},
		{"two objects", `{"passwords": {}} {}`, "text after the JSON object"},
		{"empty", ``, "EOF"},
		{"number", `{"passwords": {"root": 12345678}}`, `password of "root" is not a JSON string`},
		{"null", `{"passwords": {"root": null}}`, `password of "root" is not a JSON string`},
		{"no user", `{"passwords": {"@h:1": "pw"}}`, `key "@h:1" has no user`},
		{"empty key", `{"passwords": {"": "pw"}}`, `key "" has no user`},
		{"no port", `{"passwords": {"u@h": "pw"}}`, `key "u@h"`},
		{"empty address", `{"passwords": {"u@": "pw"}}`, `key "u@"`},
		{"bad port", `{"passwords": {"u@h:99999": "pw"}}`, "1 to 65535"},
		{"colon in user", `{"passwords": {"u:x": "pw"}}`, `key "u:x"`},
		{"same server twice", `{"passwords": {"u@H:1": "a", "u@h:1": "b"}}`, "same user and server"},
		{"passwords not an object", `{"passwords": ["a"]}`, "cannot unmarshal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.text)
			_, err := secrets.Load(path, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load: got %v, want an error naming %s and containing %q", err, path, tt.want)
			}
			for _, pw := range []string{"Hunter2Secret", "12345678"} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("Load: got %q, want no password in it", err)
				}
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	_, err := secrets.Load(path, nil)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Load of a missing file: got %v, want an error naming %s", err, path)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Load(dir, nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Load of a directory: got %v, want a not a regular file error", err)
	}
}

func TestWriteLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "secrets.json")
	in := map[string]string{"root": "", "repl": "r3pl", "tradeunit@LocalHost:3307": "Hunter2Secret", "u@[::1]:1": `q"u\ote`}
	if err := secrets.Write(path, in); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode of the file: got %04o, want 0600", got)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("mode of the directory: got %04o, want 0700", got)
	}
	s, err := secrets.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ user, addr, want string }{
		{"root", "", ""},
		{"repl", "h:1", "r3pl"},
		{"tradeunit", "localhost:3307", "Hunter2Secret"},
		{"u", "[::1]:1", `q"u\ote`},
	} {
		if got, ok := s.Password(tt.user, tt.addr); got != tt.want || !ok {
			t.Errorf("Password(%q, %q): got %q, %v, want %q, true", tt.user, tt.addr, got, ok, tt.want)
		}
	}

	// Write again over it: replaced, and no temporary file left behind.
	if err := secrets.Write(path, map[string]string{"root": "new"}); err != nil {
		t.Fatal(err)
	}
	s, err = secrets.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Password("repl", ""); got != "" {
		t.Errorf("after the second Write, Password(repl): got %q, want \"\"", got)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory after two Writes: got %d entries, want 1 (the file)", len(entries))
	}
}

func TestWriteBadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets.json")
	err := secrets.Write(path, map[string]string{"u@nope": "Hunter2Secret"})
	if err == nil || !tradeunit.IsCode(err, tradeunit.CodeParamError) || strings.Contains(err.Error(), "Hunter2Secret") {
		t.Errorf("Write of a bad key: got %v, want a PARAM_ERROR without the password", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after a failed Write: got %v, want no file", err)
	}
}

// load writes file to a secrets file and loads it with the environment env.
func load(tb testing.TB, file, env map[string]string) *secrets.Secrets {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "secrets.json")
	if err := secrets.Write(path, file); err != nil {
		tb.Fatal(err)
	}
	s, err := secrets.Load(path, mapEnv(env))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// writeFile writes text to a mode 0600 file and returns its path.
func writeFile(tb testing.TB, text string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "secrets.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// mapEnv returns an env func reading m; nil for a nil m.
func mapEnv(m map[string]string) func(string) string {
	if m == nil {
		return nil
	}
	return func(k string) string { return m[k] }
}
