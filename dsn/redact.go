package dsn

import "strings"

// Redact returns the raw DSN string s with its password replaced by ***
// ("mysql:user:***@tcp(h:3306)/db"), for messages about input that Parse
// has not accepted; a DSN that Parse returns holds no password to hide. A
// SQLite DSN is returned unchanged: its path is a file name. Any other
// string is read as a go-sql-driver DSN, prefixed or not, so that a DSN with
// a mistyped scheme does not print its password either.
func Redact(s string) string {
	if strings.HasPrefix(s, "sqlite:") {
		return s
	}
	rest := strings.TrimPrefix(s, "mysql:")
	i, j, ok := passwordSpan(rest)
	if !ok || i == j {
		return s
	}
	off := len(s) - len(rest)
	return s[:off+i] + "***" + s[off+j:]
}

// passwordSpan returns where the password is in a go-sql-driver DSN,
// rest[i:j], and whether there is one (it may be empty): what lies between
// the first ':' and the '@' that ends the user, found as the driver finds
// it, the last '@' before the last '/'. Without such an '@' it takes the
// last '@' of all, which the driver would not, to err on the side of hiding.
func passwordSpan(rest string) (i, j int, ok bool) {
	at := -1
	if slash := strings.LastIndexByte(rest, '/'); slash >= 0 {
		at = strings.LastIndexByte(rest[:slash], '@')
	}
	if at < 0 {
		at = strings.LastIndexByte(rest, '@')
	}
	if at < 0 {
		return 0, 0, false
	}
	colon := strings.IndexByte(rest[:at], ':')
	if colon < 0 {
		return 0, 0, false
	}
	return colon + 1, at, true
}
