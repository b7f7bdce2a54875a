package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// TestExitCodeOfAnInterrupt: a command that ends because a signal canceled
// its context (Ctrl-C on gantry logs -f or gantry wait) exits 130, as a
// shell reports a program Ctrl-C ended, not 125 with "context canceled";
// the same error without a signal is gantry failing, and an exit code a
// command chose stands.
func TestExitCodeOfAnInterrupt(t *testing.T) {
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := fmt.Errorf("follow logs of 01jf3: %w", context.Canceled)
	signal := errors.New("interrupt signal received") // what signal.NotifyContext gives as its cause
	signaled, cancelSignaled := context.WithCancelCause(context.Background())
	cancelSignaled(signal)
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"no error", interrupted, nil, 0},
		{"interrupted", interrupted, canceled, exitInterrupted},
		{"canceled without a signal", context.Background(), canceled, exitGantryError},
		{"another error after a signal", interrupted, errors.New("nats: no servers available"), exitGantryError},
		{"interrupted, the signal as the cause", signaled, fmt.Errorf("%w: stopped waiting; the runs go on", signal), exitInterrupted},
		{"a command's own code", interrupted, &exitError{code: 3, err: canceled}, 3},
	} {
		if got := exitCode(c.ctx, c.err, io.Discard); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}
