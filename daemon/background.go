package daemon

import "context"

// Background is the work a program does until it is closed (a relay's
// publishing, a consumer's applying), with the context it runs under.
type Background struct {
	ctx  context.Context
	stop context.CancelFunc
	done chan struct{} // closed when run returned, with err
	err  error
}

// NewBackground returns a Background whose context ends at Stop.
func NewBackground() *Background {
	ctx, stop := context.WithCancel(context.Background())
	return &Background{ctx: ctx, stop: stop}
}

// Context ends when Stop is called: for what the work and its helpers
// (a storage's watch) run under.
func (b *Background) Context() context.Context { return b.ctx }

// Go runs run in a goroutine; call it once.
func (b *Background) Go(run func(ctx context.Context) error) {
	b.done = make(chan struct{})
	go func() { b.err = run(b.ctx); close(b.done) }()
}

// Wait blocks until ctx ends (nil) or the work returns by itself (its error).
func (b *Background) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-b.done:
		return b.err
	}
}

// Stop ends the context and waits for the work to return.
func (b *Background) Stop() {
	b.stop()
	if b.done != nil {
		<-b.done
	}
}
