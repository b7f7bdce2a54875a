package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/worker"
)

// A run of a pool stopped while QUEUED is CANCELED at once, but its slot
// frees at once only when no container of it can run: when it still
// waited for a slot or its dependsOn (its job unpublished), or when its
// claim showed that no worker held its job (none had taken it, or the one
// that had reported the attempt's end, handing the job back or not), in
// which case Stop records the stop in the claim and whoever takes the job
// later only reports it canceled (worker.CancelClaim). When a worker held
// the claim, it had taken the job and its start was not yet recorded: it
// may be creating the containers now, and stops them when the cancel
// message reaches it. The run then keeps its slot (jobs.SlotKeep,
// jobs.PoolKept), counted in use, until
//
//   - the worker reports the end of the attempt it took, or of a later
//     one (another worker found it lost and took the job): the event's
//     application frees the slot, and the pool releases its next run;
//   - or the sweep finds the job let go: the claim is no longer that
//     worker's for that attempt, or is done or handed back, or the job
//     message left the queue (a worker acknowledges a job only after its
//     end is stored, and hands out a lost worker's only after its lease
//     lapsed);
//   - or the sweep finds that worker gone for as long as it takes to mark
//     a running run's attempt lost (the lease plus a heartbeat's TTL).
//
// A run of a pool that a worker's report ends while another worker holds
// its job as a later attempt keeps its slot the same way (endClaim).
//
// Crash safety, per step of a stop, if the server dies just after it:
//
//  1. The stop is in the cancel bucket: the run is still QUEUED, holding
//     its slot. The user's stop failed and may be sent again.
//  2. The stop is in the claim (no worker held it): a worker that takes
//     the job reports the run CANCELED, which ends it and frees its slot
//     as any end does.
//  3. The cancel message is sent: the worker that holds the job stops it
//     and reports its end, which ends the run and frees its slot as in 2.
//  4. The run is stored CANCELED keeping its slot (its document and its
//     pool_runs row, state 4, in one transaction): at start the release
//     counts the slot in use, so no run takes it; the worker's event or
//     the sweep frees it, as above (the sweep's count of a worker's
//     absence starts again with the server).
//  5. The slot is freed (document and row in one transaction, by the
//     event's application or by the sweep): the pool's release follows
//     at once, or at start and at every sweep (releaseAllPools).

// sweepKept frees the slots that runs which ended keep, once no container
// of them can run (see above); st.keptGone remembers since when each of
// their workers has been seen gone.
func (s *Server) sweepKept(ctx context.Context, st *sweepState, live map[string]bool, now time.Time) error {
	gone := st.keptGone
	runs, err := s.db.KeptSlots(ctx)
	if err != nil {
		return err
	}
	waited := map[string]bool{}
	var errs []error
	for i := range runs {
		r := &runs[i]
		k := r.PoolSlotKept
		if k == nil {
			continue
		}
		why, err := s.keptSlotFree(ctx, r.RunID, k, st, live, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("run %s keeping a slot of pool %s: %w", r.RunID, r.Pool, err))
			waited[k.Worker] = true
			continue
		}
		if why == "" {
			waited[k.Worker] = true
			continue
		}
		if err := s.freeKeptSlot(ctx, r.RunID, why); err != nil {
			errs = append(errs, err)
		}
	}
	for w := range gone {
		if !waited[w] || live[w] {
			delete(gone, w)
		}
	}
	return errors.Join(errs...)
}

// keptSlotFree says why no container of the run that keeps a slot (k) can
// run now, or "" while one may.
func (s *Server) keptSlotFree(ctx context.Context, id string, k *jobs.SlotKeep, st *sweepState,
	live map[string]bool, now time.Time) (string, error) {
	data, _, err := s.q.Claim(ctx, id)
	if err != nil {
		return "", err
	}
	c, ok := worker.ReadClaim(data)
	switch {
	case !ok:
		return "its claim is gone", nil
	case c.Attempt != k.Attempt || c.Worker != k.Worker:
		return fmt.Sprintf("worker %s no longer holds its job: the claim is attempt %d's, of worker %s", k.Worker, c.Attempt, c.Worker), nil
	case c.Done || c.HandedBack:
		return fmt.Sprintf("worker %s let its job go", k.Worker), nil
	case c.Seq != 0:
		queued, err := s.q.JobQueued(ctx, c.Seq)
		if err != nil {
			return "", err
		}
		if !queued {
			return fmt.Sprintf("its job left the queue: worker %s, or the one after it, acknowledged it", k.Worker), nil
		}
	}
	if live[k.Worker] {
		return "", nil
	}
	since, ok := st.keptGone[k.Worker]
	if !ok {
		st.keptGone[k.Worker] = now
		return "", nil
	}
	if now.Sub(since) < s.q.AckWait()+queue.PresenceTTL {
		return "", nil
	}
	return s.silence(st, k.Worker), nil
}

// freeKeptSlot frees the slot run id kept, saying why, and releases its
// pool.
func (s *Server) freeKeptSlot(ctx context.Context, id, why string) error {
	var freed bool
	r, err := s.db.UpdateRun(ctx, id, func(r *jobs.Run) bool {
		freed = r.FreeSlot()
		return freed
	})
	if errors.Is(err, jobs.ErrNotFound) {
		return nil
	}
	if err != nil || !freed {
		return err
	}
	s.cfg.log.Info().Str("run", id).Str("pool", r.Pool).Str("why", why).Msg("stopped run frees its slot")
	return s.releasePools(ctx, r.Pool)
}

// claimTimeout bounds endClaim's asks of the claims bucket, made while
// the store's write transaction is open.
const claimTimeout = 10 * time.Second

// endClaim is the check of a run of a pool that worker reports end while
// it holds its slot (storage.EndCheck), before its end is stored. A
// worker whose lease lapsed (killed, or cut off from NATS) may report an
// attempt's end after another worker took its job for lost, as the next
// attempt, which may be starting its containers: the run ends by the
// report, but keeps its slot until that attempt ends (jobs.KeepSlotFor),
// or the sweep finds it gone, as above. Otherwise the claim is marked
// done (worker.EndClaim), by revision: a worker taking the job for lost
// meanwhile makes the write conflict, and is then seen here; one that
// takes it after finds the claim done and leaves the job. Only runs of
// pools pay this: a read of the claim, and a write.
func (s *Server) endClaim(ctx context.Context, r *jobs.Run) error {
	ctx, cancel := context.WithTimeout(ctx, claimTimeout)
	defer cancel()
	for try := 0; try < 5; try++ {
		data, rev, err := s.q.Claim(ctx, r.RunID)
		if err != nil {
			return fmt.Errorf("read its claim: %w", err)
		}
		next, later := worker.EndClaim(data, currentAttempt(r))
		if later != nil {
			if r.KeepSlotFor(s.cfg.now(), later.Attempt, later.Worker) {
				s.cfg.log.Info().Str("run", r.RunID).Str("pool", r.Pool).Str("worker", later.Worker).Int("attempt", later.Attempt).
					Msg("ended by a worker taken for lost, whose job another worker holds: it keeps its slot until that attempt ends")
			}
			return nil
		}
		if next == nil {
			return nil
		}
		if _, err := s.q.PutClaim(ctx, r.RunID, next, rev); !errors.Is(err, queue.ErrClaimConflict) {
			if err != nil {
				return fmt.Errorf("mark its claim done: %w", err)
			}
			return nil
		}
	}
	return fmt.Errorf("its claim: too many concurrent changes")
}
