package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
)

// Pools bound how many runs of a kind run at once across the fleet
// (jobs/pool.go). A run submitted into a pool is stored QUEUED with its
// job unpublished and a pool_runs row saying it waits (storage/pools.go);
// a run that also has dependsOn waits for them first (rundeps.go), and
// joins the pool's waiting runs at its release. Whenever a run of a pool
// ends (a worker's event, a stop, the sweep's deadline) or one stopped
// frees the slot it kept (poolstop.go), when a pool's
// slots change, after a submission into a pool, at start and at every
// sweep, the pool is released (releasePools): in one store transaction
// the slots in use are counted and as many waiting runs as are free take
// one, highest priority first, then oldest first; their jobs are then
// published as a submission's would be.
//
// Crash safety, per step, if the server dies just after it:
//
//  1. A run of the pool ends (its event stored, its pool_runs row gone in
//     the same transaction): its slot is free but no one took it yet. At
//     start the server releases every pool that runs name
//     (releaseAllPools); the sweep does it too, every round.
//  2. The release is stored (document and pool_runs row of each released
//     run, in the transaction that counted the slots in use): they are
//     unpublished QUEUED runs that no longer wait, which republish, at
//     start and at every sweep, publishes. As the count and the release
//     are one transaction and the server is the only writer, no slot is
//     given twice: a second release, before or after a crash, counts the
//     runs the first released.
//  3. A released run's job is published with Nats-Msg-Id run/attempt, as
//     a submission's: published again by republish before the mark, which
//     the queue's duplicate window absorbs.
//  4. A pool is deleted with force: the runs that waited for it are
//     failed in the same transaction, so a pool of the same name set at
//     once after never gives them a slot. Their pipelines and the runs
//     that wait for them are told next; after a crash, at start
//     (resolveAllWaiting, recoverFollowUps) and by the sweep. A release
//     that finds runs waiting for a pool that no longer exists (a store
//     written before this was so) fails them too (failOrphan).
//
// Every step is idempotent: a release changes only runs that wait, in the
// transaction that counts.

// PoolSetRequest creates a pool or changes its slots.
type PoolSetRequest struct {
	Name string `json:"name"`
	// Slots is how many runs of the pool may hold a slot at once: 0
	// pauses the pool (nothing new starts; runs holding a slot go on).
	Slots *int `json:"slots"`
}

// PoolSetReply is the pool as stored, with whether the request created it.
type PoolSetReply struct {
	jobs.Pool
	Created bool `json:"created"`
}

// PoolListReply lists every pool.
type PoolListReply struct {
	Pools []jobs.Pool `json:"pools"`
}

// PoolDeleteRequest names a pool to delete.
type PoolDeleteRequest struct {
	Name string `json:"name"`
	// Force deletes a pool that runs hold slots of or wait for: those
	// waiting fail, those holding a slot run on to their end.
	Force bool `json:"force,omitempty"`
}

// PoolDeleteReply says what a pool's delete did.
type PoolDeleteReply struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	// Failed are the runs that waited for the pool and were failed.
	Failed []string `json:"failed,omitempty"`
	// Running are the runs that held a slot of the pool: they run on.
	Running []string `json:"running,omitempty"`
}

func (s *Server) apiPoolSet(ctx context.Context, data []byte) (any, error) {
	var req PoolSetRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	var errs []error
	if err := jobs.CheckPoolName("name", req.Name); err != nil {
		errs = append(errs, err)
	}
	if req.Slots == nil {
		errs = append(errs, &jobs.FieldError{Path: "slots", Msg: "required: 0 (paused) or more"})
	} else if err := jobs.CheckPoolSlots("slots", *req.Slots); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, jobs.Invalid(err.Error())
	}
	p, created, err := s.db.SetPool(ctx, req.Name, *req.Slots, s.cfg.now().UTC())
	if err != nil {
		return nil, err
	}
	// More slots release waiting runs at once. A delete that came in
	// between leaves the set's own answer: it took.
	if err := s.releasePools(ctx, req.Name); err != nil {
		s.cfg.log.Warn().Err(err).Str("pool", req.Name).Msg("release pool; the sweep tries again")
	} else if now, err := s.db.GetPool(ctx, req.Name); err == nil {
		p = now
	} else if !errors.Is(err, jobs.ErrNotFound) {
		return nil, err
	}
	return PoolSetReply{Pool: *p, Created: created}, nil
}

