package dsn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"tradeunit"
)

// Passwords looks up database passwords; package tradeunit/secrets
// implements it. Password returns the password of user on the server at
// addr (a canonical host:port, as DSN.Addr) and whether it knows one; an
// empty password with ok true is a user without a password. Implementations
// must be safe for concurrent use.
type Passwords interface {
	Password(user, addr string) (password string, ok bool)
}

// MySQLConfig returns the go-sql-driver configuration of a MySQL DSN: tcp to
// d.Addr as d.User on d.Database, with d.Params applied as the driver reads
// them, and the password p knows for d.User at d.Addr. With a nil p, or one
// that knows no password, the password is empty (root on a development
// machine). Errors: PARAM_ERROR for a DSN that is not MySQL, or that Parse
// would not return (one made by hand with a bad user or database name).
func (d DSN) MySQLConfig(p Passwords) (*mysql.Config, error) {
	if d.Scheme != MySQL {
		return nil, errorf("storage DSN %q is not a MySQL DSN: it names no server to connect to", d.String())
	}
	// Through the canonical text and back: the one way from a DSN to a
	// driver configuration, so that the params mean exactly what the driver
	// makes of them, and a DSN made by hand gets the checks Parse makes
	// before anything is sent to a server.
	s := d.String()
	if back, err := Parse(s); err != nil {
		return nil, err
	} else if back != d {
		return nil, errorf("storage DSN %q is not in canonical form (Parse makes it %q): build DSNs with Parse", s, back.String())
	}
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(s, "mysql:"))
	if err != nil {
		// Parse accepted s, so only a change in the driver's state (an
		// unregistered TLS config) gets here.
		return nil, errorf("storage DSN %q: %v", s, err)
	}
	if p != nil {
		if pw, ok := p.Password(d.User, d.Addr); ok {
			cfg.Passwd = pw
		}
	}
	return cfg, nil
}

func parseMySQL(s, rest string) (DSN, error) {
	// First, before any message quotes the input: a password is refused
	// whatever else is wrong, and every later message may quote s whole.
	if i, j, ok := passwordSpan(rest); ok {
		if i == j {
			return DSN{}, errorf("storage DSN %q has an empty password after ':': passwords never go in a DSN; drop the ':'", s)
		}
		// Redact hides the password where the driver would read it; hide
		// it wherever else it occurs in the input as well.
		red := strings.ReplaceAll(Redact(s), rest[i:j], "***")
		return DSN{}, errorf("storage DSN %q holds a password: passwords never go in a DSN; put it in the secrets file or the TRADEUNIT_PASSWORD_<USER> environment variable (see package secrets)", red)
	}
	// The same split as the driver's: the last '/' ends the server part,
	// the last '@' before it ends the user.
	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 {
		return DSN{}, errorf("storage DSN %q has no /DB: write mysql:USER@tcp(HOST:PORT)/DB, or end it in / for the server without a database", s)
	}
	at := strings.LastIndexByte(rest[:slash], '@')
	if at < 0 {
		return DSN{}, errorf("storage DSN %q names no user: write mysql:USER@tcp(HOST:PORT)/DB", s)
	}
	user, server := rest[:at], rest[at+1:slash]
	if err := checkUser(user); err != nil {
		return DSN{}, errorf("storage DSN %q: %v", s, err)
	}
	var params string
	if _, query, ok := strings.Cut(rest[slash+1:], "?"); ok {
		var err error
		// Before the driver sees them: it panics on strict=.
		if params, err = canonicalParams(query); err != nil {
			return DSN{}, errorf("storage DSN %q: %v", s, err)
		}
	}
	cfg, err := mysql.ParseDSN(rest)
	if err != nil {
		return DSN{}, errorf("storage DSN %q is malformed (%v): write mysql:USER@tcp(HOST:PORT)/DB[?PARAMS]", s, err)
	}
	switch {
	case cfg.Net == "unix":
		return DSN{}, errorf("storage DSN %q uses a Unix socket: replicas and failover reach the server over the network, write tcp(HOST:PORT)", s)
	case server == "" || server == "tcp":
		return DSN{}, errorf("storage DSN %q names no server: write mysql:USER@tcp(HOST:PORT)/DB", s)
	case cfg.Net != "tcp" || !strings.HasPrefix(server, "tcp("):
		proto, _, _ := strings.Cut(server, "(")
		return DSN{}, errorf("storage DSN %q uses the protocol %q: want tcp(HOST:PORT)", s, proto)
	case server != "tcp("+cfg.Addr+")":
		// The driver adds :3306 to a bare host; a DSN says which port.
		return DSN{}, errorf("storage DSN %q: the server %q has no port: write tcp(HOST:PORT), e.g. tcp(127.0.0.1:3306)", s, server)
	}
	addr, err := ParseAddr(cfg.Addr)
	if err != nil {
		return DSN{}, errorf("storage DSN %q: %s", s, tradeunit.ErrorMessage(err))
	}
	if err := checkDatabase(cfg.DBName); err != nil {
		return DSN{}, errorf("storage DSN %q: %v", s, err)
	}
	return DSN{Scheme: MySQL, User: user, Addr: addr, Database: cfg.DBName, Params: params}, nil
}

