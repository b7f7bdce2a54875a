package worker

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// readCountingClaims is memClaims that counts its reads.
type readCountingClaims struct {
	*memClaims
	reads atomic.Int64
}

func (c *readCountingClaims) Claim(ctx context.Context, id string) ([]byte, uint64, error) {
	c.reads.Add(1)
	return c.memClaims.Claim(ctx, id)
}

// settingUpRuntime sets a task up as the Docker runtime does (its steps,
// then the containers start unless ctx ended first), taking setup to do
// so, and calls during between creating and starting.
type settingUpRuntime struct {
	setup   time.Duration
	during  func()
	started atomic.Bool
}

func (r *settingUpRuntime) Run(ctx context.Context, t *Task, _ LogSink) (*Result, error) {
	t.Setup(SetupImages)
	t.Setup(SetupCreating)
	if r.during != nil {
		r.during()
	}
	time.Sleep(r.setup)
	t.Setup(SetupStarting)
	if ctx.Err() != nil {
		return &Result{Containers: []jobs.ContainerResult{{Name: "main", Reason: "Stopped before start: " + context.Cause(ctx).Error()}}}, nil
	}
	r.started.Store(true)
	t.Started([]jobs.ContainerResult{{Name: "main"}})
	return exited(0), nil
}

// TestTakenOverWhileSettingUpStartsNothing: a worker slow to set an
// attempt up (a lease renewal's time or more) looks at the run's claim
// before its containers start; when another worker took the job over as
// the next attempt meanwhile (this one taken for lost), it starts nothing,
// reports nothing and leaves the job alone: the worker that took over
// reports the attempt lost and settles the job. One that is slow and
// still holds the claim runs as before; one that sets up promptly pays no
// read of the claim.
func TestTakenOverWhileSettingUpStartsNothing(t *testing.T) {
	const renewal = 50 * time.Millisecond
	tests := []struct {
		name      string
		setup     time.Duration
		takenOver bool
		wantStart bool
		wantReads int64
	}{
		{"slow, taken over", 4 * renewal, true, false, 1},
		{"slow, still its own", 4 * renewal, false, true, 1},
		// Within a renewal of the job no other worker can have it: no look.
		{"prompt", 0, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := &readCountingClaims{memClaims: &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}}
			rt := &settingUpRuntime{setup: tt.setup}
			if tt.takenOver {
				rt.during = func() { // worker w2 took this one for lost
					cl.mu.Lock()
					cl.data["r"] = []byte(`{"attempt":2,"worker":"w2","time":"2026-12-07T12:00:00Z","job":1}`)
					cl.rev["r"]++
					cl.mu.Unlock()
				}
			}
			rep := &fakeReporter{}
			src := &queueSource{leases: make(chan *queueLease, 1)}
			w := New("w1", "default", src, rt, rep, WithClaims(cl), WithLeaseRenewal(renewal))
			runWorker(t, w)
			l := &queueLease{src: src, job: job("r"), acked: make(chan struct{}), seq: 3}
			src.leases <- l
			waitFor(t, func() bool { return w.Stats().JobsTaken == 1 && len(w.Running()) == 0 })

			if rt.started.Load() != tt.wantStart {
				t.Errorf("containers started: %v, want %v", rt.started.Load(), tt.wantStart)
			}
			if n := cl.reads.Load(); n != tt.wantReads {
				t.Errorf("claim read %d times, want %d", n, tt.wantReads)
			}
			took := w.Stats().HandedBack.TakenOver
			if !tt.wantStart {
				time.Sleep(100 * time.Millisecond) // a report or ack that would come late
				select {
				case <-l.acked:
					t.Error("the job was acknowledged: it is the worker's that took over")
				default:
				}
				rep.mu.Lock()
				for _, ev := range rep.events {
					if ev.Status.Terminal() {
						t.Errorf("reported %+v: the attempt is the worker's that took over to report", ev)
					}
				}
				rep.mu.Unlock()
				if n := src.nakCount(); n != 0 {
					t.Errorf("job handed back %d times", n)
				}
				if took != 1 {
					t.Errorf("taken over %d times in the worker's stats, want 1", took)
				}
				return
			}
			select {
			case <-l.acked:
			case <-time.After(10 * time.Second):
				t.Fatal("the job was not acknowledged")
			}
			if ev := rep.last(); ev.Status != jobs.StatusSucceeded || ev.Attempt != 1 {
				t.Errorf("last event %+v, want attempt 1 SUCCEEDED", ev)
			}
			if took != 0 {
				t.Errorf("taken over %d times in the worker's stats, want 0", took)
			}
		})
	}
}
