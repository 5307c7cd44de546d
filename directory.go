package tradeunit

import (
	"context"
	"errors"
	"time"
)

// The merchant-key directory: where each merchant's own number for a record
// (an out_trade_no, an out_refund_no) has its one record. A create picks a
// unit late and may retry on another, so the unit cannot be computed from the
// merchant's number: the directory records it, and every create and every
// lookup by merchant number goes through the key's entry.
//
// Keys are hashed into a fixed number of buckets (DirectoryBuckets) that the
// routing table maps to directory shards; a shard is stateless service
// replicas over one storage, a failure domain like a unit. An entry moves
// only forward, each step a compare-and-swap on its version:
//
//	(none) → pending(unit, attempt) → pending(another unit, attempt) … → committed(record)
//
// A create reserves the key as pending before calling the unit; a retry on
// another unit moves the pending entry; once the unit has answered, the
// create commits the entry, and answers with a record only if the entry is
// committed to that record. A committed entry's record never changes.

// KeyKind says what a merchant key names.
type KeyKind string

// The kinds of merchant keys.
const (
	KeyOrder  KeyKind = "order"  // (mchid, out_trade_no) → one order
	KeyRefund KeyKind = "refund" // (mchid, out_refund_no) → one refund
)

// MerchantKey is a merchant's own number for a record: the directory's key.
type MerchantKey struct {
	Mchid string
	Kind  KeyKind
	Value string // the out_trade_no or out_refund_no
}

// Validate checks the key. Errors: PARAM_ERROR.
func (k MerchantKey) Validate() error {
	if err := ValidateMchid(k.Mchid); err != nil {
		return err
	}
	switch k.Kind {
	case KeyOrder:
		return ValidateOutTradeNo(k.Value)
	case KeyRefund:
		return ValidateOutRefundNo(k.Value)
	}
	return Errorf(CodeParamError, "key kind %q must be order or refund", k.Kind)
}

// String names the key for logs: "order 1900000001/abc-1".
func (k MerchantKey) String() string { return string(k.Kind) + " " + k.Mchid + "/" + k.Value }

// DirectoryBuckets is how many buckets keys hash into. It is fixed: moving a
// bucket between shards is an explicit operation, and the hash never changes.
const DirectoryBuckets = 4096

// Bucket returns the key's bucket, 0..DirectoryBuckets-1: FNV-1a of
// mchid, a zero byte, the kind, a zero byte and the value.
func (k MerchantKey) Bucket() int {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, s := range [...]string{k.Mchid, "\x00", string(k.Kind), "\x00", k.Value} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime
		}
	}
	return int(h % DirectoryBuckets)
}

// EntryState is a directory entry's state.
type EntryState string

// The states of an entry.
const (
	// EntryPending: the record is being made by the entry's attempt.
	EntryPending EntryState = "pending"
	// EntryCommitted: the record exists; the entry names it for good.
	EntryCommitted EntryState = "committed"
)

// Attempt is one try at making a key's record on a unit. Its ID is random
// and never 0; a unit records it with the record it makes, and refuses it
// once the attempt is superseded (OrderService.SupersedeAttempt).
type Attempt struct {
	Unit UnitID
	ID   uint64
}

// DirectoryEntry is where a merchant key's one record is, or is being made.
type DirectoryEntry struct {
	Key   MerchantKey
	State EntryState
	// Attempt is the unit and attempt the record is being made by
	// (pending) or was made by (committed).
	Attempt Attempt
	// Fingerprint identifies the request the record is made from (see
	// CreateOrderRequest.Fingerprint): the same key with another request
	// is a conflict (OUT_TRADE_NO_USED, OUT_REFUND_NO_USED).
	Fingerprint string
	// RecordNo is the committed record's number: the order number for an
	// order; for a refund, the number of the order refunded (the refund is
	// found by its key on that order's unit). Empty while pending.
	RecordNo string
	// Abandoned are earlier attempts that may have left a record behind
	// (their unit gave no answer, or an unknown outcome): the reconciler
	// supersedes each once its unit is reachable, closing any record it
	// finds that is not the entry's, and removes it from the list.
	Abandoned []Attempt
	Created   time.Time
	Updated   time.Time
	// Version is 1 for a new entry and grows by one at every change.
	Version int64
}

// Clone returns a deep copy of e (nil for nil).
func (e *DirectoryEntry) Clone() *DirectoryEntry {
	if e == nil {
		return nil
	}
	c := *e
	c.Abandoned = append([]Attempt(nil), e.Abandoned...)
	return &c
}

// Next returns the entry that follows e: a copy at the next version,
// changed by change. Writers put it with DirectoryStore.Put, which stores it
// only if e is still the stored entry.
func (e *DirectoryEntry) Next(change func(n *DirectoryEntry)) *DirectoryEntry {
	n := e.Clone()
	n.Version++
	change(n)
	return n
}

// CommittedTo returns the entry that follows e committed to o, its unit's
// order for e's key. The unit holds one order per key, so o is the key's
// order whichever of e's attempts made it, and o's body is the one that
// counts.
func (e *DirectoryEntry) CommittedTo(o *Order) *DirectoryEntry {
	return e.Next(func(n *DirectoryEntry) {
		n.State, n.RecordNo = EntryCommitted, o.OrderNo
		n.Fingerprint = (&CreateOrderRequest{Description: o.Description, Amount: o.Amount}).Fingerprint()
	})
}

// ErrVersionConflict is the error of a Put whose entry was changed (or
// created) by another writer first; its PutResult carries the entry now
// stored.
var ErrVersionConflict = errors.New("directory entry changed meanwhile")

// PutResult is the outcome of putting one entry.
type PutResult struct {
	// Entry is the entry now stored: the one put, or on a conflict the
	// one that won.
	Entry *DirectoryEntry
	// Err is nil, an error wrapping ErrVersionConflict, or the storage's
	// error (UNIT_UNAVAILABLE: nothing written).
	Err error
}

// DirectoryStore is one directory shard's storage (and, over RPC, the
// directory shard's service): entries written by compare-and-swap on their
// version, several in one transaction.
type DirectoryStore interface {
	// Entry returns a key's entry. Errors: RESOURCE_NOT_EXISTS,
	// UNIT_UNAVAILABLE.
	Entry(ctx context.Context, key MerchantKey) (*DirectoryEntry, error)
	// Put stores each entry if the stored one is at the entry's Version-1
	// (Version 1: no entry stored), in one transaction, each entry on its
	// own: one that conflicts (ErrVersionConflict, with the winner) fails
	// alone. A committed entry keeps its state and record: a Put changing
	// either is a conflict, whatever its version. Results are in the order
	// of the entries. Errors of the whole call: PARAM_ERROR for an invalid
	// entry; UNIT_UNAVAILABLE (in every result) when the storage cannot
	// commit.
	Put(ctx context.Context, entries []*DirectoryEntry) []PutResult
	// Abandoned returns up to limit entries that list abandoned attempts,
	// in key order after the key after (the zero key: from the start): the
	// reconciler's work.
	Abandoned(ctx context.Context, after MerchantKey, limit int) ([]*DirectoryEntry, error)
}
