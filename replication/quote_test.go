package replication

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":          `''`,
		"repl":      `'repl'`,
		`it's`:      `'it\'s'`,
		`a\b`:       `'a\\b'`,
		"x\x00y\nz": `'x\0y\nz'`,
		"中文":        `'中文'`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q): got %s, want %s", in, got, want)
		}
	}
}
