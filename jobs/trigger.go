package jobs

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Trigger starts a run of the pipeline carrying it whenever a run of
// another pipeline ends as On says:
//
//	triggers:
//	  - pipeline: daily-sales   # the upstream pipeline
//	    on: success             # success (default), failure or complete
//
// Each end of an upstream run starts at most one run of each pipeline it
// triggers: the triggered run's idempotency key is TriggerKey(pipeline,
// upstream run, its retries). A run ends once, and once more after each
// retry.
// The triggered run takes the upstream run's value of every parameter both
// pipelines declare.
type Trigger struct {
	Pipeline string `json:"pipeline"`
	// On is the end of the upstream run that starts this pipeline:
	// success (SUCCEEDED), failure (FAILED) or complete (any end but a
	// cancellation).
	On Condition `json:"on,omitempty"`
}

// Condition is the trigger's condition with its default.
func (t Trigger) Condition() Condition {
	if t.On == "" {
		return CondSuccess
	}
	return t.On
}

// Fires reports whether an upstream pipeline run that ended in s starts a
// run of the pipeline carrying t.
func (t Trigger) Fires(s Status) bool {
	if s == StatusCanceled {
		return false // a stopped upstream run triggers nothing, whatever on says
	}
	return t.Condition().Holds(s)
}

// TriggerKey is the idempotency key of the run of pipeline that the
// upstream pipeline run upstreamRun triggered when it ended after retries
// retries (PipelineRun.Retries): the key of its first end is that of
// before retries existed, so that a restart finds the runs triggered then.
func TriggerKey(pipeline, upstreamRun string, retries int) string {
	key := "trigger/" + pipeline + "/" + upstreamRun
	if retries > 0 {
		key += "/retry" + strconv.Itoa(retries)
	}
	return key
}

// Pipeline kinds. A task schedule (`gantry schedule create --task`) is
// stored as a one-stage pipeline of kind task, so that it is listed,
// suspended, resumed, triggered and backfilled as every schedule is.
const (
	KindPipeline = "pipeline"
	KindTask     = "task"
)

// validateTriggers checks what one pipeline file can tell of its triggers
// and kind; CheckTriggers checks them against the other pipelines.
func (p *Pipeline) validateTriggers() []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	for i, t := range p.Triggers {
		tp := fmt.Sprintf("triggers[%d]", i)
		switch {
		case t.Pipeline == "":
			bad(tp+".pipeline", "required")
		case !validName(t.Pipeline):
			bad(tp+".pipeline", "%q: not a pipeline name", t.Pipeline)
		case t.Pipeline == p.Name:
			bad(tp+".pipeline", "%q: a pipeline cannot trigger itself", t.Pipeline)
		case seen[t.Pipeline]:
			bad(tp+".pipeline", "%q is listed twice", t.Pipeline)
		}
		seen[t.Pipeline] = true
		switch t.On {
		case "", CondSuccess, CondFailure, CondComplete:
		default:
			bad(tp+".on", "%q: want success, failure or complete", t.On)
		}
	}
	switch p.Kind {
	case "", KindPipeline:
	case KindTask:
		if len(p.Stages) != 1 {
			bad("stages", "a pipeline of kind task has exactly one stage")
		}
	default:
		bad("kind", "%q: want pipeline or task", p.Kind)
	}
	return errs
}

// CheckTriggers reports, every problem at once, the triggers of p that
// name no pipeline of all (the stored pipelines, p's earlier versions
// among them), those whose pipeline declares no parameter that p
// requires, the parameters required by a pipeline p triggers that p no
// longer declares, and the trigger cycles p would close: a run of any pipeline
// in a cycle would start runs forever.
func CheckTriggers(p *Pipeline, all []Pipeline) error {
	upstreams := map[string][]string{} // pipeline → the pipelines whose runs start it
	for _, o := range all {
		for _, t := range o.Triggers {
			upstreams[o.Name] = append(upstreams[o.Name], t.Pipeline)
		}
	}
	var ups []string
	for _, t := range p.Triggers {
		ups = append(ups, t.Pipeline)
	}
	upstreams[p.Name] = ups
	known := map[string]bool{p.Name: true}
	for _, o := range all {
		known[o.Name] = true
	}
	byName := make(map[string]*Pipeline, len(all))
	for i := range all {
		byName[all[i].Name] = &all[i]
	}
	required := p.Parameters.RequiredNames()
	var errs []error
	for i, t := range p.Triggers {
		if t.Pipeline != "" && t.Pipeline != p.Name && !known[t.Pipeline] {
			errs = append(errs, &FieldError{Path: fmt.Sprintf("triggers[%d].pipeline", i),
				Msg: fmt.Sprintf("no pipeline %q: apply it first", t.Pipeline)})
		}
		// A triggered run takes the parameters both pipelines declare
		// from the upstream run: one this pipeline requires must be among
		// them, or every run the trigger starts would be refused.
		if up := byName[t.Pipeline]; up != nil && t.Pipeline != p.Name {
			for _, k := range required {
				if !up.Parameters.Has(k) {
					errs = append(errs, &FieldError{Path: fmt.Sprintf("triggers[%d].pipeline", i),
						Msg: fmt.Sprintf("%s declares no parameter %s, which this pipeline requires (parameters.%s: {required: true}): "+
							"the runs it triggers would have no value for it", t.Pipeline, k, k)})
				}
			}
		}
	}
	// The other way: a pipeline that p's ends trigger takes from p's
	// runs the parameters it requires; p must keep declaring them, or
	// every run it triggers would be refused (and logged only).
	for _, o := range all {
		if o.Name == p.Name {
			continue // p's earlier version
		}
		for i, t := range o.Triggers {
			if t.Pipeline != p.Name {
				continue
			}
			for _, k := range o.Parameters.RequiredNames() {
				if !p.Parameters.Has(k) {
					errs = append(errs, &FieldError{Path: "parameters", Msg: fmt.Sprintf(
						"pipeline %s, which %s triggers (its triggers[%d]), requires parameter %s: declare %s here, or the runs it triggers would have no value for it",
						o.Name, p.Name, i, k, k)})
				}
			}
		}
	}
	if cycle := triggerCycle(p.Name, upstreams); cycle != nil {
		errs = append(errs, &FieldError{Path: "triggers",
			Msg: "trigger cycle: " + strings.Join(cycle, " -> ")})
	}
	return errors.Join(errs...)
}

// triggerCycle returns a cycle through start in the "is started by" graph,
// in the direction runs flow ("a -> b -> a": a run of a starts b, whose
// run starts a), or nil. Self-triggers are left to Validate.
func triggerCycle(start string, upstreams map[string][]string) []string {
	// Walk from start along "starts": downstream edges.
	downstreams := map[string][]string{}
	for down, ups := range upstreams {
		for _, up := range ups {
			if up != down {
				downstreams[up] = append(downstreams[up], down)
			}
		}
	}
	for _, ds := range downstreams {
		sort.Strings(ds)
	}
	visited := map[string]bool{}
	var path []string
	var walk func(n string) []string
	walk = func(n string) []string {
		path = append(path, n)
		for _, d := range downstreams[n] {
			if d == start {
				return append(append([]string(nil), path...), start)
			}
			if !visited[d] {
				visited[d] = true
				if c := walk(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		return nil
	}
	return walk(start)
}
