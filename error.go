package tradeunit

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes cross process
// boundaries unchanged: the RPC layer carries them and the REST layer maps
// each to one HTTP status. The names follow WeChat Pay API v3 where one fits.
type Code string

// Error codes callers branch on.
const (
	CodeParamError      Code = "PARAM_ERROR"         // malformed or out-of-range input
	CodeInvalidRequest  Code = "INVALID_REQUEST"     // well-formed but not allowed in the current state
	CodeUnauthorized    Code = "UNAUTHORIZED"        // missing or unknown API key
	CodeNotFound        Code = "RESOURCE_NOT_EXISTS" // no such order/refund for this merchant
	CodeOrderClosed     Code = "ORDER_CLOSED"        // the order was closed
	CodeOrderPaid       Code = "ORDER_PAID"          // the order was already paid (by another payment)
	CodeNotEnough       Code = "NOT_ENOUGH"          // refunds would exceed the paid amount
	CodeOutTradeNoUsed  Code = "OUT_TRADE_NO_USED"   // same out_trade_no, different order body
	CodeOutRefundNoUsed Code = "OUT_REFUND_NO_USED"  // same out_refund_no, different refund body
	CodeOrderSuperseded Code = "ORDER_SUPERSEDED"    // an orphan of a lost create, closed: another order has its out_trade_no
	CodeUnitUnavailable Code = "UNIT_UNAVAILABLE"    // the order's unit cannot be reached now
	CodeNoUnitAvailable Code = "NO_UNIT_AVAILABLE"   // no unit could take a new order
	CodeInternal        Code = "SYSTEM_ERROR"        // a fault of ours; the caller may retry
	// CodeAttemptSuperseded is a unit's refusal of a create whose
	// directory attempt was superseded (OrderService.SupersedeAttempt):
	// another attempt makes the key's order. The proxy follows the
	// directory; merchants never see it.
	CodeAttemptSuperseded Code = "ATTEMPT_SUPERSEDED"
	// CodeLeaseHeld: another process holds the lease asked for (an event
	// relay's); nothing was written.
	CodeLeaseHeld Code = "LEASE_HELD"
	// CodeQueryUnavailable: the non-real-time query store cannot answer
	// now; the live API (create, pay, close, refund, lookups) is not
	// affected.
	CodeQueryUnavailable Code = "QUERY_STORE_UNAVAILABLE"
	// CodePermissionDenied: the caller's certificate names a role that may
	// not make this call (a checker creating a merchant's order); nothing
	// was done. Internal only: merchants' calls never carry a certificate.
	CodePermissionDenied Code = "PERMISSION_DENIED"
	// CodeOrderArchived: the order's unit is cold (its data moved to cold
	// storage) and the cold policy no longer lets this order be paid or
	// closed; it can still be read, and refunded within the refund window.
	CodeOrderArchived Code = "ORDER_ARCHIVED"
	// CodeRefundExpired: the order was paid longer ago than the refund
	// window (WeChat Pay: one year); nothing was refunded.
	CodeRefundExpired Code = "REFUND_PERIOD_EXPIRED"
)

// Error is the error type of the domain. Code says what kind of failure it is;
// Message is safe to show to the caller; Op and Err keep the internal chain
// for logs.
type Error struct {
	Code    Code
	Message string
	Op      string // what was being done, e.g. "store.PayOrder"
	Err     error  // the underlying cause, if any
}

func (e *Error) Error() string {
	msg := string(e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure as SYSTEM_ERROR, keeping the cause for
// logs but not in the message shown to callers.
func Internal(op string, err error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Op: op, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the caller-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}

// IsCode reports whether err carries code.
func IsCode(err error, code Code) bool { return ErrorCode(err) == code }

// The two ways a change can end without a definite answer. Both are wrapped
// in a UNIT_UNAVAILABLE *Error (see NoAnswer and UnknownOutcome), so callers
// that only read codes still see "retry later"; the proxy tells them apart
// from a definite "nothing written" with OutcomeUnknown.
var (
	// ErrNoAnswer marks a call that got no answer: the callee could not be
	// reached, did not answer in time, or the connection was lost. A change
	// may or may not have been applied.
	ErrNoAnswer = errors.New("no answer")
	// ErrOutcomeUnknown marks a change whose own storage cannot tell
	// whether it committed: the connection died while COMMIT was on its way.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrStorageFrozen marks a write refused because the unit's storage is
	// frozen (paused while its data moves to other storage): nothing was
	// written, and the write may succeed on the unit's next storage. It is
	// wrapped in a UNIT_UNAVAILABLE *Error.
	ErrStorageFrozen = errors.New("storage frozen")
)

// NoAnswer returns the UNIT_UNAVAILABLE error of a call that got no answer.
func NoAnswer(op, message string, cause error) *Error {
	return &Error{Code: CodeUnitUnavailable, Message: message, Op: op, Err: fmt.Errorf("%w: %w", ErrNoAnswer, cause)}
}

// UnknownOutcome returns the UNIT_UNAVAILABLE error of a change that may
// have committed.
func UnknownOutcome(op string, cause error) *Error {
	return &Error{Code: CodeUnitUnavailable, Op: op, Err: fmt.Errorf("%w: %w", ErrOutcomeUnknown, cause),
		Message: "the storage connection was lost while committing: the change may or may not have been made; retry it (it is idempotent)"}
}

// Unavailable returns the UNIT_UNAVAILABLE error of a definite refusal:
// nothing was written, and the same call may succeed later.
func Unavailable(op, message string, cause error) *Error {
	return &Error{Code: CodeUnitUnavailable, Message: message, Op: op, Err: cause}
}

// Answered reports whether err is an answer of the callee, success
// included: anything but ErrNoAnswer.
func Answered(err error) bool { return !errors.Is(err, ErrNoAnswer) }

// OutcomeUnknown reports whether a change that returned err may have been
// applied: no answer came (ErrNoAnswer), or the answer was that the storage
// cannot tell (ErrOutcomeUnknown), or the failure is a fault of ours
// (SYSTEM_ERROR), after which nothing can be promised. A nil error and
// every other error are definite.
func OutcomeUnknown(err error) bool {
	return err != nil && (errors.Is(err, ErrNoAnswer) || errors.Is(err, ErrOutcomeUnknown) || ErrorCode(err) == CodeInternal)
}
