package jobs

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const dynamicPipeline = `
name: files
stages:
  - name: extract
    taskDefinition: t
  - name: check
    taskDefinition: t
    dependsOn: [{stage: extract, condition: complete}]
  - name: transform
    taskDefinition: t
    dependsOn: [check]
    arraySize: {fromOutput: extract.FILES}
`

func TestArraySizeFromOutput(t *testing.T) {
	p, err := ParsePipeline([]byte(dynamicPipeline))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Stage("transform").ArraySize
	if !a.Dynamic() || !a.Array() || a.From.Stage != "extract" || a.From.Key != "FILES" || a.N != 0 || a.String() != "extract.FILES" {
		t.Fatalf("arraySize %+v from %+v", a, a.From)
	}
	if b := p.Stage("extract").ArraySize; !b.IsZero() || b.Array() || b.Dynamic() {
		t.Fatalf("extract's arraySize %+v", b)
	}
	// Stored and served as written in the file; a fixed size stays a
	// number, and no arraySize stays absent.
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"arraySize":{"fromOutput":"extract.FILES"}`) || strings.Count(string(js), "arraySize") != 1 {
		t.Fatalf("JSON %s", js)
	}
	back, err := ParsePipeline(js)
	if err != nil || !reflect.DeepEqual(back.Stages, p.Stages) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, p)
	}
	fixed, _ := json.Marshal(Stage{Name: "a", ArraySize: Fixed(3)})
	if !strings.Contains(string(fixed), `"arraySize":3`) {
		t.Fatalf("fixed size JSON %s", fixed)
	}
	// A dry run says what changed, as for any field.
	old, _ := ParsePipeline([]byte(strings.Replace(dynamicPipeline, "{fromOutput: extract.FILES}", "3", 1)))
	if ch := PipelineChanges(old, p); len(ch) != 1 || !strings.Contains(ch[0], `stages[2](transform).arraySize: 3 -> `) || !strings.Contains(ch[0], "extract.FILES") {
		t.Fatalf("changes %q", ch)
	}
}

func TestArraySizeProblems(t *testing.T) {
	for _, tc := range []struct{ name, stages, want string }{
		{"not upstream", `[{name: extract, taskDefinition: t}, {name: side, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [side], arraySize: {fromOutput: extract.FILES}}]`,
			`stages[2](b).arraySize.fromOutput: "extract.FILES": stage extract is not upstream of b, so it may not have run when b starts: add it to dependsOn, directly or through a stage b depends on`},
		{"downstream", `[{name: a, taskDefinition: t, arraySize: {fromOutput: b.N}}, {name: b, taskDefinition: t, dependsOn: [a]}]`,
			`stages[0](a).arraySize.fromOutput: "b.N": stage b is not upstream of a`},
		{"unknown stage", `[{name: a, taskDefinition: t, arraySize: {fromOutput: ghost.N}}]`,
			`stages[0](a).arraySize.fromOutput: "ghost.N": no stage "ghost" in the pipeline`},
		{"itself", `[{name: a, taskDefinition: t, arraySize: {fromOutput: a.N}}]`,
			`stages[0](a).arraySize.fromOutput: "a.N": a stage cannot size itself from its own output`},
		{"no key", `[{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a], arraySize: {fromOutput: a}}]`,
			`stages[1](b).arraySize.fromOutput: "a": want STAGE.KEY, a KEY=VALUE line of an upstream stage's /gantry/out/outputs.env (extract.FILES)`},
		{"dot, no key", `[{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a], arraySize: {fromOutput: a.}}]`,
			`stages[1](b).arraySize.fromOutput: "a.": want STAGE.KEY`},
		{"no stage", `[{name: a, taskDefinition: t, arraySize: {fromOutput: .N}}]`,
			`stages[0](a).arraySize.fromOutput: ".N": want STAGE.KEY`},
		{"bad key", `[{name: a, taskDefinition: t}, {name: b, taskDefinition: t, dependsOn: [a], arraySize: {fromOutput: "a.N=3"}}]`,
			`stages[1](b).arraySize.fromOutput: "a.N=3": "N=3" cannot be a key of outputs.env`},
		{"quoted", `[{name: a, taskDefinition: t, arraySize: "3"}]`,
			`stages[0](a).arraySize: "3": want a number from 0 to 10000, or {fromOutput: STAGE.KEY} to read it from an upstream stage's outputs.env`},
		{"list", `[{name: a, taskDefinition: t}, {name: b, taskDefinition: t, arraySize: [3]}]`,
			`stages[1](b).arraySize: [3]: want a number`},
		{"other key", `[{name: a, taskDefinition: t, arraySize: {from: a.N}}]`,
			`stages[0](a).arraySize: {"from":"a.N"}: want a number`},
		{"not a string", `[{name: a, taskDefinition: t, arraySize: {fromOutput: 3}}]`,
			`stages[0](a).arraySize: {"fromOutput":3}: want a number`},
		{"fraction", `[{name: a, taskDefinition: t, arraySize: 2.5}]`,
			`stages[0](a).arraySize: 2.5: want a number`},
		{"too large", `[{name: a, taskDefinition: t, arraySize: 10001}]`,
			`stages[0](a).arraySize: 10001: must be between 0 and 10000`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePipeline([]byte("name: p\nstages: " + tc.stages + "\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant %s", err, tc.want)
			}
		})
	}
	// Every problem at once, with the file's others, a size of neither
	// shape included.
	_, err := ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, arraySize: {fromOutput: ghost.N}, timeoutSeconds: -1}, " +
		"{name: b, taskDefinition: t, arraySize: {fromOutput: a.N}}, {name: c, taskDefinition: t, dependsOn: [b], arraySize: '7'}]\n"))
	for _, want := range []string{`stages[0](a).arraySize.fromOutput: "ghost.N"`, `stages[1](b).arraySize.fromOutput: "a.N": stage a is not upstream`,
		`stages[0](a).timeoutSeconds`, `stages[2](c).arraySize: "7": want a number`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// A key no field takes too, in any stage: decoding stopped at the
	// size before it reached them.
	_, err = ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, timeoutSecond: 5}, {name: b, taskDefinition: t, arraySize: abc, timeoutSecond: 5}]\n"))
	for _, want := range []string{`stages[1](b).arraySize: "abc": want a number`,
		`stages[0](a).timeoutSecond: unknown field; did you mean "timeoutSeconds"?`,
		`stages[1](b).timeoutSecond: unknown field; did you mean "timeoutSeconds"?`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestDecideArraySize(t *testing.T) {
	ref := OutputRef{Stage: "extract", Key: "FILES"}
	for _, tc := range []struct {
		value string
		set   bool
		want  int
		err   string
	}{
		{"3", true, 3, ""},
		{" 7 \t", true, 7, ""},
		{"0", true, 0, ""},
		{"007", true, 7, ""},
		{"10000", true, 10000, ""},
		{"10001", true, 0, `arraySize: extract.FILES is "10001": want an integer 0..10000`},
		{"abc", true, 0, `arraySize: extract.FILES is "abc": want an integer 0..10000`},
		{"-1", true, 0, `arraySize: extract.FILES is "-1": want an integer 0..10000`},
		{"+3", true, 0, `is "+3": want an integer`},
		{"3.0", true, 0, `is "3.0": want an integer`},
		{"1e3", true, 0, `is "1e3": want an integer`},
		{"", true, 0, `arraySize: extract.FILES is "": want an integer 0..10000`},
		{"99999999999999999999", true, 0, `want an integer`},
		{"", false, 0, `arraySize: extract.FILES is not set: no run of stage extract wrote a FILES= line to /gantry/out/outputs.env`},
	} {
		n, err := DecideArraySize(ref, tc.value, tc.set)
		switch {
		case tc.err == "" && (err != nil || n != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.value, n, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %d, %v; want error %s", tc.value, n, err, tc.err)
		}
	}
}

func TestOutputValue(t *testing.T) {
	kvs, err := ParseOutputs(strings.NewReader("# files found\nFILES=2\nexport ROWS='10'\n\nFILES=\"3\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := OutputValue(kvs, "FILES"); !ok || v != "3" {
		t.Fatalf("FILES %q %v: the last line wins", v, ok)
	}
	if v, ok := OutputValue(kvs, "ROWS"); !ok || v != "10" {
		t.Fatalf("ROWS %q %v", v, ok)
	}
	if _, ok := OutputValue(kvs, "files"); ok {
		t.Fatal("keys match as written, case included")
	}
	if _, err := ParseOutputs(strings.NewReader("OK=1\nnot a pair\n")); err == nil || err.Error() != "line 2: want KEY=VALUE" {
		t.Fatalf("garbage: %v", err)
	}
}

// FuzzArraySize: what the arraySize parser accepts writes back as JSON it
// reads the same; a fixed size writes as a number.
func FuzzArraySize(f *testing.F) {
	for _, s := range []string{`3`, `0`, `null`, `-1`, `1e2`, `"3"`, `{"fromOutput":"extract.FILES"}`, `{"fromOutput":"a"}`,
		`{"fromOutput":""}`, `{"fromOutput":"a.b.c"}`, `{"fromOutput":3}`, `{"from":"a.b"}`, `[3]`, `{"fromOutput":"x.y","fromOutput":"z.w"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a ArraySize
		if err := a.UnmarshalJSON(data); err != nil {
			return
		}
		js, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var back ArraySize
		if err := json.Unmarshal(js, &back); err != nil || !reflect.DeepEqual(a, back) {
			t.Fatalf("%s -> %+v -> %s -> %+v (%v)", data, a, js, back, err)
		}
		if a.From == nil && string(js) != strconv.Itoa(a.N) {
			t.Fatalf("fixed size %d written %s", a.N, js)
		}
	})
}

// FuzzDecideArraySize: a value is accepted only as a whole number 0..10000
// (spaces around it aside), and an error names the output.
func FuzzDecideArraySize(f *testing.F) {
	for _, s := range []string{"3", " 3 ", "0", "10000", "10001", "-1", "+1", "abc", "", "0x10", "1_000", "٣"} {
		f.Add(s)
	}
	ref := OutputRef{Stage: "extract", Key: "FILES"}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := DecideArraySize(ref, v, true)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "arraySize: extract.FILES is ") {
				t.Fatalf("%q: %v", v, err)
			}
			return
		}
		trimmed := strings.TrimLeft(strings.TrimSpace(v), "0")
		if n < 0 || n > MaxArraySize || strconv.Itoa(n) != trimmed && !(n == 0 && trimmed == "") {
			t.Fatalf("%q accepted as %d", v, n)
		}
	})
}

// TestHideOutputValues: the value DecideArraySize quotes in its reason,
// quotes and backslashes in it too, is taken out; the rest of the reason,
// and reasons quoting no output, stay as they are.
func TestHideOutputValues(t *testing.T) {
	ref := OutputRef{Stage: "extract", Key: "FILES"}
	for _, v := range []string{"s3cr3t", `a "quoted" \ value`, "qq"} {
		_, err := DecideArraySize(ref, v, true)
		if err == nil {
			t.Fatalf("%q decided", v)
		}
		reason := "stage transform: " + err.Error()
		got := HideOutputValues(reason)
		if strings.Contains(got, v) || got != "stage transform: arraySize: extract.FILES is a value not shown here: want an integer 0..10000" {
			t.Errorf("%q: %q", reason, got)
		}
	}
	for _, r := range []string{"1 of 3 runs failed", "arraySize: extract.FILES is not set: no run of stage extract wrote a FILES= line to /gantry/out/outputs.env"} {
		if got := HideOutputValues(r); got != r {
			t.Errorf("%q became %q", r, got)
		}
	}
}

// FuzzParseOutputs: the outputs.env parser (the worker's, and the
// server's for an arraySize) never panics, and what it reads is keys
// trimmed, not empty, without '=', which written back one a line
// (export KEY='VALUE') read the same.
func FuzzParseOutputs(f *testing.F) {
	for _, s := range []string{"FILES=3\n", "# c\n\nexport A=\"x y\"\nB='q'\n", "K = v \r\n", "not a pair\n", "=v\n",
		"export export X=1\n", "export #X=1\n", "A=\"\n", "A='b'c'\n", "A==\n", "  \t\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		kvs, err := ParseOutputs(strings.NewReader(data))
		if err != nil {
			return
		}
		var b strings.Builder
		for _, kv := range kvs {
			if kv.Name == "" || kv.Name != strings.TrimSpace(kv.Name) || strings.Contains(kv.Name, "=") {
				t.Fatalf("%q: key %q", data, kv.Name)
			}
			b.WriteString("export " + kv.Name + "='" + kv.Value + "'\n")
		}
		back, err := ParseOutputs(strings.NewReader(b.String()))
		if err != nil || !reflect.DeepEqual(back, kvs) {
			t.Fatalf("%q -> %q -> %q -> %q (%v)", data, kvs, b.String(), back, err)
		}
		if len(kvs) > 0 {
			if v, ok := OutputValue(kvs, kvs[len(kvs)-1].Name); !ok || v != kvs[len(kvs)-1].Value {
				t.Fatalf("%q: OutputValue of the last key %q: %q %v", data, kvs[len(kvs)-1].Name, v, ok)
			}
		}
	})
}
