package jobs

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// ruleCase builds a pipeline whose stage x depends, under rule, on one
// stage per end in ends, each brought to that end:
//
//	ok, fail, cancel, run, pending: a root stage in that status;
//	skip: a root that skipped itself (skipOnExitCode);
//	upfail: a stage SKIPPED because the root before it FAILED;
//	when: a stage SKIPPED by its when, the root before it SUCCEEDED.
func ruleCase(rule TriggerRule, ends ...string) (*Pipeline, map[string]Status) {
	p := &Pipeline{Name: "p"}
	status := map[string]Status{}
	x := Stage{Name: "x", TriggerRule: rule}
	for i, e := range ends {
		dep := fmt.Sprintf("%s%d", e, i)
		switch e {
		case "upfail", "when":
			root := dep + "-root"
			p.Stages = append(p.Stages, Stage{Name: root}, Stage{Name: dep, DependsOn: []Dependency{{Stage: root, Condition: CondSuccess}}})
			status[root], status[dep] = StatusSucceeded, StatusSkipped
			if e == "upfail" {
				status[root] = StatusFailed
			}
		default:
			p.Stages = append(p.Stages, Stage{Name: dep})
			status[dep] = map[string]Status{"ok": StatusSucceeded, "fail": StatusFailed, "cancel": StatusCanceled,
				"run": StatusRunning, "pending": StatusPending, "skip": StatusSkipped}[e]
		}
		x.DependsOn = append(x.DependsOn, Dependency{Stage: dep, Condition: CondSuccess})
	}
	p.Stages = append(p.Stages, x)
	status["x"] = StatusPending
	return p, status
}

func TestTriggerRuleReadiness(t *testing.T) {
	tests := []struct {
		rule   TriggerRule
		ends   []string
		want   string // start, skip or wait: what Next does with x
		reason string // of a skip
	}{
		// allSuccess (and the empty rule): today's.
		{"", []string{"ok", "ok"}, "start", ""},
		{RuleAllSuccess, []string{"ok", "run"}, "wait", ""},
		{RuleAllSuccess, []string{"fail", "run"}, "skip", "dependency fail0 ended FAILED; condition success cannot hold"},
		{RuleAllSuccess, []string{"ok", "skip"}, "skip", "dependency skip1 ended SKIPPED; condition success cannot hold"},
		{RuleAllSuccess, []string{"upfail"}, "skip", "dependency upfail0 ended SKIPPED (upstream failed); condition success cannot hold"},
		{RuleAllSuccess, []string{"when", "fail"}, "skip", "dependency fail1 ended FAILED"}, // the failure is the cause, as in Airflow

		{RuleAllFailed, []string{"fail", "cancel", "upfail"}, "start", ""},
		{RuleAllFailed, []string{"fail", "run"}, "wait", ""},
		{RuleAllFailed, []string{"fail", "ok"}, "skip", "dependency ok1 ended SUCCEEDED; triggerRule allFailed cannot hold"},
		{RuleAllFailed, []string{"run", "when"}, "skip", "dependency when1 ended SKIPPED; triggerRule allFailed cannot hold"},

		{RuleAllDone, []string{"ok", "fail", "skip", "upfail", "cancel", "when"}, "start", ""},
		{RuleAllDone, []string{"fail", "run"}, "wait", ""},
		{RuleAllDone, []string{"fail", "pending"}, "wait", ""},

		{RuleOneFailed, []string{"fail", "run"}, "start", ""}, // does not wait for the others
		{RuleOneFailed, []string{"run", "upfail"}, "start", ""},
		{RuleOneFailed, []string{"cancel", "pending"}, "start", ""},
		{RuleOneFailed, []string{"ok", "run"}, "wait", ""},
		{RuleOneFailed, []string{"ok", "skip", "when"}, "skip", "no dependency failed (triggerRule oneFailed)"},

		{RuleOneSuccess, []string{"run", "ok"}, "start", ""},
		{RuleOneSuccess, []string{"fail", "run"}, "wait", ""},
		{RuleOneSuccess, []string{"fail", "skip"}, "skip", "no dependency succeeded (triggerRule oneSuccess)"},

		{RuleNoneFailed, []string{"ok", "skip", "when"}, "start", ""},
		{RuleNoneFailed, []string{"skip", "when"}, "start", ""},
		{RuleNoneFailed, []string{"ok", "run"}, "wait", ""},
		{RuleNoneFailed, []string{"run", "fail"}, "skip", "dependency fail1 ended FAILED; triggerRule noneFailed cannot hold"},
		{RuleNoneFailed, []string{"ok", "upfail"}, "skip", "dependency upfail1 ended SKIPPED (upstream failed); triggerRule noneFailed cannot hold"},
		{RuleNoneFailed, []string{"cancel"}, "skip", "dependency cancel0 ended CANCELED"},

		{RuleNoneFailedMinOneSuccess, []string{"ok", "when"}, "start", ""},
		{RuleNoneFailedMinOneSuccess, []string{"skip", "when"}, "skip", "no dependency succeeded (triggerRule noneFailedMinOneSuccess)"},
		{RuleNoneFailedMinOneSuccess, []string{"skip", "run"}, "wait", ""},
		{RuleNoneFailedMinOneSuccess, []string{"ok", "fail"}, "skip", "dependency fail1 ended FAILED; triggerRule noneFailedMinOneSuccess cannot hold"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.rule.OrDefault(), strings.Join(tt.ends, ",")), func(t *testing.T) {
			p, status := ruleCase(tt.rule, tt.ends...)
			start, skip := p.Next(status, nil)
			start = slices.DeleteFunc(start, func(n string) bool { return n != "x" }) // pending roots start too
			got := "wait"
			switch {
			case slices.Contains(start, "x"):
				got = "start"
			case slices.Contains(skip, "x"):
				got = "skip"
			}
			if got != tt.want {
				t.Fatalf("x: %s, want %s (start %v, skip %v)", got, tt.want, start, skip)
			}
			if got == "skip" {
				if r := p.SkipReason("x", status, nil); !strings.Contains(r, tt.reason) {
					t.Errorf("reason %q, want it to say %q", r, tt.reason)
				}
			}
		})
	}
}

