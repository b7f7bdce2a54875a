package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
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
	placed := startLabelledWorkers(t, e, map[string]map[string]string{
		"w-ssd": {"disk": "ssd", "zone": "eu-1"},
		"w-hdd": {"disk": "hdd", "zone": "eu-2"},
	})
	ssd, hdd := placed.workers["w-ssd"], placed.workers["w-hdd"]
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
	if w := placed.ranOn(nobody.RunID); w != "" {
		t.Errorf("the unmatched run ran on %s", w)
	}
	if _, err := e.s.Stop(e.ctx, nobody.RunID, "test over"); err != nil {
		t.Fatal(err)
	}
}

// labelledWorkers are real workers of cluster default with labels, whose
// runtime records which worker ran each run and succeeds at once.
type labelledWorkers struct {
	workers map[string]*worker.Worker
	mu      sync.Mutex
	ran     map[string]string // run → worker
}

func (l *labelledWorkers) ranOn(run string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ran[run]
}

// startLabelledWorkers starts a worker per id, with its labels, and waits
// until the fleet lists them all.
func startLabelledWorkers(t *testing.T, e *lostEnv, labels map[string]map[string]string) *labelledWorkers {
	t.Helper()
	l := &labelledWorkers{workers: map[string]*worker.Worker{}, ran: map[string]string{}}
	for id, ls := range labels {
		cons, err := e.q.Jobs(e.ctx, "default", id)
		if err != nil {
			t.Fatal(err)
		}
		rt := runtimeFunc(func(_ context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
			l.mu.Lock()
			l.ran[task.RunID] = id
			l.mu.Unlock()
			zero := 0
			return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}}, nil
		})
		w := worker.New(id, "default", workerq.Source{C: cons}, rt, workerq.Reporter{Q: e.q},
			worker.WithClaims(workerq.Claims{Q: e.q}), worker.WithSlots(2), worker.WithHost("host-"+id, ls),
			worker.WithPresence(e.q, 200*time.Millisecond), worker.WithNakDelays(20*time.Millisecond, 100*time.Millisecond),
			worker.WithGracePeriod(time.Second))
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		l.workers[id] = w
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ws, err := e.q.Workers(e.ctx); err == nil && len(ws) == len(labels) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d workers were not listed within 10s", len(labels))
		}
	}
	return l
}

