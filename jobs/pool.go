package jobs

import (
	"fmt"
	"time"
)

// Pools bound how many runs of a kind run at once across the whole
// cluster, as Airflow's pools do: a pool has a name and a number of
// slots, and a run submitted into it (SubmitRequest.Pool, a stage's pool)
// takes one slot from its release, when its job is published, to its end,
// whatever status it ends in. Its retries keep the slot: the run is still
// active between attempts, and giving the slot up during a backoff would
// let another run in that the retry then has to wait behind. While the
// pool is full the run is QUEUED with its job unpublished, as a run
// waiting for its dependsOn is; the server releases waiting runs highest
// priority first, then oldest first, as slots free. A pool of 0 slots is
// paused: the runs that hold slots go on, nothing new starts.

// MaxPoolSlots bounds a pool's slots: a pool is a bound, and one wider
// than any fleet bounds nothing; the number keeps the counts in an int32.
const MaxPoolSlots = 1_000_000

// Pool is a named number of slots.
type Pool struct {
	Name  string `json:"name"`
	Slots int    `json:"slots"`
	// InUse is how many runs hold a slot: released into the pool and not
	// ended. It may exceed Slots after the slots were lowered.
	InUse int `json:"inUse"`
	// Waiting is how many runs wait for a slot (not those still waiting
	// for their dependsOn).
	Waiting   int       `json:"waiting"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// CheckPoolName says why name cannot be a pool's, at path, or returns nil.
func CheckPoolName(path, name string) error {
	if !validName(name) {
		return &FieldError{path, fmt.Sprintf("%q: a pool name is letters, digits, '-' and '_', at most 255", name)}
	}
	return nil
}

// CheckPoolSlots says why n cannot be a pool's slots, at path, or returns
// nil: 0 (paused) to MaxPoolSlots.
func CheckPoolSlots(path string, n int) error {
	if n < 0 || n > MaxPoolSlots {
		return &FieldError{path, fmt.Sprintf("%d: want 0 (paused: nothing new starts) to %d", n, MaxPoolSlots)}
	}
	return nil
}

// PoolState is where a run of a pool stands, for the store's index of
// them (storage/pools.go).
type PoolState int

const (
	// PoolNone: the run has no pool, or ended.
	PoolNone PoolState = iota
	// PoolBlocked: it waits for its dependsOn first, then for a slot.
	PoolBlocked
	// PoolWaiting: it waits for a slot; its job is not published.
	PoolWaiting
	// PoolHolding: it holds a slot, from its release to its end.
	PoolHolding
)

// PoolState says where the run stands in its pool.
func (r *Run) PoolState() PoolState {
	switch {
	case r.Pool == "" || r.Status.Terminal():
		return PoolNone
	case r.PoolSlotAt != nil:
		return PoolHolding
	case r.Waiting():
		return PoolBlocked
	}
	return PoolWaiting
}

// WaitingForSlot reports whether the run is QUEUED waiting for a slot in
// its pool, its job unpublished.
func (r *Run) WaitingForSlot() bool { return r.PoolState() == PoolWaiting }

// TakeSlot releases a run that waits for a slot: it holds one from now,
// its statusReason is cleared (the server then says why no worker could
// take it, if none can) and its current attempt counts as queued
// from now (the wait for the slot was no wait in the work queue, which
// gantry_run_queue_oldest_seconds measures). It reports whether the run
// changed.
func (r *Run) TakeSlot(now time.Time) bool {
	if !r.WaitingForSlot() {
		return false
	}
	at := now.UTC()
	r.PoolSlotAt, r.StatusReason = &at, ""
	if a := r.Current(); a != nil {
		a.QueuedAt = &at
	}
	return true
}

// PoolWaitReason is the statusReason of a run waiting for a slot of pool
// with slots, inUse of them held.
func PoolWaitReason(pool string, slots, inUse int) string {
	if slots == 0 {
		return fmt.Sprintf("waiting for a slot in pool %s (paused: 0 slots; %d runs still hold one)", pool, inUse)
	}
	return fmt.Sprintf("waiting for a slot in pool %s (%d of %d in use)", pool, inUse, slots)
}

// FailForPool ends a run that waits for a slot of a pool that no longer
// exists: FAILED without running (stopCode TaskFailedToStart), saying why.
// It reports whether the run changed.
func (r *Run) FailForPool(now time.Time) bool {
	if r.PoolState() != PoolWaiting && r.PoolState() != PoolBlocked {
		return false
	}
	reason := fmt.Sprintf("pool %s was deleted while this run waited for a slot in it", r.Pool)
	at := now.UTC()
	r.Status, r.StopCode, r.StoppedReason, r.StatusReason, r.FinishedAt = StatusFailed, StopFailedToStart, reason, "", &at
	if a := r.Current(); a != nil {
		a.Status, a.StopCode, a.StoppedReason, a.FinishedAt = StatusFailed, StopFailedToStart, reason, &at
	}
	return true
}
