package dsn_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"tradeunit"
	"tradeunit/dsn"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want dsn.DSN
		str  string // canonical form; "" means in
	}{
		{in: "sqlite:data/unit-1.db", want: dsn.DSN{Scheme: dsn.SQLite, Path: "data/unit-1.db", Synchronous: "FULL"}},
		{in: "sqlite:/var/lib/tradeunit/u1.db?synchronous=NORMAL", want: dsn.DSN{Scheme: dsn.SQLite, Path: "/var/lib/tradeunit/u1.db", Synchronous: "NORMAL"}},
		{in: "sqlite:u1.db?synchronous=normal", str: "sqlite:u1.db?synchronous=NORMAL", want: dsn.DSN{Scheme: dsn.SQLite, Path: "u1.db", Synchronous: "NORMAL"}},
		{in: "sqlite:u1.db?synchronous=FULL", str: "sqlite:u1.db", want: dsn.DSN{Scheme: dsn.SQLite, Path: "u1.db", Synchronous: "FULL"}},
		{in: "sqlite:u1.db?synchronous=Full", str: "sqlite:u1.db", want: dsn.DSN{Scheme: dsn.SQLite, Path: "u1.db", Synchronous: "FULL"}},
		{in: "sqlite:C:/data/a b@c:d.db", want: dsn.DSN{Scheme: dsn.SQLite, Path: "C:/data/a b@c:d.db", Synchronous: "FULL"}},
		{in: "sqlite:数据.db", want: dsn.DSN{Scheme: dsn.SQLite, Path: "数据.db", Synchronous: "FULL"}},

		{in: "mysql:tradeunit@tcp(127.0.0.1:3306)/tradeunit_u1", want: dsn.DSN{Scheme: dsn.MySQL, User: "tradeunit", Addr: "127.0.0.1:3306", Database: "tradeunit_u1"}},
		{in: "mysql:root@tcp(127.0.0.1:3307)/", want: dsn.DSN{Scheme: dsn.MySQL, User: "root", Addr: "127.0.0.1:3307"}},
		{in: "mysql:repl.user-1@tcp(DB-1.Example.COM:3306)/x", str: "mysql:repl.user-1@tcp(db-1.example.com:3306)/x", want: dsn.DSN{Scheme: dsn.MySQL, User: "repl.user-1", Addr: "db-1.example.com:3306", Database: "x"}},
		{in: "mysql:u@tcp([::1]:3306)/db", want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "[::1]:3306", Database: "db"}},
		{in: "mysql:u@tcp([0:0::1]:3306)/db", str: "mysql:u@tcp([::1]:3306)/db", want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "[::1]:3306", Database: "db"}},
		{in: "mysql:u@tcp(h:03306)/db", str: "mysql:u@tcp(h:3306)/db", want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "h:3306", Database: "db"}},
		{in: "mysql:u@tcp(h:1)/tradeunit%5Fu1", str: "mysql:u@tcp(h:1)/tradeunit_u1", want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "h:1", Database: "tradeunit_u1"}},
		{in: "mysql:u@tcp(h:1)/db?timeout=2s", want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "h:1", Database: "db", Params: "timeout=2s"}},
		{in: "mysql:u@tcp(h:1)/db?timeout=2s&readTimeout=5s&charset=utf8mb4,utf8", str: "mysql:u@tcp(h:1)/db?charset=utf8mb4,utf8&readTimeout=5s&timeout=2s",
			want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "h:1", Database: "db", Params: "charset=utf8mb4,utf8&readTimeout=5s&timeout=2s"}},
		{in: "mysql:u@tcp(h:1)/?loc=Asia%2FShanghai&transaction_isolation=%27READ-COMMITTED%27",
			want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "h:1", Params: "loc=Asia%2FShanghai&transaction_isolation=%27READ-COMMITTED%27"}},
		{in: "mysql:u@tcp(h:1)/db?allowNativePasswords=false", want: dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "h:1", Database: "db", Params: "allowNativePasswords=false"}},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := dsn.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): got error %v, want none", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q): got %#v, want %#v", tt.in, got, tt.want)
			}
			str := tt.str
			if str == "" {
				str = tt.in
			}
			if got.String() != str {
				t.Errorf("String: got %q, want %q", got.String(), str)
			}
			back, err := dsn.Parse(got.String())
			if err != nil || back != got {
				t.Errorf("Parse(String()): got %#v, %v, want %#v", back, err, got)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want: a fragment of the message
	}{
		{"", "empty"},
		{"data/unit-1.db", "has no scheme"},
		{"postgres:x", `unknown scheme "postgres"`},
		{"MySQL:u@tcp(h:1)/db", "lower case"},
		{"sqlite:", "names no file"},
		{"sqlite:?synchronous=FULL", "names no file"},
		{"sqlite:a.db?", "no option"},
		{"sqlite:a.db?synchronous=OFF", `synchronous="OFF"`},
		{"sqlite:a.db?synchronous=", `synchronous=""`},
		{"sqlite:a.db?journal_mode=WAL", `unknown option "journal_mode"`},
		{"sqlite:a.db?synchronous=FULL&synchronous=NORMAL", "2 times"},
		{"sqlite:a.db?synchronous=%zz", "malformed"},
		{"sqlite:a\x00.db", "control character"},
		{"sqlite:a\n.db", "control character"},
		{"sqlite:\xff.db", "UTF-8"},

		{"mysql:u:pw@tcp(h:1)/db", `"mysql:u:***@tcp(h:1)/db" holds a password`},
		{"mysql:u:pw@tcp(h:1)/db", "secrets file or the TRADEUNIT_PASSWORD_"},
		{"mysql:u:@tcp(h:1)/db", "empty password"},
		{"mysql:u:pw@tcp(h:1)", "holds a password"},
		{"mysql:u@tcp(h:1)", "has no /DB"},
		{"mysql:tcp(h:1)/db", "names no user"},
		{"mysql:@tcp(h:1)/db", "user before '@' is empty"},
		{"mysql:u$@tcp(h:1)/db", `user "u$"`},
		{"mysql:" + strings.Repeat("u", 81) + "@tcp(h:1)/db", "up to 80"},
		{"mysql:u@unix(/tmp/mysql.sock)/db", "Unix socket"},
		{"mysql:u@/db", "names no server"},
		{"mysql:u@tcp/db", "names no server"},
		{"mysql:u@(h:1)/db", "protocol"},
		{"mysql:u@tcp6([::1]:1)/db", `protocol "tcp6"`},
		{"mysql:u@tcp(h)/db", "has no port"},
		{"mysql:u@tcp(h:)/db", "port"},
		{"mysql:u@tcp(h:0)/db", "1 to 65535"},
		{"mysql:u@tcp(h:65536)/db", "1 to 65535"},
		{"mysql:u@tcp(h:+1)/db", "1 to 65535"},
		{"mysql:u@tcp(:1)/db", "has no host"},
		{"mysql:u@tcp(h!x:1)/db", "neither an IP address nor a host name"},
		{"mysql:u@tcp([fe80::1%eth0]:1)/db", "zones"},
		{"mysql:u@tcp(h:1/db", "malformed"},
		{"mysql:u@tcp(h:1)/my-db", `database "my-db"`},
		{"mysql:u@tcp(h:1)/%zz", "malformed"},
		{"mysql:u@tcp(h:1)/" + strings.Repeat("d", 65), "up to 64"},
		{"mysql:u@tcp(h:1)/db?", "empty parameter"},
		{"mysql:u@tcp(h:1)/db?timeout=2s&", "empty parameter"},
		{"mysql:u@tcp(h:1)/db?timeout", `"timeout" has no value`},
		{"mysql:u@tcp(h:1)/db?timeout=", `"timeout=" has no value`},
		{"mysql:u@tcp(h:1)/db?=x", `parameter name ""`},
		{"mysql:u@tcp(h:1)/db?a;b=x", `parameter name "a;b"`},
		{"mysql:u@tcp(h:1)/db?timeout=2s&timeout=3s", "set twice"},
		{"mysql:u@tcp(h:1)/db?timeout=forever", "malformed"},
		{"mysql:u@tcp(h:1)/db?parseTime=maybe", "malformed"},
		{"mysql:u@tcp(h:1)/db?tls=nosuchconfig", "malformed"},
		{"mysql:u@tcp(h:1)/db?strict=true", "strict was removed"},
		{"mysql:u@tcp(h:1)/db?password=pw", `"password" would set a user or a password`},
		{"mysql:u@tcp(h:1)/db?Passwd=pw", "would set a user or a password"},
		{"mysql:u@tcp(h:1)/db?user=root", "would set a user or a password"},
		{"mysql:u@tcp(h:1)/db?old_pwd=x", "would set a user or a password"},
		{"mysql:u@tcp(h:1)/db?connectionAttributes=a:b", "escape characters"},
		{"mysql:u@tcp(h:1)/db?x=a@b", "escape characters"},
		{"mysql:u@tcp(h:1)/db?x=a b", "escape characters"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			d, err := dsn.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q): got %#v, want an error containing %q", tt.in, d, tt.want)
			}
			var e *tradeunit.Error
			if !errors.As(err, &e) || e.Code != tradeunit.CodeParamError {
				t.Errorf("Parse(%q): got error %#v, want a PARAM_ERROR *tradeunit.Error", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q): got error %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

// TestParseNoPasswordInErrors feeds Parse passwords in every place a DSN
// could hold one, well formed or not, and checks that no message shows it.
func TestParseNoPasswordInErrors(t *testing.T) {
	const pw = "Hunter2Secret"
	for _, in := range []string{
		"mysql:u:" + pw + "@tcp(h:1)/db",
		"mysql:u:" + pw + "@tcp(h:1)/",
		"mysql:u:" + pw + "@tcp(h:1)",
		"mysql:u:" + pw + "@tcp(h)/db",
		"mysql:u:" + pw + "@unix(/tmp/s)/db",
		"mysql:u:" + pw + "@tcp(h:1)/db?strict=true",
		"mysql:u:" + pw + "@tcp(h:1)/db?timeout=x",
		"mysql:u:" + pw + "@tcp(h:1)/" + pw,
		"mysql:" + pw + ":" + pw + "@tcp(h:1)/db",
		"mysql:u:a/" + pw + "@tcp(h:1)/db",
		"mysql:u:a/" + pw + "@tcp(h:1)",
		"mysql:u:" + pw + "@x/y@tcp(h:1)",
		"mysql:u:p@" + pw + "@tcp(h:1)/db",
		"mysql:u:" + pw + "@tcp(h:1)/db\x00",
		"mysql:u:" + pw + "@tcp(h:1)/db\xff",
		"mysq:u:" + pw + "@tcp(h:1)/db",
		"MYSQL:u:" + pw + "@tcp(h:1)/db",
		"u:" + pw + "@tcp(h:1)/db",
		"postgres://u:" + pw + "@h/db",
	} {
		_, err := dsn.Parse(in)
		if err == nil {
			t.Errorf("Parse(%q): got no error, want one", in)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Parse(%q): got error %q, want one without the password", in, err)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"mysql:u:pw@tcp(h:1)/db", "mysql:u:***@tcp(h:1)/db"},
		{"mysql:u:p@ss:w/rd@tcp(h:1)/db?x=1", "mysql:u:***@tcp(h:1)/db?x=1"},
		{"mysql:u:pw@tcp(h:1)", "mysql:u:***@tcp(h:1)"},
		{"mysql:u:pw@tcp(h:1)/db?a=b@c", "mysql:u:***@tcp(h:1)/db?a=b@c"},
		{"mysql:u@tcp(h:1)/db", "mysql:u@tcp(h:1)/db"},
		{"mysql:u:@tcp(h:1)/db", "mysql:u:@tcp(h:1)/db"},
		{"u:pw@tcp(h:1)/db", "u:***@tcp(h:1)/db"},
		{"postgres://u:pw@h/db", "postgres:***@h/db"},
		{"sqlite:/a:b@c.db", "sqlite:/a:b@c.db"},
		{"sqlite:a.db", "sqlite:a.db"},
		{"", ""},
	} {
		if got := dsn.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStringHandMade(t *testing.T) {
	for _, tt := range []struct {
		d    dsn.DSN
		want string
	}{
		{dsn.DSN{}, ""},
		{dsn.DSN{Scheme: dsn.SQLite, Path: "a.db"}, "sqlite:a.db"},
		{dsn.DSN{Scheme: dsn.SQLite, Path: "a.db", Synchronous: "normal"}, "sqlite:a.db?synchronous=normal"},
		{dsn.DSN{Scheme: dsn.MySQL, User: "u:pw", Addr: "h:1", Database: "db"}, "mysql:u:***@tcp(h:1)/db"},
	} {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%#v.String(): got %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	type topology struct {
		Primary  dsn.DSN   `json:"primary"`
		Replicas []dsn.DSN `json:"replicas"`
		Spare    dsn.DSN   `json:"spare"`
	}
	in := topology{
		Primary:  mustParse(t, "mysql:tradeunit@tcp(10.0.0.1:3306)/tradeunit_u1?timeout=2s"),
		Replicas: []dsn.DSN{mustParse(t, "mysql:tradeunit@tcp(10.0.0.2:3306)/tradeunit_u1"), mustParse(t, "sqlite:u1.db?synchronous=NORMAL")},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"primary":"mysql:tradeunit@tcp(10.0.0.1:3306)/tradeunit_u1?timeout=2s","replicas":["mysql:tradeunit@tcp(10.0.0.2:3306)/tradeunit_u1","sqlite:u1.db?synchronous=NORMAL"],"spare":""}`
	if string(b) != want {
		t.Errorf("json.Marshal: got %s, want %s", b, want)
	}
	var out topology
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Primary != in.Primary || len(out.Replicas) != 2 || out.Replicas[0] != in.Replicas[0] || out.Replicas[1] != in.Replicas[1] || out.Spare != (dsn.DSN{}) {
		t.Errorf("json round trip: got %+v, want %+v", out, in)
	}
}

func TestUnmarshalTextRefusesPassword(t *testing.T) {
	var v struct{ Storage dsn.DSN }
	err := json.Unmarshal([]byte(`{"Storage": "mysql:tradeunit:Hunter2Secret@tcp(h:1)/db"}`), &v)
	if err == nil || !strings.Contains(err.Error(), "holds a password") || strings.Contains(err.Error(), "Hunter2Secret") {
		t.Errorf("json.Unmarshal: got error %v, want one saying the DSN holds a password, without it", err)
	}
}

func TestMarshalTextRefusesHandMade(t *testing.T) {
	d := mustParse(t, "mysql:u@tcp(h:1)/db").WithDatabase("no-such name")
	if b, err := d.MarshalText(); err == nil {
		t.Errorf("MarshalText of %#v: got %q, want an error", d, b)
	}
}

func TestServer(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"mysql:u@tcp(10.0.0.1:3306)/db", "10.0.0.1:3306"},
		{"sqlite:data/u1.db", "data/u1.db"},
	} {
		if got := mustParse(t, tt.in).Server(); got != tt.want {
			t.Errorf("Parse(%q).Server(): got %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (dsn.DSN{}).Server(); got != "" {
		t.Errorf("DSN{}.Server(): got %q, want %q", got, "")
	}
}

func TestWith(t *testing.T) {
	d := mustParse(t, "mysql:tradeunit@tcp(h:1)/tradeunit_u1?timeout=2s")
	admin := d.WithUser("root").ServerOnly()
	if got, want := admin.String(), "mysql:root@tcp(h:1)/?timeout=2s"; got != want {
		t.Errorf("WithUser(root).ServerOnly(): got %q, want %q", got, want)
	}
	if got, want := d.WithDatabase("tradeunit_u2").String(), "mysql:tradeunit@tcp(h:1)/tradeunit_u2?timeout=2s"; got != want {
		t.Errorf("WithDatabase: got %q, want %q", got, want)
	}
	if got, want := d.String(), "mysql:tradeunit@tcp(h:1)/tradeunit_u1?timeout=2s"; got != want {
		t.Errorf("after the copies, the original: got %q, want %q", got, want)
	}
	if back := mustParse(t, admin.String()); back != admin {
		t.Errorf("Parse(%q): got %#v, want %#v", admin, back, admin)
	}
}

func TestRequireDatabase(t *testing.T) {
	for _, tt := range []struct {
		d    dsn.DSN
		want string // "" for no error, else a fragment of the message
	}{
		{mustParse(t, "mysql:u@tcp(h:1)/db"), ""},
		{mustParse(t, "sqlite:a.db"), ""},
		{mustParse(t, "mysql:u@tcp(h:1)/"), "names no database"},
		{dsn.DSN{}, "no storage DSN"},
	} {
		err := tt.d.RequireDatabase()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v.RequireDatabase(): got %v, want nil", tt.d, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !tradeunit.IsCode(err, tradeunit.CodeParamError)):
			t.Errorf("%v.RequireDatabase(): got %v, want a PARAM_ERROR containing %q", tt.d, err, tt.want)
		}
	}
}

// passwords is a dsn.Passwords from a map keyed by "user@addr".
type passwords map[string]string

func (p passwords) Password(user, addr string) (string, bool) {
	pw, ok := p[user+"@"+addr]
	return pw, ok
}

func TestMySQLConfig(t *testing.T) {
	d := mustParse(t, "mysql:tradeunit@tcp(db1.example.com:3307)/tradeunit_u1?timeout=2s&readTimeout=5s&parseTime=true&sql_mode=%27ANSI%27")
	for _, tt := range []struct {
		name string
		p    dsn.Passwords
		want string
	}{
		{"nil", nil, ""},
		{"not found", passwords{"root@db1.example.com:3307": "x"}, ""},
		{"found", passwords{"tradeunit@db1.example.com:3307": "Hunter2Secret"}, "Hunter2Secret"},
		{"empty", passwords{"tradeunit@db1.example.com:3307": ""}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := d.MySQLConfig(tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Passwd != tt.want {
				t.Errorf("Passwd: got %q, want %q", cfg.Passwd, tt.want)
			}
			if cfg.Net != "tcp" || cfg.Addr != "db1.example.com:3307" || cfg.User != "tradeunit" || cfg.DBName != "tradeunit_u1" {
				t.Errorf("got Net %q, Addr %q, User %q, DBName %q, want tcp, db1.example.com:3307, tradeunit, tradeunit_u1", cfg.Net, cfg.Addr, cfg.User, cfg.DBName)
			}
			if cfg.Timeout != 2*time.Second || cfg.ReadTimeout != 5*time.Second || !cfg.ParseTime {
				t.Errorf("got Timeout %v, ReadTimeout %v, ParseTime %v, want 2s, 5s, true", cfg.Timeout, cfg.ReadTimeout, cfg.ParseTime)
			}
			if got := cfg.Params["sql_mode"]; got != "'ANSI'" {
				t.Errorf("Params[sql_mode]: got %q, want %q", got, "'ANSI'")
			}
		})
	}
}

func TestMySQLConfigRefuses(t *testing.T) {
	d := mustParse(t, "mysql:u@tcp(h:1)/db")
	for _, tt := range []struct {
		name string
		d    dsn.DSN
		want string
	}{
		{"sqlite", mustParse(t, "sqlite:a.db"), "not a MySQL DSN"},
		{"zero", dsn.DSN{}, "not a MySQL DSN"},
		{"bad user", d.WithUser("u:pw"), "holds a password"},
		{"bad database", d.WithDatabase("a;DROP"), `database "a;DROP"`},
		{"not canonical", dsn.DSN{Scheme: dsn.MySQL, User: "u", Addr: "H:1"}, "canonical"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.d.MySQLConfig(nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !tradeunit.IsCode(err, tradeunit.CodeParamError) {
				t.Errorf("MySQLConfig: got %v, %v, want a PARAM_ERROR containing %q", cfg, err, tt.want)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{in: "127.0.0.1:3306", want: "127.0.0.1:3306"},
		{in: "LocalHost:3306", want: "localhost:3306"},
		{in: "[::1]:1", want: "[::1]:1"},
		{in: "[::ffff:1.2.3.4]:1", want: "[::ffff:1.2.3.4]:1"},
		{in: "[db]:1", want: "db:1"},
		{in: "h:007", want: "h:7"},
		{in: "h", err: "not HOST:PORT"},
		{in: "::1:3306", err: "not HOST:PORT"},
		{in: ":3306", err: "no host"},
		{in: "h:x", err: "1 to 65535"},
		{in: "h:-1", err: "1 to 65535"},
		{in: "a/b:1", err: "neither"},
	} {
		got, err := dsn.ParseAddr(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseAddr(%q): got %q, %v, want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseAddr(%q): got %q, %v, want an error containing %q", tt.in, got, err, tt.err)
		}
	}
}

// TestDSNIsComparable keeps DSN usable as a map key: a field of a type that
// is not comparable would stop this from compiling.
func TestDSNIsComparable(t *testing.T) {
	m := map[dsn.DSN]int{mustParse(t, "sqlite:a.db"): 1}
	if m[mustParse(t, "sqlite:a.db?synchronous=full")] != 1 {
		t.Errorf("two spellings of the same DSN: got different keys, want the same")
	}
}

func mustParse(tb testing.TB, s string) dsn.DSN {
	tb.Helper()
	d, err := dsn.Parse(s)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", s, err)
	}
	return d
}
