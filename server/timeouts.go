package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Pipeline run timeouts (timeoutSeconds of the pipeline file, --timeout
// of gantry pipeline run): a run RUNNING past its deadline
// (jobs.PipelineRun.Deadline) is stopped as gantry stop stops it and ends
// FAILED with stopCode Timeout (scheduler.DAG.TimeOut).
//
// One goroutine (startTimeouts) sleeps until the earliest deadline of the
// active runs, which deadlines keeps in memory: filled at start from the
// stored active runs, and kept up to date by every change of a pipeline
// run the DAG or a retry publishes (PublishPipelineRun), which is where a
// run starts, is retried and ends.
//
// Crash safety: the deadline derives from the run's document (its
// timeoutSeconds, startedAt and retriedAt), so nothing of it is lost: a
// server started after a deadline passed times the run out at once. A
// crash after a timeout marked the run stopped, before its stage runs
// were stopped, leaves a run the next start stops again
// (scheduler.DAG.StopStageRuns), as it does a user's stop.
type deadlines struct {
	mu sync.Mutex
	at map[string]time.Time // by pipeline run id: when it times out
	// wake tells the goroutine that a deadline came or moved.
	wake chan struct{}
}

func newDeadlines() *deadlines {
	return &deadlines{at: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// note records the deadline of pr as it now stands, or forgets pr when it
// has none (ended, stopped, PENDING, no timeout). It does not block.
func (d *deadlines) note(pr *jobs.PipelineRun) {
	at, ok := pr.Deadline()
	d.mu.Lock()
	was, had := d.at[pr.PipelineRunID]
	if ok {
		d.at[pr.PipelineRunID] = at
	} else {
		delete(d.at, pr.PipelineRunID)
	}
	d.mu.Unlock()
	if ok && (!had || !was.Equal(at)) {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

func (d *deadlines) forget(id string) {
	d.mu.Lock()
	delete(d.at, id)
	d.mu.Unlock()
}

// forgetDue forgets id's deadline if it is still one due at now: a retry
// that noted a later one since (the run timed out, ended at once and was
// retried before the timeout goroutine got here) keeps it.
func (d *deadlines) forgetDue(id string, now time.Time) {
	d.mu.Lock()
	if at, ok := d.at[id]; ok && !now.Before(at) {
		delete(d.at, id)
	}
	d.mu.Unlock()
}

// postpone moves the deadline of id, if it is still known, to t: a
// timeout that could not be stored is tried again then.
func (d *deadlines) postpone(id string, t time.Time) {
	d.mu.Lock()
	if _, ok := d.at[id]; ok {
		d.at[id] = t
	}
	d.mu.Unlock()
}

// due returns the runs whose deadline is at or before now.
func (d *deadlines) due(now time.Time) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, at := range d.at {
		if !now.Before(at) {
			ids = append(ids, id)
		}
	}
	return ids
}

// next returns the earliest deadline, false when there is none.
func (d *deadlines) next() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var first time.Time
	for _, at := range d.at {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// maxTimeoutSleep bounds the timeout goroutine's sleep, so that a clock
// set forward (the deadlines are wall times; the timer counts monotonic
// time) makes a timeout late by at most this.
const maxTimeoutSleep = time.Minute

// startTimeouts times out the pipeline runs whose deadline passes until
// ctx is done, owned by wg.
func (s *Server) startTimeouts(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			sleep := maxTimeoutSleep
			if at, ok := s.timeOutDue(ctx); ok {
				sleep = min(max(at.Sub(s.cfg.now()), 0), maxTimeoutSleep)
			}
			timer.Reset(sleep)
			select {
			case <-ctx.Done():
				return
			case <-s.pipes.deadlines.wake:
			case <-timer.C:
			}
		}
	}()
}

// timeOutDue times out the pipeline runs whose deadline has passed and
// returns the next deadline (false: none).
func (s *Server) timeOutDue(ctx context.Context) (time.Time, bool) {
	now := s.cfg.now()
	dl := s.pipes.deadlines
	for _, id := range dl.due(now) {
		if ctx.Err() != nil {
			break
		}
		log := s.cfg.log.With().Str("pipelineRun", id).Logger()
		pr, timedOut, err := s.pipes.dag.TimeOut(ctx, id, now)
		switch {
		case timedOut:
			// Marked: it is stopping, and ends once its stage runs have
			// (an advance that failed here is the DAG's to try again).
			dl.forgetDue(id, now)
			if err != nil {
				log.Warn().Err(err).Msg("pipeline run timed out; advance it")
				continue
			}
			log.Info().Int("timeoutSeconds", pr.TimeoutSeconds).Msg("pipeline run timed out")
		case errors.Is(err, jobs.ErrNotFound):
			dl.forget(id)
		case err != nil:
			log.Warn().Err(err).Dur("retryWithin", s.cfg.followUpRetry).Msg("time out pipeline run")
			dl.postpone(id, now.Add(s.cfg.followUpRetry))
		default:
			// Not timed out as stored (retried, stopped or ended since):
			// its deadline is what the stored run says.
			dl.note(pr)
		}
	}
	return dl.next()
}
