package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
)

// Leftovers finds what an earlier life of this worker left in the runtime:
// the containers of attempts it ran when it was killed.
type Leftovers interface {
	// Leftovers lists the attempts whose containers carry this worker's
	// labels.
	Leftovers(ctx context.Context) ([]Leftover, error)
	// RemoveLeftover stops the attempt's containers (SIGTERM, then SIGKILL
	// after their stop timeout) and removes them with the attempt's
	// networks and volumes. Safe to call twice.
	RemoveLeftover(ctx context.Context, l Leftover) error
}

// Leftover is one attempt found in the runtime.
type Leftover struct {
	RunID   string
	Attempt int
	// Running is true while the attempt has not ended: a container runs,
	// or one was created and never started.
	Running bool
	// Staged is true for an attempt whose end the worker completes after
	// its containers exit (a pipeline stage's outputs, stored from the
	// worker's directory): exited, it still did not end.
	Staged     bool
	Containers []jobs.ContainerResult
	// AckSubject is the ack subject of the job delivery the attempt ran
	// under (Task.AckSubject), "" for containers made by a gantry that
	// did not keep it.
	AckSubject string
}

// Deliveries is implemented by Claims that can answer a job delivery
// known only by its ack subject (queue's NakDelivery and AckDelivery):
// with it, a restarted worker hands back at once the job of an attempt its
// earlier life left running, rather than leave it to its lease.
type Deliveries interface {
	// AckSubjectSeq returns the stream sequence of the job message whose
	// delivery has ack subject s; false for a subject that is none.
	AckSubjectSeq(s string) (seq uint64, ok bool)
	// NakDelivery hands the job back to the queue, to be delivered again
	// at once, and returns once the queue took it.
	NakDelivery(ctx context.Context, ackSubject string) error
	// AckDelivery takes the job out of the queue.
	AckDelivery(ctx context.Context, ackSubject string) error
}

// WithLeftovers makes Run reconcile the runtime before taking work.
func WithLeftovers(l Leftovers) Option { return func(c *config) { c.leftovers = l } }

