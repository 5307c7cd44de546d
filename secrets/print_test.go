package secrets_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"tradeunit/secrets"
)

// TestNoLeak prints Secrets every way a program might, and checks that no
// password shows.
func TestNoLeak(t *testing.T) {
	pws := []string{"Hunter2Secret", "r3plPassw0rd", "EnvOnlySecret"}
	s := load(t, map[string]string{"tradeunit@127.0.0.1:3307": pws[0], "repl": pws[1], "root": ""},
		map[string]string{"TRADEUNIT_PASSWORD_ROOT": pws[2]})
	// The env password is looked up once, so that any cache would hold it.
	if got, _ := s.Password("root", ""); got != pws[2] {
		t.Fatalf("Password(root): got %q, want %q", got, pws[2])
	}

	type holder struct {
		S       *secrets.Secrets
		private *secrets.Secrets
		Value   secrets.Secrets
	}
	h := holder{S: s, private: s, Value: *s}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %p"} {
		outs = append(outs,
			fmt.Sprintf(verb, s),
			fmt.Sprintf(verb, *s),
			fmt.Sprintf(verb, h),
			fmt.Sprintf(verb, &h),
			fmt.Sprintf(verb, []any{s}),
			fmt.Sprintf(verb, map[string]*secrets.Secrets{"s": s}),
		)
	}
	outs = append(outs, fmt.Sprint(s), fmt.Sprintln(s, *s, h), s.String(), s.GoString())

	for _, handler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		log := slog.New(handler(&b))
		log.Info("loaded", "secrets", s, "value", *s, "holder", h)
		log.Info("loaded", slog.Any("secrets", s))
		outs = append(outs, b.String())
	}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))

	for _, out := range outs {
		for _, pw := range pws {
			if strings.Contains(out, pw) {
				t.Errorf("got %q, want no password in it (%q)", out, pw)
			}
		}
	}
}

func TestString(t *testing.T) {
	for _, tt := range []struct {
		s          *secrets.Secrets
		start, end string
	}{
		{load(t, map[string]string{"tradeunit@127.0.0.1:3307": "a", "repl": "b", "root": ""}, nil),
			"secrets: 3 passwords (repl, root, tradeunit@127.0.0.1:3307) from /", "/secrets.json"},
		{load(t, map[string]string{"root": ""}, map[string]string{}),
			"secrets: 1 password (root) from /", "/secrets.json, and TRADEUNIT_PASSWORD_* variables"},
		{load(t, map[string]string{}, nil), "secrets: 0 passwords from /", "/secrets.json"},
		{secrets.FromEnv(func(string) string { return "" }), "secrets: 0 passwords, and TRADEUNIT_PASSWORD_* variables", ""},
		{nil, "secrets: none", ""},
	} {
		if got := tt.s.String(); !strings.HasPrefix(got, tt.start) || !strings.HasSuffix(got, tt.end) {
			t.Errorf("String: got %q, want %q...%q", got, tt.start, tt.end)
		}
	}
}

func TestLogValue(t *testing.T) {
	s := load(t, map[string]string{"repl": "b", "root": ""}, nil)
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "secrets", s)
	for _, want := range []string{"secrets.passwords=2", "secrets.keys=repl,root", "secrets.env=false", "secrets.file="} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("slog text: got %q, want it to contain %q", b.String(), want)
		}
	}
}
