package server

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/workerq"
)

// TestConstraintsPlaceRunsByLabels: with the real embedded NATS, the
// server and two real workers of one cluster, labelled disk=ssd and
// disk=hdd, each run goes to the worker whose labels its constraints (the
// submission's, or its task definition's placementConstraints) ask for,
// whichever worker the queue hands its job to first; a run whose
// constraints no worker meets is handed back, never runs, and waits
// QUEUED saying which labels are missing.
func TestConstraintsPlaceRunsByLabels(t *testing.T) {
	t.Parallel()
	e := startLostEnv(t)
	var mu sync.Mutex
	ranOn := map[string]string{} // run → worker
	start := func(id string, labels map[string]string) *worker.Worker {
		t.Helper()
		cons, err := e.q.Jobs(e.ctx, "default", id)
		if err != nil {
			t.Fatal(err)
		}
		rt := runtimeFunc(func(_ context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
			mu.Lock()
			ranOn[task.RunID] = id
			mu.Unlock()
			zero := 0
			return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}}, nil
		})
		w := worker.New(id, "default", workerq.Source{C: cons}, rt, workerq.Reporter{Q: e.q},
			worker.WithClaims(workerq.Claims{Q: e.q}), worker.WithSlots(2), worker.WithHost("host-"+id, labels),
			worker.WithPresence(e.q, 200*time.Millisecond), worker.WithNakDelays(20*time.Millisecond, 100*time.Millisecond),
			worker.WithGracePeriod(time.Second))
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		return w
	}
	ssd := start("w-ssd", map[string]string{"disk": "ssd", "zone": "eu-1"})
	hdd := start("w-hdd", map[string]string{"disk": "hdd", "zone": "eu-2"})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ws, err := e.q.Workers(e.ctx); err == nil && len(ws) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the workers were not listed within 10s")
		}
	}
	submit := func(td string, cs ...string) *jobs.Run {
		t.Helper()
		req := &jobs.SubmitRequest{TaskDefinition: json.RawMessage(td)}
		for _, s := range cs {
			c, err := jobs.ParseConstraint(s)
			if err != nil {
				t.Fatal(err)
			}
			req.Constraints = append(req.Constraints, c)
		}
		r, err := e.s.Submit(e.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	plain := `{"family":"c","containerDefinitions":[{"name":"main","image":"c:1"}]}`
	onHDD := `{"family":"c","containerDefinitions":[{"name":"main","image":"c:1"}],
		"placementConstraints":[{"type":"memberOf","expression":"attribute:disk == hdd"}]}`
	want := map[string]string{}
	for range 3 {
		want[submit(plain, "disk=ssd").RunID] = "w-ssd"
		want[submit(plain, "zone!=eu-1").RunID] = "w-hdd"
		want[submit(onHDD).RunID] = "w-hdd"
		want[submit(onHDD, "disk=ssd").RunID] = "w-ssd" // the submission's win on disk
	}
	nobody := submit(plain, "disk=ssd", "gpu=a100")
	if want := "no worker in cluster default has labels gpu=a100"; nobody.StatusReason != want {
		t.Errorf("statusReason at submit %q, want %q", nobody.StatusReason, want)
	}
	for id, w := range want {
		r := e.waitRun(id, "succeeded", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
		if r.Worker != w {
			t.Errorf("run %s (constraints %s) ran on %s, want %s", id, r.Spec.Constraints, r.Worker, w)
		}
	}
	// Both workers were handed the unmatched job and gave it back.
	for deadline := time.Now().Add(10 * time.Second); ssd.Stats().HandedBack.Unmatched == 0 || hdd.Stats().HandedBack.Unmatched == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hand-backs of unmatched jobs: w-ssd %d, w-hdd %d", ssd.Stats().HandedBack.Unmatched, hdd.Stats().HandedBack.Unmatched)
		}
	}
	e.sweep()
	r := e.get(nobody.RunID)
	if r.Status != jobs.StatusQueued || r.StatusReason != "no worker in cluster default has labels gpu=a100" || len(r.Attempts) != 1 {
		t.Errorf("unmatched run after a sweep: %s, %q, %d attempts", r.Status, r.StatusReason, len(r.Attempts))
	}
	if got := r.Spec.Constraints.String(); got != "disk=ssd, gpu=a100" {
		t.Errorf("spec.constraints %q", got)
	}
	mu.Lock()
	if w, ok := ranOn[nobody.RunID]; ok {
		t.Errorf("the unmatched run ran on %s", w)
	}
	mu.Unlock()
	if _, err := e.s.Stop(e.ctx, nobody.RunID, "test over"); err != nil {
		t.Fatal(err)
	}
}

