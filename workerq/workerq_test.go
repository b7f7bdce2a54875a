package workerq

import (
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestJobAttempt: a retry publishes a job of its own; a redelivery runs
// the job of the attempt it replaces, so the run still waits for that one.
func TestJobAttempt(t *testing.T) {
	at := func(n int, redelivery bool) jobs.Attempt { return jobs.Attempt{Attempt: n, Redelivery: redelivery} }
	for _, c := range []struct {
		attempts []jobs.Attempt
		want     int
	}{
		{nil, 0},
		{[]jobs.Attempt{at(1, false)}, 1},
		{[]jobs.Attempt{at(1, false), at(2, false)}, 2},
		{[]jobs.Attempt{at(1, false), at(2, true)}, 1},
		{[]jobs.Attempt{at(1, false), at(2, true), at(3, true)}, 1},
		{[]jobs.Attempt{at(1, false), at(2, true), at(3, false), at(4, true)}, 3},
	} {
		if got := JobAttempt(&jobs.Run{Attempts: c.attempts}); got != c.want {
			t.Errorf("%+v: %d, want %d", c.attempts, got, c.want)
		}
	}
}
