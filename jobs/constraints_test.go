package jobs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseConstraint(t *testing.T) {
	tests := []struct {
		in      string
		want    Constraint
		problem string
	}{
		{"disk=ssd", Constraint{Key: "disk", Value: "ssd"}, ""},
		{"zone!=eu-1", Constraint{Key: "zone", Value: "eu-1", Not: true}, ""},
		{"gpu=", Constraint{Key: "gpu"}, ""},
		{"example.com/licence=a:b@c+d", Constraint{Key: "example.com/licence", Value: "a:b@c+d"}, ""},
		{"gpu", Constraint{Key: "gpu", Presence: true}, ""},
		{"!spot", Constraint{Key: "spot", Not: true, Presence: true}, ""},
		{"example.com/gpu", Constraint{Key: "example.com/gpu", Presence: true}, ""},
		{"", Constraint{}, `"": empty: want K=V, K!=V, K or !K`},
		{"!", Constraint{}, `"!": empty key`},
		{"!!spot", Constraint{}, `"!!spot": key "!spot": character '!' not allowed: want K=V, K!=V, K or !K`},
		{"!disk=ssd", Constraint{}, `"!disk=ssd": key "!disk": character '!' not allowed: want K=V, K!=V, K or !K`},
		{"disk!", Constraint{}, `"disk!": key "disk!": character '!' not allowed`},
		{"di sk", Constraint{}, `"di sk": key "di sk": character ' ' not allowed`},
		{"=ssd", Constraint{}, `"=ssd": empty key`},
		{"!=ssd", Constraint{}, `"!=ssd": empty key`},
		{"di sk=ssd", Constraint{}, `"di sk=ssd": key "di sk": character ' ' not allowed: use letters, digits and - _ . /`},
		{"disk=s d", Constraint{}, `value "s d": character ' ' not allowed`},
		{"disk=a=b", Constraint{}, `value "a=b": character '=' not allowed`},
		{"k!!=v", Constraint{}, `key "k!": character '!' not allowed`},
		{strings.Repeat("k", 129) + "=v", Constraint{}, "key of 129 characters: at most 128"},
		{"k=" + strings.Repeat("v", 257), Constraint{}, "value of 257 characters: at most 256"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseConstraint(tt.in)
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err %v, want one saying %q", err, tt.problem)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestConstraintsMatch(t *testing.T) {
	labels := map[string]string{"disk": "ssd", "zone": "eu-2", "gpu": ""}
	tests := []struct {
		cs   []string
		want bool
	}{
		{nil, true},
		{[]string{"disk=ssd"}, true},
		{[]string{"disk=hdd"}, false},
		{[]string{"disk=ssd", "zone=eu-2"}, true},
		{[]string{"disk=ssd", "zone=eu-1"}, false},
		{[]string{"zone!=eu-1"}, true},
		{[]string{"zone!=eu-2"}, false},
		{[]string{"rack!=r1"}, true}, // no label rack: not r1
		{[]string{"rack="}, false},   // no label rack is not an empty one
		{[]string{"gpu="}, true},
		{[]string{"disk"}, true},
		{[]string{"gpu"}, true}, // an empty value is a value
		{[]string{"rack"}, false},
		{[]string{"!rack"}, true},
		{[]string{"!disk"}, false},
		{[]string{"!gpu"}, false},
		{[]string{"disk", "disk=ssd", "!rack", "zone!=eu-1"}, true},
		{[]string{"disk", "!zone"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.cs, ","), func(t *testing.T) {
			cs := mustConstraints(t, tt.cs...)
			if got := cs.Match(labels); got != tt.want {
				t.Fatalf("Match = %t, want %t", got, tt.want)
			}
			if got := cs.Match(nil); got != !slices.ContainsFunc(cs, func(c Constraint) bool { return !c.Not }) {
				t.Fatalf("a worker without labels: Match = %t", got)
			}
		})
	}
}

// TestConstraintsMatchAllocatesNothing: a worker checks every job it
// takes; with constraints or without, the check costs no allocation.
func TestConstraintsMatchAllocatesNothing(t *testing.T) {
	labels := map[string]string{"disk": "ssd"}
	cs := mustConstraints(t, "disk=ssd", "zone!=eu-1", "disk", "!gpu")
	var none Constraints
	if n := testing.AllocsPerRun(100, func() { _ = cs.Match(labels); _ = none.Match(labels) }); n != 0 {
		t.Fatalf("%v allocations per Match", n)
	}
	td := TaskDefinition{}
	if n := testing.AllocsPerRun(100, func() { _ = MergeConstraints(td.Constraints(), none) }); n != 0 {
		t.Fatalf("%v allocations merging no constraints", n)
	}
}

func TestConstraintsJSON(t *testing.T) {
	var req SubmitRequest
	if err := json.Unmarshal([]byte(`{"taskDefinition":"a","constraints":["zone!=eu-1","disk=ssd"]}`), &req); err != nil {
		t.Fatal(err)
	}
	if got := req.Constraints.String(); got != "zone!=eu-1, disk=ssd" {
		t.Fatalf("list: %q", got)
	}
	if err := json.Unmarshal([]byte(`{"taskDefinition":"a","constraints":["gpu","!spot"]}`), &req); err != nil {
		t.Fatal(err)
	}
	if got := req.Constraints.String(); got != "gpu, !spot" || !req.Constraints[1].Presence || !req.Constraints[1].Not {
		t.Fatalf("presence list: %q %+v", got, req.Constraints)
	}
	if err := json.Unmarshal([]byte(`{"taskDefinition":"a","constraints":{"zone":"eu-2","disk":"ssd"}}`), &req); err != nil {
		t.Fatal(err)
	}
	if got := req.Constraints.String(); got != "disk=ssd, zone=eu-2" {
		t.Fatalf("object: %q", got)
	}
	out, err := json.Marshal(RunSpec{Constraints: req.Constraints})
	if err != nil || !strings.Contains(string(out), `"constraints":["disk=ssd","zone=eu-2"]`) {
		t.Fatalf("written %s, %v", out, err)
	}
	if out, _ := json.Marshal(RunSpec{}); strings.Contains(string(out), "constraints") {
		t.Fatalf("none written as %s", out)
	}
	for _, bad := range []string{`{"constraints":3}`, `{"constraints":[1]}`, `{"constraints":{"disk":1}}`, `{"constraints":"disk=ssd"}`} {
		if err := json.Unmarshal([]byte(bad), &req); err == nil || !strings.Contains(err.Error(), `want a list of "K=V", "K!=V", "K" or "!K" strings`) {
			t.Errorf("%s: err %v", bad, err)
		}
	}
}

// TestConstraintsValidate: every problem at once, each naming its field.
func TestConstraintsValidate(t *testing.T) {
	tests := []struct {
		json string
		want []string
	}{
		{`["disk=ssd","zone!=eu-1","zone!=eu-3"]`, nil},
		{`["di sk","=x","disk=s d","!"]`, []string{
			`constraints[0]: "di sk": key "di sk": character ' ' not allowed`,
			`constraints[1]: "=x": empty key`,
			`constraints[2]: "disk=s d": value "s d": character ' ' not allowed`,
			`constraints[3]: "!": empty key`}},
		{`["gpu","!gpu"]`, []string{`constraints[1]: "!gpu": contradicts constraints[0] (gpu): a worker cannot both have label gpu and lack it`}},
		{`["!gpu","gpu=a100"]`, []string{`constraints[1]: "gpu=a100": contradicts constraints[0] (!gpu): a worker cannot both have label gpu and lack it`}},
		{`["gpu","gpu"]`, []string{`constraints[1]: "gpu": given twice (also constraints[0])`}},
		{`["!spot","!spot"]`, []string{`constraints[1]: "!spot": given twice (also constraints[0])`}},
		{`["gpu","gpu=a100","gpu!=t4","!spot","spot!=yes"]`, nil}, // each says more than another, or other than it
		{`["gpu!=t4","!gpu"]`, nil}, // no label gpu is not t4
		{`["disk=ssd","disk=ssd"]`, []string{`constraints[1]: "disk=ssd": given twice (also constraints[0])`}},
		{`["disk=ssd","disk=hdd"]`, []string{`constraints[1]: "disk=hdd": contradicts constraints[0] (disk=ssd): a worker's label has one value`}},
		{`["disk=ssd","disk!=ssd"]`, []string{`constraints[1]: "disk!=ssd": contradicts constraints[0] (disk=ssd)`}},
		{`["disk=ssd","disk!=hdd"]`, nil},
		{`{"a b":"x"}`, []string{`constraints["a b"]: "a b=x": key "a b": character ' ' not allowed`}},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			var cs Constraints
			if err := json.Unmarshal([]byte(tt.json), &cs); err != nil {
				t.Fatal(err)
			}
			err := cs.Validate("constraints")
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q lacks %q", err, w)
				}
			}
		})
	}
	many := make([]string, MaxConstraints+1)
	for i := range many {
		many[i] = fmt.Sprintf("k%d=v", i)
	}
	if err := mustConstraints(t, many...).Validate("constraints"); err == nil || !strings.Contains(err.Error(), "constraints: 17 constraints: at most 16") {
		t.Fatalf("17 constraints: %v", err)
	}
	req := SubmitRequest{TaskDefinition: json.RawMessage(`"a"`), Constraints: Constraints{{Key: ""}}}
	if err := req.Validate(); err == nil || !strings.Contains(err.Error(), `constraints[0]: "=": empty key`) {
		t.Fatalf("submit with an empty key: %v", err)
	}
}

