package scheduler

import (
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// RetryStages returns, in the order they run, the stages of an ended
// pipeline run that a retry runs again: those that did not succeed
// (failed, canceled, skipped) and every stage downstream of them, which
// must see their new outputs (a `failure` handler that ran after a stage
// that failed included: its condition is decided again).
func RetryStages(pr *jobs.PipelineRun) []string {
	again := map[string]bool{}
	var out []string
	for _, name := range pr.Spec.Order() {
		st := pr.StageState(name)
		redo := st == nil || st.Status != jobs.StatusSucceeded
		if spec := pr.Spec.Stage(name); spec != nil {
			for _, up := range spec.Inputs() {
				redo = redo || again[up]
			}
		}
		if redo {
			again[name] = true
			out = append(out, name)
		}
	}
	return out
}

// KeptInputs maps each stage a retry runs again (stages, RetryStages) to
// the upstream stages it keeps, in the spec's order: the succeeded stages
// whose files it reads from the earlier try. Those are its dependencies
// and the stages whose outputs.env its arraySize or its when reads, which
// may be upstream of it only through another (Stage.Inputs).
func KeptInputs(pr *jobs.PipelineRun, stages []string) map[string][]string {
	again := map[string]bool{}
	for _, name := range stages {
		again[name] = true
	}
	out := map[string][]string{}
	for _, name := range stages {
		spec := pr.Spec.Stage(name)
		if spec == nil {
			continue
		}
		for _, up := range spec.Inputs() {
			if !again[up] {
				out[name] = append(out[name], up)
			}
		}
	}
	return out
}

// Retry puts an ended pipeline run back to RUNNING under its id for the
// DAG to advance again: the stages named (RetryStages) go back to PENDING
// on their next try, how their earlier try ended kept in their
// EarlierTries; the others keep their state, runs and files. The run's
// stop, end and reason are cleared and its Retries counted.
func Retry(pr *jobs.PipelineRun, stages []string, now time.Time) {
	now = now.UTC()
	for _, name := range stages {
		st := pr.StageState(name)
		if st == nil {
			continue
		}
		try := max(st.Try, 1)
		st.EarlierTries = append(st.EarlierTries, jobs.StageTry{Try: try, Status: st.Status, Reason: st.Reason,
			StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, Runs: st.Runs, ArraySize: st.ArraySize})
		// A try of an array stage runs every child again: one whose size
		// (or when) comes from an output decides it again, from the
		// output as the try finds it (the same, unless its stage runs
		// again too).
		st.Try, st.Status, st.Reason, st.StartedAt, st.FinishedAt, st.Runs = try+1, jobs.StatusPending, "", nil, nil, []jobs.StageRun{}
		st.ArraySize, st.WhenHeld = nil, false
	}
	pr.Status, pr.FinishedAt, pr.StoppedReason, pr.StopRequested, pr.StopCode = jobs.StatusRunning, nil, "", false, ""
	pr.Retries++
	pr.RetriedAt = &now
}
