package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// runPipeline starts a run of pipeline name with the request's other
// fields (JSON, without braces; may be empty) and returns the reply.
func (e *apiEnv) runPipeline(name, more string) *jobs.PipelineRun {
	e.t.Helper()
	body := fmt.Sprintf(`{"name":%q}`, name)
	if more != "" {
		body = fmt.Sprintf(`{"name":%q,%s}`, name, more)
	}
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", body, &pr)
	return &pr
}

// checkWaiting fails unless pr waits PENDING, unstarted, for reason.
func checkWaiting(t *testing.T, pr *jobs.PipelineRun, reason string) {
	t.Helper()
	if pr.Status != jobs.StatusPending || pr.StatusReason != reason || pr.StartedAt != nil || len(pr.Stages[0].Runs) != 0 {
		t.Fatalf("%s: %s %q started %v with %d stage runs, want PENDING %q, unstarted", pr.PipelineRunID, pr.Status,
			pr.StatusReason, pr.StartedAt, len(pr.Stages[0].Runs), reason)
	}
}

// runningIDs are the ids of the RUNNING runs among runs.
func runningIDs(runs []jobs.PipelineRun) []string {
	var ids []string
	for _, r := range runs {
		if r.Status == jobs.StatusRunning {
			ids = append(ids, r.PipelineRunID)
		}
	}
	return ids
}

const salesOne = "name: sales\nmaxActiveRuns: 1\nstages: [{name: only, taskDefinition: hello}]\n"

