package storage

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
)

// lightRun is a run as ApplyEvents folds events into it. The task
// definition in its spec, which no event changes and which is most of the
// document, stays the bytes that were stored: decoding and encoding it for
// every batch of events was a third of the server's work under load.
type lightRun struct {
	*jobs.Run
	Spec lightSpec `json:"spec"` // shadows Run.Spec
}

type lightSpec struct {
	jobs.RunSpec
	Task json.RawMessage `json:"task"` // shadows RunSpec.Task
}

// decodeLightRun decodes a run's document but for its task definition;
// the run's Spec has every field but Task.
func decodeLightRun(doc []byte) (*lightRun, error) {
	lr := &lightRun{Run: new(jobs.Run)}
	if err := json.Unmarshal(doc, lr); err != nil {
		return nil, fmt.Errorf("decode run: %w", err)
	}
	lr.Run.Spec = lr.Spec.RunSpec
	lr.Run.Priority = lr.Run.Priority.Level() // runs stored before priorities are normal
	return lr, nil
}

// write stores the run as writeRun does, with the task definition as read.
func (lr *lightRun) write(ctx context.Context, upd *sql.Stmt) error {
	task := lr.Spec.Task
	lr.Spec.RunSpec = lr.Run.Spec
	lr.Spec.Task = task
	doc, err := json.Marshal(lr)
	if err != nil {
		return err
	}
	return execUpdateRun(ctx, upd, lr.Run, doc)
}

// Applied is a run that ApplyEvents changed, as stored after the change,
// with what it was before: from the two, callers tell what moved (a run
// that started, one that ended) without reading it again.
type Applied struct {
	*jobs.Run
	// Before is the run's status before the call.
	Before jobs.Status
	// StartedBefore says whether the run had started (StartedAt was set)
	// before the call.
	StartedBefore bool
	// SlotFreed says the call freed the pool slot the run, which had
	// ended, kept (jobs.PoolKept): its pool may release its next run.
	SlotFreed bool
}

// ApplyEvents folds worker events (jobs.Run.Apply) into their runs in ONE
// transaction and returns the runs that changed, after the change, once
// each, in the order their first event came, with their state before it. Events of unknown runs and
// events with Source == jobs.SourceServer are skipped. Each run is loaded
// and written at most once per call, however many events concern it. A
// replayed event changes nothing.
//
// Within one call a run's events are applied in (attempt, seq) order, so a
// batch that holds a run's events out of order has the same effect as one
// that holds them in order; across calls, an event older than one already
// applied changes nothing (jobs.Run.Apply).
//
// The runs returned carry their spec's task definition only when QUEUED
// (a retry or a redelivery, whose job is published from it).
//
// If the call fails, nothing of it is stored and the caller may retry the
// whole batch: events already applied before it are ignored as replays.
func (db *DB) ApplyEvents(ctx context.Context, evs []jobs.Event) ([]Applied, error) {
	return db.ApplyEventsChecking(ctx, evs, nil)
}

// EndCheck is called, within ApplyEventsChecking's transaction and before
// the run is stored, for each run of a pool that the events ended while it
// held its slot. It may keep the slot (jobs.Run.KeepSlotFor): an error
// fails the call.
type EndCheck func(ctx context.Context, r *jobs.Run) error

