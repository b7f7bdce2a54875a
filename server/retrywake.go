package server

import (
	"context"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// A retry waits for its backoff unpublished, its attempt's NotBefore set
// (jobs.Run.Retry); republish queues it once due. The sweep's rounds
// (sweepEvery, 2 s) would queue it up to a round late, so the sweep's
// goroutine also wakes at the earliest NotBefore it has been told of and
// queues the unpublished runs due then (fireRetries), reading those alone
// (storage.DB.UnpublishedDue), and learns the next NotBefore from the same
// read. It is told of a retry by applyBatch, which makes it, and by every
// republish, of the retries it found waiting: the one at start tells it
// of those a previous server left waiting, and every round's of any
// other path's. A retry's wake lost (a read that failed) leaves it to the
// next round, as before.

// retryWake holds the earliest time a waiting retry is due that the
// sweep's goroutine has yet to take.
type retryWake struct {
	mu   sync.Mutex
	at   time.Time     // zero: none told since the last take
	wake chan struct{} // capacity 1: at moved earlier
}

func newRetryWake() retryWake { return retryWake{wake: make(chan struct{}, 1)} }

// add tells of a retry due at at.
func (w *retryWake) add(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.at.IsZero() && !at.Before(w.at) {
		return
	}
	w.at = at
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns the earliest time told since the last take, or zero.
func (w *retryWake) take() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	at := w.at
	w.at = time.Time{}
	return at
}

// retryWaiting tells the sweep of r if it is a retry waiting for its
// backoff.
func (s *Server) retryWaiting(r *jobs.Run, now time.Time) {
	if a := r.Current(); r.Status == jobs.StatusQueued && a != nil && a.NotBefore != nil && now.Before(*a.NotBefore) {
		s.retries.add(*a.NotBefore)
	}
}

// retryTimer is the sweep's timer for the earliest waiting retry. Only
// the sweep's goroutine uses it.
type retryTimer struct {
	t     *time.Timer
	at    time.Time // when t fires; zero: not armed
	fired time.Time // the last at it fired for
}

func newRetryTimer() *retryTimer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &retryTimer{t: t}
}

// arm sets the timer for the earliest retry told of, if it comes before
// the one it is set for. A time it fired for already, still not due by
// the server's clock (a test's clock that does not move), is left to the
// rounds rather than fired again and again.
func (rt *retryTimer) arm(w *retryWake, now time.Time) {
	at := w.take()
	if at.IsZero() || at.Equal(rt.fired) || (!rt.at.IsZero() && !at.Before(rt.at)) {
		return
	}
	rt.at = at
	rt.t.Reset(max(at.Sub(now), 0))
}

// fireRetries is the timer's firing: it queues the unpublished runs due,
// as republish does, reading the documents of those alone (many retries
// may wait, and each backoff's end fires it), and tells of the earliest
// still waiting.
func (s *Server) fireRetries(ctx context.Context, rt *retryTimer) {
	rt.fired, rt.at = rt.at, time.Time{}
	now := s.cfg.now()
	runs, next, err := s.db.UnpublishedDue(ctx, now)
	if err == nil {
		var queued int
		queued, err = s.republishThese(ctx, runs, now, s.republishable(ctx))
		if queued > 0 {
			// On time, as they should be: no leftovers (republishRuns).
			s.cfg.log.Debug().Int("runs", queued).Msg("queued the retries whose backoff ended")
		}
	}
	if err != nil && ctx.Err() == nil {
		s.cfg.log.Warn().Err(err).Msg("queue the retries due; the sweep tries again")
	}
	if !next.IsZero() {
		s.retries.add(next)
	}
}
