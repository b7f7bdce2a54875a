package server

import (
	"context"
	"sync"
	"time"
)

// Published marks held. A new run's job is marked published (the store's
// published_attempt) once its QUEUED's announcement is stored
// (confirmQueued): the mark spares the run a republish at the next start
// and vouches for that announcement. Most runs of a busy server end
// within a few hundred milliseconds, and the application of their
// worker's events marks them published in the UPDATE it makes anyway
// (storage.ApplyEvents: a worker's events of an attempt say its job
// reached the queue). So confirmQueued holds the mark for up to markHold,
// the application of a run's events drops it, and what is left is written
// in one write of the group commit. That was a statement of the group
// commit for every run, and is now one for the runs still queued a second
// after their QUEUED was stored.
//
// A held run stays among the runs being confirmed (confirming) until its
// mark is written or dropped, so the sweep's republish leaves it alone,
// as it leaves a run whose mark confirmQueued has yet to write.
//
// If the server dies with marks held, it is as if it died before
// confirmQueued wrote them, which a crash could always do: the runs whose
// events were not applied are QUEUED and unmarked, and the next start
// checks their QUEUED's announcement (ensureAnnounced) and publishes their
// job again with its Nats-Msg-Id (republish): the jobs stream's duplicate
// window absorbs the second message, and after it a worker's claim shows
// the attempt taken (worker/claim.go). The window of that is markHold
// instead of a commit's few milliseconds. The runs whose events were
// applied are not QUEUED (or QUEUED for a later attempt, whose own mark
// enqueue writes), so the mark does not matter to them. A server that
// stops writes the marks it holds before it returns (Run). The jobs
// stream's check writes them before it counts marked runs as unpublished
// again (checkJobsStream): their jobs went to the stream it replaces.

// markHold is how long a new run's published mark may wait for the
// application of its events to make it.
const markHold = time.Second

// heldMarks are the new runs whose first attempt's published mark waits.
type heldMarks struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// holdMark holds the mark of new run id's first attempt.
func (s *Server) holdMark(id string) {
	s.marks.mu.Lock()
	if s.marks.ids == nil {
		s.marks.ids = make(map[string]struct{})
	}
	s.marks.ids[id] = struct{}{}
	s.marks.mu.Unlock()
}

// dropMark drops the mark held for run id, if any: the application of its
// events has marked it in the store.
func (s *Server) dropMark(id string) {
	s.marks.mu.Lock()
	_, ok := s.marks.ids[id]
	if ok {
		delete(s.marks.ids, id)
	}
	s.marks.mu.Unlock()
	if ok {
		s.confirming.Delete(id)
	}
}

// flushMarks writes the marks held. A run whose mark could not be
// written is left unmarked, as when confirmQueued's own write failed: the
// sweep's republish publishes and marks it.
func (s *Server) flushMarks(ctx context.Context) {
	s.marks.mu.Lock()
	held := s.marks.ids
	s.marks.ids = nil
	s.marks.mu.Unlock()
	if len(held) == 0 {
		return
	}
	ids := make([]string, 0, len(held))
	for id := range held {
		ids = append(ids, id)
	}
	if err := s.db.MarkPublishedRuns(ctx, ids); err != nil {
		s.cfg.log.Warn().Err(err).Int("runs", len(ids)).Msg("mark jobs published; the sweep publishes them again")
	}
	for _, id := range ids {
		s.confirming.Delete(id)
	}
}

// keepMarks writes the marks held every markHold until ctx ends; Run
// writes the last ones once the confirmations on their way are done.
func (s *Server) keepMarks(ctx context.Context) {
	t := time.NewTicker(markHold)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flushMarks(context.WithoutCancel(ctx)) // a stop comes after the write
		}
	}
}
