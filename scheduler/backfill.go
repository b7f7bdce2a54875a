package scheduler

import (
	"sort"

	"github.com/gantry-dev/gantry/jobs"
)

// ToPromote returns the PENDING runs of one backfill group that may start
// now, earliest scheduled time first, so that at most maxParallel runs of
// the group are active (0: no bound). runs are the group's runs that have
// not ended; a stopped PENDING run is not started (its advance cancels it).
func ToPromote(runs []jobs.PipelineRun, maxParallel int) []string {
	active := 0
	var pending []jobs.PipelineRun
	for _, r := range runs {
		switch {
		case r.Status.Terminal():
		case r.Status == jobs.StatusPending:
			if !r.StopRequested {
				pending = append(pending, r)
			}
		default:
			active++
		}
	}
	sort.SliceStable(pending, func(i, j int) bool {
		a, b := pending[i].ScheduledTime, pending[j].ScheduledTime
		if a != nil && b != nil && !a.Equal(*b) {
			return a.Before(*b)
		}
		return pending[i].PipelineRunID < pending[j].PipelineRunID
	})
	n := len(pending)
	if maxParallel > 0 {
		n = min(n, max(maxParallel-active, 0))
	}
	out := make([]string, 0, n)
	for _, r := range pending[:n] {
		out = append(out, r.PipelineRunID)
	}
	return out
}

// Triggered returns the pipelines whose triggers an ended run of upstream
// in status s fires, by name.
func Triggered(pipelines []jobs.Pipeline, upstream string, s jobs.Status) []string {
	var out []string
	for _, p := range pipelines {
		for _, t := range p.Triggers {
			if t.Pipeline == upstream && p.Name != upstream && t.Fires(s) {
				out = append(out, p.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
