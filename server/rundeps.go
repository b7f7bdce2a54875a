package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gantry-dev/gantry/jobs"
)

// Runs that wait for others (a submission's dependsOn, jobs/rundeps.go).
// A waiting run is stored QUEUED with its job unpublished and a row per
// dependency in the store's run_waits; republish passes it over. Whenever
// a run moves (a worker's event, a stop, the sweep's deadline), the runs
// that wait for it are resolved (resolveWaiting): released, their job
// published as a submission's would be; failed, when a dependency ended
// so that their condition cannot hold, which resolves the runs that wait
// for them in turn; or left waiting with their statusReason brought up to
// date.
//
// Crash safety, per step of a resolution, if the server dies just after it:
//
//  1. The dependency's end is stored: its waiters are not resolved yet.
//     At start the server resolves every waiting run (resolveAllWaiting)
//     before anything else may read or prune what they wait for.
//  2. The waiter's release is stored (document and run_waits rows in one
//     transaction): it is now an unpublished QUEUED run, which republish,
//     at start and at every sweep, publishes.
//  3. Its job is published with Nats-Msg-Id run/attempt, as a submission's:
//     published again by republish before the mark, which the queue's
//     duplicate window absorbs.
//  4. A waiter's failure is stored: the runs that wait for it are resolved
//     as in 1.
//
// Every step is idempotent: a resolution reads the waiter and changes it
// only while it waits, in the transaction that writes it. A resolution
// that fails or races (a dependency that ends while a run naming it is
// being stored) is caught by the sweep, which resolves the runs that wait
// for a run that ended (resolveEnded).

// dependencyStatuses reads the status of each run a submission depends
// on; unknown runs are refused, each named with its field path and, as
// runs.get says, why it may be gone.
func (s *Server) dependencyStatuses(ctx context.Context, deps []jobs.RunDependency) (map[string]jobs.Status, error) {
	ids := make([]string, len(deps))
	for i, d := range deps {
		ids[i] = d.RunID // "" for a type SEQUENTIAL, an array's own order
	}
	st, err := s.db.RunStatuses(ctx, ids...)
	if err != nil {
		return nil, err
	}
	var missing []string
	for i, id := range ids {
		if _, ok := st[id]; !ok && deps[i].Type == "" {
			e := s.explainPruned(fmt.Errorf("run %s: %w", id, jobs.ErrNotFound), id) // history.go
			missing = append(missing, fmt.Sprintf("dependsOn[%d].runId: %v", i, e))
		}
	}
	if len(missing) > 0 {
		msg := missing[0]
		for _, m := range missing[1:] {
			msg += "\n" + m
		}
		return nil, jobs.NotFound(msg)
	}
	return st, nil
}

// statusIn looks a status up in st, for jobs.Run.ResolveDependencies.
func statusIn(st map[string]jobs.Status) func(string) (jobs.Status, bool) {
	return func(id string) (jobs.Status, bool) {
		s, ok := st[id]
		return s, ok
	}
}

// dependenciesMoved resolves the runs that wait for any of runs, which
// moved (changed status), and releases the pools whose slots those that
// ended held (pools.go).
func (s *Server) dependenciesMoved(ctx context.Context, runs ...*jobs.Run) {
	s.poolsMoved(ctx, runs...)
	if !s.waiters.maybe() {
		return // no run waits for another: no query per batch of events
	}
	ids := make([]string, 0, len(runs))
	for _, r := range runs {
		ids = append(ids, r.RunID)
	}
	waiters, err := s.db.WaitingFor(ctx, ids...)
	if err != nil {
		// The sweep resolves them (resolveEnded), or the next start.
		s.cfg.log.Warn().Err(err).Msg("find the runs waiting for runs that moved")
		return
	}
	failed, err := s.resolveWaiting(ctx, waiters...)
	if err != nil {
		s.cfg.log.Warn().Err(err).Msg("resolve waiting runs; the sweep tries again")
	}
	s.pipelinesChanged(ctx, failed...)
}

// resolveEnded resolves the runs that wait for a run that ended or is
// gone: those a resolution missed.
func (s *Server) resolveEnded(ctx context.Context) error {
	if !s.waiters.maybe() {
		return nil
	}
	ids, err := s.db.WaitingOnEnded(ctx)
	if err != nil {
		return err
	}
	failed, err := s.resolveWaiting(ctx, ids...)
	s.pipelinesChanged(ctx, failed...)
	if err != nil {
		return err
	}
	return s.forgetWaitersIfNone(ctx)
}

// forgetWaitersIfNone clears s.waiters when no run waits for another, so
// that the application of events stops looking for waiters until a run
// that waits is submitted again.
func (s *Server) forgetWaitersIfNone(ctx context.Context) error {
	gen := s.waiters.generation()
	ids, err := s.db.WaitingRuns(ctx)
	if err != nil {
		return fmt.Errorf("find waiting runs: %w", err)
	}
	if len(ids) == 0 {
		s.waiters.clearIf(gen)
	}
	return nil
}

