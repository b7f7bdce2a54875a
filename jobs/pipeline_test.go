package jobs

import (
	"encoding/json"
	"github.com/robfig/cron/v3"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"testing"
	"time"
)

const samplePipeline = `
name: daily-sales
parameters: {day: 2026-01-01, rows: 100}
schedule: {cron: "0 2 * * *", timezone: Europe/Paris, concurrencyPolicy: Forbid,
           startingDeadlineSeconds: 3600, misfire: runOnce, suspend: false}
stages:
  - name: extract
    taskDefinition: extract-sales:3
    arraySize: 3
    overrides: {containerOverrides: [{name: main, environment: [{name: DAY, value: "${day}"}]}]}
    retryStrategy: {attempts: 3}
    timeoutSeconds: 600
  - name: transform
    taskDefinition:
      family: transform
      containerDefinitions:
        - name: main
          image: gantry/samples
          command: [gantry-etl, transform, --day, "Ref::day", --rows, "${rows}"]
    dependsOn: [extract]
  - name: alert
    taskDefinition: notify
    dependsOn: [{stage: transform, condition: failure}]
`

// TestParameterScalarsAsWritten: a parameter's value is the text of the
// file, whatever YAML would read it as.
func TestParameterScalarsAsWritten(t *testing.T) {
	p, err := ParsePipeline([]byte("name: p\nparameters: {zip: 02134, ver: 1.10, hex: 0x1F, half: .5, big: 1e3, neg: -7, on: true, inf: .inf}\n" +
		"stages: [{name: a, taskDefinition: t, arraySize: 3}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Params{"zip": "02134", "ver": "1.10", "hex": "0x1F", "half": ".5", "big": "1e3", "neg": "-7", "on": "true", "inf": ".inf"}
	if !maps.Equal(p.Parameters.Defaults(), want) {
		t.Fatalf("parameters %v, want %v", p.Parameters, want)
	}
	if p.Stages[0].ArraySize != Fixed(3) {
		t.Fatalf("arraySize %v", p.Stages[0].ArraySize)
	}
	// Elsewhere numbers are numbers, however written.
	for _, v := range []string{"3.0", "0x3", "+3", "3"} {
		p, err := ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, arraySize: " + v + "}]\n"))
		if err != nil || p.Stages[0].ArraySize != Fixed(3) {
			t.Fatalf("arraySize: %s: %v", v, err)
		}
	}
}