// Reconcile deals with what an earlier life of the worker left behind: an
// attempt whose containers all exited is reported as they ended (and its
// claim marked done, so that its redelivered job is only acknowledged; its
// delivery is acknowledged at once, when the claim says the earlier life
// still held it); an attempt still running is stopped, not adopted, and so
// is an attempt of a pipeline stage that succeeded, whose outputs were not
// stored. The job of such an attempt goes to the next attempt, which
// records this one as WorkerLost: its delivery is handed back (nak) once
// the containers are stopped, when the claim says the earlier life still
// held it (handBackLeftover); otherwise the job comes back when its lease,
// which died with the old process, runs out. Everything is then removed,
// with the stage directories that life left.
func (w *Worker) Reconcile(ctx context.Context) error {
	l := w.cfg.leftovers
	if l == nil {
		return nil
	}
	found, err := l.Leftovers(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	removed := true
	var lost []Leftover // stopped, their jobs to hand back
	for _, lo := range found {
		log := w.leftoverLog(lo)
		lostOne := false
		switch {
		case lo.Running:
			log.Warn().Msg("stopping an attempt left running by an earlier life of this worker; its job runs again as the next attempt")
			lostOne = true
		case lo.Staged && leftoverOutcome(lo).Status == jobs.StatusSucceeded:
			// Its outputs never reached the object store: reporting it
			// SUCCEEDED would hand its downstream stages nothing. (A
			// failed one stores none anyway: it is reported.)
			log.Warn().Msg("an attempt of a pipeline stage succeeded while the worker was down, its outputs not stored; its job, if still queued, runs again")
			lostOne = true
		default:
			ev := leftoverOutcome(lo)
			ev.RunID, ev.Attempt, ev.Seq, ev.Source, ev.Worker = lo.RunID, lo.Attempt, reconcileSeq, jobs.SourceWorker, w.id
			ev.Time = w.cfg.now().UTC()
			log.Info().Str("status", string(ev.Status)).Msg("reporting an attempt that ended while the worker was down")
			if w.publish(ctx, log, &ev) {
				if c, done := w.markLeftoverDone(ctx, log, lo); done {
					w.ackLeftover(ctx, log, lo, c)
				}
			}
		}
		if err := l.RemoveLeftover(ctx, lo); err != nil {
			log.Error().Err(err).Msg("remove leftover containers")
			removed = false
			continue // maybe still running: its job waits for its lease
		}
		if lostOne {
			lost = append(lost, lo)
		}
	}
	// No container of the earlier life can still write to its stage
	// directories.
	if removed {
		w.sweepStaged()
	}
	if len(lost) > 0 && w.cfg.presence != nil {
		// A worker that takes a job handed back here asks the fleet
		// whether the life that claimed it still runs it
		// (claimantRuns): this life's first heartbeat tells it no.
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := w.cfg.presence.Beat(bctx, w.Info()); err != nil {
			w.cfg.log.Warn().Err(err).Msg("heartbeat")
		}
		cancel()
	}
	for _, lo := range lost {
		w.handBackLeftover(ctx, w.leftoverLog(lo), lo)
	}
	return nil
}

func (w *Worker) leftoverLog(lo Leftover) zerolog.Logger {
	return w.cfg.log.With().Str("run", lo.RunID).Int("attempt", lo.Attempt).Str("worker", w.id).Logger()
}

// leftoverDelivery returns what answers the delivery an earlier life
// held for attempt lo and the job message's stream sequence; ok is false
// when it cannot be answered, why saying why: no claims that can
// (Deliveries), or no ack subject kept (containers of an older gantry).
func (w *Worker) leftoverDelivery(lo Leftover) (d Deliveries, seq uint64, why string) {
	d, ok := w.cfg.claims.(Deliveries)
	switch {
	case !ok:
		return nil, 0, "the worker cannot answer a delivery by its ack subject"
	case lo.AckSubject == "":
		return nil, 0, "no ack subject kept with its containers (made by an older gantry)"
	}
	if seq, ok = d.AckSubjectSeq(lo.AckSubject); !ok {
		return nil, 0, fmt.Sprintf("the ack subject kept with its containers, %q, is not a job delivery's", lo.AckSubject)
	}
	return d, seq, ""
}

// handBackLeftover hands back the job of an attempt an earlier life left
// running, once its containers are stopped, so that the next attempt
// starts now rather than when the lease runs out. Only a delivery that
// the run's claim says the earlier life still held: the claim of this
// attempt, by this worker, neither done nor handed back (by a shutdown
// before the crash, which handed the job back itself), for the same job
// message. JetStream takes a nak by the message's stream sequence alone,
// from any delivery of it (queue.NakDelivery): had the lease run out and
// another worker taken the job, whose claim then names it (or the next
// attempt), a nak would hand back the job that worker runs. That leaves a
// worker whose delivery of the job came before the nak but whose claim
// was not stored when the claim was read here: not only the milliseconds
// between the read and the nak, but the time that worker takes to claim
// the delivery, which asks the queue, the server and the fleet (seconds,
// under load). The nak hands back the job it runs, whose next delivery
// finds that worker alive in its claim and is left to it (claimantRuns;
// a worker that gets it back itself keeps its attempt, Worker.handle),
// as after a NATS server that lost its last deliveries.
//
// A claim that cannot be read leaves the job to its lease, and says so.
//
// The next worker to take the job (this one, or another) finds the claim
// of a worker that is not running it and records the attempt WorkerLost,
// as when the lease runs out. Per step, if the worker dies just after
// it: the containers stopped, the job comes back when its lease runs out;
// the nak sent, the next worker takes it at once.
func (w *Worker) handBackLeftover(ctx context.Context, log zerolog.Logger, lo Leftover) {
	d, seq, why := w.leftoverDelivery(lo)
	if why != "" {
		log.Info().Str("why", why).Msg("job of the stopped attempt left to its lease: it comes back when that runs out")
		return
	}
	c, _, ok, err := w.readLeftoverClaim(ctx, lo)
	if err != nil {
		log.Warn().Err(err).Msg("cannot tell whether this worker's earlier life still held the job of the stopped attempt: left to its lease, it comes back when that runs out")
		return
	}
	if !ok || c.Done || c.HandedBack || c.Seq != seq {
		log.Info().Msg("job of the stopped attempt no longer held by this worker's earlier life (taken over, handed back or ended): left to the queue")
		return
	}
	if err := d.NakDelivery(ctx, lo.AckSubject); err != nil {
		log.Warn().Err(err).Msg("hand back the job of the stopped attempt; it comes back when its lease runs out")
		return
	}
	log.Info().Uint64("seq", seq).Msg("handed back the job of the stopped attempt: its next attempt starts now")
}

// ackLeftover acknowledges the delivery of an attempt that ended while
// the worker was down, once its end is stored and claim c (marked done)
// says the earlier life held it: any later delivery of the job would be
// acknowledged as stale anyway, and this way the job leaves the queue now
// rather than when the lease runs out.
func (w *Worker) ackLeftover(ctx context.Context, log zerolog.Logger, lo Leftover, c claim) {
	d, seq, why := w.leftoverDelivery(lo)
	if why != "" || c.Seq != seq {
		return // acknowledged as stale when delivered again
	}
	if err := d.AckDelivery(ctx, lo.AckSubject); err != nil {
		log.Warn().Err(err).Msg("acknowledge the job of the reported attempt; it is acknowledged when delivered again")
	}
}

// leftoverOutcome is the final event of an attempt whose containers all
// exited while nobody watched.
func leftoverOutcome(lo Leftover) jobs.Event {
	ev := jobs.Event{Status: jobs.StatusSucceeded, Containers: lo.Containers}
	zero := 0
	ev.ExitCode = &zero
	for _, c := range lo.Containers {
		if c.ExitCode == nil || *c.ExitCode != 0 {
			ev.Status, ev.ExitCode = jobs.StatusFailed, c.ExitCode
			ev.StopCode = jobs.StopEssentialExited
			ev.StoppedReason = "Essential container in task exited while its worker was down: " + c.Name
			break
		}
	}
	return ev
}

// readLeftoverClaim reads the run's claim, and its revision; ok is false
// when there is none or it is not the claim of attempt lo by this worker.
// An error is the claims' (a claim that cannot be read): the caller says
// so, since what it leaves undone then waits for the job's lease.
func (w *Worker) readLeftoverClaim(ctx context.Context, lo Leftover) (c claim, rev uint64, ok bool, err error) {
	if w.cfg.claims == nil {
		return claim{}, 0, false, nil
	}
	data, rev, err := w.cfg.claims.Claim(ctx, lo.RunID)
	if err != nil {
		return claim{}, 0, false, fmt.Errorf("read the claim of run %s: %w", lo.RunID, err)
	}
	if data == nil || json.Unmarshal(data, &c) != nil || c.Attempt != lo.Attempt || c.Worker != w.id {
		return claim{}, 0, false, nil
	}
	return c, rev, true, nil
}

// markLeftoverDone marks the claim of attempt lo done, and returns it and
// whether it is (or was) done.
func (w *Worker) markLeftoverDone(ctx context.Context, log zerolog.Logger, lo Leftover) (claim, bool) {
	c, rev, ok, err := w.readLeftoverClaim(ctx, lo)
	if err != nil {
		log.Warn().Err(err).Msg("cannot mark the reported attempt done: its job, if still queued, comes back when its lease runs out")
		return claim{}, false
	}
	if !ok || c.HandedBack {
		return claim{}, false // a handed-back attempt's job is to run the next attempt
	}
	if c.Done {
		return c, true
	}
	c.Done = true
	data, _ := json.Marshal(c)
	if _, err := w.cfg.claims.PutClaim(ctx, lo.RunID, data, rev); err != nil {
		if errors.Is(err, ErrClaimConflict) {
			return claim{}, false // another worker took the job since: it is that worker's
		}
		log.Warn().Err(err).Msg("mark the reported attempt done: its job, if still queued, comes back when its lease runs out")
		return claim{}, false
	}
	return c, true
}