// TestMaxActiveRunsQueueRunsOfAPipeline: with maxActiveRuns 1 a second
// manual run waits PENDING, saying why, and starts when the first ends,
// the highest priority first; a restart that finds a place free starts
// one waiting run, not more; raising the bound at apply starts the runs
// it leaves room for at once, lowering it stops nothing, removing it
// starts every run at once; a waiting run stopped is CANCELED unstarted.
func TestMaxActiveRunsQueueRunsOfAPipeline(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(salesOne)
	const full = "waiting: 1 of 1 active runs of sales (maxActiveRuns)"

	a := e.runPipeline("sales", "")
	if a.Status != jobs.StatusRunning || a.StatusReason != "" || len(a.Stages[0].Runs) != 1 {
		t.Fatalf("first run: %s %q, %d stage runs", a.Status, a.StatusReason, len(a.Stages[0].Runs))
	}
	// Its timeout does not run while it waits: its clock starts with it.
	b := e.runPipeline("sales", `"timeoutSeconds":3600`)
	checkWaiting(t, b, full)
	c := e.runPipeline("sales", `"priority":"high"`)
	checkWaiting(t, c, full)
	if _, ok := b.Deadline(); ok {
		t.Fatalf("a waiting run has a deadline")
	}

	// a ends: c, of higher priority, starts before b, older.
	e.finish(a.Stages[0].Runs[0].RunID)
	runs := e.waitRuns("sales", func(runs []jobs.PipelineRun) bool {
		return count(runs, jobs.StatusSucceeded) == 1 && len(runningIDs(runs)) == 1
	})
	if ids := runningIDs(runs); ids[0] != c.PipelineRunID {
		t.Fatalf("running %v, want the high-priority run %s", ids, c.PipelineRunID)
	}
	checkWaiting(t, e.getRun(b.PipelineRunID), full)
	c = e.waitRun(c.PipelineRunID, func(pr *jobs.PipelineRun) bool { return len(pr.Stages[0].Runs) == 1 })
	if c.StatusReason != "" || c.StartedAt == nil {
		t.Fatalf("started run: reason %q, started %v", c.StatusReason, c.StartedAt)
	}

	// The server stops; c's end is stored but not followed up (a crash
	// right after it). Another run waits beside b. The next server starts
	// b, the oldest, and only b.
	d := e.runPipeline("sales", "")
	e.stop()
	db := e.openStore()
	end := time.Now().UTC()
	if _, err := db.UpdatePipelineRun(context.Background(), c.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		pr.Status, pr.FinishedAt = jobs.StatusSucceeded, &end
		return true
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.startServer()
	e.waitAll()
	runs = e.waitRuns("sales", func(runs []jobs.PipelineRun) bool { return len(runningIDs(runs)) > 0 })
	if ids := runningIDs(runs); len(ids) != 1 || ids[0] != b.PipelineRunID {
		t.Fatalf("after the restart: running %v, want only %s", ids, b.PipelineRunID)
	}
	b = e.waitRun(b.PipelineRunID, func(pr *jobs.PipelineRun) bool { return len(pr.Stages[0].Runs) == 1 })
	if at, ok := b.Deadline(); !ok || !at.Equal(b.StartedAt.Add(time.Hour)) || !b.StartedAt.After(b.CreatedAt) {
		t.Fatalf("b's deadline %v (%v), want an hour after its start %v, after its creation %v", at, ok, b.StartedAt, b.CreatedAt)
	}
	checkWaiting(t, e.getRun(d.PipelineRunID), full)

	// Raised to 2: the apply starts d.
	e.apply(strings.Replace(salesOne, "maxActiveRuns: 1", "maxActiveRuns: 2", 1))
	if d = e.getRun(d.PipelineRunID); d.Status != jobs.StatusRunning || d.StatusReason != "" || len(d.Stages[0].Runs) != 1 {
		t.Fatalf("after raising maxActiveRuns: %s %q", d.Status, d.StatusReason)
	}
	// Lowered to 1: b and d run on; a new run waits, told the count.
	e.apply(salesOne)
	f := e.runPipeline("sales", "")
	checkWaiting(t, f, "waiting: 2 of 1 active runs of sales (maxActiveRuns)")
	if ids := runningIDs(e.pipelineRuns("sales")); len(ids) != 2 {
		t.Fatalf("after lowering maxActiveRuns: running %v", ids)
	}
	// Stopped, a waiting run ends CANCELED without having started.
	var stopped jobs.PipelineRun
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q}`, f.PipelineRunID), &stopped)
	if stopped.Status != jobs.StatusCanceled || stopped.StartedAt != nil || len(stopped.Stages[0].Runs) != 0 ||
		stopped.StatusReason != "" || stopped.StoppedReason != "Stopped by user" {
		t.Fatalf("stopped waiting run: %s started %v, statusReason %q, stoppedReason %q",
			stopped.Status, stopped.StartedAt, stopped.StatusReason, stopped.StoppedReason)
	}
	// One end frees no place (2 of 1 running): another run still waits.
	g := e.runPipeline("sales", "")
	e.finish(b.Stages[0].Runs[0].RunID)
	e.waitRun(b.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })
	checkWaiting(t, e.waitRun(g.PipelineRunID, func(pr *jobs.PipelineRun) bool { return strings.HasPrefix(pr.StatusReason, "waiting: 1 of 1") }), full)
	// Without maxActiveRuns, the waiting run starts at the apply, and a
	// new one at once.
	e.apply("name: sales\nstages: [{name: only, taskDefinition: hello}]\n")
	if g = e.getRun(g.PipelineRunID); g.Status != jobs.StatusRunning {
		t.Fatalf("after removing maxActiveRuns: %s %q", g.Status, g.StatusReason)
	}
	if h := e.runPipeline("sales", ""); h.Status != jobs.StatusRunning || len(h.Stages[0].Runs) != 1 {
		t.Fatalf("a run without maxActiveRuns: %s", h.Status)
	}
	// Refused at apply, naming the field; nothing stored.
	body, _ := json.Marshal(map[string][]byte{"data": []byte("name: sales\nmaxActiveRuns: 0\nstages: [{name: only, taskDefinition: hello}]\n")})
	if got := apiError(t, e.req(e.op, "gantry.api.pipelines.apply", string(body))); got.Code != jobs.CodeInvalidArgument ||
		got.Message != "maxActiveRuns: must be at least 1, got 0; leave it out for no bound" {
		t.Fatalf("maxActiveRuns 0: %s %q", got.Code, got.Message)
	}
}

// TestMaxActiveRunsHoldsForRetriesAndBackfills: a retried run takes a
// place as a new one does, waiting if none is free, and its clock
// restarts when it gets one; a backfill's runs wait for both bounds.
func TestMaxActiveRunsHoldsForRetriesAndBackfills(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nmaxActiveRuns: 1\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	const full = "waiting: 1 of 1 active runs of sales (maxActiveRuns)"

	a := e.runPipeline("sales", "")
	e.fail(a.Stages[0].Runs[0].RunID)
	e.waitRun(a.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
	b := e.runPipeline("sales", "")
	var retried jobs.PipelineRun
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, a.PipelineRunID), &retried)
	if retried.Retries != 1 || retried.StageState("only").Try != 2 {
		t.Fatalf("retry: %d retries, try %d", retried.Retries, retried.StageState("only").Try)
	}
	checkWaiting(t, &jobs.PipelineRun{PipelineRunID: retried.PipelineRunID, Status: retried.Status, StatusReason: retried.StatusReason,
		Stages: retried.Stages}, full)
	waitedFrom := *retried.RetriedAt
	e.finish(b.Stages[0].Runs[0].RunID)
	got := e.waitRun(a.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		return pr.Status == jobs.StatusRunning && len(pr.StageState("only").Runs) == 1
	})
	if got.StatusReason != "" || !got.RetriedAt.After(waitedFrom) {
		t.Fatalf("retried run started: reason %q, clock from %v (retried at %v)", got.StatusReason, got.RetriedAt, waitedFrom)
	}
	e.finish(got.StageState("only").Runs[0].RunID)
	e.waitRun(a.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusSucceeded })

	// A backfill of three times with no --max-parallel of its own, and a
	// manual run between: never more than one RUNNING, each told why it
	// waits, all run in the end.
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-01-01T00:00:00Z","to":"2026-01-01T02:00:00Z"}`, &bf)
	if len(bf) != 3 || bf[0].Status != jobs.StatusRunning {
		t.Fatalf("backfill: %d runs, the first %s", len(bf), bf[0].Status)
	}
	for _, r := range bf[1:] {
		checkWaiting(t, &r, full)
	}
	m := e.runPipeline("sales", "")
	checkWaiting(t, m, full)
	for i := range 4 {
		runs := e.waitRuns("sales", func(runs []jobs.PipelineRun) bool {
			ids := runningIDs(runs)
			for _, r := range runs {
				if r.Status == jobs.StatusRunning && len(r.Stages[0].Runs) == 0 {
					return false // promoted, its stage not submitted yet
				}
			}
			return len(ids) == 1 && count(runs, jobs.StatusSucceeded) == 2+i
		})
		for _, r := range runs {
			if r.Status == jobs.StatusRunning {
				e.finish(r.Stages[0].Runs[0].RunID)
			}
		}
	}
	e.waitRuns("sales", func(runs []jobs.PipelineRun) bool { return count(runs, jobs.StatusSucceeded) == 6 })
}