func TestParsePipeline(t *testing.T) {
	p, err := ParsePipeline([]byte(samplePipeline))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "daily-sales" || len(p.Stages) != 3 || p.Parameters["day"].Default != "2026-01-01" || p.Parameters["rows"].Default != "100" {
		t.Fatalf("parsed %+v", p)
	}
	if p.Schedule == nil || p.Schedule.Timezone != "Europe/Paris" || p.Schedule.StartingDeadlineSeconds != 3600 {
		t.Fatalf("schedule %+v", p.Schedule)
	}
	if d := p.Stages[1].DependsOn; len(d) != 1 || d[0] != (Dependency{Stage: "extract", Condition: CondSuccess}) {
		t.Fatalf("transform dependsOn %+v", d)
	}
	if d := p.Stages[2].DependsOn; d[0].Condition != CondFailure {
		t.Fatalf("alert dependsOn %+v", d)
	}
	if got := p.Order(); !slices.Equal(got, []string{"extract", "transform", "alert"}) {
		t.Fatalf("order %v", got)
	}
	// JSON with the same keys is accepted and gives the same pipeline.
	js, _ := json.Marshal(p)
	p2, err := ParsePipeline(js)
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := json.Marshal(p2)
	if string(js) != string(js2) {
		t.Fatalf("JSON round trip differs:\n%s\n%s", js, js2)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	src := `
name: bad name
parameters: {day: x, "9lives": y}
schedule: {cron: "every day", timezone: Mars/Olympus, concurrencyPolicy: Sometimes, misfire: later}
stages:
  - name: a
    taskDefinition: t
    dependsOn: [c, ghost]
    arraySize: -1
  - name: b
    taskDefinition: t
    dependsOn: [a]
    overrides: {containerOverrides: [{name: main, command: ["${nope}", "Ref::nope2"], environment: [{name: E, value: "Ref::env"}]}]}
  - name: c
    taskDefinition: "t:zero"
    dependsOn: [{stage: b, condition: sometimes}]
  - name: a
    taskDefinition: t
    retryStrategy: {attempts: 11}
`
	_, err := ParsePipeline([]byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`name: "bad name"`,
		`parameters.9lives`,
		`schedule.cron: "every day"`,
		`schedule.timezone: "Mars/Olympus"`,
		`schedule.concurrencyPolicy`,
		`schedule.misfire`,
		`stages[0](a).dependsOn[1].stage: no stage "ghost"`,
		`stages[0](a).arraySize`,
		`stages[1](b).overrides.containerOverrides[0].command[0]: unknown parameter ${nope}: declare it under parameters, or write $${nope} for a literal ${nope}`,
		`stages[1](b).overrides.containerOverrides[0].command[1]: unknown parameter Ref::nope2: declare it under parameters`,
		`stages[2](c).taskDefinition`,
		`stages[2](c).dependsOn[0].condition: "sometimes"`,
		`stages[3].name: "a" is used twice`,
		`retryStrategy.attempts`,
		`dependency cycle: a -> b -> c -> a`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// Ref::name is a parameter in commands only, as in AWS Batch.
	if strings.Contains(msg, "Ref::env") {
		t.Errorf("an environment value's Ref:: taken for a parameter:\n%s", msg)
	}
}

// TestInlineRefToAnUnknownParameter: an inline definition's Ref::name, as
// its ${name}, must name a declared parameter; it ran as written.
func TestInlineRefToAnUnknownParameter(t *testing.T) {
	src := "name: p\nparameters: {day: x}\nstages: [{name: a, taskDefinition: {family: f, containerDefinitions: " +
		"[{name: m, image: i, command: [run, 'Ref::day', 'Ref::days', '${Ref::day}', 'Ref::9']}]}}]\n"
	_, err := ParsePipeline([]byte(src))
	want := "stages[0](a).taskDefinition.containerDefinitions[0].command[2]: unknown parameter Ref::days: declare it under parameters"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

// TestRegisteredRefs: a registered definition's Ref::name references are
// filled in its commands only, its ${...} left to the shell; those to
// undeclared parameters are reported as an inline definition's are,
// unless the stage overrides the command.
func TestRegisteredRefs(t *testing.T) {
	td := TaskDefinition{Family: "f", Revision: 2, ContainerDefinitions: []ContainerDefinition{
		{Name: "a", Image: "i", Command: []string{"sh", "-c", "echo Ref::day ${day} $${x} Ref::other", "${Ref::day}"},
			Environment: []KeyValue{{"D", "Ref::day"}}},
		{Name: "b", Image: "i", Command: []string{"Ref::gone"}},
	}}
	got := SubstituteRefs(td, map[string]string{"day": "D"})
	if want := []string{"sh", "-c", "echo D ${day} $${x} Ref::other", "${D}"}; !slices.Equal(got.ContainerDefinitions[0].Command, want) {
		t.Errorf("command %q, want %q", got.ContainerDefinitions[0].Command, want)
	}
	if got.ContainerDefinitions[0].Environment[0].Value != "Ref::day" || td.ContainerDefinitions[0].Command[3] != "${Ref::day}" {
		t.Errorf("environment %v, the original's command %q", got.ContainerDefinitions[0].Environment, td.ContainerDefinitions[0].Command)
	}
	if got := SubstituteRefs(TaskDefinition{ContainerDefinitions: []ContainerDefinition{{Name: "a"}}}, nil); got.ContainerDefinitions[0].Command != nil {
		t.Errorf("no command became %q", got.ContainerDefinitions[0].Command)
	}

	p := &Pipeline{Name: "p", Parameters: ParamDecls{"day": {Default: "x"}}, Stages: []Stage{{Name: "s"},
		{Name: "t", Overrides: &Overrides{ContainerOverrides: []ContainerOverride{{Name: "b", Command: []string{"true"}}}}}}}
	err := p.CheckRegisteredRefs(0, &td)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	for _, want := range []string{
		"stages[0](s).taskDefinition(f:2).containerDefinitions[0].command[2]: unknown parameter Ref::other: declare it under parameters",
		"stages[0](s).taskDefinition(f:2).containerDefinitions[1].command[0]: unknown parameter Ref::gone",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 2 {
		t.Errorf("%d problems, want 2:\n%s", n, msg)
	}
	err = p.CheckRegisteredRefs(1, &td)
	if err == nil || strings.Contains(err.Error(), "Ref::gone") || !strings.Contains(err.Error(), "stages[1](t)") {
		t.Errorf("stage overriding b's command: %v", err)
	}
}

func TestParsePipelineRejects(t *testing.T) {
	tests := map[string]string{
		"empty":         "",
		"not a mapping": "- a\n- b\n",
		"unknown field": "name: p\nstages: [{name: a, taskDefinition: t}]\nbogus: 1\n",
		"bad yaml":      "name: [\n",
		"no stages":     "name: p\n",
		"self":          "name: p\nstages: [{name: a, taskDefinition: t, dependsOn: [a]}]\n",
		"param object":  "name: p\nparameters: {a: {b: c}}\nstages: [{name: a, taskDefinition: t}]\n",
		"alias":         "name: &n p\nstages: [{name: *n, taskDefinition: t}]\n",
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParsePipeline([]byte(src)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestNextStartsAndSkips(t *testing.T) {
	p := &Pipeline{Name: "p", Stages: []Stage{
		{Name: "extract"},
		{Name: "transform", DependsOn: []Dependency{{Stage: "extract", Condition: CondSuccess}}},
		{Name: "load", DependsOn: []Dependency{{Stage: "transform", Condition: CondSuccess}}},
		{Name: "alert", DependsOn: []Dependency{{Stage: "transform", Condition: CondFailure}}},
		{Name: "cleanup", DependsOn: []Dependency{{Stage: "load", Condition: CondComplete}, {Stage: "alert", Condition: CondComplete}}},
	}}
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
	if got := settle(); !slices.Equal(got, []string{"extract"}) {
		t.Fatalf("first %v", got)
	}
	st["extract"] = StatusSucceeded
	if got := settle(); !slices.Equal(got, []string{"transform"}) {
		t.Fatalf("after extract %v", got)
	}
	st["transform"] = StatusFailed
	if got := settle(); !slices.Equal(got, []string{"alert"}) || st["load"] != StatusSkipped {
		t.Fatalf("after transform failed: started %v, load %s", got, st["load"])
	}
	st["alert"] = StatusSucceeded
	if got := settle(); !slices.Equal(got, []string{"cleanup"}) {
		t.Fatalf("cleanup after skipped load and done alert: %v", got)
	}
}

func TestConditionHolds(t *testing.T) {
	tests := []struct {
		c    Condition
		s    Status
		want bool
	}{
		{CondSuccess, StatusSucceeded, true}, {CondSuccess, StatusFailed, false}, {CondSuccess, StatusSkipped, false},
		{CondFailure, StatusFailed, true}, {CondFailure, StatusSucceeded, false}, {CondFailure, StatusCanceled, false},
		{CondComplete, StatusFailed, true}, {CondComplete, StatusSkipped, true}, {CondComplete, StatusCanceled, true},
	}
	for _, tt := range tests {
		if got := tt.c.Holds(tt.s); got != tt.want {
			t.Errorf("%s.Holds(%s) = %v", tt.c, tt.s, got)
		}
	}
}

func TestSubstitute(t *testing.T) {
	params := map[string]string{"day": "2026-11-24", "n": "3"}
	tests := []struct {
		in, want string
		refs     bool
		missing  []string
	}{
		{"--day=${day}", "--day=2026-11-24", false, nil},
		{"${day}/${n}/${day}", "2026-11-24/3/2026-11-24", false, nil},
		{"Ref::day", "2026-11-24", true, nil},
		{"Ref::day", "Ref::day", false, nil},
		{"Ref::other", "Ref::other", true, nil},
		{"$${day}", "${day}", false, nil},
		{"${x} ${x}", "${x} ${x}", false, []string{"x"}},
		{"${unclosed", "${unclosed", false, nil},
		{"${not valid}", "${not valid}", false, nil},
		{"plain", "plain", true, nil},
	}
	for _, tt := range tests {
		got, missing := Substitute(tt.in, params, tt.refs)
		if got != tt.want || !slices.Equal(missing, tt.missing) {
			t.Errorf("Substitute(%q, refs=%v) = %q %v, want %q %v", tt.in, tt.refs, got, missing, tt.want, tt.missing)
		}
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[[2]string]string{{"transform", "TOTAL"}: "TRANSFORM_TOTAL", {"load-db", "rows.n"}: "LOAD_DB_ROWS_N"} {
		if got := EnvName(in[0], in[1]); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOverrideWithoutNameAppliesToEveryContainer(t *testing.T) {
	td := TaskDefinition{Family: "f", ContainerDefinitions: []ContainerDefinition{{Name: "a", Image: "i"}, {Name: "b", Image: "i"}}}
	out, err := td.WithOverrides(&Overrides{ContainerOverrides: []ContainerOverride{{Environment: []KeyValue{{"K", "V"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range out.ContainerDefinitions {
		if len(c.Environment) != 1 || c.Environment[0].Value != "V" {
			t.Fatalf("container %s env %+v", c.Name, c.Environment)
		}
	}
	if _, err := td.WithOverrides(&Overrides{ContainerOverrides: []ContainerOverride{{Command: []string{"x"}}}}); err == nil {
		t.Fatal("a nameless command over two containers was accepted")
	}
}

func TestScheduleNextAcrossDST(t *testing.T) {
	s := &Schedule{Cron: "30 2 * * *", Timezone: "Europe/Paris"}
	paris, _ := time.LoadLocation("Europe/Paris")
	// 2026-03-29: clocks go from 02:00 to 03:00 in Paris; 02:30 does not exist.
	got, err := s.Next(time.Date(2026, 3, 28, 12, 0, 0, 0, paris))
	if err != nil {
		t.Fatal(err)
	}
	// It fires at the change, 03:00, as cron does, not a day later.
	if want := time.Date(2026, 3, 29, 3, 0, 0, 0, paris); !got.Equal(want) {
		t.Fatalf("next = %s, want %s", got.In(paris), want)
	}
	d, _ := s.Next(got)
	if want := time.Date(2026, 3, 30, 2, 30, 0, 0, paris); !d.Equal(want) {
		t.Fatalf("after the change: next = %s, want %s", d.In(paris), want)
	}
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cron, zone string
		from, want time.Time
	}{
		// A weekly job on the Sunday of the change does not lose a week.
		{"15 2 * * 0", "Europe/Paris", time.Date(2026, 3, 28, 12, 0, 0, 0, paris), time.Date(2026, 3, 29, 3, 0, 0, 0, paris)},
		// Midnight does not exist in Santiago on 2026-09-06.
		{"0 0 * * *", "America/Santiago", time.Date(2026, 9, 5, 12, 0, 0, 0, santiago), time.Date(2026, 9, 6, 1, 0, 0, 0, santiago)},
		// An hourly job skips the missing hour, as it runs twice in the
		// hour repeated in autumn.
		{"30 * * * *", "Europe/Paris", time.Date(2026, 3, 29, 1, 30, 0, 0, paris), time.Date(2026, 3, 29, 3, 30, 0, 0, paris)},
		// Twice in the missing hour: once at the change.
		{"*/30 2 * * *", "Europe/Paris", time.Date(2026, 3, 28, 12, 0, 0, 0, paris), time.Date(2026, 3, 29, 3, 0, 0, 0, paris)},
		// A time that exists is untouched by a change before it.
		{"0 4 * * *", "Europe/Paris", time.Date(2026, 3, 28, 12, 0, 0, 0, paris), time.Date(2026, 3, 29, 4, 0, 0, 0, paris)},
		// A yearly job whose day is the change's, months away.
		{"30 2 29 3 *", "Europe/Paris", time.Date(2025, 12, 1, 0, 0, 0, 0, paris), time.Date(2026, 3, 29, 3, 0, 0, 0, paris)},
	} {
		got, err := (&Schedule{Cron: c.cron, Timezone: c.zone}).Next(c.from)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(c.want) {
			t.Errorf("%q in %s after %s: next = %s, want %s", c.cron, c.zone, c.from, got.In(c.want.Location()), c.want)
		}
	}
	// Autumn: 02:30 happens twice on 2026-10-25 and fires once.
	first, _ := s.Next(time.Date(2026, 10, 24, 12, 0, 0, 0, paris))
	second, _ := s.Next(first)
	if second.Sub(first) < 20*time.Hour {
		t.Fatalf("fires twice around the autumn change: %s then %s", first, second)
	}
	if err := (&Schedule{Cron: "@every 10m"}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (&Schedule{Cron: "*/5 * * * * *"}).Validate(); err != nil {
		t.Fatalf("seconds field: %v", err)
	}
}

// TestScheduleNextAcrossHalfHourDST: Lord Howe Island moves its clocks by
// half an hour (02:00 → 02:30 on 2026-10-04, 02:00 → 01:30 on 2026-04-05).
// The cron library's daylight-saving adjustment moves times by a whole
// hour, which fired a daily 01:45 twice on the spring day (01:45 and 02:45).
func TestScheduleNextAcrossHalfHourDST(t *testing.T) {
	lh, err := time.LoadLocation("Australia/Lord_Howe")
	if err != nil {
		t.Fatal(err)
	}
	at := func(mon time.Month, d, h, m int, offMin int) time.Time {
		return time.Date(2026, mon, d, h, m, 0, 0, time.FixedZone("", offMin*60))
	}
	for _, c := range []struct {
		cron string
		from time.Time
		want []time.Time
	}{
		// Spring: once a day, at 01:45, before the change.
		{"45 1 * * *", time.Date(2026, 10, 3, 12, 0, 0, 0, lh),
			[]time.Time{at(10, 4, 1, 45, 630), at(10, 5, 1, 45, 660), at(10, 6, 1, 45, 660)}},
		// A time in the gap fires at the change, 02:30.
		{"15 2 * * *", time.Date(2026, 10, 3, 12, 0, 0, 0, lh),
			[]time.Time{at(10, 4, 2, 30, 660), at(10, 5, 2, 15, 660)}},
		// Hourly at :30: 02:30 is the change itself.
		{"30 * * * *", time.Date(2026, 10, 4, 0, 0, 0, 0, lh),
			[]time.Time{at(10, 4, 0, 30, 630), at(10, 4, 1, 30, 630), at(10, 4, 2, 30, 660), at(10, 4, 3, 30, 660)}},
		// Autumn: 01:45 happens twice and fires once.
		{"45 1 * * *", time.Date(2026, 4, 4, 12, 0, 0, 0, lh),
			[]time.Time{at(4, 5, 1, 45, 660), at(4, 6, 1, 45, 630)}},
		// Every 20 minutes runs by the clock, in both 01:40s.
		{"*/20 * * * *", at(4, 5, 1, 30, 660),
			[]time.Time{at(4, 5, 1, 40, 660), at(4, 5, 1, 40, 630), at(4, 5, 2, 0, 630)}},
	} {
		s := &Schedule{Cron: c.cron, Timezone: "Australia/Lord_Howe"}
		from := c.from
		for i, want := range c.want {
			got, err := s.Next(from)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want) {
				t.Errorf("%q, fire %d after %s: %s, want %s", c.cron, i+1, from.In(lh), got.In(lh), want.In(lh))
				break
			}
			from = got
		}
	}
}

// FuzzScheduleNext: whatever the expression, zone and time, the next fire
// is after the time asked and either a wall time the expression names or
// the instant of a change of clocks (a fire moved out of its gap).
func FuzzScheduleNext(f *testing.F) {
	f.Add("45 1 * * *", uint8(0), int64(1791000000))
	f.Add("*/7 */3 * * *", uint8(3), int64(1775300000))
	f.Add("@daily", uint8(5), int64(0))
	f.Add("*/61 * * * *", uint8(5), int64(0))
	f.Add("*/30 */59 * * * *", uint8(1), int64(1775300000))
	f.Add("TZ=UTC", uint8(0), int64(0))
	zones := []string{"Australia/Lord_Howe", "America/New_York", "Europe/Paris", "America/Santiago", "Asia/Kathmandu", "UTC"}
	f.Fuzz(func(t *testing.T, expr string, zone uint8, unix int64) {
		s := &Schedule{Cron: expr, Timezone: zones[int(zone)%len(zones)]}
		if s.Validate() != nil {
			return
		}
		spec, err := parseCron(expr)
		if err != nil {
			t.Fatalf("valid %q does not parse: %v", expr, err)
		}
		from := time.Unix(unix%(4<<30), 0)
		got, err := s.Next(from)
		if err != nil {
			t.Fatal(err)
		}
		if got.IsZero() {
			return
		}
		if !got.After(from) {
			t.Fatalf("%q in %s after %s: %s is not after", expr, s.Timezone, from, got)
		}
		sp, ok := spec.(*cron.SpecSchedule)
		if ok {
			everyStepSteps(t, expr, sp)
		}
		if !ok || wallMatches(sp, got) {
			return
		}
		if start, _ := got.ZoneBounds(); !start.Equal(got) {
			t.Fatalf("%q in %s after %s: %s is neither a time it names nor a change of clocks", expr, s.Timezone, from.In(got.Location()), got)
		}
	})
}

// everyStepSteps fails t when a field of a valid expr steps over its
// whole range ("*/N") yet matches one value: a step larger than the range,
// which the cron library takes as the first value alone.
func everyStepSteps(t *testing.T, expr string, sp *cron.SpecSchedule) {
	t.Helper()
	fields := strings.Fields(expr)
	matched := []uint64{sp.Minute, sp.Hour, sp.Dom, sp.Month, sp.Dow}
	if len(fields) == 6 {
		matched = append([]uint64{sp.Second}, matched...)
	}
	if len(fields) != len(matched) {
		return
	}
	for i, f := range fields {
		for part := range strings.SplitSeq(f, ",") {
			if span, _, ok := strings.Cut(part, "/"); ok && (span == "*" || span == "?") {
				const star = 1 << 63 // the library's mark of "*"
				if n := bits.OnesCount64(matched[i] &^ star); n < 2 {
					t.Fatalf("valid %q: field %q matches %d value(s): its step is larger than its range", expr, f, n)
				}
			}
		}
	}
}

// TestScheduleValidateRefusesStepsLargerThanTheirField: the cron library
// takes "*/61" in the minute field as minute 0 alone; every such step is
// refused, naming the field and the part, with what it would have meant.
func TestScheduleValidateRefusesStepsLargerThanTheirField(t *testing.T) {
	for expr, want := range map[string][]string{
		"*/61 * * * *":      {`cron: "*/61 * * * *": minute field "*/61": step 61 is larger than the field's range 0-59: it would match 0 alone (write 0 for that, or a step up to 59)`},
		"*/60 * * * *":      {`minute field "*/60": step 60`},
		"0 5/24 * * *":      {`hour field "5/24": step 24 is larger than the field's range 0-23: it would match 5 alone`},
		"0 0 */31 * *":      {`day of month field "*/31": step 31 is larger than the field's range 1-31: it would match 1 alone`},
		"0 0 1 1-12/12 *":   {`month field "1-12/12"`},
		"0 0 * * MON-FRI/7": {`day of week field "MON-FRI/7": step 7 is larger than the field's range 0-6: it would match MON alone`},
		// Seconds first, and every bad step told at once.
		"*/90 1,*/70 * * * *": {`second field "*/90"`, `minute field "*/70"`},
	} {
		err := (&Schedule{Cron: expr}).Validate()
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want an error saying %q", expr, err, w)
			}
		}
	}
	for _, expr := range []string{"*/59 * * * *", "*/5 * * * *", "0 */23 * * *", "0 0 */30 * *", "0 0 1 */11 *", "0 0 * * */6", "30/15 * * * *", "@every 61m", "@hourly"} {
		if err := (&Schedule{Cron: expr}).Validate(); err != nil {
			t.Errorf("%q: %v", expr, err)
		}
	}
	_, err := ParsePipeline([]byte("name: p\nschedule: {cron: '*/61 * * * *'}\nstages: [{name: a, taskDefinition: t}]\n"))
	if err == nil || !strings.Contains(err.Error(), `schedule.cron: "*/61 * * * *": minute field "*/61": step 61`) {
		t.Errorf("pipeline file: %v, want schedule.cron named", err)
	}
}

// TestScheduleValidateZoneWithoutFields: the cron library slices a
// leading TZ= up to the first space, and panicked on one without a space:
// a schedule create or pipeline apply of cron "TZ=UTC" took the server
// down. It is refused as any other TZ=, naming the field.
func TestScheduleValidateZoneWithoutFields(t *testing.T) {
	for _, expr := range []string{"TZ=", "TZ=UTC", "CRON_TZ=Europe/Paris", "TZ=UTC\t0 2 * * *"} {
		err := (&Schedule{Cron: expr}).Validate()
		if err == nil || !strings.Contains(err.Error(), "cron: set the zone with timezone, not TZ= in the expression") {
			t.Errorf("%q: %v, want it refused naming cron and timezone", expr, err)
		}
		if _, err := (&Schedule{Cron: expr}).Next(time.Now()); err == nil {
			t.Errorf("%q: Next found a time", expr)
		}
	}
	_, err := ParsePipeline([]byte("name: p\nschedule: {cron: 'TZ=UTC'}\nstages: [{name: a, taskDefinition: t}]\n"))
	if err == nil || !strings.Contains(err.Error(), `schedule.cron: "TZ=UTC": a time zone and no fields`) {
		t.Errorf("pipeline file: %v, want schedule.cron refused", err)
	}
}

// TestScheduleValidateRejectsSchedulesThatCannotFireAsWritten: the cron
// library turns an @every delay under a second (negative too) into one
// second, and finds no fire time of a date that does not exist; both were
// accepted, to fire every second or never.
func TestScheduleValidateRejectsSchedulesThatCannotFireAsWritten(t *testing.T) {
	for expr, want := range map[string]string{
		"@every -5m":   "the delay must be at least 1s",
		"@every 0s":    "the delay must be at least 1s",
		"@every 500ms": "the delay must be at least 1s",
		"0 0 30 2 *":   "never fires",
		"0 0 31 4,6 *": "never fires",
	} {
		err := (&Schedule{Cron: expr}).Validate()
		if err == nil || !strings.Contains(err.Error(), "cron: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error saying %q", expr, err, want)
		}
	}
	for _, expr := range []string{"@every 1s", "@every 1h30m", "0 0 29 2 *", "0 0 31 * *", "@yearly"} {
		if err := (&Schedule{Cron: expr}).Validate(); err != nil {
			t.Errorf("%q: %v", expr, err)
		}
	}
}

func FuzzParsePipeline(f *testing.F) {
	f.Add([]byte(samplePipeline))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","dependsOn":["b"]},{"name":"b","taskDefinition":"t","dependsOn":[{"stage":"a"}]}]}`))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: {family: f, containerDefinitions: [{name: m, image: i}]}}]\n"))
	f.Add([]byte("name: p\nparameters: {d: x}\nstages: [{name: a, taskDefinition: {family: f, containerDefinitions: [{name: m, image: i, command: ['Ref::d', '${Ref::e}']}]}," +
		" overrides: {containerOverrides: [{name: m, command: ['a-Ref::d-b']}]}}]\n"))
	f.Add([]byte("name: p\npriority: low\nstages: [{name: a, taskDefinition: t, priority: high}, {name: b, taskDefinition: t, priority: urgent}]\n"))
	f.Add([]byte("name: p\ntimeoutSeconds: 7200\nstages: [{name: a, taskDefinition: t, timeoutSeconds: 60}]\n"))
	f.Add([]byte("name: p\ntimeoutSeconds: -1\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte(`{"name":"p","timeoutSeconds":1576800001,"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte("name: p\ntags: {team: data}\nstages: [{name: a, taskDefinition: t, tags: [{key: tier, value: gold}]}]\n"))
	f.Add([]byte(`{"name":"p","tags":[{"key":"gantry:x"}],"stages":[{"name":"a","taskDefinition":"t","tags":"team=data"}]}`))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t, skipOnExitCode: 99}, {name: b, taskDefinition: t, dependsOn: [a], skipOnExitCode: [99, 100]}]\n"))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t, skipOnExitCode: [0, 256, -1, 99, 99, 1.5, '7']}]\n"))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","skipOnExitCode":[1e2,255,null]}]}`))
	f.Add([]byte(`{"name":"p","tags":3,"stages":[{"name":"a","taskDefinition":"t","tags":[["team","x"]]}]}`))
	f.Add([]byte(`{"name":"p","tags":3,"stages":{"a":1}}`)) // tags of neither shape, and stages no list to find others in
	f.Add([]byte("name: p\ntimeoutSecond: 1\nstages: [{name: a, taskDefinition: t, retryStrategy: {attemps: 2}}, {Name: b, TaskDefinition: t}]\n"))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t, arraySize: 3, pool: warehouse}, {name: b, taskDefinition: t, pool: 'a b'}]\n"))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","pool":["x"]}]}`))
	f.Add([]byte("name: p\npropagateTags: TASK_DEFINITION\nstages: [{name: a, taskDefinition: t, propagateTags: NONE}, {name: b, taskDefinition: t, propagateTags: service}]\n"))
	f.Add([]byte("name: p\nmaxActiveRuns: 2\nschedule: {cron: '@hourly', concurrencyPolicy: Replace}\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte("name: p\nmaxActiveRuns: 0\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte("name: p\nparameters: {day: x}\nschedule: {cron: '0 2 * * *', timezone: Europe/Paris, dateParameter: day, dateOffsetDays: -1}\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte(`{"name":"p","schedule":{"cron":"@daily","dateParameter":"dy","dateOffsetDays":400},"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte("name: p\nmaxActiveRuns: 1\nschedule: {cron: '@hourly', misfire: runAll}\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte(`{"name":"p","schedule":{"cron":"@hourly","misfire":"runAll","concurrencyPolicy":"Forbid"},"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte(`{"name":"p","maxActiveRuns":-1,"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte(`{"name":"p","maxActiveRuns":"1","stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte(`{"name":"p","maxActiveRuns":null,"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte("name: p\ndependsOnPast: true\nmaxActiveRuns: 2\nschedule: {cron: '@daily', misfire: runAll}\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte("name: p\ndependsOnPast: yes\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte(`{"name":"p","dependsOnPast":"true","DependsOnPast":1,"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte(`{"name":"p","dependsOnPast":null,"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Add([]byte("name: p\nstages: [{name: x, taskDefinition: t}, {name: a, taskDefinition: t, dependsOn: [x]}, {name: b, taskDefinition: t, dependsOn: [a], arraySize: {fromOutput: x.FILES}}]\n"))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, arraySize: {fromOutput: a.N}}, {name: c, taskDefinition: t, dependsOn: [b], arraySize: {fromOutput: c.N}}]\n"))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t"},{"name":"b","taskDefinition":"t","dependsOn":["a"],"arraySize":{"fromOutput":"a"}},{"name":"c","taskDefinition":"t","arraySize":"3"}]}`))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","arraySize":{"fromOutput":"ghost.K=1","from":1}},{"name":"b","taskDefinition":"t","arraySize":[1]}]}`))
	f.Add([]byte(branchingPipeline))
	f.Add([]byte("name: p\nconstraints: [!spot, disk=ssd]\nstages: [{name: a, taskDefinition: t, constraints: [gpu, !gpu]}]\n"))
	f.Add([]byte("name: p\nstages:\n  - name: a\n    taskDefinition: !t t\n    constraints:\n      - !spot\n"))
	f.Add([]byte("name: p\nparameters: {m: a}\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a], when: [{output: a.K, in: [1, x]}, {param: m, notEquals: b}]}]\n"))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","when":{"output":"a.K","equal":"x"}},{"name":"b","taskDefinition":"t","when":{"param":"z","in":"x"}}]}`))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t, when: []}, {name: b, taskDefinition: t, when: {param: m, equals: x, notIn: [y]}}]\n"))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a]}, {name: n, taskDefinition: t, dependsOn: [b], triggerRule: oneFailed}," +
		" {name: c, taskDefinition: t, dependsOn: [a, n], triggerRule: allDone}]\n"))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t, triggerRule: noneFailed}, {name: b, taskDefinition: t, dependsOn: [{stage: a, condition: failure}], triggerRule: one_failed}]\n"))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t"},{"name":"b","taskDefinition":"t","dependsOn":[{"stage":"a","condition":"success"}],"triggerRule":"noneFailedMinOneSuccess"},{"name":"c","taskDefinition":"t","dependsOn":["a"],"triggerRule":["allFailed"]}]}`))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t"},{"name":"b","taskDefinition":"t","dependsOn":["a"],"triggerRule":null},{"name":"c","taskDefinition":"t","dependsOn":["b"],"TriggerRule":"oneSuccess"}]}`))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a]}, {name: c, taskDefinition: t, dependsOn: [a, b], triggerRule: oneSuccess," +
		" arraySize: {fromOutput: b.N}, when: {output: a.M, equals: x}}, {name: d, taskDefinition: t, dependsOn: [b], triggerRule: oneFailed, when: {output: a.M, in: [x]}}]\n"))
	f.Add([]byte(arrayPipeline))
	f.Add([]byte("name: p\nstages: [{name: a, taskDefinition: t, arrayOrder: sequential}, {name: b, taskDefinition: t, arraySize: 2, arrayOrder: serial, dependsOn: [{stage: a, type: N_TO_N, condition: complete}]}]\n"))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","arraySize":2},{"name":"b","taskDefinition":"t","arraySize":3,"dependsOn":[{"stage":"a","type":"SEQUENTIAL"},{"stage":"a","type":"N_TO_N"}]}]}`))
	f.Add([]byte(`{"name":"p","stages":[{"name":"a","taskDefinition":"t","arraySize":{"fromOutput":"a.N"},"arrayOrder":3,"dependsOn":[{"stage":"a","type":1}]}]}`))
	f.Add([]byte("name: p\nparameters: {customer: {required: true}, day: null, n: 3}\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte("name: p\nparameters: {c: {required: false}, d: {requird: true, x: 1}, e: {}, f: [1]}\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte("name: p\nparameters: {c: {required: true}, day: {required: true}}\nschedule: {cron: '@daily', dateParameter: day}\nstages: [{name: a, taskDefinition: t}]\n"))
	f.Add([]byte(`{"name":"p","parameters":{"c":{"required":"true"}},"stages":[{"name":"a","taskDefinition":"t"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePipeline(data)
		if err != nil {
			return
		}
		// An accepted schedule sets every required parameter: its runs
		// are never refused for want of one.
		if p.Schedule != nil {
			for _, k := range p.Parameters.RequiredNames() {
				if k != p.Schedule.DateParameter {
					t.Fatalf("accepted a schedule without required parameter %s", k)
				}
			}
		}
		// Its parameters read back from its JSON as they are.
		if js, err := json.Marshal(p.Parameters); err != nil {
			t.Fatal(err)
		} else {
			var back ParamDecls
			if err := json.Unmarshal(js, &back); err != nil || !maps.Equal(back, p.Parameters) {
				t.Fatalf("parameters %v read back as %v (%v)", p.Parameters, back, err)
			}
		}
		// An accepted when reads only upstream outputs and declared
		// parameters, each condition with one comparison.
		for _, st := range p.Stages {
			for _, c := range st.When.Conditions {
				if (c.Output == nil) == !c.hasParam || len(c.ops) != 1 || len(c.Values) == 0 {
					t.Fatalf("accepted stage %s when %+v", st.Name, c)
				}
				if c.Output != nil && (!p.upstreamOf(st.Name)[c.Output.Stage] || !validOutputKey(c.Output.Key)) {
					t.Fatalf("accepted stage %s when on %s", st.Name, c.Output)
				}
				if _, ok := p.Parameters[c.Param]; c.hasParam && !ok {
					t.Fatalf("accepted stage %s when on parameter %q", st.Name, c.Param)
				}
			}
		}
		for _, st := range p.Stages {
			if ref := st.ArraySize.From; ref != nil && (st.ArraySize.N != 0 || !p.upstreamOf(st.Name)[ref.Stage] || !validOutputKey(ref.Key)) {
				t.Fatalf("accepted stage %s arraySize %+v from %+v", st.Name, st.ArraySize, ref)
			}
			if st.ArraySize.N < 0 || st.ArraySize.N > MaxArraySize {
				t.Fatalf("accepted stage %s arraySize %d", st.Name, st.ArraySize.N)
			}
		}
		// An accepted trigger rule is known; one other than allSuccess
		// has dependencies, none with a condition of its own, and no
		// output it reads is of a dependency it may start without.
		for _, st := range p.Stages {
			refs := []*OutputRef{st.ArraySize.From}
			for _, c := range st.When.Conditions {
				refs = append(refs, c.Output)
			}
			for _, ref := range refs {
				if ref != nil && st.uncountedOutput(ref.Stage) != "" {
					t.Fatalf("accepted stage %s triggerRule %s reading %s", st.Name, st.TriggerRule, ref)
				}
			}
			if !st.TriggerRule.valid() {
				t.Fatalf("accepted stage %s triggerRule %q", st.Name, st.TriggerRule)
			}
			if st.TriggerRule.Plain() {
				continue
			}
			if len(st.DependsOn) == 0 {
				t.Fatalf("accepted stage %s triggerRule %s without dependencies", st.Name, st.TriggerRule)
			}
			for _, d := range st.DependsOn {
				if d.Condition != CondSuccess {
					t.Fatalf("accepted stage %s triggerRule %s over %s's condition %s", st.Name, st.TriggerRule, d.Stage, d.Condition)
				}
			}
		}
		for _, st := range p.Stages {
			// An accepted order or N_TO_N pairs array stages, of one
			// size when both are fixed, each child waiting on children
			// that exist.
			if st.ArrayOrder != "" && (!st.ArraySize.Array() || st.ArrayOrder != ArrayParallel && st.ArrayOrder != ArraySequential) {
				t.Fatalf("accepted stage %s arrayOrder %q (arraySize %v)", st.Name, st.ArrayOrder, st.ArraySize)
			}
			for _, d := range st.DependsOn {
				up := p.Stage(d.Stage)
				if d.Type != "" && (!d.NToN() || d.Condition != CondSuccess || !st.ArraySize.Array() || !up.ArraySize.Array() ||
					!st.ArraySize.Dynamic() && !up.ArraySize.Dynamic() && st.ArraySize.N != up.ArraySize.N) {
					t.Fatalf("accepted stage %s dependency %+v", st.Name, d)
				}
			}
			for _, w := range p.ChildWaits(st.Name, 1) {
				if p.Stage(w.Stage) == nil || w.Index < 0 {
					t.Fatalf("stage %s child 1 waits for %v", st.Name, w)
				}
			}
		}
		for _, st := range p.Stages {
			if st.Pool != "" && CheckPoolName("pool", st.Pool) != nil {
				t.Fatalf("accepted stage %s pool %q", st.Name, st.Pool)
			}
		}
		for _, st := range p.Stages {
			for i, c := range st.SkipOnExitCode {
				if c < 1 || c > 255 || slices.Index(st.SkipOnExitCode, c) != i {
					t.Fatalf("accepted stage %s skipOnExitCode %v", st.Name, st.SkipOnExitCode)
				}
			}
		}
		if !p.Priority.Valid() {
			t.Fatalf("accepted pipeline priority %q", p.Priority)
		}
		if p.TimeoutSeconds < 0 || p.TimeoutSeconds > MaxDurationSeconds {
			t.Fatalf("accepted pipeline timeoutSeconds %d", p.TimeoutSeconds)
		}
		if p.MaxActiveRuns != nil && *p.MaxActiveRuns < 1 {
			t.Fatalf("accepted pipeline maxActiveRuns %d", *p.MaxActiveRuns)
		}
		for _, st := range p.Stages {
			if !st.Priority.Valid() {
				t.Fatalf("accepted stage priority %q", st.Priority)
			}
			if v := (&PipelineRun{Spec: *p}).StagePropagateTags(&st); CheckPropagateTags("propagateTags", v) != nil {
				t.Fatalf("accepted stage %s propagateTags %q", st.Name, v)
			}
			if n := len((&PipelineRun{Spec: *p}).StageTags(&st)); n > MaxTags {
				t.Fatalf("accepted %d tags for stage %s", n, st.Name)
			}
		}
		// Every Ref::name of a valid pipeline's commands is declared.
		for _, st := range p.Stages {
			var cmds []string
			if inline, err := DecodeStoredTaskDefinition(st.TaskDefinition); err == nil {
				for _, c := range inline.ContainerDefinitions {
					cmds = append(cmds, c.Command...)
				}
			}
			if st.Overrides != nil {
				for _, co := range st.Overrides.ContainerOverrides {
					cmds = append(cmds, co.Command...)
				}
			}
			for _, c := range cmds {
				for _, n := range RefReferences(c) {
					if _, ok := p.Parameters[n]; !ok {
						t.Fatalf("stage %s: command %q refers to undeclared Ref::%s", st.Name, c, n)
					}
				}
			}
		}
		// A valid pipeline orders every stage and survives a JSON round trip.
		if got := p.Order(); len(got) != len(p.Stages) {
			t.Fatalf("order %v of %d stages", got, len(p.Stages))
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParsePipeline(js)
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, js)
		}
		// A dry run of the same pipeline finds nothing changed.
		if ch := PipelineChanges(p, back); len(ch) != 0 {
			t.Fatalf("changes of a pipeline from itself: %q", ch)
		}
	})
}

func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"${day}", "Ref::day-x", "$${day}", "${", "a${b}c${d", "Ref::", "${day}${day}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		params := map[string]string{"day": "D", "b": ""}
		out, missing := Substitute(s, params, true)
		// Without parameters nothing but $${ changes.
		same, _ := Substitute(s, nil, false)
		if !strings.Contains(s, "$${") && same != s {
			t.Fatalf("no params changed %q to %q", s, same)
		}
		for _, m := range missing {
			if _, ok := params[m]; ok || !validParamName(m) {
				t.Fatalf("missing %q reported for %q", m, s)
			}
		}
		if !strings.Contains(s, "$$") && !strings.Contains(out, "${day}") && strings.Contains(out, "${day") && !strings.Contains(s, "${day") {
			t.Fatalf("substitution invented a reference: %q -> %q", s, out)
		}
		// A registered definition's Ref::name references: each written in
		// s, a valid name, every one a pipeline file's reading finds
		// among them; substituted, the known ones are gone and nothing
		// else of s changes ("${" included).
		all := RegisteredRefReferences(s)
		for _, n := range all {
			if !validParamName(n) || !strings.Contains(s, "Ref::"+n) {
				t.Fatalf("registered reference %q reported for %q", n, s)
			}
		}
		for _, n := range RefReferences(s) {
			if !slices.Contains(all, n) {
				t.Fatalf("Ref::%s of %q found in a pipeline file's reading only (%v)", n, s, all)
			}
		}
		td := SubstituteRefs(TaskDefinition{ContainerDefinitions: []ContainerDefinition{{Command: []string{s}}}}, nil)
		if td.ContainerDefinitions[0].Command[0] != s {
			t.Fatalf("no params changed the registered %q to %q", s, td.ContainerDefinitions[0].Command[0])
		}
		td = SubstituteRefs(TaskDefinition{ContainerDefinitions: []ContainerDefinition{{Command: []string{s}}}}, params)
		got := td.ContainerDefinitions[0].Command[0]
		if strings.Count(got, "${") < strings.Count(s, "${") {
			t.Fatalf("the registered %q lost a ${ in %q", s, got)
		}
		unknown := slices.DeleteFunc(slices.Clone(all), func(n string) bool { _, ok := params[n]; return ok })
		if _, _, left := substitute(s, params, false, true); !slices.Equal(left, unknown) {
			t.Fatalf("%q: references left %v, want the unknown %v", s, left, unknown)
		}
	})
}

// A stage that depends on itself is told so once, not again as a cycle.
func TestPipelineSelfDependencyIsNotACycle(t *testing.T) {
	_, err := ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, dependsOn: [a]}]\n"))
	if err == nil || !strings.Contains(err.Error(), "cannot depend on itself") || strings.Contains(err.Error(), "cycle") {
		t.Fatalf("got %v, want the self-dependency alone", err)
	}
}

// TestPipelineUnknownFields: every key a pipeline file has no field for is
// named at once, by its path (a stage's with its name), with the field it
// most likely meant, as a task definition's are; keys in another case are
// taken, as encoding/json takes them.
func TestPipelineUnknownFields(t *testing.T) {
	_, err := ParsePipeline([]byte(`name: p
timeoutSecond: 60
Schedule: {cron: "@daily", timezon: UTC}
stages:
  - name: extract
    taskDefinition: t
    retryStrategy: {attempts: 2, evaluateOnExit: [{onExitCod: "1", action: EXIT}]}
  - name: load
    taskDefintion: t
    overrides: {containerOverrides: [{name: main, enviroment: []}]}
    zzzzzzzz: 1
`))
	want := []string{
		`timeoutSecond: unknown field; did you mean "timeoutSeconds"?`,
		`Schedule.timezon: unknown field; did you mean "timezone"?`,
		`stages[0](extract).retryStrategy.evaluateOnExit[0].onExitCod: unknown field; did you mean "onExitCode"?`,
		`stages[1](load).taskDefintion: unknown field; did you mean "taskDefinition"?`,
		`stages[1](load).overrides.containerOverrides[0].enviroment: unknown field; did you mean "environment"?`,
		"stages[1](load).zzzzzzzz: unknown field\n",
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error()+"\n", w) {
			t.Errorf("ParsePipeline: %v\nwant %q", err, w)
		}
	}
	if err != nil && strings.Contains(err.Error(), "json:") {
		t.Errorf("encoding/json's own message is left in: %v", err)
	}
	// The file's other problems come with its unknown keys.
	_, err = ParsePipeline([]byte("name: p\ntimeoutSecond: 60\nstages: [{name: a, taskDefinition: t, dependsOn: [nope]}]\n"))
	for _, w := range []string{`timeoutSecond: unknown field`, `stages[0](a).dependsOn[0].stage: no stage "nope" in the pipeline`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ParsePipeline: %v\nwant %q", err, w)
		}
	}
}

// TestResolveParamsNamesTheDeclaredOnes: a parameter the pipeline does not
// declare is refused, each one, naming those it does declare, so that a
// misspelt --param shows its right spelling.
func TestResolveParamsNamesTheDeclaredOnes(t *testing.T) {
	p := &Pipeline{Name: "daily", Parameters: ParamDecls{"day": {Default: "2026-01-01"}, "rows": {Default: "10"}}}
	got, err := p.ResolveParams(map[string]string{"dya": "x", "day": "2026-02-01", "row": "5"})
	if err == nil {
		t.Fatalf("resolved %v, want an error", got)
	}
	want := `parameters.dya: pipeline daily declares no parameter "dya" (it declares day, rows)` + "\n" +
		`parameters.row: pipeline daily declares no parameter "row" (it declares day, rows)`
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	none := &Pipeline{Name: "plain"}
	_, err = none.ResolveParams(map[string]string{"day": "x"})
	if want := `parameters.day: pipeline plain declares no parameter "day" (it declares none: add it under parameters: in the pipeline file)`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	got, err = p.ResolveParams(map[string]string{"day": "2026-02-01"})
	if err != nil || got["day"] != "2026-02-01" || got["rows"] != "10" {
		t.Errorf("got %v, %v; want day given, rows defaulted", got, err)
	}
}
