package proxy

import (
	"net/http"

	"tradeunit"
)

// Codes of the HTTP layer alone: no unit or store ever returns them.
const (
	codeTooLarge         tradeunit.Code = "REQUEST_ENTITY_TOO_LARGE"        // the body is over the limit
	codeMethodNotAllowed tradeunit.Code = "METHOD_NOT_ALLOWED"              // the path exists, the method does not (Allow says which)
	codeHeadersTooLarge  tradeunit.Code = "REQUEST_HEADER_FIELDS_TOO_LARGE" // the headers are over Config.MaxHeaderBytes
)

// httpStatus maps each error code to its HTTP status; the one place where
// the REST API decides them. Codes not listed are 500.
var httpStatus = map[tradeunit.Code]int{
	tradeunit.CodeParamError:       http.StatusBadRequest,
	tradeunit.CodeInvalidRequest:   http.StatusBadRequest,
	tradeunit.CodeUnauthorized:     http.StatusUnauthorized,
	tradeunit.CodePermissionDenied: http.StatusForbidden,
	tradeunit.CodeNotFound:         http.StatusNotFound,
	tradeunit.CodeOrderClosed:      http.StatusBadRequest,
	tradeunit.CodeOrderPaid:        http.StatusBadRequest,
	tradeunit.CodeNotEnough:        http.StatusForbidden,
	tradeunit.CodeOrderArchived:    http.StatusForbidden,
	tradeunit.CodeRefundExpired:    http.StatusForbidden,
	tradeunit.CodeOutTradeNoUsed:   http.StatusConflict,
	tradeunit.CodeOutRefundNoUsed:  http.StatusConflict,
	tradeunit.CodeOrderSuperseded:  http.StatusBadRequest,
	// The proxy follows the directory on this one; a leak is retryable.
	tradeunit.CodeAttemptSuperseded: http.StatusServiceUnavailable,
	tradeunit.CodeUnitUnavailable:   http.StatusServiceUnavailable,
	tradeunit.CodeNoUnitAvailable:   http.StatusServiceUnavailable,
	tradeunit.CodeQueryUnavailable:  http.StatusServiceUnavailable,
	codeTooLarge:                    http.StatusRequestEntityTooLarge,
	codeMethodNotAllowed:            http.StatusMethodNotAllowed,
	codeHeadersTooLarge:             http.StatusRequestHeaderFieldsTooLarge,
	tradeunit.CodeInternal:          http.StatusInternalServerError,
}

func statusOf(code tradeunit.Code) int {
	if s, ok := httpStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the body of every error response.
type errorBody struct {
	Code    tradeunit.Code `json:"code"`
	Message string         `json:"message"`
	Detail  errorDetail    `json:"detail"`
}

type errorDetail struct {
	RequestID string `json:"request_id"`
}