// ApplyEventsChecking is ApplyEvents, with check (if not nil) called for
// each run of a pool that the events end holding its slot.
func (db *DB) ApplyEventsChecking(ctx context.Context, evs []jobs.Event, check EndCheck) ([]Applied, error) {
	// The events to apply, by run in order of each run's first event, and
	// within a run by attempt and seq: indexes into evs, so that a batch
	// of hundreds copies no event.
	type ref struct{ run, ev int32 }
	runs := make(map[string]int32, len(evs)/2)
	refs := make([]ref, 0, len(evs))
	for i := range evs {
		ev := &evs[i]
		if ev.Source == jobs.SourceServer || ev.RunID == "" {
			continue
		}
		n, ok := runs[ev.RunID]
		if !ok {
			n = int32(len(runs))
			runs[ev.RunID] = n
		}
		refs = append(refs, ref{n, int32(i)})
	}
	if len(refs) == 0 {
		return nil, nil
	}
	slices.SortStableFunc(refs, func(a, b ref) int {
		ea, eb := &evs[a.ev], &evs[b.ev]
		return cmp.Or(cmp.Compare(a.run, b.run), cmp.Compare(ea.Attempt, eb.Attempt), cmp.Compare(ea.Seq, eb.Seq))
	})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apply events: %w", err)
	}
	ctx = uninterrupted(ctx)
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("apply events: %w", err)
	}
	defer tx.Rollback()
	sel := tx.StmtContext(ctx, db.stmts.selectRunDoc)
	upd := tx.StmtContext(ctx, db.stmts.updateRun)
	hooks := db.hooksNow() // webhooks.go: nil, and no cost per run, while there is no hook

	var (
		changed  []Applied
		doc      []byte
		outboxed bool
	)
	for start := 0; start < len(refs); {
		end := start + 1
		for end < len(refs) && refs[end].run == refs[start].run {
			end++
		}
		group := refs[start:end]
		start = end
		id := evs[group[0].ev].RunID
		err := sel.QueryRowContext(ctx, id).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not ours, or deleted: nothing to fold into
		}
		if err != nil {
			return nil, fmt.Errorf("apply events: load run %s: %w", id, err)
		}
		lr, err := decodeLightRun(doc)
		if err != nil {
			return nil, fmt.Errorf("apply events: run %s: %w", id, err)
		}
		r := lr.Run
		before, startedBefore, kept := r.Status, r.StartedAt != nil, r.PoolSlotKept != nil
		dirty := false
		for _, g := range group {
			if r.Apply(evs[g.ev]) {
				dirty = true
			}
		}
		if !dirty {
			continue
		}
		if check != nil && !before.Terminal() && r.Status.Terminal() && r.Pool != "" && r.PoolSlotAt != nil && r.PoolSlotKept == nil {
			if err := check(ctx, r); err != nil {
				return nil, fmt.Errorf("apply events: run %s: %w", id, err)
			}
		}
		if err := lr.write(ctx, upd); err != nil {
			return nil, fmt.Errorf("apply events: store run %s: %w", id, err)
		}
		if r.Pool != "" && r.Status.Terminal() {
			// Its slot frees (pools.go), unless it keeps it (a stop that
			// came after a worker took its job, jobs.PoolKept); a run
			// without a pool costs no statement more, one that goes on
			// keeps its row as it is.
			if err := syncPool(ctx, tx, r, false); err != nil {
				return nil, fmt.Errorf("apply events: %w", err)
			}
		}
		if hooks != nil {
			queued, err := outboxRun(ctx, tx, hooks, r, before)
			if err != nil {
				return nil, fmt.Errorf("apply events: run %s: %w", id, err)
			}
			outboxed = outboxed || queued
		}
		if r.Status == jobs.StatusQueued {
			// A retry or a redelivery: its job is published from the spec.
			if err := json.Unmarshal(lr.Spec.Task, &r.Spec.Task); err != nil {
				return nil, fmt.Errorf("apply events: run %s: decode task: %w", id, err)
			}
		}
		if changed == nil {
			changed = make([]Applied, 0, len(runs)) // one allocation, not one per doubling
		}
		changed = append(changed, Applied{Run: r, Before: before, StartedBefore: startedBefore,
			SlotFreed: kept && r.PoolSlotKept == nil})
	}
	if len(changed) == 0 {
		return nil, nil // read-only: the deferred rollback ends it
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("apply events: %w", err)
	}
	if outboxed {
		db.notifyOutbox()
	}
	return changed, nil
}