// TestPipelineRunAndScheduleConstraintsPlaceRuns: with the real embedded
// NATS, the server and three real workers (gpu, ssd, and ssd on a spot
// host), a pipeline run started with constraints (pipeline run
// --constraint), besides its file's, and the runs of a task schedule
// created with constraints (schedule create --constraint) go only to the
// worker whose labels meet them all, presence constraints included,
// whichever worker the queue hands their jobs to first.
func TestPipelineRunAndScheduleConstraintsPlaceRuns(t *testing.T) {
	t.Parallel()
	e := startLostEnv(t)
	placed := startLabelledWorkers(t, e, map[string]map[string]string{
		"w-gpu":  {"disk": "ssd", "gpu": "a100"},
		"w-ssd":  {"disk": "ssd"},
		"w-spot": {"disk": "ssd", "spot": "yes"},
	})
	call := func(subject, body string, out any) {
		t.Helper()
		m, err := e.nc.Request("gantry.api."+subject, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(m.Data), `"error":{`) {
			t.Fatalf("%s %s: %s", subject, body, m.Data)
		}
		if out != nil {
			if err := json.Unmarshal(m.Data, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	call("taskdefs.register", `{"family":"c","containerDefinitions":[{"name":"main","image":"c:1"}]}`, nil)
	apply, _ := json.Marshal(map[string][]byte{"data": []byte(`name: placed
constraints: [disk=ssd]
stages:
  - {name: a, taskDefinition: c, arraySize: 3}
  - {name: b, taskDefinition: c, dependsOn: [a], constraints: [gpu]}
`)})
	call("pipelines.apply", string(apply), nil)
	ranWhere := func(pr *jobs.PipelineRun) map[string][]string {
		t.Helper()
		var done jobs.PipelineRun
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			call("pipelines.get", `{"pipelineRunId":"`+pr.PipelineRunID+`"}`, &done)
			if done.Status.Terminal() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pipeline run %s still %s", pr.PipelineRunID, done.Status)
			}
		}
		if done.Status != jobs.StatusSucceeded {
			t.Fatalf("pipeline run %s: %s (%s)", pr.PipelineRunID, done.Status, done.StoppedReason)
		}
		out := map[string][]string{}
		for _, st := range done.Stages {
			for _, sr := range st.Runs {
				out[st.Name] = append(out[st.Name], placed.ranOn(sr.RunID))
			}
		}
		return out
	}
	// Without the run's own constraints, the file's: a on any ssd
	// worker, b on the gpu one.
	var pr jobs.PipelineRun
	call("pipelines.run", `{"name":"placed","constraints":["!spot"]}`, &pr)
	if got := pr.Constraints.String(); got != "!spot" {
		t.Errorf("pipeline run's constraints %q", got)
	}
	for stage, ws := range ranWhere(&pr) {
		for _, w := range ws {
			if w == "w-spot" || stage == "b" && w != "w-gpu" {
				t.Errorf("pipeline run with !spot: stage %s ran on %s", stage, w)
			}
		}
	}
	call("pipelines.run", `{"name":"placed","constraints":{"gpu":"a100"}}`, &pr)
	for stage, ws := range ranWhere(&pr) {
		for _, w := range ws {
			if w != "w-gpu" {
				t.Errorf("pipeline run with gpu=a100: stage %s ran on %s", stage, w)
			}
		}
	}
	// A task schedule's runs: on the spot host only.
	var sched PipelineApplyReply
	call("schedules.create", `{"name":"spotty","taskDefinition":"c","schedule":{"cron":"@daily","suspend":true},"constraints":["spot","disk=ssd"]}`, &sched)
	if got := sched.Pipeline.Stages[0].Constraints.String(); got != "spot, disk=ssd" {
		t.Errorf("task schedule's stage constraints %q", got)
	}
	for range 3 {
		call("schedules.trigger", `{"name":"spotty"}`, &pr)
		for _, ws := range ranWhere(&pr) {
			for _, w := range ws {
				if w != "w-spot" {
					t.Errorf("a run of the schedule with spot ran on %s", w)
				}
			}
		}
	}
}

// TestPipelineRunConstraintErrors: constraints a pipeline run is started
// with that contradict its file's, or are bad, come back as
// invalid_argument naming both, and no run starts.
func TestPipelineRunConstraintErrors(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: placed
constraints: [disk=ssd, "!spot"]
stages:
  - {name: a, taskDefinition: hello}
  - {name: b, taskDefinition: hello, constraints: [gpu]}
`)
	for _, tt := range []struct{ body, want string }{
		{`{"name":"placed","constraints":["disk=hdd"]}`,
			`constraints[0]: "disk=hdd": contradicts the pipeline file's constraints[0] (disk=ssd): a worker's label has one value`},
		{`{"name":"placed","constraints":["zone=a","!gpu"]}`,
			`constraints[1]: "!gpu": contradicts the pipeline file's stages[1](b).constraints[0] (gpu): a worker cannot both have label gpu and lack it`},
		{`{"name":"placed","constraints":["spot"]}`, `constraints[0]: "spot": contradicts the pipeline file's constraints[1] (!spot)`},
		{`{"name":"placed","constraints":["gpu","!gpu"]}`, `constraints[1]: "!gpu": contradicts constraints[0] (gpu)`},
		{`{"name":"placed","constraints":["a b"]}`, `constraints[0]: "a b": key "a b": character ' ' not allowed`},
		{`{"name":"placed","constraints":3}`, `constraints: want a list of "K=V", "K!=V", "K" or "!K" strings`},
	} {
		got := apiError(t, e.req(e.op, "gantry.api.pipelines.run", tt.body))
		if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, tt.want) {
			t.Errorf("%s: %s %q, want invalid_argument saying %q", tt.body, got.Code, got.Message, tt.want)
		}
	}
	if runs := e.pipelineRuns("placed"); len(runs) != 0 {
		t.Errorf("%d runs started", len(runs))
	}
	// Agreeing with the file's, and said by it already: one run, each
	// said once.
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"placed","constraints":["disk=ssd","disk","zone!=eu-1"]}`, &pr)
	id := e.stageRunning(pr.PipelineRunID, "a")
	var r jobs.Run
	e.ok("gantry.api.runs.get", `{"runId":"`+id+`"}`, &r)
	if got := r.Spec.Constraints.String(); got != "disk=ssd, disk, !spot, zone!=eu-1" {
		t.Errorf("stage a's run's constraints %q", got)
	}
	// A task schedule's constraints are checked as a submission's, naming
	// the request's field.
	got := apiError(t, e.req(e.op, "gantry.api.schedules.create",
		`{"taskDefinition":"hello","schedule":{"cron":"@daily"},"constraints":["disk=ssd","disk=hdd"]}`))
	if want := `constraints[1]: "disk=hdd": contradicts constraints[0] (disk=ssd)`; got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, want) ||
		strings.Contains(got.Message, "stages[") {
		t.Errorf("schedules.create: %s %q, want invalid_argument saying %q", got.Code, got.Message, want)
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
		{`{"taskDefinition":"hello","constraints":["di sk"]}`, `constraints[0]: "di sk": key "di sk": character ' ' not allowed`},
		{`{"taskDefinition":"hello","constraints":["gpu","!gpu"]}`, `constraints[1]: "!gpu": contradicts constraints[0] (gpu): a worker cannot both have label gpu and lack it`},
		{`{"taskDefinition":"hello","constraints":["=ssd"]}`, `constraints[0]: "=ssd": empty key`},
		{`{"taskDefinition":"hello","constraints":{"disk":"s d"}}`, `constraints["disk"]: "disk=s d": value "s d": character ' ' not allowed`},
		{`{"taskDefinition":"hello","constraints":"disk=ssd"}`, `constraints: want a list of "K=V", "K!=V", "K" or "!K" strings`},
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
		if r.StatusReason != "no live worker in cluster default (no worker is live at all: gantry worker --cluster default starts one)" {
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

// TestPinnedWorkerMustMeetTheConstraints: with the real embedded NATS, the
// server and a real worker labelled gpu=t4 and disk=ssd, a run pinned to
// it (worker, gantry run --worker) with constraints its labels do not
// meet, the submission's or its task definition's placementConstraints,
// is refused as invalid_argument naming the worker, its labels and the
// constraints unmet, and nothing is stored; one whose constraints it
// meets runs on it; one pinned to a worker not live is queued, saying
// why, as before.
func TestPinnedWorkerMustMeetTheConstraints(t *testing.T) {
	t.Parallel()
	e := startLostEnv(t)
	placed := startLabelledWorkers(t, e, map[string]map[string]string{"w-gpu": {"gpu": "t4", "disk": "ssd"}})
	key := ""
	submit := func(worker, td string, cs ...string) (*jobs.Run, error) {
		t.Helper()
		req := map[string]any{"taskDefinition": json.RawMessage(td), "worker": worker, "constraints": cs, "idempotencyKey": key}
		body, _ := json.Marshal(req)
		m, err := e.nc.Request("gantry.api.runs.submit", body, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var reply struct {
			jobs.Run
			Error *jobs.Error `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &reply); err != nil {
			t.Fatal(err)
		}
		if reply.Error != nil {
			return nil, reply.Error
		}
		return &reply.Run, nil
	}
	plain := `{"family":"c","containerDefinitions":[{"name":"main","image":"c:1"}]}`
	noGPU := `{"family":"c","containerDefinitions":[{"name":"main","image":"c:1"}],
		"placementConstraints":[{"type":"memberOf","expression":"attribute:gpu != t4"}]}`
	before, err := e.db.ListRuns(e.ctx, storage.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		td   string
		cs   []string
		want string
	}{
		{plain, []string{"!gpu"}, `worker: w-gpu, live in cluster default with labels disk=ssd, gpu=t4, does not meet the run's constraint !gpu: pinned to it, the run could never start; pin another worker, or leave out worker (--worker) or the constraint`},
		{plain, []string{"disk=ssd", "gpu=a100", "zone"}, `worker: w-gpu, live in cluster default with labels disk=ssd, gpu=t4, does not meet the run's constraints gpu=a100, zone: pinned to it, the run could never start; pin another worker, or leave out worker (--worker) or the constraints`},
		{noGPU, nil, `worker: w-gpu, live in cluster default with labels disk=ssd, gpu=t4, does not meet the run's constraint gpu!=t4: pinned to it`},
	} {
		_, err := submit("w-gpu", tt.td, tt.cs...)
		var je *jobs.Error
		if !errors.As(err, &je) || je.Code != jobs.CodeInvalidArgument || !strings.HasPrefix(je.Message, tt.want) {
			t.Errorf("pinned with %v: got %v, want invalid_argument %q", tt.cs, err, tt.want)
		}
	}
	if after, err := e.db.ListRuns(e.ctx, storage.RunFilter{}); err != nil || len(after) != len(before) {
		t.Errorf("refused runs were stored: %d runs, %d before (%v)", len(after), len(before), err)
	}
	// Constraints it meets: accepted, and it runs there.
	r, err := submit("w-gpu", noGPU, "gpu=t4", "disk=ssd") // the submission's gpu replaces the definition's
	if err != nil {
		t.Fatal(err)
	}
	e.waitRun(r.RunID, "succeeded", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
	if w := placed.ranOn(r.RunID); w != "w-gpu" {
		t.Errorf("ran on %q", w)
	}
	// A key already taken gets its run back, even where the worker's
	// labels no longer meet what the request asks (they were checked
	// when it was accepted).
	key = "pinned-once"
	kept, err := submit("w-gpu", plain, "gpu=t4")
	if err != nil {
		t.Fatal(err)
	}
	again, err := submit("w-gpu", plain, "!gpu")
	if err != nil || again.RunID != kept.RunID {
		t.Errorf("the key's second submission: %v, %v; want run %s back", again, err, kept.RunID)
	}
	key = ""
	// A worker not live: queued, saying why.
	r, err = submit("w-later", plain, "!gpu")
	if err != nil {
		t.Fatal(err)
	}
	if want := "no live worker named w-later in cluster default"; r.Status != jobs.StatusQueued || r.StatusReason != want {
		t.Errorf("pinned to a worker not live: %s %q, want QUEUED %q", r.Status, r.StatusReason, want)
	}
	if _, err := e.s.Stop(e.ctx, r.RunID, "test over"); err != nil {
		t.Fatal(err)
	}
}

