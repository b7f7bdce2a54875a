package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestConstraintFlagsAreCheckedBeforeConnecting: a bad --constraint of
// gantry run or gantry rerun is refused naming the flag and the value,
// before any request (no NATS listens here).
func TestConstraintFlagsAreCheckedBeforeConnecting(t *testing.T) {
	var many []string
	for i := range 17 {
		many = append(many, "--constraint", fmt.Sprintf("k%d=v", i))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--constraint", "!disk=ssd", "etl"}, `--constraint "!disk=ssd": key "!disk": character '!' not allowed: want K=V, K!=V, K or !K`},
		{[]string{"run", "--constraint", "gpu", "--constraint", "!gpu", "etl"},
			`--constraint "!gpu": contradicts --constraint "gpu": a worker cannot both have label gpu and lack it`},
		{[]string{"run", "--constraint", "=ssd", "etl"}, `--constraint "=ssd": empty key`},
		{[]string{"run", "--constraint", "!=ssd", "etl"}, `--constraint "!=ssd": empty key`},
		{[]string{"run", "--constraint", "disk type=ssd", "etl"}, `--constraint "disk type=ssd": key "disk type": character ' ' not allowed: use letters, digits and - _ . /`},
		{[]string{"run", "--constraint", "disk=a,b", "etl"}, `--constraint "disk=a,b": value "a,b": character ',' not allowed`},
		{[]string{"run", "--constraint", "disk=ssd", "--constraint", "disk=hdd", "etl"},
			`--constraint "disk=hdd": contradicts --constraint "disk=ssd": a worker's label has one value`},
		{[]string{"run", "--constraint", "disk=ssd", "--constraint", "disk!=ssd", "etl"},
			`--constraint "disk!=ssd": contradicts --constraint "disk=ssd"`},
		{[]string{"run", "--constraint", "disk=ssd", "--constraint", "disk=ssd", "etl"},
			`--constraint "disk=ssd": given twice (also --constraint "disk=ssd")`},
		{append(append([]string{"run"}, many...), "etl"), `--constraint: 17 constraints: at most 16`},
		// Every problem, not the first only.
		{[]string{"run", "--constraint", "g pu", "--constraint", "", "--constraint", "x", "--constraint", "!x", "etl"},
			`--constraint "g pu": key "g pu": character ' ' not allowed: use letters, digits and - _ . /` + "\n" +
				`--constraint "": empty: want K=V, K!=V, K or !K (a worker label K of value V, not of value V, of any value, or no label K)` + "\n" +
				`--constraint "!x": contradicts --constraint "x": a worker cannot both have label x and lack it`},
		// Several joined by commas: one a flag.
		{[]string{"run", "--constraint", "disk=ssd, !spot", "etl"},
			`--constraint "disk=ssd, !spot": value "ssd, !spot": character ',' not allowed: use letters, digits and - _ . / : @ + (one per flag: --constraint disk=ssd --constraint '!spot')`},
		{[]string{"worker", "--label", "disk=ssd,zone=eu-1"}, `(one per flag: --label disk=ssd --label zone=eu-1)`},
		{[]string{"rerun", "--constraint", "g pu", "01abc"}, `--constraint "g pu": key "g pu": character ' ' not allowed`},
		{[]string{"pipeline", "run", "--constraint", "disk=ssd", "--constraint", "disk=hdd", "daily"},
			`--constraint "disk=hdd": contradicts --constraint "disk=ssd": a worker's label has one value`},
		{[]string{"pipeline", "run", "--constraint", "!", "daily"}, `--constraint "!": empty key`},
		{[]string{"schedule", "create", "--task", "backup", "--cron", "@daily", "--constraint", "spot", "--constraint", "!spot"},
			`--constraint "!spot": contradicts --constraint "spot": a worker cannot both have label spot and lack it`},
		{[]string{"worker", "--label", "disk type=ssd"}, `--label "disk type=ssd": key "disk type": character ' ' not allowed: use letters, digits and - _ . / (so that gantry run --constraint can ask for it)`},
		{[]string{"worker", "--label", "zone=eu 1", "--label", "gpu"}, `--label "zone=eu 1": value "eu 1": character ' ' not allowed`},
		{[]string{"worker", "--label", "gpu"}, `--label "gpu": want K=V: gpu= for a label gpu of no value (gantry run --constraint gpu asks for a label gpu of any value)`},
		{[]string{"worker", "--label", "disk=ssd", "--label", "disk=hdd"}, `--label "disk=hdd": label disk given already (--label "disk=ssd"): a worker's label has one value`},
		{[]string{"up", "--label", "disk=a,b"}, `--label "disk=a,b": value "a,b": character ',' not allowed`},
	} {
		err := offline(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestDescribeShowsConstraints: gantry describe shows the constraints a
// run was placed by, the task definition's included, and nothing for a
// run without.
func TestDescribeShowsConstraints(t *testing.T) {
	var r jobs.Run
	if err := json.Unmarshal([]byte(`{"runId":"r1","status":"QUEUED","cluster":"etl",
		"statusReason":"no worker in cluster etl has labels disk=ssd","spec":{"task":{"family":"x"},"constraints":["disk=ssd","zone!=eu-1"]}}`), &r); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := describeRun(&b, &r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Constraints:\tdisk=ssd, zone!=eu-1\n", "Status reason:\tno worker in cluster etl has labels disk=ssd\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, b.String())
		}
	}
	r.Spec.Constraints = nil
	b.Reset()
	describeRun(&b, &r)
	if strings.Contains(b.String(), "Constraints") {
		t.Errorf("a run without constraints:\n%s", b.String())
	}
}

// TestServerConstraintErrorsNameTheFlag: the server's problems with the
// constraints of gantry pipeline run and gantry schedule create name the
// --constraint flag, the others kept as they are, on one line.
func TestServerConstraintErrorsNameTheFlag(t *testing.T) {
	err := errors.New(`constraints[1]: "disk=ssd": contradicts the pipeline file's stages[1](b).constraints[0] (disk=hdd): a worker's label has one value
constraints: 17 constraints for stages[2](c), the pipeline file's and the run's together: at most 16
tags[0]: bad`)
	want := `--constraint "disk=ssd": contradicts the pipeline file's stages[1](b).constraints[0] (disk=hdd): a worker's label has one value; ` +
		`--constraint: 17 constraints for stages[2](c), the pipeline file's and the run's together: at most 16; tags[0]: bad`
	if got := constraintFlagErrors(err); got != want {
		t.Errorf("pipeline run:\n%s\nwant\n%s", got, want)
	}
	err = errors.New(`constraints: 17 constraints, the task definition's placementConstraints and the request's together: at most 16
schedule.cron: "x": bad`)
	want = `--constraint: 17 constraints, the task definition's placementConstraints and the request's together: at most 16; --cron: "x": bad`
	if got := scheduleFlagErrors(err); got != want {
		t.Errorf("schedule create:\n%s\nwant\n%s", got, want)
	}
}

// TestDescribePipelineRunShowsConstraints: a pipeline run started with
// constraints says so.
func TestDescribePipelineRunShowsConstraints(t *testing.T) {
	var pr jobs.PipelineRun
	if err := json.Unmarshal([]byte(`{"pipelineRunId":"pr-1","pipeline":"p","version":1,"status":"RUNNING","constraints":["gpu","!spot"]}`), &pr); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := describePipelineRun(&b, &pr); err != nil {
		t.Fatal(err)
	}
	if want := "Constraints:\tgpu, !spot (every stage's, besides the pipeline file's)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("describe lacks %q:\n%s", want, b.String())
	}
}

