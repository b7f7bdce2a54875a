package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/gantry-dev/gantry/worker"
)

// Array runs (jobs/arrayrun.go): a submission with arrayProperties makes
// a parent, which runs nothing, and its children, ordinary runs. Per
// step, if the server dies just after it:
//
//  1. The parent and its children are stored, each with a row of the
//     announcement outbox, in one transaction: the next start announces
//     their QUEUEDs (resyncPending) and its republish queues the children's
//     jobs, none of them marked published yet. The parent is marked
//     published: it has no job.
//  2. A child's job is published and marked, as a submission's.
//  3. A child's change is stored (a worker's report, a stop, a
//     dependency's failure): the parent's status is recomputed from its
//     children as stored (recomputeArray) where the change is told to the
//     run's owners (pipelinesChanged), and again for every array run not
//     ended at start (recomputeAllArrays), so a crash between the two
//     never leaves it RUNNING after its children ended.
//  4. The parent's new status is stored with a row of the outbox and
//     announced on gantry.events.runs.<parent>; its end resolves the runs
//     that depend on it (dependenciesMoved), once, since only the
//     recomputation that changes its status announces it.

// createArray is createRun for a request with arrayProperties: it stores
// the parent and its children and queues the children's jobs. The reply
// is the parent.
func (s *Server) createArray(ctx context.Context, req *jobs.SubmitRequest, td jobs.TaskDefinition, rerunOf string) (*jobs.Run, bool, error) {
	n := req.ArrayProperties.N()
	if n < jobs.MinArrayRunSize || n > jobs.MaxArraySize { // Validate says why
		return nil, false, req.Validate()
	}
	// A dependsOn of type SEQUENTIAL is no run to wait for
	// (jobs.DependencyStates leaves it out) but the children's order.
	sequential := jobs.Sequential(req.DependsOn)
	if sequential {
		s.waiters.mark() // before the children are stored: the ends applied after them look for them
	}
	tmpl, gen, err := s.newRun(ctx, req, td, rerunOf)
	if err != nil {
		return nil, false, err
	}
	parent := *tmpl
	parent.Status, parent.StatusReason = jobs.StatusQueued, ""
	parent.StopCode, parent.StoppedReason, parent.FinishedAt = "", "", nil
	parent.Attempts = []jobs.Attempt{}
	// Its children wait, take slots and time out; it does none of that.
	parent.DependsOn, parent.Pool = nil, ""
	parent.Spec.ActiveDeadlineSeconds, parent.Spec.Deadline = 0, nil
	parent.ArrayProperties = &jobs.ArrayProperties{Size: n, StatusSummary: map[jobs.Status]int{jobs.StatusQueued: n}}
	if sequential {
		parent.ArrayProperties.Order = jobs.ArrayOrderSequential
	}
	children := make([]*jobs.Run, n)
	for i := range children {
		children[i] = arrayChild(tmpl, parent.RunID, i, n)
		if sequential && i > 0 {
			// AWS Batch's SEQUENTIAL: child i waits for child i-1 to
			// succeed, as a run with --depends-on does; one that fails
			// fails those after it without running them.
			c := children[i]
			c.DependsOn = append(c.DependsOn, jobs.DependencyState{RunID: children[i-1].RunID, Condition: jobs.CondSuccess})
			c.ResolveDependencies(c.CreatedAt, func(string) (jobs.Status, bool) { return jobs.StatusQueued, true })
		}
	}
	// The largest job: a job the NATS server would refuse is refused
	// here, before anything is stored.
	if _, err := s.q.EncodeJob(jobOf(children[n-1])); err != nil {
		if tl := (*queue.JobTooLargeError)(nil); errors.As(err, &tl) {
			return nil, false, jobs.Invalid(tl.Error())
		}
		return nil, false, err
	}
	// Before the commit, as createRun's: the sweep's republish leaves the
	// children that enqueueAll is about to queue to it, rather than
	// publish and mark them all a second time.
	for _, c := range children {
		if c.Status == jobs.StatusQueued && !c.Waiting() && !c.WaitingForSlot() {
			s.confirming.Store(c.RunID, struct{}{})
		}
	}
	s.rlockOrder() // to the sends of their statuses: the changes made of them after come after
	if hook := s.cfg.runStoring; hook != nil {
		hook()
	}
	stored, created, outboxes, err := s.db.CreateArrayRun(ctx, &parent, children)
	if err != nil || !created {
		s.runlockOrder()
		for _, c := range children {
			s.confirming.Delete(c.RunID)
		}
		return stored, false, err
	}
	if sequential || len(tmpl.DependsOn) > 0 {
		s.waiters.stored() // before child 0 can run (queued, or released by a pool): its end looks for child 1
	}
	if hook := s.cfg.runStored; hook != nil {
		hook(stored.RunID)
	}
	// The QUEUEDs go before the jobs: a worker's STARTING must follow.
	s.announceRun(stored, outboxes[0])
	for i, c := range children {
		s.announceRun(c, outboxes[i+1])
	}
	s.runlockOrder()
	s.metrics.submitted.Add(float64(n))
	log := s.cfg.log.With().Str("run", stored.RunID).Logger()
	log.Debug().Int("size", n).Msg("array run submitted")
	var (
		waiting []string
		slots   bool
		ready   []*jobs.Run
	)
	for _, c := range children {
		if s.fleetGen.Load() != gen {
			s.markRecheck(c.RunID)
		}
		switch {
		case c.Status.Terminal(): // a dependency ended as it did not need
			s.metrics.runMoved(jobs.StatusQueued, false, c)
		case c.Waiting():
			waiting = append(waiting, c.RunID)
		case c.WaitingForSlot():
			slots = true
		default:
			ready = append(ready, c)
		}
	}
	s.enqueueAll(ctx, ready)
	if len(waiting) > 0 && len(tmpl.DependsOn) > 0 {
		// A dependency may have ended after it was read and before the
		// children were stored: look again now that they are. (A child
		// that waits only for its sibling, SEQUENTIAL, need not: that
		// one has not started.)
		if _, err := s.resolveWaiting(ctx, waiting...); err != nil {
			log.Warn().Err(err).Msg("resolve new waiting array children; the sweep tries again")
		}
	}
	if slots {
		if err := s.releasePools(ctx, req.Pool); err != nil {
			log.Warn().Err(err).Msg("release pool of new array children; the sweep tries again")
		}
	}
	latest, err := s.recomputeArray(ctx, stored.RunID)
	if err != nil {
		log.Warn().Err(err).Msg("recompute new array run; recomputed when a child moves")
		return stored, true, nil
	}
	return latest, true, nil
}

