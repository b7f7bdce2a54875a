package server

import (
	"encoding/base64"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestPipelineTags: a stage's runs carry the pipeline file's tags, the
// stage's own over them and those the run was started (or backfilled)
// with over both, so that runs.list finds a pipeline's runs by tag; bad
// tags given at run time, and too many together, are refused naming them.
func TestPipelineTags(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: tagged
tags: {team: data, tier: gold}
schedule: {cron: "0 * * * *", suspend: true}
stages:
  - {name: a, taskDefinition: hello}
  - {name: b, taskDefinition: hello, tags: [{key: tier, value: bronze}, {key: owner, value: ana}]}
`)
	stageTags := func(pr *jobs.PipelineRun) map[string]map[string]string {
		t.Helper()
		out := map[string]map[string]string{}
		for _, name := range []string{"a", "b"} {
			id := e.stageRunning(pr.PipelineRunID, name)
			var r jobs.Run
			e.ok("gantry.api.runs.get", `{"runId":"`+id+`"}`, &r)
			out[name] = r.Tags
		}
		return out
	}
	check := func(what string, got map[string]map[string]string, a, b map[string]string) {
		t.Helper()
		if !maps.Equal(got["a"], a) || !maps.Equal(got["b"], b) {
			t.Errorf("%s: stage tags %v; want a %v, b %v", what, got, a, b)
		}
	}
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"tagged"}`, &pr)
	check("pipeline run", stageTags(&pr),
		map[string]string{"team": "data", "tier": "gold"},
		map[string]string{"team": "data", "tier": "bronze", "owner": "ana"})

	e.ok("gantry.api.pipelines.run", `{"name":"tagged","tags":{"tier":"run","reason":"rerun"}}`, &pr)
	check("pipeline run with tags", stageTags(&pr),
		map[string]string{"team": "data", "tier": "run", "reason": "rerun"},
		map[string]string{"team": "data", "tier": "run", "owner": "ana", "reason": "rerun"})
	if pr.Tags["reason"] != "rerun" {
		t.Errorf("the pipeline run's own tags: %v", pr.Tags)
	}
	var found struct{ Runs []jobs.Run }
	e.ok("gantry.api.runs.list", `{"tags":{"reason":"rerun"}}`, &found)
	if len(found.Runs) != 2 {
		t.Errorf("runs.list by the run's tag found %d runs, want its two stage runs", len(found.Runs))
	}

	var prs []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"tagged","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","tags":[{"key":"reason","value":"reload"}]}`, &prs)
	if len(prs) != 1 {
		t.Fatalf("backfill: %+v", prs)
	}
	check("backfill with tags", stageTags(&prs[0]),
		map[string]string{"team": "data", "tier": "gold", "reason": "reload"},
		map[string]string{"team": "data", "tier": "bronze", "owner": "ana", "reason": "reload"})

	var many strings.Builder
	for i := range 48 {
		fmt.Fprintf(&many, `,"k%d":"v"`, i)
	}
	for _, tc := range []struct{ subject, body, want string }{
		{"gantry.api.pipelines.run", `{"name":"tagged","tags":{"gantry:x":"y"}}`, `tags["gantry:x"]: key "gantry:x": the prefixes`},
		{"gantry.api.pipelines.backfill", `{"name":"tagged","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z","tags":[{"key":"a b","value":"x,y"}]}`,
			`tags[0].value: value "x,y": character ',' not allowed`},
		// 48 + team and tier is 50 for a; b has owner too.
		{"gantry.api.pipelines.run", `{"name":"tagged","tags":{` + many.String()[1:] + `}}`,
			"stages[1](b).tags: 51 tags, the pipeline's, its own and the run's together: at most 50"},
	} {
		er := apiError(t, e.req(e.op, tc.subject, tc.body))
		if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, tc.want) {
			t.Errorf("%s %s: %s %q; want invalid_argument with %q", tc.subject, tc.body, er.Code, er.Message, tc.want)
		}
	}
}

// TestPipelinePropagateTags: a pipeline file's propagateTags
// TASK_DEFINITION gives its stages' runs their task definition's tags
// under their own (the pipeline's, the stage's and the run's winning key
// by key), registered or inline; a stage's NONE keeps them out, and
// without it nothing propagates, as for a run submitted alone.
func TestPipelinePropagateTags(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", `{"family":"tagged","containerDefinitions":[{"name":"main","image":"gantry/samples:latest"}],`+
		`"tags":[{"key":"team","value":"td"},{"key":"tier","value":"td"},{"key":"owner","value":"td"}]}`, nil)
	e.apply(`name: propagated
