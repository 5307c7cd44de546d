package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"tradeunit"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every error the unit's
// business logic returns. A status carrying an ErrorInfo of this domain is a
// definite answer from the unit; any other status is a transport failure.
const ErrorDomain = "tradeunit"

// outcomeKey is the ErrorInfo metadata key that carries
// tradeunit.ErrOutcomeUnknown across the wire: the unit answered, but its
// storage cannot tell whether the change committed.
const outcomeKey, outcomeUnknown = "outcome", "unknown"

// codeTable is the one mapping between domain codes and gRPC codes. The
// domain code itself travels in the ErrorInfo reason, so the gRPC code is
// only for generic gRPC tooling (logs, metrics, interceptors); several domain
// codes share one gRPC code and the client never needs the reverse mapping.
var codeTable = []struct {
	domain tradeunit.Code
	grpc   codes.Code
}{
	{tradeunit.CodeParamError, codes.InvalidArgument},
	{tradeunit.CodeUnauthorized, codes.Unauthenticated},
	{tradeunit.CodePermissionDenied, codes.PermissionDenied},
	{tradeunit.CodeNotFound, codes.NotFound},
	{tradeunit.CodeInvalidRequest, codes.FailedPrecondition},
	{tradeunit.CodeOrderClosed, codes.FailedPrecondition},
	{tradeunit.CodeOrderPaid, codes.FailedPrecondition},
	{tradeunit.CodeNotEnough, codes.FailedPrecondition},
	{tradeunit.CodeOrderArchived, codes.FailedPrecondition},
	{tradeunit.CodeRefundExpired, codes.FailedPrecondition},
	{tradeunit.CodeOutTradeNoUsed, codes.AlreadyExists},
	{tradeunit.CodeOutRefundNoUsed, codes.AlreadyExists},
	{tradeunit.CodeOrderSuperseded, codes.FailedPrecondition},
	{tradeunit.CodeAttemptSuperseded, codes.Aborted},
	{tradeunit.CodeLeaseHeld, codes.Aborted},
	{tradeunit.CodeQueryUnavailable, codes.Unavailable},
	{tradeunit.CodeUnitUnavailable, codes.Unavailable},
	{tradeunit.CodeNoUnitAvailable, codes.Unavailable},
	{tradeunit.CodeInternal, codes.Internal},
}

var grpcCodes = func() map[tradeunit.Code]codes.Code {
	m := make(map[tradeunit.Code]codes.Code, len(codeTable))
	for _, row := range codeTable {
		m[row.domain] = row.grpc
	}
	return m
}()

// grpcCode returns the gRPC code of a domain code. A code this table does not
// know yet (added to the domain later) is Internal on the wire, but its exact
// value still reaches the client through the ErrorInfo reason.
func grpcCode(c tradeunit.Code) codes.Code {
	if gc, ok := grpcCodes[c]; ok {
		return gc
	}
	return codes.Internal
}

// toStatus turns an error returned by the unit's OrderService into the
// status error a handler returns. Only the code and the caller-safe message
// cross the wire: the Op/Err chain of a SYSTEM_ERROR can hold SQL or
// addresses, so it is logged to log, on the server, instead.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	// The caller gave up (deadline or cancel) and the failure is that: the
	// unit reached no definite outcome, so answer like the transport would,
	// without ErrorInfo, rather than as a SYSTEM_ERROR the proxy would read
	// as a definite answer.
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return status.FromContextError(err).Err()
	}
	code := tradeunit.ErrorCode(err)
	if code == tradeunit.CodeInternal {
		log.ErrorContext(ctx, "rpc: internal error", "method", method, "request_id", tradeunit.RequestID(ctx), "err", err)
	}
	st := status.New(grpcCode(code), tradeunit.ErrorMessage(err))
	info := &errdetails.ErrorInfo{Reason: string(code), Domain: ErrorDomain}
	if errors.Is(err, tradeunit.ErrOutcomeUnknown) {
		info.Metadata = map[string]string{outcomeKey: outcomeUnknown}
	}
	withInfo, derr := st.WithDetails(info)
	if derr != nil {
		// Only possible for codes.OK, which grpcCode never returns; without
		// the detail the client would see a transport failure, so say so.
		log.ErrorContext(ctx, "rpc: cannot attach error details", "method", method, "err", derr)
		return st.Err()
	}
	return withInfo.Err()
}

// fromStatus turns an error returned by a gRPC call into the error the
// client returns. A status with a tradeunit ErrorInfo is the unit's answer
// and becomes the same *tradeunit.Error the unit returned (code, message,
// and whether the outcome is unknown). Anything else, including the
// caller's own deadline or cancellation, becomes UNIT_UNAVAILABLE marked
// with tradeunit.ErrNoAnswer.
func fromStatus(method string, err error) error {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain && info.GetReason() != "" {
			e := &tradeunit.Error{Code: tradeunit.Code(info.GetReason()), Message: st.Message()}
			if info.GetMetadata()[outcomeKey] == outcomeUnknown {
				e.Err = tradeunit.ErrOutcomeUnknown
			}
			return e
		}
	}
	return transportError(method, st.Code(), err)
}

// transportError builds the error of a call that did not reach a definite
// outcome. The message names only the gRPC code because it may be shown to
// API callers; the full cause (addresses, dial errors) stays in Err for logs.
func transportError(method string, code codes.Code, err error) error {
	return tradeunit.NoAnswer("rpc."+method, fmt.Sprintf("unit unreachable: %v", code), err)
}
