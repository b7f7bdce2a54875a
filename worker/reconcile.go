package worker

import (
	"context"
	"encoding/json"
	"fmt"

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
}

// WithLeftovers makes Run reconcile the runtime before taking work.
func WithLeftovers(l Leftovers) Option { return func(c *config) { c.leftovers = l } }

// Reconcile deals with what an earlier life of the worker left behind: an
// attempt whose containers all exited is reported as they ended (and its
// claim marked done, so that its redelivered job is only acknowledged); an
// attempt still running is stopped, not adopted: its lease died with the
// old process, so the queue hands its job out again and the next attempt
// records this one as WorkerLost. So is an attempt of a pipeline stage
// that succeeded: its outputs were not stored. Everything is then removed,
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
	for _, lo := range found {
		log := w.cfg.log.With().Str("run", lo.RunID).Int("attempt", lo.Attempt).Str("worker", w.id).Logger()
		switch {
		case lo.Running:
			log.Warn().Msg("stopping an attempt left running by an earlier life of this worker; it will be redelivered")
		case lo.Staged && leftoverOutcome(lo).Status == jobs.StatusSucceeded:
			// Its outputs never reached the object store: reporting it
			// SUCCEEDED would hand its downstream stages nothing. (A
			// failed one stores none anyway: it is reported.)
			log.Warn().Msg("an attempt of a pipeline stage succeeded while the worker was down, its outputs not stored; its job, if still queued, runs again")
		default:
			ev := leftoverOutcome(lo)
			ev.RunID, ev.Attempt, ev.Seq, ev.Source, ev.Worker = lo.RunID, lo.Attempt, reconcileSeq, jobs.SourceWorker, w.id
			ev.Time = w.cfg.now().UTC()
			log.Info().Str("status", string(ev.Status)).Msg("reporting an attempt that ended while the worker was down")
			if w.publish(ctx, log, &ev) {
				w.markLeftoverDone(ctx, lo)
			}
		}
		if err := l.RemoveLeftover(ctx, lo); err != nil {
			log.Error().Err(err).Msg("remove leftover containers")
			removed = false
		}
	}
	// No container of the earlier life can still write to its stage
	// directories.
	if removed {
		w.sweepStaged()
	}
	return nil
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

func (w *Worker) markLeftoverDone(ctx context.Context, lo Leftover) {
	if w.cfg.claims == nil {
		return
	}
	data, rev, err := w.cfg.claims.Claim(ctx, lo.RunID)
	if err != nil || data == nil {
		return
	}
	var c claim
	if json.Unmarshal(data, &c) != nil || c.Attempt != lo.Attempt || c.Worker != w.id || c.Done || c.HandedBack {
		return // a handed-back attempt's job is to run the next attempt
	}
	c.Done = true
	data, _ = json.Marshal(c)
	_, _ = w.cfg.claims.PutClaim(ctx, lo.RunID, data, rev)
}
