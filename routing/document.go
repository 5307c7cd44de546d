package routing

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"tradeunit"
)

// The backends (a file, etcd, memory) keep two documents of the same shape:
// the routing table (Table), which every proxy and health checker reads, and
// the storage topology (Topology), which only logic services, controllers
// and operators read. Both are one JSON value with a revision that grows by
// one with every change, edited by compare-and-swap.

// document is the behaviour a backend needs of a document type D; *Table
// and *Topology implement it.
type document[D any] interface {
	*D
	// decode parses data strictly (unknown fields and trailing data are
	// refused), fills defaults, and validates.
	decode(data []byte) error
	// Marshal encodes the document in its canonical form.
	Marshal() ([]byte, error)
	// Validate checks the document; it changes nothing.
	Validate() error
	// Normalize fills defaults and builds indexes.
	Normalize()
	// Clone returns a deep copy.
	Clone() *D
	revision() int64
	setRevision(int64)
	// kind names the document for messages, logs, files and etcd keys.
	kind() kind
}

// kind names a document type for its backends.
type kind struct {
	name    string // "routing table", "storage topology": in messages and logs
	etcdKey string // key under the etcd prefix
	history string // the etcd history prefix under the etcd prefix
}

// parse decodes a document of type D.
func parse[D any, P document[D]](data []byte) (*D, error) {
	d := P(new(D))
	if err := d.decode(data); err != nil {
		return nil, err
	}
	return (*D)(d), nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data. Errors: PARAM_ERROR naming the document.
func decodeStrict(name string, data []byte, v any) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return tradeunit.Errorf(tradeunit.CodeParamError, "%s: not a JSON object", name)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return tradeunit.Errorf(tradeunit.CodeParamError, "%s: %v", name, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return tradeunit.Errorf(tradeunit.CodeParamError, "%s: data after the JSON object", name)
	}
	return nil
}