// TestMaxActiveRunsWithConcurrencyPolicies drives the cron with an
// injected clock (an apply wakes it): under Allow a fire waits for a
// place like any run; under Replace it stops the active runs, waiting
// ones included, and starts once the stopped ones have ended; under
// Forbid a fire is skipped while a run is active, waiting or not.
func TestMaxActiveRunsWithConcurrencyPolicies(t *testing.T) {
	var mu sync.Mutex
	now := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	e := startAPI(t)
	e.stop()
	e.opts = []Option{WithClock(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})}
	e.startServer()
	e.waitAll()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const src = "name: %s\nmaxActiveRuns: 1\nschedule: {cron: '0 * * * *', concurrencyPolicy: %s}\nstages: [{name: only, taskDefinition: hello}]\n"
	policies := []string{"Allow", "Replace", "Forbid"}
	manual := map[string][2]*jobs.PipelineRun{}
	for _, pol := range policies {
		name := strings.ToLower(pol)
		e.apply(fmt.Sprintf(src, name, pol))
		first, second := e.runPipeline(name, ""), e.runPipeline(name, "")
		checkWaiting(t, second, fmt.Sprintf("waiting: 1 of 1 active runs of %s (maxActiveRuns)", name))
		manual[name] = [2]*jobs.PipelineRun{first, second}
	}
	// The hour passes; applying again (unchanged) wakes the cron.
	mu.Lock()
	now = now.Add(30*time.Minute + time.Second)
	mu.Unlock()
	e.apply(fmt.Sprintf(src, "allow", "Allow"))
	fired := func(name string) *jobs.PipelineRun {
		runs := e.waitRuns(name, func(runs []jobs.PipelineRun) bool {
			for _, r := range runs {
				if r.Trigger == "schedule" {
					return true
				}
			}
			return false
		})
		for _, r := range runs {
			if r.Trigger == "schedule" {
				// Past its promotion, which follows its creation.
				return e.waitRun(r.PipelineRunID, func(pr *jobs.PipelineRun) bool {
					return pr.Status != jobs.StatusPending || pr.StatusReason != ""
				})
			}
		}
		return nil
	}
	// Allow: the fire waits behind the manual runs, the older first.
	f := fired("allow")
	checkWaiting(t, f, "waiting: 1 of 1 active runs of allow (maxActiveRuns)")
	e.finish(manual["allow"][0].Stages[0].Runs[0].RunID)
	e.waitRun(manual["allow"][1].PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusRunning })
	checkWaiting(t, e.getRun(f.PipelineRunID), "waiting: 1 of 1 active runs of allow (maxActiveRuns)")

	// Replace: both manual runs stopped, the waiting one unstarted; the
	// fire runs once the running one's stage run has stopped.
	f = fired("replace")
	for _, m := range manual["replace"] {
		got := e.waitRun(m.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
		if got.Status != jobs.StatusCanceled || !strings.HasPrefix(got.StoppedReason, "replaced by the run scheduled at") {
			t.Errorf("replaced run %s: %s %q", m.PipelineRunID, got.Status, got.StoppedReason)
		}
	}
	e.waitRun(f.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		return pr.Status == jobs.StatusRunning && len(pr.Stages[0].Runs) == 1
	})

	// Forbid: skipped while the manual runs are active.
	if runs := e.pipelineRuns("forbid"); len(runs) != 2 {
		t.Fatalf("Forbid: %d runs, want the 2 manual ones (the fire skipped)", len(runs))
	}
}

