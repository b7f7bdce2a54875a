package worker

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// leaseChan hands out the leases sent on it.
type leaseChan chan Lease

func (s leaseChan) Next(ctx context.Context) (Lease, error) {
	select {
	case l := <-s:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nakLease is a fakeLease that tells of its nak.
type nakLease struct {
	fakeLease
	naked chan time.Duration
}

func (l *nakLease) Nak(d time.Duration) error { l.naked <- d; return nil }

// loggingRuntime starts the task, prints to its logs, and ends it with
// exit 0 once release is closed.
type loggingRuntime struct{ release chan struct{} }

func (r loggingRuntime) Run(ctx context.Context, t *Task, logs LogSink) (*Result, error) {
	t.Started(nil)
	logs.Line("main", "stdout", []byte("hello"))
	logs.Piece("main", "stderr", []byte("ab"))
	logs.Line("main", "stderr", []byte("cd"))
	<-r.release
	return exited(0), nil
}

// TestStatsCountAnAttempt: while an attempt runs the worker's stats show
// its slot and its running task; once it ended, its end, and the lines of
// output passed to its log stream throughout.
func TestStatsCountAnAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := make(leaseChan, 1)
		rt := loggingRuntime{release: make(chan struct{})}
		w := New("w1", "default", src, rt, &fakeReporter{}, WithSlots(3))
		runWorker(t, w)
		lease := &fakeLease{job: job("r1"), delivered: 1, acked: make(chan struct{})}
		src <- lease
		synctest.Wait() // the task runs, its output passed on
		want := Stats{Slots: 3, SlotsInUse: 1, TasksRunning: 1, JobsTaken: 1, TasksStarted: 1, LogLines: 2, LogBytes: 9}
		if got := w.Stats(); got != want {
			t.Errorf("while the task runs: %+v\nwant %+v", got, want)
		}
		close(rt.release)
		<-lease.acked
		synctest.Wait() // its slot given back
		want.SlotsInUse, want.TasksRunning, want.AttemptsEnded.Succeeded = 0, 0, 1
		if got := w.Stats(); got != want {
			t.Errorf("after the task ended: %+v\nwant %+v", got, want)
		}
	})
}

// TestStatsCountJobsHandedBack: a job that does not fit now, and one that
// never fits this worker, go back to the queue, each counted by why.
func TestStatsCountJobsHandedBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		withMemory := func(id string, mib int) jobs.Job {
			j := job(id)
			j.Spec.Task.ContainerDefinitions[0].Memory = mib
			return j
		}
		src := make(leaseChan, 1)
		rt := loggingRuntime{release: make(chan struct{})}
		w := New("w1", "default", src, rt, &fakeReporter{}, WithCapacity(0, 1024))
		runWorker(t, w)
		first := &fakeLease{job: withMemory("big", 768), delivered: 1, acked: make(chan struct{})}
		src <- first
		synctest.Wait()
		later := &nakLease{fakeLease: fakeLease{job: withMemory("later", 512), delivered: 1}, naked: make(chan time.Duration, 1)}
		src <- later
		<-later.naked
		never := &nakLease{fakeLease: fakeLease{job: withMemory("never", 2048), delivered: 1}, naked: make(chan time.Duration, 1)}
		src <- never
		<-never.naked
		synctest.Wait()
		got := w.Stats()
		if want := (HandBacks{Busy: 1, TooLarge: 1}); got.HandedBack != want || got.JobsTaken != 3 || got.TasksRunning != 1 {
			t.Errorf("stats %+v; want handed back %+v, 3 jobs taken, 1 task running", got, want)
		}
		close(rt.release)
		<-first.acked
	})
}