// arrayAsSubmitted is the array run parent with what its submission gave
// its children alone, as child 0 holds them: the pool, the dependencies
// (child 0 waits for no sibling) and the deadline, which the parent does
// without (createArray). Its rerun (rerun.go) keeps them, as a plain
// run's does. Without child 0 (a store edited by hand), parent as it is.
func (s *Server) arrayAsSubmitted(ctx context.Context, parent *jobs.Run) *jobs.Run {
	c, err := s.db.GetRun(ctx, jobs.ArrayChildID(parent.RunID, 0))
	if err != nil {
		s.cfg.log.Warn().Err(err).Str("run", parent.RunID).Msg("read child 0 of the array run to rerun; rerun without its pool, dependencies and deadline")
		return parent
	}
	r := *parent
	r.Pool, r.DependsOn = c.Pool, c.DependsOn
	r.Spec.ActiveDeadlineSeconds = c.Spec.ActiveDeadlineSeconds
	return &r
}

// enqueueParallel is how many children's jobs enqueueAll publishes at
// once: their publishes overlap, and their marks commit together
// (storage's group commit), where one after another took about 1.4 s for
// 1000 children and past 10 s for 10,000.
const enqueueParallel = 32

// enqueueAll publishes the jobs of runs, new and stored unpublished, and
// marks them. One that fails is left to republish, as a submission's:
// each is the sweep's again once enqueueAll is done with it.
func (s *Server) enqueueAll(ctx context.Context, runs []*jobs.Run) {
	var wg sync.WaitGroup
	next := make(chan *jobs.Run)
	for range min(enqueueParallel, len(runs)) {
		wg.Go(func() {
			for r := range next {
				if err := s.enqueue(ctx, r); err != nil {
					// Stored unpublished: republish queues it.
					s.cfg.log.Error().Err(err).Str("run", r.RunID).Msg("queue array child")
				}
				s.confirming.Delete(r.RunID) // the sweep's again (createArray)
			}
		})
	}
	for _, r := range runs {
		next <- r
	}
	close(next)
	wg.Wait()
}

