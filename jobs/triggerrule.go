package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TriggerRule says, as Airflow's trigger_rule does, which ends of a
// stage's dependencies let it run, taken together (each dependency's
// Condition says it of that dependency alone):
//
//	stages:
//	  - name: notify
//	    dependsOn: [load]
//	    triggerRule: oneFailed
//
// For the rules, a dependency failed when it ended FAILED or CANCELED (as
// the pipeline run's outcome counts them) or was SKIPPED because a stage
// upstream of it failed so (Airflow's upstream_failed: UpstreamFailed);
// it was skipped when it was SKIPPED otherwise (its when, its
// skipOnExitCode, an arraySize of 0, a condition failure after a
// success). Empty is AllSuccess.
type TriggerRule string

// The trigger rules, Airflow's in camelCase.
const (
	// RuleAllSuccess: every dependency ended as its condition asks (with
	// plain dependencies: every one SUCCEEDED). The default.
	RuleAllSuccess TriggerRule = "allSuccess"
	// RuleAllFailed: every dependency failed.
	RuleAllFailed TriggerRule = "allFailed"
	// RuleAllDone: every dependency ended, however: each as complete.
	RuleAllDone TriggerRule = "allDone"
	// RuleOneFailed: one dependency failed; the stage does not wait for
	// the others.
	RuleOneFailed TriggerRule = "oneFailed"
	// RuleOneSuccess: one dependency SUCCEEDED; the stage does not wait
	// for the others.
	RuleOneSuccess TriggerRule = "oneSuccess"
	// RuleNoneFailed: every dependency ended, none failed (each SUCCEEDED
	// or was skipped): the join after a when.
	RuleNoneFailed TriggerRule = "noneFailed"
	// RuleNoneFailedMinOneSuccess: as noneFailed, and one SUCCEEDED.
	RuleNoneFailedMinOneSuccess TriggerRule = "noneFailedMinOneSuccess"
)

// TriggerRules lists the rules, for errors and help.
var TriggerRules = []TriggerRule{RuleAllSuccess, RuleAllFailed, RuleAllDone, RuleOneFailed, RuleOneSuccess,
	RuleNoneFailed, RuleNoneFailedMinOneSuccess}

// errTriggerRuleShape is the error of a triggerRule that is no string.
// encoding/json passes it on without the stage it read: a pipeline file
// finds which (triggerRuleShapeProblems).
var errTriggerRuleShape = errors.New("triggerRule")

// UnmarshalJSON reads a string (null: none); Validate checks its value.
func (r *TriggerRule) UnmarshalJSON(data []byte) error {
	var s *string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("%w: %s: want a rule's name, as oneFailed", errTriggerRuleShape, data)
	}
	*r = ""
	if s != nil {
		*r = TriggerRule(*s)
	}
	return nil
}

// triggerRuleShapeProblems names each stage's triggerRule of a pipeline
// file (JSON) that is no string, by its field path, for the decoding
// error that says only that one is not.
func triggerRuleShapeProblems(js []byte) error {
	return fieldProblems(js, "triggerRule", false, func(path string, raw json.RawMessage) []error {
		var r TriggerRule
		if err := r.UnmarshalJSON(raw); err != nil {
			return []error{&FieldError{path, strings.TrimPrefix(err.Error(), errTriggerRuleShape.Error()+": ")}}
		}
		return nil
	})
}

// OrDefault is the rule, AllSuccess when empty.
func (r TriggerRule) OrDefault() TriggerRule {
	if r == "" {
		return RuleAllSuccess
	}
	return r
}

// Plain reports whether the rule is AllSuccess, written or not: the
// dependencies' own conditions decide.
func (r TriggerRule) Plain() bool { return r.OrDefault() == RuleAllSuccess }

func (r TriggerRule) valid() bool {
	for _, x := range TriggerRules {
		if r.OrDefault() == x {
			return true
		}
	}
	return false
}