func TestMergeConstraints(t *testing.T) {
	base := mustConstraints(t, "zone!=eu-1", "disk=ssd", "zone!=eu-3")
	over := mustConstraints(t, "disk=hdd", "gpu=a100")
	if got := MergeConstraints(base, over).String(); got != "disk=hdd, gpu=a100, zone!=eu-1, zone!=eu-3" {
		t.Fatalf("merged %q", got)
	}
	if got := MergeConstraints(base, nil).String(); got != "disk=ssd, zone!=eu-1, zone!=eu-3" {
		t.Fatalf("merged with none %q", got)
	}
	if got := MergeConstraints(nil, nil); got != nil {
		t.Fatalf("none merged: %v", got)
	}
	if base.String() != "zone!=eu-1, disk=ssd, zone!=eu-3" {
		t.Fatalf("base changed: %q", base)
	}
}

func TestPlacementConstraintMapping(t *testing.T) {
	tests := []struct {
		typ, expr string
		want      string // "" when not mapped
	}{
		{"memberOf", "attribute:disk == ssd", "disk=ssd"},
		{"memberOf", "attribute:zone != eu-1", "zone!=eu-1"},
		{"memberOf", "  attribute:disk==ssd ", "disk=ssd"},
		{"memberOf", "attribute:ecs.instance-type == t2.micro", ""},
		{"memberOf", "attribute:ecs.instance-type =~ t2.*", ""},
		{"memberOf", "attribute:disk == ssd and attribute:zone == a", ""},
		{"memberOf", "attribute:disk in [ssd, hdd]", ""},
		{"memberOf", "attribute:disk == ", ""},
		{"memberOf", "task:group == etl", ""},
		{"distinctInstance", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.expr, func(t *testing.T) {
			c, ok := PlacementConstraint{Type: tt.typ, Expression: tt.expr}.Constraint()
			if ok != (tt.want != "") || (ok && c.String() != tt.want) {
				t.Fatalf("got %v, %t; want %q", c, ok, tt.want)
			}
		})
	}
}

