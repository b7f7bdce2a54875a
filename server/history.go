package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
	"github.com/oklog/ulid/v2"
)

// Run history retention (--run-retention). Runs and pipeline runs that
// ended more than the retention ago are deleted from the store, at start
// and then every historyEvery, a batch per transaction (storage.Prune).
//
// What a deleted record means for what referred to it:
//   - A schedule's fire times are handled once by its last_fire, which no
//     prune touches: the cron never fires a pruned time again. A backfill,
//     which finds the times that have a run by their ids, runs a pruned
//     time again, as one no run ever held.
//   - A trigger starts at most one run per upstream run; the upstream run
//     ends before the run it starts is made, so it is pruned first (or in
//     the same sweep), and no recovery finds it ended without its run.
//   - An idempotency key holds as long as its run is kept: a submission
//     that repeats the key of a pruned run makes a new run.
//   - Stage files: the data sweep (retention.go) finds the pipeline runs
//     whose files are due in the store; those of a pipeline run pruned
//     before them go with the bucket's TTL (the data retention plus
//     queue.DataBucketSlack).
//
// Crash safety: each batch is one transaction, which keeps a pipeline
// run and its stage runs together; a crash between two leaves the store
// consistent and the next sweep goes on.

// WithRunRetention sets how long runs and pipeline runs are kept after
// they ended; 0 (the default) keeps them for ever.
func WithRunRetention(d time.Duration) Option { return func(c *config) { c.runRetention = d } }

// historyEvery is how often the server prunes the history: a tenth of
// the retention, between a minute and an hour.
func historyEvery(retention time.Duration) time.Duration {
	return min(max(retention/10, time.Minute), time.Hour)
}

// startHistoryRetention prunes the history at once and then every
// historyEvery until ctx is done, when a retention is set.
func (s *Server) startHistoryRetention(ctx context.Context, wg *sync.WaitGroup) {
	if s.cfg.runRetention <= 0 {
		return
	}
	log := s.cfg.log.With().Str("role", "retention").Logger()
	wg.Go(func() {
		t := time.NewTicker(historyEvery(s.cfg.runRetention))
		defer t.Stop()
		for {
			if _, err := s.pruneHistory(ctx); err != nil && ctx.Err() == nil {
				log.Error().Err(err).Msg("delete run history past --run-retention")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// pruneHistory deletes the runs and pipeline runs that ended more than
// the retention ago, counts them and logs a sweep that deleted any.
func (s *Server) pruneHistory(ctx context.Context) (storage.PruneCount, error) {
	start := s.cfg.now()
	before := start.Add(-s.cfg.runRetention)
	// Ids sort by creation time, and a run that ended before `before`
	// was created before it. Ids of scheduled times (scheduledRunID) are
	// of their time, which is before the run's creation: below too.
	id := timeID(before)
	n, err := s.db.PruneHistory(ctx, storage.Prune{EndedBefore: before, RunsBelow: id, PipelineRunsBelow: jobs.PipelineRunPrefix + id,
		Committed: func(c storage.PruneCount) {
			s.metrics.pruned(c.Runs, c.PipelineRuns)
		}})
	if n.Runs > 0 || n.PipelineRuns > 0 {
		s.cfg.log.Info().Int("runs", n.Runs).Int("pipelineRuns", n.PipelineRuns).Stringer("retention", s.cfg.runRetention).
			Time("endedBefore", before).Dur("took", time.Since(start)).Msg("deleted run history past --run-retention")
	}
	return n, err
}

// explainPruned adds to the not-found error of the run or pipeline run id
// that it may have been deleted for the retention, when the retention is
// set and the id dates from before it: a run id holds its creation time.
func (s *Server) explainPruned(err error, id string) error {
	if s.cfg.runRetention <= 0 || !errors.Is(err, jobs.ErrNotFound) {
		return err
	}
	u, perr := ulid.ParseStrict(strings.ToUpper(strings.TrimPrefix(id, jobs.PipelineRunPrefix)))
	if perr != nil {
		return err
	}
	created := ulid.Time(u.Time())
	now := s.cfg.now()
	if now.Sub(created) <= s.cfg.runRetention {
		return err
	}
	return fmt.Errorf("%w; its id dates from %s, and runs that ended more than %s ago are deleted (the server's --run-retention): if it existed, it is gone",
		err, created.UTC().Format(time.DateOnly), s.cfg.runRetention)
}