// validateTriggerRule checks the stage's triggerRule (sp is the stage's
// path): a known rule; any other than allSuccess over plain dependencies
// (a condition other than success says the same as the rule, or against
// it) and at least one.
func (st *Stage) validateTriggerRule(sp string) []error {
	path := sp + ".triggerRule"
	if !st.TriggerRule.valid() {
		names := make([]string, len(TriggerRules))
		for i, r := range TriggerRules {
			names[i] = string(r)
		}
		msg := fmt.Sprintf("%q: want one of %s", st.TriggerRule, strings.Join(names, ", "))
		if s := Nearest(string(st.TriggerRule), names); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return []error{&FieldError{Path: path, Msg: msg}}
	}
	if st.TriggerRule.Plain() {
		return nil
	}
	if len(st.DependsOn) == 0 {
		return []error{&FieldError{Path: path, Msg: fmt.Sprintf("%s decides from the stage's dependencies, and it has none: add dependsOn, or leave triggerRule out",
			st.TriggerRule)}}
	}
	var errs []error
	for j, d := range st.DependsOn {
		if d.NToN() {
			errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("%s decides from how whole stages ended: dependsOn[%d] (%s) cannot be N_TO_N, which goes child by child; leave triggerRule out",
				st.TriggerRule, j, d.Stage)})
			continue
		}
		if d.Condition != "" && d.Condition != CondSuccess {
			errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("%s decides from how the dependencies ended: dependsOn[%d] (%s) cannot have condition %s too; list it as a plain stage name",
				st.TriggerRule, j, d.Stage, d.Condition)})
		}
	}
	return errs
}

// uncountedOutput says why stage st cannot count on the outputs of its
// dependency dep under its rule, "" when it can. Under oneFailed and
// oneSuccess with more than one dependency it starts without waiting for
// every one, and a read of an output waits for the stage that writes it
// to end (readiness outputsFinal), which would make it wait after all,
// for a value that may not be there: under oneFailed dep may be the one
// that failed (a stage that failed wrote no outputs, or those of some
// children only) or one not ended; under oneSuccess, one not ended. With
// one dependency, and under the other rules, every dependency has ended
// when the stage starts, and one that failed or was skipped has the key
// unset (but for what the children of an array that succeeded wrote), as
// fromOutput and when say: a oneFailed stage after one dependency reads
// it as allFailed and a condition failure do. Stages upstream of the
// dependencies stay readable, the stage waiting for them if need be.
func (st *Stage) uncountedOutput(dep string) string {
	if len(st.DependsOn) < 2 || !slices.ContainsFunc(st.DependsOn, func(d Dependency) bool { return d.Stage == dep }) {
		return ""
	}
	switch rule := st.TriggerRule.OrDefault(); rule {
	case RuleOneFailed:
		return fmt.Sprintf("under triggerRule %s %s starts once one dependency failed, without waiting for the others: "+
			"%s may be the one that failed, which wrote no outputs to count on, or may not have ended then: "+
			"read an output of a stage upstream of its dependencies", rule, st.Name, dep)
	case RuleOneSuccess:
		return fmt.Sprintf("under triggerRule %s %s starts once one dependency succeeded, without waiting for the others: "+
			"%s may not have ended then: read an output of a stage upstream of its dependencies", rule, st.Name, dep)
	}
	return ""
}

// depEnd is how a dependency ended, as the rules count it.
type depEnd int

const (
	depWaits depEnd = iota // not ended yet
	depSucceeded
	depFailed  // FAILED, CANCELED, or SKIPPED because something upstream failed
	depSkipped // SKIPPED otherwise
)

// verdict is the fate of a PENDING stage.
type verdict int

const (
	stageWaits verdict = iota
	stageRuns
	stageNever // it can never run: SKIPPED
)

// readiness decides stages from the statuses of a pipeline run's stages
// and which of them ended without a run (runless: PipelineRun.Runless);
// it remembers which SKIPPED stages were upstream-failed.
type readiness struct {
	p        *Pipeline
	status   map[string]Status
	runless  map[string]int
	upFailed map[string]bool
}

func newReadiness(p *Pipeline, status map[string]Status, runless map[string]int) *readiness {
	return &readiness{p: p, status: status, runless: runless}
}

// end is how the named stage ended, for a rule.
func (r *readiness) end(name string) depEnd {
	switch s := r.status[name]; s {
	case StatusSucceeded:
		return depSucceeded
	case StatusFailed, StatusCanceled:
		return depFailed
	case StatusSkipped:
		if r.upstreamFailed(name) {
			return depFailed
		}
		return depSkipped
	}
	return depWaits
}

// upstreamFailed reports whether the SKIPPED stage name was skipped
// because a dependency failed (Airflow's upstream_failed): its rule can
// no longer hold, for that failure. A stage skipped otherwise (by its
// when, its skipOnExitCode, an arraySize of 0) had its rule hold. The
// statuses of the stages upstream of an ended stage no longer change
// (a retry puts the stages downstream of those it runs again back to
// PENDING), so deciding again decides as when it was skipped.
func (r *readiness) upstreamFailed(name string) bool {
	if v, ok := r.upFailed[name]; ok {
		return v
	}
	if r.upFailed == nil {
		r.upFailed = map[string]bool{}
	}
	r.upFailed[name] = false // a cycle (Validate refuses them) ends here
	st := r.p.Stage(name)
	if st == nil {
		return false
	}
	v, _, failed := r.decide(st)
	r.upFailed[name] = v == stageNever && failed
	return r.upFailed[name]
}

