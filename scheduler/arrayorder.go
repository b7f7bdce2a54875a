package scheduler

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// The children of an array stage that wait for other children
// (arrayOrder: sequential, dependsOn type N_TO_N: jobs/arrayorder.go) are
// submitted with the stage's other children, each with a run dependency
// on the child it waits for: the server keeps it QUEUED until that child
// succeeded and fails it without running otherwise, as it does any run
// submitted with dependsOn, across restarts. The DAG only says which
// child waits for which (childDependsOn), checks that N_TO_N arrays pair
// up (checkNToN), and, once the stage's children ended, tells those that
// did not run from those that failed (orderedOutcome).

// childDependsOn returns the run dependencies of child i of the stage
// spec: the runs of the children it waits for (jobs.Pipeline.ChildWaits),
// own being the children of its stage submitted so far, in index order.
func childDependsOn(pr *jobs.PipelineRun, spec *jobs.Stage, i int, own []jobs.StageRun) ([]jobs.RunDependency, error) {
	var deps []jobs.RunDependency
	for _, c := range pr.Spec.ChildWaits(spec.Name, i) {
		runs := own
		if c.Stage != spec.Name {
			if up := pr.StageState(c.Stage); up != nil {
				runs = up.Runs
			} else {
				runs = nil
			}
		}
		id := childRun(runs, c.Index)
		if id == "" {
			return nil, jobs.Invalid(fmt.Sprintf("child %d waits for %s, which has no run", i, c))
		}
		deps = append(deps, jobs.RunDependency{RunID: id, Condition: jobs.CondSuccess})
	}
	return deps, nil
}

// childRun is the run id of child i among runs, "" when none is.
func childRun(runs []jobs.StageRun, i int) string {
	for _, r := range runs {
		if r.ArrayIndex != nil && *r.ArrayIndex == i {
			return r.RunID
		}
	}
	return ""
}

// checkNToN looks, before the children of stage st (spec) are submitted,
// at each stage it depends on N_TO_N: one whose size differs from size
// (either read from an output) fails it, naming both sizes. It reports
// whether it ended the stage. (One that ended without its children,
// leaving nothing to pair with, never lets the stage start: Next skips
// it, as skipped for an upstream failure when that one FAILED; so does
// one whose start failed at a later child and stopped those it had
// submitted, jobs.PipelineRun.Runless, which the stage would otherwise
// pair with and fail at the first child that has none.)
func checkNToN(pr *jobs.PipelineRun, spec *jobs.Stage, st *jobs.StageState, size int, now time.Time) bool {
	for _, d := range spec.DependsOn {
		if !d.NToN() {
			continue
		}
		up, upSpec := pr.StageState(d.Stage), pr.Spec.Stage(d.Stage)
		if up == nil || upSpec == nil {
			continue
		}
		if n := stageArraySize(pr, upSpec); n != size {
			st.Status, st.StartedAt, st.FinishedAt, st.Runs = jobs.StatusFailed, &now, &now, []jobs.StageRun{}
			st.Reason = fmt.Sprintf("N_TO_N: arraySize %s of %s differs from arraySize %s of %s: N_TO_N pairs children of arrays of one size",
				sizeText(spec, size), spec.Name, sizeText(upSpec, n), d.Stage)
			return true
		}
	}
	return false
}

// sizeText is a stage's size for a reason: 3, or 3 (from extract.FILES).
func sizeText(spec *jobs.Stage, n int) string {
	if spec.ArraySize.Dynamic() {
		return fmt.Sprintf("%d (from %s)", n, spec.ArraySize.From)
	}
	return fmt.Sprint(n)
}

// childFate is how one child of an ordered stage ended, for its stage's
// outcome: on its own, or not run because a child it waited for (root,
// followed back to the child that ended on its own) did not succeed.
type childFate struct {
	notRun bool
	root   string      // the child that ended on its own: transform[1]
	status jobs.Status // the root's: FAILED, CANCELED
	skip   bool        // the root skipped itself (skipOnExitCode)
	code   int         // its exit code, then
}

