package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Announcing the changes the server makes of its own accord, even across
// a crash. The changes that workers' reports cause are vouched for by the
// reports (applyBatch acknowledges a report once its announcements are
// stored). The others are vouched for, without a write or a request more
// on the way of an ordinary run, by:
//
//   - a new run's QUEUED: by its job's published mark, which confirmQueued
//     writes only once the announcement, sent before the job, is stored.
//     A crash before the mark leaves the run unmarked,
//     and the next start, which publishes the jobs of unmarked runs
//     (republish), checks their announcements first (ensureAnnounced).
//   - every other status change (a stop, the sweep's end of a lost
//     attempt, a run failed or released for its dependencies or its pool,
//     a new run that waits or fails at once): by a row of the
//     announcement outbox (storage/announce.go), written in the change's
//     transaction and deleted, in batches, once its announcement is stored
//     (keepAnnouncements). The next start checks the runs of the rows a
//     crash left (resyncPending).
//
// To check a run is to compare its stored status with the last message
// on its subject (queue.LastStatus) and to publish the stored status where
// they differ: an announcement the crash lost comes late, when the server
// starts again. An announcement that fails or is not stored within
// announceWait while the server runs is checked again every announceTick
// until it is stored.
//
// Every change of a stored run holds lockOrder until its announcement is
// sent: a run's announcements follow its changes, never an older status
// after a newer one, and a status is announced twice only where a crash
// or a failed (or late) publish forced a check, which cannot tell a lost
// announcement from a late one.
//
// Changes of a run's statusReason alone (the sweep's placement reasons, a
// waiting run's count of slots or its dependencies' statuses) are
// announced without that guarantee: they are frequent, and the next
// change of the run, or the store, tells the same.

// announceTick is how often the outbox's rows whose announcements are
// stored are deleted, and the announcements that failed checked again.
const announceTick = time.Second

// announceWait bounds how long, from its publish, an announcement may
// take to be stored before its run is checked again; announceStopWait is
// how long a stopping server waits for the announcements on their way.
const (
	announceWait     = 10 * time.Second
	announceStopWait = 2 * time.Second
)

// announceCheckMax bounds the runs one tick checks again.
const announceCheckMax = 100

// announceBackoffMax bounds how long a run whose check keeps failing (its
// document unreadable, say) waits between checks: the others go first.
const announceBackoffMax = time.Minute

// errUnread marks a check that could not read the run's last
// announcement: NATS does not answer, and the next checks would each wait
// for their timeout too.
var errUnread = errors.New("last announcement unread")

// announcer holds the announcements the outbox waits for.
type announcer struct {
	mu      sync.Mutex
	pending []tracked           // on their way, in publish order
	recheck map[string]*recheck // runs to check again
	done    []int64             // rows whose announcements are stored, to delete
	// unread: the last check could not read an announcement; said once.
	unread bool
}

// recheck is a run to check again: its outbox rows, and, once its check
// failed, how many times in a row and when to try again.
type recheck struct {
	rows  []int64
	fails int
	due   time.Time
}

// tracked is the announcement (one or more publishes, in order) of a run's
// change, and the outbox rows it clears once stored.
type tracked struct {
	run     string
	rows    []int64
	futures []jetstream.PubAckFuture
	sent    time.Time
	// verify: checked again once stored, not cleared (a check's own
	// publish, which a change made meanwhile may have overtaken).
	verify bool
}

// checkLater has run id checked again at the next tick, with its rows.
func (a *announcer) checkLater(id string, rows []int64) {
	a.putBack(id, &recheck{rows: rows})
}

// putBack has run id checked again as c says, with the rows that
// checkLater added for it meanwhile. A run that failed keeps its backoff.
func (a *announcer) putBack(id string, c *recheck) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recheck == nil {
		a.recheck = map[string]*recheck{}
	}
	if old := a.recheck[id]; old != nil {
		c.rows = append(c.rows, old.rows...)
		if old.fails > c.fails {
			c.fails, c.due = old.fails, old.due
		}
	}
	a.recheck[id] = c
}

// takeDue removes from the runs to check again, and returns, at most max
// of those due at now: the runs that never failed first, then those that
// failed, longest due first, so that runs whose checks keep failing
// starve none of the others.
func (a *announcer) takeDue(now time.Time, max int) ([]string, []*recheck) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for id, c := range a.recheck {
		if !c.due.After(now) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(x, y string) int {
		return cmp.Or(a.recheck[x].due.Compare(a.recheck[y].due), cmp.Compare(x, y))
	})
	ids = ids[:min(len(ids), max)]
	cs := make([]*recheck, len(ids))
	for i, id := range ids {
		cs[i] = a.recheck[id]
		delete(a.recheck, id)
	}
	return ids, cs
}