// TestSubmitConstraintErrors: the problems of a submission's constraints
// come back as invalid_argument naming the field, and so do more than
// MaxConstraints with the task definition's.
func TestSubmitConstraintErrors(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var many []string
	for i := range jobs.MaxConstraints {
		many = append(many, `"k`+string(rune('a'+i))+`=v"`)
	}
	inline := `{"family":"x","containerDefinitions":[{"name":"main","image":"x"}],
		"placementConstraints":[{"type":"memberOf","expression":"attribute:extra == v"}]}`
	for _, tt := range []struct{ body, want string }{
		{`{"taskDefinition":"hello","constraints":["disk"]}`, `constraints[0]: "disk": want K=V or K!=V`},
		{`{"taskDefinition":"hello","constraints":["=ssd"]}`, `constraints[0]: "=ssd": empty key`},
		{`{"taskDefinition":"hello","constraints":{"disk":"s d"}}`, `constraints["disk"]: "disk=s d": value "s d": character ' ' not allowed`},
		{`{"taskDefinition":"hello","constraints":"disk=ssd"}`, `constraints: want a list of "K=V" or "K!=V" strings`},
		{`{"taskDefinition":` + inline + `,"constraints":[` + strings.Join(many, ",") + `]}`,
			`constraints: 17 constraints, the task definition's placementConstraints and the request's together: at most 16`},
	} {
		got := apiError(t, e.req(e.op, "gantry.api.runs.submit", tt.body))
		if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, tt.want) {
			t.Errorf("%s: %s %q, want invalid_argument saying %q", tt.body, got.Code, got.Message, tt.want)
		}
	}
	var r jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","constraints":{"disk":"ssd"}}`, &r)
	m := e.req(e.op, "gantry.api.runs.get", `{"runId":"`+r.RunID+`"}`)
	if !strings.Contains(string(m.Data), `"constraints":["disk=ssd"]`) {
		t.Errorf("runs.get: %s", m.Data)
	}
}

// TestPipelineConstraints: a stage's runs carry the pipeline file's
// constraints, the stage's own replacing them key by key, and a rerun of
// such a run keeps them, --constraint replacing them key by key.
func TestPipelineConstraints(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: placed
constraints: [disk=ssd, zone!=eu-1]
stages:
  - {name: a, taskDefinition: hello}
  - {name: b, taskDefinition: hello, constraints: {disk: hdd}}
`)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"placed"}`, &pr)
	got := map[string]string{}
	ids := map[string]string{}
	for _, name := range []string{"a", "b"} {
		ids[name] = e.stageRunning(pr.PipelineRunID, name)
		var r jobs.Run
		e.ok("gantry.api.runs.get", `{"runId":"`+ids[name]+`"}`, &r)
		got[name] = r.Spec.Constraints.String()
		if r.StatusReason != "no live worker in cluster default" {
			t.Errorf("stage %s: statusReason %q", name, r.StatusReason)
		}
	}
	if got["a"] != "disk=ssd, zone!=eu-1" || got["b"] != "disk=hdd, zone!=eu-1" {
		t.Errorf("stage constraints %v", got)
	}
	var rerun jobs.Run
	e.ok("gantry.api.runs.rerun", `{"runId":"`+ids["b"]+`","constraints":["zone=eu-2"]}`, &rerun)
	var r jobs.Run
	e.ok("gantry.api.runs.get", `{"runId":"`+rerun.RunID+`"}`, &r)
	if got := r.Spec.Constraints.String(); got != "disk=hdd, zone=eu-2" {
		t.Errorf("rerun's constraints %q", got)
	}
}
