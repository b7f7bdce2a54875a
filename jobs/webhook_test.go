package jobs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestWebhookValidateNamesEachField(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Webhook
		want []string // substrings of the error, each
	}{
		{"good", Webhook{Name: "ops", URL: "https://hooks.example.com/x?y=1", On: []Status{StatusFailed}}, nil},
		{"good http with port", Webhook{Name: "local_1", URL: "http://127.0.0.1:8080/"}, nil},
		{"empty", Webhook{}, []string{"name: empty", "url: required"}},
		{"bad name", Webhook{Name: "a b", URL: "http://x"}, []string{`name: "a b"`}},
		{"scheme", Webhook{Name: "a", URL: "ftp://x/y"}, []string{`url: "ftp://x/y": scheme "ftp": want http or https`}},
		{"no scheme", Webhook{Name: "a", URL: "hooks.example.com/x"},
			[]string{`url: "hooks.example.com/x": no http:// or https:// in front: want http(s)://HOST[:PORT]/PATH`}},
		{"no scheme, a port", Webhook{Name: "a", URL: "127.0.0.1:8080"},
			[]string{`url: "127.0.0.1:8080": no http:// or https:// in front`}},
		{"host as scheme", Webhook{Name: "a", URL: "localhost:8080/x"}, []string{`url: "localhost:8080/x": no http:// or https://`}},
		{"no host", Webhook{Name: "a", URL: "http:///x"}, []string{"no host"}},
		{"opaque", Webhook{Name: "a", URL: "http:x"}, []string{`"http:x": no http:// or https:// in front`}},
		{"fragment", Webhook{Name: "a", URL: "http://x/#f"}, []string{"fragment"}},
		{"bad url", Webhook{Name: "a", URL: "http://x y/"}, []string{"url: "}},
		{"statuses", Webhook{Name: "a", URL: "http://x", On: []Status{"RUNNING", ""}},
			[]string{`on[0]: "RUNNING": not an end status`, "on[1]: empty status"}},
		{"filters", Webhook{Name: "a", URL: "http://x", Pipelines: []string{"p q"}, Families: []string{"etl:3"},
			Tags: map[string]string{"gantry:x": "1", "team": "a#b"}},
			[]string{"pipelines[0]", "families[0]", `tags["gantry:x"]`, `tags["team"]`}},
		{"kind", Webhook{Name: "a", URL: "http://x", Kind: "stages"}, []string{`kind: "stages": want runs or pipelineRuns`}},
		{"kind runs", Webhook{Name: "a", URL: "http://x", Kind: WebhookOnlyRuns, Families: []string{"etl"}}, nil},
		{"kind pipeline runs with a family", Webhook{Name: "a", URL: "http://x", Kind: WebhookOnlyPipelineRuns, Families: []string{"etl"}},
			[]string{"families: no pipeline run has a family"}},
		{"no array children", Webhook{Name: "a", URL: "http://x", ArrayChildren: new(false)}, nil},
		{"runs but no array children", Webhook{Name: "a", URL: "http://x", Kind: WebhookOnlyRuns, ArrayChildren: new(false)}, nil},
		{"pipeline runs but no array children", Webhook{Name: "a", URL: "http://x", Kind: WebhookOnlyPipelineRuns, ArrayChildren: new(false)},
			[]string{"arrayChildren: no pipeline run is an array run's child: with kind pipelineRuns the hook hears of no run"}},
		{"pipeline runs and array children", Webhook{Name: "a", URL: "http://x", Kind: WebhookOnlyPipelineRuns, ArrayChildren: new(true)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseWebhookStatuses(t *testing.T) {
	got, err := ParseWebhookStatuses("--on", "failed, SUCCEEDED,failed,Canceled")
	if err != nil || len(got) != 3 || got[0] != StatusFailed || got[1] != StatusSucceeded || got[2] != StatusCanceled {
		t.Errorf("got %v, %v", got, err)
	}
	_, err = ParseWebhookStatuses("--on", "FAILED,RUNNING,,QUEUED")
	for _, w := range []string{`--on: "RUNNING": not an end status`, "--on: empty status", `"QUEUED"`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

func TestWebhookMatches(t *testing.T) {
	exit := 3
	started := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stopped := started.Add(90 * time.Second)
	run := &Run{RunID: "r1", Status: StatusFailed, TaskDefinition: "etl:3", ExitCode: &exit, StoppedReason: "Essential container\nexited",
		Tags: map[string]string{"team": "data", "env": "prod"}, StartedAt: &started, FinishedAt: &stopped,
		Spec: RunSpec{Stage: &StageContext{PipelineRunID: "pr1", Pipeline: "sales", Stage: "load"}}}
	ev := RunEndEvent(run)
	if ev.EventID != "run/r1" || ev.Pipeline != "sales" || ev.Stage != "load" ||
		ev.Summary != "run r1 (etl:3, stage load of sales) FAILED, exit code 3: Essential container exited (after 1m30s)" {
		t.Errorf("event %+v", ev)
	}
	for _, tc := range []struct {
		h    Webhook
		want bool
	}{
		{Webhook{On: []Status{StatusFailed}}, true},
		{Webhook{On: []Status{StatusSucceeded}}, false},
		{Webhook{On: []Status{StatusFailed}, Families: []string{"load", "etl"}}, true},
		{Webhook{On: []Status{StatusFailed}, Families: []string{"load"}}, false},
		{Webhook{On: []Status{StatusFailed}, Pipelines: []string{"sales"}, Families: []string{"etl"}}, true},
		{Webhook{On: []Status{StatusFailed}, Pipelines: []string{"other"}, Families: []string{"etl"}}, false},
		{Webhook{On: []Status{StatusFailed}, Tags: map[string]string{"team": "data", "env": "prod"}}, true},
		{Webhook{On: []Status{StatusFailed}, Tags: map[string]string{"team": "data", "env": "dev"}}, false},
	} {
		if got := tc.h.Matches(ev); got != tc.want {
			t.Errorf("%+v matches: %v, want %v", tc.h, got, tc.want)
		}
	}
	pr := &PipelineRun{PipelineRunID: "pr1", Pipeline: "sales", Status: StatusFailed, Retries: 1,
		Stages: []StageState{{Name: "load", Status: StatusFailed}, {Name: "x", Status: StatusSucceeded}}}
	pev := PipelineRunEndEvent(pr)
	if pev.EventID != "pipelineRun/pr1/retry-1" || pev.Summary != "pipeline run pr1 of sales FAILED: failed stages: load" {
		t.Errorf("pipeline event %+v", pev)
	}
	if (&Webhook{On: []Status{StatusFailed}, Families: []string{"etl"}}).Matches(pev) {
		t.Error("a family filter matched a pipeline run")
	}
	if !(&Webhook{On: []Status{StatusFailed}, Pipelines: []string{"sales"}}).Matches(pev) {
		t.Error("the pipeline filter missed its pipeline run")
	}
	// The failed stage's run and its pipeline run: each kind hears of one.
	for _, tc := range []struct {
		kind         string
		run, pipeRun bool
	}{{"", true, true}, {WebhookOnlyRuns, true, false}, {WebhookOnlyPipelineRuns, false, true}} {
		h := Webhook{On: []Status{StatusFailed}, Kind: tc.kind}
		if h.Matches(ev) != tc.run || h.Matches(pev) != tc.pipeRun {
			t.Errorf("kind %q: run %v, pipeline run %v; want %v, %v", tc.kind, h.Matches(ev), h.Matches(pev), tc.run, tc.pipeRun)
		}
	}
}

// TestWebhookArrayChildren: a hook with arrayChildren false hears of an
// array run's end and not of its children's; the runs of a pipeline's
// array stage, which have no parent run, and plain runs it hears of as
// before; true is the default, stored as left out.
func TestWebhookArrayChildren(t *testing.T) {
	idx := 7
	parent := &Run{RunID: "a1", Status: StatusFailed, TaskDefinition: "etl:3", ArrayProperties: &ArrayProperties{Size: 10}}
	child := &Run{RunID: "a1-7", Status: StatusFailed, TaskDefinition: "etl:3", ArrayJobID: "a1", ArrayProperties: &ArrayProperties{Index: &idx}}
	stageChild := &Run{RunID: "s1", Status: StatusFailed, TaskDefinition: "etl:3",
		Spec: RunSpec{Stage: &StageContext{PipelineRunID: "pr1", Pipeline: "sales", Stage: "load", ArrayIndex: &idx}}}
	plain := &Run{RunID: "r1", Status: StatusFailed, TaskDefinition: "etl:3"}
	for _, tc := range []struct {
		h                                Webhook
		parent, child, stageChild, plain bool
	}{
		{Webhook{On: []Status{StatusFailed}}, true, true, true, true},
		{Webhook{On: []Status{StatusFailed}, ArrayChildren: new(true)}, true, true, true, true},
		{Webhook{On: []Status{StatusFailed}, ArrayChildren: new(false)}, true, false, true, true},
		{Webhook{On: []Status{StatusFailed}, Kind: WebhookOnlyRuns, ArrayChildren: new(false)}, true, false, true, true},
		{Webhook{On: []Status{StatusFailed}, Families: []string{"load"}, ArrayChildren: new(false)}, false, false, false, false},
	} {
		got := [4]bool{tc.h.Matches(RunEndEvent(parent)), tc.h.Matches(RunEndEvent(child)), tc.h.Matches(RunEndEvent(stageChild)),
			tc.h.Matches(RunEndEvent(plain))}
		if want := [4]bool{tc.parent, tc.child, tc.stageChild, tc.plain}; got != want {
			t.Errorf("hook %+v (arrayChildren %v): parent, child, stage's child, plain run %v; want %v",
				tc.h, tc.h.ArrayChildren, got, want)
		}
	}
	h := Webhook{Name: "a", URL: "http://x", ArrayChildren: new(true)}
	if h.Normalize(); h.ArrayChildren != nil {
		t.Errorf("arrayChildren true normalized to %v, want left out", *h.ArrayChildren)
	}
	h.ArrayChildren = new(false)
	if h.Normalize(); h.ArrayChildren == nil || *h.ArrayChildren {
		t.Errorf("arrayChildren false normalized to %v", h.ArrayChildren)
	}
}

func TestParseWebhookKind(t *testing.T) {
	for in, want := range map[string]string{"": "", "runs": "runs", "RUNS": "runs", "pipelineRuns": "pipelineRuns",
		"pipelineruns": "pipelineRuns", "pipelines": "pipelineRuns"} {
		if got, err := ParseWebhookKind("--kind", in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseWebhookKind("--kind", "run"); err == nil || err.Error() != `--kind: "run": want runs or pipelineRuns (leave it out for both)` {
		t.Errorf("run: %v", err)
	}
	h := Webhook{Name: "a", URL: "http://x", Kind: "Pipelines"}
	if h.Normalize(); h.Kind != WebhookOnlyPipelineRuns || h.Validate() != nil {
		t.Errorf("normalized kind %q: %v", h.Kind, h.Validate())
	}
}

// FuzzWebhookInput: the URL check, the status and kind parsers never
// panic, and what they accept is what a hook accepts.
func FuzzWebhookInput(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080/x", "https://h/", "ftp://x", "http:x", "http://[::1]:80/", "http://%zz",
		"FAILED,succeeded", ",", "canceled,,", "http://x/#", "\x00", "https://user:pw@h/p?q=1", "127.0.0.1:8080"} {
		f.Add(s, s, "")
	}
	for _, k := range []string{"runs", "pipelineRuns", "PIPELINES", "run", " runs "} {
		f.Add("https://h/", "FAILED", k)
	}
	f.Fuzz(func(t *testing.T, u, on, kind string) {
		urlErr := CheckWebhookURL("url", u)
		st, onErr := ParseWebhookStatuses("--on", on)
		k, kindErr := ParseWebhookKind("--kind", kind)
		if kindErr == nil && k != "" && k != WebhookOnlyRuns && k != WebhookOnlyPipelineRuns {
			t.Fatalf("kind %q parsed to %q", kind, k)
		}
		h := Webhook{Name: "x", URL: u, On: st, Kind: k}
		err := h.Validate()
		if (urlErr == nil) != (err == nil) {
			t.Fatalf("CheckWebhookURL %v, Validate %v", urlErr, err)
		}
		if onErr == nil {
			for _, s := range st {
				if !s.Terminal() {
					t.Fatalf("%q parsed to %q", on, s)
				}
			}
		}
	})
}

// TestWebhookEndMatchIsTheEvents: every hook matches RunEndMatch (and
// PipelineRunEndMatch) as it matches the whole event, over every filter
// and every field a filter reads.
func TestWebhookEndMatchIsTheEvents(t *testing.T) {
	var hooks []Webhook
	for _, on := range [][]Status{{StatusFailed}, {StatusSucceeded, StatusFailed}} {
		for _, kind := range []string{"", WebhookOnlyRuns, WebhookOnlyPipelineRuns} {
			for _, pipes := range [][]string{nil, {"sales"}, {"other"}} {
				for _, fams := range [][]string{nil, {"etl"}, {"load"}} {
					for _, tags := range []map[string]string{nil, {"team": "data"}, {"team": "ops"}} {
						for _, children := range []*bool{nil, new(false)} {
							hooks = append(hooks, Webhook{On: on, Kind: kind, Pipelines: pipes, Families: fams, Tags: tags,
								ArrayChildren: children})
						}
					}
				}
			}
		}
	}
	var runs []*Run
	var prs []*PipelineRun
	for _, status := range []Status{StatusFailed, StatusSucceeded, StatusCanceled} {
		for _, tags := range []map[string]string{nil, {"team": "data"}} {
			for _, stage := range []*StageContext{nil, {PipelineRunID: "pr1", Pipeline: "sales", Stage: "load"}} {
				for _, td := range []string{"etl:3", "load:1", ""} {
					for _, parent := range []string{"", "a1"} {
						runs = append(runs, &Run{RunID: "r1", Status: status, TaskDefinition: td, Tags: tags, Spec: RunSpec{Stage: stage},
							ArrayJobID: parent})
					}
				}
			}
			for _, p := range []string{"sales", "other"} {
				prs = append(prs, &PipelineRun{PipelineRunID: "pr1", Pipeline: p, Status: status, Tags: tags})
			}
		}
	}
	for i := range hooks {
		h := &hooks[i]
		for _, r := range runs {
			m := RunEndMatch(r)
			if got, want := h.Matches(&m), h.Matches(RunEndEvent(r)); got != want {
				t.Errorf("hook %+v, run %+v: matches %v, its event %v", h, r, got, want)
			}
		}
		for _, pr := range prs {
			m := PipelineRunEndMatch(pr)
			if got, want := h.Matches(&m), h.Matches(PipelineRunEndEvent(pr)); got != want {
				t.Errorf("hook %+v, pipeline run %+v: matches %v, its event %v", h, pr, got, want)
			}
		}
	}
}

// TestRunEndEventOfArrayStageRun: the end of a run of a pipeline's array
// stage carries its index besides its stage, index 0 too, and its summary
// names it; a stage run of no array has none.
func TestRunEndEventOfArrayStageRun(t *testing.T) {
	for _, tc := range []struct {
		idx       *int
		json, sum string
	}{
		{new(0), `"stage":"load","arrayIndex":0,`, "stage load[0] of sales"},
		{new(7), `"stage":"load","arrayIndex":7,`, "stage load[7] of sales"},
		{nil, `"stage":"load","createdAt"`, "stage load of sales"},
	} {
		r := &Run{RunID: "s1", Status: StatusFailed, TaskDefinition: "etl:3",
			Spec: RunSpec{Stage: &StageContext{PipelineRunID: "pr1", Pipeline: "sales", Stage: "load", ArrayIndex: tc.idx}}}
		ev := RunEndEvent(r)
		body, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), tc.json) || !strings.Contains(ev.Summary, tc.sum) {
			t.Errorf("index %v: body %s; want %s in it and %q in its summary", tc.idx, body, tc.json, tc.sum)
		}
	}
}
