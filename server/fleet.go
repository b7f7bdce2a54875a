package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
)

// WithSweepInterval sets how often the server explains why queued runs
// wait, looks for runs of lost workers and queues the retries whose
// backoff ended that it was not woken for (2 s by default): it queues a
// retry when its backoff ends, whatever the interval (retrywake.go).
func WithSweepInterval(d time.Duration) Option { return func(c *config) { c.sweepEvery = d } }

// lostSeq is the seq of WorkerLost events; it matches the worker's, so
// that the server's and a worker's verdicts on the same attempt are one.
const lostSeq = 1 << 30

// placementReason says why no worker can take the run now, or "" when one
// can. It is set on QUEUED runs as statusReason.
func placementReason(r *jobs.Run, workers []jobs.WorkerInfo) string {
	// One pass, narrowing as the checks below do: a worker of the run's
	// cluster, with the labels its constraints ask for, with the memory,
	// with the CPU, not draining, its runtime answering. It runs for every
	// submission, so it copies no WorkerInfo.
	need := r.Spec.Demand()
	cons := r.Spec.Constraints
	// A high or low run waits on a queue that workers before priorities
	// do not read (a run aimed at one worker is on that worker's).
	prio := r.TargetWorker == "" && r.Priority.Level() != jobs.PriorityNormal
	var cands, labelsOK, memOK, cpuOK, notDraining, active, reads int
	var mostMem, mostCPU int // the largest capacities that fell short
	for i := range workers {
		w := &workers[i]
		if w.Cluster != r.Cluster || (r.TargetWorker != "" && w.ID != r.TargetWorker) {
			continue
		}
		cands++
		if len(cons) > 0 && !cons.Match(w.Labels) {
			continue
		}
		labelsOK++
		if w.Capacity.Memory > 0 && need.Memory > w.Capacity.Memory {
			mostMem = max(mostMem, w.Capacity.Memory)
			continue
		}
		memOK++
		if w.Capacity.CPU > 0 && need.CPU > w.Capacity.CPU {
			mostCPU = max(mostCPU, w.Capacity.CPU)
			continue
		}
		cpuOK++
		if w.State == jobs.WorkerDraining {
			continue
		}
		notDraining++
		if w.RuntimeError == "" {
			active++
			if !prio || w.Priorities {
				reads++
			}
		}
	}
	if reads > 0 {
		return ""
	}
	where := "in cluster " + r.Cluster
	if r.TargetWorker != "" {
		where = "named " + r.TargetWorker + " in cluster " + r.Cluster
	}
	switch {
	case cands == 0:
		if r.TargetWorker == "" {
			// A misspelt --cluster waits for ever: say where workers are,
			// or, with none at all, what starts one.
			if others := liveClusters(workers); others != "" {
				return "no live worker " + where + " (live workers are in " + others + ")"
			}
			return "no live worker " + where + " (no worker is live at all: gantry worker --cluster " + r.Cluster + " starts one)"
		}
		return "no live worker " + where
	case labelsOK == 0:
		return unmatchedReason(r, workers, where)
	}
	if len(cons) > 0 {
		if positive(cons) {
			where += " with labels " + cons.String()
		} else {
			where += " meeting the constraints " + cons.String()
		}
	}
	switch {
	case active > 0:
		return fmt.Sprintf("no worker %s that could run it reads %s-priority runs: they are of a gantry before run priorities; upgrade them, or submit it with --priority normal",
			where, r.Priority)
	case memOK == 0:
		return fmt.Sprintf("no worker %s has %d MiB of memory (the most is %d MiB)", where, need.Memory, mostMem)
	case cpuOK == 0 && need.Memory == 0:
		// A run that asks for no memory fits any worker's: "with 0 MiB
		// of memory" said nothing.
		return fmt.Sprintf("no worker %s has %d CPU units (the most is %d)", where, need.CPU, mostCPU)
	case cpuOK == 0:
		return fmt.Sprintf("no worker %s with %d MiB of memory has %d CPU units (the most is %d)", where, need.Memory, need.CPU, mostCPU)
	case notDraining == 0:
		return "every worker " + where + " that could run it is draining (gantry workers activate ID takes one back)"
	case notDraining == cpuOK:
		return "every worker " + where + " that could run it cannot reach its container runtime"
	}
	return "every worker " + where + " that could run it is draining or cannot reach its container runtime"
}

