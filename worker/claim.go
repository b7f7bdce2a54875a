package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	json "github.com/goccy/go-json"
	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
)

// Claims stores, per run, which worker runs which attempt. A job the queue
// hands out again after its lease expired finds the claim of the worker
// that was lost with it, and runs as the next attempt.
type Claims interface {
	// Claim returns the run's claim and its revision, nil and 0 if none.
	Claim(ctx context.Context, runID string) ([]byte, uint64, error)
	// PutClaim stores a claim if the revision is still rev (0: none yet),
	// and returns an error wrapping ErrClaimConflict otherwise.
	// On success it returns the claim's new revision.
	PutClaim(ctx context.Context, runID string, data []byte, rev uint64) (uint64, error)
}

// JobQueue is implemented by Claims that can also tell whether a job
// message is still in the queue. A worker acknowledges a job once its
// attempt's end is stored, so a job that left the queue belongs to an
// attempt that ended: with it, a worker need not mark its claims done
// after every attempt (a stored write per run), only when its ack fails.
type JobQueue interface {
	// JobQueued reports whether the job message at stream sequence seq
	// is still queued.
	JobQueued(ctx context.Context, seq uint64) (bool, error)
}

// RunEnds is implemented by Claims that can tell whether the server
// announced a run's end. A job whose claim is not done and which is still
// queued was taken by a worker that is gone, but it may have gone after
// its attempt's end was stored and before its ack (a crash in between):
// the job of a run that ended is not run again.
type RunEnds interface {
	RunEnded(ctx context.Context, runID string) (bool, error)
}

// RunRecords is implemented by Claims that can ask the server how it
// records a run. A job queued for longer than claimsTrusted may have
// outlived the claims and the stop request that would keep it from
// running (their buckets keep entries 7 days): before it runs, the
// server is asked whether its run still waits for it.
type RunRecords interface {
	// RunState returns the run's status as the server records it, and
	// the attempt whose job it waits for (a redelivery waits for the job
	// of the attempt it replaces); a run it does not know is
	// jobs.ErrNotFound.
	RunState(ctx context.Context, runID string) (status jobs.Status, jobAttempt int, err error)
}

// claimsTrusted is how long after a job was queued the claims bucket and
// the cancel bucket are sure to hold what was written of its run since:
// they keep entries 7 days (queue), less a day for clocks that disagree.
const claimsTrusted = 6 * 24 * time.Hour

// sequenced is a Lease that knows its job message's stream sequence
// (queue.Delivery).
type sequenced interface{ Seq() uint64 }

// ackSubjected is a Lease that knows the subject its delivery is
// answered on (queue.Delivery): kept with the attempt's containers
// (Task.AckSubject), it lets a restarted worker answer it (Reconcile).
type ackSubjected interface{ AckSubject() string }

// queuedAt is a Lease that knows when its job was queued (queue.Delivery).
type queuedAt interface{ Stored() time.Time }

// ErrClaimConflict says a claim changed between read and write.
var ErrClaimConflict = errors.New("worker: claim changed concurrently")

// MaxLosses is how many workers a run may lose before it fails: a job that
// kills its host would otherwise go round the fleet forever.
const MaxLosses = 5

// Seq numbers of the events a worker publishes for attempts it did not
// run: above any a worker reaches in an attempt of its own.
const (
	lostSeq      = 1 << 30
	reconcileSeq = 1 << 29
)

// WithClaims makes the worker claim every attempt it runs.
func WithClaims(c Claims) Option { return func(cfg *config) { cfg.claims = c } }

