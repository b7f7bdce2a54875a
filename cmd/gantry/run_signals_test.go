package main

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// A second Ctrl-C detaches only once the first one's stop request has been
// answered: detaching ends the process, and a request still on its way
// would be lost, leaving the run running.
func TestSecondSignalWaitsForTheStopRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stopErr error
		answer  bool // the stop request is answered at all
		want    string
	}{
		{"answered", nil, true, "detached; the run goes on stopping: gantry describe r1"},
		{"refused", errors.New("run r1: not found"), true, "detached; the run was not stopped: run r1: not found"},
		{"unanswered", nil, false, "detached; the stop request was not answered within 5s: gantry stop r1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sigs := make(chan os.Signal, 2)
				sigs <- os.Interrupt
				sigs <- os.Interrupt // the second comes before the stop is answered
				release := make(chan struct{})
				defer close(release) // the unanswered request's goroutine
				var stops atomic.Int32
				stop := func() error {
					stops.Add(1)
					<-release
					return tc.stopErr
				}
				detached := make(chan struct{})
				var stderr strings.Builder
				done := make(chan struct{})
				go func() {
					handleSignals(sigs, &stderr, "r1", stop, func() { close(detached) }, stopSendWait)
					close(done)
				}()
				synctest.Wait() // both signals taken, the stop request sent
				select {
				case <-detached:
					t.Fatal("detached before the stop request was answered")
				default:
				}
				if tc.answer {
					release <- struct{}{}
				}
				<-done // for the unanswered request, once stopSendWait has passed
				select {
				case <-detached:
				default:
					t.Fatal("returned without detaching")
				}
				if n := stops.Load(); n != 1 {
					t.Errorf("the run was stopped %d times, want 1", n)
				}
				out := stderr.String()
				if !strings.Contains(out, "gantry: stopping run r1 (Ctrl-C again to detach)\n") || !strings.Contains(out, tc.want) {
					t.Errorf("stderr %q, want %q", out, tc.want)
				}
			})
		})
	}
}