propagateTags: TASK_DEFINITION
tags: {team: data}
stages:
  - {name: a, taskDefinition: tagged}
  - {name: b, taskDefinition: tagged, tags: {tier: gold}}
  - {name: c, taskDefinition: tagged, propagateTags: NONE}
  - name: d
    taskDefinition: {family: inline, containerDefinitions: [{name: main, image: "gantry/samples:latest"}], tags: [{key: kind, value: inline}]}
`)
	e.apply(`name: plain
stages:
  - {name: a, taskDefinition: tagged, tags: {team: data}}
  - {name: b, taskDefinition: tagged, propagateTags: TASK_DEFINITION}
`)
	tagsOf := func(pr *jobs.PipelineRun, stage string) map[string]string {
		t.Helper()
		var r jobs.Run
		e.ok("gantry.api.runs.get", `{"runId":"`+e.stageRunning(pr.PipelineRunID, stage)+`"}`, &r)
		return r.Tags
	}
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"propagated","tags":{"owner":"run"}}`, &pr)
	for stage, want := range map[string]map[string]string{
		"a": {"team": "data", "tier": "td", "owner": "run"},
		"b": {"team": "data", "tier": "gold", "owner": "run"},
		"c": {"team": "data", "owner": "run"},
		"d": {"team": "data", "owner": "run", "kind": "inline"},
	} {
		if got := tagsOf(&pr, stage); !maps.Equal(got, want) {
			t.Errorf("propagated, stage %s: tags %v; want %v", stage, got, want)
		}
	}
	e.ok("gantry.api.pipelines.run", `{"name":"plain"}`, &pr)
	for stage, want := range map[string]map[string]string{
		"a": {"team": "data"},
		"b": {"team": "td", "tier": "td", "owner": "td"},
	} {
		if got := tagsOf(&pr, stage); !maps.Equal(got, want) {
			t.Errorf("plain, stage %s: tags %v; want %v", stage, got, want)
		}
	}
	// Too many together: the stage fails saying so, as a run submitted
	// alone is refused.
	var crowded strings.Builder
	for i := range 45 {
		fmt.Fprintf(&crowded, `,{"key":"k%d","value":"v"}`, i)
	}
	e.ok("gantry.api.taskdefs.register", `{"family":"crowded","containerDefinitions":[{"name":"main","image":"gantry/samples:latest"}],`+
		`"tags":[`+crowded.String()[1:]+`]}`, nil)
	e.apply("name: crowded\npropagateTags: TASK_DEFINITION\ntags: {a: x, b: x, c: x, d: x, e: x, f: x}\nstages: [{name: a, taskDefinition: crowded}]\n")
	e.ok("gantry.api.pipelines.run", `{"name":"crowded"}`, &pr)
	failed := e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
	if st := failed.StageState("a"); st.Status != jobs.StatusFailed ||
		!strings.Contains(st.Reason, "tags: 51 tags with the task definition's (propagateTags TASK_DEFINITION): at most 50") {
		t.Errorf("crowded stage a: %s %q; want FAILED for its 51 tags", st.Status, st.Reason)
	}

	er := apiError(t, e.req(e.op, "gantry.api.pipelines.apply",
		`{"data":"`+base64.StdEncoding.EncodeToString([]byte("name: bad\npropagateTags: ALL\nstages: [{name: extract, taskDefinition: tagged}, {name: load, taskDefinition: tagged, propagateTags: yes}]\n"))+`"}`))
	for _, want := range []string{`propagateTags: "ALL": want TASK_DEFINITION or NONE`, `stages[1](load).propagateTags: "yes": want TASK_DEFINITION or NONE`} {
		if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, want) {
			t.Errorf("pipelines.apply: %s %q; want invalid_argument with %q", er.Code, er.Message, want)
		}
	}
}