// TestTaskDefinitionPlacementConstraints: the simple memberOf ones are
// kept and constrain the runs; the others are dropped with a warning.
func TestTaskDefinitionPlacementConstraints(t *testing.T) {
	td, warn, err := DecodeTaskDefinition([]byte(`{"family":"etl","containerDefinitions":[{"name":"main","image":"x"}],
		"placementConstraints":[{"type":"memberOf","expression":"attribute:disk == ssd"},{"type":"distinctInstance"},
		{"type":"memberOf","expression":"attribute:ecs.instance-type =~ t2.*"},{"type":"memberOf","expression":"attribute:zone != eu-1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := td.Constraints().String(); got != "disk=ssd, zone!=eu-1" {
		t.Fatalf("constraints %q", got)
	}
	if len(td.PlacementConstraints) != 2 {
		t.Fatalf("kept %+v", td.PlacementConstraints)
	}
	w := strings.Join(warn, "\n")
	for _, s := range []string{"placementConstraints[1] (distinctInstance)", "placementConstraints[2] (memberOf attribute:ecs.instance-type =~ t2.*)"} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings %q lack %q", w, s)
		}
	}
	if strings.Contains(w, "not kept") {
		t.Errorf("warnings %q name an AWS-only constraint as a placement lost", w)
	}
	// memberOf on the user's own attribute that gantry cannot read is
	// named apart: the runs lose that placement, which is not AWS's alone.
	_, warn, err = DecodeTaskDefinition([]byte(`{"family":"etl","containerDefinitions":[{"name":"main","image":"x"}],
		"placementConstraints":[{"type":"memberOf","expression":"attribute:disk == ssd and attribute:zone != eu-1"},
		{"type":"memberOf","expression":"attribute:disk in [ssd, nvme]"},{"type":"distinctInstance"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	w = strings.Join(warn, "\n")
	for _, s := range []string{
		`placementConstraints not kept, so the runs may go to any worker of their cluster: placementConstraints[0] (memberOf attribute:disk == ssd and attribute:zone != eu-1), placementConstraints[1] (memberOf attribute:disk in [ssd, nvme]); gantry reads one "attribute:K == V"`,
		`ignored placementConstraints that only mean something on AWS: placementConstraints[2] (distinctInstance);`,
	} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings %q lack %q", w, s)
		}
	}
	// Kept, it reads back the same, as a stored definition.
	data, _ := json.Marshal(td)
	again, err := DecodeStoredTaskDefinition(data)
	if err != nil || again.Constraints().String() != "disk=ssd, zone!=eu-1" {
		t.Fatalf("stored: %v, %v", again, err)
	}
	// Kept ones that no worker could meet together are refused.
	_, _, err = DecodeTaskDefinition([]byte(`{"family":"etl","containerDefinitions":[{"name":"main","image":"x"}],
		"placementConstraints":[{"type":"memberOf","expression":"attribute:disk == ssd"},{"type":"memberOf","expression":"attribute:disk == hdd"}]}`))
	if err == nil || !strings.Contains(err.Error(), `placementConstraints[1]: "disk=hdd": contradicts placementConstraints[0] (disk=ssd)`) {
		t.Fatalf("contradictory: %v", err)
	}
	// A definition made otherwise, with one gantry cannot map, says which.
	bad := TaskDefinition{Family: "etl", ContainerDefinitions: []ContainerDefinition{{Name: "main", Image: "x"}},
		PlacementConstraints: []PlacementConstraint{{Type: "distinctInstance"}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `placementConstraints[0]: type "distinctInstance"`) {
		t.Fatalf("unmapped: %v", err)
	}
}

func TestPipelineConstraints(t *testing.T) {
	p, err := ParsePipeline([]byte(`
name: p
constraints: [disk=ssd, zone!=eu-1]
stages:
  - name: a
    taskDefinition: a
  - name: b
    taskDefinition: b
    constraints: {disk: hdd}
`))
	if err != nil {
		t.Fatal(err)
	}
	pr := &PipelineRun{Spec: *p}
	if got := pr.StageConstraints(&p.Stages[0]).String(); got != "disk=ssd, zone!=eu-1" {
		t.Fatalf("stage a: %q", got)
	}
	if got := pr.StageConstraints(&p.Stages[1]).String(); got != "disk=hdd, zone!=eu-1" {
		t.Fatalf("stage b: %q", got)
	}
	_, err = ParsePipeline([]byte(`
name: p
constraints: [disk=ssd, "disk=hdd"]
stages:
  - name: a
    taskDefinition: a
    constraints: [x y]
  - name: b
    taskDefinition: b
    constraints: 3
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`stages[1](b).constraints: want a list of "K=V", "K!=V", "K" or "!K" strings`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err %q lacks %q", err, want)
		}
	}
	_, err = ParsePipeline([]byte(`
name: p
constraints: [disk=ssd, "disk=hdd"]
stages:
  - name: a
    taskDefinition: a
    constraints: [x y]
`))
	for _, want := range []string{`constraints[1]: "disk=hdd": contradicts constraints[0] (disk=ssd)`,
		`stages[0](a).constraints[0]: "x y": key "x y": character ' ' not allowed`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v lacks %q", err, want)
		}
	}
}

// TestRunConstraintsOfPipelineRun: a pipeline run's own constraints hold
// for every stage besides the file's (top-level and the stage's), said
// once when the file has them too; one that contradicts the file's for
// some stage is refused, naming both, once however many stages share it.
func TestRunConstraintsOfPipelineRun(t *testing.T) {
	p, err := ParsePipeline([]byte(`
name: p
constraints: [disk=ssd, zone!=eu-1, "!spot"]
stages:
  - {name: a, taskDefinition: a}
  - {name: b, taskDefinition: b, constraints: {disk: hdd}}
  - {name: c, taskDefinition: c, constraints: [gpu=a100, spot]}
`))
	if err != nil {
		t.Fatal(err)
	}
	pr := &PipelineRun{Spec: *p, Constraints: mustConstraints(t, "zone!=eu-3", "rack", "!spot")}
	for i, want := range []string{
		"disk=ssd, rack, !spot, zone!=eu-1, zone!=eu-3",
		"disk=hdd, rack, !spot, zone!=eu-1, zone!=eu-3",
		"disk=ssd, gpu=a100, rack, spot, !spot, zone!=eu-1, zone!=eu-3", // refused at the start: see below
	} {
		if got := pr.StageConstraints(&p.Stages[i]).String(); got != want {
			t.Errorf("stage %s: %q, want %q", p.Stages[i].Name, got, want)
		}
	}
	tests := []struct {
		run  []string
		want []string // nil: accepted
	}{
		{[]string{"zone!=eu-3", "rack", "disk"}, nil},
		{[]string{"disk=ssd"}, []string{`constraints[0]: "disk=ssd": contradicts the pipeline file's stages[1](b).constraints[0] (disk=hdd): a worker's label has one value`}},
		{[]string{"rack", "disk!=ssd"}, []string{`constraints[1]: "disk!=ssd": contradicts the pipeline file's constraints[0] (disk=ssd)`}},
		{[]string{"!spot"}, []string{`constraints[0]: "!spot": contradicts the pipeline file's stages[2](c).constraints[1] (spot): a worker cannot both have label spot and lack it`}},
		{[]string{"!gpu", "spot=yes"}, []string{
			`constraints[0]: "!gpu": contradicts the pipeline file's stages[2](c).constraints[0] (gpu=a100)`,
			`constraints[1]: "spot=yes": contradicts the pipeline file's constraints[2] (!spot)`}},
		{[]string{"zone=eu-1"}, []string{`constraints[0]: "zone=eu-1": contradicts the pipeline file's constraints[1] (zone!=eu-1)`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.run, ","), func(t *testing.T) {
			err := p.CheckRunConstraints("constraints", mustConstraints(t, tt.run...))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tt.want)
			}
			for _, w := range tt.want {
				if strings.Count(err.Error(), w) != 1 {
					t.Errorf("err %q does not say once %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("%d problems, want %d: %v", n, len(tt.want), err)
			}
		})
	}
	var many []string
	for i := range MaxConstraints - 3 {
		many = append(many, fmt.Sprintf("k%d", i))
	}
	err = p.CheckRunConstraints("constraints", mustConstraints(t, many...))
	if err == nil || !strings.Contains(err.Error(), "constraints: 17 constraints for stages[2](c), the pipeline file's and the run's together: at most 16") ||
		strings.Contains(err.Error(), "stages[0]") {
		t.Fatalf("too many: %v", err)
	}
}

// TestParseLabel: every label a worker takes is one a constraint can ask
// for, and a label a constraint could not name is refused saying why.
func TestParseLabel(t *testing.T) {
	for _, tt := range []struct{ in, problem string }{
		{"disk=ssd", ""},
		{"gpu=", ""},
		{"example.com/licence=a:b@c+d", ""},
		{"disk", `"disk": want K=V: disk= for a label disk of no value (gantry run --constraint disk asks for a label disk of any value)`},
		{"!spot", `"!spot": want K=V`},
		{"=ssd", `"=ssd": empty key: want K=V`},
		{"disk type=ssd", `"disk type=ssd": key "disk type": character ' ' not allowed: use letters, digits and - _ . / (so that gantry run --constraint can ask for it)`},
		{"!spot=yes", `key "!spot": character '!' not allowed`},
		{"disk=a,b", `value "a,b": character ',' not allowed`},
		{"disk=a=b", `value "a=b": character '=' not allowed`},
		{strings.Repeat("k", 129) + "=v", "key of 129 characters: at most 128"},
		{"k=" + strings.Repeat("v", 257), "value of 257 characters: at most 256"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			k, v, err := ParseLabel(tt.in)
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err %v, want one saying %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{k: v}
			for _, s := range []string{k + "=" + v, k} {
				c, err := ParseConstraint(s)
				if err != nil || !c.Met(labels) {
					t.Fatalf("label %q cannot be asked for by %q: %v", tt.in, s, err)
				}
			}
		})
	}
}

// TestPipelinePresenceConstraints: a pipeline file's K and "!K" read as
// presence constraints; an unquoted !K, which YAML reads as a tag on
// nothing, is refused saying to quote it.
func TestPipelinePresenceConstraints(t *testing.T) {
	p, err := ParsePipeline([]byte("name: p\nconstraints: [gpu, \"!spot\"]\nstages: [{name: a, taskDefinition: a, constraints: [\"!gpu\"]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := (&PipelineRun{Spec: *p}).StageConstraints(&p.Stages[0]).String(); got != "!gpu, !spot" {
		t.Fatalf("stage a: %q", got)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"block, alone", "name: p\nconstraints:\n  - !spot\nstages: [{name: a, taskDefinition: a}]\n",
			`pipeline: line 3: YAML tag !spot: gantry reads no YAML tags; quote a value that starts with ! ("!spot", as a constraint !K is written)`},
		// YAML reads [!spot, disk=ssd] as disk=ssd tagged "!spot,": the
		// !spot constraint would be lost without a word.
		{"flow, first", "name: p\nstages:\n  - name: a\n    taskDefinition: a\n    constraints: [!spot, disk=ssd]\n",
			`pipeline: line 5: YAML tag !spot,: gantry reads no YAML tags; quote a value that starts with ! ("!spot", as a constraint !K is written)`},
		{"block, before a value", "name: p\nconstraints:\n  - !spot disk=ssd\nstages: [{name: a, taskDefinition: a}]\n",
			`pipeline: line 3: YAML tag !spot: gantry reads no YAML tags`},
		// The tag runs to the ], and YAML's own error says nothing of it.
		{"flow, last", "name: p\nconstraints: [disk=ssd, !spot]\nstages: [{name: a, taskDefinition: a}]\n",
			`(if a value there starts with !, quote it: "!spot"; a bare ! starts a YAML tag)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePipeline([]byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("unquoted !spot: %v, want %q", err, tt.want)
			}
		})
	}
	// Quoted, or a standard tag, reads as text.
	p, err = ParsePipeline([]byte("name: p\nconstraints: [\"!spot\", '!gpu', !!str disk=ssd]\nstages: [{name: a, taskDefinition: a}]\n"))
	if err != nil || p.Constraints.String() != "!spot, !gpu, disk=ssd" {
		t.Fatalf("quoted: %v, %v", p, err)
	}
}

func TestRerunKeepsConstraints(t *testing.T) {
	r := &Run{RunID: "r1", Cluster: "etl", Spec: RunSpec{Constraints: mustConstraints(t, "disk=ssd", "zone!=eu-1")}}
	sub := RerunRequest{RunID: "r1"}.Submission(r, &r.Spec.Task)
	if got := sub.Constraints.String(); got != "disk=ssd, zone!=eu-1" {
		t.Fatalf("kept %q", got)
	}
	sub = RerunRequest{RunID: "r1", Constraints: mustConstraints(t, "disk=hdd")}.Submission(r, &r.Spec.Task)
	if got := sub.Constraints.String(); got != "disk=hdd, zone!=eu-1" {
		t.Fatalf("replaced on disk: %q", got)
	}
	if err := (RerunRequest{RunID: "r1", Constraints: Constraints{{Key: "a b"}}}).Validate(); err == nil || !strings.Contains(err.Error(), "constraints[0]") {
		t.Fatalf("bad rerun constraint: %v", err)
	}
}

// FuzzConstraints: whatever reads, as a flag or as JSON, and validates,
// writes back as itself, and a constraint a worker's labels are built to
// meet is met.
func FuzzConstraints(f *testing.F) {
	for _, s := range []string{`["disk=ssd"]`, `["zone!=eu-1","disk="]`, `{"disk":"ssd"}`, `["a!=b=c"]`, `[""]`, `["!="]`, `null`, `{"":""}`,
		`["gpu","!spot"]`, `["!"]`, "gpu", "!spot", `["!a=b"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		if c, err := ParseConstraint(data); err == nil {
			back, err := ParseConstraint(c.String())
			if err != nil || back != c {
				t.Fatalf("%q read as %+v, back as %+v, %v", data, c, back, err)
			}
			labels := map[string]string{c.Key: c.Value}
			switch {
			case c.Presence && c.Not:
				delete(labels, c.Key)
			case c.Not:
				labels[c.Key] = c.Value + "x"
			}
			if !(Constraints{c}).Match(labels) {
				t.Fatalf("%q not met by %v", data, labels)
			}
			// A constraint never holds with one it is said to contradict,
			// and holds with any other for some worker.
			for _, o := range []Constraint{{Key: c.Key}, {Key: c.Key, Value: "v"}, {Key: c.Key, Value: c.Value},
				{Key: c.Key, Not: true, Value: c.Value}, {Key: c.Key, Not: true, Value: "v"},
				{Key: c.Key, Presence: true}, {Key: c.Key, Presence: true, Not: true}} {
				both := false
				for _, l := range []map[string]string{nil, {c.Key: c.Value}, {c.Key: o.Value}, {c.Key: c.Value + o.Value + "x"}} {
					both = both || c.Met(l) && o.Met(l)
				}
				if conflict := c.Conflict(o, "o") != "" && !c.same(o); conflict == both {
					t.Fatalf("%q and %q: conflict %t, yet both met by some worker: %t", c, o, conflict, both)
				}
			}
		}
		var cs Constraints
		if json.Unmarshal([]byte(data), &cs) != nil || cs.Validate("constraints") != nil {
			return
		}
		out, err := json.Marshal(cs)
		if err != nil {
			t.Fatal(err)
		}
		var again Constraints
		if err := json.Unmarshal(out, &again); err != nil || again.Validate("constraints") != nil || again.String() != cs.String() {
			t.Fatalf("%s wrote %s, read back as %v, %v", data, out, again, err)
		}
		merged := MergeConstraints(cs)
		if merged.Validate("constraints") != nil || len(merged) != len(cs) {
			t.Fatalf("%s merged alone: %v", data, merged)
		}
	})
}

func mustConstraints(t testing.TB, ss ...string) Constraints {
	t.Helper()
	var cs Constraints
	for _, s := range ss {
		c, err := ParseConstraint(s)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// TestStageConstraintConflictNamesTheStage: a conflict between a stage's
// own constraints names the other one by the stage's path, not by a bare
// constraints[0], which is the pipeline's.
func TestStageConstraintConflictNamesTheStage(t *testing.T) {
	_, err := ParsePipeline([]byte("name: p\nconstraints: [disk=ssd]\nstages: [{name: a, taskDefinition: t, constraints: [gpu, \"!gpu\"]}]\n"))
	want := `stages[0](a).constraints[1]: "!gpu": contradicts stages[0](a).constraints[0] (gpu): a worker cannot both have label gpu and lack it`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestInlinePlacementConflictNamesTheStage: a conflict between the
// placementConstraints of a stage's inline task definition names the
// other by its whole path, as the error's own path does, not by a bare
// placementConstraints[0]; so does a submission's inline definition.
func TestInlinePlacementConflictNamesTheStage(t *testing.T) {
	_, err := ParsePipeline([]byte(`name: p
stages:
  - name: a
    taskDefinition:
      family: f
      containerDefinitions: [{name: main, image: busybox}]
      placementConstraints:
        - {type: memberOf, expression: "attribute:gpu == t4"}
        - {type: memberOf, expression: "attribute:gpu != t4"}
`))
	want := `stages[0](a).taskDefinition.placementConstraints[1]: "gpu!=t4": contradicts stages[0](a).taskDefinition.placementConstraints[0] (gpu=t4)`
	if err == nil || err.Error() != want {
		t.Fatalf("pipeline: got %v, want %q", err, want)
	}
	req := SubmitRequest{TaskDefinition: []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"busybox"}],
		"placementConstraints":[{"type":"memberOf","expression":"attribute:gpu == t4"},{"type":"memberOf","expression":"attribute:gpu == a100"}]}`)}
	_, _, err = req.TaskRef()
	want = `taskDefinition.placementConstraints[1]: "gpu=a100": contradicts taskDefinition.placementConstraints[0] (gpu=t4): a worker's label has one value`
	if err == nil || err.Error() != want {
		t.Fatalf("submission: got %v, want %q", err, want)
	}
}

func TestPrefixRefs(t *testing.T) {
	for _, tc := range []struct{ msg, path, prefix, want string }{
		{"contradicts placementConstraints[0] (gpu=t4)", "placementConstraints[1]", "taskDefinition.",
			"contradicts taskDefinition.placementConstraints[0] (gpu=t4)"},
		{"given twice (also taskDefinition.placementConstraints[0])", "taskDefinition.placementConstraints[2]", "stages[1](b).",
			"given twice (also stages[1](b).taskDefinition.placementConstraints[0])"},
		// Not a path: the field's name alone, inside a longer name or path.
		{"required", "placementConstraints[1]", "x.", "required"},
		{"no placementConstraints here", "placementConstraints[1]", "x.", "no placementConstraints here"},
		{"see myplacementConstraints[0] and a.placementConstraints[0]", "placementConstraints[1]", "x.",
			"see myplacementConstraints[0] and a.placementConstraints[0]"},
		{"placementConstraints[0] and placementConstraints.x", "placementConstraints[1]", "x.",
			"x.placementConstraints[0] and x.placementConstraints.x"},
	} {
		if got := prefixRefs(tc.msg, tc.path, tc.prefix); got != tc.want {
			t.Errorf("prefixRefs(%q, %q, %q) = %q, want %q", tc.msg, tc.path, tc.prefix, got, tc.want)
		}
	}
}

// FuzzPrefixRefs: prefixRefs only ever inserts the prefix: taken out
// again, the message is as it was; and it never panics.
func FuzzPrefixRefs(f *testing.F) {
	f.Add("contradicts placementConstraints[0] (gpu=t4)", "placementConstraints[1]")
	f.Add("given twice (also constraints[\"disk\"])", `constraints["disk"]`)
	f.Add("a.b[0] and b[1]", "b[2]")
	f.Fuzz(func(t *testing.T, msg, path string) {
		const prefix = "\x00."
		if strings.Contains(msg, "\x00") {
			return
		}
		if got := strings.ReplaceAll(prefixRefs(msg, path, prefix), prefix, ""); got != msg {
			t.Fatalf("prefixRefs(%q, %q) changed more than prefixes: %q", msg, path, got)
		}
	})
}
