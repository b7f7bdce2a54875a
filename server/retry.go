package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/scheduler"
)

// Retrying a pipeline run (`gantry pipeline retry`, pipelines.retry): an
// ended run that did not succeed goes back to RUNNING under its id (to
// PENDING first if its pipeline has a maxActiveRuns, until that leaves it
// a place, or dependsOnPast and a scheduled time, until its previous run
// SUCCEEDED: promote, followups.go; a backfill's maxParallel paces its
// first runs only), with
// the stages that did not succeed and those downstream of them PENDING on
// their next try (scheduler.RetryStages), and the DAG advances it as any
// other. The stages that succeeded keep their runs and files; the earlier
// tries of the others stay in their EarlierTries, their runs and logs
// too. The run keeps its pipeline version (its spec) and parameters.
//
// Crash safety: the retry is one transaction (storage.RetryPipelineRun),
// which also makes a second retry racing it see the run active. A crash
// right after it leaves the run PENDING, which the next start promotes
// (recoverFollowUps); one after its promotion leaves it RUNNING with
// PENDING stages, which the next start advances as it does every active
// run (startPipelines). The
// stage runs of a try have idempotency keys of their own (stageKey), so
// an advance after a crash finds those it submitted.

// retryPipelineRun retries the ended pipeline run id and returns it
// advanced: its first stages submitted.
func (s *Server) retryPipelineRun(ctx context.Context, id string) (*jobs.PipelineRun, error) {
	// The pipeline's delete waits for the gate: it cannot miss the run
	// active again, nor can the run come back after its pipeline's delete.
	s.pipes.gate.RLock()
	pr, err := s.retryStored(ctx, id)
	s.pipes.gate.RUnlock()
	if err != nil {
		return nil, err
	}
	s.cfg.log.Info().Str("pipelineRun", id).Int("retries", pr.Retries).Msg("pipeline run retried")
	// Followers learn it is active again before its stages change.
	pipelinePublisher{s}.PublishPipelineRun(pr)
	if pr.Status == jobs.StatusPending {
		if err := s.promote(ctx, pr.Pipeline); err != nil {
			// The follow-ups try again; the run waits meanwhile.
			s.cfg.log.Warn().Err(err).Str("pipelineRun", id).Msg("start waiting pipeline runs")
		}
	}
	return s.pipes.dag.Advance(ctx, id)
}

// notAPipelineRun adds to the not-found error of id, when it is no
// pipeline run id (pr-...), what the caller may have meant: the pipeline
// run of a stage's run, or that pipeline run ids start with pr-.
func (s *Server) notAPipelineRun(ctx context.Context, err error, id string) error {
	if !errors.Is(err, jobs.ErrNotFound) || jobs.IsPipelineRunID(id) {
		return err
	}
	if r, rerr := s.db.GetRun(ctx, id); rerr == nil && r.Spec.Stage != nil {
		return fmt.Errorf("%w; %s is a run of stage %s of pipeline run %s: retry that (gantry pipeline retry %s)",
			err, id, r.Spec.Stage.Stage, r.Spec.Stage.PipelineRunID, r.Spec.Stage.PipelineRunID)
	}
	return fmt.Errorf("%w; pipeline run ids start with %s (gantry pipeline runs NAME lists a pipeline's)", err, jobs.PipelineRunPrefix)
}

