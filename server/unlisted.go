package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
)

// A worker's heartbeat lists the runs it handles (jobs.WorkerInfo.Runs):
// a run is listed from the moment the worker takes its job until its end
// is reported and the job acknowledged. A run the store has STARTING or
// RUNNING on a live worker whose heartbeats do not list it was lost by
// that worker: it came back under the same --id without its container
// (a new host, Docker's state lost), or its job vanished from under it (a
// store restored onto a new JetStream). When the queue still holds the
// job, its lease runs out and the next worker that takes it records the
// loss (worker/claim.go). When it does not, nothing would: the run would
// stay RUNNING for good.
//
// So the sweep compares. A run unlisted for longer than a lease and a
// heartbeat's TTL (the grace a gone worker gets, in which the queue's
// redelivery has its chance) is recorded as its worker lost it: the same
// WorkerLost event (its seq is the worker's, so both verdicts on the
// attempt are one), a Redelivery attempt that does not count against
// retryStrategy.attempts, whose job the queue hands out again or, when it
// will not, the sweep publishes (redeliver.go).
//
// Races. A run just taken is listed by the worker's next heartbeat,
// seconds after the event that made it RUNNING: well within the grace.
// A heartbeat without a list (a worker from before it, whose runs decode
// as null) says nothing: its runs are left alone. A draining worker lists
// its runs until they end. A run whose worker finished it is unlisted once
// its end is in GANTRY_REPORTS, before the server applied it (a backlog,
// a slow store): the sweep notes the reports stream's last sequence when
// it first sees the run unlisted, and acts only once every report up to
// it was applied. The run is then still running in the store only if
// its end was never reported.
//
// Crash safety: what the sweep remembers is in memory. A server restarted
// starts counting again, so a run is recorded lost at the earliest a grace
// after the start. The record is one UpdateRun (Apply of the WorkerLost
// event): a crash right after it leaves the Redelivery attempt, which the
// next server's sweep watches as any other (redeliver.go).
//
// Cost: nothing per run on the hot path. Each round reads the running
// runs' ids, workers and attempts (storage.ActiveRuns, which sweepLost
// uses too) and compares them with the heartbeats it reads anyway; a
// JetStream request is made only when a run is first seen unlisted or is
// past its grace.

// unlistedRun is a running run its worker's heartbeats did not list.
type unlistedRun struct {
	worker  string
	attempt int
	since   time.Time // first seen unlisted
	// reports is GANTRY_REPORTS' last sequence then: the worker's report
	// of the run's end, if it made one, is at or before it.
	reports uint64
}

// sweepUnlisted records as lost the running runs that their live workers
// have not listed for longer than the grace.
func (s *Server) sweepUnlisted(ctx context.Context, st *sweepState, active []storage.ActiveRun,
	workers []jobs.WorkerInfo, now time.Time) error {
	lists := map[string]bool{}  // live workers whose heartbeats list their runs
	listed := map[string]bool{} // worker + "\x00" + run
	for i := range workers {
		w := &workers[i]
		if w.Runs == nil {
			continue // a worker from before the list: nothing to go by
		}
		lists[w.ID] = true
		for _, id := range w.Runs {
			listed[w.ID+"\x00"+id] = true
		}
	}
	seen := map[string]bool{}
	var fresh, due []string
	for _, ar := range active {
		if !lists[ar.Worker] || listed[ar.Worker+"\x00"+ar.RunID] {
			continue // gone (sweepLost's), without a list, or running it
		}
		seen[ar.RunID] = true
		u, ok := st.unlisted[ar.RunID]
		switch {
		case !ok || u.worker != ar.Worker || u.attempt != ar.Attempt:
			st.unlisted[ar.RunID] = unlistedRun{worker: ar.Worker, attempt: ar.Attempt, since: now}
			fresh = append(fresh, ar.RunID)
		case now.Sub(u.since) >= s.q.AckWait()+queue.PresenceTTL:
			due = append(due, ar.RunID)
		}
	}
	for id := range st.unlisted {
		if !seen[id] {
			delete(st.unlisted, id) // listed again, ended, or its worker gone
		}
	}
	if len(fresh) > 0 {
		last, err := s.q.ReportsPosition(ctx)
		if err != nil {
			for _, id := range fresh {
				delete(st.unlisted, id) // seen again next round
			}
			return err
		}
		for _, id := range fresh {
			u := st.unlisted[id]
			u.reports = last
			st.unlisted[id] = u
		}
	}
	var errs []error
	for _, id := range due {
		u := st.unlisted[id]
		applied, err := s.q.ReportsApplied(ctx, u.reports)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		if !applied {
			continue // the run's end may be among them: wait for it
		}
		if err := s.loseUnlisted(ctx, id, u, now); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(st.unlisted, id)
	}
	return errors.Join(errs...)
}

// loseUnlisted records the run's attempt as lost by its worker, if the
// run is still running that attempt there.
func (s *Server) loseUnlisted(ctx context.Context, id string, u unlistedRun, now time.Time) error {
	changed, err := s.sweepUpdate(ctx, id, func(r *jobs.Run) bool {
		a := r.Current()
		if a == nil || a.Attempt != u.attempt || a.Worker != u.worker ||
			(r.Status != jobs.StatusStarting && r.Status != jobs.StatusRunning) {
			return false
		}
		return r.Apply(jobs.Event{RunID: id, Attempt: u.attempt, Seq: lostSeq, Status: jobs.StatusFailed,
			Source: jobs.SourceWorker, Worker: u.worker, Time: now, StopCode: jobs.StopWorkerLost, Redelivered: true,
			StoppedReason: fmt.Sprintf("worker %s no longer runs it (restarted without its container?): its heartbeats have not listed the run since %s; the job goes to the next worker of cluster %s that takes it",
				u.worker, u.since.Format(time.RFC3339), r.Cluster)})
	})
	if changed {
		s.cfg.log.Warn().Str("run", id).Int("attempt", u.attempt).Str("worker", u.worker).
			Msg("a running run its worker no longer lists: attempt recorded lost")
	}
	return err
}
