package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tradeunit"
	"tradeunit/rpc/unitpb"
)

// DirectoryServiceName is the full name of a directory shard's gRPC
// service; its health is reported under this name (and "").
const DirectoryServiceName = "tradeunit.v1.DirectoryService"

// NewDirectoryServer returns a gRPC server that serves store as one
// directory shard's DirectoryService, with the standard health service
// (SERVING) and the unit server's keepalive, logging and panic recovery.
func NewDirectoryServer(store tradeunit.DirectoryStore, log *slog.Logger, opts ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	s := grpc.NewServer(append(serverOptions(log), opts...)...)
	unitpb.RegisterDirectoryServiceServer(s, &directoryServer{store: store, log: log})
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(DirectoryServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, h
}

// directoryServer adapts a tradeunit.DirectoryStore to the generated
// DirectoryServiceServer.
type directoryServer struct {
	unitpb.UnimplementedDirectoryServiceServer
	store tradeunit.DirectoryStore
	log   *slog.Logger
}

func (s *directoryServer) GetEntry(ctx context.Context, r *unitpb.GetEntryRequest) (*unitpb.DirectoryEntry, error) {
	e, err := s.store.Entry(ctx, keyFromProto(r.GetKey()))
	if err == nil && e == nil {
		err = tradeunit.Internal("rpc.GetEntry", errNilResult)
	}
	if err != nil {
		return nil, toStatus(ctx, s.log, "GetEntry", err)
	}
	return entryToProto(e), nil
}

func (s *directoryServer) PutEntries(ctx context.Context, r *unitpb.PutEntriesRequest) (*unitpb.PutEntriesResponse, error) {
	entries := make([]*tradeunit.DirectoryEntry, len(r.GetEntries()))
	for i, p := range r.GetEntries() {
		entries[i] = entryFromProto(p)
	}
	results := s.store.Put(ctx, entries)
	if len(results) != len(entries) {
		return nil, toStatus(ctx, s.log, "PutEntries", tradeunit.Internal("rpc.PutEntries",
			fmt.Errorf("store returned %d results for %d entries", len(results), len(entries))))
	}
	out := &unitpb.PutEntriesResponse{Results: make([]*unitpb.PutResult, len(results))}
	for i, res := range results {
		out.Results[i] = putResultToProto(res)
		if tradeunit.ErrorCode(res.Err) == tradeunit.CodeInternal {
			s.log.ErrorContext(ctx, "rpc: internal error", "method", "PutEntries", "request_id", tradeunit.RequestID(ctx), "err", res.Err)
		}
	}
	return out, nil
}

func (s *directoryServer) AbandonedEntries(ctx context.Context, r *unitpb.AbandonedEntriesRequest) (*unitpb.AbandonedEntriesResponse, error) {
	entries, err := s.store.Abandoned(ctx, keyFromProto(r.GetAfter()), int(r.GetLimit()))
	if err != nil {
		return nil, toStatus(ctx, s.log, "AbandonedEntries", err)
	}
	out := &unitpb.AbandonedEntriesResponse{Entries: make([]*unitpb.DirectoryEntry, len(entries))}
	for i, e := range entries {
		out.Entries[i] = entryToProto(e)
	}
	return out, nil
}

// Entry implements tradeunit.DirectoryStore.
func (c *Client) Entry(ctx context.Context, key tradeunit.MerchantKey) (*tradeunit.DirectoryEntry, error) {
	p, err := c.dir.GetEntry(ctx, &unitpb.GetEntryRequest{Key: keyToProto(key)})
	if err != nil {
		return nil, fromStatus("GetEntry", err)
	}
	return entryFromProto(p), nil
}

// Put implements tradeunit.DirectoryStore. A call that gets no answer
// fails every entry with that error: their outcome is unknown.
func (c *Client) Put(ctx context.Context, entries []*tradeunit.DirectoryEntry) []tradeunit.PutResult {
	req := &unitpb.PutEntriesRequest{Entries: make([]*unitpb.DirectoryEntry, len(entries))}
	for i, e := range entries {
		req.Entries[i] = entryToProto(e)
	}
	out := make([]tradeunit.PutResult, len(entries))
	resp, err := c.dir.PutEntries(ctx, req)
	if err == nil && len(resp.GetResults()) != len(entries) {
		err = transportError("PutEntries", 0, fmt.Errorf("%d results for %d entries", len(resp.GetResults()), len(entries)))
	}
	if err != nil {
		err = fromStatus("PutEntries", err)
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	for i, r := range resp.GetResults() {
		out[i] = putResultFromProto(r)
	}
	return out
}

// Abandoned implements tradeunit.DirectoryStore.
func (c *Client) Abandoned(ctx context.Context, after tradeunit.MerchantKey, limit int) ([]*tradeunit.DirectoryEntry, error) {
	resp, err := c.dir.AbandonedEntries(ctx, &unitpb.AbandonedEntriesRequest{After: keyToProto(after), Limit: int32(limit)})
	if err != nil {
		return nil, fromStatus("AbandonedEntries", err)
	}
	out := make([]*tradeunit.DirectoryEntry, len(resp.GetEntries()))
	for i, p := range resp.GetEntries() {
		out[i] = entryFromProto(p)
	}
	return out, nil
}

func keyToProto(k tradeunit.MerchantKey) *unitpb.MerchantKey {
	return &unitpb.MerchantKey{Mchid: k.Mchid, Kind: string(k.Kind), Value: k.Value}
}

func keyFromProto(p *unitpb.MerchantKey) tradeunit.MerchantKey {
	return tradeunit.MerchantKey{Mchid: p.GetMchid(), Kind: tradeunit.KeyKind(p.GetKind()), Value: p.GetValue()}
}

func attemptToProto(a tradeunit.Attempt) *unitpb.Attempt {
	return &unitpb.Attempt{Unit: uint32(a.Unit), Id: a.ID}
}

func attemptFromProto(p *unitpb.Attempt) tradeunit.Attempt {
	return tradeunit.Attempt{Unit: tradeunit.UnitID(p.GetUnit()), ID: p.GetId()}
}

func entryToProto(e *tradeunit.DirectoryEntry) *unitpb.DirectoryEntry {
	if e == nil {
		return nil
	}
	p := &unitpb.DirectoryEntry{Key: keyToProto(e.Key), State: string(e.State), Attempt: attemptToProto(e.Attempt),
		Fingerprint: e.Fingerprint, RecordNo: e.RecordNo, CreatedUs: tradeunit.UnixMicros(e.Created),
		UpdatedUs: tradeunit.UnixMicros(e.Updated), Version: e.Version}
	for _, a := range e.Abandoned {
		p.Abandoned = append(p.Abandoned, attemptToProto(a))
	}
	return p
}

func entryFromProto(p *unitpb.DirectoryEntry) *tradeunit.DirectoryEntry {
	if p == nil {
		return nil
	}
	e := &tradeunit.DirectoryEntry{Key: keyFromProto(p.GetKey()), State: tradeunit.EntryState(p.GetState()),
		Attempt: attemptFromProto(p.GetAttempt()), Fingerprint: p.GetFingerprint(), RecordNo: p.GetRecordNo(),
		Created: tradeunit.FromUnixMicros(p.GetCreatedUs()), Updated: tradeunit.FromUnixMicros(p.GetUpdatedUs()),
		Version: p.GetVersion()}
	for _, a := range p.GetAbandoned() {
		e.Abandoned = append(e.Abandoned, attemptFromProto(a))
	}
	return e
}

// putResultToProto carries a result's error as the unit's errors cross:
// its code and caller-safe message only.
func putResultToProto(r tradeunit.PutResult) *unitpb.PutResult {
	p := &unitpb.PutResult{Entry: entryToProto(r.Entry)}
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, tradeunit.ErrVersionConflict):
		p.Conflict = true
	default:
		p.Code, p.Message = string(tradeunit.ErrorCode(r.Err)), tradeunit.ErrorMessage(r.Err)
		p.OutcomeUnknown = tradeunit.OutcomeUnknown(r.Err) && tradeunit.ErrorCode(r.Err) != tradeunit.CodeInternal
	}
	return p
}

func putResultFromProto(p *unitpb.PutResult) tradeunit.PutResult {
	r := tradeunit.PutResult{Entry: entryFromProto(p.GetEntry())}
	switch {
	case p.GetConflict():
		r.Err = fmt.Errorf("%w", tradeunit.ErrVersionConflict)
	case p.GetCode() != "":
		e := &tradeunit.Error{Code: tradeunit.Code(p.GetCode()), Message: p.GetMessage()}
		if p.GetOutcomeUnknown() {
			e.Err = tradeunit.ErrOutcomeUnknown
		}
		r.Err = e
	}
	return r
}