// TestServerParamAndRangeErrorsNameTheFlag: the server names a pipeline
// run's unknown parameters, and a backfill's range, by their request
// fields; gantry pipeline run and backfill name the flags instead.
func TestServerParamAndRangeErrorsNameTheFlag(t *testing.T) {
	err := errors.New(`parameters.dya: pipeline daily declares no parameter "dya" (it declares day, rows)
constraints[0]: "disk=ssd": bad
tags[0]: bad`)
	want := `--param dya: pipeline daily declares no parameter "dya" (it declares day, rows); --constraint "disk=ssd": bad; tags[0]: bad`
	if got := pipelineRunFlagErrors(err); got != want {
		t.Errorf("pipeline run:\n%s\nwant\n%s", got, want)
	}
	// A required parameter missing says which flag gives it.
	err = errors.New(`parameters.customer: pipeline daily-sales needs parameter customer: give it a value
parameters.region: pipeline daily-sales needs parameter region: give it a value
idempotencyKey: longer than 512 bytes`)
	want = `pipeline daily-sales needs parameter customer: give --param customer=VALUE; ` +
		`pipeline daily-sales needs parameter region: give --param region=VALUE; --idempotency-key: longer than 512 bytes`
	if got := pipelineRunFlagErrors(err); got != want {
		t.Errorf("pipeline run:\n%s\nwant\n%s", got, want)
	}
	err = errors.New(`from: 1969-12-30T00:00:00+01:00 is before 1970-01-01
to: the range holds fire times yet to come (the first at 2026-12-07T02:00:00+01:00); backfill up to now, the schedule fires the others
tomorrow: left as it is`)
	want = `--from: 1969-12-30T00:00:00+01:00 is before 1970-01-01; ` +
		`--to: the range holds fire times yet to come (the first at 2026-12-07T02:00:00+01:00); backfill up to now, the schedule fires the others; ` +
		`tomorrow: left as it is`
	if got := backfillFlagErrors(err); got != want {
		t.Errorf("backfill:\n%s\nwant\n%s", got, want)
	}
}