// TestFailedPromotionIsTriedAgain: the store refuses to start a waiting
// run (an SQLite trigger of the test's own, as a full disk would) when a
// place frees; the run waits meanwhile, and starts once the store takes
// the write again, without a restart nor another run's end.
func TestFailedPromotionIsTriedAgain(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var logs syncBuffer
	e.stop()
	e.opts = []Option{WithLogger(zerolog.New(&logs)), func(c *config) { c.followUpRetry = 50 * time.Millisecond }}
	e.startServer()
	e.waitAll()
	e.apply(salesOne)
	a := e.runPipeline("sales", "")
	b := e.runPipeline("sales", "")

	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "gantry.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_promotion BEFORE UPDATE OF status ON pipeline_runs
		WHEN OLD.status = 'PENDING' AND NEW.status = 'RUNNING' BEGIN SELECT RAISE(ABORT, 'test refuses the promotion'); END`); err != nil {
		t.Fatal(err)
	}
	// Raising the bound frees a place: the apply is stored all the same.
	e.apply(strings.Replace(salesOne, "maxActiveRuns: 1", "maxActiveRuns: 2", 1))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "test refuses the promotion"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no promotion failed within 10s; logs:\n%s", logs.String())
		}
	}
	if pr := e.getRun(b.PipelineRunID); pr.Status != jobs.StatusPending {
		t.Fatalf("b %s while the store refused its start", pr.Status)
	}
	if _, err := db.Exec(`DROP TRIGGER refuse_promotion`); err != nil {
		t.Fatal(err)
	}
	e.waitRun(b.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		return pr.Status == jobs.StatusRunning && len(pr.Stages[0].Runs) == 1
	})
	if pr := e.getRun(a.PipelineRunID); pr.Status != jobs.StatusRunning {
		t.Fatalf("a %s", pr.Status)
	}
}

// TestRetryReadsTheBoundInItsTransaction: an apply that sets
// maxActiveRuns while a retry is under way (here: held at the retention
// sweep's lock, past its first checks) comes wholly before the retry's
// transaction, which sees the bound: the retried run waits rather than
// running beside the pipeline's running one.
func TestRetryReadsTheBoundInItsTransaction(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	unbounded := "name: sales\nstages: [{name: only, taskDefinition: hello}]\n"
	e.apply(unbounded)
	a := e.runPipeline("sales", "")
	e.fail(a.Stages[0].Runs[0].RunID)
	e.waitRun(a.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
	b := e.runPipeline("sales", "")

	e.srv.pipes.sweep.Lock()
	reply := make(chan *nats.Msg, 1)
	go func() {
		m, err := e.op.Request("gantry.api.pipelines.retry", fmt.Appendf(nil, `{"pipelineRunId":%q}`, a.PipelineRunID), 30*time.Second)
		if err != nil {
			t.Errorf("retry: %v", err)
		}
		reply <- m
	}()
	waitBlocked(t, "retryStored")
	e.apply(salesOne)
	e.srv.pipes.sweep.Unlock()
	m := <-reply
	if m == nil {
		t.FailNow()
	}
	var retried jobs.PipelineRun
	if err := json.Unmarshal(m.Data, &retried); err != nil || retried.PipelineRunID == "" {
		t.Fatalf("retry reply %s (%v)", m.Data, err)
	}
	if retried.Status != jobs.StatusPending || retried.StatusReason != "waiting: 1 of 1 active runs of sales (maxActiveRuns)" {
		t.Fatalf("the retry that came after the apply: %s %q, want PENDING waiting for %s", retried.Status, retried.StatusReason, b.PipelineRunID)
	}
	runs := e.waitRuns("sales", func([]jobs.PipelineRun) bool { return true })
	if ids := runningIDs(runs); len(ids) != 1 || ids[0] != b.PipelineRunID {
		t.Fatalf("running %v, want only %s", ids, b.PipelineRunID)
	}
}

// waitBlocked waits until a goroutine with fn on its stack is blocked on
// a sync.Mutex.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "[sync.Mutex.Lock") && strings.Contains(g, fn) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %s blocked on a mutex", fn)
		}
	}
}

// TestWaitingRunStoppedNotifiesItsEnd: a pipeline run stopped while it
// waits for maxActiveRuns ends CANCELED, and a webhook on CANCELED for
// its pipeline gets that end once: no start, the stop's reason, nothing
// of the wait.
func TestWaitingRunStoppedNotifiesItsEnd(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(salesOne)
	rc := newReceiver(t, http.StatusNoContent)
	e.addHook(fmt.Sprintf(`{"name":"ops","url":%q,"on":["CANCELED"],"pipelines":["sales"]}`, rc.URL))
	e.runPipeline("sales", "")
	b := e.runPipeline("sales", "")
	checkWaiting(t, b, "waiting: 1 of 1 active runs of sales (maxActiveRuns)")
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q,"reason":"not today"}`, b.PipelineRunID), nil)

	got := rc.wait(t, 1)[0]
	var ev jobs.WebhookEvent
	if err := json.Unmarshal(got.body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.EventID != "pipelineRun/"+b.PipelineRunID || ev.Status != jobs.StatusCanceled || ev.Pipeline != "sales" ||
		ev.StartedAt != nil || ev.StoppedAt == nil || ev.Reason != "not today" ||
		ev.Summary != "pipeline run "+b.PipelineRunID+" of sales CANCELED: not today" {
		t.Fatalf("the stopped waiting run's end: %s", got.body)
	}
	if pr := e.getRun(b.PipelineRunID); pr.Status != jobs.StatusCanceled || pr.StatusReason != "" {
		t.Fatalf("stored: %s, statusReason %q", pr.Status, pr.StatusReason)
	}
	e.waitHook("ops", "delivered", func(h jobs.WebhookInfo) bool { return h.Delivered == 1 })
	if n := rc.count(); n != 1 {
		t.Fatalf("the receiver got %d POSTs, want 1", n)
	}
}

