// Package sqlscript splits the embedded migration scripts of the SQL stores
// (units' and shards' storage, the query store) into statements.
package sqlscript

import "strings"

// Split splits a script on semicolons that end a line, dropping comment
// lines and blank lines; the schemas hold no semicolons inside statements.
func Split(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
