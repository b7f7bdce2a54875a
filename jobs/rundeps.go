package jobs

import (
	"fmt"
	"strings"
	"time"
)

// Dependencies between runs, as AWS Batch's dependsOn: a run submitted
// with dependsOn stays QUEUED, its job unpublished, until every run it
// names ended so that its condition holds; then the server queues its job
// as any other. A dependency that ended so that its condition can never
// hold fails the run without running it, as Batch fails a job whose
// dependency failed. Dependencies must exist when the run is submitted,
// so that no cycle can form.

// MaxRunDependencies bounds a run's dependsOn, as AWS Batch bounds a
// job's to 20.
const MaxRunDependencies = 20

// RunDependency names, in a submission, a run to wait for (AWS Batch's
// JobDependency): the submitted run is queued once that run ended so that
// Condition holds (success by default; failure; complete, however it
// ended).
type RunDependency struct {
	RunID     string    `json:"runId"`
	Condition Condition `json:"condition,omitempty"`
	// Type SEQUENTIAL, without RunID, is AWS Batch's dependency of an
	// array job on itself: its children run one after another
	// (arrayrun.go). No other type is read.
	Type string `json:"type,omitempty"`
}

// DependencySequential is the dependsOn type that orders an array run's
// children, as AWS Batch's.
const DependencySequential = "SEQUENTIAL"

// DependencyState is one of a run's dependencies as the run records it.
type DependencyState struct {
	RunID     string    `json:"runId"`
	Condition Condition `json:"condition"`
	// Status is how the dependency ended, recorded when the server saw
	// it end; empty while the run waits for it.
	Status Status `json:"status,omitempty"`
}

// ParseRunDependency reads the CLI's RUN[:CONDITION], as in
// "01jabc...:failure"; the condition defaults to success.
func ParseRunDependency(s string) (RunDependency, error) {
	id, cond, hasCond := strings.Cut(s, ":")
	if id == "" {
		return RunDependency{}, fmt.Errorf("%q: want RUN[:success|failure|complete]", s)
	}
	d := RunDependency{RunID: id, Condition: CondSuccess}
	if hasCond {
		switch c := Condition(cond); c {
		case CondSuccess, CondFailure, CondComplete:
			d.Condition = c
		default:
			return RunDependency{}, fmt.Errorf("%q: condition %q: want success, failure or complete", s, cond)
		}
	}
	return d, nil
}

// validateRunDependencies collects the problems of a submission's
// dependsOn, each naming its field path.
func validateRunDependencies(deps []RunDependency) []error {
	var errs []error
	if len(deps) > MaxRunDependencies {
		errs = append(errs, &FieldError{"dependsOn", fmt.Sprintf("%d runs: at most %d (as AWS Batch allows)", len(deps), MaxRunDependencies)})
	}
	first := map[string]int{}
	seq := -1
	for i, d := range deps {
		p := fmt.Sprintf("dependsOn[%d]", i)
		switch {
		case d.Type == DependencySequential && d.RunID != "":
			errs = append(errs, &FieldError{p + ".runId", fmt.Sprintf("%q: type SEQUENTIAL orders an array run's own children: give no runId", d.RunID)})
			continue
		case d.Type == DependencySequential && seq >= 0:
			errs = append(errs, &FieldError{p + ".type", fmt.Sprintf("SEQUENTIAL: also dependsOn[%d]", seq)})
			continue
		case d.Type == DependencySequential:
			seq = i
			continue
		case d.Type == "N_TO_N":
			errs = append(errs, &FieldError{p + ".type", "N_TO_N: child i after child i of another array is for pipeline stages " +
				"(an array stage's dependsOn type N_TO_N); a run waits for the whole run it names"})
			continue
		case d.Type != "":
			errs = append(errs, &FieldError{p + ".type", fmt.Sprintf("%q: want SEQUENTIAL (an array run's children one after another, "+
				"with arrayProperties and no runId), or no type", d.Type)})
			continue
		case d.RunID == "":
			errs = append(errs, &FieldError{p + ".runId", "required"})
		case IsPipelineRunID(d.RunID):
			errs = append(errs, &FieldError{p + ".runId", fmt.Sprintf("%q is a pipeline run: a run may depend only on runs "+
				"(gantry describe %s lists its stages' runs; a pipeline's triggers start a pipeline after another)", d.RunID, d.RunID)})
		case !validName(d.RunID):
			errs = append(errs, &FieldError{p + ".runId", fmt.Sprintf("%q: not a run id (letters, digits, '-' and '_', at most 255)", d.RunID)})
		default:
			if j, dup := first[d.RunID]; dup {
				errs = append(errs, &FieldError{p + ".runId", fmt.Sprintf("%s: also dependsOn[%d]", d.RunID, j)})
			} else {
				first[d.RunID] = i
			}
		}
		switch d.Condition {
		case "", CondSuccess, CondFailure, CondComplete:
		default:
			errs = append(errs, &FieldError{p + ".condition", fmt.Sprintf("%q: want success, failure or complete", d.Condition)})
		}
	}
	return errs
}

