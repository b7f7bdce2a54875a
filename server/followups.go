package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/storage"
)

// followUps is what the end of a pipeline run sets off: the next runs
// waiting for a place (a backfill's maxParallel, the pipeline's
// maxActiveRuns: promote) and the runs of the pipelines it triggers. The
// DAG tells of each end while it holds its lock, so the work is queued
// here and done by one goroutine (startFollowUps).
//
// Shutdown: once the server begins to shut down (WithStartsUntil) the
// follow-ups are not done, as nothing new starts then; they are left to
// the next start, which does them as after a crash.
//
// Crash safety: the queue is memory only. A crash after a run ended and
// before its follow-ups are done loses them from the queue, so at start
// the server promotes the waiting runs of every pipeline that has some
// and fires the triggers of recently ended runs again; both are
// idempotent (a promotion counts the RUNNING runs and starts waiting ones
// in one transaction, storage.PromotePipelineRuns, so it never starts
// more than the bounds allow however often it is done; a triggered run's
// idempotency key is jobs.TriggerKey(pipeline, upstream run, its
// retries), unique in the store).
type followUps struct {
	mu    sync.Mutex
	queue []*jobs.PipelineRun
	// unpromoted are the pipelines whose latest promotion failed (a
	// store error, say), for the follow-up goroutine to try again.
	unpromoted map[string]bool
	wake       chan struct{}
	// promote serializes promotions (the follow-up goroutine, a run's
	// start, a backfill, a retry, an apply): each is one transaction
	// anyway, but the runs one starts are advanced before the next looks.
	promote sync.Mutex
}

func newFollowUps() *followUps {
	return &followUps{wake: make(chan struct{}, 1), unpromoted: map[string]bool{}}
}

// ended queues the follow-ups of a pipeline run that ended; it does not
// block.
func (f *followUps) ended(pr *jobs.PipelineRun) {
	f.mu.Lock()
	f.queue = append(f.queue, pr)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *followUps) take() []*jobs.PipelineRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queue
	f.queue = nil
	return q
}

// failedPromotion notes a pipeline whose promotion failed, for the next
// round of the follow-up goroutine.
func (f *followUps) failedPromotion(pipeline string) {
	f.mu.Lock()
	f.unpromoted[pipeline] = true
	f.mu.Unlock()
}

// takeUnpromoted returns the pipelines whose promotion failed, and
// forgets them.
func (f *followUps) takeUnpromoted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := slices.Sorted(maps.Keys(f.unpromoted))
	clear(f.unpromoted)
	return names
}

// startFollowUps recovers what a crash may have left undone and then
// handles ended pipeline runs until ctx is done. A follow-up that fails
// for a reason that may pass (a store error, say) is tried again every
// cfg.followUpRetry, as are the DAG's failed advances (DAG.Retry):
// nothing else would before the next start. Trying again is safe, as
// both follow-ups are idempotent (see followUps).
func (s *Server) startFollowUps(ctx context.Context, wg *sync.WaitGroup) {
	log := s.cfg.log.With().Str("role", "scheduler").Logger()
	// The recovery, too, is tried again until it has gone through.
	recoverAll := func() bool {
		err := s.recoverFollowUps(ctx)
		switch {
		case err == nil || ctx.Err() != nil:
		case lasting(err):
			log.Error().Err(err).Msg("recover backfills and triggers")
		default:
			log.Warn().Err(err).Dur("retryWithin", s.cfg.followUpRetry).Msg("recover backfills and triggers")
			return false
		}
		return true
	}
	recovered := recoverAll()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.followUpRetry)
		defer t.Stop()
		failed := map[string]*jobs.PipelineRun{} // by pipeline run id
		for {
			var prs []*jobs.PipelineRun
			select {
			case <-ctx.Done():
				return // what failed is done again at the next start
			case <-s.pipes.after.wake:
				prs = s.pipes.after.take()
			case <-t.C:
				// The DAG's failed advances: a pipeline run one of them
				// ends is queued for its follow-ups as any other.
				s.pipes.dag.Retry(ctx)
				if !recovered {
					recovered = recoverAll()
				}
				prs = slices.Collect(maps.Values(failed))
				clear(failed)
				for _, name := range s.pipes.after.takeUnpromoted() {
					if err := s.promote(ctx, name); err != nil && ctx.Err() == nil {
						log.Warn().Err(err).Str("pipeline", name).Dur("retryWithin", s.cfg.followUpRetry).Msg("start waiting pipeline runs")
					}
				}
			}
			for _, pr := range prs {
				err := s.followUp(ctx, pr)
				if err == nil || ctx.Err() != nil {
					continue
				}
				ev := log.Error()
				if !lasting(err) {
					failed[pr.PipelineRunID] = pr
					ev = log.Warn().Dur("retryWithin", s.cfg.followUpRetry)
				}
				ev.Err(err).Str("pipelineRun", pr.PipelineRunID).Msg("follow up an ended pipeline run")
			}
		}
	}()
}

