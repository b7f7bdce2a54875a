package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/workerq"
	"github.com/nats-io/nats.go"
)

// reportFirst is a worker's Reporter that, the first time the worker
// reports a lost attempt, runs first before the report goes.
type reportFirst struct {
	worker.Reporter
	once  sync.Once
	first func()
}

func (r *reportFirst) PublishEvents(ctx context.Context, evs ...*jobs.Event) error {
	if evs[0].StopCode == jobs.StopWorkerLost {
		r.once.Do(r.first)
	}
	return r.Reporter.PublishEvents(ctx, evs...)
}

// serverEvents gathers the server's announcements on gantry.events.runs.>.
type serverEvents struct {
	mu  sync.Mutex
	evs map[string][]jobs.Event
}

func watchServerEvents(t *testing.T, nc *nats.Conn) *serverEvents {
	t.Helper()
	se := &serverEvents{evs: map[string][]jobs.Event{}}
	sub, err := nc.Subscribe("gantry.events.runs.>", func(m *nats.Msg) {
		var ev jobs.Event
		if json.Unmarshal(m.Data, &ev) != nil || ev.Source != jobs.SourceServer {
			return
		}
		se.mu.Lock()
		se.evs[ev.RunID] = append(se.evs[ev.RunID], ev)
		se.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return se
}

func (se *serverEvents) of(run string) []jobs.Event {
	se.mu.Lock()
	defer se.mu.Unlock()
	return slices.Clone(se.evs[run])
}

// w1Succeeds reports, as w1, that attempt 1 of run id succeeded, and waits
// until the server has ended the run.
func (e *lostEnv) w1Succeeds(id string) {
	e.t.Helper()
	zero := 0
	if err := e.q.Report(e.ctx, &jobs.Event{RunID: id, Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded,
		Source: jobs.SourceWorker, Worker: "w1", Time: e.now(), ExitCode: &zero,
		Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}}); err != nil {
		e.t.Error(err)
		return
	}
	e.waitRun(id, "ended by w1", func(r *jobs.Run) bool { return r.Status.Terminal() })
}

// startW2 runs a real worker w2 with claims (through claims, if not nil)
// and reports (through rep, if not nil) over e's queue.
func (e *lostEnv) startW2(rt worker.Runtime, claims worker.Claims, rep worker.Reporter) {
	e.t.Helper()
	cons, err := e.q.Jobs(e.ctx, "default", "w2")
	if err != nil {
		e.t.Fatal(err)
	}
	if claims == nil {
		claims = workerq.Claims{Q: e.q}
	}
	if rep == nil {
		rep = workerq.Reporter{Q: e.q}
	}
	w := worker.New("w2", "default", workerq.Source{C: cons}, rt, rep, worker.WithClaims(claims))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// TestAttemptAfterTheRunEndedIsRecorded plays, in a fixed order, what the
// kill -9 test found with a lease shorter than a server's restart: w1
// runs attempt 1 and is cut off for longer than its lease; the queue hands
// the job to w2 (a real worker, over the embedded NATS), whose claim finds
// w1 lost. Before w2's report of the loss reaches the server, w1's own end
// of attempt 1 does, and ends the run; the loss then changes nothing. The
// attempt w2 runs must still be recorded: as attempt 2, marked as run
// after the end and saying why, its exit code its own, the run's status,
// exit code and worker w1's, its end announced once.
func TestAttemptAfterTheRunEndedIsRecorded(t *testing.T) {
	e := startLostEnv(t)
	se := watchServerEvents(t, e.nc)
	r := e.submit()
	e.takeAsLostWorker(r.RunID, true) // w1 renews no lease: cut off

	rt := runtimeFunc(func(_ context.Context, task *worker.Task, _ worker.LogSink) (*worker.Result, error) {
		e.ran <- task.Attempt
		task.Started([]jobs.ContainerResult{{Name: "main"}})
		seven := 7
		return &worker.Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &seven}}}, nil
	})
	// w1's end of attempt 1 reaches the server before w2's report of w1's
	// loss: w1 reconnected meanwhile.
	e.startW2(rt, nil, &reportFirst{Reporter: workerq.Reporter{Q: e.q}, first: func() { e.w1Succeeds(r.RunID) }})

	got := e.waitRun(r.RunID, "with an attempt 2 that ended", func(r *jobs.Run) bool {
		return len(r.Attempts) == 2 && r.Attempts[1].Status.Terminal()
	})
	if got.Status != jobs.StatusSucceeded || got.ExitCode == nil || *got.ExitCode != 0 || got.Worker != "w1" ||
		got.Attempts[0].Status != jobs.StatusSucceeded || got.Attempts[0].Worker != "w1" || got.Current().Attempt != 1 {
		b, _ := json.MarshalIndent(got, "", "  ")
		t.Fatalf("the attempt after the end changed the run:\n%s", b)
	}
	late := got.Attempts[1]
	if late.Attempt != 2 || late.Worker != "w2" || late.Status != jobs.StatusFailed || late.ExitCode == nil || *late.ExitCode != 7 ||
		late.StartedAt == nil || late.FinishedAt == nil || len(late.Containers) != 1 {
		t.Fatalf("attempt 2: %+v", late)
	}
	for _, want := range []string{"ran after the run had ended", "worker w1's lease on the job of attempt 1 ran out",
		"handed the job to worker w2 as attempt 2"} {
		if !strings.Contains(late.AfterEnd, want) {
			t.Errorf("attempt 2's afterEnd %q does not say %q", late.AfterEnd, want)
		}
	}
	e.waitJobsDone() // w2 acknowledged the job: it is not run again
	if ran := e.ranAttempts(); !slices.Equal(ran, []int{2}) {
		t.Fatalf("attempts run: %v, want [2]", ran)
	}

	// The end was announced once, as w1's, and the attempt after it
	// announced nothing: a run ended after it (whose events the server
	// applies later, announcing on the same connection) is announced
	// after whatever the late attempt's events brought.
	sentinel := &jobs.Run{RunID: "sentinel-" + r.RunID, Status: jobs.StatusRunning, Cluster: "default", CreatedAt: e.now(),
		Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusRunning, Worker: "w3", CreatedAt: e.now()}}}
	if _, _, err := e.db.CreateRun(e.ctx, sentinel); err != nil {
		t.Fatal(err)
	}
	zero := 0
	if err := e.q.Report(e.ctx, &jobs.Event{RunID: sentinel.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusSucceeded,
		Source: jobs.SourceWorker, Worker: "w3", Time: e.now(), ExitCode: &zero}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(se.of(sentinel.RunID)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server never announced the sentinel run's end")
		}
	}
	var ends []string
	for _, ev := range se.of(r.RunID) {
		if ev.Status.Terminal() {
			ends = append(ends, fmt.Sprintf("%s/%d", ev.Status, ev.Attempt))
		}
	}
	if !slices.Equal(ends, []string{"SUCCEEDED/1"}) {
		t.Fatalf("ends announced: %v, want [SUCCEEDED/1]", ends)
	}
}