// checkPinnedWorker refuses a run of cluster pinned to worker id (gantry
// run --worker) that is live in another cluster only, or live in cluster
// with labels that do not meet the run's constraints cs: its job waits on
// that worker's own queue of the run's cluster, which the worker does not
// read (another cluster's) or hands back each time (its labels), so the
// run would wait QUEUED for ever. A worker not live now (not started
// yet, restarting, perhaps in another cluster or with other labels) is
// no reason to refuse: such a run waits QUEUED, its statusReason saying
// why (placementReason), as before. Nor is a fleet that cannot be read.
func (s *Server) checkPinnedWorker(ctx context.Context, id, cluster string, cs jobs.Constraints) error {
	workers, err := s.liveWorkers(ctx)
	if err != nil {
		return nil
	}
	var elsewhere []string // the other clusters it is live in
	for i := range workers {
		w := &workers[i]
		if w.ID != id {
			continue
		}
		if w.Cluster != cluster {
			elsewhere = append(elsewhere, w.Cluster)
			continue
		}
		if cs.Match(w.Labels) {
			return nil
		}
		unmet := cs.Unmet([]map[string]string{w.Labels})
		what := "constraints"
		if len(unmet) == 1 {
			what = "constraint"
		}
		return &jobs.FieldError{Path: "worker", Msg: fmt.Sprintf("%s, live in cluster %s with %s, does not meet the run's %s %s: pinned to it, the run could never start; pin another worker, or leave out worker (--worker) or the %s",
			id, cluster, labelsText(w.Labels), what, unmet, what)}
	}
	if len(elsewhere) > 0 {
		sort.Strings(elsewhere)
		return &jobs.FieldError{Path: "worker", Msg: fmt.Sprintf("%s is live in cluster %s, not in the run's cluster %s: pinned to it, the run could never start, as %s reads no queue of cluster %s; submit it to cluster %s (--cluster %s), or pin a worker of cluster %s",
			id, strings.Join(elsewhere, ", "), cluster, id, cluster, elsewhere[0], elsewhere[0], cluster)}
	}
	return nil
}

// labelsText lists a worker's labels, sorted ("labels disk=ssd, gpu=t4"),
// or says it has none.
func labelsText(labels map[string]string) string {
	if len(labels) == 0 {
		return "no labels"
	}
	kv := make([]string, 0, len(labels))
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return "labels " + strings.Join(kv, ", ")
}

// liveClusters names the clusters of workers, as "cluster default" or
// "clusters default, etl", at most 5 of them; "" when there is none.
func liveClusters(workers []jobs.WorkerInfo) string {
	var names []string
	for i := range workers {
		if c := workers[i].Cluster; !slices.Contains(names, c) {
			names = append(names, c)
		}
	}
	sort.Strings(names)
	switch {
	case len(names) == 0:
		return ""
	case len(names) == 1:
		return "cluster " + names[0]
	case len(names) > 5:
		return "clusters " + strings.Join(names[:5], ", ") + ", ..."
	}
	return "clusters " + strings.Join(names, ", ")
}

// unmatchedReason says which of r's constraints no live worker where r
// may go (where says it) satisfies, or, when each is met by some worker,
// that none meets them together.
func unmatchedReason(r *jobs.Run, workers []jobs.WorkerInfo, where string) string {
	var labels []map[string]string
	for i := range workers {
		if w := &workers[i]; w.Cluster == r.Cluster && (r.TargetWorker == "" || w.ID == r.TargetWorker) {
			labels = append(labels, w.Labels)
		}
	}
	cons := r.Spec.Constraints
	if unmet := cons.Unmet(labels); len(unmet) > 0 {
		return fmt.Sprintf("no worker %s %s", where, hasLabels(unmet))
	}
	return fmt.Sprintf("no worker %s %s together", where, hasLabels(cons))
}

// hasLabels says what a worker lacks that cs ask for: "has labels
// disk=ssd, gpu", or, when some ask for a label not to be there or not of
// a value, which "has labels !spot" would misread, "meets the
// constraints zone!=eu-1, !spot".
func hasLabels(cs jobs.Constraints) string {
	if positive(cs) {
		return "has labels " + cs.String()
	}
	return "meets the constraints " + cs.String()
}

