package storage

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/gantry-dev/gantry/jobs"
)

// ApplyEvents folds worker events (jobs.Run.Apply) into their runs in ONE
// transaction and returns the runs that changed, after the change, once
// each, in the order their first event came. Events of unknown runs and
// events with Source == jobs.SourceServer are skipped. Each run is loaded
// and written at most once per call, however many events concern it. A
// replayed event changes nothing.
//
// Within one call a run's events are applied in (attempt, seq) order, so a
// batch that holds a run's events out of order has the same effect as one
// that holds them in order; across calls, an event older than one already
// applied changes nothing (jobs.Run.Apply).
//
// If the call fails, nothing of it is stored and the caller may retry the
// whole batch: events already applied before it are ignored as replays.
func (db *DB) ApplyEvents(ctx context.Context, evs []jobs.Event) ([]*jobs.Run, error) {
	var (
		order []string // run ids in order of first event
		byRun = make(map[string][]jobs.Event)
	)
	for _, ev := range evs {
		if ev.Source == jobs.SourceServer || ev.RunID == "" {
			continue
		}
		if _, ok := byRun[ev.RunID]; !ok {
			order = append(order, ev.RunID)
		}
		byRun[ev.RunID] = append(byRun[ev.RunID], ev)
	}
	if len(order) == 0 {
		return nil, nil
	}

	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("apply events: %w", err)
	}
	defer tx.Rollback()
	sel, err := tx.PrepareContext(ctx, selectRunDoc)
	if err != nil {
		return nil, fmt.Errorf("apply events: %w", err)
	}
	defer sel.Close()
	upd, err := tx.PrepareContext(ctx, updateRun)
	if err != nil {
		return nil, fmt.Errorf("apply events: %w", err)
	}
	defer upd.Close()

	var (
		changed []*jobs.Run
		doc     []byte
	)
	for _, id := range order {
		err := sel.QueryRowContext(ctx, id).Scan(&doc)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not ours, or deleted: nothing to fold into
		}
		if err != nil {
			return nil, fmt.Errorf("apply events: load run %s: %w", id, err)
		}
		r, err := decodeRun(doc)
		if err != nil {
			return nil, fmt.Errorf("apply events: run %s: %w", id, err)
		}
		runEvs := byRun[id]
		slices.SortStableFunc(runEvs, func(a, b jobs.Event) int {
			return cmp.Or(cmp.Compare(a.Attempt, b.Attempt), cmp.Compare(a.Seq, b.Seq))
		})
		dirty := false
		for _, ev := range runEvs {
			if r.Apply(ev) {
				dirty = true
			}
		}
		if !dirty {
			continue
		}
		if err := writeRun(ctx, upd, r); err != nil {
			return nil, fmt.Errorf("apply events: store run %s: %w", id, err)
		}
		changed = append(changed, r)
	}
	if len(changed) == 0 {
		return nil, nil // read-only: the deferred rollback ends it
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("apply events: %w", err)
	}
	return changed, nil
}