// decide is the fate of stage st given its dependencies' ends: whether
// it waits, runs or never can; for the last, why (for its reason), and
// whether because a dependency failed. A stage its rule lets run waits
// still while a stage whose output it reads has not ended.
func (r *readiness) decide(st *Stage) (v verdict, why string, upFailed bool) {
	v, why, upFailed = r.decideRule(st)
	if v == stageRuns && !r.outputsFinal(st) {
		return stageWaits, "", false
	}
	return v, why, upFailed
}

// outputsFinal reports whether every stage whose output st reads (its
// arraySize's fromOutput, its when's outputs) has ended, so that what it
// reads is final: of a stage still running the key would be there or not
// by chance, as its runs ended before the read or after. Such a stage is
// upstream of st (Validate), so it has mostly ended when st's rule holds;
// not always: a dependency of st may have run under oneFailed or
// oneSuccess without it, or been SKIPPED (for another dependency that
// failed) while it still ran.
func (r *readiness) outputsFinal(st *Stage) bool {
	if st.ArraySize.From != nil && !StageEnded(r.status[st.ArraySize.From.Stage]) {
		return false
	}
	for _, c := range st.When.Conditions {
		if c.Output != nil && !StageEnded(r.status[c.Output.Stage]) {
			return false
		}
	}
	return true
}

// decideRule is decide by the rule and conditions alone.
func (r *readiness) decideRule(st *Stage) (v verdict, why string, upFailed bool) {
	rule := st.TriggerRule.OrDefault()
	if rule == RuleAllSuccess {
		// Each dependency by its condition: today's rule, and the only
		// one where conditions count.
		v = stageRuns
		for _, d := range st.DependsOn {
			s := r.status[d.Stage]
			if d.NToN() {
				// Child by child (arrayorder.go): the stage starts once
				// the upstream one has, and cannot once it was SKIPPED.
				// An upstream that FAILED without its children (its size
				// or its when could not be decided, a run of it could not
				// be submitted, at its first child or a later one: its
				// start stopped those it had submitted) failed as any:
				// the stage is skipped for an upstream failure, as after
				// a SKIPPED one that was.
				submitted, runless := r.runless[d.Stage]
				switch {
				case nToNNever(s, runless):
					failed := r.end(d.Stage) == depFailed
					if v != stageNever || failed && !upFailed {
						end := r.endText(d.Stage)
						switch {
						case !runless || s == StatusSkipped:
						case submitted == 0:
							end += " without a child"
						default:
							end += fmt.Sprintf(" before all its children were submitted (%d submitted, then stopped)", submitted)
						}
						why = fmt.Sprintf("dependency %s ended %s; N_TO_N needs children of it that ran", d.Stage, end)
					}
					v, upFailed = stageNever, upFailed || failed
				case !nToNReady(s) && v == stageRuns:
					v = stageWaits
				}
				continue
			}
			if !StageEnded(s) {
				if v == stageRuns {
					v = stageWaits
				}
				continue
			}
			if d.Condition.Holds(s) {
				continue
			}
			failed := r.end(d.Stage) == depFailed
			if v != stageNever || failed && !upFailed {
				why = fmt.Sprintf("dependency %s ended %s; condition %s cannot hold", d.Stage, r.endText(d.Stage), d.Condition)
			}
			v, upFailed = stageNever, upFailed || failed
		}
		return v, why, upFailed
	}
	var waiting, succeeded, failed, skipped int
	var firstFailed, firstOther string // the first dependency that failed; that succeeded or was skipped
	for _, d := range st.DependsOn {
		switch r.end(d.Stage) {
		case depWaits:
			waiting++
		case depSucceeded:
			succeeded++
			firstOther = firstOf(firstOther, d.Stage)
		case depFailed:
			failed++
			firstFailed = firstOf(firstFailed, d.Stage)
		case depSkipped:
			skipped++
			firstOther = firstOf(firstOther, d.Stage)
		}
	}
	cannot := func(dep string) string {
		return fmt.Sprintf("dependency %s ended %s; triggerRule %s cannot hold", dep, r.endText(dep), rule)
	}
	none := func(what string) string {
		return fmt.Sprintf("no dependency %s (triggerRule %s)", what, rule)
	}
	switch rule {
	case RuleAllFailed:
		switch {
		case firstOther != "":
			return stageNever, cannot(firstOther), false
		case waiting == 0:
			return stageRuns, "", false
		}
	case RuleAllDone:
		if waiting == 0 {
			return stageRuns, "", false
		}
	case RuleOneFailed:
		switch {
		case failed > 0:
			return stageRuns, "", false
		case waiting == 0:
			return stageNever, none("failed"), false
		}
	case RuleOneSuccess:
		switch {
		case succeeded > 0:
			return stageRuns, "", false
		case waiting == 0:
			// Airflow: upstream_failed when one failed, skipped else.
			return stageNever, none("succeeded"), failed > 0
		}
	case RuleNoneFailed, RuleNoneFailedMinOneSuccess:
		switch {
		case failed > 0:
			return stageNever, cannot(firstFailed), true
		case waiting > 0:
		case rule == RuleNoneFailed || succeeded > 0:
			return stageRuns, "", false
		default:
			return stageNever, none("succeeded"), false
		}
	}
	return stageWaits, "", false
}