// retryStored checks that the run may be retried and stores the retry.
func (s *Server) retryStored(ctx context.Context, id string) (*jobs.PipelineRun, error) {
	pr, err := s.db.GetPipelineRun(ctx, id)
	if err != nil {
		return nil, s.notAPipelineRun(ctx, s.explainPruned(err, id), id)
	}
	if err := retryable(pr); err != nil {
		return nil, err
	}
	// No retention sweep deletes the run's files between the check of
	// its data and the retry, which makes the run's files the sweep's no
	// more (storage.PipelineRunsWithData looks at ended runs only).
	s.pipes.sweep.Lock()
	defer s.pipes.sweep.Unlock()
	return s.db.RetryPipelineRun(ctx, id, func(pr *jobs.PipelineRun, latest *jobs.Pipeline, dataDeleted time.Time) error {
		if err := retryable(pr); err != nil {
			return err // another retry came first
		}
		// The pipeline as it is now, read in the retry's transaction: an
		// apply or a delete racing it comes wholly before or after it.
		if latest == nil {
			return failedPrecondition(fmt.Sprintf("%s: pipeline %s was deleted: the runs of a deleted pipeline cannot be retried (apply it and run it again: gantry pipeline run %s)",
				id, pr.Pipeline, pr.Pipeline))
		}
		stages := scheduler.RetryStages(pr)
		if err := s.keptFilesGone(pr, stages, dataDeleted); err != nil {
			return err
		}
		scheduler.Retry(pr, stages, s.cfg.now())
		if latest.MaxActiveRuns != nil || jobs.WaitsForPast(latest, pr) {
			// Active again, it takes a place as a new run would: it
			// waits PENDING, and the promotion that follows starts it
			// at once if its pipeline's maxActiveRuns leave room (and,
			// with dependsOnPast, its previous run SUCCEEDED). The
			// promotion reads the bound again, in its transaction, to
			// count. That promotion also tells the runs waiting for this
			// one (dependsOnPast) that it runs again.
			pr.Status = jobs.StatusPending
		}
		return nil
	})
}

// retryable says why pr cannot be retried, or returns nil.
func retryable(pr *jobs.PipelineRun) error {
	switch pr.Status {
	case jobs.StatusFailed, jobs.StatusCanceled:
		return nil
	case jobs.StatusSucceeded:
		return failedPrecondition(fmt.Sprintf("%s SUCCEEDED: nothing to retry (gantry pipeline run %s starts a new run)",
			pr.PipelineRunID, pr.Pipeline))
	}
	return failedPrecondition(fmt.Sprintf("%s is %s: only a pipeline run that ended FAILED or CANCELED can be retried; wait for its end, or stop it (gantry stop %s)",
		pr.PipelineRunID, pr.Status, pr.PipelineRunID))
}

// keptFilesGone refuses a retry whose stages need files of stages it
// keeps when the retention has deleted the run's files (at deleted; zero
// if it has not), or when the data bucket's own expiry, which counts from
// a file's writing, has: a run retried again and again keeps its first
// stages' files from their end on, and its retention's clock restarts at
// every end.
func (s *Server) keptFilesGone(pr *jobs.PipelineRun, stages []string, deleted time.Time) error {
	kept := scheduler.KeptInputs(pr, stages)
	var problems, expired []string
	ttl := s.retention() + queue.DataBucketSlack // the bucket's TTL
	for _, name := range stages {
		for _, up := range kept[name] {
			problems = append(problems, fmt.Sprintf("stage %s needs the files of stage %s", name, up))
			if st := pr.StageState(up); st != nil && st.FinishedAt != nil && !s.cfg.now().Before(st.FinishedAt.Add(ttl)) {
				expired = append(expired, fmt.Sprintf("stage %s needs the files of stage %s, which ended at %s", name, up, st.FinishedAt.UTC().Format(time.RFC3339)))
			}
		}
	}
	if len(problems) == 0 {
		return nil // every stage that passes files on runs again
	}
	if deleted.IsZero() {
		if len(expired) == 0 {
			return nil
		}
		return failedPrecondition(fmt.Sprintf("%s: %s: the data bucket drops a file 30 days past --data-retention (%s) after its writing, so those are gone: run the pipeline again (gantry pipeline run %s)",
			pr.PipelineRunID, strings.Join(expired, "; "), s.retention(), pr.Pipeline))
	}
	ended := "it ended"
	if pr.FinishedAt != nil {
		ended += " at " + pr.FinishedAt.UTC().Format(time.RFC3339)
	}
	return failedPrecondition(fmt.Sprintf("%s: %s, deleted on %s, %s (--data-retention) after %s: run the pipeline again (gantry pipeline run %s)",
		pr.PipelineRunID, strings.Join(problems, "; "), deleted.Format(time.RFC3339), s.retention(), ended, pr.Pipeline))
}

func (s *Server) apiPipelineRetry(ctx context.Context, data []byte) (any, error) {
	var req PipelineRunRef
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.PipelineRunID == "" {
		return nil, jobs.Invalid("pipelineRunId: required")
	}
	return s.retryPipelineRun(ctx, req.PipelineRunID)
}
