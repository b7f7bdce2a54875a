package jobs

import (
	"fmt"
	"strings"
)

// The order of an array's children, as AWS Batch's SEQUENTIAL and N_TO_N
// array dependencies give it. Every child of an array stage is still
// submitted when the stage starts; a child that must wait for another is
// submitted with a run dependency on it (rundeps.go), so that it waits
// QUEUED, taking no worker nor pool slot, until the child it needs
// succeeded, and fails without running ("run ... FAILED; this run needed
// it to succeed", as Batch's "Dependent job failed") if it did not:
//
//   - arrayOrder: sequential: child i waits for child i-1 of its stage;
//   - dependsOn: [{stage: a, type: N_TO_N}]: child i waits for child i of
//     a, which may still be running its other children: the stage starts
//     as soon as a has started, not once it has ended.
//
// What waits is stored with the run and released by the server, across
// restarts, as any run dependency; a stop of the pipeline run stops the
// waiting children as it stops the running ones.

// Array orders: how the children of an array stage start.
const (
	// ArrayParallel starts every child at once (the default).
	ArrayParallel = "parallel"
	// ArraySequential starts child i+1 once child i succeeded, in index
	// order, as AWS Batch's SEQUENTIAL array dependency.
	ArraySequential = "sequential"
)

// DepNToN is the dependency type (Batch's spelling) by which child i of an
// array stage waits for child i of the array stage it depends on, not for
// the whole stage.
const DepNToN = "N_TO_N"

// Sequential reports whether the stage's children start one after the
// other.
func (st *Stage) Sequential() bool { return st.ArrayOrder == ArraySequential }

// NToN reports whether the dependency is N_TO_N.
func (d Dependency) NToN() bool { return d.Type == DepNToN }

// nToNNever reports whether an N_TO_N dependency's upstream stage, in
// status s, can no longer let it hold; runless: it ended without its
// runs (PipelineRun.Runless). It holds child by child: it cannot when the
// upstream stage ended SKIPPED (no child of it succeeded, nor ran) or
// without its children (FAILED as it started: its size could not be
// read, or a child could not be submitted and the start stopped those it
// had); one that FAILED with all its children may have some that
// succeeded, whose counterparts run.
func nToNNever(s Status, runless bool) bool { return s == StatusSkipped || runless && StageEnded(s) }

// nToNReady reports whether an N_TO_N dependency's upstream stage, in
// status s, lets the stage start: once it started (its children are
// submitted, and each child of the stage waits for its own).
func nToNReady(s Status) bool { return s != StatusPending && s != StatusSkipped && s != "" }

// ChildRef names one child of an array stage: stage[index].
type ChildRef struct {
	Stage string
	Index int
}

// String is the child as gantry labels it: transform[2].
func (c ChildRef) String() string { return fmt.Sprintf("%s[%d]", c.Stage, c.Index) }

// ChildWaits returns the children that child i of the named stage waits
// for before it starts: the one before it in a sequential stage, and child
// i of each stage it depends on N_TO_N, in that order. None for the first
// child of a sequential stage without N_TO_N dependencies, or a parallel
// one.
func (p *Pipeline) ChildWaits(stage string, i int) []ChildRef {
	st := p.Stage(stage)
	if st == nil || !st.ArraySize.Array() {
		return nil
	}
	var out []ChildRef
	if st.Sequential() && i > 0 {
		out = append(out, ChildRef{stage, i - 1})
	}
	for _, d := range st.DependsOn {
		if d.NToN() {
			out = append(out, ChildRef{d.Stage, i})
		}
	}
	return out
}

// OrdersChildren reports whether some child of the stage may wait for
// another child (ChildWaits).
func (st *Stage) OrdersChildren() bool {
	if !st.ArraySize.Array() {
		return false
	}
	if st.Sequential() {
		return true
	}
	for _, d := range st.DependsOn {
		if d.NToN() {
			return true
		}
	}
	return false
}

// validateArrayOrder collects the problems of stage i's arrayOrder and
// of its N_TO_N dependencies: an order on a stage that is no array, an
// unknown order or dependency type, N_TO_N between stages that are not
// both arrays or whose fixed sizes differ, or with a condition other than
// success (a child waits for its counterpart to succeed, as in Batch).
func (p *Pipeline) validateArrayOrder(i int) []error {
	st := &p.Stages[i]
	sp := stagePath(i, st.Name)
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: sp + "." + path, Msg: fmt.Sprintf(format, args...)})
	}
	switch st.ArrayOrder {
	case "", ArrayParallel:
	case ArraySequential:
		if !st.ArraySize.Array() {
			bad("arrayOrder", "%s: the stage has no arraySize: only an array stage's children have an order", st.ArrayOrder)
		}
	default:
		bad("arrayOrder", "%q: want parallel or sequential", st.ArrayOrder)
	}
	for j, d := range st.DependsOn {
		dp := fmt.Sprintf("dependsOn[%d].type", j)
		switch {
		case d.Type == "":
			continue
		case strings.EqualFold(d.Type, "SEQUENTIAL"):
			bad(dp, "%q: a stage's children in index order are arrayOrder: sequential on the stage, not a dependency type", d.Type)
			continue
		case d.Type != DepNToN:
			bad(dp, "%q: want N_TO_N (child i waits for child i of %s), or leave it out to wait for the whole stage", d.Type, d.Stage)
			continue
		}
		if d.Condition != CondSuccess && d.Condition != "" {
			bad(fmt.Sprintf("dependsOn[%d].condition", j), "%s with type N_TO_N: child i waits for child i of %s to succeed; want success or leave it out",
				d.Condition, d.Stage)
		}
		up := p.Stage(d.Stage)
		switch {
		case !st.ArraySize.Array():
			bad(dp, "N_TO_N: stage %s has no arraySize: N_TO_N pairs the children of two array stages", st.Name)
		case up == nil: // named by dependsOn[j].stage's own problem
		case !up.ArraySize.Array():
			bad(dp, "N_TO_N: stage %s has no arraySize: N_TO_N pairs the children of two array stages; leave type out to wait for the whole stage",
				d.Stage)
		case !st.ArraySize.Dynamic() && !up.ArraySize.Dynamic() && st.ArraySize.N != up.ArraySize.N:
			bad(dp, "N_TO_N: arraySize %d of %s differs from arraySize %d of %s: N_TO_N pairs children of arrays of one size",
				st.ArraySize.N, st.Name, up.ArraySize.N, d.Stage)
		}
	}
	return errs
}

// NotRunReason says why n of the total children of a stage that waited
// for others did not run, for the stage's reason: the children whose end
// stopped them (roots, "transform[1] FAILED", in index order, at most
// three named).
func NotRunReason(n, total int, roots []string) string {
	named := roots
	if len(named) > 3 {
		named = append(named[:3:3], "...")
	}
	return fmt.Sprintf("%d of %d runs not run after %s", n, total, strings.Join(named, ", "))
}
