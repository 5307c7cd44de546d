package dsn_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"tradeunit"
	"tradeunit/dsn"
)

// marker is the password FuzzParse plants in its inputs.
const marker = "Zq7Xw3KpMarker"

// FuzzParse checks that Parse never panics, that what it accepts
// round-trips through String, MarshalText and JSON and holds no password,
// that it refuses what the driver would read a password from, and that a
// password planted before an '@' shows in no result and no message.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"sqlite:data/unit-1.db",
		"sqlite:u1.db?synchronous=normal",
		"sqlite:a@b:c.db?synchronous=FULL",
		"mysql:tradeunit@tcp(127.0.0.1:3306)/tradeunit_u1",
		"mysql:root@tcp([::1]:3307)/",
		"mysql:u@tcp(DB.example.com:3306)/db?timeout=2s&readTimeout=5s",
		"mysql:u@tcp(h:1)/db?loc=Asia%2FShanghai&tls=preferred&charset=utf8mb4,utf8",
		"mysql:u@tcp(h:1)/db?sql_mode=%27ANSI%27&strict=true",
		"mysql:u:pw@tcp(h:1)/db",
		"mysql:u:p@ss/w@tcp(h:1)/db?x=a@b",
		"mysql:u@unix(/tmp/mysql.sock)/db",
		"mysql:u@tcp(h)/db",
		"u:pw@tcp(h:1)/db",
		"postgres://u:pw@h/db",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := dsn.Parse(s)
		checkParse(t, s, d, err)
		if err == nil {
			checkAccepted(t, d)
		}
		if rest, ok := strings.CutPrefix(s, "mysql:"); ok && driverPassword(rest) != "" && err == nil {
			t.Errorf("Parse(%q): got %#v, want an error: the driver reads a password from it", s, d)
		}

		// A SQLite path is a file name, in which ":x@" is no password.
		if strings.Contains(s, marker) || strings.HasPrefix(s, "sqlite:") {
			return
		}
		first := strings.IndexByte(s, '@')
		for i := range len(s) {
			// With no ':' before it, the one planted ends the scheme
			// ("mysql@..."): the marker is then no password but the user.
			if s[i] != '@' || !strings.Contains(s[:i], ":") {
				continue
			}
			planted := s[:i] + ":" + marker + s[i:]
			d, err := dsn.Parse(planted)
			checkParse(t, planted, d, err)
			// Wherever it is planted, the ':' is refused: a DSN's only
			// '@' is the user's, and no ':' may come before it.
			if err == nil {
				t.Errorf("Parse(%q): got %#v, want an error: it holds a password", planted, d)
				continue
			}
			// Planted before the first '@', or where the driver would read
			// it, the marker is a password; elsewhere (a parameter value
			// after the real password) it is not, and may be shown.
			rest, _ := strings.CutPrefix(planted, "mysql:")
			password := i == first || strings.Contains(driverPassword(rest), marker)
			if password && strings.Contains(err.Error(), marker) {
				t.Errorf("Parse(%q): got error %q, want one without the password", planted, err)
			}
		}
	})
}

// checkParse checks what any call of Parse returns.
func checkParse(t *testing.T, s string, d dsn.DSN, err error) {
	t.Helper()
	if err != nil {
		if !tradeunit.IsCode(err, tradeunit.CodeParamError) || d != (dsn.DSN{}) {
			t.Errorf("Parse(%q): got %#v, %#v, want the zero DSN and a PARAM_ERROR", s, d, err)
		}
		return
	}
	if d == (dsn.DSN{}) {
		t.Errorf("Parse(%q): got the zero DSN and no error", s)
	}
}

// checkAccepted checks a DSN that Parse returned.
func checkAccepted(t *testing.T, d dsn.DSN) {
	t.Helper()
	str := d.String()
	back, err := dsn.Parse(str)
	if err != nil || back != d || back.String() != str {
		t.Fatalf("Parse(%q): got %#v, %v, want %#v", str, back, err, d)
	}
	if r := dsn.Redact(str); r != str {
		t.Errorf("Redact(%q): got %q, want it unchanged (no password)", str, r)
	}
	text, err := d.MarshalText()
	if err != nil || string(text) != str {
		t.Errorf("MarshalText of %#v: got %q, %v, want %q", d, text, err, str)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatalf("json.Marshal(%#v): %v", d, err)
	}
	var j dsn.DSN
	if err := json.Unmarshal(b, &j); err != nil || j != d {
		t.Errorf("json round trip of %#v: got %#v, %v", d, j, err)
	}
	if d.Scheme != dsn.MySQL {
		return
	}
	if strings.Count(str, "@") != 1 {
		t.Errorf("String of %#v: got %q, want exactly one '@', the user's", d, str)
	}
	cfg, err := d.MySQLConfig(nil)
	if err != nil {
		t.Fatalf("MySQLConfig of %#v: %v", d, err)
	}
	if cfg.Passwd != "" || cfg.User != d.User || cfg.Addr != d.Addr || cfg.DBName != d.Database || cfg.Net != "tcp" {
		t.Errorf("MySQLConfig of %#v: got Passwd %q, User %q, Addr %q, DBName %q, Net %q", d, cfg.Passwd, cfg.User, cfg.Addr, cfg.DBName, cfg.Net)
	}
}

// driverPassword returns the password go-sql-driver/mysql reads from the
// DSN rest, "" for none or for a DSN it refuses (or panics on: strict=).
func driverPassword(rest string) (pw string) {
	defer func() {
		if recover() != nil {
			pw = ""
		}
	}()
	cfg, err := mysql.ParseDSN(rest)
	if err != nil {
		return ""
	}
	return cfg.Passwd
}