// announceBackoff is how long a run whose check failed fails times in a
// row waits for its next.
func announceBackoff(fails int) time.Duration {
	return min(announceTick<<min(fails, 10), announceBackoffMax)
}

func (a *announcer) cleared(rows []int64) {
	if len(rows) == 0 {
		return
	}
	a.mu.Lock()
	a.done = append(a.done, rows...)
	a.mu.Unlock()
}

// rowsOf is the outbox row id as a list: none when id is 0.
func rowsOf(id int64) []int64 {
	if id == 0 {
		return nil
	}
	return []int64{id}
}

// send publishes r's status. It returns nil when the publish could not
// even be sent.
func (s *Server) send(r *jobs.Run) jetstream.PubAckFuture { return s.sends().send(r) }

// heldSends are the publishes of one hold of lockOrder. Once one of them
// cannot be sent, the others are not tried but fail as it did: a NATS
// that takes no more publishes (too many outstanding: acks not coming)
// has each wait up to 200 ms for room, and a batch of reports that
// changed hundreds of runs then held every change and submission up for
// a minute. A publish not tried is handled as one that failed: its run
// checked again, or its report applied again.
type heldSends struct {
	s   *Server
	err error // why the first publish that failed did
}

// sends starts the publishes of one hold of lockOrder.
func (s *Server) sends() *heldSends { return &heldSends{s: s} }

// publish publishes ev, unless a publish of the hold failed before.
func (h *heldSends) publish(ev *jobs.Event) (jetstream.PubAckFuture, error) {
	if h.err != nil {
		return nil, fmt.Errorf("not tried, a publish before it failed: %w", h.err)
	}
	f, err := h.s.q.PublishEventAsync(ev)
	if err != nil {
		h.err = err
	}
	return f, err
}

// send is Server.send within the hold.
func (h *heldSends) send(r *jobs.Run) jetstream.PubAckFuture {
	s := h.s
	if lost := s.cfg.lostAnnouncement; lost != nil && lost(r.RunID) {
		return lostFuture{}
	}
	if unsent := s.cfg.unsentAnnouncement; unsent != nil && unsent(r.RunID) {
		s.cfg.log.Warn().Str("run", r.RunID).Msg("publish status; checked again")
		return nil
	}
	f, err := h.publish(s.statusEvent(r))
	if err != nil {
		s.cfg.log.Warn().Err(err).Str("run", r.RunID).Msg("publish status; checked again")
		return nil
	}
	return f
}

// announceRun is Server.announceRun within the hold.
func (h *heldSends) announceRun(r *jobs.Run, outbox int64) {
	h.s.track(r.RunID, rowsOf(outbox), false, h.send(r))
}

// track keeps the outbox rows of run id until the publishes fs (sent in
// order, for one change) are stored; a nil among them has the run checked
// again. Publishes with neither rows nor verify are not waited for.
func (s *Server) track(id string, rows []int64, verify bool, fs ...jetstream.PubAckFuture) {
	if slices.Contains(fs, nil) {
		s.ann.checkLater(id, rows)
		return
	}
	if len(rows) == 0 && !verify {
		return
	}
	s.ann.mu.Lock()
	s.ann.pending = append(s.ann.pending, tracked{run: id, rows: rows, futures: fs, sent: time.Now(), verify: verify})
	s.ann.mu.Unlock()
}

// lostFuture is the future of an announcement that a test loses
// (config.lostAnnouncement): it never settles, as that of a publish sent
// by a process killed before it reached NATS.
type lostFuture struct{}

func (lostFuture) Ok() <-chan *jetstream.PubAck { return nil }
func (lostFuture) Err() <-chan error            { return nil }
func (lostFuture) Msg() *nats.Msg               { return nil }

// lockOrder is held from a change of a stored run to the send of its
// announcement (unlockOrder): no other change of the run is committed,
// and announced, in between, and publishes sent in order on one
// connection are stored in that order. So, with no crash and no failed
// publish, a run's announcements follow its changes: none announced twice
// nor an older status after a newer one (a sweep's QUEUED after the
// worker's end applied meanwhile, or a pool's reason after a stop). The
// store writes one transaction at a time: the lock costs the changes
// little more than they wait already. New runs take it shared
// (rlockOrder): they change no stored run, and their submissions still
// commit in groups.
func (s *Server) lockOrder() {
	if !s.order.TryLock() {
		if waits := s.cfg.orderWaits; waits != nil {
			waits()
		}
		s.order.Lock()
	}
}

