package tradeunit

// MaxAmount bounds every amount, in the smallest currency unit (10^11 fen is
// one billion yuan): far above any real order, far below int64 overflow even
// when many refunds are summed.
const MaxAmount int64 = 100_000_000_000

// DefaultCurrency is used when a request names none.
const DefaultCurrency = "CNY"

// Amount is an order's total in the smallest currency unit (fen for CNY).
type Amount struct {
	Total    int64
	Currency string
}

// RefundAmount is the amount of one refund.
type RefundAmount struct {
	Refund   int64
	Currency string
}

func validateMoney(field string, v int64) error {
	if v < 1 || v > MaxAmount {
		return Errorf(CodeParamError, "%s must be an integer between 1 and %d (smallest currency unit), got %d", field, MaxAmount, v)
	}
	return nil
}

func validateCurrency(field, c string) error {
	if len(c) != 3 || !isUpper(c[0]) || !isUpper(c[1]) || !isUpper(c[2]) {
		return Errorf(CodeParamError, "%s must be a three-letter ISO 4217 code such as CNY, got %q", field, c)
	}
	return nil
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }
