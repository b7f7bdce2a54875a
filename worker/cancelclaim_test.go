package worker

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

func TestCancelClaim(t *testing.T) {
	enc := func(c claim) []byte { data, _ := json.Marshal(c); return data }
	tests := []struct {
		name       string
		stored     []byte
		current    int  // the run's current attempt
		redelivery bool // and whether it waits for the lost attempt's job
		ok         bool
		want       claim
	}{
		{"no claim", nil, 1, false, true, claim{Canceled: "not wanted"}},
		{"unreadable claim", []byte("{"), 1, false, true, claim{Canceled: "not wanted"}},
		{"attempt done, retry queued", enc(claim{Attempt: 1, Worker: "w0", Done: true, Job: 1, Losses: 2}), 2, false, true,
			claim{Attempt: 1, Worker: "w0", Done: true, Job: 1, Losses: 2, Canceled: "not wanted"}},
		// Workers no longer mark claims done when the ack goes through: the
		// server knows the attempt ended, since a later one is current.
		{"attempt ended unmarked, retry queued", enc(claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7}), 2, false, true,
			claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, Canceled: "not wanted"}},
		{"held by a worker", enc(claim{Attempt: 1, Worker: "w0", Job: 1}), 1, false, false, claim{}},
		{"held by a worker the server has not heard of yet", enc(claim{Attempt: 2, Worker: "w0", Job: 1}), 1, false, false, claim{}},
		{"lost attempt before a redelivery", enc(claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7}), 2, true, false, claim{}},
		{"older than the lost attempt", enc(claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7}), 3, true, true,
			claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, Canceled: "not wanted"}},
		// Its worker reported the attempt's end and gave the job back: no
		// one holds it until the next worker's claim replaces this one.
		{"handed back, redelivery queued", enc(claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, HandedBack: true}), 2, true, true,
			claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, HandedBack: true, Canceled: "not wanted"}},
		{"handed back, its end not yet applied", enc(claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, HandedBack: true}), 1, false, true,
			claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, HandedBack: true, Canceled: "not wanted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, ok := CancelClaim(tt.stored, "not wanted", tt.current, tt.redelivery)
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			var got claim
			if err := json.Unmarshal(next, &got); err != nil {
				t.Fatal(err)
			}
			if !got.Time.Equal(tt.want.Time) {
				t.Fatalf("time changed: %v", got.Time)
			}
			got.Time, tt.want.Time = tt.want.Time, got.Time
			if got != tt.want {
				t.Fatalf("claim %+v, want %+v", got, tt.want)
			}
		})
	}
}

// runClaimed runs one delivery of j on a worker with claims cl and returns
// the events it reported.
func runClaimed(t *testing.T, j jobs.Job, cl Claims, rep *fakeReporter, rt Runtime) []jobs.Event {
	t.Helper()
	src := &queueSource{leases: make(chan *queueLease, 1)}
	w := New("w1", "default", src, rt, rep, WithClaims(cl))
	if h, ok := cl.(*hookedClaims); ok {
		h.w = w
	}
	runLease(w, src, &queueLease{src: src, job: j, acked: make(chan struct{})})
	rep.mu.Lock()
	defer rep.mu.Unlock()
	return append([]jobs.Event(nil), rep.events...)
}

// runLease runs w until it has acked or handed back l, delivered by src.
func runLease(w *Worker, src *queueSource, l *queueLease) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	src.leases <- l
	<-l.acked
	cancel()
	<-done
}