// TestTriggerRulesAfterAFailure: extract succeeds, transform fails; load
// is SKIPPED (its upstream failed), and so is publish after it; notify
// (oneFailed on publish) runs, alert (condition failure on load) is
// SKIPPED as today, cleanup (allDone) runs once notify has ended, and
// report (noneFailed) is SKIPPED.
func TestTriggerRulesAfterAFailure(t *testing.T) {
	p, err := ParsePipeline([]byte(`name: p
stages:
  - {name: extract, taskDefinition: t}
  - {name: transform, taskDefinition: t, dependsOn: [extract]}
  - {name: load, taskDefinition: t, dependsOn: [transform]}
  - {name: publish, taskDefinition: t, dependsOn: [load]}
  - {name: notify, taskDefinition: t, dependsOn: [publish], triggerRule: oneFailed}
  - {name: alert, taskDefinition: t, dependsOn: [{stage: load, condition: failure}]}
  - {name: cleanup, taskDefinition: t, dependsOn: [load, notify], triggerRule: allDone}
  - {name: report, taskDefinition: t, dependsOn: [extract, load], triggerRule: noneFailed}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]Status{}
	for _, s := range p.Stages {
		st[s.Name] = StatusPending
	}
	settle := func() (started []string) {
		for {
			start, skip := p.Next(st, nil)
			for _, s := range skip {
				st[s] = StatusSkipped
			}
			for _, s := range start {
				st[s] = StatusRunning
				started = append(started, s)
			}
			if len(start)+len(skip) == 0 {
				return started
			}
		}
	}
	settle()
	st["extract"] = StatusSucceeded
	settle()
	st["transform"] = StatusFailed
	if got := settle(); !slices.Equal(got, []string{"notify"}) {
		t.Fatalf("after transform failed, started %v, want [notify]", got)
	}
	for _, s := range []string{"load", "publish", "alert", "report"} {
		if st[s] != StatusSkipped {
			t.Errorf("%s %s, want SKIPPED", s, st[s])
		}
	}
	for s, want := range map[string]bool{"load": true, "publish": true, "alert": true, "report": true, "transform": false, "notify": false} {
		if got := p.UpstreamFailed(s, st, nil); got != want {
			t.Errorf("UpstreamFailed(%s) = %v", s, got)
		}
	}
	if got, want := p.SkipReason("alert", st, nil), "dependency load ended SKIPPED (upstream failed); condition failure cannot hold"; got != want {
		t.Errorf("alert's reason %q, want %q", got, want)
	}
	if st["cleanup"] != StatusPending {
		t.Fatalf("cleanup %s before notify ended", st["cleanup"])
	}
	st["notify"] = StatusSucceeded
	if got := settle(); !slices.Equal(got, []string{"cleanup"}) {
		t.Fatalf("after notify, started %v, want [cleanup]", got)
	}
}

// TestTriggerRulesAfterASuccess: with every stage succeeding, a oneFailed
// stage is SKIPPED (not upstream-failed: a oneFailed after it is SKIPPED
// too) and allDone and noneFailed ones run.
func TestTriggerRulesAfterASuccess(t *testing.T) {
	p, err := ParsePipeline([]byte(`name: p
stages:
  - {name: a, taskDefinition: t}
  - {name: notify, taskDefinition: t, dependsOn: [a], triggerRule: oneFailed}
  - {name: notify2, taskDefinition: t, dependsOn: [notify], triggerRule: oneFailed}
  - {name: cleanup, taskDefinition: t, dependsOn: [a, notify], triggerRule: allDone}
  - {name: join, taskDefinition: t, dependsOn: [a, notify], triggerRule: noneFailedMinOneSuccess}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]Status{"a": StatusSucceeded, "notify": StatusPending, "notify2": StatusPending, "cleanup": StatusPending, "join": StatusPending}
	start, skip := p.Next(st, nil)
	if len(start) != 0 || !slices.Equal(skip, []string{"notify"}) {
		t.Fatalf("start %v skip %v", start, skip)
	}
	st["notify"] = StatusSkipped
	start, skip = p.Next(st, nil)
	if !slices.Equal(start, []string{"cleanup", "join"}) || !slices.Equal(skip, []string{"notify2"}) {
		t.Fatalf("start %v skip %v", start, skip)
	}
	if p.UpstreamFailed("notify", st, nil) {
		t.Error("notify, skipped for no failure, counts as upstream failed")
	}
}

func TestTriggerRuleValidate(t *testing.T) {
	tests := []struct {
		name, stages string
		want         []string // each a line of the error; none: valid
	}{
		{"every rule", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a], triggerRule: allSuccess}
  - {name: c, taskDefinition: t, dependsOn: [a, b], triggerRule: allFailed}
  - {name: d, taskDefinition: t, dependsOn: [a], triggerRule: allDone}
  - {name: e, taskDefinition: t, dependsOn: [a], triggerRule: oneFailed}
  - {name: f, taskDefinition: t, dependsOn: [a], triggerRule: oneSuccess}
  - {name: g, taskDefinition: t, dependsOn: [a], triggerRule: noneFailed}
  - {name: h, taskDefinition: t, dependsOn: [{stage: a, condition: success}], triggerRule: noneFailedMinOneSuccess}
  - {name: i, taskDefinition: t, dependsOn: [{stage: a, condition: failure}], triggerRule: allSuccess}`, nil},
		{"unknown, Airflow's spelling", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a], triggerRule: one_failed}`,
			[]string{`stages[1](b).triggerRule: "one_failed": want one of allSuccess, allFailed, allDone, oneFailed, oneSuccess, noneFailed, noneFailedMinOneSuccess; did you mean "oneFailed"?`}},
		{"unknown", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a], triggerRule: whenever}`,
			[]string{`stages[1](b).triggerRule: "whenever": want one of allSuccess, allFailed, allDone, oneFailed, oneSuccess, noneFailed, noneFailedMinOneSuccess`}},
		{"a condition under a rule", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t}
  - {name: notify, taskDefinition: t, dependsOn: [a, {stage: b, condition: failure}], triggerRule: oneFailed}
  - {name: cleanup, taskDefinition: t, dependsOn: [{stage: a, condition: complete}], triggerRule: allDone}`,
			[]string{
				"stages[2](notify).triggerRule: oneFailed decides from how the dependencies ended: dependsOn[1] (b) cannot have condition failure too; list it as a plain stage name",
				"stages[3](cleanup).triggerRule: allDone decides from how the dependencies ended: dependsOn[0] (a) cannot have condition complete too; list it as a plain stage name"}},
		{"N_TO_N under a rule", `
  - {name: a, taskDefinition: t, arraySize: 2}
  - {name: b, taskDefinition: t, arraySize: 2, dependsOn: [{stage: a, type: N_TO_N}], triggerRule: allDone}`,
			[]string{"stages[1](b).triggerRule: allDone decides from how whole stages ended: dependsOn[0] (a) cannot be N_TO_N, which goes child by child; leave triggerRule out"}},
		{"outputs a oneFailed or oneSuccess stage cannot count on", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a]}
  - {name: pick, taskDefinition: t, dependsOn: [a, b], triggerRule: oneSuccess, when: [{output: a.MODE, equals: x}, {output: b.MODE, equals: x}]}
  - {name: alert, taskDefinition: t, dependsOn: [a, b], triggerRule: oneFailed, when: {output: a.MODE, equals: x}}`,
			[]string{
				`stages[2](pick).when[0].output: "a.MODE": under triggerRule oneSuccess pick starts once one dependency succeeded, without waiting for the others: a may not have ended then: read an output of a stage upstream of its dependencies`,
				`stages[2](pick).when[1].output: "b.MODE": under triggerRule oneSuccess pick starts once one dependency succeeded, without waiting for the others: b may not have ended then: read an output of a stage upstream of its dependencies`,
				`stages[3](alert).when.output: "a.MODE": under triggerRule oneFailed alert starts once one dependency failed, without waiting for the others: a may be the one that failed, which wrote no outputs to count on, or may not have ended then: read an output of a stage upstream of its dependencies`}},
		{"outputs a rule can count on", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a]}
  - {name: c, taskDefinition: t, dependsOn: [a]}
  - {name: notify, taskDefinition: t, dependsOn: [b, c], triggerRule: oneFailed, arraySize: {fromOutput: a.N}}
  - {name: only, taskDefinition: t, dependsOn: [b], triggerRule: oneSuccess, when: {output: b.MODE, equals: x}}
  - {name: join, taskDefinition: t, dependsOn: [b, c], triggerRule: noneFailed, when: {output: b.MODE, notEquals: ""}}
  - {name: done, taskDefinition: t, dependsOn: [b, c], triggerRule: allDone, arraySize: {fromOutput: c.N}}
  - {name: arr, taskDefinition: t, arraySize: 3}
  - {name: partial, taskDefinition: t, dependsOn: [arr], triggerRule: oneFailed, when: {output: arr.ROWS, notEquals: ""}}
  - {name: lost, taskDefinition: t, dependsOn: [arr], triggerRule: allFailed, when: {output: arr.ROWS, notEquals: ""}}
  - {name: failed, taskDefinition: t, dependsOn: [{stage: arr, condition: failure}], when: {output: arr.ROWS, notEquals: ""}}`, nil},
		{"a rule without dependencies", `
  - {name: a, taskDefinition: t, triggerRule: allDone}`,
			[]string{"stages[0](a).triggerRule: allDone decides from the stage's dependencies, and it has none: add dependsOn, or leave triggerRule out"}},
		{"not a string", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a], triggerRule: [oneFailed]}`,
			[]string{"stages[1](b).triggerRule: [\"oneFailed\"]: want a rule's name, as oneFailed"}},
		{"not a string, and an unknown field", `
  - {name: a, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a], triggerRule: 3, trigger_rule: one_failed}`,
			[]string{"stages[1](b).triggerRule: 3: want a rule's name, as oneFailed",
				`stages[1](b).trigger_rule: unknown field; did you mean "triggerRule"?`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePipeline([]byte("name: p\nstages:" + tt.stages + "\n"))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to say\n%s", err, w)
				}
			}
		})
	}
}

func TestDependsOnText(t *testing.T) {
	plain := Stage{DependsOn: []Dependency{{Stage: "load", Condition: CondSuccess}, {Stage: "alert", Condition: CondFailure}}}
	if got, want := plain.DependsOnText(), "load(success), alert(failure)"; got != want {
		t.Errorf("plain: %q, want %q", got, want)
	}
	ruled := Stage{DependsOn: []Dependency{{Stage: "load", Condition: CondSuccess}, {Stage: "transform", Condition: CondSuccess}}, TriggerRule: RuleOneFailed}
	if got, want := ruled.DependsOnText(), "load, transform (triggerRule oneFailed)"; got != want {
		t.Errorf("ruled: %q, want %q", got, want)
	}
	if got := (&Stage{}).DependsOnText(); got != "" {
		t.Errorf("none: %q", got)
	}
}

// TestNextWaitsForOutputsRead: a stage whose rule holds still waits while
// a stage whose output it reads (fromOutput, when) has not ended, which
// OutputWait says; a rule that can no longer hold skips it all the same.
func TestNextWaitsForOutputsRead(t *testing.T) {
	p, err := ParsePipeline([]byte(`name: p
