package server

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
)

// WithSweepInterval sets how often the server queues retries whose backoff
// ended, explains why queued runs wait and looks for runs of lost workers
// (2 s by default).
func WithSweepInterval(d time.Duration) Option { return func(c *config) { c.sweepEvery = d } }

// lostSeq is the seq of WorkerLost events; it matches the worker's, so
// that the server's and a worker's verdicts on the same attempt are one.
const lostSeq = 1 << 30

// placementReason says why no worker can take the run now, or "" when one
// can. It is set on QUEUED runs as statusReason.
func placementReason(r *jobs.Run, workers []jobs.WorkerInfo) string {
	var cands []jobs.WorkerInfo
	for _, w := range workers {
		if w.Cluster == r.Cluster && (r.TargetWorker == "" || w.ID == r.TargetWorker) {
			cands = append(cands, w)
		}
	}
	where := "in cluster " + r.Cluster
	if r.TargetWorker != "" {
		where = "named " + r.TargetWorker + " in cluster " + r.Cluster
	}
	if len(cands) == 0 {
		return "no live worker " + where
	}
	need := r.Spec.Demand()
	var memOK, cpuOK, active []jobs.WorkerInfo
	for _, w := range cands {
		if w.Capacity.Memory <= 0 || need.Memory <= w.Capacity.Memory {
			memOK = append(memOK, w)
		}
	}
	if len(memOK) == 0 {
		return fmt.Sprintf("no worker %s has %d MiB of memory", where, need.Memory)
	}
	for _, w := range memOK {
		if w.Capacity.CPU <= 0 || need.CPU <= w.Capacity.CPU {
			cpuOK = append(cpuOK, w)
		}
	}
	if len(cpuOK) == 0 {
		return fmt.Sprintf("no worker %s with %d MiB of memory has %d CPU units", where, need.Memory, need.CPU)
	}
	for _, w := range cpuOK {
		if w.State != jobs.WorkerDraining {
			active = append(active, w)
		}
	}
	if len(active) == 0 {
		return "every worker " + where + " that could run it is draining"
	}
	return ""
}

// sweep runs every sweepEvery until ctx is done.
func (s *Server) sweep(ctx context.Context) error {
	t := time.NewTicker(s.cfg.sweepEvery)
	defer t.Stop()
	absent := map[string]time.Time{} // worker → when first seen gone
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.sweepOnce(ctx, absent); err != nil && ctx.Err() == nil {
			s.cfg.log.Warn().Err(err).Msg("sweep")
		}
	}
}

// sweepOnce queues the retries that are due, updates the reasons of queued
// runs, fails the queued runs past their deadline and records as lost the
// attempts of workers gone for longer than a lease without their job being
// redelivered.
func (s *Server) sweepOnce(ctx context.Context, absent map[string]time.Time) error {
	now := s.cfg.now().UTC()
	if err := s.republish(ctx); err != nil {
		return err
	}
	workers, err := s.liveWorkers(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, w := range workers {
		live[w.ID] = true
	}
	for id := range absent {
		if live[id] {
			delete(absent, id)
		}
	}
	runs, err := s.db.ListRuns(ctx, storageFilter(jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning))
	if err != nil {
		return err
	}
	for i := range runs {
		if err := s.sweepRun(ctx, &runs[i], workers, live, absent, now); err != nil {
			return err
		}
	}
	return nil
}

// expire fails a queued run whose deadline passed.
func expire(r *jobs.Run, now time.Time) bool {
	if r.Status != jobs.StatusQueued {
		return false
	}
	reason := fmt.Sprintf("Run timed out: activeDeadlineSeconds=%d passed while it was queued", r.Spec.ActiveDeadlineSeconds)
	r.Status, r.StopCode, r.StoppedReason, r.StatusReason, r.FinishedAt = jobs.StatusFailed, jobs.StopTimeout, reason, "", &now
	if a := r.Current(); a != nil {
		a.Status, a.StopCode, a.StoppedReason, a.FinishedAt = jobs.StatusFailed, jobs.StopTimeout, reason, &now
	}
	return true
}

// due reports whether the run's current attempt may be queued now.
func due(r *jobs.Run, now time.Time) bool {
	a := r.Current()
	return a == nil || a.NotBefore == nil || !now.Before(*a.NotBefore)
}

func storageFilter(st ...jobs.Status) storage.RunFilter {
	return storage.RunFilter{Statuses: st, Limit: 5000}
}

// liveWorkers returns the workers' heartbeats, read at most once a second:
// reading them walks the whole presence bucket, too much for every submit.
func (s *Server) liveWorkers(ctx context.Context) ([]jobs.WorkerInfo, error) {
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	if now := time.Now(); now.Sub(s.fleetAt) < time.Second && s.fleetCached != nil {
		return s.fleetCached, nil
	}
	workers, err := s.q.Workers(ctx)
	if err != nil {
		return nil, err
	}
	s.fleetAt, s.fleetCached = time.Now(), workers
	return workers, nil
}

// sweepRun is the sweep's look at one run, r being what the sweep's listing
// said of it (the run may have moved on since).
func (s *Server) sweepRun(ctx context.Context, r *jobs.Run, workers []jobs.WorkerInfo, live map[string]bool,
	absent map[string]time.Time, now time.Time) error {
	a := r.Current()
	if a == nil {
		return nil
	}
	var update func(*jobs.Run) bool
	switch {
	case r.Status == jobs.StatusQueued && r.Spec.Deadline != nil && !now.Before(*r.Spec.Deadline):
		update = func(r *jobs.Run) bool { return expire(r, now) }
	case r.Status == jobs.StatusQueued:
		if a.NotBefore != nil && now.Before(*a.NotBefore) {
			return nil // the retry's own reason stands
		}
		reason := placementReason(r, workers)
		if reason == r.StatusReason || (reason == "" && a.Redelivery) {
			return nil
		}
		update = func(r *jobs.Run) bool {
			if r.Status != jobs.StatusQueued || r.StatusReason == reason {
				return false
			}
			r.StatusReason = reason
			return true
		}
	case a.Worker != "" && !live[a.Worker]:
		since, ok := absent[a.Worker]
		if !ok {
			absent[a.Worker] = now
			return nil
		}
		if now.Sub(since) < s.q.AckWait()+queue.PresenceTTL {
			return nil
		}
		ev := jobs.Event{RunID: r.RunID, Attempt: a.Attempt, Seq: lostSeq, Status: jobs.StatusFailed,
			Source: jobs.SourceWorker, Worker: a.Worker, Time: now, StopCode: jobs.StopWorkerLost, Redelivered: true,
			StoppedReason: fmt.Sprintf("worker %s has sent no heartbeat since %s; the job goes to the next worker of cluster %s that takes it",
				a.Worker, since.Format(time.RFC3339), r.Cluster)}
		update = func(r *jobs.Run) bool { return r.Apply(ev) }
	default:
		return nil
	}
	// The list is a snapshot: the run may have moved on since. Only a
	// change made here is told, or its status would be published twice.
	changed := false
	stored, err := s.db.UpdateRun(ctx, r.RunID, func(r *jobs.Run) bool {
		changed = update(r)
		return changed
	})
	if err != nil {
		return err
	}
	if changed {
		s.publishStatus(stored)
		if stored.Status.Terminal() {
			s.pipelinesChanged(ctx, []*jobs.Run{stored})
		}
	}
	return nil
}
