package jobs

import (
	"strings"
	"testing"
	"time"
)

// TestPoolValidation: a submission's pool and a stage's are checked with
// the rest, each problem naming its field path; slots are 0 to the bound.
func TestPoolValidation(t *testing.T) {
	req := SubmitRequest{Cluster: "bad cluster", Pool: "ware house"}
	err := req.Validate()
	for _, want := range []string{`cluster: "bad cluster"`, `pool: "ware house": a pool name is letters, digits, '-' and '_', at most 255`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err := (SubmitRequest{Pool: "warehouse"}).Validate(); err != nil {
		t.Errorf("a good pool: %v", err)
	}
	p, err := DecodePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, pool: warehouse}, {name: b, taskDefinition: t, arraySize: 2, pool: 'x/y'}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Stages[0].Pool != "warehouse" {
		t.Errorf("stage pool %q", p.Stages[0].Pool)
	}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `stages[1](b).pool: "x/y": a pool name`) {
		t.Errorf("stage with a bad pool: %v", err)
	}
	for _, tt := range []struct {
		n    int
		want string
	}{{0, ""}, {1, ""}, {MaxPoolSlots, ""}, {-1, "slots: -1: want 0 (paused: nothing new starts) to 1000000"}, {MaxPoolSlots + 1, "slots: 1000001: want 0"}} {
		err := CheckPoolSlots("slots", tt.n)
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckPoolSlots(%d) = %v, want %q", tt.n, err, tt.want)
		}
	}
}

// TestRunPoolStates: a run of a pool waits for its dependsOn first, then
// for a slot; TakeSlot releases it, counting it queued from then; it
// holds the slot through a retry and lets it go at its end.
func TestRunPoolStates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Run{RunID: "r", Status: StatusQueued, Pool: "p", Attempts: []Attempt{{Attempt: 1, Status: StatusQueued, CreatedAt: t0}},
		DependsOn: []DependencyState{{RunID: "d", Condition: CondSuccess}}}
	if r.PoolState() != PoolBlocked || r.WaitingForSlot() || r.TakeSlot(t0) {
		t.Fatalf("with a dependency to wait for: %v", r.PoolState())
	}
	r.ResolveDependencies(t0, func(string) (Status, bool) { return StatusSucceeded, true })
	if !r.WaitingForSlot() {
		t.Fatalf("released by its dependency: %v, want waiting for a slot", r.PoolState())
	}
	r.StatusReason = PoolWaitReason("p", 2, 2)
	at := t0.Add(time.Minute)
	if !r.TakeSlot(at) || r.PoolState() != PoolHolding || r.StatusReason != "" || !r.Attempts[0].QueuedAt.Equal(at) || r.TakeSlot(at) {
		t.Fatalf("took a slot: %v %q %v", r.PoolState(), r.StatusReason, r.Attempts[0].QueuedAt)
	}
	r.Status = StatusRunning
	r.Status = StatusQueued // a retry
	if r.PoolState() != PoolHolding {
		t.Errorf("a retry: %v, want it to keep its slot", r.PoolState())
	}
	r.Status = StatusFailed
	if r.PoolState() != PoolNone || r.FailForPool(at) {
		t.Errorf("ended: %v", r.PoolState())
	}
	w := &Run{RunID: "w", Status: StatusQueued, Pool: "gone", Attempts: []Attempt{{Attempt: 1, Status: StatusQueued}}}
	if !w.FailForPool(at) || w.Status != StatusFailed || w.StopCode != StopFailedToStart ||
		w.StoppedReason != "pool gone was deleted while this run waited for a slot in it" || w.Attempts[0].Status != StatusFailed {
		t.Errorf("failed for its pool: %+v", w)
	}
	if got := PoolWaitReason("p", 0, 1); got != "waiting for a slot in pool p (paused: 0 slots; 1 runs still hold one)" {
		t.Errorf("paused reason %q", got)
	}
}