// Sequential reports whether deps hold a dependency of type SEQUENTIAL.
func Sequential(deps []RunDependency) bool {
	for _, d := range deps {
		if d.Type == DependencySequential {
			return true
		}
	}
	return false
}

// DependencyStates are the dependencies of a new run, none ended yet,
// with their conditions' default.
func DependencyStates(deps []RunDependency) []DependencyState {
	if len(deps) == 0 {
		return nil
	}
	out := make([]DependencyState, 0, len(deps))
	for _, d := range deps {
		if d.Type != "" {
			continue // SEQUENTIAL: the order of an array's children, no run to wait for
		}
		s := DependencyState{RunID: d.RunID, Condition: d.Condition}
		if s.Condition == "" {
			s.Condition = CondSuccess
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Waiting reports whether the run is QUEUED waiting for a dependency to
// end: its job is not published meanwhile.
func (r *Run) Waiting() bool {
	if r.Status != StatusQueued {
		return false
	}
	for _, d := range r.DependsOn {
		if d.Status == "" {
			return true
		}
	}
	return false
}

// WaitsFor returns the ids of the runs that the run waits for, none once
// it no longer waits.
func (r *Run) WaitsFor() []string {
	if !r.Waiting() {
		return nil
	}
	var ids []string
	for _, d := range r.DependsOn {
		if d.Status == "" {
			ids = append(ids, d.RunID)
		}
	}
	return ids
}

// ResolveDependencies records the ends of the dependencies the run waits
// for, status giving each one's status now (ok false for one that is no
// longer stored: deleted by the history's retention), and decides its
// fate:
//   - a dependency ended so that its condition cannot hold: the run ends
//     FAILED (stopCode TaskFailedToStart), its stoppedReason naming the
//     dependency and how it ended; a dependency that is gone counts so
//     too, as nothing tells how it ended;
//   - every dependency ended so that its condition holds: the run is
//     released (released is true), its statusReason cleared, and its job
//     is to be published;
//   - otherwise it waits on, its statusReason saying for what.
//
// It reports whether the run changed. A run that does not wait is left as
// it is.
func (r *Run) ResolveDependencies(now time.Time, status func(runID string) (st Status, ok bool)) (changed, released bool) {
	if !r.Waiting() {
		return false, false
	}
	var failed, waiting []string
	for i := range r.DependsOn {
		d := &r.DependsOn[i]
		if d.Status == "" {
			switch st, ok := status(d.RunID); {
			case !ok:
				failed = append(failed, fmt.Sprintf("run %s no longer exists (deleted for the server's --run-retention), so how it ended is unknown; this run needed it to %s",
					d.RunID, d.Condition.verb()))
				continue
			case st.Terminal():
				d.Status = st
				changed = true
			default:
				waiting = append(waiting, fmt.Sprintf("run %s (%s) to %s", d.RunID, st, d.Condition.verb()))
				continue
			}
		}
		if !d.Condition.Holds(d.Status) {
			failed = append(failed, fmt.Sprintf("run %s %s; this run needed it to %s", d.RunID, d.Status, d.Condition.verb()))
		}
	}
	switch {
	case len(failed) > 0:
		reason := strings.Join(failed, "; ")
		at := now.UTC()
		r.Status, r.StopCode, r.StoppedReason, r.StatusReason, r.FinishedAt = StatusFailed, StopFailedToStart, reason, "", &at
		if a := r.Current(); a != nil {
			a.Status, a.StopCode, a.StoppedReason, a.FinishedAt = StatusFailed, StopFailedToStart, reason, &at
		}
		return true, false
	case len(waiting) == 0:
		r.StatusReason = ""
		if a := r.Current(); a != nil {
			// Queued from now: the wait for its dependencies was not
			// a wait in the queue (gantry_run_queue_oldest_seconds).
			at := now.UTC()
			a.QueuedAt = &at
		}
		return true, true
	}
	reason := "waiting for " + strings.Join(waiting, " and ")
	if reason != r.StatusReason {
		r.StatusReason, changed = reason, true
	}
	return changed, false
}

// verb says what a condition asks of a run, after "needed it to".
func (c Condition) verb() string {
	switch c {
	case CondFailure:
		return "fail"
	case CondComplete:
		return "end"
	}
	return "succeed"
}