func (s *Server) unlockOrder() { s.order.Unlock() }

// rlockOrder is lockOrder for the creation of a new run.
func (s *Server) rlockOrder() {
	if !s.order.TryRLock() {
		if waits := s.cfg.orderWaits; waits != nil {
			waits()
		}
		s.order.RLock()
	}
}

func (s *Server) runlockOrder() { s.order.RUnlock() }

// announceRun publishes r's status and clears the outbox row outbox (0:
// none) once it is stored.
func (s *Server) announceRun(r *jobs.Run, outbox int64) { s.sends().announceRun(r, outbox) }

// keepAnnouncements settles the announcements on their way and checks
// again those that failed, every announceTick, until ctx is done; then it
// settles those on their way for announceStopWait more. What it leaves,
// the rows kept in the store tell the next start.
func (s *Server) keepAnnouncements(ctx context.Context) {
	t := time.NewTicker(announceTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceStopWait)
			defer cancel()
			s.settleAnnouncements(stop)
			s.clearAnnounced(stop)
			return
		case <-t.C:
		}
		s.settleAnnouncements(ctx)
		s.recheckAnnouncements(ctx)
		s.clearAnnounced(ctx)
	}
}

// settleAnnouncements waits for the announcements on their way: those
// stored clear their rows (or, verify set, have their runs checked), the
// others have their runs checked again. It gives up on what is not
// stored by the time ctx ends, leaving it on its way.
func (s *Server) settleAnnouncements(ctx context.Context) {
	s.ann.mu.Lock()
	pending := s.ann.pending
	s.ann.pending = nil
	s.ann.mu.Unlock()
	wait := time.NewTimer(0)
	defer wait.Stop()
	for i := range pending {
		p := &pending[i]
		err := awaitStored(ctx, wait, p)
		switch {
		case err == nil && p.verify:
			s.ann.checkLater(p.run, p.rows)
		case err == nil:
			s.ann.cleared(p.rows)
		case ctx.Err() != nil:
			// Left on its way, less the publishes seen stored: a future
			// tells its outcome once.
			s.ann.mu.Lock()
			s.ann.pending = append(pending[i:], s.ann.pending...)
			s.ann.mu.Unlock()
			return
		default:
			s.cfg.log.Warn().Err(err).Str("run", p.run).Msg("announce status; checked again")
			s.ann.checkLater(p.run, p.rows)
		}
	}
}

// awaitStored waits for p's publishes to be stored, until announceWait
// after they were sent, or ctx's end, dropping from p those it sees
// stored. A publish stored already counts as stored whatever the time: a
// select would pick at random between its outcome and a deadline passed
// (settleAnnouncements comes late to the publishes behind a slow one),
// and a stored announcement taken for a failed one has its run checked,
// which, were the run changing meanwhile, could announce it twice.
func awaitStored(ctx context.Context, wait *time.Timer, p *tracked) error {
	wait.Reset(max(time.Until(p.sent.Add(announceWait)), 0))
	for len(p.futures) > 0 {
		f := p.futures[0]
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		default:
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-wait.C:
				return errors.New("not stored within " + announceWait.String())
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		p.futures = p.futures[1:]
	}
	return nil
}

// recheckAnnouncements checks the runs whose announcements failed, or
// were a check's, at most announceCheckMax a tick. A check that cannot
// read the last announcement ends the tick: while NATS does not answer,
// each would wait for its timeout. A run whose check fails otherwise
// waits longer each time (announceBackoff), behind the others.
func (s *Server) recheckAnnouncements(ctx context.Context) {
	ids, cs := s.ann.takeDue(time.Now(), announceCheckMax)
	for i, id := range ids {
		err := s.checkAnnounced(ctx, id, cs[i].rows, true)
		switch {
		case err == nil:
			s.ann.mu.Lock()
			resumed := s.ann.unread
			s.ann.unread = false
			s.ann.mu.Unlock()
			if resumed {
				s.cfg.log.Info().Msg("announcement checks read the last announcements again")
			}
		case errors.Is(err, errUnread):
			for j := i; j < len(ids); j++ {
				s.ann.putBack(ids[j], cs[j])
			}
			s.ann.mu.Lock()
			first := !s.ann.unread
			s.ann.unread = true
			s.ann.mu.Unlock()
			if first {
				s.cfg.log.Warn().Err(err).Str("run", id).Int("runs", len(ids)-i).
					Msg("announcement checks wait for NATS; tried again every tick")
			}
			return
		default:
			c := cs[i]
			c.fails++
			c.due = time.Now().Add(announceBackoff(c.fails))
			ev := s.cfg.log.Debug()
			if c.fails == 1 {
				ev = s.cfg.log.Warn()
			}
			ev.Err(err).Str("run", id).Int("fails", c.fails).Msg("check announcement; checked again, less often each time")
			s.ann.putBack(id, c)
		}
	}
}