// orderedOutcome decides again how a stage whose children waited for
// others (jobs.Stage.OrdersChildren) ended, once refresh ended it: a child
// that failed without running, because a child it waited for did not
// succeed, counts as that child ended. Its root failed: the stage FAILS,
// as Batch fails a job whose dependency failed; it was canceled: the
// stage is CANCELED; it skipped itself (skipOnExitCode): the child counts
// as skipped, as a stage after a skipped one is SKIPPED, and the stage
// SUCCEEDS if others did. The reason names the roots. Each child that
// failed is read once, at the stage's end; a store error is returned for
// the next advance to try again, the stage left RUNNING.
func (d *DAG) orderedOutcome(ctx context.Context, pr *jobs.PipelineRun, st *jobs.StageState, now time.Time) error {
	spec := pr.Spec.Stage(st.Name)
	if spec == nil || !spec.OrdersChildren() || !jobs.StageEnded(st.Status) || len(st.Runs) == 0 {
		return nil
	}
	labels := map[string]string{} // run id -> child, of every stage
	stageOf := map[string]string{}
	for _, s := range pr.Stages {
		for _, r := range s.Runs {
			if r.ArrayIndex != nil {
				labels[r.RunID] = jobs.ChildRef{Stage: s.Name, Index: *r.ArrayIndex}.String()
			} else {
				labels[r.RunID] = s.Name
			}
			stageOf[r.RunID] = s.Name
		}
	}
	fates := map[string]childFate{}
	var fate func(id string, depth int) (childFate, error)
	fate = func(id string, depth int) (childFate, error) {
		if f, ok := fates[id]; ok {
			return f, nil
		}
		r, err := d.store.GetRun(ctx, id)
		if err != nil {
			return childFate{}, fmt.Errorf("stage %s: %w", st.Name, err)
		}
		f := childFate{root: labels[id], status: r.Status}
		if r.Status == jobs.StatusFailed {
			f.code, f.skip = r.SkipCode(skipCodes(pr, stageOf[id]))
		}
		if blocker := blockedBy(r); blocker != "" && depth < jobs.MaxArraySize+2 {
			up, err := fate(blocker, depth+1)
			if err != nil {
				return childFate{}, err
			}
			f = up
			f.notRun = true
			if f.root == "" {
				f.root = "run " + blocker
			}
		}
		fates[id] = f
		return f, nil
	}
	// Counted apart: what ran (as refresh counts it) and what did not.
	ranFailed, ranCanceled, notRun := 0, 0, 0
	failed, canceled := 0, 0
	var ranSkipped, skipped []int
	var roots []string
	for _, ref := range st.Runs {
		switch {
		case ref.Status == jobs.StatusSucceeded:
			continue
		case ref.Status == jobs.StatusCanceled:
			ranCanceled++
			canceled++
			continue
		case ref.Skipped && ref.ExitCode != nil:
			ranSkipped = append(ranSkipped, *ref.ExitCode)
			skipped = append(skipped, *ref.ExitCode)
			continue
		}
		f, err := fate(ref.RunID, 0)
		if err != nil {
			return err
		}
		if !f.notRun {
			ranFailed++
			failed++
			continue
		}
		notRun++
		root := f.root + " " + string(f.status)
		if f.skip {
			root = f.root + " skipped"
		}
		if !slices.Contains(roots, root) {
			roots = append(roots, root)
		}
		switch {
		case f.skip:
			skipped = append(skipped, f.code)
		case f.status == jobs.StatusCanceled:
			canceled++
		default:
			failed++
		}
	}
	if notRun == 0 {
		return nil // refresh said it all
	}
	total := len(st.Runs)
	var reason []string
	if ranFailed > 0 {
		reason = append(reason, fmt.Sprintf("%d of %d runs failed", ranFailed, total))
	}
	if ranCanceled > 0 {
		reason = append(reason, fmt.Sprintf("%d of %d runs canceled", ranCanceled, total))
	}
	if len(ranSkipped) > 0 {
		reason = append(reason, jobs.SkipReason(len(ranSkipped), total, ranSkipped))
	}
	reason = append(reason, jobs.NotRunReason(notRun, total, roots))
	st.FinishedAt = &now
	switch {
	case failed > 0:
		st.Status = jobs.StatusFailed
	case canceled > 0:
		st.Status = jobs.StatusCanceled
	case len(skipped) == total:
		st.Status = jobs.StatusSkipped
	default:
		st.Status = jobs.StatusSucceeded
	}
	st.Reason = strings.Join(reason, "; ")
	return nil
}

// blockedBy is the run that r, failed without running, waited for and
// that ended so that r could not run; "" for a run that ran.
func blockedBy(r *jobs.Run) string {
	if r.Status != jobs.StatusFailed || r.StopCode != jobs.StopFailedToStart {
		return ""
	}
	for _, dep := range r.DependsOn {
		if dep.Status != "" && !dep.Condition.Holds(dep.Status) {
			return dep.RunID
		}
	}
	return ""
}