// A run stopped while queued has the stop in its claim: the worker that
// takes its job reports it canceled without running it, and without asking
// the cancel bucket. A first claim asks nobody either.
func TestStopInClaim(t *testing.T) {
	never := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		t.Error("the runtime ran a stopped run")
		return exited(0), nil
	})
	t.Run("stopped while queued", func(t *testing.T) {
		cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
		cl.data["r"], _ = CancelClaim(nil, "not wanted", 1, false)
		cl.rev["r"] = 1
		rep := &fakeReporter{}
		evs := runClaimed(t, job("r"), cl, rep, never)
		if len(evs) != 1 || evs[0].Status != jobs.StatusCanceled || evs[0].StopCode != jobs.StopUserInitiated ||
			evs[0].StoppedReason != "not wanted" {
			t.Fatalf("events %+v, want one CANCELED: not wanted", evs)
		}
		if rep.asked != 0 {
			t.Errorf("asked the cancel bucket %d times", rep.asked)
		}
		if c := cl.get("r"); !c.Done || c.Attempt != 1 {
			t.Errorf("claim after: %+v, want attempt 1 done", c)
		}
	})
	t.Run("stopped after a failed attempt", func(t *testing.T) {
		cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
		done, _ := json.Marshal(claim{Attempt: 1, Worker: "w0", Done: true, Job: 1})
		cl.data["r"], _ = CancelClaim(done, "enough", 2, false)
		cl.rev["r"] = 2
		j := job("r")
		j.Attempt = 2
		evs := runClaimed(t, j, cl, &fakeReporter{}, never)
		if len(evs) != 1 || evs[0].Status != jobs.StatusCanceled || evs[0].Attempt != 2 {
			t.Fatalf("events %+v, want attempt 2 CANCELED", evs)
		}
	})
	t.Run("late redelivery of the attempt before the stop", func(t *testing.T) {
		// Attempt 1 ended and a retry waited when the user stopped the run;
		// a late delivery of attempt 1's job is stale, not the stop: it
		// reports nothing, and the claim keeps the stop for attempt 2.
		cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
		done, _ := json.Marshal(claim{Attempt: 1, Worker: "w0", Done: true, Job: 1})
		cl.data["r"], _ = CancelClaim(done, "enough", 2, false)
		cl.rev["r"] = 2
		if evs := runClaimed(t, job("r"), cl, &fakeReporter{}, never); len(evs) != 0 {
			t.Fatalf("events %+v for a late delivery of an ended attempt, want none", evs)
		}
		if c := cl.get("r"); c.Canceled != "enough" || c.Attempt != 1 {
			t.Fatalf("claim after the late delivery: %+v, want the stop kept", c)
		}
	})
	t.Run("stopped after its worker handed the job back", func(t *testing.T) {
		// The server found no one holding the job (the claim handed back)
		// and freed the run's pool slot at once: whoever takes the job
		// next must not run it, even without asking the cancel bucket.
		cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
		back, _ := json.Marshal(claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, HandedBack: true, Losses: 1})
		cl.data["r"], _ = CancelClaim(back, "not wanted", 2, true)
		cl.rev["r"] = 2
		rep := &fakeReporter{}
		evs := runClaimed(t, job("r"), cl, rep, never)
		if len(evs) != 1 || evs[0].Status != jobs.StatusCanceled || evs[0].Attempt != 2 || evs[0].StoppedReason != "not wanted" {
			t.Fatalf("events %+v, want attempt 2 CANCELED: not wanted", evs)
		}
		if rep.asked != 0 {
			t.Errorf("asked the cancel bucket %d times", rep.asked)
		}
		if c := cl.get("r"); !c.Done || c.Attempt != 2 || c.Losses != 1 {
			t.Errorf("claim after: %+v, want attempt 2 done, its losses kept", c)
		}
	})
	t.Run("first claim", func(t *testing.T) {
		cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
		rep := &fakeReporter{}
		evs := runClaimed(t, job("r"), cl, rep, fakeRuntime(func(context.Context, *Task) (*Result, error) { return exited(0), nil }))
		if evs[len(evs)-1].Status != jobs.StatusSucceeded || rep.asked != 0 {
			t.Fatalf("events %+v, asked %d: want SUCCEEDED without asking", evs, rep.asked)
		}
	})
	t.Run("stopped while its worker was lost", func(t *testing.T) {
		// The claim was held, so the stop went only to the lost worker;
		// the cancel bucket remembers it for the next one.
		cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
		cl.data["r"], _ = json.Marshal(claim{Attempt: 1, Worker: "w0", Job: 1})
		cl.rev["r"] = 1
		rep := &fakeReporter{canceled: map[string]string{"r": "not wanted"}}
		evs := runClaimed(t, job("r"), cl, rep, never)
		if last := evs[len(evs)-1]; last.Status != jobs.StatusCanceled || last.StoppedReason != "not wanted" || rep.asked != 1 {
			t.Fatalf("events %+v, asked %d: want CANCELED after asking once", evs, rep.asked)
		}
	})
}

