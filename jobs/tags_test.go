package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSubmitTags: tags read in either shape, ECS RunTask's list and AWS
// Batch SubmitJob's object, and every problem names its field path.
func TestSubmitTags(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`{"key":"k` + strings.Repeat("x", i) + `","value":"v"}`)
		}
		return b.String() + "]"
	}
	for _, tt := range []struct {
		name, tags string
		want       map[string]string
		errs       []string // each a line of the error; nil: valid
	}{
		{"ECS list", `[{"key":"team","value":"data"},{"key":"cost-centre","value":""}]`,
			map[string]string{"team": "data", "cost-centre": ""}, nil},
		{"Batch map", `{"team":"data","project":"sales 2026"}`, map[string]string{"team": "data", "project": "sales 2026"}, nil},
		{"none", `null`, nil, nil},
		{"empty list", `[]`, nil, nil},
		{"AWS characters", `{"a_b.c:d/e+f-g@h i":"x=y/z@1","équipe":"données"}`, map[string]string{"a_b.c:d/e+f-g@h i": "x=y/z@1", "équipe": "données"}, nil},
		{"at the bounds", `{"` + strings.Repeat("k", 128) + `":"` + strings.Repeat("v", 256) + `"}`,
			map[string]string{strings.Repeat("k", 128): strings.Repeat("v", 256)}, nil},
		{"50 tags", many(50), nil, nil},
		{"51 tags", many(51), nil, []string{"tags: 51 tags: at most 50"}},
		{"empty key", `[{"key":"","value":"x"}]`, nil, []string{"tags[0].key: empty key: a key has 1 to 128 characters"}},
		{"long key", `[{"key":"` + strings.Repeat("é", 129) + `"}]`, nil, []string{"tags[0].key: key of 129 characters: at most 128"}},
		{"long value", `[{"key":"a","value":"` + strings.Repeat("v", 257) + `"}]`, nil, []string{"tags[0].value: value of 257 characters: at most 256"}},
		{"equals in key", `[{"key":"a=b","value":"x"}]`, nil, []string{`tags[0].key: key "a=b": character '=' not allowed`}},
		{"control character", `{"team":"da\nta"}`, nil, []string{`tags["team"]: value "da\nta": character '\n' not allowed`}},
		{"comma", `[{"key":"a","value":"x,y"}]`, nil, []string{`tags[0].value: value "x,y": character ',' not allowed`}},
		{"reserved", `[{"key":"team","value":"a"},{"key":"Gantry:pipeline","value":"p"},{"key":"gantry.run","value":"r"}]`, nil,
			[]string{`tags[1].key: key "Gantry:pipeline": the prefixes gantry: and gantry. are reserved`,
				`tags[2].key: key "gantry.run": the prefixes gantry: and gantry. are reserved`}},
		{"reserved in the map", `{"gantry:x":"y"}`, nil, []string{`tags["gantry:x"]: key "gantry:x": the prefixes`}},
		{"aws: is not reserved", `{"aws:x":"y"}`, map[string]string{"aws:x": "y"}, nil},
		{"duplicate", `[{"key":"team","value":"a"},{"key":"x","value":"b"},{"key":"team","value":"c"}]`, nil,
			[]string{`tags[2].key: "team": given twice (also tags[0].key)`}},
		{"all problems at once", `[{"key":""},{"key":"a","value":"` + strings.Repeat("v", 257) + `"},{"key":"a"}]`, nil,
			[]string{"tags[0].key: empty key", "tags[1].value: value of 257", `tags[2].key: "a": given twice (also tags[1].key)`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var req SubmitRequest
			if err := json.Unmarshal([]byte(`{"taskDefinition":"etl","tags":`+tt.tags+`}`), &req); err != nil {
				t.Fatal(err)
			}
			err := req.Validate()
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				if tt.want != nil && !equalTags(req.Tags.Map(), tt.want) {
					t.Errorf("tags %v, want %v", req.Tags.Map(), tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.errs)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.errs) {
				t.Fatalf("Validate() = %v, want %d problems", err, len(tt.errs))
			}
			for i, want := range tt.errs {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("problem %d: %q, want %q", i, lines[i], want)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) || ErrorCode(err) != CodeInvalidArgument {
				t.Errorf("%v is not a field error", err)
			}
		})
	}
}

