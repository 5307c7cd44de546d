package proxy

import (
	"net/http"

	"tradeunit"
)

// httpStatus maps each error code to its HTTP status; the one place where
// the REST API decides them. Codes not listed are 500.
var httpStatus = map[tradeunit.Code]int{
	tradeunit.CodeParamError:      http.StatusBadRequest,
	tradeunit.CodeInvalidRequest:  http.StatusBadRequest,
	tradeunit.CodeUnauthorized:    http.StatusUnauthorized,
	tradeunit.CodeNotFound:        http.StatusNotFound,
	tradeunit.CodeOrderClosed:     http.StatusBadRequest,
	tradeunit.CodeOrderPaid:       http.StatusBadRequest,
	tradeunit.CodeNotEnough:       http.StatusForbidden,
	tradeunit.CodeOutTradeNoUsed:  http.StatusConflict,
	tradeunit.CodeOutRefundNoUsed: http.StatusConflict,
	tradeunit.CodeOrderSuperseded: http.StatusBadRequest,
	// The proxy follows the directory on this one; a leak is retryable.
	tradeunit.CodeAttemptSuperseded: http.StatusServiceUnavailable,
	tradeunit.CodeUnitUnavailable:   http.StatusServiceUnavailable,
	tradeunit.CodeNoUnitAvailable:   http.StatusServiceUnavailable,
	tradeunit.CodeQueryUnavailable:  http.StatusServiceUnavailable,
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
