package replication

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// GTID is one MariaDB global transaction ID, DOMAIN-SERVER-SEQ: the
// replication domain, the server_id of the server that first committed the
// transaction, and its sequence number. Under gtid_strict_mode the sequence
// numbers of one domain only grow, whichever server commits, so within a
// domain a higher Seq is a later transaction.
type GTID struct {
	Domain uint32
	Server uint32
	Seq    uint64
}

// String formats g as MariaDB does: "0-1-100".
func (g GTID) String() string {
	return strconv.FormatUint(uint64(g.Domain), 10) + "-" + strconv.FormatUint(uint64(g.Server), 10) + "-" +
		strconv.FormatUint(g.Seq, 10)
}

// GTIDList is a list of GTIDs as MariaDB prints them, "0-1-100,1-2-5": a
// position (gtid_binlog_pos, gtid_slave_pos, Gtid_IO_Pos: the last GTID of
// each domain) or a binlog state (gtid_binlog_state: the last GTID of each
// domain and server). It holds at most one GTID per domain and server.
type GTIDList []GTID

// GTIDError is the error of ParseGTID and ParseGTIDList: the input and
// what is wrong with it.
type GTIDError struct {
	Input  string // the whole input
	Reason string
}

// Error describes the bad input.
func (e *GTIDError) Error() string { return fmt.Sprintf("bad GTID list %q: %s", e.Input, e.Reason) }

// ParseGTID parses one GTID, "DOMAIN-SERVER-SEQ". It returns a *GTIDError
// for anything else.
func ParseGTID(s string) (GTID, error) {
	g, reason := parseGTID(s)
	if reason != "" {
		return GTID{}, &GTIDError{Input: s, Reason: reason}
	}
	return g, nil
}

func parseGTID(s string) (GTID, string) {
	d, rest, ok1 := strings.Cut(s, "-")
	sv, q, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 {
		return GTID{}, fmt.Sprintf("%q: want DOMAIN-SERVER-SEQ", s)
	}
	domain, err := parseUint(d, 32)
	if err != "" {
		return GTID{}, fmt.Sprintf("%q: domain %s", s, err)
	}
	server, err := parseUint(sv, 32)
	if err != "" {
		return GTID{}, fmt.Sprintf("%q: server_id %s", s, err)
	}
	seq, err := parseUint(q, 64)
	if err != "" {
		return GTID{}, fmt.Sprintf("%q: sequence number %s", s, err)
	}
	return GTID{Domain: uint32(domain), Server: uint32(server), Seq: seq}, ""
}

// parseUint parses an unsigned decimal number of at most bits bits and
// returns why it is not one, so that the error names the field.
func parseUint(s string, bits int) (uint64, string) {
	if s == "" {
		return 0, "is empty"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Sprintf("%q is not a decimal number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Sprintf("%q is out of range (%d bits)", s, bits)
	}
	return n, ""
}

// ParseGTIDList parses a comma-separated list of GTIDs; spaces and newlines
// around the commas are allowed (SHOW SLAVE STATUS breaks long lists), and
// the empty string is the empty list. Two GTIDs of the same domain and
// server are an error. It returns a *GTIDError for bad input and never
// panics.
func ParseGTIDList(s string) (GTIDList, error) {
	if trimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	l := make(GTIDList, 0, len(parts))
	for _, p := range parts {
		p = trimSpace(p)
		if p == "" {
			return nil, &GTIDError{Input: s, Reason: "empty element"}
		}
		g, reason := parseGTID(p)
		if reason != "" {
			return nil, &GTIDError{Input: s, Reason: reason}
		}
		for _, h := range l {
			if h.Domain == g.Domain && h.Server == g.Server {
				return nil, &GTIDError{Input: s, Reason: fmt.Sprintf("domain %d, server %d appears twice", g.Domain, g.Server)}
			}
		}
		l = append(l, g)
	}
	return l, nil
}

// trimSpace trims the ASCII spaces MariaDB may print around commas, and
// nothing else: this parses server output, not prose.
func trimSpace(s string) string { return strings.Trim(s, " \t\r\n") }

// String formats l as MariaDB does, sorted by domain and server.
func (l GTIDList) String() string {
	s := slices.Clone(l)
	slices.SortFunc(s, func(a, b GTID) int {
		if a.Domain != b.Domain {
			return cmpUint(uint64(a.Domain), uint64(b.Domain))
		}
		return cmpUint(uint64(a.Server), uint64(b.Server))
	})
	parts := make([]string, len(s))
	for i, g := range s {
		parts[i] = g.String()
	}
	return strings.Join(parts, ",")
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Seq returns the highest sequence number l holds in domain, and whether
// it holds any: how far a server has got in that domain.
func (l GTIDList) Seq(domain uint32) (uint64, bool) {
	var seq uint64
	found := false
	for _, g := range l {
		if g.Domain == domain && (!found || g.Seq > seq) {
			seq, found = g.Seq, true
		}
	}
	return seq, found
}

// Includes reports whether position l has reached position p: in every
// domain of p, l's sequence number is at least p's. It relies on
// gtid_strict_mode (sequence numbers of a domain only grow), and does not
// tell whether the two histories are the same: Errant does.
func (l GTIDList) Includes(p GTIDList) bool {
	for _, g := range p {
		if seq, ok := l.Seq(g.Domain); !ok || seq < g.Seq {
			return false
		}
	}
	return true
}

// Errant returns the transactions a server has that a reference server
// does not, given both servers' gtid_binlog_state: every GTID of have
// whose domain and server the reference lacks, or holds with a lower
// sequence number. Each returned GTID stands for the transactions of its
// domain and server after the reference's, up to and including it.
//
// Comparing per domain and server, and not per domain alone, is what
// catches divergence: an old primary's 0-1-101 and the new primary's
// 0-2-101 have the same sequence number and are different transactions.
// It assumes unique server_ids and that no server reuses its own GTIDs.
func Errant(have, ref GTIDList) GTIDList {
	var out GTIDList
	for _, g := range have {
		found := false
		for _, r := range ref {
			if r.Domain == g.Domain && r.Server == g.Server {
				found = r.Seq >= g.Seq
				break
			}
		}
		if !found {
			out = append(out, g)
		}
	}
	return out
}