// TestTagsOfTheWrongShape: what is neither shape says what it wants.
func TestTagsOfTheWrongShape(t *testing.T) {
	for _, tags := range []string{`"team=data"`, `{"team":1}`, `[{"key":1}]`, `[["team","data"]]`, `3`} {
		var req SubmitRequest
		err := json.Unmarshal([]byte(`{"taskDefinition":"etl","tags":`+tags+`}`), &req)
		if err == nil || !strings.Contains(err.Error(), `tags: want a list of {"key": ..., "value": ...} (as ECS RunTask) or an object of strings (as AWS Batch SubmitJob)`) {
			t.Errorf("tags %s: %v", tags, err)
		}
	}
}

func TestParseTag(t *testing.T) {
	for _, tt := range []struct {
		in              string
		keyOnly         bool
		key, value, err string
		has             bool
	}{
		{in: "team=data", key: "team", value: "data", has: true},
		{in: "team=", key: "team", has: true},
		{in: "url=a=b", key: "url", value: "a=b", has: true},
		{in: "team", err: `"team": want KEY=VALUE (KEY= for an empty value)`},
		{in: "team", keyOnly: true, key: "team"},
		{in: "=data", err: `"=data": empty key`},
		{in: "gantry:x=1", err: `"gantry:x=1": key "gantry:x": the prefixes gantry: and gantry. are reserved`},
		{in: "team=a,b", err: `"team=a,b": value "a,b": character ',' not allowed`},
	} {
		k, v, has, err := ParseTag(tt.in, tt.keyOnly)
		switch {
		case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.err)):
			t.Errorf("ParseTag(%q) error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || k != tt.key || v != tt.value || has != tt.has):
			t.Errorf("ParseTag(%q) = %q, %q, %v, %v", tt.in, k, v, has, err)
		}
	}
}

func equalTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestPipelineFileTags: a pipeline file's tags, at the top and per stage,
// take either shape, and their problems are named with the file's other
// problems, a stage's under its path; so are the stages whose runs would
// have more than MaxTags with the pipeline's.
func TestPipelineFileTags(t *testing.T) {
	p, err := ParsePipeline([]byte("name: p\ntags: {team: data, tier: gold}\n" +
		"stages: [{name: a, taskDefinition: t, tags: [{key: tier, value: bronze}]}, {name: b, taskDefinition: t}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pr := &PipelineRun{Spec: *p, Tags: map[string]string{"reason": "rerun", "team": "ops"}}
	if got := pr.StageTags(&p.Stages[0]); len(got) != 3 || got["team"] != "ops" || got["tier"] != "bronze" || got["reason"] != "rerun" {
		t.Errorf("stage a's tags %v; want the run's team over the file's, its own tier over the file's", got)
	}
	if got := (&PipelineRun{Spec: *p}).StageTags(&p.Stages[1]); len(got) != 2 || got["tier"] != "gold" {
		t.Errorf("stage b's tags %v; want the file's", got)
	}

	var many strings.Builder
	for i := range 49 {
		fmt.Fprintf(&many, "k%d: v, ", i)
	}
	_, err = ParsePipeline([]byte("name: p\ntags: {" + many.String() + "team: data}\n" +
		"stages: [{name: a, taskDefinition: t, tags: {'gantry:x': y, owner: 'a,b'}}, {name: b, taskDefinition: t}]\n"))
	for _, want := range []string{
		`stages[0](a).tags["gantry:x"]: key "gantry:x": the prefixes gantry: and gantry. are reserved`,
		`stages[0](a).tags["owner"]: value "a,b": character ',' not allowed`,
		"stages[0](a).tags: 52 tags, the pipeline's and its own together: at most 50",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePipeline: %v\nwant %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "stages[1]") {
		t.Errorf("stage b, with the pipeline's 50 tags alone, is named: %v", err)
	}
}

// TestPipelineFilePropagateTags: propagateTags at the top is every
// stage's, a stage's own wins (NONE too), and a stage's run is submitted
// with it; other values are refused naming their path, all at once.
func TestPipelineFilePropagateTags(t *testing.T) {
	p, err := ParsePipeline([]byte("name: p\npropagateTags: TASK_DEFINITION\n" +
		"stages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, propagateTags: NONE}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pr := &PipelineRun{Spec: *p}
	if got := pr.StagePropagateTags(&p.Stages[0]); got != PropagateTaskDefinition {
		t.Errorf("stage a: %q; want the pipeline's TASK_DEFINITION", got)
	}
	if got := pr.StagePropagateTags(&p.Stages[1]); got != PropagateNone {
		t.Errorf("stage b: %q; want its own NONE", got)
	}
	p, err = ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t}, {name: b, taskDefinition: t, propagateTags: TASK_DEFINITION}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	pr = &PipelineRun{Spec: *p}
	if a, b := pr.StagePropagateTags(&p.Stages[0]), pr.StagePropagateTags(&p.Stages[1]); a != "" || b != PropagateTaskDefinition {
		t.Errorf("stages a, b: %q, %q; want none and TASK_DEFINITION", a, b)
	}

	_, err = ParsePipeline([]byte("name: p\npropagateTags: yes\n" +
		"stages: [{name: extract, taskDefinition: t}, {name: load, taskDefinition: t, propagateTags: task_definition}, {name: c, taskDefinition: t, propagateTags: SERVICE}]\n"))
	for _, want := range []string{
		`propagateTags: "yes": want TASK_DEFINITION or NONE`,
		`stages[1](load).propagateTags: "task_definition": want TASK_DEFINITION or NONE`,
		`stages[2](c).propagateTags: "SERVICE": gantry has no services`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePipeline: %v\nwant %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "stages[0]") {
		t.Errorf("stage extract, which takes the pipeline's, is named: %v", err)
	}
}

// TestPipelineTagsOfTheWrongShapeAreNamed: tags in neither shape in a
// pipeline file are named by their paths, at the top or of which stage,
// each of them, not as a bare "tags" that reads as the top level's.
func TestPipelineTagsOfTheWrongShapeAreNamed(t *testing.T) {
	for _, tt := range []struct {
		file string
		want []string
	}{
		{"name: p\nstages:\n  - name: a\n    taskDefinition: etl\n  - name: b\n    tags: team=x\n    taskDefinition: etl\n",
			[]string{"stages[1](b).tags: want a list of"}},
		{"name: p\ntags: 5\nstages:\n  - name: a\n    tags: [[team, x]]\n    taskDefinition: etl\n",
			[]string{"tags: want a list of", "stages[0](a).tags: want a list of"}},
		{`{"name": "p", "stages": [{"tags": {"team": 1}, "taskDefinition": "etl"}]}`,
			[]string{"stages[0].tags: want a list of"}},
		// Keys in another case, which encoding/json takes as the fields.
		{`{"name": "p", "Stages": [{"Name": "a", "Tags": 5, "taskDefinition": "etl"}]}`,
			[]string{"stages[0](a).tags: want a list of"}},
		// A key no field takes, which decoding stopped before, too.
		{"name: p\nstages:\n  - name: a\n    tags: team=x\n    taskDefinition: etl\n    timeoutSecond: 5\n",
			[]string{"stages[0](a).tags: want a list of", `stages[0](a).timeoutSecond: unknown field; did you mean "timeoutSeconds"?`}},
	} {
		_, err := ParsePipeline([]byte(tt.file))
		if err == nil {
			t.Errorf("%q: no error", tt.file)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v; want %q", tt.file, err, w)
			}
		}
		if n := strings.Count(err.Error(), "want a list of") + strings.Count(err.Error(), "unknown field"); n != len(tt.want) {
			t.Errorf("%q: %v; want %d problems", tt.file, err, len(tt.want))
		}
	}
}