// arrayChild is child i of an array run of n children made of tmpl, the
// run the request would make alone: its own id, no idempotency key (the
// parent holds the request's), and the array's environment, last, so that
// no override of the request's hides it.
func arrayChild(tmpl *jobs.Run, parent string, i, n int) *jobs.Run {
	c := *tmpl
	c.RunID = jobs.ArrayChildID(parent, i)
	c.IdempotencyKey = ""
	c.ArrayJobID = parent
	idx := i
	c.ArrayProperties = &jobs.ArrayProperties{Index: &idx}
	if tmpl.RerunOf != "" {
		// The rerun of an array run (of this size): child i runs child
		// i again.
		c.RerunOf = jobs.ArrayChildID(tmpl.RerunOf, i)
	}
	c.Attempts = slices.Clone(tmpl.Attempts)
	c.DependsOn = slices.Clone(tmpl.DependsOn)
	c.Containers = []jobs.ContainerResult{}
	ov := jobs.Overrides{}
	if tmpl.Spec.Overrides != nil {
		ov.ContainerOverrides = slices.Clone(tmpl.Spec.Overrides.ContainerOverrides)
	}
	ov.ContainerOverrides = append(ov.ContainerOverrides, jobs.ContainerOverride{Environment: jobs.ArrayChildEnv(i, n)})
	c.Spec.Overrides = &ov
	return &c
}

// arraysChanged recomputes the parents of the array children among runs,
// which changed. Runs of no array cost a field's test.
func (s *Server) arraysChanged(ctx context.Context, runs ...*jobs.Run) {
	var parents []string
	for _, r := range runs {
		if r != nil && r.ArrayJobID != "" && !slices.Contains(parents, r.ArrayJobID) {
			parents = append(parents, r.ArrayJobID)
		}
	}
	for _, id := range parents {
		if _, err := s.recomputeArray(ctx, id); err != nil && !errors.Is(err, jobs.ErrNotFound) {
			s.cfg.log.Warn().Err(err).Str("run", id).Msg("recompute array run; recomputed at the next change or start")
		}
	}
}

// recomputeArray sets the array run id's status from its children's as
// stored, announces a new status and, when it ended, resolves the runs
// that depend on it. It returns the parent as stored.
func (s *Server) recomputeArray(ctx context.Context, id string) (*jobs.Run, error) {
	s.lockOrder() // to the send: a change committed meanwhile is announced after
	r, before, changed, outbox, err := s.db.RecomputeArray(ctx, id, s.cfg.now())
	moved := err == nil && changed && r.Status != before
	if moved {
		s.announceRun(r, outbox)
	}
	s.unlockOrder()
	if err != nil {
		return nil, err
	}
	if moved {
		s.cfg.log.Debug().Str("run", id).Str("status", string(r.Status)).Msg("array run moved")
		s.dependenciesMoved(ctx, r) // rundeps.go
	}
	return r, nil
}

