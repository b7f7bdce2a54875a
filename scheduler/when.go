package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// A stage's when (jobs.When) is decided when its dependencies hold, before
// its size, once per try:
//
//   - conditions on parameters first: the run's parameters are stored
//     with it, so they need no read, and one that does not hold skips the
//     stage with no output read;
//   - then those on outputs, read as arraySize reads its output
//     (arraysize.go: asked for by the advance, read by RunDecisions
//     outside the DAG's lock, taken by the next advance).
//
// A when that does not hold ends the stage SKIPPED, its reason naming the
// condition; nothing was submitted, so a crash before that is stored
// decides again. One that held on outputs is stored (StageState.WhenHeld)
// before the first run is submitted, so that a server restarting then
// starts the same runs whatever the output says by then: one write more,
// for those stages only. A stage without when costs nothing.

// whenState is when's answer for a stage about to start.
type whenState int

const (
	whenHolds    whenState = iota // start the stage
	whenDeciding                  // its outputs are being read: it stays PENDING
	whenEnded                     // the stage ended (SKIPPED, or FAILED on an outputs.env it cannot read): st says why
)

// when decides the when of a stage about to start (see above). An error,
// of the store or of a read worth trying again, is for the next advance
// to try again. Called under d.mu.
func (d *DAG) when(ctx context.Context, pr *jobs.PipelineRun, spec *jobs.Stage, st *jobs.StageState, now time.Time) (whenState, error) {
	conds := spec.When.Conditions
	if len(conds) == 0 || st.WhenHeld {
		return whenHolds, nil
	}
	end := func(status jobs.Status, reason string) (whenState, error) {
		st.Status, st.Reason, st.StartedAt, st.FinishedAt, st.Runs = status, reason, &now, &now, []jobs.StageRun{}
		return whenEnded, nil
	}
	var refs []jobs.OutputRef
	for _, c := range conds {
		if c.Output != nil {
			refs = append(refs, *c.Output)
			continue
		}
		v, set := pr.Parameters[c.Param]
		if ok, why := c.Holds(v, set); !ok {
			return end(jobs.StatusSkipped, why)
		}
	}
	if len(refs) == 0 {
		st.WhenHeld = true // stored with the stage's start: the parameters decide the same again
		return whenHolds, nil
	}
	if d.cfg.outputs == nil {
		return end(jobs.StatusFailed, fmt.Sprintf("when: %s: this server cannot read stage outputs", refs[0]))
	}
	key := decisionKey{pr.PipelineRunID, st.Name, st.Try, "when"}
	w := d.want(key, pr, refs)
	if !w.done {
		return whenDeciding, nil
	}
	delete(d.wants, key) // taken: a later advance asks again if it must
	if w.err != nil {
		if jobs.ErrorCode(w.err) == jobs.CodeInvalidArgument {
			return end(jobs.StatusFailed, fmt.Sprintf("when: %s: %v", w.errRef, w.err))
		}
		return whenHolds, fmt.Errorf("stage %s: when: read %s: %w", spec.Name, w.errRef, w.err)
	}
	i := 0
	for _, c := range conds {
		if c.Output == nil {
			continue
		}
		r := w.reads[i]
		i++
		if ok, why := c.Holds(r.value, r.set); !ok {
			return end(jobs.StatusSkipped, why)
		}
	}
	if _, err := d.store.UpdatePipelineRun(ctx, pr.PipelineRunID, func(p *jobs.PipelineRun) bool {
		s := p.StageState(st.Name)
		if s == nil || s.WhenHeld || s.Status != jobs.StatusPending || s.Try != st.Try {
			return false
		}
		s.WhenHeld = true
		return true
	}); err != nil {
		return whenHolds, fmt.Errorf("stage %s: store when: %w", spec.Name, err)
	}
	st.WhenHeld = true
	d.cfg.log.Info().Str("pipelineRun", pr.PipelineRunID).Str("stage", spec.Name).Str("when", spec.When.String()).
		Msg("when held")
	return whenHolds, nil
}