// claim is the stored record of one run's current attempt.
type claim struct {
	Attempt int    `json:"attempt"`
	Worker  string `json:"worker"`
	// Done says the attempt ended. Workers whose claims carry Seq mark it
	// only when the job's ack failed: otherwise the job's leaving the
	// queue says as much (JobQueue), and a run's announced end does for a
	// worker that went between storing the end and the ack (RunEnds).
	Done   bool      `json:"done,omitempty"`
	Losses int       `json:"losses,omitempty"`
	Time   time.Time `json:"time"`
	// Job is the attempt of the job message this claim's attempts run: a
	// delivery of an older job (one whose attempt the server replaced by
	// publishing a job for the next) is stale. 0 in older claims.
	Job int `json:"job,omitempty"`
	// Canceled is the reason of a user's stop that came while no worker
	// held the run (see CancelClaim): whoever takes its job next only
	// reports it canceled.
	Canceled string `json:"canceled,omitempty"`
	// Seq is the stream sequence of the job message the attempt runs, 0
	// if unknown (older workers, sources without sequences).
	Seq uint64 `json:"seq,omitempty"`
	// HandedBack says the attempt's worker reported it ended and gave its
	// job back to the queue (handBack): whoever takes the job next runs
	// the next attempt, as after a lost worker, but has no loss to report.
	HandedBack bool `json:"handedBack,omitempty"`
}

// taking is the outcome of claiming a delivery.
type taking struct {
	attempt int
	rev     uint64
	job     int    // the claim's Job
	seq     uint64 // the claim's Seq
	// lost is the claim of a worker that was lost with this job.
	lost   *claim
	losses int // of a canceled claim, kept when it is marked done
	// stale: the attempt ended already (a late redelivery); just ack.
	stale bool
	// first: the run had no claim, so no stop request came before this
	// one (CancelClaim); a later one reaches the worker as a message.
	first bool
	// canceled is the reason the claim holds of a stop request that came
	// while no worker held the run.
	canceled string
	// heldBy is the live worker that still runs the claimed attempt of a
	// job delivered again (claimantRuns): the delivery is left to it.
	heldBy string
}

// claimDelivery decides which attempt a delivery of the job for attempt
// jobAttempt, stream sequence seq (0 if unknown), runs, and records it.
func (w *Worker) claimDelivery(ctx context.Context, runID string, jobAttempt int, seq uint64, queued time.Time) (taking, error) {
	if w.cfg.claims == nil {
		return taking{attempt: jobAttempt}, nil
	}
	if !queued.IsZero() && w.cfg.now().Sub(queued) > claimsTrusted {
		if over, err := w.outlived(ctx, runID, jobAttempt); err != nil {
			return taking{}, err
		} else if over {
			return taking{stale: true}, nil
		}
	}
	// Most deliveries are a run's first: claim it in one step, and read
	// what is there only when someone was first.
	first, _ := json.Marshal(claim{Attempt: jobAttempt, Worker: w.id, Time: w.cfg.now().UTC(), Job: jobAttempt, Seq: seq})
	if rev, err := w.cfg.claims.PutClaim(ctx, runID, first, 0); err == nil {
		return taking{attempt: jobAttempt, rev: rev, job: jobAttempt, seq: seq, first: true}, nil
	} else if !errors.Is(err, ErrClaimConflict) {
		return taking{}, err
	}
	for try := 0; try < 5; try++ {
		data, rev, err := w.cfg.claims.Claim(ctx, runID)
		if err != nil {
			return taking{}, err
		}
		var old *claim
		if data != nil {
			old = new(claim)
			if err := json.Unmarshal(data, old); err != nil {
				old = nil // unreadable: start afresh
			}
		}
		next := claim{Attempt: jobAttempt, Worker: w.id, Time: w.cfg.now().UTC(), Job: jobAttempt, Seq: seq}
		var t taking
		switch {
		case old != nil && old.Canceled != "" && old.Attempt < jobAttempt:
			// Stopped while queued: this attempt only says so (Worker.handle).
			// A late delivery of the attempt before the stop (its claim is
			// done, so CancelClaim wrote to it) is stale, below: the stop is
			// kept for the attempt it was meant for.
			return taking{attempt: jobAttempt, rev: rev, job: jobAttempt, canceled: old.Canceled,
				losses: old.Losses}, nil
		case old == nil || old.Attempt < jobAttempt:
		case old.Done || old.Job > jobAttempt:
			// The attempt ended, or the server replaced this job by one of a
			// later attempt (server/fleet.go, releaseRedelivery): a late delivery.
			return taking{stale: true}, nil
		case old.HandedBack && old.Canceled != "":
			// Stopped after its worker handed the job back, before anyone
			// took it: the next attempt only says so, as above.
			return taking{attempt: old.Attempt + 1, rev: rev, job: jobAttempt, canceled: old.Canceled,
				losses: old.Losses}, nil
		default:
			// Someone took this job and did not mark it done. If its job
			// left the queue, the worker acknowledged it after the end was
			// stored: this is a late delivery. If it is still queued and
			// this is another message (the same job published again after
			// the queue's duplicate window), that one comes back should its
			// worker be gone: this one is a duplicate. If the run ended, its
			// worker went between storing the end and the ack. Otherwise
			// the attempt was lost.
			queued, known, err := w.jobQueued(ctx, old)
			ended := known && (!queued || (seq != 0 && seq != old.Seq))
			if err == nil && !ended {
				ended, err = w.runEnded(ctx, runID)
			}
			if err == nil && !ended {
				// Its worker may also have gone after storing a failed
				// end that the server answered with a retry, waiting out
				// its backoff: the run no longer waits for this job. A
				// server that does not answer does not hold up a lost
				// worker's job, which needs only NATS to go on.
				if over, oerr := w.outlived(ctx, runID, jobAttempt); oerr != nil {
					w.cfg.log.Warn().Err(oerr).Str("run", runID).Msg("cannot ask the server; taking the job as lost with its worker")
				} else {
					ended = over
				}
			}
			if err != nil {
				return taking{}, fmt.Errorf("claim run %s: %w", runID, err)
			}
			if ended {
				return taking{stale: true}, nil
			}
			if !old.HandedBack && w.claimantRuns(ctx, runID, old) {
				return taking{heldBy: old.Worker}, nil
			}
			next.Attempt = old.Attempt + 1
			if old.HandedBack {
				// Its worker reported its end (a shutdown, say), which
				// no loss counts.
				next.Losses, t.losses = old.Losses, old.Losses
			} else {
				next.Losses = old.Losses + 1
				t.lost = old
			}
		}
		t.attempt, t.job, t.seq = next.Attempt, next.Job, next.Seq
		data, _ = json.Marshal(next)
		t.rev, err = w.cfg.claims.PutClaim(ctx, runID, data, rev)
		if errors.Is(err, ErrClaimConflict) {
			continue
		}
		if err != nil {
			return taking{}, err
		}
		return t, nil
	}
	return taking{}, fmt.Errorf("claim run %s: too many concurrent changes", runID)
}