func (s *Server) apiPoolList(ctx context.Context, data []byte) (any, error) {
	pools, err := s.db.ListPools(ctx)
	if err != nil {
		return nil, err
	}
	return PoolListReply{Pools: pools}, nil
}

func (s *Server) apiPoolDelete(ctx context.Context, data []byte) (any, error) {
	var req PoolDeleteRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if err := jobs.CheckPoolName("name", req.Name); err != nil {
		return nil, jobs.Invalid(err.Error())
	}
	s.lockOrder() // to the send of the failed runs' announcements
	runs, failed, outbox, err := s.db.DeletePool(ctx, req.Name, s.cfg.now().UTC(), func(runs []storage.PoolRun) error {
		if len(runs) == 0 || req.Force {
			return nil
		}
		holding, waiting := splitPoolRuns(runs)
		var parts []string
		if len(holding) > 0 {
			parts = append(parts, fmt.Sprintf("%s holding a slot (%s)", runCount(len(holding)), idList(holding)))
		}
		if len(waiting) > 0 {
			parts = append(parts, fmt.Sprintf("%s waiting for one (%s)", runCount(len(waiting)), idList(waiting)))
		}
		return failedPrecondition(fmt.Sprintf("pool %s has %s: wait for them or stop them (gantry stop ID), "+
			"or delete with force: the runs waiting fail, those holding a slot run on to their end", req.Name, strings.Join(parts, " and ")))
	})
	if err == nil {
		sends := s.sends()
		for i, r := range failed {
			sends.announceRun(r, outbox[i])
		}
	}
	s.unlockOrder()
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, jobs.NotFound(fmt.Sprintf("pool %s: not found (gantry pool ls lists the pools)", req.Name))
	}
	if err != nil {
		return nil, err
	}
	reply := PoolDeleteReply{Name: req.Name, Deleted: true}
	reply.Running, reply.Failed = splitPoolRuns(runs)
	// The waiting runs failed in the delete's transaction: what is left
	// is to tell of it, as failOrphan does.
	var errs []error
	for _, r := range failed {
		if err := s.orphanFailed(ctx, r); err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.RunID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pool %s deleted and its waiting runs failed, but not all the runs waiting for those are resolved yet (the sweep tries again): %w", req.Name, err)
	}
	return reply, nil
}

// splitPoolRuns parts the runs of a pool into those holding a slot and
// those waiting (for a slot, or for their dependsOn first).
func splitPoolRuns(runs []storage.PoolRun) (holding, waiting []string) {
	for _, r := range runs {
		if r.State == jobs.PoolHolding || r.State == jobs.PoolKept {
			holding = append(holding, r.RunID)
		} else {
			waiting = append(waiting, r.RunID)
		}
	}
	return holding, waiting
}

func runCount(n int) string {
	if n == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", n)
}

// idList shows the first ids of a list, and how many more.
func idList(ids []string) string {
	const most = 5
	shown := strings.Join(ids[:min(len(ids), most)], ", ")
	if len(ids) > most {
		shown += fmt.Sprintf(" and %d more", len(ids)-most)
	}
	return shown
}

// checkPool refuses a submission into a pool that does not exist and
// returns the statusReason of a run that waits for a slot of it.
func (s *Server) checkPool(ctx context.Context, name string) (reason string, err error) {
	p, err := s.db.GetPool(ctx, name)
	if errors.Is(err, jobs.ErrNotFound) {
		return "", jobs.NotFound(fmt.Sprintf("pool: no pool %q (gantry pool set %s --slots N creates it; gantry pool ls lists them)", name, name))
	}
	if err != nil {
		return "", err
	}
	return jobs.PoolWaitReason(name, p.Slots, p.InUse), nil
}