// recomputeAllArrays recomputes every array run not ended, at start:
// their children may have ended while no server recomputed them. One
// stopped and not ended is stopped again: a server that died during its
// stop may have left children queued (stopArray).
func (s *Server) recomputeAllArrays(ctx context.Context) error {
	ids, err := s.db.ActiveArrayRuns(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		r, err := s.recomputeArray(ctx, id)
		if err != nil && !errors.Is(err, jobs.ErrNotFound) {
			errs = append(errs, err)
		}
		if err != nil || r.Status.Terminal() || r.StopCode != jobs.StopUserInitiated {
			continue
		}
		s.cfg.log.Info().Str("run", id).Msg("array run stopped before the server started: its children not ended are stopped again")
		if _, err := s.stopArray(ctx, id, r.StoppedReason); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopArrayPage is how many of an array's children stopArray reads at
// once, and stops in one transaction.
const stopArrayPage = 500

// stopArrayParallel is how many children's stops stopArray tells the
// queue of at once (their marks, claims and cancel messages): a round
// trip each, which one after another took most of a second per thousand
// children.
const stopArrayParallel = 32

// stopArray stops an array run: it records the stop on the parent, so
// that it ends CANCELED once its children have, and stops every child not
// ended, as gantry stop of each would. It stops them a page at a time,
// last index first: in a sequential array child i+1 waits for child i,
// and child i's stop, were it first, would reach child i+1 as a
// dependency CANCELED and fail it (and those after it) before its own
// stop came; stopped first, it ends CANCELED with the stop's reason, as
// the user asked. For the same reason, a sequential array's children
// that wait for their sibling are stored CANCELED first, all of them,
// unmarked (cancelWaitingChildren): the child that runs is marked after,
// and its worker may report it ended before its page is stored. Per
// step, if the server dies just after it:
//
//  1. The parent's stop is stored: the next start stops its children
//     not ended (recomputeAllArrays), as gantry stop of it again would.
//     (Of a sequential array, the children waiting may be stored
//     CANCELED: their stop is done.)
//  2. A page's children are marked canceled in the queue and in their
//     claims (markChildren), as Stop marks a run: a worker that takes
//     one's job reports it CANCELED; the rest, as in 1.
//  3. The page's children are stored CANCELED, each with a row of the
//     announcement outbox, in one transaction (cancelChildren): the next
//     start announces them (resyncPending). A page whose transaction
//     fails is stored a child at a time: a child the store refuses stays
//     as in 2, and the stop's error names it.
//  4. The parent is recomputed once all are: at start too
//     (recomputeAllArrays).
//
// The marks of a page, round trips to NATS, are made while the page
// before it is stored: 10,000 children took 9 s one Stop after another.
func (s *Server) stopArray(ctx context.Context, id, reason string) (*jobs.Run, error) {
	parent, err := s.db.UpdateRun(ctx, id, func(r *jobs.Run) bool { return r.StopArray(reason) })
	if err != nil {
		return nil, err
	}
	if parent.StopCode == jobs.StopUserInitiated {
		// Stopped before (a stop going on, or at once): its children
		// are stopped with the parent's reason, not some with each's.
		reason = parent.StoppedReason
	}
	// A page at a time, by index: 10,000 children's documents are not
	// held at once, only their ids.
	f := storage.RunFilter{ArrayJobID: id, Statuses: []jobs.Status{jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning},
		Limit: stopArrayPage}
	var ids []string
	for {
		children, err := s.db.ListRuns(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("stop array run %s: %w", id, err)
		}
		for _, c := range children {
			ids = append(ids, c.RunID)
		}
		if len(children) < f.Limit {
			break
		}
		f.Next(&children[len(children)-1])
	}
	var errs []error
	if parent.ArrayProperties != nil && parent.ArrayProperties.Order == jobs.ArrayOrderSequential {
		// Before any child is marked: a child marked is one a worker may
		// stop and report ended at once, and its end, applied before the
		// children after it in its page are stored, would fail them.
		canceled := s.cancelWaitingChildren(ctx, ids, reason)
		ids = slices.DeleteFunc(ids, func(c string) bool { return canceled[c] })
	}
	var (
		wg     sync.WaitGroup
		marked = make(chan markedPage, 1) // the next page's marks, made while one is stored
	)
	wg.Go(func() {
		defer close(marked)
		for end := len(ids); end > 0; end -= stopArrayPage {
			marked <- s.markChildren(ctx, ids[max(0, end-stopArrayPage):end], reason)
		}
	})
	for page := range marked {
		errs = append(errs, page.errs...)
		if hook := s.cfg.childrenMarked; hook != nil && len(page.ids) > 0 {
			hook(page.ids)
		}
		if _, err := s.cancelChildren(ctx, page, reason); err != nil {
			errs = append(errs, err)
		}
	}
	wg.Wait()
	r, err := s.recomputeArray(ctx, id)
	if err != nil {
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}

// markedPage is a page of array children marked canceled (markChildren).
type markedPage struct {
	ids   []string                   // those marked, in no order
	taken map[string]*worker.Claimed // the claims of workers that took their jobs
	errs  []error                    // those that could not be
	// waiting says that ids are not marked: only those of them still
	// waiting for a dependency are to be stored CANCELED
	// (cancelWaitingChildren).
	waiting bool
}

// cancelWaitingChildren stores CANCELED the children of a sequential
// array among ids (in index order) that wait for a dependency, a page at
// a time, last index first, and returns those it stored. A waiting
// child's job is not published, so no worker can run it and it needs no
// mark: stored CANCELED in the transaction that finds it waiting (that of
// its release is another), it never will be. Those that no longer wait,
// and those that could not be stored, are left to the marks that follow,
// which report a child that fails again: its failure here is logged.
func (s *Server) cancelWaitingChildren(ctx context.Context, ids []string, reason string) map[string]bool {
	canceled := map[string]bool{}
	for end := len(ids); end > 0; end -= stopArrayPage {
		done, err := s.cancelChildren(ctx, markedPage{ids: ids[max(0, end-stopArrayPage):end], waiting: true}, reason)
		if err != nil {
			s.cfg.log.Warn().Err(err).Msg("array children waiting for a sibling not stored canceled: they are marked and stored with the others")
		}
		for _, c := range done {
			canceled[c] = true
		}
	}
	return canceled
}

// markChildren marks the array children ids canceled in the queue and
// in their claims, as Stop does, stopArrayParallel at a time. Those that
// ended are left out.
func (s *Server) markChildren(ctx context.Context, ids []string, reason string) markedPage {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next = make(chan string)
		page = markedPage{taken: map[string]*worker.Claimed{}}
	)
	for range min(stopArrayParallel, len(ids)) {
		wg.Go(func() {
			for id := range next {
				taken, err := s.markChildCanceled(ctx, id, reason)
				mu.Lock()
				switch {
				case errors.Is(err, errEnded):
				case err != nil:
					page.errs = append(page.errs, fmt.Errorf("stop %s: %w", id, err))
				default:
					page.ids = append(page.ids, id)
					page.taken[id] = taken
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range slices.Backward(ids) {
		next <- id
	}
	close(next)
	wg.Wait()
	return page
}

// cancelChildren stores the children of page that are still queued
// CANCELED, in one transaction, announces them and resolves what waits
// for them, as Stop does for one run. It returns those it stored. A page
// whose transaction fails (one child's row the store refuses fails them
// all) is stored again a child at a time: only the child that cannot be
// stored fails, and the error names it, as Stop of it alone would.
func (s *Server) cancelChildren(ctx context.Context, page markedPage, reason string) ([]string, error) {
	if len(page.ids) == 0 {
		return nil, nil
	}
	var errs []error
	moved, err := s.storeChildrenCanceled(ctx, page, page.ids, reason)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stop array children %s to %s: %w", page.ids[len(page.ids)-1], page.ids[0], err)
		}
		s.cfg.log.Warn().Err(err).Int("children", len(page.ids)).
			Msg("a page of array children could not be stored canceled at once: storing them a child at a time")
		for _, id := range page.ids {
			r, err := s.storeChildrenCanceled(ctx, page, []string{id}, reason)
			if err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", id, err))
				continue
			}
			moved = append(moved, r...)
		}
	}
	done := make([]string, 0, len(moved))
	for _, r := range moved {
		done = append(done, r.RunID)
		s.canceledQueued(r) // server.go
	}
	// The whole page is stored CANCELED before what waits for any of it
	// is resolved, and the pages after it were before: a sequential
	// array's child is not failed by its sibling's stop.
	s.dependenciesMoved(ctx, moved...) // rundeps.go
	return done, errors.Join(errs...)
}

// storeChildrenCanceled stores CANCELED, in one transaction, those of the
// children ids of page that are still queued (those still waiting, of a
// waiting page), and announces them; it returns those it stored.
func (s *Server) storeChildrenCanceled(ctx context.Context, page markedPage, ids []string, reason string) ([]*jobs.Run, error) {
	now := s.cfg.now().UTC()
	canceledHere := map[string]bool{}
	s.lockOrder()
	defer s.unlockOrder()
	runs, outboxes, err := s.db.UpdateRunsAnnounced(ctx, ids, func(r *jobs.Run) (bool, bool) {
		var ok bool
		if page.waiting {
			ok = r.Waiting() && r.Cancel(now, reason)
		} else {
			ok = cancelRun(r, now, reason, page.taken[r.RunID]) // server.go
		}
		canceledHere[r.RunID] = ok
		return ok, ok
	})
	if err != nil {
		return nil, err
	}
	var moved []*jobs.Run
	for i, r := range runs {
		if canceledHere[r.RunID] {
			s.announceRun(r, outboxes[i])
			moved = append(moved, r)
		}
	}
	return moved, nil
}

// errEnded is markChildCanceled's answer for a run that ended: there is
// nothing to stop.
var errEnded = errors.New("server: run ended")

// markChildCanceled is the part of Stop that tells the queue: it marks
// run id canceled and its claim, and returns the claim of a worker that
// took its job, if one did.
func (s *Server) markChildCanceled(ctx context.Context, id, reason string) (*worker.Claimed, error) {
	r, err := s.db.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status.Terminal() {
		return nil, errEnded
	}
	return s.markCanceled(ctx, id, reason, r.Current()) // server.go
}
