package jobs

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// arrayPipeline is a pipeline of an extract, a sequential array and an
// array that runs child by child after it (N_TO_N), for the tests.
const arrayPipeline = `name: p
stages:
  - {name: extract, taskDefinition: t}
  - {name: a, taskDefinition: t, dependsOn: [extract], arraySize: 3, arrayOrder: sequential}
  - {name: b, taskDefinition: t, dependsOn: [{stage: a, type: N_TO_N}], arraySize: 3}
  - {name: c, taskDefinition: t, dependsOn: [{stage: b, type: N_TO_N}], arraySize: 3, arrayOrder: sequential}
  - {name: d, taskDefinition: t, dependsOn: [c], arraySize: 3}
`

func TestArrayOrderParses(t *testing.T) {
	p, err := ParsePipeline([]byte(arrayPipeline))
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Stage("a"); !a.Sequential() || !a.OrdersChildren() {
		t.Fatalf("a: %+v", a)
	}
	if b := p.Stage("b"); b.Sequential() || !b.OrdersChildren() || !b.DependsOn[0].NToN() || b.DependsOn[0].Condition != CondSuccess {
		t.Fatalf("b: %+v", b)
	}
	if d := p.Stage("d"); d.OrdersChildren() {
		t.Fatalf("d, parallel with a plain dependency, orders nothing: %+v", d)
	}
	// arrayOrder parallel is the default, said or not.
	if _, err := ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, arraySize: 2, arrayOrder: parallel}]\n")); err != nil {
		t.Fatal(err)
	}
}

// TestChildWaits: which child each child of an array waits for, the
// release order the server then keeps.
func TestChildWaits(t *testing.T) {
	p, err := ParsePipeline([]byte(arrayPipeline))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stage string
		i     int
		want  []string
	}{
		{"extract", 0, nil}, // no array
		{"a", 0, nil},       // the first of a sequence starts at once
		{"a", 1, []string{"a[0]"}},
		{"a", 2, []string{"a[1]"}},
		{"b", 0, []string{"a[0]"}}, // N_TO_N: its own counterpart only
		{"b", 2, []string{"a[2]"}},
		{"c", 0, []string{"b[0]"}},
		{"c", 1, []string{"c[0]", "b[1]"}}, // sequential and N_TO_N: both
		{"d", 1, nil},                      // parallel, after the whole of c
		{"ghost", 0, nil},
	} {
		var got []string
		for _, w := range p.ChildWaits(c.stage, c.i) {
			got = append(got, w.String())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s[%d] waits for %v, want %v", c.stage, c.i, got, c.want)
		}
	}
}

// TestNextNToN: a stage depending N_TO_N on another starts once that one
// started, not once it ended; one that ended without succeeding as a
// whole may have children that succeeded, whose counterparts run; a
// SKIPPED one skips it, and so does one that ended without a child
// (runless), which, FAILED or CANCELED, counts as an upstream failure.
func TestNextNToN(t *testing.T) {
	p, err := ParsePipeline([]byte(arrayPipeline))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]Status{"extract": StatusSucceeded, "a": StatusSucceeded, "b": StatusPending, "c": StatusPending, "d": StatusPending}
	for _, c := range []struct {
		a           Status
		runless     bool
		start, skip []string
		upFailed    bool // b, skipped, counts as failed for a rule
	}{
		{StatusPending, false, []string{"a"}, nil, false}, // a itself starts; b waits
		{StatusRunning, false, []string{"b"}, nil, false},
		{StatusSucceeded, false, []string{"b"}, nil, false},
		{StatusFailed, false, []string{"b"}, nil, false},
		{StatusCanceled, false, []string{"b"}, nil, false},
		{StatusSkipped, false, nil, []string{"b"}, false},
		{StatusSkipped, true, nil, []string{"b"}, false},
		{StatusFailed, true, nil, []string{"b"}, true},
		{StatusCanceled, true, nil, []string{"b"}, true},
	} {
		status := maps.Clone(base)
		status["a"] = c.a
		var runless map[string]int
		if c.runless {
			runless = map[string]int{"a": 0}
		}
		start, skip := p.Next(status, runless)
		if !slices.Equal(start, c.start) || !slices.Equal(skip, c.skip) {
			t.Errorf("a %s (runless %v): start %v skip %v, want %v %v", c.a, c.runless, start, skip, c.start, c.skip)
		}
		if len(skip) > 0 {
			status["b"] = StatusSkipped
			if got := p.UpstreamFailed("b", status, runless); got != c.upFailed {
				t.Errorf("a %s (runless %v): UpstreamFailed(b) = %v", c.a, c.runless, got)
			}
		}
	}
	// A plain dependency still waits for the whole stage.
	status := maps.Clone(base)
	status["b"], status["c"] = StatusSucceeded, StatusRunning
	if start, _ := p.Next(status, nil); len(start) != 0 {
		t.Fatalf("d started before c ended: %v", start)
	}
}