// poolsMoved releases the pools of the runs among runs that ended: a slot
// may have freed. One that ended keeping its slot (poolstop.go) freed
// none.
func (s *Server) poolsMoved(ctx context.Context, runs ...*jobs.Run) {
	var names []string
	for _, r := range runs {
		if r.Pool != "" && r.Status.Terminal() && r.PoolState() != jobs.PoolKept && !slices.Contains(names, r.Pool) {
			names = append(names, r.Pool)
		}
	}
	if len(names) == 0 {
		return
	}
	if err := s.releasePools(ctx, names...); err != nil {
		s.cfg.log.Warn().Err(err).Msg("release pools; the sweep tries again")
	}
}

// releaseAllPools releases every pool that runs not ended name: at start
// and at every sweep, for what a crash or a failed release left.
func (s *Server) releaseAllPools(ctx context.Context) error {
	names, err := s.db.PoolsInUse(ctx)
	if err != nil {
		return err
	}
	return s.releasePools(ctx, names...)
}

// releasePools releases the pools names (storage.ReleasePool), publishes
// the jobs of the runs that took a slot, tells followers of the runs whose
// reason changed, and fails the runs that wait for a pool that no longer
// exists. It goes on past a pool it could not release, and returns what
// went wrong.
func (s *Server) releasePools(ctx context.Context, names ...string) error {
	var errs []error
	// A released run says at once why no worker could take it, as a
	// submission does: the sweep would say it only at its next full look.
	var place func(*jobs.Run) string
	if len(names) > 0 {
		if workers, err := s.liveWorkers(ctx); err == nil {
			place = func(r *jobs.Run) string { return placementReason(r, workers) } // fleet.go
		}
	}
	for _, name := range names {
		s.lockOrder() // to the sends: a stop committed meanwhile is announced after
		rel, err := s.db.ReleasePool(ctx, name, s.cfg.now().UTC(), place)
		if err == nil {
			sends := s.sends()
			for _, r := range rel.Told {
				sends.publishStatus(r)
			}
			for i, r := range rel.Released {
				sends.announceRun(r, rel.Outbox[i])
			}
		}
		s.unlockOrder()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, r := range rel.Released {
			s.cfg.log.Debug().Str("run", r.RunID).Str("pool", name).Msg("run took a slot in its pool")
			if err := s.enqueue(ctx, r); err != nil {
				// Stored as unpublished: republish (the sweep's, or at
				// start) publishes it.
				s.cfg.log.Error().Err(err).Str("run", r.RunID).Msg("queue released run")
			}
		}
		for _, id := range rel.Orphans {
			if err := s.failOrphan(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("fail run %s of deleted pool %s: %w", id, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// failOrphan fails a run that waits for a pool that no longer exists.
func (s *Server) failOrphan(ctx context.Context, id string) error {
	var changed bool
	s.lockOrder()
	stored, outbox, err := s.db.UpdateRunAnnounced(ctx, id, func(r *jobs.Run) (bool, bool) {
		changed = r.FailForPool(s.cfg.now().UTC())
		return changed, changed
	})
	if err == nil && changed {
		s.announceRun(stored, outbox)
	}
	s.unlockOrder()
	if err != nil || !changed {
		return err
	}
	return s.orphanFailed(ctx, stored)
}

// orphanFailed tells of stored, a run failed as its pool was deleted and
// announced: metrics, its pipeline, and the runs that wait for it.
func (s *Server) orphanFailed(ctx context.Context, stored *jobs.Run) error {
	s.metrics.runMoved(jobs.StatusQueued, false, stored)
	s.pipelinesChanged(ctx, stored)
	s.cfg.log.Info().Str("run", stored.RunID).Str("reason", stored.StoppedReason).Msg("run failed without running")
	// Runs may wait for it; its pool is gone, so no slot to give.
	waiters, err := s.db.WaitingFor(ctx, stored.RunID)
	if err != nil {
		return err
	}
	failed, err := s.resolveWaiting(ctx, waiters...)
	s.pipelinesChanged(ctx, failed...)
	return err
}