stages:
  - {name: a, taskDefinition: t}
  - {name: x, taskDefinition: t}
  - {name: b, taskDefinition: t, dependsOn: [a, x], triggerRule: oneFailed}
  - {name: sized, taskDefinition: t, dependsOn: [b], arraySize: {fromOutput: a.N}}
  - {name: chosen, taskDefinition: t, dependsOn: [b], when: {output: a.MODE, equals: full}}
`))
	if err != nil {
		t.Fatal(err)
	}
	st := map[string]Status{"a": StatusRunning, "x": StatusFailed, "b": StatusSucceeded, "sized": StatusPending, "chosen": StatusPending}
	if start, skip := p.Next(st, nil); len(start)+len(skip) != 0 {
		t.Fatalf("while a runs: start %v skip %v, want both waiting", start, skip)
	}
	for name, want := range map[string]string{"sized": "waiting for a to end, to read a.N (its arraySize)",
		"chosen": "waiting for a to end, to read a.MODE (its when)", "b": ""} {
		if got := p.OutputWait(name, st, nil); got != want {
			t.Errorf("OutputWait(%s) = %q, want %q", name, got, want)
		}
	}
	for _, end := range []Status{StatusSucceeded, StatusFailed, StatusSkipped} {
		st["a"] = end
		if start, _ := p.Next(st, nil); !slices.Equal(start, []string{"sized", "chosen"}) {
			t.Errorf("a %s: start %v, want both", end, start)
		}
	}
	if got := p.OutputWait("sized", st, nil); got != "" {
		t.Errorf("a ended: OutputWait(sized) = %q", got)
	}
	st["a"], st["b"] = StatusRunning, StatusFailed
	if _, skip := p.Next(st, nil); !slices.Equal(skip, []string{"sized", "chosen"}) {
		t.Errorf("b failed: skip %v, want both", skip)
	}
	st["b"] = StatusRunning
	if got := p.OutputWait("sized", st, nil); got != "" {
		t.Errorf("b running: OutputWait(sized) = %q, want none: it waits for its dependency", got)
	}
}
