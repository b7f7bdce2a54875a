package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
)

// TestStopAnswersRequestsInFlight: a server told to stop while it handles
// a submission finishes it before Run returns: the submitter gets its run,
// the run is stored, its job queued and marked published. Before, Run
// returned at once and the store and connection were closed under the
// request: the run was stored, but its submitter got no answer and its
// job waited for the next start.
func TestStopAnswersRequestsInFlight(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.stop() // this test runs a server of its own over the same store

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(e.data, "gantry.db")
	db, err := storage.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.New(e.dial(opUser, opPass))
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	go func() { returned <- New(db, q).Run(ctx) }()
	ended := false // Run's return taken
	defer func() { // before the store closes
		if !ended {
			cancel()
			<-returned
		}
	}()
	waitForAPI(t, e.op)

	// Hold SQLite's write lock: the submission waits in the store.
	lockDB, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer lockDB.Close()
	lock, err := lockDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			if _, err := lock.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Error(err)
			}
		}
	}
	defer release()

	replies := make(chan *nats.Msg, 1)
	go func() {
		m, err := e.op.Request("gantry.api.runs.submit", []byte(`{"taskDefinition":"hello"}`), 20*time.Second)
		if err != nil {
			t.Errorf("submit: %v", err)
		}
		replies <- m
	}()
	// micro counts a request once its handler has handed it over.
	for deadline := time.Now().Add(10 * time.Second); submitRequests(t, e.op) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the submission did not reach the server within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-returned:
		ended = true
		t.Fatalf("Run returned (%v) while a submission was in flight", err)
	case <-time.After(500 * time.Millisecond):
	}
	release()
	m := <-replies
	if m == nil {
		t.FailNow()
	}
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		t.Fatalf("submit: error %s: %s", code, m.Data)
	}
	var run jobs.Run
	if err := json.Unmarshal(m.Data, &run); err != nil {
		t.Fatalf("submit: %v\n%s", err, m.Data)
	}
	select {
	case err := <-returned:
		ended = true
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15s of the submission's answer")
	}

	// After Run: the run is stored, its job marked published and queued.
	bg := context.Background()
	if _, err := db.GetRun(bg, run.RunID); err != nil {
		t.Fatalf("the answered run is not stored: %v", err)
	}
	unpublished, err := db.Unpublished(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range unpublished {
		if r.RunID == run.RunID {
			t.Errorf("run %s is not marked published after Run returned", run.RunID)
		}
	}
	js, err := jetstream.New(e.op)
	if err != nil {
		t.Fatal(err)
	}
	var job jobs.Job
	stream, err := js.Stream(bg, queue.StreamJobs)
	var last *jetstream.RawStreamMsg
	if err == nil {
		last, err = stream.GetLastMsgForSubject(bg, queue.JobSubject("default", ""))
	}
	if err == nil {
		err = json.Unmarshal(last.Data, &job)
	}
	if err != nil || job.RunID != run.RunID {
		t.Errorf("run %s: no job queued (the last job is %q: %v)", run.RunID, job.RunID, err)
	}
}

