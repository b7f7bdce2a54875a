package server

import (
	"context"
	"errors"
	"sync"

	"github.com/gantry-dev/gantry/queue"
)

// The store records, per run, the last attempt whose job reached the queue
// (published_attempt). That says where the job is only while the jobs
// stream is the one it was published to: a store restored onto a new
// JetStream, a GANTRY_JOBS deleted by hand or a NATS cluster rebuilt hold
// none of those jobs, and the QUEUED runs would wait for good. So the
// store also records which stream its jobs went to (by the stream's
// creation time), and the server compares it with the stream it finds, at
// start and at every sweep, making the stream again if it is gone. When
// they differ, the QUEUED runs marked published count as unpublished again
// and republish publishes their jobs, with the same Nats-Msg-Id, as after
// a crash: a job still in the stream's duplicate window is not doubled,
// and a later duplicate finds its attempt claimed (worker/claim.go) and is
// only acknowledged. Runs waiting for others or for a pool's slot stay
// waiting; runs a worker holds are left to the worker, or to the sweep
// when it no longer runs them (unlisted.go); a Redelivery attempt's job is
// republished as such, that is not at all: the sweep publishes it once its
// redelivery did not come (redeliver.go).
//
// Per step, if the server dies just after it:
//  1. JobsStream reads the stream (and EnsureStreams made it if it was
//     gone): nothing is recorded; the next start reads it again.
//  2. AdoptJobsStream records the stream and requeues the runs in one
//     transaction: the next start finds the stream adopted and republish
//     publishes the runs left unpublished.
//  3. republish publishes each job, then marks it published: as for any
//     run a crash left unpublished.
//
// A store that never recorded a stream (one from before the mark) adopts
// the stream it finds, unless the stream is empty while runs are marked
// published: their jobs are nowhere, and they are requeued too. A stream
// purged (nats stream purge) keeps its creation time: it is not seen.
type streamMark struct {
	mu sync.Mutex // one check at a time: at start, then by the sweep
	id string     // the stream adopted last, "" before the first check
}

// checkJobsStream adopts the jobs stream in the store if it is not the one
// adopted last, making it first if it is gone, and requeues the runs whose
// jobs it lost; the caller's republish publishes them. Steady, it is one
// JetStream API request.
func (s *Server) checkJobsStream(ctx context.Context) error {
	s.stream.mu.Lock()
	defer s.stream.mu.Unlock()
	id, empty, err := s.q.JobsStream(ctx)
	if errors.Is(err, queue.ErrNoJobsStream) {
		s.cfg.log.Warn().Str("stream", queue.StreamJobs).Msg("the jobs stream is gone (deleted, or NATS lost its state): making it again")
		if err := s.q.EnsureStreams(ctx); err != nil {
			return err
		}
		id, empty, err = s.q.JobsStream(ctx)
	}
	if err != nil {
		return err
	}
	if id == s.stream.id {
		return nil
	}
	n, err := s.db.AdoptJobsStream(ctx, id, empty)
	if err != nil {
		return err
	}
	s.stream.id = id
	if n > 0 {
		s.cfg.log.Warn().Int("runs", n).Str("stream", queue.StreamJobs).Str("created", id).
			Msg("the jobs stream is not the one the queued runs' jobs went to (a restore onto a new JetStream, the stream made anew): publishing their jobs again")
	}
	return nil
}