// claimantRuns reports whether the worker of claim c, whose job is still
// queued and whose run has not ended, still runs it: the life that claimed
// it (not started since) beats, at most two heartbeats ago, and lists the
// run, or has not beaten since the claim. A job message handed out while
// its worker runs it is not that worker's loss: a NATS server killed with
// SIGKILL can come back without the consumer's latest deliveries and hand
// them out again at once, and taking them for lost would run the next
// attempt beside the live one, or after the run ended (its end applied
// between this worker's look at the run and the start). The delivery is
// left alone: the live worker's lease renewals and ack go by stream
// sequence and hold for it; should that worker stop renewing them, the
// job comes back and its stale heartbeats make it lost. A fleet that
// cannot be read says nothing, as before: the worker is taken for lost.
// It costs one read of the fleet, only for a delivery that would
// otherwise be taken for a lost worker's.
func (w *Worker) claimantRuns(ctx context.Context, runID string, c *claim) bool {
	fl, ok := w.cfg.presence.(FleetLister)
	if !ok || c.Worker == w.id {
		return false
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ws, err := fl.Workers(lctx)
	if err != nil {
		w.cfg.log.Warn().Err(err).Str("run", runID).Msg("cannot read the fleet; taking the job as lost with its worker")
		return false
	}
	for _, info := range ws {
		if info.ID != c.Worker {
			continue
		}
		if info.StartedAt.After(c.Time) || w.cfg.now().Sub(info.LastHeartbeat) > 2*w.cfg.beatEvery {
			return false // restarted since its claim, or silent
		}
		return info.LastHeartbeat.Before(c.Time) || slices.Contains(info.Runs, runID)
	}
	return false
}

// jobQueued reports whether the job message of claim c is still queued (a
// worker's ack after the attempt's end takes it out); known is false when
// that cannot be told (no sequence, or claims that cannot ask the queue).
func (w *Worker) jobQueued(ctx context.Context, c *claim) (queued, known bool, err error) {
	jq, ok := w.cfg.claims.(JobQueue)
	if !ok || c.Seq == 0 {
		return false, false, nil
	}
	queued, err = jq.JobQueued(ctx, c.Seq)
	if err != nil {
		return false, false, fmt.Errorf("is job %d still queued: %w", c.Seq, err)
	}
	return queued, true, nil
}

// runEnded reports whether the server announced the run's end; false when
// the claims cannot tell (RunEnds).
func (w *Worker) runEnded(ctx context.Context, runID string) (bool, error) {
	re, ok := w.cfg.claims.(RunEnds)
	if !ok {
		return false, nil
	}
	ended, err := re.RunEnded(ctx, runID)
	if err != nil {
		return false, fmt.Errorf("has run %s ended: %w", runID, err)
	}
	return ended, nil
}

// outlived reports whether an old job's run no longer waits for it: the
// server records the run as ended, waiting for the job of a later attempt
// (a retry), or not at all.
func (w *Worker) outlived(ctx context.Context, runID string, jobAttempt int) (bool, error) {
	rr, ok := w.cfg.claims.(RunRecords)
	if !ok {
		return false, nil
	}
	status, attempt, err := rr.RunState(ctx, runID)
	if errors.Is(err, jobs.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("ask the server whether run %s still waits for the job of attempt %d: %w", runID, jobAttempt, err)
	}
	return status.Terminal() || attempt > jobAttempt, nil
}

// settle lets the job of an attempt whose end is stored go. A job that
// left the queue says its attempt ended, so the claim is marked done only
// when that cannot be told: the ack failed (a redelivery may come), or
// nobody could ask the queue (jobQueued).
func (w *Worker) settle(life context.Context, log zerolog.Logger, lease Lease, runID string, t taking, losses int) {
	_, askable := w.cfg.claims.(JobQueue)
	if !askable || t.seq == 0 {
		w.finishClaim(life, runID, t, losses)
		w.ack(life, log, lease)
		return
	}
	if err := w.ack(life, log, lease); err != nil {
		w.finishClaim(life, runID, t, losses)
	}
}

// handBack gives the job of an attempt whose end is stored (an event with
// Redelivered) back to the queue, to be delivered after delay: the claim
// says so first, so that the worker that takes the job next runs the next
// attempt, which the stored end made the run wait for. Per step, if the
// worker dies just after it: the end stored, the lease expires and the
// next worker takes the attempt for lost (the server ignores the loss
// it reports of an attempt that ended, but the loss counts); the claim
// stored, the lease expires and the next worker runs the next attempt;
// the nak sent, the next worker gets it sooner.
//
// Only a claim this worker marked handed back is followed by the nak: when
// the end was not stored or the claim could not be written (it changed:
// another worker took the job over after this one's lease lapsed), the job
// is left to its lease. NATS takes a nak from a stale delivery, and would
// put back in the queue the job that other worker runs.
func (w *Worker) handBack(life context.Context, log zerolog.Logger, lease Lease, runID string, t taking, losses int,
	stored bool, delay time.Duration) {
	if !stored {
		log.Warn().Msg("attempt's end not stored; its job returns when its lease expires, and the next worker takes it for lost")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(life), 10*time.Second)
	data, _ := json.Marshal(claim{Attempt: t.attempt, Worker: w.id, Losses: losses, Time: w.cfg.now().UTC(),
		Job: t.job, Seq: t.seq, HandedBack: true})
	_, err := w.cfg.claims.PutClaim(ctx, runID, data, t.rev)
	cancel()
	if err != nil {
		log.Warn().Err(err).Msg("mark attempt handed back; its job returns when its lease expires, and the next worker takes it for lost")
		return
	}
	if err := lease.Nak(delay); err != nil {
		log.Warn().Err(err).Msg("hand job back; it returns when its lease expires")
	}
}

// finishClaim marks the attempt done, so that a late redelivery of its job
// is only acknowledged.
func (w *Worker) finishClaim(ctx context.Context, runID string, t taking, losses int) {
	if w.cfg.claims == nil {
		return
	}
	data, _ := json.Marshal(claim{Attempt: t.attempt, Worker: w.id, Done: true, Losses: losses, Time: w.cfg.now().UTC(), Job: t.job, Seq: t.seq})
	if _, err := w.cfg.claims.PutClaim(ctx, runID, data, t.rev); err != nil {
		w.cfg.log.Warn().Err(err).Str("run", runID).Int("attempt", t.attempt).Msg("mark attempt done")
	}
}

// A Claimed is what a stored claim says of the attempt it is for.
type Claimed struct {
	Attempt int
	// Worker took the attempt's job.
	Worker string
	// Done: the attempt ended. A claim that is not done may still be of an
	// ended attempt whose job left the queue: see Seq.
	Done bool
	// Seq is the stream sequence of the attempt's job message, 0 if
	// unknown; while the message is queued, the queue may hand it out again.
	Seq uint64
	// HandedBack: the worker reported the attempt's end and gave its job
	// back to the queue, for the next attempt.
	HandedBack bool
}

// ReadClaim reads a stored claim; ok is false for data that is no claim.
// The server reads claims to tell whether a lost attempt's job may still
// come back.
func ReadClaim(data []byte) (c Claimed, ok bool) {
	var st claim
	if data == nil || json.Unmarshal(data, &st) != nil || st.Attempt < 1 {
		return Claimed{}, false
	}
	return Claimed{Attempt: st.Attempt, Worker: st.Worker, Done: st.Done, Seq: st.Seq, HandedBack: st.HandedBack}, true
}

// CancelClaim returns the claim to store for a run that a user stops, given
// the stored one (nil if none) and the run's current attempt as the server
// knows it: a claim no worker holds (none; its attempt done or handed
// back, its end reported; or an attempt before current that ended, as a
// retry's predecessor did) records the stop, and the worker that takes
// the run's job next claims it only to report it canceled. ok is false
// for a claim that a worker holds, or may (the lost attempt before a
// redelivery): that worker hears of the stop from the cancel message,
// which must be sent after this claim is stored.
func CancelClaim(data []byte, reason string, current int, redelivery bool) (next []byte, ok bool) {
	var c claim
	if data != nil && json.Unmarshal(data, &c) != nil {
		c = claim{} // unreadable: replaced, as claimDelivery would
	}
	ended := c.Done || c.HandedBack || c.Attempt < current-1 || (c.Attempt == current-1 && !redelivery)
	if c.Attempt > 0 && !ended {
		return nil, false
	}
	if reason == "" {
		reason = "canceled"
	}
	c.Canceled = reason
	next, _ = json.Marshal(c)
	return next, true
}

// EndClaim returns the claim to store for a run that the server has just
// recorded as ended by the end of attempt ended, given the stored claim
// (nil if none). A claim of a later attempt that a worker holds (taken
// for a lost worker's, the loss not yet reported) is that worker's: later
// names it, and next is nil, for the run's pool slot is kept until it
// ends. Any other claim is marked done, so that whoever is given the job
// again takes it as a late delivery (claimDelivery), and next is nil only
// when it is done already, or there is none. The claim is written by
// revision: a worker taking the job as lost meanwhile makes the write
// conflict, and the claim is read again.
func EndClaim(data []byte, ended int) (next []byte, later *Claimed) {
	var c claim
	if data == nil || json.Unmarshal(data, &c) != nil || c.Attempt < 1 {
		return nil, nil
	}
	if c.Attempt > ended && !c.Done && !c.HandedBack {
		return nil, &Claimed{Attempt: c.Attempt, Worker: c.Worker, Seq: c.Seq}
	}
	if c.Done {
		return nil, nil
	}
	c.Done = true
	next, _ = json.Marshal(c)
	return next, nil
}
