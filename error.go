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
	CodeUnitUnavailable Code = "UNIT_UNAVAILABLE"    // the order's unit cannot be reached now
	CodeNoUnitAvailable Code = "NO_UNIT_AVAILABLE"   // no unit could take a new order
	CodeInternal        Code = "SYSTEM_ERROR"        // a fault of ours; the caller may retry
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
