package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
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
