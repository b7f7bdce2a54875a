package jobs

import (
	"fmt"
	"time"
)

// Pools bound how many runs of a kind run at once across the whole
// cluster, as Airflow's pools do: a pool has a name and a number of
// slots, and a run submitted into it (SubmitRequest.Pool, a stage's pool)
// takes one slot from its release, when its job is published, to its end,
// whatever status it ends in; a run stopped while QUEUED after a worker
// had taken its job holds it until that worker's containers are gone
// (SlotKeep). Its retries keep the slot: the run is still
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
	// ended, or stopped while a worker had just taken them and not yet
	// known to run no container (PoolKept). It may exceed Slots after the
	// slots were lowered.
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
	// PoolKept: it ended, stopped while QUEUED after a worker had taken
	// its job, or while a worker held its job as a later attempt, and
	// holds its slot until no container of it can run (SlotKeep).
	PoolKept
)

// PoolState says where the run stands in its pool.
func (r *Run) PoolState() PoolState {
	switch {
	case r.Pool == "":
		return PoolNone
	case r.Status.Terminal():
		if r.PoolSlotKept != nil && r.PoolSlotAt != nil {
			return PoolKept
		}
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

// SlotKeep says why a run that ended still holds its pool's slot. The run
// was stopped while QUEUED, but a worker had already taken its job (the
// run's claim said so), its start not yet recorded: that worker may be
// starting its containers, and stops them when the stop reaches it. Or
// the run ended by the end of an attempt whose worker had been taken for
// lost, and another worker holds its job as the next attempt
// (KeepSlotFor).
// Freeing the slot at the stop would let the pool's next run start
// beside them. The slot is freed when the worker reports the end of the
// attempt it took (or of a later one: another worker found it lost), or
// when the server's sweep finds that worker lost or the job let go
// (server/poolstop.go).
type SlotKeep struct {
	// Attempt and Worker are the claim's at the stop: the attempt the
	// worker took.
	Attempt int    `json:"attempt"`
	Worker  string `json:"worker"`
	// Since is when the stop, or the end, was recorded.
	Since time.Time `json:"since"`
}

// KeepSlotFor keeps the slot of a run of a pool that just ended by an
// attempt's end, while a worker holds its job as a later attempt (the
// run's claim said so): that worker took the job for a lost worker's, the
// ending attempt's, whose worker reported its end after all. The later
// attempt may be starting its containers: the slot is kept (PoolKept)
// until its end is applied, or the sweep finds its worker gone or the job
// let go (server/poolstop.go), as for a stop (SlotKeep). It reports
// whether the run changed: not for an attempt that ended already.
func (r *Run) KeepSlotFor(now time.Time, attempt int, worker string) bool {
	if r.Pool == "" || r.PoolSlotAt == nil || r.PoolSlotKept != nil || !r.Status.Terminal() {
		return false
	}
	if cur := r.Current(); cur == nil || attempt <= cur.Attempt ||
		attempt <= len(r.Attempts) && r.Attempts[attempt-1].Status.Terminal() {
		return false
	}
	r.PoolSlotKept = &SlotKeep{Attempt: attempt, Worker: worker, Since: now.UTC()}
	return true
}

// CancelTaken is Cancel for a run whose job worker had taken, as attempt,
// when it was stopped: a run that holds a slot of its pool keeps it
// (PoolKept) until the worker reports that attempt's end, unless the run
// already records it. It reports whether the run changed.
func (r *Run) CancelTaken(now time.Time, reason string, attempt int, worker string) bool {
	keep := r.PoolState() == PoolHolding && attempt >= 1 &&
		(attempt > len(r.Attempts) || !r.Attempts[attempt-1].Status.Terminal())
	if !r.Cancel(now, reason) {
		return false
	}
	if keep {
		r.PoolSlotKept = &SlotKeep{Attempt: attempt, Worker: worker, Since: now.UTC()}
	}
	return true
}

// FreeSlot frees the slot a run that ended kept (PoolKept). It reports
// whether the run changed.
func (r *Run) FreeSlot() bool {
	if r.PoolSlotKept == nil {
		return false
	}
	r.PoolSlotKept = nil
	return true
}

// slotFreedBy frees the slot the run kept if ev ends the attempt its
// worker took, or a later one: no container of the attempt runs then.
func (r *Run) slotFreedBy(ev Event) bool {
	if k := r.PoolSlotKept; k == nil || !ev.Status.Terminal() || ev.Attempt < k.Attempt {
		return false
	}
	r.PoolSlotKept = nil
	return true
}