// TestScheduleCreateNamesTheCronStep: a step larger than its field's
// range, which the cron library took as the field's first value, is
// refused by the server as the task schedule's pipeline's schedule.cron;
// schedule create names --cron and the bad part.
func TestScheduleCreateNamesTheCronStep(t *testing.T) {
	sched := jobs.Schedule{Cron: "*/61 * * * *"}
	p := &jobs.Pipeline{Name: "cleanup", Kind: jobs.KindTask, Schedule: &sched,
		Stages: []jobs.Stage{{Name: "cleanup", TaskDefinition: json.RawMessage(`"cleanup"`)}}}
	err := p.Validate()
	if err == nil {
		t.Fatal("*/61 in the minute field accepted")
	}
	want := `--cron: "*/61 * * * *": minute field "*/61": step 61 is larger than the field's range 0-59: it would match 0 alone (write 0 for that, or a step up to 59)`
	if got := scheduleFlagErrors(err); got != want {
		t.Errorf("schedule create:\n%s\nwant\n%s", got, want)
	}
}

// TestScheduleCreateNamesTheMisfire: schedule create names --misfire and
// the values it takes, and refuses runAll with Forbid, which would skip
// all but one run of a catch-up.
func TestScheduleCreateNamesTheMisfire(t *testing.T) {
	for _, tc := range []struct {
		sched jobs.Schedule
		want  string
	}{
		{jobs.Schedule{Cron: "@hourly", Misfire: "catchup"}, `--misfire: "catchup": want skip, runOnce or runAll`},
		{jobs.Schedule{Cron: "@hourly", Misfire: jobs.MisfireRunAll, ConcurrencyPolicy: jobs.ConcurrencyForbid},
			"--misfire: runAll: concurrencyPolicy Forbid would skip or stop all but one run of a catch-up; " +
				"use concurrencyPolicy Allow (a pipeline's maxActiveRuns: 1 runs them one at a time), or misfire runOnce"},
	} {
		p := &jobs.Pipeline{Name: "cleanup", Kind: jobs.KindTask, Schedule: &tc.sched,
			Stages: []jobs.Stage{{Name: "cleanup", TaskDefinition: json.RawMessage(`"cleanup"`)}}}
		err := p.Validate()
		if err == nil {
			t.Fatalf("%+v accepted", tc.sched)
		}
		if got := scheduleFlagErrors(err); got != tc.want {
			t.Errorf("schedule create:\n%s\nwant\n%s", got, tc.want)
		}
	}
}

// TestScheduleCreateNamesTheEventBridgeCron: an EventBridge expression
// given to schedule create is refused naming --cron and what to write,
// where its six fields, year last, would have parsed with seconds first.
func TestScheduleCreateNamesTheEventBridgeCron(t *testing.T) {
	for expr, want := range map[string]string{
		"0 2 * * ? *": `--cron: "0 2 * * ? *" is an EventBridge cron (minute hour day-of-month month day-of-week year), ` +
			`which gantry would read with seconds first: write "0 2 * * ?"`,
		"rate(5 minutes)": `--cron: "rate(5 minutes)" is EventBridge's rate(): write "@every 5m"`,
	} {
		sched := jobs.Schedule{Cron: expr}
		p := &jobs.Pipeline{Name: "cleanup", Kind: jobs.KindTask, Schedule: &sched,
			Stages: []jobs.Stage{{Name: "cleanup", TaskDefinition: json.RawMessage(`"cleanup"`)}}}
		err := p.Validate()
		if err == nil {
			t.Fatalf("%q accepted", expr)
		}
		if got := scheduleFlagErrors(err); got != want {
			t.Errorf("schedule create:\n%s\nwant\n%s", got, want)
		}
	}
}