// TestRunless: a stage that ended without its runs, none or fewer than
// its size (it failed as it started, at a later child), is runless, with
// how many it had submitted; one that ended with all its runs, or has
// not ended, is not; a size read from an output counts once decided.
func TestRunless(t *testing.T) {
	const src = `name: p
stages:
  - {name: x, taskDefinition: t}
  - {name: fixed, taskDefinition: t, arraySize: 3}
  - {name: sized, taskDefinition: t, arraySize: {fromOutput: x.N}, dependsOn: [x]}
`
	p, err := ParsePipeline([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	runs := func(n int) []StageRun { return make([]StageRun, n) }
	three := 3
	for _, c := range []struct {
		name  string
		state StageState
		want  map[string]int
	}{
		{"plain failed without a run", StageState{Name: "x", Status: StatusFailed, Runs: runs(0)}, map[string]int{"x": 0}},
		{"plain failed with its run", StageState{Name: "x", Status: StatusFailed, Runs: runs(1)}, nil},
		{"array failed at its first child", StageState{Name: "fixed", Status: StatusFailed, Runs: runs(0)}, map[string]int{"fixed": 0}},
		{"array failed at its third child", StageState{Name: "fixed", Status: StatusFailed, Runs: runs(2)}, map[string]int{"fixed": 2}},
		{"array failed with every child", StageState{Name: "fixed", Status: StatusFailed, Runs: runs(3)}, nil},
		{"array running", StageState{Name: "fixed", Status: StatusRunning, Runs: runs(2)}, nil},
		{"array skipped", StageState{Name: "fixed", Status: StatusSkipped, Runs: runs(0)}, map[string]int{"fixed": 0}},
		{"sized, undecided", StageState{Name: "sized", Status: StatusFailed, Runs: runs(0)}, map[string]int{"sized": 0}},
		{"sized, failed at its second child", StageState{Name: "sized", Status: StatusFailed, ArraySize: &three, Runs: runs(1)}, map[string]int{"sized": 1}},
		{"sized, failed with every child", StageState{Name: "sized", Status: StatusFailed, ArraySize: &three, Runs: runs(3)}, nil},
	} {
		pr := &PipelineRun{Spec: *p, Stages: []StageState{c.state}}
		if got := pr.Runless(); !maps.Equal(got, c.want) {
			t.Errorf("%s: Runless %v, want %v", c.name, got, c.want)
		}
	}
}

// TestArrayOrderRefused: each problem names its field.
func TestArrayOrderRefused(t *testing.T) {
	for _, c := range []struct {
		name, stages string
		want         []string
	}{
		{"order without array", `[{name: a, taskDefinition: t, arrayOrder: sequential}]`,
			[]string{"stages[0](a).arrayOrder: sequential: the stage has no arraySize: only an array stage's children have an order"}},
		{"unknown order", `[{name: a, taskDefinition: t, arraySize: 2, arrayOrder: serial}]`,
			[]string{`stages[0](a).arrayOrder: "serial": want parallel or sequential`}},
		{"unknown type", `[{name: a, taskDefinition: t, arraySize: 2}, {name: b, taskDefinition: t, arraySize: 2, dependsOn: [{stage: a, type: ONE_TO_ONE}]}]`,
			[]string{`stages[1](b).dependsOn[0].type: "ONE_TO_ONE": want N_TO_N (child i waits for child i of a), or leave it out to wait for the whole stage`}},
		{"sequential type", `[{name: a, taskDefinition: t, arraySize: 2}, {name: b, taskDefinition: t, arraySize: 2, dependsOn: [{stage: a, type: SEQUENTIAL}]}]`,
			[]string{`stages[1](b).dependsOn[0].type: "SEQUENTIAL": a stage's children in index order are arrayOrder: sequential on the stage, not a dependency type`}},
		{"N_TO_N on a plain stage", `[{name: a, taskDefinition: t, arraySize: 2}, {name: b, taskDefinition: t, dependsOn: [{stage: a, type: N_TO_N}]}]`,
			[]string{"stages[1](b).dependsOn[0].type: N_TO_N: stage b has no arraySize: N_TO_N pairs the children of two array stages"}},
		{"N_TO_N on a plain dependency", `[{name: a, taskDefinition: t}, {name: b, taskDefinition: t, arraySize: 2, dependsOn: [{stage: a, type: N_TO_N}]}]`,
			[]string{"stages[1](b).dependsOn[0].type: N_TO_N: stage a has no arraySize: N_TO_N pairs the children of two array stages; leave type out to wait for the whole stage"}},
		{"sizes differ", `[{name: a, taskDefinition: t, arraySize: 2}, {name: b, taskDefinition: t, arraySize: 3, dependsOn: [{stage: a, type: N_TO_N}]}]`,
			[]string{"stages[1](b).dependsOn[0].type: N_TO_N: arraySize 3 of b differs from arraySize 2 of a: N_TO_N pairs children of arrays of one size"}},
		{"condition", `[{name: a, taskDefinition: t, arraySize: 2}, {name: b, taskDefinition: t, arraySize: 2, dependsOn: [{stage: a, type: N_TO_N, condition: failure}]}]`,
			[]string{"stages[1](b).dependsOn[0].condition: failure with type N_TO_N: child i waits for child i of a to succeed; want success or leave it out"}},
		{"unknown key", `[{name: a, taskDefinition: t, arraySize: 2, arrayOrdr: sequential}]`,
			[]string{`stages[0](a).arrayOrdr: unknown field; did you mean "arrayOrder"?`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePipeline([]byte("name: p\nstages: " + c.stages + "\n"))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant a line\n%s", err, w)
				}
			}
		})
	}
	// Sizes read from outputs are checked when the stage is sized.
	if _, err := ParsePipeline([]byte(`name: p
stages:
  - {name: x, taskDefinition: t}
  - {name: a, taskDefinition: t, dependsOn: [x], arraySize: {fromOutput: x.N}}
  - {name: b, taskDefinition: t, arraySize: 3, dependsOn: [{stage: a, type: N_TO_N}]}
`)); err != nil {
		t.Fatal(err)
	}
}

func TestArrayOrderDiff(t *testing.T) {
	old, err := ParsePipeline([]byte(strings.NewReplacer(", arrayOrder: sequential", "", "{stage: a, type: N_TO_N}", "a").Replace(arrayPipeline)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePipeline([]byte(arrayPipeline))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stages[1](a).arrayOrder: added sequential", "stages[2](b).dependsOn: [a] -> [{stage: a, type: N_TO_N}]",
		"stages[3](c).arrayOrder: added sequential"}
	if got := PipelineChanges(old, p); !reflect.DeepEqual(got, want) {
		t.Fatalf("changes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestArrayOrderSample: the sample parses, sequential then N_TO_N.
func TestArrayOrderSample(t *testing.T) {
	data, err := os.ReadFile("../samples/pipelines/in-order.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePipeline(data)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Stage("migrate").Sequential() || !p.Stage("verify").DependsOn[0].NToN() {
		t.Fatalf("%+v", p.Stages)
	}
}
