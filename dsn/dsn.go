// Package dsn names a unit's storage: a data source name parsed once, at the
// edge (a flag, a routing table file, etcd), and carried parsed from then on.
//
// A storage DSN has one of two forms:
//
//	sqlite:PATH[?synchronous=FULL|NORMAL]
//	mysql:USER@tcp(HOST:PORT)/[DB][?PARAMS]
//
// The first is one SQLite file per unit. synchronous=FULL, the default,
// syncs every commit to disk; NORMAL is faster but may lose the last commits
// on a power cut. The second is a go-sql-driver/mysql DSN after its "mysql:"
// prefix, restricted to TCP: replicas and the failover tooling on other
// hosts must reach the server, and a Unix socket names a server that only
// one host can see. Its PARAMS are go-sql-driver parameters (timeout=2s).
// A unit's storage names a database; a DSN without one names the server, as
// failover needs to administer it (see RequireDatabase and ServerOnly).
//
// A DSN holds no password, and Parse refuses one that does. DSNs travel: they
// sit in the routing table, in etcd and its history, in --json output, in
// logs and metrics, and each of these would leak a password to everyone who
// can read it. A password is looked up instead by user and server, on the
// host that connects, from a secrets store (package tradeunit/secrets
// implements Passwords), and MySQLConfig puts it into the driver's
// configuration at the last moment, where nothing prints it.
package dsn

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"tradeunit"
)

// Scheme is the kind of storage a DSN names.
type Scheme string

// The schemes of storage DSNs.
const (
	SQLite Scheme = "sqlite" // one SQLite file
	MySQL  Scheme = "mysql"  // a MySQL or MariaDB server, and a database on it
)

// The values of DSN.Synchronous.
const (
	SyncFull   = "FULL"   // every commit synced to disk: durable, the default
	SyncNormal = "NORMAL" // WAL synced at checkpoints: the last commits may be lost on a power cut
)

// DSN is a parsed storage data source name. Build one with Parse: it fills
// every field of its scheme in canonical form, so that two DSNs naming the
// same storage the same way are equal, and a DSN can be a map key. Only the
// fields of its Scheme are set.
type DSN struct {
	Scheme Scheme

	// Path is the SQLite file, as given (relative paths stay relative).
	Path string
	// Synchronous is SyncFull or SyncNormal for SQLite. Parse always sets
	// it, so that "sqlite:a.db" and "sqlite:a.db?synchronous=FULL" are
	// equal; String writes it only when it is not FULL, and reads an empty
	// one (a DSN made by hand) as FULL, the durable default.
	Synchronous string

	// User is the MySQL user. Its password is not here: see Passwords.
	User string
	// Addr is the server's canonical host:port: host names lower case, IP
	// addresses in their standard form (IPv6 in brackets), port in decimal.
	Addr string
	// Database is the database on the server; empty names the server only.
	Database string
	// Params are the extra go-sql-driver parameters, sorted by name and
	// joined with '&' ("readTimeout=5s&timeout=2s"), each value exactly as
	// written, since the driver decides per parameter whether it unescapes
	// a value. Empty for none.
	Params string
}

// MustParse is Parse for a DSN known to be good (a constant, a test's): it
// panics on an error.
func MustParse(s string) DSN {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Parse parses a storage DSN in one of the two forms of the package doc.
// It refuses a DSN that holds a password, an unknown or missing scheme, a
// SQLite DSN without a path or with an option other than synchronous=FULL
// or NORMAL (in any case), and a MySQL DSN that is not USER@tcp(HOST:PORT),
// that the driver cannot parse, or whose parameters would set a user or a
// password. A parameter value is letters, digits and -._~+,'* with others
// escaped as %XX (as the driver's FormatDSN writes them), so that a DSN's
// only '@' is the user's. The driver checks the values as it would when
// connecting, so a tls= or serverPubKey= name must be registered with it
// in this process first. Errors are PARAM_ERROR *tradeunit.Error values
// whose messages say what to write instead and never hold the password of
// the input.
func Parse(s string) (DSN, error) {
	if s == "" {
		return DSN{}, errorf("the storage DSN is empty: write sqlite:PATH or mysql:USER@tcp(HOST:PORT)/DB")
	}
	// JSON would replace invalid UTF-8, and a routing table must load back
	// the DSNs it saved.
	if !utf8.ValidString(s) {
		return DSN{}, errorf("storage DSN %q is not valid UTF-8", Redact(s))
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		return DSN{}, errorf("storage DSN %q holds a control character at byte %d: remove it", Redact(s), i)
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return DSN{}, errorf("storage DSN %q has no scheme: write sqlite:PATH for a SQLite file or mysql:USER@tcp(HOST:PORT)/DB for MySQL", s)
	}
	switch Scheme(scheme) {
	case SQLite:
		return parseSQLite(s, rest)
	case MySQL:
		return parseMySQL(s, rest)
	}
	return DSN{}, errorf("storage DSN %q has the unknown scheme %q: want sqlite: or mysql: (lower case)", Redact(s), scheme)
}

func parseSQLite(s, rest string) (DSN, error) {
	path, query, hasQuery := strings.Cut(rest, "?")
	if path == "" {
		return DSN{}, errorf("storage DSN %q names no file: write sqlite:PATH, e.g. sqlite:data/unit-1.db", s)
	}
	d := DSN{Scheme: SQLite, Path: path, Synchronous: SyncFull}
	if !hasQuery {
		return d, nil
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return DSN{}, errorf("storage DSN %q: the options after '?' are malformed (%v): write sqlite:PATH?synchronous=NORMAL", s, err)
	}
	if len(values) == 0 {
		return DSN{}, errorf("storage DSN %q has no option after '?': drop the '?' or write ?synchronous=NORMAL", s)
	}
	// Sorted, so that the message names the same option every time.
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if k != "synchronous" {
			return DSN{}, errorf("storage DSN %q has the unknown option %q: a SQLite DSN takes only synchronous=FULL|NORMAL", s, k)
		}
	}
	if n := len(values["synchronous"]); n != 1 {
		return DSN{}, errorf("storage DSN %q sets synchronous %d times: set it once", s, n)
	}
	switch v := strings.ToUpper(values.Get("synchronous")); v {
	case SyncFull, SyncNormal:
		d.Synchronous = v
	default:
		return DSN{}, errorf("storage DSN %q: synchronous=%q: want FULL (durable, the default) or NORMAL (may lose the last commits on a power cut)", s, values.Get("synchronous"))
	}
	return d, nil
}

