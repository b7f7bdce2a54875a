package jobs

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const branchingPipeline = `
name: reload
parameters: {mode: daily}
stages:
  - name: check
    taskDefinition: t
  - name: full-reload
    taskDefinition: t
    dependsOn: [check]
    when: {output: check.MODE, equals: full}
  - name: incremental
    taskDefinition: t
    dependsOn: [check]
    when: {output: check.MODE, notIn: [full, rebuild]}
  - name: backfill-only
    taskDefinition: t
    when: [{param: mode, equals: backfill}, {output: check.ROWS, notEquals: 0}]
    dependsOn: [{stage: incremental, condition: complete}]
  - name: codes
    taskDefinition: t
    dependsOn: [check]
    when: {output: check.CODE, in: [010, 1.50, true]}
`

func TestWhenParses(t *testing.T) {
	p, err := ParsePipeline([]byte(branchingPipeline))
	if err != nil {
		t.Fatal(err)
	}
	full := p.Stage("full-reload").When
	if len(full.Conditions) != 1 || full.Conditions[0].Output.String() != "check.MODE" || full.Conditions[0].Op != WhenEquals ||
		!reflect.DeepEqual(full.Conditions[0].Values, []string{"full"}) || !full.ReadsOutputs() {
		t.Fatalf("full-reload when %+v", full)
	}
	if s := full.String(); s != "check.MODE equals full" {
		t.Errorf("describe shows %q", s)
	}
	both := p.Stage("backfill-only").When
	if s := both.String(); s != `parameter mode equals backfill and check.ROWS notEquals "0"` {
		t.Errorf("describe shows %q", s)
	}
	// Numbers and booleans are their text as written: YAML's octal and
	// floats are not read as numbers.
	if v := p.Stage("codes").When.Conditions[0].Values; !reflect.DeepEqual(v, []string{"010", "1.50", "true"}) {
		t.Errorf("codes values %q", v)
	}
	if !p.Stage("check").When.IsZero() || p.Stage("check").When.ReadsOutputs() {
		t.Errorf("check's when %+v", p.Stage("check").When)
	}
	// Stored as written: one condition as a mapping, a list as a list; no
	// when stays absent.
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"when":{"output":"check.MODE","equals":"full"}`,
		`"when":[{"param":"mode","equals":"backfill"},{"output":"check.ROWS","notEquals":"0"}]`,
		`"when":{"output":"check.MODE","notIn":["full","rebuild"]}`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	if n := strings.Count(string(js), `"when"`); n != 4 {
		t.Errorf("%d whens in %s", n, js)
	}
	back, err := ParsePipeline(js)
	if err != nil || !reflect.DeepEqual(back.Stages, p.Stages) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back.Stages, p.Stages)
	}
	// A dry run shows a when's change as a file writes it.
	old, err := ParsePipeline([]byte(strings.Replace(branchingPipeline, "when: {output: check.MODE, equals: full}", "when: {output: check.MODE, equals: rebuild}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if ch := PipelineChanges(old, p); !reflect.DeepEqual(ch, []string{"stages[1](full-reload).when.equals: rebuild -> full"}) {
		t.Errorf("changes %q", ch)
	}
	none, _ := ParsePipeline([]byte(strings.Replace(branchingPipeline, "    when: {output: check.MODE, equals: full}\n", "", 1)))
	if ch := PipelineChanges(none, p); !reflect.DeepEqual(ch, []string{"stages[1](full-reload).when: added {output: check.MODE, equals: full}"}) {
		t.Errorf("changes %q", ch)
	}
}

func TestWhenProblems(t *testing.T) {
	const head = "name: p\nparameters: {mode: daily}\nstages: [{name: check, taskDefinition: t}, {name: side, taskDefinition: t}, "
	for _, tc := range []struct{ name, stage, want string }{
		{"not upstream", `{name: b, taskDefinition: t, dependsOn: [side], when: {output: check.MODE, equals: full}}`,
			`stages[2](b).when.output: "check.MODE": stage check is not upstream of b, so it may not have run when b starts: add it to dependsOn, directly or through a stage b depends on`},
		{"unknown stage", `{name: b, taskDefinition: t, when: {output: ghost.MODE, equals: full}}`,
			`stages[2](b).when.output: "ghost.MODE": no stage "ghost" in the pipeline`},
		{"itself", `{name: b, taskDefinition: t, when: {output: b.MODE, equals: full}}`,
			`stages[2](b).when.output: "b.MODE": a stage cannot decide on its own output`},
		{"no key", `{name: b, taskDefinition: t, dependsOn: [check], when: {output: check, equals: full}}`,
			`stages[2](b).when.output: "check": want STAGE.KEY`},
		{"undeclared param", `{name: b, taskDefinition: t, when: {param: mod, equals: x}}`,
			`stages[2](b).when.param: "mod": the pipeline declares no such parameter: declare it under parameters; did you mean "mode"?`},
		{"neither", `{name: b, taskDefinition: t, when: {equals: x}}`,
			`stages[2](b).when: want output: STAGE.KEY (an upstream stage's outputs.env key) or param: NAME (a pipeline parameter)`},
		{"both", `{name: b, taskDefinition: t, dependsOn: [check], when: {param: mode, output: check.MODE, equals: x}}`,
			`stages[2](b).when: output and param both given: want one`},
		{"no comparison", `{name: b, taskDefinition: t, when: {param: mode}}`,
			`stages[2](b).when: want one of equals, in, notEquals or notIn`},
		{"two comparisons", `{name: b, taskDefinition: t, when: {param: mode, equals: x, notIn: [y]}}`,
			`stages[2](b).when: equals and notIn both given: want one of equals, in, notEquals or notIn`},
		{"three comparisons", `{name: b, taskDefinition: t, when: {param: mode, equals: x, in: [z], notIn: [y]}}`,
			`stages[2](b).when: equals, in and notIn all given`},
		{"empty in", `{name: b, taskDefinition: t, when: {param: mode, in: []}}`,
			`stages[2](b).when.in: an empty list: want at least one value`},
		{"empty list", `{name: b, taskDefinition: t, when: []}`,
			`stages[2](b).when: an empty list: leave when out for a stage that always runs`},
		{"in a list", `{name: b, taskDefinition: t, when: [{param: mode, equals: x}, {param: ghost, equals: y}]}`,
			`stages[2](b).when[1].param: "ghost": the pipeline declares no such parameter`},
		// Shapes, refused while decoding, each named.
		{"unknown key", `{name: b, taskDefinition: t, when: {param: mode, equal: x}}`,
			`stages[2](b).when.equal: unknown field; did you mean "equals"?`},
		{"a string", `{name: b, taskDefinition: t, when: "check.MODE == full"}`,
			`stages[2](b).when: "check.MODE == full": want {output: STAGE.KEY, equals: VALUE} or {param: NAME, in: [VALUE, ...]}, or a list of them`},
		{"in not a list", `{name: b, taskDefinition: t, when: {param: mode, in: full}}`,
			`stages[2](b).when.in: "full": want a list of values, as [full, rebuild]`},
		{"equals a list", `{name: b, taskDefinition: t, when: {param: mode, equals: [a, b]}}`,
			`stages[2](b).when.equals: ["a","b"]: want a value (a string, number or boolean); in: [a, b] for several`},
		{"equals null", `{name: b, taskDefinition: t, when: {param: mode, equals: null}}`,
			`stages[2](b).when.equals: null: want a value (a string, number or boolean; "" for the empty string)`},
		{"notEquals with nothing after it", "{name: b, taskDefinition: t, when: {param: mode, notEquals: }}",
			`stages[2](b).when.notEquals: null: want a value (a string, number or boolean; "" for the empty string)`},
		{"null in a list", `{name: b, taskDefinition: t, when: {param: mode, in: [a, ~]}}`,
			`stages[2](b).when.in[1]: null: want a value (a string, number or boolean; "" for the empty string)`},
		{"in a mapping", `{name: b, taskDefinition: t, when: {param: mode, notIn: [a, {b: c}]}}`,
			`stages[2](b).when.notIn[1]: {"b":"c"}: want a value`},
		{"param a list", `{name: b, taskDefinition: t, when: {param: [mode], equals: x}}`,
			`stages[2](b).when.param: ["mode"]: want the name of a pipeline parameter`},
		{"list of strings", `{name: b, taskDefinition: t, when: [{param: mode, equals: x}, "y"]}`,
			`stages[2](b).when[1]: "y": want {output: STAGE.KEY, equals: VALUE} or {param: NAME, ...}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePipeline([]byte(head + tc.stage + "]\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %s", err, tc.want)
			}
		})
	}
	// Every problem at once: a when of the wrong shape, the file's other
	// problems and its unknown keys beside it.
	_, err := ParsePipeline([]byte(head + `{name: b, taskDefinition: t, when: {param: mode, equal: x}, timeoutSeconds: -1}, ` +
		`{name: c, taskDefinition: t, when: {param: ghost, equals: x}, arraySize: '7', timeoutSecond: 1}]` + "\n"))
	for _, want := range []string{`stages[2](b).when.equal: unknown field`, `stages[2](b).timeoutSeconds`,
		`stages[3](c).when.param: "ghost"`, `stages[3](c).arraySize: "7": want a number`,
		`stages[3](c).timeoutSecond: unknown field; did you mean "timeoutSeconds"?`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestWhenHolds(t *testing.T) {
	out := OutputRef{Stage: "check", Key: "MODE"}
	for _, tc := range []struct {
		c     WhenCondition
		value string
		set   bool
		why   string // "" when it holds
	}{
		{WhenCondition{Output: &out, Op: WhenEquals, Values: []string{"full"}}, "full", true, ""},
		{WhenCondition{Output: &out, Op: WhenEquals, Values: []string{"full"}}, "incremental", true, `when: check.MODE is "incremental", not "full"`},
		{WhenCondition{Output: &out, Op: WhenEquals, Values: []string{"full"}}, "", false, `when: check.MODE is not set (no run of check wrote MODE=), not "full"`},
		{WhenCondition{Output: &out, Op: WhenEquals, Values: []string{"full"}}, "Full", true, `is "Full", not "full"`},
		// A key no run wrote is the empty string, for every comparison.
		{WhenCondition{Output: &out, Op: WhenEquals, Values: []string{""}}, "", false, ""},
		{WhenCondition{Output: &out, Op: WhenNotEquals, Values: []string{""}}, "", false, `when: check.MODE is not set (no run of check wrote MODE=), excluded by notEquals`},
		{WhenCondition{Output: &out, Op: WhenNotEquals, Values: []string{"full"}}, "", false, ""},
		{WhenCondition{Output: &out, Op: WhenNotEquals, Values: []string{"full"}}, "full", true, `when: check.MODE is "full", excluded by notEquals`},
		{WhenCondition{Output: &out, Op: WhenIn, Values: []string{"full", "rebuild"}}, "rebuild", true, ""},
		{WhenCondition{Output: &out, Op: WhenIn, Values: []string{"full", "rebuild"}}, "x", true, `when: check.MODE is "x", not one of "full", "rebuild"`},
		{WhenCondition{Output: &out, Op: WhenNotIn, Values: []string{"full", "rebuild"}}, "x", true, ""},
		{WhenCondition{Output: &out, Op: WhenNotIn, Values: []string{"full", "rebuild"}}, "full", true, `when: check.MODE is "full", excluded by notIn`},
		{WhenCondition{Param: "mode", Op: WhenEquals, Values: []string{"backfill"}}, "daily", true, `when: parameter mode is "daily", not "backfill"`},
	} {
		ok, why := tc.c.Holds(tc.value, tc.set)
		if ok != (tc.why == "") || !strings.Contains(why, tc.why) || ok && why != "" {
			t.Errorf("%s with %q (set %v): %v %q, want %q", tc.c, tc.value, tc.set, ok, why, tc.why)
		}
	}
}

// The submit role's view shows neither an output's value nor a
// parameter's, which a when's reason quotes; the values of the file stay.
func TestHideWhenValues(t *testing.T) {
	for in, want := range map[string]string{
		`when: check.MODE is "incre\"mental", not "full"`:                       `when: check.MODE is a value not shown here, not "full"`,
		`when: parameter mode is "daily", not "backfill"`:                       `when: parameter mode is a value not shown here, not "backfill"`,
		`when: check.MODE is "full", excluded by notIn`:                         `when: check.MODE is a value not shown here, excluded by notIn`,
		`when: check.MODE is not set (no run of check wrote MODE=), not "full"`: `when: check.MODE is not set (no run of check wrote MODE=), not "full"`,
		`1 of 1 runs failed`: `1 of 1 runs failed`,
	} {
		if got := HideOutputValues(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// FuzzWhen: what the when parser accepts writes back as JSON it reads the
// same; a shape problem has a path under the when and a message.
func FuzzWhen(f *testing.F) {
	for _, s := range []string{`{"output":"check.MODE","equals":"full"}`, `[{"param":"mode","in":["a",1,true]},{"output":"a.B","notIn":["x"]}]`,
		`{"param":"mode","notEquals":0.5}`, `null`, `[]`, `{}`, `"x"`, `3`, `{"equal":"x"}`, `{"in":"x"}`, `{"equals":null}`,
		`{"output":3}`, `[1]`, `{"param":"m","equals":"a","in":["b"]}`, `{"output":"a.B","param":"c","notIn":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, probs := parseWhen(data)
		for _, p := range probs {
			if p.msg == "" || p.path != "" && p.path[0] != '.' && p.path[0] != '[' {
				t.Fatalf("%s: problem %+v", data, p)
			}
		}
		var u When
		if err := u.UnmarshalJSON(data); (err == nil) != (len(probs) == 0) {
			t.Fatalf("%s: UnmarshalJSON %v, parseWhen %v", data, err, probs)
		}
		if len(probs) > 0 {
			return
		}
		js, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		var back When
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("%s -> %s: %v", data, js, err)
		}
		// A valid when (one comparison each) reads back the same.
		for _, c := range w.Conditions {
			if len(c.ops) != 1 {
				return
			}
		}
		if !reflect.DeepEqual(w, back) {
			t.Fatalf("%s -> %+v -> %s -> %+v", data, w, js, back)
		}
	})
}