// endText is how the named stage ended, for a reason: its status, and
// for one skipped because something upstream failed, so.
func (r *readiness) endText(name string) string {
	s := r.status[name]
	if s == StatusSkipped && r.upstreamFailed(name) {
		return "SKIPPED (upstream failed)"
	}
	return string(s)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// UpstreamFailed reports whether the stage name, SKIPPED in status, was
// skipped because a stage it depends on failed (FAILED, CANCELED, or
// itself skipped so), as Airflow's upstream_failed: a oneFailed stage
// after it runs. runless holds the stages that ended without a run, as
// Next takes it.
func (p *Pipeline) UpstreamFailed(name string, status map[string]Status, runless map[string]int) bool {
	return status[name] == StatusSkipped && newReadiness(p, status, runless).upstreamFailed(name)
}

// SkipReason says why the PENDING stage name can never run given status
// and runless, as Next decided it: the dependency, and the condition or
// rule, at fault.
func (p *Pipeline) SkipReason(name string, status map[string]Status, runless map[string]int) string {
	st := p.Stage(name)
	if st == nil {
		return "dependencies cannot be met"
	}
	if v, why, _ := newReadiness(p, status, runless).decide(st); v == stageNever && why != "" {
		return why
	}
	return "dependencies cannot be met"
}

// OutputWait says why the PENDING stage name still waits though its
// dependencies let it run (given status and runless, as Next takes them):
// the stages whose outputs it reads that have not ended, as "waiting for
// load to end, to read load.ROWS (its when)"; "" when it waits for no
// such stage. Nothing is stored for that wait: displays say it.
func (p *Pipeline) OutputWait(name string, status map[string]Status, runless map[string]int) string {
	st := p.Stage(name)
	if st == nil || status[name] != StatusPending {
		return ""
	}
	if v, _, _ := newReadiness(p, status, runless).decideRule(st); v != stageRuns {
		return ""
	}
	var stages, reads []string
	add := func(ref *OutputRef, field string) {
		if ref == nil || StageEnded(status[ref.Stage]) {
			return
		}
		if !slices.Contains(stages, ref.Stage) {
			stages = append(stages, ref.Stage)
		}
		if r := fmt.Sprintf("%s (its %s)", ref, field); !slices.Contains(reads, r) {
			reads = append(reads, r)
		}
	}
	add(st.ArraySize.From, "arraySize")
	for _, c := range st.When.Conditions {
		add(c.Output, "when")
	}
	if len(stages) == 0 {
		return ""
	}
	return fmt.Sprintf("waiting for %s to end, to read %s", strings.Join(stages, ", "), strings.Join(reads, ", "))
}

// DependsOnText writes the stage's dependencies for a table: each with
// its condition (load(success), alert(failure)), or under a rule the
// names and the rule (load, transform (triggerRule oneFailed)); "" for
// none.
func (st *Stage) DependsOnText() string {
	deps := make([]string, len(st.DependsOn))
	for i, d := range st.DependsOn {
		deps[i] = d.Stage
		if d.NToN() {
			deps[i] += "(N_TO_N: child i after its child i)"
		} else if st.TriggerRule.Plain() {
			c := d.Condition
			if c == "" {
				c = CondSuccess
			}
			deps[i] += "(" + string(c) + ")"
		}
	}
	s := strings.Join(deps, ", ")
	if !st.TriggerRule.Plain() && s != "" {
		s += " (triggerRule " + string(st.TriggerRule) + ")"
	}
	return s
}