// checkUser accepts the user names a DSN can carry: no character the
// driver's DSN syntax gives a meaning to, and none that needs quoting.
func checkUser(user string) error {
	if user == "" {
		return errors.New("the user before '@' is empty: write mysql:USER@tcp(HOST:PORT)/DB")
	}
	if len(user) > 80 || strings.IndexFunc(user, func(r rune) bool { return !isWord(r) && r != '.' && r != '-' }) >= 0 {
		return fmt.Errorf("user %q: want up to 80 letters, digits, '_', '.' and '-'", user)
	}
	return nil
}

// checkDatabase accepts the database names that need no quoting in SQL,
// the only kind the tools create. "" names no database.
func checkDatabase(db string) error {
	if len(db) > 64 || strings.IndexFunc(db, func(r rune) bool { return !isWord(r) }) >= 0 {
		return fmt.Errorf("database %q: want up to 64 letters, digits and '_'", db)
	}
	return nil
}

// isWord reports whether r is an ASCII letter, digit or '_'.
func isWord(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_'
}

// canonicalParams checks the go-sql-driver parameters of a DSN (the text
// after '?') and returns them sorted by name. Values stay as written: the
// driver unescapes some and not others, so re-encoding could change them.
func canonicalParams(query string) (string, error) {
	type param struct{ key, value string }
	var ps []param
	for piece := range strings.SplitSeq(query, "&") {
		key, value, ok := strings.Cut(piece, "=")
		switch {
		case piece == "":
			return "", errors.New("empty parameter (a stray '?' or '&'): write ?KEY=VALUE&KEY=VALUE")
		case !ok || value == "":
			return "", fmt.Errorf("parameter %q has no value: write KEY=VALUE", piece)
		case key == "" || len(key) > 64 || strings.IndexFunc(key, func(r rune) bool { return !isWord(r) }) >= 0:
			return "", fmt.Errorf("parameter name %q: want letters, digits and '_'", key)
		case key == "strict":
			return "", errors.New("parameter strict was removed from go-sql-driver/mysql: drop it")
		case smuggles(key):
			return "", fmt.Errorf("parameter %q would set a user or a password: the user goes before '@', the password in the secrets store", key)
		case strings.IndexFunc(value, func(r rune) bool { return !isWord(r) && !strings.ContainsRune("-.~%+,'*", r) }) >= 0:
			// No ':', '@' or '/' in a value keeps the DSN's one '@' the
			// user's, and nothing a password could hide behind.
			return "", fmt.Errorf("parameter %s has the value %q: escape characters other than letters, digits and -._~+,'* as %%XX (url.QueryEscape)", key, value)
		case slices.ContainsFunc(ps, func(p param) bool { return p.key == key }):
			return "", fmt.Errorf("parameter %s is set twice: set it once", key)
		}
		ps = append(ps, param{key, value})
	}
	// The driver applies parameters in no particular order (the session
	// variables come from a map), so sorting changes nothing.
	slices.SortFunc(ps, func(a, b param) int { return strings.Compare(a.key, b.key) })
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key + "=" + p.value)
	}
	return b.String(), nil
}

// smuggles reports whether a parameter named key could carry a user or a
// password: the driver sends unknown parameters as SET key=value, and a
// "password" one would at best put the password in the DSN.
func smuggles(key string) bool {
	switch key {
	case "allowCleartextPasswords", "allowNativePasswords", "allowOldPasswords":
		// They name a password but only say how one is sent.
		return false
	}
	k := strings.ToLower(key)
	return strings.Contains(k, "user") || strings.Contains(k, "pass") || strings.Contains(k, "pwd") || strings.Contains(k, "secret")
}

// ParseAddr returns the canonical form of a TCP address HOST:PORT, as
// DSN.Addr holds it: a host name in lower case, an IP address in its
// standard form (IPv6 in brackets), the port in decimal without leading
// zeros. Package secrets uses it for its keys, so that a password is found
// however its server was spelled. Errors: PARAM_ERROR for an address
// without a host or a port, with a port outside 1-65535, or with a host
// name holding characters other than letters, digits, '.', '-' and '_'.
func ParseAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errorf("address %q is not HOST:PORT (IPv6 as [HOST]:PORT)", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || strings.IndexFunc(port, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return "", errorf("address %q: the port %q is not a number from 1 to 65535", addr, port)
	}
	if host == "" {
		return "", errorf("address %q has no host: write HOST:PORT, e.g. 127.0.0.1:3306", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", errorf("address %q: IPv6 zones are not supported, use a global address", addr)
		}
		return netip.AddrPortFrom(ip, uint16(p)).String(), nil
	}
	if len(host) > 253 || strings.IndexFunc(host, func(r rune) bool { return !isWord(r) && r != '.' && r != '-' }) >= 0 {
		return "", errorf("address %q: the host %q is neither an IP address nor a host name (letters, digits, '.', '-')", addr, host)
	}
	return strings.ToLower(host) + ":" + strconv.Itoa(p), nil
}