// submitRequests is how many runs.submit requests micro has counted.
func submitRequests(t *testing.T, nc *nats.Conn) int {
	t.Helper()
	m, err := nc.Request("$SRV.STATS.gantry", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(m.Data, &stats); err != nil {
		t.Fatal(err)
	}
	for _, ep := range stats.Endpoints {
		if ep.Name == "runs_submit" {
			return ep.NumRequests
		}
	}
	return 0
}

// TestAPIHandlersRefuseOnceStopping: requests that come after Stop has
// begun are refused, so Stop's wait cannot miss one.
func TestAPIHandlersRefuseOnceStopping(t *testing.T) {
	h := newAPIHandlers(context.Background())
	ran := make(chan struct{})
	if !h.Go(func(context.Context) { close(ran) }) {
		t.Fatal("a request before Stop was refused")
	}
	h.Stop()
	select {
	case <-ran:
	default:
		t.Fatal("Stop returned before the request it had taken ran")
	}
	if h.Go(func(context.Context) { t.Error("a request after Stop ran") }) {
		t.Fatal("a request after Stop was taken")
	}
}

// TestRunEndsWhenAReportsConsumerCannotBeMade: a loop of the server that
// fails (here the reports consumer, made impossible by a durable of its
// name with other settings; in a cluster, a JetStream error at start) ends
// Run with its error at once. Before, Run went on answering the API and
// applied no report again, saying nothing until it was stopped.
func TestRunEndsWhenAReportsConsumerCannotBeMade(t *testing.T) {
	_, q, db := testStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := q.JetStream().CreateConsumer(ctx, queue.StreamReports, jetstream.ConsumerConfig{
		Durable: "server", AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 7}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- New(db, q).Run(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned no error")
		}
		t.Log(err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run still serving 30s after its reports consumer failed")
	}
}

// TestNothingStartsWhileShuttingDown: once the shutdown begins
// (WithStartsUntil's channel, gantry up's first signal) the ends of runs
// are still applied, but start nothing: a stage whose dependency ended
// stays PENDING, an ended pipeline run triggers no pipeline and promotes
// no waiting run (maxActiveRuns, a backfill's maxParallel), and a
// pipeline run asked for meanwhile is stored unstarted. A server started
// again over the same store and JetStream starts all of them.
func TestNothingStartsWhileShuttingDown(t *testing.T) {
	var logs syncBuffer
	shutdown := make(chan struct{})
	e := startAPI(t)
	e.stop()
	e.opts = []Option{WithLogger(zerolog.New(&logs)), WithStartsUntil(shutdown)}
	e.startServer()
	e.waitAll()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: two\nstages:\n- {name: a, taskDefinition: hello}\n- {name: b, taskDefinition: hello, dependsOn: [a]}\n")
	e.apply("name: up\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: down\ntriggers: [{pipeline: up, on: success}]\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply(salesOne)
	e.apply("name: nightly\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")

	two := e.runPipeline("two", "")
	up := e.runPipeline("up", "")
	sales := []*jobs.PipelineRun{e.runPipeline("sales", ""), e.runPipeline("sales", "")}
	hour := time.Now().UTC().Truncate(time.Hour)
	var nightly []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", fmt.Sprintf(`{"name":"nightly","from":%q,"to":%q,"maxParallel":1}`,
		hour.Add(-3*time.Hour).Format(time.RFC3339), hour.Add(-2*time.Hour).Format(time.RFC3339)), &nightly)
	if len(nightly) != 2 {
		t.Fatalf("backfill made %d runs, want 2", len(nightly))
	}
	ended := map[string]string{ // the stage run each ends by, by pipeline run
		two.PipelineRunID:        e.stageRunning(two.PipelineRunID, "a"),
		up.PipelineRunID:         e.stageRunning(up.PipelineRunID, "only"),
		sales[0].PipelineRunID:   e.stageRunning(sales[0].PipelineRunID, "only"),
		nightly[0].PipelineRunID: e.stageRunning(nightly[0].PipelineRunID, "only"),
	}
	waiting := []string{sales[1].PipelineRunID, nightly[1].PipelineRunID}
	for _, id := range waiting {
		if pr := e.getRun(id); pr.Status != jobs.StatusPending {
			t.Fatalf("%s %s before the shutdown, want PENDING", id, pr.Status)
		}
	}

	close(shutdown)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "shutting down: schedules fire no more"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the shutdown was not logged within 10s")
		}
	}
	late := e.runPipeline("two", "")
	for _, runID := range ended {
		e.finish(runID)
	}
	// The ends are applied: the stage ends, the pipeline runs end.
	e.waitRun(two.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		return pr.StageState("a").Status == jobs.StatusSucceeded
	})
	for id := range ended {
		if id != two.PipelineRunID {
			e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
		}
	}
	// Their follow-ups are left, each saying so.
	for id := range ended {
		if id == two.PipelineRunID {
			continue
		}
		want := id + `","pipeline":`
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			l := logs.String()
			if i := strings.Index(l, want); i >= 0 && strings.Contains(l[i:], "are left for the next start") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the follow-ups of %s were not left within 10s:\n%s", id, l)
			}
		}
	}
	// An apply that leaves more room promotes nothing either.
	e.apply(strings.Replace(salesOne, "maxActiveRuns: 1", "maxActiveRuns: 3", 1))
	if st := e.getRun(two.PipelineRunID).StageState("b"); st.Status != jobs.StatusPending || len(st.Runs) != 0 {
		t.Errorf("stage b %s with %d runs once a ended, shutting down: want PENDING, none", st.Status, len(st.Runs))
	}
	if pr := e.getRun(late.PipelineRunID); pr.StartedAt != nil || len(pr.StageState("a").Runs) != 0 {
		t.Errorf("a pipeline run asked for while shutting down: started %v, %d runs of a; want unstarted", pr.StartedAt, len(pr.StageState("a").Runs))
	}
	if runs := e.pipelineRuns("down"); len(runs) != 0 {
		t.Errorf("%d runs of down triggered while shutting down, want none", len(runs))
	}
	for _, id := range waiting {
		if pr := e.getRun(id); pr.Status != jobs.StatusPending || pr.StartedAt != nil {
			t.Errorf("%s %s (started %v) while shutting down, want PENDING, unstarted", id, pr.Status, pr.StartedAt)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The next start, over the same store and JetStream, starts them.
	e.stop()
	e.opts = nil
	e.startServer()
	e.waitAll()
	e.stageRunning(two.PipelineRunID, "b")
	e.stageRunning(late.PipelineRunID, "a")
	for _, id := range waiting {
		e.stageRunning(id, "only")
	}
	down := e.waitRuns("down", func(runs []jobs.PipelineRun) bool { return len(runs) == 1 })[0]
	if down.TriggeredBy != up.PipelineRunID {
		t.Errorf("down's run triggered by %q, want %s", down.TriggeredBy, up.PipelineRunID)
	}
	e.stageRunning(down.PipelineRunID, "only")
}