// hookedClaims is memClaims that, once the first claim is stored, does what
// the server does for a stop that finds the claim held: it sends the
// worker the stop.
type hookedClaims struct {
	memClaims
	w    *Worker
	sent atomic.Bool
}

func (h *hookedClaims) PutClaim(ctx context.Context, id string, data []byte, rev uint64) (uint64, error) {
	r, err := h.memClaims.PutClaim(ctx, id, data, rev)
	if err == nil && rev == 0 && h.sent.CompareAndSwap(false, true) {
		if !h.w.Cancel(id, "stopped just after the claim") {
			panic("the stop found no run: the worker registers runs after claiming them")
		}
	}
	return r, err
}

// A stop the server sends right after the worker's claim is stored, before
// the worker went on, must stop the run: the worker skips the cancel
// bucket on a first claim, so the run is registered before it is claimed.
func TestStopRightAfterTheClaim(t *testing.T) {
	cl := &hookedClaims{memClaims: memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}}
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
		<-ctx.Done() // the stop ends the task
		return exited(143), nil
	})
	evs := runClaimed(t, job("r"), cl, &fakeReporter{}, rt)
	if last := evs[len(evs)-1]; last.Status != jobs.StatusCanceled || last.StoppedReason != "stopped just after the claim" {
		t.Fatalf("events %+v, want CANCELED", evs)
	}
}

// TestEndClaim: a run that ended by attempt 1's end marks its claim done,
// unless a worker holds a later attempt of its job (taken for a lost
// worker's), which the server then keeps the run's pool slot for.
func TestEndClaim(t *testing.T) {
	enc := func(c claim) []byte { data, _ := json.Marshal(c); return data }
	tests := []struct {
		name   string
		stored []byte
		next   []byte // nil: nothing to write
		later  *Claimed
	}{
		{"no claim", nil, nil, nil},
		{"unreadable claim", []byte("{"), nil, nil},
		{"the ending attempt's, unmarked", enc(claim{Attempt: 1, Worker: "w1", Job: 1, Seq: 7}),
			enc(claim{Attempt: 1, Worker: "w1", Job: 1, Seq: 7, Done: true}), nil},
		{"the ending attempt's, done", enc(claim{Attempt: 1, Worker: "w1", Job: 1, Done: true}), nil, nil},
		{"the ending attempt's, handed back", enc(claim{Attempt: 1, Worker: "w1", Job: 1, Seq: 7, HandedBack: true}),
			enc(claim{Attempt: 1, Worker: "w1", Job: 1, Seq: 7, HandedBack: true, Done: true}), nil},
		{"a later attempt a worker holds", enc(claim{Attempt: 2, Worker: "w2", Job: 1, Seq: 7, Losses: 1}),
			nil, &Claimed{Attempt: 2, Worker: "w2", Seq: 7}},
		{"a later attempt that ended", enc(claim{Attempt: 2, Worker: "w2", Job: 1, Done: true}), nil, nil},
		{"a later attempt handed back", enc(claim{Attempt: 2, Worker: "w2", Job: 1, HandedBack: true}),
			enc(claim{Attempt: 2, Worker: "w2", Job: 1, HandedBack: true, Done: true}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, later := EndClaim(tt.stored, 1)
			if string(next) != string(tt.next) {
				t.Errorf("next %s, want %s", next, tt.next)
			}
			if (later == nil) != (tt.later == nil) || later != nil && *later != *tt.later {
				t.Errorf("later %+v, want %+v", later, tt.later)
			}
		})
	}
}