// TestWaitingPipelineRunIsAnnounced: a run started by hand that waits for
// maxActiveRuns is announced PENDING with its reason (as a schedule's
// fire is), before the RUNNING of its start; a run that starts at once
// is announced RUNNING only, and not logged as having waited.
func TestWaitingPipelineRunIsAnnounced(t *testing.T) {
	e := startAll(t)
	var logs syncBuffer
	e.stop()
	e.opts = []Option{WithLogger(zerolog.New(&logs))}
	e.startServer()
	e.waitAll()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(salesOne)
	events := make(chan jobs.PipelineEvent, 100)
	sub, err := e.op.Subscribe(PipelineEventSubject("*"), func(m *nats.Msg) {
		var ev jobs.PipelineEvent
		json.Unmarshal(m.Data, &ev)
		events <- ev
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.op.Flush(); err != nil {
		t.Fatal(err)
	}
	next := func(id string) jobs.PipelineEvent {
		t.Helper()
		for deadline := time.After(10 * time.Second); ; {
			select {
			case ev := <-events:
				if ev.PipelineRunID == id {
					return ev
				}
			case <-deadline:
				t.Fatalf("no event of %s within 10s", id)
			}
		}
	}

	a := e.runPipeline("sales", "")
	if ev := next(a.PipelineRunID); ev.Status != jobs.StatusRunning || ev.StatusReason != "" {
		t.Fatalf("a run that starts at once: first event %s %q, want RUNNING", ev.Status, ev.StatusReason)
	}
	b := e.runPipeline("sales", "")
	const full = "waiting: 1 of 1 active runs of sales (maxActiveRuns)"
	if ev := next(b.PipelineRunID); ev.Status != jobs.StatusPending || ev.StatusReason != full || ev.Pipeline != "sales" ||
		ev.Stages["only"] != jobs.StatusPending {
		t.Fatalf("a waiting run: first event %+v, want PENDING %q", ev, full)
	}
	e.finish(a.Stages[0].Runs[0].RunID)
	if ev := next(b.PipelineRunID); ev.Status != jobs.StatusRunning || ev.StatusReason != "" {
		t.Fatalf("the waiting run once started: %s %q, want RUNNING without a reason", ev.Status, ev.StatusReason)
	}
	if l := logs.String(); strings.Contains(l, a.PipelineRunID+`","pipeline":"sales","message":"pipeline run started after waiting"`) ||
		!strings.Contains(l, b.PipelineRunID+`","pipeline":"sales","message":"pipeline run started after waiting"`) {
		t.Errorf("logs: want only %s to have started after waiting:\n%s", b.PipelineRunID, l)
	}
}

// TestSchedulesStopWhenShutdownBegins: once WithStartsUntil's channel
// is closed (gantry up's first signal), the cron fires no more, while the
// server goes on: a fired run's stage run still ends and the run with it,
// and a fire time passing meanwhile starts nothing.
func TestSchedulesStopWhenShutdownBegins(t *testing.T) {
	var mu sync.Mutex
	now := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
	}
	shutdown := make(chan struct{})
	e := startAPI(t)
	e.stop()
	e.opts = []Option{WithClock(clock), WithStartsUntil(shutdown)}
	e.startServer()
	e.waitAll()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const src = "name: hourly\nschedule: {cron: '0 * * * *'}\nstages: [{name: only, taskDefinition: hello}]\n"
	e.apply(src)

	// Before the shutdown, the hour fires (applying again wakes the cron).
	advance(30*time.Minute + time.Second)
	e.apply(src)
	fired := e.waitRuns("hourly", func(runs []jobs.PipelineRun) bool { return len(runs) == 1 })[0]
	stage := e.stageRunning(fired.PipelineRunID, "only")

	close(shutdown)
	select {
	case <-e.srv.pipes.cronDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the cron still runs 10s after the shutdown began")
	}
	advance(time.Hour)
	e.apply(src) // would wake the cron
	e.finish(stage)
	if got := e.waitRun(fired.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() }); got.Status != jobs.StatusSucceeded {
		t.Errorf("the fired run ended %s during the shutdown, want SUCCEEDED", got.Status)
	}
	if runs := e.pipelineRuns("hourly"); len(runs) != 1 {
		t.Errorf("%d runs of hourly, want only the one fired before the shutdown began", len(runs))
	}
}
