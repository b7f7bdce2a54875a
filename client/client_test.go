package client_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
)

func TestSubmitOnlyUserIsRefusedQuickly(t *testing.T) {
	o := embedded.Options{User: "op", Password: "op-pw", SubmitUser: "sub", SubmitPassword: "sub-pw"}
	op, stop := startGantryWith(o, []nats.Option{nats.UserInfo("op", "op-pw")})
	defer stop()
	ctx := context.Background()
	oc, _ := client.New(op)
	if _, _, err := oc.RegisterTaskDef(ctx, []byte(helloTaskDef)); err != nil {
		t.Fatal(err)
	}
	sub, err := nats.Connect(op.ConnectedUrl(), nats.UserInfo("sub", "sub-pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sc, _ := client.New(sub)
	r, err := sc.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"hello"`)})
	if err != nil {
		t.Fatalf("the submitter may submit: %v", err)
	}
	if _, err := sc.Get(ctx, r.RunID); err != nil {
		t.Fatalf("the submitter may get its run: %v", err)
	}
	// Following reads GANTRY_EVENTS and GANTRY_LOGS by direct get: the
	// submitter may make no consumer (queue/embedded/roles.go).
	if err := sc.Logs(ctx, r.RunID, client.LogOptions{}, func(*jobs.LogBatch) error { return nil }); err != nil {
		t.Fatalf("the submitter may read logs: %v", err)
	}
	events, err := sc.Events(ctx, r.RunID)
	if err != nil {
		t.Fatalf("the submitter may follow events: %v", err)
	}
	select {
	case ev := <-events:
		if ev.RunID != r.RunID || ev.Status != jobs.StatusQueued {
			t.Errorf("first event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Error("no event")
	}
	start := time.Now()
	_, err = sc.Stop(ctx, r.RunID, "")
	if !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("stop as the submitter: %v, want permission_denied", err)
	}
	// However the refusal reached the client (the request's own error or
	// the connection's asynchronous one), the user reads the same words.
	if want := "NATS refused gantry.api.runs.stop: permission denied"; !strings.Contains(err.Error(), want) {
		t.Errorf("stop as the submitter says %q, want %q", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the refusal took %s", d)
	}
	if _, err := sc.ListTaskDefs(ctx, client.TaskDefListOptions{}); !errors.Is(err, client.ErrPermissionDenied) {
		t.Errorf("list task definitions as the submitter: %v", err)
	}
	if _, err := oc.Stop(ctx, r.RunID, ""); err != nil {
		t.Errorf("the operator may stop: %v", err)
	}
}

func TestLogPosition(t *testing.T) {
	nc, stop := startGantry()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(nc)
	c.RegisterTaskDef(ctx, []byte(helloTaskDef))
	r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"hello"`)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.LogPosition(ctx, r.RunID, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Stream != "GANTRY_LOGS" || p.Subject != "gantry.logs."+r.RunID+".>" || p.Messages != 0 || p.Ended {
		t.Errorf("position %+v", p)
	}
	if _, err := c.LogPosition(ctx, "01jzzzzzzzzzzzzzzzzzzzzzzz", ""); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("unknown run: %v", err)
	}
}

// TestSubmitDurableUnknownTaskDefinition: the server's refusal of a durable
// submission comes back through its reply as the API error.
func TestSubmitDurableUnknownTaskDefinition(t *testing.T) {
	nc, stop := startGantry()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := client.New(nc)
	_, err := c.SubmitDurable(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"nosuch"`)}, "")
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &apiErr) || !strings.Contains(apiErr.Message, "nosuch") {
		t.Fatalf("got %v; want the server's not_found error naming nosuch", err)
	}
}

// TestWaitOutlastsAServerRestart: a run followed while its server restarts
// is still followed (its events come from JetStream), and its end is told
// once the server is back; so is a pipeline run watched.
func TestWaitOutlastsAServerRestart(t *testing.T) {
	dir := t.TempDir()
	ns, err := embedded.Start(embedded.Options{StoreDir: filepath.Join(dir, "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	startServer := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		db, err := storage.Open(ctx, filepath.Join(dir, "gantry.db"))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		q, _ := queue.New(sc)
		done := make(chan struct{})
		go func() { defer close(done); server.New(db, q).Run(ctx) }()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := sc.Request("gantry.api.runs.list", nil, time.Second); err == nil {
				break
			}
		}
		return func() { cancel(); <-done; db.Close(); sc.Close() }
	}
	stopServer := startServer()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, _ := client.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// No worker: the run stays queued until it is stopped.
	r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   *jobs.Run
		err error
	}
	waited := make(chan result, 1)
	go func() { r, err := c.Wait(ctx, r.RunID); waited <- result{r, err} }()
	// A pipeline run is followed through the restart too.
	if _, _, err := c.ApplyPipeline(ctx, []byte("name: p\nstages: [{name: a, taskDefinition: {family: f, containerDefinitions: [{name: main, image: i}]}}]\n")); err != nil {
		t.Fatal(err)
	}
	pr, err := c.RunPipeline(ctx, "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	type pipelineResult struct {
		pr  *jobs.PipelineRun
		err error
	}
	watched := make(chan pipelineResult, 1)
	go func() { pr, err := c.WatchPipelineRun(ctx, pr.PipelineRunID, nil); watched <- pipelineResult{pr, err} }()
	time.Sleep(200 * time.Millisecond)
	stopServer()
	select {
	case w := <-waited:
		t.Fatalf("Wait ended while the server was down: %+v %v", w.r, w.err)
	case w := <-watched:
		t.Fatalf("WatchPipelineRun ended while the server was down: %+v %v", w.pr, w.err)
	case <-time.After(5 * time.Second): // two of Wait's polls
	}
	stopServer = startServer()
	if _, err := c.Stop(ctx, r.RunID, "done waiting"); err != nil {
		t.Fatal(err)
	}
	w := <-waited
	if w.err != nil || w.r.Status != jobs.StatusCanceled {
		t.Fatalf("Wait: %+v %v, want CANCELED", w.r, w.err)
	}
	if _, err := c.StopPipelineRun(ctx, pr.PipelineRunID, "done watching"); err != nil {
		t.Fatal(err)
	}
	if w := <-watched; w.err != nil || w.pr.Status != jobs.StatusCanceled {
		t.Fatalf("WatchPipelineRun: %+v %v, want CANCELED", w.pr, w.err)
	}
	// A server gone for good is given up on, with a message.
	r2, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { client.ServerGone = d }(client.ServerGone)
	client.ServerGone = 3 * time.Second
	go func() { r, err := c.Wait(ctx, r2.RunID); waited <- result{r, err} }()
	pr2, err := c.RunPipeline(ctx, "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { pr, err := c.WatchPipelineRun(ctx, pr2.PipelineRunID, nil); watched <- pipelineResult{pr, err} }()
	time.Sleep(200 * time.Millisecond)
	stopServer()
	select {
	case w := <-waited:
		if w.err == nil || !strings.Contains(w.err.Error(), "has not answered for 3s") {
			t.Fatalf("Wait with the server gone: %+v %v", w.r, w.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait still follows a run whose server is gone")
	}
	select {
	case w := <-watched:
		if w.err == nil || !strings.Contains(w.err.Error(), "following pipeline run "+pr2.PipelineRunID+": the server has not answered for 3s") {
			t.Fatalf("WatchPipelineRun with the server gone: %+v %v", w.pr, w.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("WatchPipelineRun still follows a run whose server is gone")
	}
}

// TestLogsOfAnAttemptTheRunDoesNotHave: asking for an attempt the run does
// not have is an error naming what it has, not an empty log that reads as
// an attempt that wrote nothing.
func TestLogsOfAnAttemptTheRunDoesNotHave(t *testing.T) {
	nc, stop := startGantry()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(nc)
	if _, _, err := c.RegisterTaskDef(ctx, []byte(helloTaskDef)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"hello"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop(ctx, r.RunID, ""); err != nil { // queued: CANCELED at once
		t.Fatal(err)
	}
	read := func(o client.LogOptions) error {
		return c.Logs(ctx, r.RunID, o, func(*jobs.LogBatch) error { return nil })
	}
	for _, o := range []client.LogOptions{{Attempt: 2}, {Attempt: -1}, {Attempt: 2, Follow: true}} {
		err := read(o)
		if want := "run " + r.RunID + " has no attempt " + strconv.Itoa(o.Attempt); !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), want) {
			t.Errorf("logs %+v: %v; want an invalid_argument error saying %q", o, err, want)
		}
	}
	if err := read(client.LogOptions{Attempt: 1}); err != nil {
		t.Errorf("logs of attempt 1: %v", err)
	}
}

// TestSubmitterGetsRunsWithoutSpec: NATS refuses the submit role runs.get,
// whose run carries its spec (here an operator's task's environment). Get
// then reads runs.status, the run without spec and idempotency key, and
// remembers it: one refusal for many Gets, concurrent ones too, which it
// keeps from the connection's error handler (nats.go's default prints
// every one on stderr). Wait, which reads the run's end with Get, works
// too; the operator's Get still has the spec.
func TestSubmitterGetsRunsWithoutSpec(t *testing.T) {
	var mu sync.Mutex
	var serverLog []string
	o := embedded.Options{User: "op", Password: "op-pw", SubmitUser: "sub", SubmitPassword: "sub-pw",
		Log: func(_ embedded.Level, msg string) {
			mu.Lock()
			serverLog = append(serverLog, msg)
			mu.Unlock()
		}}
	op, stop := startGantryWith(o, []nats.Option{nats.UserInfo("op", "op-pw")})
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	oc, _ := client.New(op)
	const secret = "DB-PASSW0RD-of-the-0perat0r"
	td := `{"family":"etl","containerDefinitions":[{"name":"main","image":"gantry/none:1",` +
		`"environment":[{"name":"DB_PASSWORD","value":"` + secret + `"}]}]}`
	r, err := oc.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(td), IdempotencyKey: "op-key-1"})
	if err != nil {
		t.Fatal(err)
	}

	handlerErrs := make(chan error, 100)
	sub, err := nats.Connect(op.ConnectedUrl(), nats.UserInfo("sub", "sub-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { handlerErrs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	sc, _ := client.New(sub)
	check := func(got *jobs.Run, err error) error {
		switch {
		case err != nil:
			return err
		case got.RunID != r.RunID || got.TaskDefinition != r.TaskDefinition || len(got.Attempts) != 1:
			return fmt.Errorf("got %+v, want the run %s", got, r.RunID)
		case got.Spec.Task.Family != "" || len(got.Spec.Task.ContainerDefinitions) > 0 || got.IdempotencyKey != "":
			return fmt.Errorf("the submitter read the operator's spec or key: %+v", got)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- check(sc.Get(ctx, r.RunID)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Get as the submitter: %v", err)
		}
	}
	if err := check(sc.Get(ctx, r.RunID)); err != nil {
		t.Errorf("Get as the submitter, again: %v", err)
	}
	if _, err := oc.Stop(ctx, r.RunID, ""); err != nil {
		t.Fatal(err)
	}
	ended, err := sc.Wait(ctx, r.RunID)
	if err != nil || ended.Status != jobs.StatusCanceled || ended.Spec.Task.Family != "" {
		t.Errorf("Wait as the submitter: %v %+v", err, ended)
	}

	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	var refusals int
	for _, line := range serverLog {
		if strings.Contains(line, `Publish Violation - Subject "gantry.api.runs.get"`) {
			refusals++
		}
	}
	mu.Unlock()
	if refusals != 1 {
		t.Errorf("NATS refused runs.get %d times, want once", refusals)
	}
	select {
	case err := <-handlerErrs:
		t.Errorf("the connection's error handler was told %v", err)
	default:
	}

	got, err := oc.Get(ctx, r.RunID)
	if err != nil || len(got.Spec.Task.ContainerDefinitions) != 1 ||
		got.Spec.Task.ContainerDefinitions[0].Environment[0].Value != secret || got.IdempotencyKey != "op-key-1" {
		t.Errorf("Get as the operator: %v %+v", err, got)
	}
}

// TestRegisterTaskDefThatIsNoObject: a file holding JSON other than an
// object (an array, a string) went to the server, whose answer,
// "malformed request: want a JSON object", spoke of a request the user
// never wrote; the parser says what the file holds instead, as
// 'gantry taskdef validate' does, and nothing is sent.
func TestRegisterTaskDefThatIsNoObject(t *testing.T) {
	nc, stop := startGantry()
	defer stop()
	c, _ := client.New(nc)
	for _, c2 := range []struct{ in, want string }{
		{`[]`, "task definition: want a JSON object, got an array"},
		{` ["hello"] `, "task definition: want a JSON object, got an array"},
		{`"hello"`, `task definition: want a JSON object, got the string "hello"`},
		{`null`, "task definition: want a JSON object"},
		{``, "task definition: "},
	} {
		_, _, err := c.RegisterTaskDef(context.Background(), []byte(c2.in))
		if err == nil || !strings.Contains(err.Error(), c2.want) || strings.Contains(err.Error(), "malformed request") {
			t.Errorf("register %q: %v; want %q", c2.in, err, c2.want)
		}
	}
}