// TestRunKeepsSlotWhenStoppedAfterATake: a run holding a slot that is
// stopped while a worker holds its job ends CANCELED keeping the slot
// (PoolKept) until an end of that attempt, or a later one, is applied;
// one waiting for a slot, or whose taken attempt already ended, keeps
// none; FreeSlot frees it once.
func TestRunKeepsSlotWhenStoppedAfterATake(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	holding := func() *Run {
		r := &Run{RunID: "r", Status: StatusQueued, Pool: "p", Attempts: []Attempt{{Attempt: 1, Status: StatusQueued, CreatedAt: t0}}}
		r.TakeSlot(t0)
		return r
	}
	ev := func(attempt, seq int, st Status) Event {
		return Event{RunID: "r", Attempt: attempt, Seq: seq, Status: st, Source: SourceWorker, Worker: "w1", Time: t0}
	}

	r := holding()
	if !r.CancelTaken(t0, "not wanted", 1, "w1") || r.Status != StatusCanceled || r.PoolState() != PoolKept {
		t.Fatalf("stopped after w1 took it: %s %v", r.Status, r.PoolState())
	}
	if k := r.PoolSlotKept; k == nil || k.Attempt != 1 || k.Worker != "w1" || !k.Since.Equal(t0) {
		t.Fatalf("kept: %+v", k)
	}
	if r.Apply(ev(1, 1, StatusStarting)) || r.PoolState() != PoolKept {
		t.Errorf("a start freed the slot: %v", r.PoolState())
	}
	if !r.Apply(ev(1, 3, StatusCanceled)) || r.PoolState() != PoolNone || r.Status != StatusCanceled {
		t.Errorf("the taken attempt's end: %s %v, want the slot freed, the run still CANCELED", r.Status, r.PoolState())
	}
	if r.Apply(ev(1, 4, StatusCanceled)) || r.FreeSlot() {
		t.Error("freed twice")
	}

	// Another worker found w1 lost and reports the next attempt's end.
	r = holding()
	r.CancelTaken(t0, "not wanted", 1, "w1")
	if !r.Apply(ev(2, 1, StatusCanceled)) || r.PoolState() != PoolNone {
		t.Errorf("a later attempt's end: %v", r.PoolState())
	}

	// w1 took a retry's job, attempt 2: a late end of attempt 1 frees
	// nothing.
	r = holding()
	r.Attempts = []Attempt{{Attempt: 1, Status: StatusFailed, Seq: 2}, {Attempt: 2, Status: StatusQueued}}
	if !r.CancelTaken(t0, "x", 2, "w1") || r.PoolState() != PoolKept {
		t.Fatalf("stopped while attempt 2's worker may run it: %v", r.PoolState())
	}
	if r.Apply(ev(1, 9, StatusFailed)) || r.PoolState() != PoolKept {
		t.Errorf("an earlier attempt's end freed the slot: %v", r.PoolState())
	}
	if !r.FreeSlot() || r.PoolState() != PoolNone || r.FreeSlot() {
		t.Errorf("FreeSlot: %v", r.PoolState())
	}

	// The taken attempt's end is already recorded (a hand-back applied
	// between the claim's read and the stop): no container of it runs.
	r = holding()
	r.Attempts[0].Status = StatusFailed
	r.Attempts = append(r.Attempts, Attempt{Attempt: 2, Status: StatusQueued, Redelivery: true})
	if !r.CancelTaken(t0, "x", 1, "w1") || r.PoolState() != PoolNone {
		t.Errorf("stopped after the taken attempt ended: %v, want the slot freed", r.PoolState())
	}
	// A run that waits for a slot holds none to keep.
	w := &Run{RunID: "w", Status: StatusQueued, Pool: "p", Attempts: []Attempt{{Attempt: 1, Status: StatusQueued}}}
	if !w.CancelTaken(t0, "x", 1, "w1") || w.PoolState() != PoolNone || w.PoolSlotKept != nil {
		t.Errorf("stopped while waiting for a slot: %v", w.PoolState())
	}
	// Nor does a run without a pool, or one that is not queued.
	n := &Run{RunID: "n", Status: StatusQueued, Attempts: []Attempt{{Attempt: 1, Status: StatusQueued}}}
	if !n.CancelTaken(t0, "x", 1, "w1") || n.PoolSlotKept != nil {
		t.Errorf("a run without a pool keeps %+v", n.PoolSlotKept)
	}
	run := holding()
	run.Status = StatusRunning
	if run.CancelTaken(t0, "x", 1, "w1") || run.PoolSlotKept != nil {
		t.Error("CancelTaken changed a running run")
	}
}

// TestRunKeepsSlotForALaterAttempt: a run of a pool that ended by attempt
// 1's end while a worker holds its job as attempt 2 keeps its slot until
// attempt 2's end is applied; it keeps none for an attempt that is not
// later, or that ended, nor while it has not ended.
func TestRunKeepsSlotForALaterAttempt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(attempt, seq int, st Status) Event {
		return Event{RunID: "r", Attempt: attempt, Seq: seq, Status: st, Source: SourceWorker, Worker: "w2", Time: t0}
	}
	r := &Run{RunID: "r", Status: StatusQueued, Pool: "p", Attempts: []Attempt{{Attempt: 1, Status: StatusQueued, CreatedAt: t0}}}
	r.TakeSlot(t0)
	if r.KeepSlotFor(t0, 2, "w2") {
		t.Fatal("kept a slot for a run that goes on")
	}
	zero := 0
	r.Apply(Event{RunID: "r", Attempt: 1, Seq: 2, Status: StatusSucceeded, Source: SourceWorker, Worker: "w1", Time: t0, ExitCode: &zero})
	if r.Status != StatusSucceeded {
		t.Fatalf("status %s", r.Status)
	}
	if r.KeepSlotFor(t0, 1, "w1") {
		t.Error("kept the slot for the attempt that ended the run")
	}
	if !r.KeepSlotFor(t0, 2, "w2") || r.PoolState() != PoolKept {
		t.Fatalf("attempt 2 held by w2: %v", r.PoolState())
	}
	if k := r.PoolSlotKept; k.Attempt != 2 || k.Worker != "w2" || !k.Since.Equal(t0) {
		t.Errorf("kept: %+v", k)
	}
	if r.Apply(ev(2, 1, StatusRunning)) && r.PoolState() != PoolKept {
		t.Errorf("attempt 2's start freed the slot: %v", r.PoolState())
	}
	if !r.Apply(ev(2, 2, StatusFailed)) || r.PoolState() != PoolNone || r.Status != StatusSucceeded {
		t.Errorf("attempt 2's end: %s %v, want the slot freed, the run still SUCCEEDED", r.Status, r.PoolState())
	}
	if r.KeepSlotFor(t0, 2, "w2") {
		t.Error("kept the slot again for attempt 2, which ended")
	}
}
