package jobs

import "slices"

// findCycle returns the stages of one dependency cycle, the first repeated
// at the end ("a -> b -> a"), or nil when the graph is acyclic. Unknown
// stages and a stage's dependency on itself are left to Validate, which
// reports them apart.
func (p *Pipeline) findCycle() []string {
	names := make([]string, len(p.Stages))
	for i, st := range p.Stages {
		names[i] = st.Name
	}
	cycle := findCycle(names, func(n string) []string {
		var deps []string
		if st := p.Stage(n); st != nil {
			for _, d := range st.DependsOn {
				deps = append(deps, d.Stage)
			}
		}
		return deps
	})
	// A dependency cycle reads best in the direction work flows.
	slices.Reverse(cycle)
	return cycle
}

// findCycle returns one cycle of the graph of nodes where edges(n) are the
// nodes n needs first, first node repeated at the end, or nil. An edge of
// a node to itself is not a cycle here (callers report it on its own).
func findCycle(nodes []string, edges func(string) []string) []string {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		switch state[n] {
		case onPath:
			i := slices.Index(path, n)
			return append(slices.Clone(path[i:]), n)
		case done:
			return nil
		}
		state[n] = onPath
		path = append(path, n)
		for _, d := range edges(n) {
			if d == n {
				continue
			}
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for _, n := range nodes {
		if cyc := visit(n); cyc != nil {
			return cyc
		}
	}
	return nil
}

// Order returns the stage names in an order where every stage comes after
// the stages it depends on; ties keep the file's order. It assumes a valid
// (acyclic) pipeline.
func (p *Pipeline) Order() []string {
	done := map[string]bool{}
	var out []string
	for len(out) < len(p.Stages) {
		progressed := false
		for _, st := range p.Stages {
			if done[st.Name] {
				continue
			}
			ready := true
			for _, d := range st.DependsOn {
				if !done[d.Stage] && p.Stage(d.Stage) != nil {
					ready = false
					break
				}
			}
			if ready {
				done[st.Name] = true
				out = append(out, st.Name)
				progressed = true
			}
		}
		if !progressed {
			return out // a cycle: Validate rejects it
		}
	}
	return out
}

// Upstream returns the names of the stages st depends on.
func (st *Stage) Upstream() []string {
	out := make([]string, 0, len(st.DependsOn))
	for _, d := range st.DependsOn {
		out = append(out, d.Stage)
	}
	return out
}

// Inputs returns the stages whose files or outputs st reads: those it
// depends on, then those its arraySize or its when reads an output of,
// which may be upstream of it only through another.
func (st *Stage) Inputs() []string {
	out := st.Upstream()
	add := func(ref *OutputRef) {
		if ref != nil && !slices.Contains(out, ref.Stage) {
			out = append(out, ref.Stage)
		}
	}
	add(st.ArraySize.From)
	for _, c := range st.When.Conditions {
		add(c.Output)
	}
	return out
}

// StageEnded reports whether a stage in status s is finished for good.
func StageEnded(s Status) bool { return s.Terminal() || s == StatusSkipped }

// Holds reports whether an upstream stage that ended in s satisfies c.
// Complete holds however the stage ended, canceled included: a stage is
// CANCELED when a user stopped one of its runs and the pipeline run goes
// on (a stopped pipeline run starts no stage at all, whatever its
// condition), and cleanup after it is due as after a failure.
func (c Condition) Holds(s Status) bool {
	switch c {
	case CondFailure:
		return s == StatusFailed
	case CondComplete:
		return StageEnded(s)
	default:
		return s == StatusSucceeded
	}
}

// Next decides the fate of the PENDING stages given the status of every
// stage and the stages that ended without a run (runless,
// PipelineRun.Runless: what an N_TO_N dependency has no child of): start
// holds those whose dependencies ended as their trigger rule asks
// (triggerrule.go; by default, all as their conditions ask); skip those
// whose rule can never hold, given how the dependencies that ended did.
// Skipping can make further stages skippable, or start those whose rule
// waits for a failure (oneFailed after a stage skipped because its
// upstream failed): call Next again after recording them until it returns
// nothing.
func (p *Pipeline) Next(status map[string]Status, runless map[string]int) (start, skip []string) {
	r := newReadiness(p, status, runless)
	for _, name := range p.Order() {
		if status[name] != StatusPending {
			continue
		}
		switch v, _, _ := r.decide(p.Stage(name)); v {
		case stageNever:
			skip = append(skip, name)
		case stageRuns:
			start = append(start, name)
		}
	}
	return start, skip
}