// lasting tells whether a follow-up that failed with err would fail again
// however often it is tried: a triggered pipeline deleted since (not
// found), or one that refuses the run (invalid). Joined errors last if
// each of them does.
func lasting(err error) bool {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		for _, err := range e.Unwrap() {
			if !lasting(err) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return lasting(inner)
		}
	}
	code := jobs.ErrorCode(err)
	return code == jobs.CodeNotFound || code == jobs.CodeInvalidArgument
}

// followUp starts what the end of pr lets start: the waiting runs of its
// pipeline (one index seek when there are none) and the runs it triggers.
func (s *Server) followUp(ctx context.Context, pr *jobs.PipelineRun) error {
	if s.stopping.Load() {
		// The next start does them (recoverFollowUps).
		s.cfg.log.Info().Str("pipelineRun", pr.PipelineRunID).Str("pipeline", pr.Pipeline).
			Msg("shutting down: the triggers and waiting runs this end lets start are left for the next start")
		return nil
	}
	var errs []error
	if err := s.promote(ctx, pr.Pipeline); err != nil {
		errs = append(errs, err)
	}
	if err := s.fireTriggers(ctx, pr); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// recoverFollowUps promotes every pipeline that has PENDING runs and fires
// the triggers of the upstream runs that ended since each triggered
// pipeline's latest version was applied (at most the recoverTriggerRuns
// of each upstream pipeline that ended last).
func (s *Server) recoverFollowUps(ctx context.Context) error {
	if s.stopping.Load() {
		return nil // the next start's
	}
	// Each follow-up is tried whatever became of the others: one that
	// cannot succeed (a triggered pipeline refusing its run) must not hold
	// back the rest.
	var errs []error
	pending, err := s.db.ListPipelineRuns(ctx, storage.PipelineRunFilter{Status: jobs.StatusPending})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, pr := range pending {
		if seen[pr.Pipeline] {
			continue
		}
		seen[pr.Pipeline] = true
		if err := s.promote(ctx, pr.Pipeline); err != nil {
			errs = append(errs, fmt.Errorf("waiting runs of %s: %w", pr.Pipeline, err))
		}
	}
	ps, err := s.db.ListPipelines(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range ps {
		for _, t := range p.Triggers {
			// By end, not by creation: a retried run (retry.go) ends
			// long after the runs created since it.
			ups, err := s.db.EndedPipelineRuns(ctx, t.Pipeline, p.CreatedAt, recoverTriggerRuns)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for i := range ups {
				up := &ups[i]
				if up.FinishedAt == nil || up.FinishedAt.Before(p.CreatedAt) || !t.Fires(up.Status) {
					continue
				}
				// One look at the key in the common case, which is also
				// the answer to whether the trigger fired: looked up again
				// (HasPipelineRunKey, then by startTriggered) it cost
				// three reads of the store per upstream end, two when
				// fired.
				key, fired, err := s.triggerKey(ctx, p.Name, up)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if fired {
					continue
				}
				if _, err := s.startTriggeredKey(ctx, p.Name, up, key); err != nil {
					errs = append(errs, fmt.Errorf("trigger %s by %s: %w", p.Name, up.PipelineRunID, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// recoverTriggerRuns bounds the upstream runs looked at per trigger at
// start.
const recoverTriggerRuns = 100

// fireTriggers starts one run of every pipeline that up's end triggers.
func (s *Server) fireTriggers(ctx context.Context, up *jobs.PipelineRun) error {
	ps, err := s.db.ListPipelines(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range scheduler.Triggered(ps, up.Pipeline, up.Status) {
		pr, err := s.startTriggered(ctx, name, up)
		if err != nil {
			errs = append(errs, fmt.Errorf("trigger %s: %w", name, err))
			continue
		}
		s.cfg.log.Info().Str("pipelineRun", pr.PipelineRunID).Str("pipeline", name).
			Str("upstream", up.PipelineRunID).Msg("triggered by an upstream pipeline run")
	}
	return errors.Join(errs...)
}

// startTriggered starts the run of pipeline that up triggers, or returns
// the one it started before. The parameters both pipelines declare take
// the upstream run's values (a report triggered by the sales of day X
// reports on day X); the others keep the pipeline's defaults.
func (s *Server) startTriggered(ctx context.Context, pipeline string, up *jobs.PipelineRun) (*jobs.PipelineRun, error) {
	key, _, err := s.triggerKey(ctx, pipeline, up)
	if err != nil {
		return nil, err
	}
	return s.startTriggeredKey(ctx, pipeline, up, key)
}

// startTriggeredKey is startTriggered with the key triggerKey gave.
func (s *Server) startTriggeredKey(ctx context.Context, pipeline string, up *jobs.PipelineRun, key string) (*jobs.PipelineRun, error) {
	return s.startPipelineRun(ctx, pipeline, nil, "pipeline", nil, func(pr *jobs.PipelineRun) {
		pr.IdempotencyKey, pr.TriggeredBy = key, up.PipelineRunID
		for k := range pr.Spec.Parameters { // those required too, which have no default in pr.Parameters
			if v, ok := up.Parameters[k]; ok {
				if pr.Parameters == nil {
					pr.Parameters = jobs.Params{}
				}
				pr.Parameters[k] = v
			}
		}
	})
}

// triggerKey is the idempotency key of the run of pipeline that up's
// latest end triggers: jobs.TriggerKey, unless a run created before up
// holds that key. Such a run was triggered by an earlier pipeline run of
// the same id, one --run-retention deleted (history.go) while the run it
// triggered, which ended later, was kept: a backfill over the deleted
// range makes its scheduled times' runs anew, under the same ids. up's
// ends then take keys of their own, "<key>@<up's creation time>", the
// same at every call, so that each end still starts at most one run,
// restarts included. fired says whether a run holds the key returned:
// up's end started it already.
func (s *Server) triggerKey(ctx context.Context, pipeline string, up *jobs.PipelineRun) (key string, fired bool, err error) {
	key = jobs.TriggerKey(pipeline, up.PipelineRunID, up.Retries)
	held, err := s.db.PipelineRunByKey(ctx, key)
	if errors.Is(err, jobs.ErrNotFound) {
		return key, false, nil
	}
	if err != nil {
		return "", false, err
	}
	if !held.CreatedAt.Before(up.CreatedAt) {
		return key, true, nil
	}
	key += "@" + up.CreatedAt.UTC().Format(time.RFC3339Nano)
	fired, err = s.db.HasPipelineRunKey(ctx, key)
	if err != nil {
		return "", false, err
	}
	return key, fired, nil
}

// checkTriggers checks the triggers of p against the stored pipelines:
// every upstream exists, and no trigger cycle; and those of the stored
// pipelines on p: p declares every parameter they require.
func (s *Server) checkTriggers(ctx context.Context, p *jobs.Pipeline) error {
	all, err := s.db.ListPipelines(ctx)
	if err != nil {
		return err
	}
	if err := jobs.CheckTriggers(p, all); err != nil {
		return jobs.Invalid(err.Error())
	}
	return nil
}

// invalidJoin joins the invalid_argument errors among errs into one, a
// line each; any other error is returned as it is.
func invalidJoin(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		if err == nil {
			continue
		}
		if jobs.ErrorCode(err) != jobs.CodeInvalidArgument {
			return err
		}
		var e *jobs.Error
		if errors.As(err, &e) {
			msgs = append(msgs, e.Message)
		} else {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return jobs.Invalid(strings.Join(msgs, "\n"))
}

// backfill creates one PENDING run per fire time, all in one backfill
// group, then starts as many as the group's MaxParallel and the
// pipeline's maxActiveRuns allow; the follow-ups start the others as runs
// end. A time that already has a run
// (fired, or backfilled before) keeps it.
func (s *Server) backfill(ctx context.Context, req BackfillRequest, times []time.Time) ([]jobs.PipelineRun, error) {
	if req.MaxParallel < 0 {
		return nil, jobs.Invalid("maxParallel: must not be negative")
	}
	group := jobs.BackfillGroup{ID: "bf-" + s.newRunID(), MaxParallel: req.MaxParallel}
	ids := make([]string, 0, len(times))
	for _, t := range times {
		pr, _, err := s.createPipelineRun(ctx, req.Name, "backfill", t, func(pr *jobs.PipelineRun) {
			pr.Status, pr.Backfill, pr.Priority, pr.Tags = jobs.StatusPending, &group, req.Priority, req.Tags.Map()
			if req.TimeoutSeconds > 0 {
				pr.TimeoutSeconds = req.TimeoutSeconds
			}
		})
		if err != nil {
			return nil, err
		}
		ids = append(ids, pr.PipelineRunID)
	}
	if err := s.promote(ctx, req.Name); err != nil {
		return nil, err
	}
	out := make([]jobs.PipelineRun, 0, len(ids))
	for _, id := range ids {
		pr, err := s.db.GetPipelineRun(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *pr)
	}
	return out, nil
}

// createPipelineRun stores the run of a scheduled time (id and key derived
// from pipeline and time, storeScheduled) without advancing it.
func (s *Server) createPipelineRun(ctx context.Context, name, trigger string, scheduled time.Time, mod func(*jobs.PipelineRun)) (*jobs.PipelineRun, bool, error) {
	s.pipes.gate.RLock() // pipelines.go
	defer s.pipes.gate.RUnlock()
	p, err := s.db.GetPipeline(ctx, name, 0)
	if err != nil {
		return nil, false, err
	}
	params, err := p.ResolveParams(nil)
	if err != nil {
		return nil, false, err
	}
	t := scheduled.UTC()
	id, err := scheduledRunID(name, t)
	if err != nil {
		return nil, false, err
	}
	params = p.ScheduledParams(params, t)
	if err := p.CheckRequired(params); err != nil { // refused at apply, with the schedule: checked all the same
		return nil, false, jobs.Invalid(err.Error())
	}
	pr := scheduler.NewPipelineRun(p, id, params, s.cfg.now())
	pr.Trigger, pr.ScheduledTime, pr.IdempotencyKey = trigger, &t, ScheduleKey(name, t)
	mod(pr)
	return s.storeScheduled(ctx, p, pr, t) // pipelines.go
}

// promote starts the PENDING runs of a pipeline that its bounds leave
// room for (scheduler.Promote: maxActiveRuns, each backfill's
// maxParallel) and, with dependsOnPast, whose previous run SUCCEEDED:
// the end of that run (its follow-ups), its retry and the promotion at
// every start let a run waiting for it start, counting its RUNNING runs and starting the waiting ones
// in one transaction (storage.PromotePipelineRuns), then advances those
// it started: their first stages are submitted. The runs left waiting
// are told why. A promotion that fails is tried again by the follow-up
// goroutine (and at the next start).
//
// Crash safety, step by step: a crash after a run is stored PENDING (a
// new run, a retry, a backfill) or after an apply raised maxActiveRuns,
// and before the promotion, leaves runs waiting that may start: the next
// start promotes every pipeline with waiting runs (recoverFollowUps). A
// crash inside the transaction leaves nothing of it. A crash after it
// and before the advances leaves the started runs RUNNING with no stage
// started, which the next start advances as it does every active run
// (startPipelines); they count as RUNNING meanwhile, so no promotion
// starts more than the bound.
func (s *Server) promote(ctx context.Context, pipeline string) error {
	s.pipes.after.promote.Lock()
	defer s.pipes.after.promote.Unlock()
	if s.stopping.Load() {
		// Shutting down: the runs wait PENDING, their clocks not
		// started, for the next start's promotion (recoverFollowUps).
		return nil
	}
	var waited map[string]bool // the runs told why they wait before: they waited
	changed, err := s.db.PromotePipelineRuns(ctx, pipeline, func(q *storage.PipelineRunQueue) []*jobs.PipelineRun {
		waited = make(map[string]bool)
		for _, pr := range q.Pending {
			if pr.StatusReason != "" {
				waited[pr.PipelineRunID] = true
			}
		}
		return scheduler.Promote(&scheduler.Queue{Pipeline: pipeline, MaxActiveRuns: q.Pipeline.MaxActiveRuns,
			Running: q.Running, ByBackfill: q.ByBackfill, Pending: q.Pending,
			DependsOnPast: q.Pipeline.DependsOnPast, Previous: q.Previous}, s.cfg.now())
	})
	if err != nil {
		s.pipes.after.failedPromotion(pipeline)
		return err
	}
	var errs []error
	for _, pr := range changed {
		if pr.Status != jobs.StatusRunning {
			// Left waiting, with a new reason (a new run, a bound changed):
			// followers are told it waits, and why, before it starts,
			// under this lock, which the promotion that starts it takes too.
			pipelinePublisher{s}.PublishPipelineRun(pr)
			continue
		}
		if waited[pr.PipelineRunID] {
			s.cfg.log.Info().Str("pipelineRun", pr.PipelineRunID).Str("pipeline", pipeline).Msg("pipeline run started after waiting")
		}
		if _, err := s.pipes.dag.Advance(ctx, pr.PipelineRunID); err != nil {
			// The DAG tries its failed advances again (DAG.Retry).
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