// positive reports whether every one of cs asks for a label (K=V or K).
func positive(cs jobs.Constraints) bool {
	for _, c := range cs {
		if c.Not {
			return false
		}
	}
	return true
}

// fullSweepEvery bounds how long the sweep goes without looking at every
// queued run. Between those looks it reads only what changed (runs queued
// again, deadlines passed, workers gone); the full look is a safety net, at
// a rate that keeps its cost small however long the backlog.
const fullSweepEvery = 5 * time.Minute

// maxRecheck bounds the runs remembered for the next sweep (markRecheck);
// past it the next sweep looks at every queued run instead.
const maxRecheck = 10000

// sweepState is what the sweep remembers from one round to the next. Only
// the sweep's goroutine uses it.
type sweepState struct {
	absent map[string]time.Time // worker → when first seen gone
	// fleet is the fleet (fleetPrint) at the last look at every queued
	// run, made at fullAt; a zero fullAt asks for one at the next round.
	fleet  string
	fullAt time.Time
	// redeliveries are the runs whose current attempt waits for the queue
	// to hand out a lost attempt's job again, by that attempt's creation
	// (redeliver.go).
	redeliveries map[string]time.Time
	// keptGone are the workers of runs that keep a pool slot (poolstop.go)
	// by when they were first seen gone.
	keptGone map[string]time.Time
	// unlisted are the running runs whose live worker's heartbeats do not
	// list them, by run (unlisted.go).
	unlisted map[string]unlistedRun
	// beats are the workers' last heartbeats the sweep read, kept while
	// a worker is live or seen gone, for the reasons that say since when
	// one is silent (silence).
	beats map[string]time.Time
}

func newSweepState() *sweepState {
	return &sweepState{absent: map[string]time.Time{}, redeliveries: map[string]time.Time{}, keptGone: map[string]time.Time{},
		unlisted: map[string]unlistedRun{}, beats: map[string]time.Time{}}
}

// saw remembers the heartbeat of each live worker.
func (st *sweepState) saw(workers []jobs.WorkerInfo, now time.Time) {
	for _, w := range workers {
		t := w.LastHeartbeat
		if t.IsZero() {
			t = now // read now, so sent by now
		}
		st.beats[w.ID] = t.UTC()
	}
}

// forget drops the heartbeats of workers neither live nor seen gone by
// the round: no reason will name them.
func (st *sweepState) forget(live map[string]bool) {
	for w := range st.beats {
		_, absent := st.absent[w]
		_, kept := st.keptGone[w]
		if !live[w] && !absent && !kept {
			delete(st.beats, w)
		}
	}
}

// silence says since when worker w, gone, has been silent: its last
// heartbeat the sweep read, or, when it read none since the server
// started (a worker gone while the server was down, or before a
// restore), that this server saw none. When the worker was first seen
// gone is not it: that is a sweep's time, up to a lease and more after
// the worker's last heartbeat.
func (s *Server) silence(st *sweepState, w string) string {
	if t, ok := st.beats[w]; ok {
		return fmt.Sprintf("worker %s has sent no heartbeat since %s", w, t.Format(time.RFC3339))
	}
	return fmt.Sprintf("worker %s has sent no heartbeat that this server saw (it started at %s)", w, s.started.UTC().Format(time.RFC3339))
}

// track remembers r if its current attempt waits for a redelivery.
func (st *sweepState) track(r *jobs.Run) {
	if a := r.Current(); a != nil && r.Status == jobs.StatusQueued && a.Redelivery {
		st.redeliveries[r.RunID] = a.CreatedAt
	}
}

// sweep runs every sweepEvery until ctx is done, and queues each waiting
// retry when its backoff ends (retrywake.go).
func (s *Server) sweep(ctx context.Context) error {
	t := time.NewTicker(s.cfg.sweepEvery)
	defer t.Stop()
	rt := newRetryTimer()
	defer rt.t.Stop()
	st := newSweepState()
	for {
		rt.arm(&s.retries, s.cfg.now())
		select {
		case <-ctx.Done():
			return nil
		case <-s.retries.wake:
			continue
		case <-rt.t.C:
			s.fireRetries(ctx, rt)
			continue
		case <-t.C:
		}
		if err := s.sweepOnce(ctx, st); err != nil && ctx.Err() == nil {
			s.cfg.log.Warn().Err(err).Msg("sweep")
		}
	}
}

