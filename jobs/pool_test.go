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