// String returns the canonical form of d, which Parse accepts and turns
// back into d (for every DSN that Parse returns). It holds no password,
// even for a DSN made by hand with a ':' in its User. The zero DSN's String
// is "".
func (d DSN) String() string {
	switch d.Scheme {
	case SQLite:
		s := "sqlite:" + d.Path
		if d.Synchronous != "" && d.Synchronous != SyncFull {
			s += "?synchronous=" + d.Synchronous
		}
		return s
	case MySQL:
		s := "mysql:" + d.User + "@tcp(" + d.Addr + ")/" + d.Database
		if d.Params != "" {
			s += "?" + d.Params
		}
		// A no-op for what Parse returns; it keeps the promise for a DSN
		// built by hand (WithUser("u:pw")).
		return Redact(s)
	}
	if d == (DSN{}) {
		return ""
	}
	return string(d.Scheme) + ":"
}

// MarshalText returns d.String(), so that a DSN is a string in JSON. It
// refuses a DSN whose String Parse would refuse (one made by hand), so that
// what is saved loads back. The zero DSN is the empty text.
func (d DSN) MarshalText() ([]byte, error) {
	if d == (DSN{}) {
		return []byte{}, nil
	}
	s := d.String()
	if _, err := Parse(s); err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// UnmarshalText parses text with Parse, so that a password in a JSON file is
// refused when the file is loaded. The empty text is the zero DSN, as
// MarshalText writes it: a field that names no storage.
func (d *DSN) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*d = DSN{}
		return nil
	}
	p, err := Parse(string(text))
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// Server names the server of d in messages and metrics: the address
// (host:port) for MySQL, the file for SQLite, "" for the zero DSN.
func (d DSN) Server() string {
	switch d.Scheme {
	case MySQL:
		return d.Addr
	case SQLite:
		return d.Path
	}
	return ""
}

// WithUser returns a copy of d that connects as user. user must be a name
// Parse accepts (letters, digits, '_', '.', '-'); MySQLConfig refuses a DSN
// with any other.
func (d DSN) WithUser(user string) DSN {
	d.User = user
	return d
}

// WithDatabase returns a copy of d naming database db on the same server; ""
// names the server only. db must be a name Parse accepts (letters, digits,
// '_'); MySQLConfig refuses a DSN with any other.
func (d DSN) WithDatabase(db string) DSN {
	d.Database = db
	return d
}

// ServerOnly returns a copy of d that names its server without a database,
// for administration (failover connects there as another user).
func (d DSN) ServerOnly() DSN { return d.WithDatabase("") }

// RequireDatabase returns nil if d can be a unit's storage: a SQLite file,
// or a MySQL DSN that names a database. For a MySQL DSN of a server only
// (or the zero DSN) it returns a PARAM_ERROR that says what to write.
func (d DSN) RequireDatabase() error {
	switch {
	case d.Scheme == SQLite:
		return nil
	case d.Scheme == MySQL && d.Database != "":
		return nil
	case d.Scheme == MySQL:
		return errorf("storage DSN %q names no database: a unit's storage is one database, write mysql:%s@tcp(%s)/DB, e.g. /tradeunit_u1", d.String(), d.User, d.Addr)
	}
	return errorf("no storage DSN: write sqlite:PATH or mysql:USER@tcp(HOST:PORT)/DB")
}

// errorf returns a PARAM_ERROR: every DSN error is a malformed input.
func errorf(format string, args ...any) error {
	return tradeunit.Errorf(tradeunit.CodeParamError, format, args...)
}
