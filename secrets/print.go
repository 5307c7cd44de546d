package secrets

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// String describes s without its passwords: how many it has, for which
// users and servers, from which file, and whether it reads the environment,
// e.g. "secrets: 3 passwords (repl, root, tradeunit@127.0.0.1:3307) from
// /etc/tradeunit/secrets.json, and TRADEUNIT_PASSWORD_* variables".
func (s *Secrets) String() string {
	if s == nil || s.file == nil && s.env == nil {
		return "secrets: none"
	}
	keys := s.keys
	var b strings.Builder
	b.WriteString("secrets: " + strconv.Itoa(len(keys)) + " password")
	if len(keys) != 1 {
		b.WriteByte('s')
	}
	if len(keys) > 0 {
		b.WriteString(" (" + strings.Join(keys, ", ") + ")")
	}
	if s.path != "" {
		b.WriteString(" from " + s.path)
	}
	if s.env != nil {
		b.WriteString(", and TRADEUNIT_PASSWORD_* variables")
	}
	return b.String()
}

// GoString is String, so that %#v prints no password either.
func (s *Secrets) GoString() string { return s.String() }

// Format writes String for every verb, so that no verb of fmt (%d, %x)
// reaches the passwords by reflection.
func (s *Secrets) Format(f fmt.State, verb rune) { io.WriteString(f, s.String()) }

// LogValue describes s for log/slog as String does: the number of
// passwords, their keys, the file and whether the environment is read.
func (s *Secrets) LogValue() slog.Value {
	if s == nil || s.file == nil && s.env == nil {
		return slog.StringValue("none")
	}
	keys := s.keys
	return slog.GroupValue(
		slog.Int("passwords", len(keys)),
		slog.String("keys", strings.Join(keys, ",")),
		slog.String("file", s.path),
		slog.Bool("env", s.env != nil),
	)
}
