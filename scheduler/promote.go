package scheduler

import (
	"sort"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Queue is what Promote decides from: a pipeline's runs as they stand,
// read in the transaction that stores its decision.
type Queue struct {
	// Pipeline names the pipeline; MaxActiveRuns is its latest
	// version's (nil: no bound).
	Pipeline      string
	MaxActiveRuns *int
	// Running counts the pipeline's RUNNING runs, those being stopped
	// included (their stage runs still hold their place until they end);
	// ByBackfill counts those of each backfill group, by group id.
	Running    int
	ByBackfill map[string]int
	// Pending are the pipeline's PENDING runs, in no particular order.
	Pending []*jobs.PipelineRun
	// DependsOnPast is the pipeline's latest version's: a pending run
	// with a scheduled time waits until Previous[its id], the run with
	// the latest scheduled time before its own, has SUCCEEDED (none, the
	// first run: it does not wait). A previous run that is PENDING is
	// the very one in Pending, so that a start here is seen.
	DependsOnPast bool
	Previous      map[string]*jobs.PipelineRun
}

// Promote starts the PENDING runs of q that both bounds leave room for:
// at most the pipeline's MaxActiveRuns RUNNING, and at most a backfill
// group's MaxParallel of its runs (which paces a backfill's first runs:
// a retried one waits for MaxActiveRuns only, as it did for nothing
// before the pipeline had one). With DependsOnPast, a run that has a
// scheduled time also waits until its previous run has SUCCEEDED; it
// takes no place meanwhile, so the others (a run without a scheduled
// time, a later one's turn comes after it anyway) may start in its stead.
// They start highest priority first
// (the run's, else its pipeline's), then the one waiting longest (since
// its creation, or its retry), then the earliest scheduled time, so
// that a backfill's runs start in time order. A stopped PENDING run is
// left alone: its advance cancels it without starting it.
//
// A run that starts becomes RUNNING with no reason, and a retried one's
// clock restarts (RetriedAt = now: its timeout counts from when it runs
// again, not from when it began to wait); a run left waiting gets the
// reason of the bound that holds it (the pipeline's first). Promote
// returns the runs it changed, those it started first, in start order.
func Promote(q *Queue, now time.Time) []*jobs.PipelineRun {
	pending := make([]*jobs.PipelineRun, 0, len(q.Pending))
	for _, pr := range q.Pending {
		if pr.Status == jobs.StatusPending && !pr.StopRequested {
			pending = append(pending, pr)
		}
	}
	sort.SliceStable(pending, func(i, j int) bool {
		a, b := pending[i], pending[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if wa, wb := waitingSince(a), waitingSince(b); !wa.Equal(wb) {
			return wa.Before(wb)
		}
		if sa, sb := a.ScheduledTime, b.ScheduledTime; sa != nil && sb != nil && !sa.Equal(*sb) {
			return sa.Before(*sb)
		}
		return a.PipelineRunID < b.PipelineRunID
	})
	running := q.Running
	byGroup := make(map[string]int, len(q.ByBackfill))
	for id, n := range q.ByBackfill {
		byGroup[id] = n
	}
	// The runs held by their past, decided before any starts: a previous
	// run PENDING now cannot have SUCCEEDED by the end of this promotion.
	held := map[string]*jobs.PipelineRun{}
	if q.DependsOnPast {
		for _, pr := range pending {
			if prev := q.Previous[pr.PipelineRunID]; pr.ScheduledTime != nil && jobs.PastHolds(prev) {
				held[pr.PipelineRunID] = prev
			}
		}
	}
	var started, told []*jobs.PipelineRun
	var waiting []*jobs.PipelineRun // held by their past, told after the starts
	now = now.UTC()
	for _, pr := range pending {
		reason := ""
		bf := pr.Backfill
		switch {
		case held[pr.PipelineRunID] != nil:
			waiting = append(waiting, pr)
			continue
		case q.MaxActiveRuns != nil && running >= *q.MaxActiveRuns:
			reason = jobs.MaxActiveWaitReason(q.Pipeline, running, *q.MaxActiveRuns)
		case bf != nil && bf.MaxParallel > 0 && pr.Retries == 0 && byGroup[bf.ID] >= bf.MaxParallel:
			reason = jobs.BackfillWaitReason(bf.ID, byGroup[bf.ID], bf.MaxParallel)
		}
		if reason != "" {
			if pr.StatusReason != reason {
				pr.StatusReason = reason
				told = append(told, pr)
			}
			continue
		}
		pr.Status, pr.StatusReason = jobs.StatusRunning, ""
		if pr.Retries > 0 {
			pr.RetriedAt = &now
		}
		running++
		if bf != nil {
			byGroup[bf.ID]++
		}
		started = append(started, pr)
	}
	for _, pr := range waiting {
		// Told how its previous run stands after this promotion's starts.
		if reason := jobs.DependsOnPastWaitReason(held[pr.PipelineRunID]); pr.StatusReason != reason {
			pr.StatusReason = reason
			told = append(told, pr)
		}
	}
	return append(started, told...)
}

// rank orders waiting runs by priority: high first, then normal, then low.
func rank(pr *jobs.PipelineRun) int {
	switch pr.Priority.Or(pr.Spec.Priority).Level() {
	case jobs.PriorityHigh:
		return 0
	case jobs.PriorityLow:
		return 2
	}
	return 1
}

// waitingSince is when pr began to wait: at its latest retry, or else
// when it was created.
func waitingSince(pr *jobs.PipelineRun) time.Time {
	if pr.Retries > 0 && pr.RetriedAt != nil {
		return *pr.RetriedAt
	}
	return pr.CreatedAt
}
