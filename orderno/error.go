package orderno

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"tradeunit"
)

// The kinds of malformed order number, for errors.Is. Each is a
// *tradeunit.Error with CodeParamError, so tradeunit.ErrorCode classifies a
// ParseError as PARAM_ERROR without knowing this package, and
// tradeunit.ErrorMessage gives a caller a message that does not echo input.
var (
	// ErrLength means the input has the wrong number of digits.
	ErrLength error = paramError("order number has the wrong number of digits")
	// ErrNotDigit means the input has a character other than the ASCII
	// digits 0-9, including signs, spaces and non-ASCII digits.
	ErrNotDigit error = paramError("order number must contain only the digits 0-9")
	// ErrChecksum means the check digit does not match: most likely a
	// mistyped digit or two swapped neighbouring digits.
	ErrChecksum error = paramError("order number check digit does not match; a digit may be mistyped")
	// ErrVersion means the number is intact but of a format version this
	// code does not know.
	ErrVersion error = paramError("order number has an unknown format version")
	// ErrField means the number is intact but a field is out of range, such
	// as unit number 00000.
	ErrField error = paramError("order number has a field out of range")
)

func paramError(msg string) *tradeunit.Error {
	return &tradeunit.Error{Code: tradeunit.CodeParamError, Message: msg}
}

// ParseError is the error of Parse and UnitOf. Its message is meant for an
// API caller: it names the input and what is wrong with it, and nothing of
// this code's internals.
type ParseError struct {
	// Input is the rejected input. It is a copy, so that Parse does not
	// keep its argument alive or force it onto the heap.
	Input string
	// Err is ErrLength, ErrNotDigit, ErrChecksum, ErrVersion or ErrField.
	Err error

	detail string // completes "order number "…" "
}

func newError(s string, err error, detail string) *ParseError {
	return &ParseError{Input: strings.Clone(s), Err: err, detail: detail}
}

// maxQuoted bounds how much of the input a message shows, so that a huge or
// hostile input cannot flood a log line or a response.
const maxQuoted = 40

// Error returns a message such as
// `order number "123" must be 28 digits, got 3`.
func (e *ParseError) Error() string {
	detail := e.detail
	if detail == "" {
		detail = "is invalid"
	}
	in := e.Input
	if len(in) <= maxQuoted {
		return "order number " + strconv.Quote(in) + " " + detail
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(in[cut]) {
		cut--
	}
	return "order number " + strconv.Quote(in[:cut]) + "... " + detail
}

// Unwrap returns Err, for errors.Is.
func (e *ParseError) Unwrap() error { return e.Err }

// Code returns tradeunit.CodeParamError: a malformed order number is always
// the caller's to fix.
func (e *ParseError) Code() tradeunit.Code { return tradeunit.CodeParamError }

// AsParamError returns a malformed order number's error as the PARAM_ERROR
// that API callers see: the detailed message, with the parse error kept in
// the chain (errors.Is(err, ErrChecksum) still holds).
func AsParamError(err error) error {
	if err == nil {
		return nil
	}
	return &tradeunit.Error{Code: tradeunit.CodeParamError, Message: err.Error(), Err: err}
}
