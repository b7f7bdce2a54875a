package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startDepsAPI is startAPI with a server whose sweep does not come in a
// test's time: the sweep resolves what a resolution missed
// (resolveEnded), and would hide a path that resolves nothing.
func startDepsAPI(t *testing.T) *apiEnv {
	e := startAPI(t)
	e.stop()
	e.opts = []Option{WithSweepInterval(time.Hour)}
	e.startServer()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	return e
}

// submitRun submits body as the operator and returns the run.
func (e *apiEnv) submitRun(body string) *jobs.Run {
	e.t.Helper()
	var r jobs.Run
	e.ok("gantry.api.runs.submit", body, &r)
	return &r
}

// dependent submits a run of hello that depends on deps (RUN[:COND]).
func (e *apiEnv) dependent(deps ...string) *jobs.Run {
	e.t.Helper()
	var ds []jobs.RunDependency
	for _, s := range deps {
		d, err := jobs.ParseRunDependency(s)
		if err != nil {
			e.t.Fatal(err)
		}
		ds = append(ds, d)
	}
	body, _ := json.Marshal(map[string]any{"taskDefinition": "hello", "dependsOn": ds})
	return e.submitRun(string(body))
}

// waitFor polls run id until ok holds.
func (e *apiEnv) waitFor(id, what string, ok func(*jobs.Run) bool) *jobs.Run {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var r jobs.Run // afresh: a field left out of the reply must not keep the last one's value
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &r)
		if ok(&r) {
			return &r
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(r, "", " ")
			e.t.Fatalf("run %s is not %s after 10s:\n%s", id, what, b)
		}
	}
}

// jobsOf returns the attempts whose jobs were published for run id on the
// default cluster's normal queue, in order.
func (e *apiEnv) jobsOf(id string) []int {
	e.t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(e.op)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := js.Stream(ctx, queue.StreamJobs)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []int
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		var j jobs.Job
		if json.Unmarshal(m.Data, &j) == nil && j.RunID == id {
			out = append(out, j.Attempt)
		}
	}
	return out
}

func released(r *jobs.Run) bool { return r.Status == jobs.StatusQueued && !r.Waiting() }

// waitReleased waits until run id is released and its job published.
func (e *apiEnv) waitReleased(id string) *jobs.Run {
	e.t.Helper()
	r := e.waitFor(id, "released", released)
	for deadline := time.Now().Add(10 * time.Second); len(e.jobsOf(id)) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s released, but no job of it was published within 10s", id)
		}
	}
	return r
}

func ended(r *jobs.Run) bool { return r.Status.Terminal() }

// checkDependentFailed checks r failed without running for the reason.
func checkDependentFailed(t *testing.T, r *jobs.Run, reason string) {
	t.Helper()
	if r.Status != jobs.StatusFailed || r.StopCode != jobs.StopFailedToStart || r.StoppedReason != reason ||
		r.StartedAt != nil || r.FinishedAt == nil || r.ExitCode != nil || r.StatusReason != "" {
		b, _ := json.MarshalIndent(r, "", " ")
		t.Errorf("run %s: want FAILED (%s) with reason %q:\n%s", r.RunID, jobs.StopFailedToStart, reason, b)
	}
}