// sweepOnce requeues the runs whose jobs a jobs stream made anew lost
// (jobsstream.go), queues the retries that are due, updates the reasons of
// queued runs, fails the queued runs past their deadline, records as lost
// the attempts of workers gone for longer than a lease without their job
// being redelivered and those that live workers no longer list
// (unlisted.go), publishes the job of an attempt whose redelivery never
// came (redeliver.go) and frees the pool slots that stopped runs keep once
// no container of them can run (poolstop.go).
//
// Its cost does not grow with the number of queued runs while nothing
// changes: it looks at every queued run only at the first round, when the
// fleet changed (which changes why runs wait) and every fullSweepEvery; in
// between, at the runs queued again since the last round (markRecheck) and
// those past their deadline (an index). Of running runs it reads the ids,
// workers and attempts (an index and their rows, not their documents), and
// the documents only of those of workers that are gone.
func (s *Server) sweepOnce(ctx context.Context, st *sweepState) (err error) {
	now := s.cfg.now().UTC()
	// A run that cannot be resolved or released (an orphan that cannot be
	// failed, say) must not keep the rest of the round from the other
	// runs: lost workers, redeliveries, deadlines. Both are tried again
	// next round, as is a check of the jobs stream that failed.
	var errs []error
	if err := s.checkJobsStream(ctx); err != nil { // jobsstream.go; before republish, which publishes what it requeues
		errs = append(errs, fmt.Errorf("check the jobs stream: %w", err))
	}
	if err := s.republish(ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := s.resolveEnded(ctx); err != nil { // rundeps.go
		errs = append(errs, fmt.Errorf("resolve waiting runs: %w", err))
	}
	if err := s.releaseAllPools(ctx); err != nil { // pools.go
		errs = append(errs, fmt.Errorf("release pools: %w", err))
	}
	defer func() { err = errors.Join(append(errs, err)...) }()
	workers, err := s.liveWorkers(ctx)
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, w := range workers {
		live[w.ID] = true
	}
	st.saw(workers, now)
	defer st.forget(live)
	if err := s.sweepKept(ctx, st, live, now); err != nil { // poolstop.go
		errs = append(errs, fmt.Errorf("free the pool slots stopped runs keep: %w", err))
	}
	recheck, overflow := s.takeRecheck()
	defer func() {
		if err != nil {
			st.fullAt = time.Time{} // what this round missed, the next finds
		}
	}()
	if fp := fleetPrint(workers); overflow || st.fullAt.IsZero() || fp != st.fleet || now.Sub(st.fullAt) >= fullSweepEvery {
		if fp != st.fleet {
			s.fleetGen.Add(1) // before the listing: see Submit
		}
		if err := s.sweepQueued(ctx, st, workers, live, now); err != nil {
			return err
		}
		st.fleet, st.fullAt = fp, now
	} else if err := s.sweepChanged(ctx, st, recheck, workers, live, now); err != nil {
		return err
	}
	active, err := s.db.ActiveRuns(ctx)
	if err != nil {
		return err
	}
	if err := s.sweepLost(ctx, st, active, live, now); err != nil {
		return err
	}
	if err := s.sweepUnlisted(ctx, st, active, workers, now); err != nil { // unlisted.go
		errs = append(errs, fmt.Errorf("runs their workers no longer list: %w", err))
	}
	return s.sweepRedeliveries(ctx, st, now)
}

// fleetPrint sums up what placementReason reads of the fleet: two fleets
// with the same print place every run alike.
func fleetPrint(workers []jobs.WorkerInfo) string {
	var b strings.Builder
	for _, w := range workers {
		fmt.Fprintf(&b, "%s|%s|%d|%d|%s|%t|%v\n", w.ID, w.Cluster, w.Capacity.CPU, w.Capacity.Memory, w.State, w.RuntimeError != "", w.Labels)
	}
	return b.String()
}

// sweepQueued looks at every queued run, a page at a time.
func (s *Server) sweepQueued(ctx context.Context, st *sweepState, workers []jobs.WorkerInfo, live map[string]bool, now time.Time) error {
	f := storage.RunFilter{Statuses: []jobs.Status{jobs.StatusQueued}, Limit: 1000}
	for {
		runs, err := s.db.ListRuns(ctx, f)
		if err != nil {
			return err
		}
		for i := range runs {
			st.track(&runs[i])
			if err := s.sweepRun(ctx, &runs[i], workers, live, st, now); err != nil {
				return err
			}
		}
		if len(runs) < f.Limit {
			return nil
		}
		f.Before = runs[len(runs)-1].RunID
	}
}

// sweepChanged looks at the queued runs that may have changed since the
// last round: those queued again (ids) and those past their deadline.
func (s *Server) sweepChanged(ctx context.Context, st *sweepState, ids []string, workers []jobs.WorkerInfo,
	live map[string]bool, now time.Time) error {
	for _, id := range ids {
		r, err := s.db.GetRun(ctx, id)
		if errors.Is(err, jobs.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if r.Status != jobs.StatusQueued {
			continue
		}
		st.track(r)
		if err := s.sweepRun(ctx, r, workers, live, st, now); err != nil {
			return err
		}
	}
	expired, err := s.db.QueuedPastDeadline(ctx, now, 1000)
	if err != nil {
		return err
	}
	for i := range expired {
		if err := s.sweepRun(ctx, &expired[i], workers, live, st, now); err != nil {
			return err
		}
	}
	return nil
}

// sweepLost finds the workers that started runs (active) and are gone,
// and records as lost the attempts of those gone for longer than a lease.
func (s *Server) sweepLost(ctx context.Context, st *sweepState, active []storage.ActiveRun, live map[string]bool, now time.Time) error {
	has := map[string]bool{}
	for _, ar := range active {
		w := ar.Worker
		if has[w] {
			continue
		}
		has[w] = true
		if live[w] {
			continue
		}
		since, ok := st.absent[w]
		if !ok {
			st.absent[w] = now
			continue
		}
		if now.Sub(since) < s.q.AckWait()+queue.PresenceTTL {
			continue
		}
		runs, err := s.db.RunsOfWorker(ctx, w)
		if err != nil {
			return err
		}
		for i := range runs {
			if err := s.sweepRun(ctx, &runs[i], nil, live, st, now); err != nil {
				return err
			}
		}
	}
	for w := range st.absent {
		if live[w] || !has[w] {
			delete(st.absent, w)
		}
	}
	return nil
}

// markRecheck asks the next sweep to look at a run queued again (a retry,
// a redelivery). Past maxRecheck runs it asks for a look at all of them.
func (s *Server) markRecheck(id string) {
	s.recheckMu.Lock()
	defer s.recheckMu.Unlock()
	if s.recheckAll {
		return
	}
	if len(s.recheck) >= maxRecheck {
		s.recheck, s.recheckAll = nil, true
		return
	}
	if s.recheck == nil {
		s.recheck = map[string]struct{}{}
	}
	s.recheck[id] = struct{}{}
}

// takeRecheck returns the runs marked since the last call, or all=true
// when they were too many to remember.
func (s *Server) takeRecheck() (ids []string, all bool) {
	s.recheckMu.Lock()
	defer s.recheckMu.Unlock()
	for id := range s.recheck {
		ids = append(ids, id)
	}
	all = s.recheckAll
	s.recheck, s.recheckAll = nil, false
	return ids, all
}

// expire fails a queued run whose deadline passed.
func expire(r *jobs.Run, now time.Time) bool {
	if r.Status != jobs.StatusQueued {
		return false
	}
	reason := fmt.Sprintf("Run timed out: activeDeadlineSeconds=%d passed while it was queued", r.Spec.ActiveDeadlineSeconds)
	r.Status, r.StopCode, r.StoppedReason, r.StatusReason, r.FinishedAt = jobs.StatusFailed, jobs.StopTimeout, reason, "", &now
	if a := r.Current(); a != nil {
		a.Status, a.StopCode, a.StoppedReason, a.FinishedAt = jobs.StatusFailed, jobs.StopTimeout, reason, &now
	}
	return true
}

// due reports whether the run's current attempt may be queued now.
func due(r *jobs.Run, now time.Time) bool {
	a := r.Current()
	return a == nil || a.NotBefore == nil || !now.Before(*a.NotBefore)
}

// liveWorkers returns the workers' heartbeats, read at most once a second:
// reading them walks the whole presence bucket, too much for every submit.
func (s *Server) liveWorkers(ctx context.Context) ([]jobs.WorkerInfo, error) {
	s.fleetMu.Lock()
	defer s.fleetMu.Unlock()
	if now := time.Now(); now.Sub(s.fleetAt) < time.Second && s.fleetCached != nil {
		return s.fleetCached, nil
	}
	workers, err := s.q.Workers(ctx)
	if err != nil {
		return nil, err
	}
	s.fleetAt, s.fleetCached = time.Now(), workers
	return workers, nil
}

// sweepRun is the sweep's look at one run, r being what the sweep's listing
// said of it (the run may have moved on since).
func (s *Server) sweepRun(ctx context.Context, r *jobs.Run, workers []jobs.WorkerInfo, live map[string]bool,
	st *sweepState, now time.Time) error {
	a := r.Current()
	if a == nil {
		return nil
	}
	var update func(*jobs.Run) bool
	switch {
	case r.Status == jobs.StatusQueued && r.Spec.Deadline != nil && !now.Before(*r.Spec.Deadline):
		update = func(r *jobs.Run) bool { return expire(r, now) }
	case r.Status == jobs.StatusQueued:
		if a.NotBefore != nil && now.Before(*a.NotBefore) {
			return nil // the retry's own reason stands
		}
		if r.Waiting() || r.WaitingForSlot() {
			return nil // it says what it waits for (rundeps.go, pools.go)
		}
		reason := placementReason(r, workers)
		if reason == r.StatusReason || (reason == "" && a.Redelivery) {
			return nil
		}
		update = func(r *jobs.Run) bool {
			if r.Status != jobs.StatusQueued || r.Waiting() || r.WaitingForSlot() || r.StatusReason == reason {
				return false
			}
			r.StatusReason = reason
			return true
		}
	case a.Worker != "" && !live[a.Worker]:
		since, ok := st.absent[a.Worker]
		if !ok {
			st.absent[a.Worker] = now
			return nil
		}
		if now.Sub(since) < s.q.AckWait()+queue.PresenceTTL {
			return nil
		}
		ev := jobs.Event{RunID: r.RunID, Attempt: a.Attempt, Seq: lostSeq, Status: jobs.StatusFailed,
			Source: jobs.SourceWorker, Worker: a.Worker, Time: now, StopCode: jobs.StopWorkerLost, Redelivered: true,
			StoppedReason: fmt.Sprintf("%s; the job goes to the next worker of cluster %s that takes it", s.silence(st, a.Worker), r.Cluster)}
		update = func(r *jobs.Run) bool { return r.Apply(ev) }
	default:
		return nil
	}
	_, err := s.sweepUpdate(ctx, r.RunID, update)
	return err
}

// sweepUpdate stores the sweep's change of a run, update, and tells it.
// The sweep's listing is a snapshot: the run may have moved on since, and
// update, called with the stored run, says whether it changes it. Only a
// change made here is told, or its status would be published twice. It
// reports whether update changed the run. A change of the run's status or
// attempt is announced even across a crash (an outbox row, announce.go);
// one of its statusReason alone (placementReason) is not.
func (s *Server) sweepUpdate(ctx context.Context, runID string, update func(*jobs.Run) bool) (bool, error) {
	changed := false
	var before jobs.Status
	var startedBefore bool
	s.lockOrder() // to the send: a report applied meanwhile is announced after
	stored, outbox, err := s.db.UpdateRunAnnounced(ctx, runID, func(r *jobs.Run) (bool, bool) {
		before, startedBefore = r.Status, r.StartedAt != nil
		attempts := len(r.Attempts)
		changed = update(r)
		return changed, changed && (r.Status != before || len(r.Attempts) != attempts)
	})
	if err == nil && changed {
		if s.sweepStored != nil {
			s.sweepStored()
		}
		s.announceRun(stored, outbox)
	}
	s.unlockOrder()
	if err != nil {
		return false, err
	}
	if changed {
		s.metrics.runMoved(before, startedBefore, stored)
		if stored.Status.Terminal() {
			s.pipelinesChanged(ctx, stored)
		}
		if a := stored.Current(); stored.Status == jobs.StatusQueued && a != nil && a.Redelivery {
			// A lost attempt's redelivery: the next round watches it
			// (redeliver.go) and says why it waits, fleet change or not.
			s.markRecheck(stored.RunID)
		}
		if stored.Status != before {
			s.dependenciesMoved(ctx, stored) // rundeps.go
		}
	}
	return changed, nil
}
