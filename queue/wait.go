package queue

import (
	"context"
	"time"
)

// WarnEvery is how often a role waiting for NATS or JetStream says so
// again, besides when what it waits for changes.
const WarnEvery = 5 * time.Second

// Wait is how a long-running role (server, worker) waits for what is not
// ready yet as a NATS deployment comes up: NATS accepting connections, a
// JetStream cluster electing its leader, the streams a server makes.
type Wait struct {
	// For says what a failure of the try waits for, "" for a failure
	// that waiting does not cure: Retry returns that one at once.
	For func(err error) string
	// Warn says that the role waits for what, after the failure err. It
	// is called at the first failure, whenever what changes, and every
	// WarnEvery while it does not.
	Warn func(what string, err error)
	// Min and Max bound the pause between tries, which doubles from Min
	// up to Max: 250 ms and 5 s where they are 0.
	Min, Max time.Duration
}

// Retry calls try until it succeeds (nil), fails in a way waiting does
// not cure (that error), or ctx ends (ctx's error, also when try failed
// because ctx ended: a role stopped while it waits stops cleanly).
func (w Wait) Retry(ctx context.Context, try func(context.Context) error) error {
	pause, most := w.Min, w.Max
	if pause <= 0 {
		pause = 250 * time.Millisecond
	}
	if most <= 0 {
		most = 5 * time.Second
	}
	var (
		said   string
		warned time.Time
	)
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		what := w.For(err)
		if what == "" {
			return err
		}
		if now := time.Now(); what != said || now.Sub(warned) >= WarnEvery {
			if w.Warn != nil {
				w.Warn(what, err)
			}
			said, warned = what, now
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, most)
	}
}
