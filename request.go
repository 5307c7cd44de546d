package tradeunit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// CreateOrderRequest asks a unit to create an order. The merchant comes from
// the caller's credentials, never from the request body.
type CreateOrderRequest struct {
	Mchid       string
	OutTradeNo  string
	Description string
	Amount      Amount
	// AbandonedUnits are units an earlier attempt at this create was sent to
	// with an unknown outcome; they are recorded in the order (see Order).
	AbandonedUnits []UnitID
	// Attempt is the directory attempt making the order (0: none). A unit
	// refuses an attempt that was superseded (ATTEMPT_SUPERSEDED).
	Attempt uint64
}

// Fingerprint identifies the request's body: the same merchant order
// number with another fingerprint is another order (OUT_TRADE_NO_USED).
// Call it after Normalize.
func (r *CreateOrderRequest) Fingerprint() string {
	return fingerprint(r.Description, strconv.FormatInt(r.Amount.Total, 10), r.Amount.Currency)
}

// Fingerprint identifies the refund request's body (see
// CreateOrderRequest.Fingerprint). The currency is left out: a refund's is
// its order's, whether the request names it or not.
func (r *CreateRefundRequest) Fingerprint() string {
	return fingerprint(r.OrderNo, strconv.FormatInt(r.Amount.Refund, 10), r.Reason)
}

// fingerprint is a hash of the fields, each length-prefixed so that no two
// field lists collide.
func fingerprint(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Normalize fills defaults; call it before Validate.
func (r *CreateOrderRequest) Normalize() {
	if r.Amount.Currency == "" {
		r.Amount.Currency = DefaultCurrency
	}
}

// Validate checks every field and returns a PARAM_ERROR naming the first bad one.
func (r *CreateOrderRequest) Validate() error {
	if err := ValidateMchid(r.Mchid); err != nil {
		return err
	}
	if err := ValidateOutTradeNo(r.OutTradeNo); err != nil {
		return err
	}
	if err := validateText("description", r.Description, 1, 127); err != nil {
		return err
	}
	if err := validateMoney("amount.total", r.Amount.Total); err != nil {
		return err
	}
	if err := validateCurrency("amount.currency", r.Amount.Currency); err != nil {
		return err
	}
	for _, u := range r.AbandonedUnits {
		if err := u.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// PayOrderRequest records a payment of an order.
type PayOrderRequest struct {
	Mchid     string
	OrderNo   string
	PaymentID string // the payment channel's id; paying twice with one id is idempotent
}

// Validate checks every field except the order number, which the router parses.
func (r *PayOrderRequest) Validate() error {
	if err := ValidateMchid(r.Mchid); err != nil {
		return err
	}
	return validateToken("payment_id", r.PaymentID, 1, 64, "_-")
}

// CreateRefundRequest asks for a refund of part or all of a paid order.
type CreateRefundRequest struct {
	Mchid       string
	OrderNo     string
	OutRefundNo string
	Amount      RefundAmount
	Reason      string
}

// Validate checks every field except the order number, which the router
// parses. An empty currency is allowed: the refund takes its order's.
func (r *CreateRefundRequest) Validate() error {
	if err := ValidateMchid(r.Mchid); err != nil {
		return err
	}
	if err := ValidateOutRefundNo(r.OutRefundNo); err != nil {
		return err
	}
	if err := validateMoney("amount.refund", r.Amount.Refund); err != nil {
		return err
	}
	if r.Amount.Currency != "" {
		if err := validateCurrency("amount.currency", r.Amount.Currency); err != nil {
			return err
		}
	}
	return validateText("reason", r.Reason, 0, 80)
}

// ValidateMchid checks a merchant id.
func ValidateMchid(s string) error { return validateToken("mchid", s, 1, 32, "_-") }

// ValidateOutTradeNo checks a merchant's order number.
func ValidateOutTradeNo(s string) error { return validateToken("out_trade_no", s, 6, 32, "_-|*") }

// ValidateOutRefundNo checks a merchant's refund number.
func ValidateOutRefundNo(s string) error {
	return validateToken("out_refund_no", s, 1, 64, "_-|*@")
}

// validateToken accepts ASCII letters, digits and the given punctuation.
func validateToken(field, s string, minLen, maxLen int, punct string) error {
	if len(s) < minLen || len(s) > maxLen {
		return Errorf(CodeParamError, "%s must be %d to %d characters, got %d", field, minLen, maxLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		for j := 0; !ok && j < len(punct); j++ {
			ok = c == punct[j]
		}
		if !ok {
			return Errorf(CodeParamError, "%s may hold only letters, digits and %q, got %q", field, punct, s)
		}
	}
	return nil
}

// validateText accepts printable UTF-8 of a bounded number of characters.
func validateText(field, s string, minRunes, maxRunes int) error {
	if !utf8.ValidString(s) {
		return Errorf(CodeParamError, "%s must be valid UTF-8", field)
	}
	n := utf8.RuneCountInString(s)
	if n < minRunes || n > maxRunes {
		return Errorf(CodeParamError, "%s must be %d to %d characters, got %d", field, minRunes, maxRunes, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Errorf(CodeParamError, "%s must not contain control characters", field)
		}
	}
	return nil
}
