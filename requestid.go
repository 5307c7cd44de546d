package tradeunit

import "context"

type requestIDKey struct{}

// WithRequestID returns a context carrying the id of the API request it
// serves. The proxy sets it from the Request-ID it answers with, the RPC
// layer carries it to the unit, and every log line about the request names
// it, so one merchant request can be followed through every process.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