// clearAnnounced deletes the rows whose announcements are stored. Rows it
// could not delete are tried again at the next tick; a crash meanwhile
// has their runs checked, and found announced, at the next start.
func (s *Server) clearAnnounced(ctx context.Context) {
	s.ann.mu.Lock()
	done := s.ann.done
	s.ann.done = nil
	s.ann.mu.Unlock()
	if len(done) == 0 {
		return
	}
	if err := s.db.AnnouncementsDone(ctx, done); err != nil {
		s.cfg.log.Warn().Err(err).Msg("clear the announcement outbox; tried again")
		s.ann.mu.Lock()
		s.ann.done = append(s.ann.done, done...)
		s.ann.mu.Unlock()
	}
}

// checkAnnounced compares run id's stored status with the last one
// announced, and publishes the stored one where they differ; the outbox
// rows clear once the last announcement is the stored status. A check
// that cannot read either, or send its publish, returns why (errUnread
// where it could not read the last announcement): its caller has it made
// again. verify has a publish of the check checked again once stored: an
// announcement on its way when the last one was read (one that was slow
// to be stored) may be stored after the check's publish. The read of the
// run and the publish hold lockOrder: no change comes in between.
//
// The last announcement is read before the run: every status announced
// by then was stored before it, so the run read after is as new as the
// last announcement or newer. Read the other way round, a change stored
// and announced between the two reads would be taken for a lost
// announcement, and the older status published after it.
func (s *Server) checkAnnounced(ctx context.Context, id string, rows []int64, verify bool) error {
	last, err := s.q.LastStatus(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: %w", errUnread, err)
	}
	if between := s.cfg.betweenCheckReads; between != nil {
		between(id)
	}
	s.lockOrder()
	defer s.unlockOrder()
	r, err := s.db.GetRun(ctx, id)
	if errors.Is(err, jobs.ErrNotFound) {
		s.ann.cleared(rows) // deleted since
		return nil
	} else if err != nil {
		return fmt.Errorf("read run %s to check its announcement: %w", id, err)
	}
	if announced(last, r) {
		s.ann.cleared(rows)
		return nil
	}
	s.cfg.log.Info().Str("run", id).Str("status", string(r.Status)).
		Msg("announce a status whose announcement was lost or failed")
	f := s.send(r)
	if f == nil {
		return fmt.Errorf("announce run %s: not sent", id)
	}
	s.track(id, rows, verify, f)
	return nil
}

// announced reports whether last, the last status announced for a run,
// says what r, the run as stored, is: status, attempt and reason.
func announced(last *jobs.Event, r *jobs.Run) bool {
	return last != nil && last.Status == r.Status && last.Attempt == currentAttempt(r) &&
		last.StatusReason == r.StatusReason
}

// resyncPending checks the runs of the outbox's rows, at start, before
// anything else changes runs: those of the changes whose announcements a
// crash may have lost. It returns the runs it checked.
func (s *Server) resyncPending(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.PendingAnnouncements(ctx)
	if err != nil {
		return nil, err
	}
	byRun := map[string][]int64{}
	var order []string
	for _, a := range rows {
		if _, ok := byRun[a.RunID]; !ok {
			order = append(order, a.RunID)
		}
		byRun[a.RunID] = append(byRun[a.RunID], a.ID)
	}
	var unread error
	for _, id := range order {
		if unread != nil { // NATS does not answer: each check would wait
			s.ann.checkLater(id, byRun[id])
			continue
		}
		if err := s.checkAnnounced(ctx, id, byRun[id], false); err != nil { // before anything else changes runs
			s.cfg.log.Warn().Err(err).Str("run", id).Msg("check announcement; checked again")
			s.ann.checkLater(id, byRun[id])
			if errors.Is(err, errUnread) {
				unread = err
			}
		}
	}
	if len(order) > 0 {
		s.cfg.log.Info().Int("runs", len(order)).Msg("checked the announcements of the changes a stop left pending")
	}
	checked := make(map[string]bool, len(order))
	for _, id := range order {
		checked[id] = true
	}
	return checked, nil
}

