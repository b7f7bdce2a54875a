package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestSubmitAndListByTag: tags given in ECS RunTask's list shape or AWS
// Batch SubmitJob's map come back on the run as a map, and runs.list finds
// the runs by tag (key and value, or key alone, all of them), ended ones
// with all.
func TestSubmitAndListByTag(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	submit := func(tags string) string {
		t.Helper()
		var r jobs.Run
		e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","tags":`+tags+`}`, &r)
		return r.RunID
	}
	ecs := submit(`[{"key":"team","value":"data"},{"key":"env","value":"prod"}]`)
	batch := submit(`{"team":"data","cost-centre":""}`)
	web := submit(`{"team":"web","env":"prod"}`)
	untagged := submit(`null`)

	var got jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, ecs), &got)
	if len(got.Tags) != 2 || got.Tags["team"] != "data" || got.Tags["env"] != "prod" {
		t.Errorf("runs.get: tags %v", got.Tags)
	}
	m := e.req(e.op, "gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, batch))
	if !strings.Contains(string(m.Data), `"tags":{"cost-centre":"","team":"data"}`) {
		t.Errorf("the run JSON's tags are a map: %s", m.Data)
	}
	var plain jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, untagged), &plain)
	if plain.Tags != nil {
		t.Errorf("untagged run: tags %v", plain.Tags)
	}
	// One run ends: all finds it, the default (runs not ended) does not.
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q}`, batch), nil)

	for _, tt := range []struct {
		body string
		want []string
	}{
		{`{"tags":{"team":"data"}}`, []string{ecs}},
		{`{"all":true,"tags":{"team":"data"}}`, []string{batch, ecs}},
		{`{"all":true,"tags":{"env":"prod"}}`, []string{web, ecs}},
		{`{"all":true,"tags":{"team":"data","env":"prod"}}`, []string{ecs}},
		{`{"all":true,"tagKeys":["cost-centre"]}`, []string{batch}},
		{`{"all":true,"tags":{"cost-centre":""}}`, []string{batch}},
		{`{"all":true,"tagKeys":["team"],"tags":{"env":"prod"}}`, []string{web, ecs}},
		{`{"statuses":["CANCELED"],"tagKeys":["team"]}`, []string{batch}},
		{`{"all":true,"tags":{"team":"ops"}}`, nil},
		{`{"all":true,"limit":1,"tagKeys":["team"]}`, []string{web}},
	} {
		var page ListReply
		e.ok("gantry.api.runs.list", tt.body, &page)
		var ids []string
		for _, r := range page.Runs {
			ids = append(ids, r.RunID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
			t.Errorf("runs.list %s: %v, want %v", tt.body, ids, tt.want)
		}
	}
}

// TestTagErrors: bad tags are refused naming each field, at submission
// and in runs.list's filters.
func TestTagErrors(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	for _, tt := range []struct {
		subject, body string
		want          []string
	}{
		{"runs.submit", `{"taskDefinition":"hello","tags":[{"key":"team","value":"a"},{"key":"gantry:x","value":"b"},{"key":"team","value":"c"}]}`,
			[]string{`tags[1].key: key "gantry:x": the prefixes gantry: and gantry. are reserved`, `tags[2].key: "team": given twice (also tags[0].key)`}},
		{"runs.submit", `{"taskDefinition":"hello","tags":{"a=b":"c"}}`, []string{`tags["a=b"]: key "a=b": character '=' not allowed`}},
		{"runs.submit", `{"taskDefinition":"hello","tags":"team=data"}`, []string{`malformed request: tags: want a list of {"key": ..., "value": ...}`}},
		{"runs.list", `{"tags":{"":"x","team":"a,b"},"tagKeys":["ok","gantry.run"]}`,
			[]string{`tags[""]: empty key`, `tags["team"]: value "a,b": character ',' not allowed`, `tagKeys[1]: key "gantry.run": the prefixes`}},
		{"runs.list", manyTagKeys(jobs.MaxTags + 1), []string{`tags and tagKeys: 51 keys: a run has at most 50 tags, so no run could match`}},
	} {
		got := apiError(t, e.req(e.op, "gantry.api."+tt.subject, tt.body))
		if got.Code != jobs.CodeInvalidArgument {
			t.Errorf("%s %s: code %s", tt.subject, tt.body, got.Code)
		}
		for _, w := range tt.want {
			if !strings.Contains(got.Message, w) {
				t.Errorf("%s %s: %q lacks %q", tt.subject, tt.body, got.Message, w)
			}
		}
	}
	var page ListReply
	e.ok("gantry.api.runs.list", manyTagKeys(jobs.MaxTags), &page) // as many as a run may have
	e.ok("gantry.api.runs.list", `{"all":true}`, &page)
	if len(page.Runs) != 0 {
		t.Errorf("refused submissions made %d runs", len(page.Runs))
	}
	// The schema offers both shapes.
	var submit struct{ Properties map[string]json.RawMessage }
	json.Unmarshal([]byte(endpointMetadata("runs.submit")[MetaRequestSchema]), &submit)
	if s := string(submit.Properties["tags"]); !strings.Contains(s, "oneOf") || !strings.Contains(s, `"key"`) {
		t.Errorf("runs.submit schema of tags: %s", s)
	}
}

// manyTagKeys is a runs.list request filtering on n tag keys, half with
// a value, half without, one key given both ways.
func manyTagKeys(n int) string {
	tags, keys := map[string]string{}, []string{"k0"}
	for i := range n {
		if i%2 == 0 {
			tags[fmt.Sprintf("k%d", i)] = "v"
		} else {
			keys = append(keys, fmt.Sprintf("k%d", i))
		}
	}
	b, _ := json.Marshal(map[string]any{"all": true, "tags": tags, "tagKeys": keys})
	return string(b)
}

// TestPropagateTags: propagateTags TASK_DEFINITION gives a run its
// registered (or inline) task definition's tags under its own; without
// it, or with NONE, the run has its own only; other values are refused,
// and so are more than 50 tags together.
func TestPropagateTags(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", `{"family":"tagged","containerDefinitions":[{"name":"main","image":"gantry/samples:latest"}],`+
		`"tags":[{"key":"team","value":"data"},{"key":"tier","value":"gold"}]}`, nil)
	tags := func(body string) map[string]string {
		t.Helper()
		var r jobs.Run
		e.ok("gantry.api.runs.submit", body, &r)
		return r.Tags
	}
	if got := tags(`{"taskDefinition":"tagged","propagateTags":"TASK_DEFINITION","tags":{"tier":"run"}}`); len(got) != 2 ||
		got["team"] != "data" || got["tier"] != "run" {
		t.Errorf("propagated: %v; want the task definition's team and the run's own tier", got)
	}
	for _, body := range []string{`{"taskDefinition":"tagged","tags":{"x":"y"}}`, `{"taskDefinition":"tagged","propagateTags":"NONE","tags":{"x":"y"}}`} {
		if got := tags(body); len(got) != 1 || got["x"] != "y" {
			t.Errorf("%s: %v; want the run's own tags only", body, got)
		}
	}
	inline := `{"taskDefinition":{"family":"i","containerDefinitions":[{"name":"main","image":"gantry/samples:latest"}],` +
		`"tags":[{"key":"team","value":"inline"}]},"propagateTags":"TASK_DEFINITION"}`
	if got := tags(inline); got["team"] != "inline" {
		t.Errorf("inline: %v", got)
	}
	var many strings.Builder
	for i := range 49 {
		fmt.Fprintf(&many, `,"k%d":"v"`, i)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"taskDefinition":"tagged","propagateTags":"SERVICE"}`, `propagateTags: "SERVICE": gantry has no services`},
		{`{"taskDefinition":"tagged","propagateTags":"yes"}`, `propagateTags: "yes": want TASK_DEFINITION or NONE`},
		{`{"taskDefinition":"tagged","propagateTags":"TASK_DEFINITION","tags":{` + many.String()[1:] + `}}`,
			"tags: 51 tags with the task definition's (propagateTags TASK_DEFINITION): at most 50"},
	} {
		if er := apiError(t, e.req(e.op, "gantry.api.runs.submit", tc.body)); er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, tc.want) {
			t.Errorf("%.80s: %s %q; want %q", tc.body, er.Code, er.Message, tc.want)
		}
	}
}
