package server

import (
	"context"
	"errors"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/worker"
)

// A lost attempt (WorkerLost, Redelivered) is followed by a Redelivery
// attempt, for which the server publishes nothing: the queue hands the lost
// attempt's job to the next worker, whose claim (worker/claim.go) makes it
// run as that attempt. But a worker taken for lost may have been alive
// (presence bucket unreachable, a partition, slow heartbeats): if it
// finishes and acknowledges the job, no redelivery ever comes, and the run
// would wait QUEUED forever with no job behind it.
//
// So the sweep watches Redelivery attempts. Once one has waited longer than
// a lease and a heartbeat's TTL (the redelivery has had its chance) it reads
// the run's claim: while the claim shows the lost attempt not done and its
// job message still queued (its worker still holds the job, or the queue
// will hand it out again) or a later attempt (a worker took the
// redelivery; its events are on their way), it waits on. Otherwise — the
// lost attempt's worker finished it (its claim is marked done, or its job
// left the queue: workers acknowledge a job only once its end is stored),
// or there is no claim to ask (workers without claims; a claim that
// expired) — it turns the attempt into an ordinary one and publishes its
// job, as for a retry.
//
// Duplicates. The lost attempt's job cannot also run as this attempt: it
// is published only when the lost attempt's job left the queue or its
// claim shows it done, and a delivery of a job whose attempt is done is
// only acknowledged; if that
// delivery comes once this attempt is claimed, the claim's Job (the
// attempt this job is of) is later than the delivery's, which makes it
// stale too. Events of the lost attempt that come late change nothing:
// jobs.Run.Apply ignores events of an attempt that ended, and the lost one
// ended FAILED (WorkerLost); events of attempts but the current one never
// change the run's status.

// redeliveryGrace is how long a Redelivery attempt waits for the queue to
// hand out the lost attempt's job before the sweep asks the claim about it.
func (s *Server) redeliveryGrace() time.Duration { return s.q.AckWait() + queue.PresenceTTL }

// sweepRedeliveries publishes the jobs of the Redelivery attempts whose
// redelivery will not come.
func (s *Server) sweepRedeliveries(ctx context.Context, st *sweepState, now time.Time) error {
	for id, since := range st.redeliveries {
		if now.Sub(since) < s.redeliveryGrace() {
			continue
		}
		r, err := s.db.GetRun(ctx, id)
		if errors.Is(err, jobs.ErrNotFound) {
			delete(st.redeliveries, id)
			continue
		}
		if err != nil {
			return err
		}
		a := r.Current()
		if r.Status != jobs.StatusQueued || a == nil || !a.Redelivery {
			delete(st.redeliveries, id) // a worker took it, or it ended
			continue
		}
		if !a.CreatedAt.Equal(since) {
			st.redeliveries[id] = a.CreatedAt // lost again since: a new wait
			continue
		}
		wait, err := s.redeliveryMayCome(ctx, r)
		if err != nil {
			s.cfg.log.Warn().Err(err).Str("run", id).Int("attempt", a.Attempt).Msg("read claim of redelivered run")
			continue // ask again at the next round
		}
		if wait {
			continue
		}
		if err := s.releaseRedelivery(ctx, r.RunID, a.Attempt); err != nil {
			return err
		}
		delete(st.redeliveries, id)
	}
	return nil
}

// redeliveryMayCome reports whether the run's claim says that the job of
// its lost attempt may still reach a worker, or has already: then the
// server must publish nothing.
func (s *Server) redeliveryMayCome(ctx context.Context, r *jobs.Run) (bool, error) {
	data, _, err := s.q.Claim(ctx, r.RunID)
	if err != nil {
		return false, err
	}
	c, ok := worker.ReadClaim(data)
	if !ok {
		return false, nil // nothing to go by: a redelivery would not run as this attempt either
	}
	cur := r.Current().Attempt
	switch {
	case c.Attempt >= cur:
		return true, nil // taken: the worker's events will move the run
	case c.Attempt != cur-1 || c.Done:
		return false, nil
	case c.Seq == 0:
		return true, nil // held by the lost attempt's worker, or to be handed out again
	}
	// Workers mark claims done only when an ack fails: a lost attempt's job
	// that left the queue was acknowledged by its worker, which finished it.
	return s.q.JobQueued(ctx, c.Seq)
}

// releaseRedelivery makes the run's Redelivery attempt an ordinary one and
// publishes its job. Per step, if the server dies just after it:
//
//  1. RequeueRun (the attempt loses Redelivery, and its job counts as not
//     published, in one transaction): at the next start republish publishes
//     the job, as for any run left unpublished.
//  2. PublishJob (in enqueue, Nats-Msg-Id run/attempt): the run is still
//     unpublished, so the next start publishes it again, which the queue's
//     duplicate window absorbs; after a longer outage a second message of
//     the attempt reaches a worker, whose claim shows the attempt taken —
//     as for every job that enqueue publishes twice.
//  3. MarkPublished: done; nothing is published again.
//
// Before step 1 nothing changed: the next server's first sweep finds the
// attempt again (it looks at every queued run) and asks its claim again.
func (s *Server) releaseRedelivery(ctx context.Context, runID string, attempt int) error {
	r, changed, err := s.db.RequeueRun(ctx, runID, func(r *jobs.Run) bool {
		a := r.Current()
		if r.Status != jobs.StatusQueued || a == nil || a.Attempt != attempt || !a.Redelivery {
			return false
		}
		a.Redelivery = false
		return true
	})
	if err != nil || !changed {
		return err
	}
	s.cfg.log.Warn().Str("run", runID).Int("attempt", attempt).
		Msg("the lost attempt's job was not redelivered (its worker finished it, or the claim is gone): publishing the attempt's job")
	if err := s.enqueue(ctx, r); err != nil {
		// Stored as unpublished: the next round's republish publishes it.
		s.cfg.log.Error().Err(err).Str("run", runID).Msg("queue redelivery")
	}
	return nil
}