// ensureAnnounced makes sure, at start, that r, a run whose job is not
// marked published, has its status announced: the announcement of a new
// run's QUEUED is vouched for by the mark alone, so a crash before the
// mark may have lost it. A run whose announcement is missing, or cannot
// be told, gets an outbox row before its job is published and marked.
func (s *Server) ensureAnnounced(ctx context.Context, r *jobs.Run) error {
	last, lerr := s.q.LastStatus(ctx, r.RunID)
	if lerr == nil && announced(last, r) {
		return nil
	}
	row, err := s.db.AddAnnouncement(ctx, r.RunID)
	if err != nil {
		return err
	}
	if lerr != nil {
		s.cfg.log.Warn().Err(lerr).Str("run", r.RunID).Msg("read the last status announced; checked again")
		s.ann.checkLater(r.RunID, []int64{row})
		return nil
	}
	s.cfg.log.Info().Str("run", r.RunID).Str("status", string(r.Status)).
		Msg("announce a new run's status, whose announcement a stop lost")
	s.track(r.RunID, []int64{row}, false, s.send(r)) // before anything else changes runs
	return nil
}

// confirmQueued waits, in the background, for f, the announcement of
// new run id's QUEUED, to be stored, then marks the job of its first
// attempt published, if it is (jobPublished): the mark vouches for both.
// An announcement that fails or is not stored within announceWait gets an
// outbox row, checked again until it is, before the mark. outbox is the
// row the run has already (0: none). Run waits for it before it returns.
// The run was registered as being confirmed (confirming) before it was
// stored: the sweep's republish, which leaves such runs alone, would
// otherwise mark it between its commit and its send, and a crash then
// lose its QUEUED unchecked.
func (s *Server) confirmQueued(ctx context.Context, id string, f jetstream.PubAckFuture, jobPublished bool, outbox int64) {
	s.bg.Go(func() {
		defer s.confirming.Delete(id)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceWait+30*time.Second)
		defer cancel()
		rows := rowsOf(outbox)
		var err error
		if f == nil {
			err = errors.New("not sent")
		} else {
			wait := time.NewTimer(0)
			err = awaitStored(ctx, wait, &tracked{futures: []jetstream.PubAckFuture{f}, sent: time.Now()})
			wait.Stop()
		}
		switch {
		case err == nil:
			s.ann.cleared(rows)
		case len(rows) > 0:
			s.ann.checkLater(id, rows)
		default:
			row, aerr := s.db.AddAnnouncement(ctx, id)
			if aerr != nil {
				// Left unmarked: the sweep's republish records and
				// checks it before it marks it (vouch), or else the
				// next start checks it.
				s.unvouched.Store(id, struct{}{})
				s.cfg.log.Warn().Err(aerr).Str("run", id).Msg("record a failed announcement; the sweep tries again")
				return
			}
			s.cfg.log.Warn().Err(err).Str("run", id).Msg("announce new run; checked again")
			s.ann.checkLater(id, []int64{row})
		}
		if !jobPublished {
			return
		}
		if err := s.db.MarkPublished(ctx, id, 1); err != nil {
			s.cfg.log.Warn().Err(err).Str("run", id).Msg("mark job published; it is published again at the next start")
		}
	})
}

// beingConfirmed reports whether a new run's announcement is on its way
// (confirmQueued): the sweep's republish leaves it to confirmQueued to
// mark, which vouches for the announcement too.
func (s *Server) beingConfirmed(id string) bool {
	_, ok := s.confirming.Load(id)
	return ok
}

// vouch makes sure, before the sweep's republish marks new run id's job
// published, that its QUEUED is vouched for: a run whose announcement
// failed and could not get an outbox row then (confirmQueued) gets one
// now, and is checked at the next tick. It reports whether the run may
// be marked; one that still cannot get its row is left unmarked, for the
// next sweep or the next start.
func (s *Server) vouch(ctx context.Context, id string) bool {
	if _, ok := s.unvouched.Load(id); !ok {
		return true
	}
	row, err := s.db.AddAnnouncement(ctx, id)
	if err != nil {
		s.cfg.log.Debug().Err(err).Str("run", id).Msg("record a failed announcement; the sweep tries again")
		return false
	}
	s.unvouched.Delete(id)
	s.ann.checkLater(id, []int64{row})
	return true
}