// waiterFlag says whether any run may wait for another (dependsOn): while
// none does, a run's move needs no lookup of the runs waiting for it, one
// query per batch of events saved for the deployments that never use
// dependsOn. It is set before a waiting run is stored and cleared only by
// a look at the store that found none, and only if no waiting run was
// submitted since that look began (gen, under mu).
type waiterFlag struct {
	any atomic.Bool
	mu  sync.Mutex
	gen uint64
}

func (w *waiterFlag) maybe() bool { return w.any.Load() }

func (w *waiterFlag) mark() {
	w.mu.Lock()
	w.gen++
	w.any.Store(true)
	w.mu.Unlock()
}

// stored is mark again, once a waiting run is stored: a look at the
// store that began after the first mark but read it before the commit
// found none and cleared the flag, and then nothing (the application of
// events, the sweep's resolveEnded) looked for the run's waits again, so
// it waited for ever.
func (w *waiterFlag) stored() { w.mark() }

func (w *waiterFlag) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

func (w *waiterFlag) clearIf(gen uint64) {
	w.mu.Lock()
	if w.gen == gen {
		w.any.Store(false)
	}
	w.mu.Unlock()
}

// resolveAllWaiting resolves every waiting run, at start: what they wait
// for may have ended while the server was down, and their reasons say the
// statuses of then.
func (s *Server) resolveAllWaiting(ctx context.Context) error {
	gen := s.waiters.generation()
	ids, err := s.db.WaitingRuns(ctx)
	if err != nil {
		return fmt.Errorf("find waiting runs: %w", err)
	}
	failed, err := s.resolveWaiting(ctx, ids...)
	s.pipelinesChanged(ctx, failed...)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		s.cfg.log.Info().Int("runs", len(ids)).Msg("looked again at the runs waiting for others")
	} else {
		s.waiters.clearIf(gen)
	}
	return nil
}

// resolveWaiting resolves the runs ids, and then those waiting for the
// ones that failed, until none is left. It goes on past a run it could
// not resolve, and returns what went wrong, and the runs it failed: the
// caller tells their pipeline runs (pipelinesChanged: a child of an array
// stage waiting for another, jobs/arrayorder.go), unless the DAG's advance
// holds its lock, as it does when it submits a stage's runs.
func (s *Server) resolveWaiting(ctx context.Context, ids ...string) ([]*jobs.Run, error) {
	var errs []error
	var runs []*jobs.Run
	for len(ids) > 0 {
		id := ids[0]
		ids = ids[1:]
		failed, err := s.resolveRun(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve run %s: %w", id, err))
			continue
		}
		if failed != nil {
			runs = append(runs, failed)
			more, err := s.db.WaitingFor(ctx, id)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ids = append(ids, more...)
		}
	}
	return runs, errors.Join(errs...)
}

// resolveRun resolves one waiting run: it records the ends of its
// dependencies, and releases it (publishing its job), fails it, or
// updates its reason. It returns the run if it failed.
func (s *Server) resolveRun(ctx context.Context, id string) (failed *jobs.Run, err error) {
	r, err := s.db.GetRun(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !r.Waiting() {
		return nil, nil
	}
	st, err := s.db.RunStatuses(ctx, r.WaitsFor()...)
	if err != nil {
		return nil, err
	}
	workers, werr := s.liveWorkers(ctx)
	now := s.cfg.now().UTC()
	var changed, released bool
	// A release or a failure is announced even across a crash (an outbox
	// row, announce.go); a new reason alone is not.
	s.lockOrder() // to the send: a stop committed meanwhile is announced after
	stored, outbox, err := s.db.UpdateRunAnnounced(ctx, id, func(r *jobs.Run) (bool, bool) {
		changed, released = r.ResolveDependencies(now, statusIn(st))
		if released && werr == nil && !r.WaitingForSlot() {
			r.StatusReason = placementReason(r, workers) // fleet.go
		}
		return changed, released || r.Status.Terminal()
	})
	if err == nil && changed {
		s.announceRun(stored, outbox)
	}
	s.unlockOrder()
	if err != nil || !changed {
		return nil, err
	}
	log := s.cfg.log.With().Str("run", id).Logger()
	switch {
	case stored.Status.Terminal():
		s.metrics.runMoved(jobs.StatusQueued, false, stored)
		log.Info().Str("reason", stored.StoppedReason).Msg("run failed without running: a dependency ended as it did not need")
		return stored, nil
	case released && stored.WaitingForSlot():
		// Now it waits for a slot in its pool (pools.go).
		log.Debug().Str("pool", stored.Pool).Msg("run waits for a slot: its dependencies ended as it needed")
		if err := s.releasePools(ctx, stored.Pool); err != nil {
			log.Warn().Err(err).Msg("release pool; the sweep tries again")
		}
	case released:
		log.Debug().Msg("run released: its dependencies ended as it needed")
		if err := s.enqueue(ctx, stored); err != nil {
			// Stored as unpublished: republish (the sweep's, or at start)
			// publishes it.
			log.Error().Err(err).Msg("queue released run")
		}
	}
	return nil, nil
}
