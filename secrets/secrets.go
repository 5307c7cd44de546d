// Package secrets resolves database passwords by reference, on the host
// that connects. A storage DSN names a user and a server but no password
// (package tradeunit/dsn); the password is looked up here, by user and
// server, at the last moment, so that nothing else in the system (the
// routing table, etcd, logs, --json output) ever holds one.
//
// Passwords come from two places. A secrets file, JSON, readable by its
// owner only (mode 600):
//
//	{"passwords": {"tradeunit@10.0.0.1:3306": "…", "repl": "…", "root": ""}}
//
// where a key USER@HOST:PORT gives the password of USER on one server and a
// key USER the password of USER on every server; an empty password is a
// user without one. And environment variables:
//
//	TRADEUNIT_PASSWORD_<USER>_<HOST>_<PORT>   USER on one server
//	TRADEUNIT_PASSWORD_<USER>                 USER on every server
//
// where each part is upper-cased and every character other than A-Z and 0-9
// becomes '_' (see EnvName): tradeunit on 10.0.0.1:3306 is
// TRADEUNIT_PASSWORD_TRADEUNIT_10_0_0_1_3306. Names can collide (users a.b
// and a_b share one); keep user and host names plain. An empty variable
// counts as unset: give an empty password in the file.
//
// The first of these that has the password wins: the environment for the
// server, the file for the server, the environment for the user, the file
// for the user. So the one server that differs needs one entry, and the
// environment overrides the file at each level, as a deployment tool that
// injects variables expects.
package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"tradeunit"
	"tradeunit/dsn"
)

// Secrets looks up database passwords in a secrets file and the
// environment. It implements dsn.Passwords. A nil *Secrets, and the zero
// Secrets, know no password. It never prints a password: String,
// GoString, Format and LogValue list only which users and servers it has
// passwords for, and no field leads fmt to them. It is safe for concurrent
// use (env must be too; os.Getenv is).
type Secrets struct {
	path string   // the secrets file, "" for none
	keys []string // the file's keys, sorted, for String
	// file looks a canonical key ("user", "user@host:port" with
	// dsn.ParseAddr's address) up in the file. A closure, not a map: fmt
	// prints a func as an address, but a map's contents by reflection
	// whatever the verb and however deep (%!s(...) of an unexported field
	// shows it).
	file func(key string) (string, bool)
	env  func(string) string
}

var _ dsn.Passwords = (*Secrets)(nil)

// maxFile bounds what Load reads: a secrets file holds a few passwords.
const maxFile = 1 << 20

// Load reads the secrets file at path, and takes env (normally os.Getenv;
// nil for none) for the environment variables. Errors: PARAM_ERROR for a
// missing file, a file that group or others may access (with the chmod
// that fixes it), a file that is not the JSON of the package doc (unknown
// fields included), and a key that is not USER or USER@HOST:PORT. Messages
// never hold a password.
func Load(path string, env func(string) string) (*Secrets, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, paramError(err, "secrets file %s does not exist: create it with mode 600 holding {\"passwords\": {\"USER\": \"PASSWORD\"}}, or set TRADEUNIT_PASSWORD_<USER>", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open secrets file %s: %w", path, err)
	}
	defer f.Close()
	// The mode of the file read, not of the path, which could change in
	// between.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat secrets file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, paramError(nil, "secrets file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, paramError(nil, "secrets file %s has mode %04o, which lets group or others at its passwords: run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, fmt.Errorf("read secrets file %s: %w", path, err)
	}
	if len(b) > maxFile {
		return nil, paramError(nil, "secrets file %s is larger than %d bytes: it should hold a few passwords", path, maxFile)
	}
	file, err := decode(b)
	if err != nil {
		return nil, paramError(nil, "secrets file %s: %v", path, err)
	}
	return &Secrets{
		path: path,
		keys: slices.Sorted(maps.Keys(file)),
		file: func(key string) (string, bool) { pw, ok := file[key]; return pw, ok },
		env:  env,
	}, nil
}