// TestRunWaitsForItsDependency: a run that depends on another is QUEUED,
// says what it waits for, and has no job until the other succeeds; then
// its job is published as a submission's, on the queue of its priority.
func TestRunWaitsForItsDependency(t *testing.T) {
	e := startDepsAPI(t)
	a := e.submitRun(`{"taskDefinition":"hello"}`)
	b := e.submitRun(fmt.Sprintf(`{"taskDefinition":"hello","priority":"high","dependsOn":[{"runId":%q}]}`, a.RunID))
	if want := fmt.Sprintf("waiting for run %s (QUEUED) to succeed", a.RunID); b.Status != jobs.StatusQueued || b.StatusReason != want {
		t.Fatalf("submitted: %s %q, want QUEUED %q", b.Status, b.StatusReason, want)
	}
	if len(b.DependsOn) != 1 || b.DependsOn[0] != (jobs.DependencyState{RunID: a.RunID, Condition: jobs.CondSuccess}) {
		t.Errorf("dependsOn %+v", b.DependsOn)
	}
	// a starts: b says so, and still has no job.
	q := e.queue()
	ev := &jobs.Event{RunID: a.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}
	if err := q.Report(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("waiting for run %s (RUNNING) to succeed", a.RunID)
	e.waitFor(b.RunID, "told that its dependency runs", func(r *jobs.Run) bool { return r.StatusReason == want })
	var list ListReply
	e.ok("gantry.api.runs.list", `{"status":"QUEUED"}`, &list)
	for _, r := range list.Runs {
		if r.RunID == b.RunID && r.StatusReason != want {
			t.Errorf("runs.list: reason %q, want %q", r.StatusReason, want)
		}
	}
	if got := e.jobsOf(b.RunID); len(got) != 0 {
		t.Fatalf("a job of the waiting run was published: attempts %v", got)
	}
	exit := 0
	ev = &jobs.Event{RunID: a.RunID, Attempt: 1, Seq: 2, Status: jobs.StatusSucceeded, Source: jobs.SourceWorker, Worker: "w1",
		Time: time.Now().UTC(), ExitCode: &exit}
	if err := q.Report(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	got := e.waitReleased(b.RunID)
	if strings.HasPrefix(got.StatusReason, "waiting for") || got.DependsOn[0].Status != jobs.StatusSucceeded {
		t.Errorf("released: reason %q, dependsOn %+v", got.StatusReason, got.DependsOn)
	}
	if j := e.lastJob("gantry.jobs.default.p.high"); j == nil || j.RunID != b.RunID || j.Attempt != 1 || j.Priority != jobs.PriorityHigh {
		t.Errorf("the released run's job on the high queue: %+v", j)
	}
}

// TestDependencyConditionsAndChains: a failure fails the runs that needed
// success, and in turn those that need them; it releases those that need
// a failure or an end, however far down.
func TestDependencyConditionsAndChains(t *testing.T) {
	e := startDepsAPI(t)
	a := e.submitRun(`{"taskDefinition":"hello"}`)
	b := e.dependent(a.RunID)                     // fails: a fails
	c := e.dependent(b.RunID)                     // fails: b fails
	d := e.dependent(c.RunID + ":failure")        // released: c fails
	f := e.dependent(b.RunID + ":complete")       // released: b ends
	g := e.dependent(a.RunID+":failure", d.RunID) // waits for d
	other := e.submitRun(`{"taskDefinition":"hello"}`)
	h := e.dependent(a.RunID+":complete", other.RunID) // waits for other
	e.end(a.RunID, jobs.StatusFailed, 3)

	checkDependentFailed(t, e.waitFor(b.RunID, "ended", ended), fmt.Sprintf("run %s FAILED; this run needed it to succeed", a.RunID))
	checkDependentFailed(t, e.waitFor(c.RunID, "ended", ended), fmt.Sprintf("run %s FAILED; this run needed it to succeed", b.RunID))
	e.waitReleased(d.RunID)
	e.waitReleased(f.RunID)
	if got := e.waitFor(h.RunID, "waiting on", func(r *jobs.Run) bool { return r.DependsOn[0].Status != "" }); !got.Waiting() ||
		got.StatusReason != fmt.Sprintf("waiting for run %s (QUEUED) to succeed", other.RunID) {
		t.Errorf("h, one of its two dependencies ended: %s %q", got.Status, got.StatusReason)
	}
	if got := e.waitFor(g.RunID, "told of a", func(r *jobs.Run) bool { return r.DependsOn[0].Status != "" }); !got.Waiting() {
		t.Errorf("g ended before d did: %s", got.Status)
	}
	e.finish(d.RunID)
	e.waitReleased(g.RunID)
	for _, r := range []*jobs.Run{b, c} {
		if got := e.jobsOf(r.RunID); len(got) != 0 {
			t.Errorf("a job of %s, which failed without running, was published: %v", r.RunID, got)
		}
	}
}

// TestDependencyEndedBeforeTheSubmission: a dependency that already ended
// is resolved at once: the run is queued (its job published) or fails in
// the reply itself.
func TestDependencyEndedBeforeTheSubmission(t *testing.T) {
	e := startDepsAPI(t)
	a := e.submitRun(`{"taskDefinition":"hello"}`)
	e.finish(a.RunID)
	e.waitFor(a.RunID, "ended", ended)

	ok := e.dependent(a.RunID)
	if !released(ok) || strings.HasPrefix(ok.StatusReason, "waiting") || ok.DependsOn[0].Status != jobs.StatusSucceeded {
		t.Errorf("depending on a run that succeeded: %s %q %+v", ok.Status, ok.StatusReason, ok.DependsOn)
	}
	e.waitReleased(ok.RunID)
	no := e.dependent(a.RunID + ":failure")
	checkDependentFailed(t, no, fmt.Sprintf("run %s SUCCEEDED; this run needed it to fail", a.RunID))
	if got := e.waitFor(no.RunID, "stored", ended); got.Status != jobs.StatusFailed {
		t.Errorf("stored as %s", got.Status)
	}
	// One that failed on submission fails those that depend on it.
	then := e.dependent(no.RunID)
	checkDependentFailed(t, then, fmt.Sprintf("run %s FAILED; this run needed it to succeed", no.RunID))
}

// TestUnknownDependencyIsRefused: unknown ids are refused, each named
// with its field path, as runs.get names them; a pipeline run's id and
// bad conditions are refused too, over the API and gantry.submit alike.
func TestUnknownDependencyIsRefused(t *testing.T) {
	e := startDepsAPI(t)
	a := e.submitRun(`{"taskDefinition":"hello"}`)
	const x, y = "01jxxxxxxxxxxxxxxxxxxxxxxx", "01jyyyyyyyyyyyyyyyyyyyyyyy"
	body := fmt.Sprintf(`{"taskDefinition":"hello","dependsOn":[{"runId":%q},{"runId":%q},{"runId":%q}]}`, x, a.RunID, y)
	er := apiError(t, e.req(e.op, "gantry.api.runs.submit", body))
	want := fmt.Sprintf("dependsOn[0].runId: run %s: not found\ndependsOn[2].runId: run %s: not found", x, y)
	if er.Code != jobs.CodeNotFound || er.Message != want {
		t.Errorf("unknown dependencies: %s %q, want not_found %q", er.Code, er.Message, want)
	}
	er = apiError(t, e.req(e.op, "gantry.api.runs.submit",
		`{"taskDefinition":"hello","dependsOn":[{"runId":"pr-01jabc"},{"runId":"`+a.RunID+`","condition":"succeeded"}]}`))
	if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, `dependsOn[0].runId: "pr-01jabc" is a pipeline run`) ||
		!strings.Contains(er.Message, `dependsOn[1].condition: "succeeded": want success, failure or complete`) {
		t.Errorf("a pipeline run and a bad condition: %s %q", er.Code, er.Message)
	}
	var list ListReply
	e.ok("gantry.api.runs.list", `{"all":true}`, &list)
	if len(list.Runs) != 1 {
		t.Errorf("%d runs, want only a: refused submissions make none", len(list.Runs))
	}

	// gantry.submit: refused as the API refuses, and accepted the same.
	inbox := e.sub.NewInbox()
	replies, err := e.sub.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	js, err := e.sub.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{body, fmt.Sprintf(`{"taskDefinition":"hello","dependsOn":[{"runId":%q,"condition":"complete"}]}`, a.RunID)} {
		m := nats.NewMsg(queue.SubmitSubject)
		m.Data = []byte(b)
		m.Header.Set(queue.ReplyToHeader, inbox)
		if _, err := js.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		rm, err := replies.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var reply struct {
			jobs.Run
			Error *jobs.Error `json:"error"`
		}
		json.Unmarshal(rm.Data, &reply)
		switch {
		case b == body && (reply.Error == nil || reply.Error.Code != jobs.CodeNotFound || reply.Error.Message != want):
			t.Errorf("gantry.submit with unknown dependencies: %s", rm.Data)
		case b != body && (reply.Error != nil || !reply.Waiting() ||
			reply.StatusReason != fmt.Sprintf("waiting for run %s (QUEUED) to end", a.RunID)):
			t.Errorf("gantry.submit with a dependency: %s", rm.Data)
		}
	}
}

// TestStopWaitingRun: a waiting run stopped is CANCELED at once, its job
// never published; the runs that needed it to succeed fail, those that
// needed it to end are released.
func TestStopWaitingRun(t *testing.T) {
	e := startDepsAPI(t)
	a := e.submitRun(`{"taskDefinition":"hello"}`)
	b := e.dependent(a.RunID)
	c, d := e.dependent(b.RunID), e.dependent(b.RunID+":complete")
	var stopped jobs.Run
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q}`, b.RunID), &stopped)
	if stopped.Status != jobs.StatusCanceled || stopped.StopCode != jobs.StopUserInitiated || stopped.Waiting() {
		t.Fatalf("stopped: %s %s", stopped.Status, stopped.StopCode)
	}
	checkDependentFailed(t, e.waitFor(c.RunID, "ended", ended), fmt.Sprintf("run %s CANCELED; this run needed it to succeed", b.RunID))
	e.waitReleased(d.RunID)
	// a's end changes nothing of b, and b never had a job.
	e.finish(a.RunID)
	e.waitFor(a.RunID, "ended", ended)
	if got := e.waitFor(b.RunID, "read", ended); got.Status != jobs.StatusCanceled {
		t.Errorf("b after a ended: %s", got.Status)
	}
	if got := e.jobsOf(b.RunID); len(got) != 0 {
		t.Errorf("a job of the stopped waiting run was published: %v", got)
	}
}

// TestWaitingRunsResolvedAtStart: what a waiting run waits for may end
// while the server is down (or the server may die between a run's end
// and the resolution of its waiters): at start every waiting run is
// resolved: released (its job published), failed, or failed for a
// dependency that is gone.
func TestWaitingRunsResolvedAtStart(t *testing.T) {
	e := startDepsAPI(t)
	a := e.submitRun(`{"taskDefinition":"hello"}`)
	b, c := e.dependent(a.RunID), e.dependent(a.RunID+":failure")
	d := e.dependent(c.RunID)
	e.stop()

	// A crash after a's end was stored, before its waiters were resolved;
	// and a waiting run whose dependency is gone (a store from elsewhere).
	ctx := context.Background()
	db := e.openStore()
	succeedStored(t, db, a.RunID)
	const gone = "01jgonegonegonegonegonegon"
	orphan := *b
	orphan.RunID, orphan.IdempotencyKey = "01jorphanorphanorphanorpha", ""
	orphan.DependsOn = []jobs.DependencyState{{RunID: gone, Condition: jobs.CondComplete}}
	if _, _, err := db.CreateRun(ctx, &orphan); err != nil {
		t.Fatal(err)
	}
	db.Close()

	e.startServer()
	e.waitReleased(b.RunID)
	checkDependentFailed(t, e.waitFor(c.RunID, "ended", ended), fmt.Sprintf("run %s SUCCEEDED; this run needed it to fail", a.RunID))
	checkDependentFailed(t, e.waitFor(d.RunID, "ended", ended), fmt.Sprintf("run %s FAILED; this run needed it to succeed", c.RunID))
	checkDependentFailed(t, e.waitFor(orphan.RunID, "ended", ended),
		fmt.Sprintf("run %s no longer exists (deleted for the server's --run-retention), so how it ended is unknown; this run needed it to end", gone))

	// Released again by a second start (a crash before its job's mark):
	// the job is published once more under the same Nats-Msg-Id, which
	// the queue drops.
	e.stop()
	db = e.openStore()
	if _, _, err := db.RequeueRun(ctx, b.RunID, func(r *jobs.Run) bool { return true }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.startServer() // republishes before it answers the API
	if got := e.jobsOf(b.RunID); len(got) != 1 {
		t.Errorf("jobs of b: %v, want one (the second publish dropped as a duplicate)", got)
	}
}

// TestSweepLeavesWaitingRunsWaiting: the sweep neither publishes the job
// of a waiting run (it is unpublished on purpose) nor replaces what its
// reason says by the fleet's.
func TestSweepLeavesWaitingRunsWaiting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q)
	td, _ := json.Marshal(bigTask(10))
	a, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td, DependsOn: []jobs.RunDependency{{RunID: a.RunID}}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("waiting for run %s (QUEUED) to succeed", a.RunID)
	for i := range 2 { // the first round looks at every queued run
		if err := s.sweepOnce(ctx, newSweepState()); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetRun(ctx, b.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Waiting() || got.StatusReason != want {
			t.Fatalf("after sweep %d: %s %q, want QUEUED %q", i+1, got.Status, got.StatusReason, want)
		}
	}
	s.bg.Wait() // a's mark, written once its QUEUED is stored (confirmQueued)
	un, err := db.Unpublished(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 0 {
		t.Errorf("%d runs unpublished after the sweeps, %s first", len(un), un[0].RunID)
	}
	st, err := q.JetStream().Stream(ctx, queue.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("jobs queued: %+v, %v; want a's alone", info.State, err)
	}
}

// TestWaiterFlag: the flag clears only after a look that began after the
// last waiting run's submission; a submission during the look keeps it.
func TestWaiterFlag(t *testing.T) {
	var w waiterFlag
	w.any.Store(true)
	gen := w.generation()
	w.clearIf(gen)
	if w.maybe() {
		t.Fatal("a look that found none did not clear the flag")
	}
	gen = w.generation()
	w.mark() // a waiting run submitted while the store is read
	w.clearIf(gen)
	if !w.maybe() {
		t.Fatal("a look begun before a waiting run's submission cleared the flag")
	}
}

// succeedStored ends run id SUCCEEDED in the store of a stopped server, as
// if its end was stored just before a crash that left the rest undone.
func succeedStored(t *testing.T, db *storage.DB, id string) {
	t.Helper()
	if _, err := db.UpdateRun(context.Background(), id, func(r *jobs.Run) bool {
		now := time.Now().UTC()
		r.Status, r.FinishedAt = jobs.StatusSucceeded, &now
		r.Attempts[0].Status = jobs.StatusSucceeded
		return true
	}); err != nil {
		t.Fatal(err)
	}
}

// TestWaitingRunStoredAfterASweepsLook: the sweep's look for waiting runs
// (forgetWaitersIfNone) that reads the store after a waiting run's
// submission marked the flag but before its commit finds none and clears
// the flag; the run, once stored, must set it again, or neither the
// application of its dependency's end nor the sweep ever looks for it.
// Under CI's load a sequential array's child 1 waited for ever so after
// child 0 succeeded (TestArrayRunSequential, "RUNNING after 2m").
func TestWaitingRunStoredAfterASweepsLook(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		req  jobs.SubmitRequest
		dep  bool // depends on a run submitted before
	}{
		{"a run with dependsOn", jobs.SubmitRequest{TaskDefinition: json.RawMessage(helloTaskDef)}, true},
		{"a sequential array", jobs.SubmitRequest{TaskDefinition: json.RawMessage(helloTaskDef),
			ArrayProperties: &jobs.SubmitArrayProperties{Size: json.RawMessage("2")},
			DependsOn:       []jobs.RunDependency{{Type: "SEQUENTIAL"}}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			_, q, db := testStack(t)
			var (
				s    *Server
				look atomic.Bool
			)
			s = New(db, q, WithSweepInterval(time.Hour), func(c *config) {
				c.runStoring = func() {
					if look.Load() {
						if err := s.forgetWaitersIfNone(ctx); err != nil {
							t.Error(err)
						}
					}
				}
			})
			t.Cleanup(s.bg.Wait)
			if c.dep {
				first, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: json.RawMessage(helloTaskDef)})
				if err != nil {
					t.Fatal(err)
				}
				c.req.DependsOn = []jobs.RunDependency{{RunID: first.RunID}}
			}
			look.Store(true)
			r, err := s.Submit(ctx, &c.req)
			if err != nil {
				t.Fatal(err)
			}
			if !s.waiters.maybe() {
				t.Errorf("%s stored waiting, and the flag says no run waits: its dependency's end would never release it", r.RunID)
			}
		})
	}
}
