package jobs

// findCycle returns the stages of one dependency cycle, the first repeated
// at the end ("a -> b -> a"), or nil when the graph is acyclic. Unknown
// stages are ignored (Validate reports them apart).
func (p *Pipeline) findCycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycle []string
	var visit func(name string) bool
	visit = func(name string) bool {
		color[name] = grey
		stack = append(stack, name)
		if st := p.Stage(name); st != nil {
			for _, d := range st.DependsOn {
				if p.Stage(d.Stage) == nil {
					continue
				}
				switch color[d.Stage] {
				case grey:
					for i, s := range stack {
						if s == d.Stage {
							cycle = append(append([]string(nil), stack[i:]...), d.Stage)
							return true
						}
					}
				case white:
					if visit(d.Stage) {
						return true
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[name] = black
		return false
	}
	for _, st := range p.Stages {
		if color[st.Name] == white && visit(st.Name) {
			// A dependency cycle reads best in the direction work flows.
			for i, j := 0, len(cycle)-1; i < j; i, j = i+1, j-1 {
				cycle[i], cycle[j] = cycle[j], cycle[i]
			}
			return cycle
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

// StageEnded reports whether a stage in status s is finished for good.
func StageEnded(s Status) bool { return s.Terminal() || s == StatusSkipped }

// Holds reports whether an upstream stage that ended in s satisfies c.
func (c Condition) Holds(s Status) bool {
	switch c {
	case CondFailure:
		return s == StatusFailed
	case CondComplete:
		return s == StatusSucceeded || s == StatusFailed || s == StatusSkipped
	default:
		return s == StatusSucceeded
	}
}

// Next decides the fate of the PENDING stages given the status of every
// stage: start holds those whose dependencies all ended as their conditions
// ask; skip those with a dependency that ended so that its condition can
// never hold. Skipping can make further stages skippable: call Next again
// after recording the skips until it returns nothing.
func (p *Pipeline) Next(status map[string]Status) (start, skip []string) {
	for _, name := range p.Order() {
		if status[name] != StatusPending {
			continue
		}
		st := p.Stage(name)
		ready, never := true, false
		for _, d := range st.DependsOn {
			s := status[d.Stage]
			if !StageEnded(s) {
				ready = false
				continue
			}
			if !d.Condition.Holds(s) {
				never = true
			}
		}
		switch {
		case never:
			skip = append(skip, name)
		case ready:
			start = append(start, name)
		}
	}
	return start, skip
}
