package tradeunit

import "time"

// UnixMicros encodes a time as Unix microseconds, the precision units store,
// with 0 for the zero time: the domain's "unset" (e.g. the SuccessTime of an
// unpaid order). Storage and RPC share this encoding.
func UnixMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromUnixMicros decodes UnixMicros, in UTC so that decoded times compare
// equal to the UTC times the units produce; 0 is the zero time.
func FromUnixMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