// decode parses the secrets file b into canonical keys and passwords.
func decode(b []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	// Passwords stay raw until each is checked to be a string: the
	// decoder's message for a number quotes the number.
	var doc struct {
		Passwords map[string]json.RawMessage `json:"passwords"`
	}
	if err := dec.Decode(&doc); err != nil {
		// The decoder's message quotes the character it stopped at, which
		// may be one of a password.
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			err = fmt.Errorf("not valid JSON at byte %d", se.Offset)
		}
		return nil, fmt.Errorf("%v: want {\"passwords\": {\"USER@HOST:PORT\": \"PASSWORD\", \"USER\": \"PASSWORD\"}}", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("text after the JSON object: want one object")
	}
	file := make(map[string]string, len(doc.Passwords))
	for _, k := range slices.Sorted(maps.Keys(doc.Passwords)) {
		var pw string
		raw := doc.Passwords[k]
		if bytes.Equal(raw, []byte("null")) || json.Unmarshal(raw, &pw) != nil {
			return nil, fmt.Errorf("the password of %q is not a JSON string: quote it, or write \"\" for a user without a password", k)
		}
		key, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		if _, dup := file[key]; dup {
			return nil, fmt.Errorf("key %q names the same user and server as another key", k)
		}
		file[key] = pw
	}
	return file, nil
}

// parseKey returns the canonical form of a key of the secrets file: USER,
// or USER@HOST:PORT with the address as dsn.ParseAddr writes it.
func parseKey(k string) (string, error) {
	user, addr, server := strings.Cut(k, "@")
	if user == "" {
		return "", fmt.Errorf("key %q has no user: want USER or USER@HOST:PORT", k)
	}
	if strings.IndexFunc(user, func(r rune) bool { return r <= ' ' || r == ':' || r == '/' }) >= 0 {
		return "", fmt.Errorf("key %q: the user holds a space, ':' or '/': want USER or USER@HOST:PORT", k)
	}
	if !server {
		return user, nil
	}
	a, err := dsn.ParseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("key %q: %s: want USER@HOST:PORT", k, tradeunit.ErrorMessage(err))
	}
	return user + "@" + a, nil
}

// FromEnv returns Secrets with the environment variables of env (normally
// os.Getenv) only, for a host without a secrets file.
func FromEnv(env func(string) string) *Secrets {
	return &Secrets{env: env}
}

// ForProgram returns the Secrets a program runs with: the file at path
// (its --secrets flag; "" for none) and the process's environment.
func ForProgram(path string) (*Secrets, error) {
	if path == "" {
		return FromEnv(os.Getenv), nil
	}
	return Load(path, os.Getenv)
}

// Password returns the password of user on the server at addr (host:port;
// "" for none) and whether s has one, in the order of the package doc.
func (s *Secrets) Password(user, addr string) (string, bool) {
	// A user with an '@' could read the password of another user on one
	// server ("u@h:1" is the key of u on h:1).
	if s == nil || user == "" || strings.Contains(user, "@") {
		return "", false
	}
	if addr != "" {
		if a, err := dsn.ParseAddr(addr); err == nil {
			addr = a
		}
		if pw := s.getenv(EnvName(user, addr)); pw != "" {
			return pw, true
		}
		if pw, ok := s.lookup(user + "@" + addr); ok {
			return pw, true
		}
	}
	if pw := s.getenv(EnvName(user, "")); pw != "" {
		return pw, true
	}
	return s.lookup(user)
}

func (s *Secrets) lookup(key string) (string, bool) {
	if s.file == nil {
		return "", false
	}
	return s.file(key)
}

func (s *Secrets) getenv(name string) string {
	if s.env == nil {
		return ""
	}
	return s.env(name)
}

// EnvName returns the environment variable that holds the password of user
// on the server at addr (host:port), or on every server for addr "":
// TRADEUNIT_PASSWORD_<USER>[_<HOST>_<PORT>], each part upper-cased and
// every character other than A-Z and 0-9 replaced by '_'.
func EnvName(user, addr string) string {
	name := "TRADEUNIT_PASSWORD_" + mangle(user)
	if addr == "" {
		return name
	}
	if a, err := dsn.ParseAddr(addr); err == nil {
		addr = a
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		host, port := strings.TrimSuffix(strings.TrimPrefix(addr[:i], "["), "]"), addr[i+1:]
		return name + "_" + mangle(host) + "_" + mangle(port)
	}
	return name + "_" + mangle(addr)
}

// mangle upper-cases s and replaces every character other than A-Z and
// 0-9 with '_', as environment variable names allow.
func mangle(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		}
		return '_'
	}, s)
}

// paramError returns a PARAM_ERROR with a formatted message and a cause.
func paramError(cause error, format string, args ...any) error {
	return &tradeunit.Error{Code: tradeunit.CodeParamError, Message: fmt.Sprintf(format, args...), Err: cause}
}
