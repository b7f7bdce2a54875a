package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

var (
	errLeader  = errors.New("no meta leader")
	errStreams = errors.New("no streams")
	errDenied  = errors.New("denied")
)

// waitFor is a Wait.For: errLeader and errStreams pass on their own.
func waitFor(err error) string {
	switch {
	case errors.Is(err, errLeader):
		return "the leader"
	case errors.Is(err, errStreams):
		return "the streams"
	}
	return ""
}

// warning is one call of Wait.Warn, with the time since the wait began.
type warning struct {
	at   time.Duration
	what string
}

// TestWaitRetry: Retry tries again with a pause doubling from Min to Max,
// warns when what it waits for changes and every WarnEvery, returns at
// once a failure that waiting does not cure, and ends with ctx, also
// where the try failed because ctx ended. The clock is synctest's: no
// test waits for real time.
func TestWaitRetry(t *testing.T) {
	for _, c := range []struct {
		name     string
		fails    []error // the try's failures, in turn; then it succeeds
		min, max time.Duration
		want     error
		tries    []time.Duration // when each try began
		warnings []warning
	}{
		{
			name:  "ready at once",
			tries: []time.Duration{0},
		},
		{
			name:  "default backoff, warned every 5 s",
			fails: []error{errLeader, errLeader, errLeader, errLeader, errLeader, errLeader, errLeader, errLeader},
			// Pauses 0.25, 0.5, 1, 2, 4, 5, 5, 5 s.
			tries: []time.Duration{0, 250 * time.Millisecond, 750 * time.Millisecond, 1750 * time.Millisecond,
				3750 * time.Millisecond, 7750 * time.Millisecond, 12750 * time.Millisecond, 17750 * time.Millisecond,
				22750 * time.Millisecond},
			warnings: []warning{{0, "the leader"}, {7750 * time.Millisecond, "the leader"},
				{12750 * time.Millisecond, "the leader"}, {17750 * time.Millisecond, "the leader"}},
		},
		{
			name:  "warned when what changes",
			fails: []error{errLeader, errLeader, errStreams, errStreams, fmt.Errorf("stream: %w", errStreams)},
			min:   time.Second, max: time.Second,
			tries:    []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second},
			warnings: []warning{{0, "the leader"}, {2 * time.Second, "the streams"}},
		},
		{
			name:     "a failure waiting does not cure",
			fails:    []error{errLeader, errDenied},
			want:     errDenied,
			tries:    []time.Duration{0, 250 * time.Millisecond},
			warnings: []warning{{0, "the leader"}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var (
					tries    []time.Duration
					warnings []warning
				)
				w := Wait{For: waitFor, Min: c.min, Max: c.max, Warn: func(what string, err error) {
					if waitFor(err) != what {
						t.Errorf("warned of %q after %v", what, err)
					}
					warnings = append(warnings, warning{time.Since(start), what})
				}}
				err := w.Retry(t.Context(), func(context.Context) error {
					tries = append(tries, time.Since(start))
					if n := len(tries); n <= len(c.fails) {
						return c.fails[n-1]
					}
					return nil
				})
				if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
					t.Errorf("Retry = %v, want %v", err, c.want)
				}
				if fmt.Sprint(tries) != fmt.Sprint(c.tries) {
					t.Errorf("tried at %v, want %v", tries, c.tries)
				}
				if fmt.Sprint(warnings) != fmt.Sprint(c.warnings) {
					t.Errorf("warned %v, want %v", warnings, c.warnings)
				}
			})
		})
	}
}

// TestWaitRetryEndsWithCtx: a role stopped while it waits (SIGTERM)
// gets ctx's error from Retry at once, whether the stop comes during a
// pause or ends the try itself.
func TestWaitRetryEndsWithCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		time.AfterFunc(30*time.Second, cancel)
		err := Wait{For: waitFor}.Retry(ctx, func(context.Context) error { return errLeader })
		if !errors.Is(err, context.Canceled) || time.Since(start) != 30*time.Second {
			t.Errorf("Retry = %v after %v, want %v after 30s", err, time.Since(start), context.Canceled)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		// A failure that would end the wait, but caused by the stop.
		err := Wait{For: waitFor}.Retry(ctx, func(ctx context.Context) error {
			cancel()
			return fmt.Errorf("stream: %w", ctx.Err())
		})
		if err != context.Canceled {
			t.Errorf("Retry = %v, want %v", err, context.Canceled)
		}
	})
}