// TestPinnedWorkerMustBeOfTheRunsCluster: a run pinned to a worker that is
// live in another cluster than the run's is refused as invalid_argument
// naming both clusters, constraints or none, and nothing is stored: its
// job would wait on a queue of the run's cluster that the worker does not
// read. One pinned to a worker not live is queued, saying why, as before.
func TestPinnedWorkerMustBeOfTheRunsCluster(t *testing.T) {
	t.Parallel()
	e := startLostEnv(t)
	startLabelledWorkers(t, e, map[string]map[string]string{"w-gpu": {"gpu": "t4"}}) // in cluster default
	submit := func(cluster, worker string, cs ...string) (*jobs.Run, error) {
		t.Helper()
		var cons jobs.Constraints
		for _, c := range cs {
			pc, err := jobs.ParseConstraint(c)
			if err != nil {
				t.Fatal(err)
			}
			cons = append(cons, pc)
		}
		return e.s.Submit(e.ctx, &jobs.SubmitRequest{Cluster: cluster, Worker: worker, Constraints: cons,
			TaskDefinition: json.RawMessage(`{"family":"c","containerDefinitions":[{"name":"main","image":"c:1"}]}`)})
	}
	before, err := e.db.ListRuns(e.ctx, storage.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := `worker: w-gpu is live in cluster default, not in the run's cluster etl: pinned to it, the run could never start, as w-gpu reads no queue of cluster etl; submit it to cluster default (--cluster default), or pin a worker of cluster etl`
	for _, cs := range [][]string{nil, {"gpu=t4"}} {
		_, err := submit("etl", "w-gpu", cs...)
		var fe *jobs.FieldError
		if !errors.As(err, &fe) || jobs.ErrorCode(err) != jobs.CodeInvalidArgument || err.Error() != want {
			t.Errorf("pinned to a worker of another cluster, constraints %v: got %v, want invalid_argument %q", cs, err, want)
		}
	}
	if after, err := e.db.ListRuns(e.ctx, storage.RunFilter{}); err != nil || len(after) != len(before) {
		t.Errorf("refused runs were stored: %d runs, %d before (%v)", len(after), len(before), err)
	}
	// A worker not live in the run's cluster nor anywhere: queued, saying why.
	r, err := submit("etl", "w-later")
	if err != nil {
		t.Fatal(err)
	}
	if want := "no live worker named w-later in cluster etl"; r.Status != jobs.StatusQueued || r.StatusReason != want {
		t.Errorf("pinned to a worker not live: %s %q, want QUEUED %q", r.Status, r.StatusReason, want)
	}
	if _, err := e.s.Stop(e.ctx, r.RunID, "test over"); err != nil {
		t.Fatal(err)
	}
	// Of the run's cluster: accepted.
	if r, err = submit("default", "w-gpu"); err != nil || r.Status.Terminal() {
		t.Errorf("pinned to a worker of its cluster: %v, %v", r, err)
	}
}
