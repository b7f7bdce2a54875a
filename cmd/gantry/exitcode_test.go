package main

import (
	"bytes"
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
		{"interrupted, the signal as the cause", signaled, &stoppedWaiting{cause: signal}, exitInterrupted},
		{"a command's own code", interrupted, &exitError{code: 3, err: canceled}, 3},
	} {
		if got := exitCode(c.ctx, c.err, io.Discard); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}

// TestStoppedWaitingReadsForEverySignal: gantry wait ended by a signal
// says which in a sentence that reads for each ("terminated signal
// received: stopped waiting" did not), and exits 130.
func TestStoppedWaitingReadsForEverySignal(t *testing.T) {
	for cause, want := range map[string]string{ // signal.NotifyContext's causes
		"interrupt signal received":  "gantry: stopped waiting (interrupt); the runs go on\n",
		"terminated signal received": "gantry: stopped waiting (terminated); the runs go on\n",
	} {
		ctx, stop := context.WithCancelCause(context.Background())
		stop(errors.New(cause))
		var errb bytes.Buffer
		if code := exitCode(ctx, &stoppedWaiting{cause: context.Cause(ctx)}, &errb); code != exitInterrupted || errb.String() != want {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", cause, code, errb.String(), exitInterrupted, want)
		}
	}
}
