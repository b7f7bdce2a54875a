package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/rs/zerolog"
)

// startAll is startAPI, waiting also for the last endpoint the service
// adds (startServer waits for the first).
func startAll(t *testing.T) *apiEnv {
	e := startAPI(t)
	e.waitAll()
	return e
}

func (e *apiEnv) waitAll() {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := e.op.Request("gantry.api.schedules.create", []byte("{}"), time.Second); err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("schedules.create did not answer within 10s")
		}
	}
}

// finish ends a run as its worker would: RUNNING, then SUCCEEDED.
func (e *apiEnv) finish(runID string) {
	e.t.Helper()
	e.end(runID, jobs.StatusSucceeded, 0)
}

// end reports a run's first attempt as its worker would: RUNNING, then
// status with exit code.
func (e *apiEnv) end(runID string, status jobs.Status, exit int) {
	e.t.Helper()
	q, err := queue.New(e.op)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, s := range []jobs.Status{jobs.StatusRunning, status} {
		ev := &jobs.Event{RunID: runID, Attempt: 1, Seq: i + 1, Status: s, Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}
		if s == status {
			ev.ExitCode = &exit
		}
		if err := q.Report(context.Background(), ev); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *apiEnv) pipelineRuns(name string) []jobs.PipelineRun {
	e.t.Helper()
	var out []jobs.PipelineRun
	e.ok("gantry.api.pipelines.runs", fmt.Sprintf(`{"name":%q}`, name), &out)
	return out
}

// waitRuns polls the runs of a pipeline until ok holds.
func (e *apiEnv) waitRuns(name string, ok func([]jobs.PipelineRun) bool) []jobs.PipelineRun {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runs := e.pipelineRuns(name)
		if ok(runs) {
			return runs
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(runs, "", " ")
			e.t.Fatalf("runs of %s after 10s:\n%s", name, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func count(runs []jobs.PipelineRun, s jobs.Status) int {
	n := 0
	for _, r := range runs {
		if r.Status == s {
			n++
		}
	}
	return n
}

func (e *apiEnv) apply(src string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string][]byte{"data": []byte(src)})
	e.ok("gantry.api.pipelines.apply", string(body), nil)
}

func TestBackfillMaxParallelAndCrossPipelineTriggers(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\ntriggers: [{pipeline: sales, on: success}]\nstages: [{name: only, taskDefinition: hello}]\n")

	// Triggers are checked against the other pipelines at apply time.
	for src, want := range map[string]string{
		"name: x\ntriggers: [{pipeline: ghost}]\nstages: [{name: a, taskDefinition: hello}]\n":      `no pipeline "ghost"`,
		"name: sales\ntriggers: [{pipeline: report}]\nstages: [{name: a, taskDefinition: hello}]\n": "trigger cycle: sales -> report -> sales",
		"name: y\ntriggers: [{pipeline: y}]\nstages: [{name: a, taskDefinition: hello}]\n":          "cannot trigger itself",
		// Every problem at once: the task definition and the trigger.
		"name: z\ntriggers: [{pipeline: ghost}]\nstages: [{name: a, taskDefinition: nosuch}]\n": "task definition family nosuch is not registered; gantry taskdef ls lists them; register it with `gantry taskdef register FILE`\ntriggers[0].pipeline: no pipeline \"ghost\"",
	} {
		body, _ := json.Marshal(map[string][]byte{"data": []byte(src)})
		m := e.req(e.op, "gantry.api.pipelines.apply", string(body))
		if got := apiError(t, m); got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, want) {
			t.Errorf("apply %q: %s %s, want %s", src, got.Code, got.Message, want)
		}
	}

	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-01-01T00:00:00Z","to":"2026-01-01T02:00:00Z","maxParallel":1}`, &bf)
	if len(bf) != 3 || bf[0].Status != jobs.StatusRunning || bf[1].Status != jobs.StatusPending || bf[2].Status != jobs.StatusPending {
		t.Fatalf("backfill: %d runs %v", len(bf), []jobs.Status{bf[0].Status, bf[1].Status, bf[2].Status})
	}
	if bf[0].Backfill == nil || bf[0].Backfill.MaxParallel != 1 || bf[1].StartedAt != nil {
		t.Fatalf("backfill group %+v, pending started at %v", bf[0].Backfill, bf[1].StartedAt)
	}
	// Each run's end starts the next, and triggers one run of report.
	for i := range bf {
		pr := e.waitRuns("sales", func(runs []jobs.PipelineRun) bool {
			for _, r := range runs {
				if r.Status == jobs.StatusRunning && len(r.Stages[0].Runs) == 0 {
					return false // promoted, its first stage not started yet
				}
			}
			return count(runs, jobs.StatusSucceeded) == i && count(runs, jobs.StatusRunning) == 1
		})
		if n := count(pr, jobs.StatusRunning); n > 1 {
			t.Fatalf("%d backfilled runs active at once", n)
		}
		var running jobs.PipelineRun
		for _, r := range pr {
			if r.Status == jobs.StatusRunning {
				running = r
			}
		}
		if !running.ScheduledTime.Equal(*bf[i].ScheduledTime) {
			t.Fatalf("run %d started out of order: %s", i, running.ScheduledTime)
		}
		e.finish(running.Stages[0].Runs[0].RunID)
	}
	e.waitRuns("sales", func(runs []jobs.PipelineRun) bool { return count(runs, jobs.StatusSucceeded) == 3 })
	reports := e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 3 })
	ups := map[string]bool{}
	for _, r := range reports {
		if r.Trigger != "pipeline" || r.IdempotencyKey != jobs.TriggerKey("report", r.TriggeredBy, 0) {
			t.Errorf("triggered run %s: trigger %q key %q", r.PipelineRunID, r.Trigger, r.IdempotencyKey)
		}
		ups[r.TriggeredBy] = true
	}
	for _, b := range bf {
		if !ups[b.PipelineRunID] {
			t.Errorf("sales run %s triggered no report", b.PipelineRunID)
		}
	}
	// A restart recovers triggers idempotently (before the API answers):
	// still one report per sales run.
	e.stop()
	e.startServer()
	e.waitAll()
	if n := len(e.pipelineRuns("report")); n != 3 {
		t.Fatalf("%d report runs after a restart, want 3", n)
	}
}

// TestBackfillOutsideTheIDRangeIsRefused: a pipeline run's id holds its
// scheduled time in a ULID, which starts in 1970; a backfill reaching
// before it is refused naming the field (it took the server down with a
// panic), and one starting at 1970 itself runs.
func TestBackfillOutsideTheIDRangeIsRefused(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: old\nschedule: {cron: '0 0 * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	for _, tt := range []struct {
		body string
		want []string
	}{
		{`{"name":"old","from":"1969-12-30T00:00:00Z","to":"1969-12-31T00:00:00Z"}`,
			[]string{"from: 1969-12-30T00:00:00Z is before 1970-01-01T00:00:00Z", "\nto: 1969-12-31T00:00:00Z is before"}},
		{`{"name":"old","from":"1969-12-31T23:59:59Z","to":"1970-01-02T00:00:00Z"}`, []string{"from: 1969-12-31T23:59:59Z is before"}},
		{`{"name":"old","to":"1970-01-02T00:00:00Z"}`, []string{"from: required"}},
		{`{"name":"old","from":"1970-01-03T00:00:00Z","to":"1970-01-02T00:00:00Z"}`,
			[]string{"to: 1970-01-02T00:00:00Z is before from (1970-01-03T00:00:00Z)"}},
	} {
		got := apiError(t, e.req(e.op, "gantry.api.pipelines.backfill", tt.body))
		if got.Code != jobs.CodeInvalidArgument {
			t.Errorf("%s: %s %q, want invalid_argument", tt.body, got.Code, got.Message)
		}
		for _, w := range tt.want {
			if !strings.Contains(got.Message, w) {
				t.Errorf("%s: %q does not say %q", tt.body, got.Message, w)
			}
		}
	}
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"old","from":"1970-01-01T00:00:00Z","to":"1970-01-02T00:00:00Z"}`, &bf)
	if len(bf) != 2 || !bf[0].ScheduledTime.Equal(time.Unix(0, 0)) {
		t.Fatalf("backfill from 1970: %d runs, the first at %v", len(bf), bf[0].ScheduledTime)
	}
}

// TestBackfillOfTimesYetToComeIsRefused: a backfill reaching past now
// would run the future times at once, and the schedule, finding their
// runs when their time came, would run nothing then. It is refused and
// creates nothing; up to now it runs.
func TestBackfillOfTimesYetToComeIsRefused(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: hourly\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	// Whole seconds: (now-2h, now] holds two full hours, whatever now is.
	now := time.Now().UTC().Truncate(time.Second)
	from, to := now.Add(-2*time.Hour+time.Second).Format(time.RFC3339), now.Add(3*time.Hour).Format(time.RFC3339)
	got := apiError(t, e.req(e.op, "gantry.api.pipelines.backfill", fmt.Sprintf(`{"name":"hourly","from":%q,"to":%q}`, from, to)))
	if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, "to: the range holds fire times yet to come") {
		t.Fatalf("backfill into the future: %s %q, want invalid_argument", got.Code, got.Message)
	}
	if runs := e.pipelineRuns("hourly"); len(runs) != 0 {
		t.Fatalf("a refused backfill created %d runs", len(runs))
	}
	// Reaching into the future over more fire times than a backfill
	// takes, it is the future that is told, not the length.
	e.apply("name: minutely\nschedule: {cron: '* * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	long := now.Add(48 * time.Hour).Format(time.RFC3339)
	got = apiError(t, e.req(e.op, "gantry.api.pipelines.backfill", fmt.Sprintf(`{"name":"minutely","from":%q,"to":%q}`, from, long)))
	if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, "to: the range holds fire times yet to come") {
		t.Fatalf("a long backfill into the future: %s %q, want the times yet to come", got.Code, got.Message)
	}
	// Its first 1001 fire times all past, the rest to come: still the
	// future that is told.
	got = apiError(t, e.req(e.op, "gantry.api.pipelines.backfill", fmt.Sprintf(`{"name":"minutely","from":%q,"to":%q}`,
		now.Add(-48*time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))))
	if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, "to: the range holds fire times yet to come") {
		t.Fatalf("a long backfill from the past into the future: %s %q, want the times yet to come", got.Code, got.Message)
	}
	got = apiError(t, e.req(e.op, "gantry.api.pipelines.backfill", fmt.Sprintf(`{"name":"minutely","from":%q,"to":%q}`,
		now.Add(-48*time.Hour).Format(time.RFC3339), now.Add(-time.Hour).Format(time.RFC3339))))
	if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, "more than 1000 fire times") {
		t.Fatalf("a long backfill in the past: %s %q, want too many fire times", got.Code, got.Message)
	}
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", fmt.Sprintf(`{"name":"hourly","from":%q,"to":%q}`, from, now.Format(time.RFC3339)), &bf)
	if len(bf) != 2 {
		t.Fatalf("backfill up to now: %d runs, want 2", len(bf))
	}
}

// TestTriggeredRunTakesTheUpstreamsSharedParameters: a triggered run gets
// the upstream run's value of every parameter both pipelines declare, and
// its own defaults for the rest; its stages see them substituted.
func TestTriggeredRunTakesTheUpstreamsSharedParameters(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nparameters: {day: '2026-01-01', region: eu}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\nparameters: {day: none, format: pdf}\ntriggers: [{pipeline: sales}]\n" +
		"stages: [{name: only, taskDefinition: hello, overrides: {containerOverrides: [{name: main, environment: [{name: DAY, value: '${day}'}]}]}}]\n")
	var up jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"sales","parameters":{"day":"2026-11-24","region":"us"}}`, &up)
	e.finish(up.Stages[0].Runs[0].RunID)
	reports := e.waitRuns("report", func(runs []jobs.PipelineRun) bool {
		return len(runs) == 1 && len(runs[0].Stages[0].Runs) == 1
	})
	got := reports[0].Parameters
	if len(got) != 2 || got["day"] != "2026-11-24" || got["format"] != "pdf" {
		t.Errorf("triggered run's parameters %v, want day from the upstream run and format's default", got)
	}
	var r jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, reports[0].Stages[0].Runs[0].RunID), &r)
	var env []jobs.KeyValue
	if r.Spec.Overrides == nil {
		t.Fatalf("the report stage's run has no overrides: %+v", r.Spec)
	}
	for _, co := range r.Spec.Overrides.ContainerOverrides {
		env = append(env, co.Environment...)
	}
	if !slices.Contains(env, jobs.KeyValue{Name: "DAY", Value: "2026-11-24"}) {
		t.Errorf("the report stage's environment %v has no DAY=2026-11-24", env)
	}
}

func TestBackfillWaitingRunsStartAfterRestart(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\ntriggers: [{pipeline: sales}]\nstages: [{name: only, taskDefinition: hello}]\n")
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-01-01T00:00:00Z","to":"2026-01-01T01:00:00Z","maxParallel":1}`, &bf)
	// The server stops before it follows up the first run's end: the
	// restarted one starts the second and the report the first triggers.
	e.stop()
	db, err := storage.Open(context.Background(), filepath.Join(e.data, "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC()
	db.UpdatePipelineRun(context.Background(), bf[0].PipelineRunID, func(pr *jobs.PipelineRun) bool {
		pr.Status, pr.FinishedAt = jobs.StatusSucceeded, &end
		return true
	})
	db.Close()
	e.startServer()
	e.waitAll()
	e.waitRuns("sales", func(runs []jobs.PipelineRun) bool {
		return count(runs, jobs.StatusSucceeded) == 1 && count(runs, jobs.StatusRunning) == 1
	})
	if reports := e.pipelineRuns("report"); len(reports) != 1 || reports[0].TriggeredBy != bf[0].PipelineRunID {
		t.Fatalf("after the restart: %d report runs", len(reports))
	}
	// Stopping a waiting run cancels it without starting it.
	var stopped jobs.PipelineRun
	e.apply("name: other\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.ok("gantry.api.pipelines.backfill", `{"name":"other","from":"2026-01-01T00:00:00Z","to":"2026-01-01T01:00:00Z","maxParallel":1}`, &bf)
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q}`, bf[1].PipelineRunID), &stopped)
	if stopped.Status != jobs.StatusCanceled || stopped.StartedAt != nil || len(stopped.Stages[0].Runs) != 0 {
		t.Fatalf("stopped waiting run: %s started %v", stopped.Status, stopped.StartedAt)
	}
}

// TestFailedFollowUpsAreTriedAgain: the end of a backfilled sales run
// promotes the next one and triggers a report, and the store refuses both
// (SQLite triggers of the test's own make the writes fail, as a full disk
// would). Once the store takes them again, both happen without a restart.
// Before, the failure was only logged and nothing tried again until the
// server restarted.
func TestFailedFollowUpsAreTriedAgain(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\ntriggers: [{pipeline: sales}]\nstages: [{name: only, taskDefinition: hello}]\n")
	// A server whose logs the test reads, trying again every 50ms.
	var logs syncBuffer
	e.stop()
	e.opts = []Option{WithLogger(zerolog.New(&logs)), func(c *config) { c.followUpRetry = 50 * time.Millisecond }}
	e.startServer()
	e.waitAll()
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-01-01T00:00:00Z","to":"2026-01-01T01:00:00Z","maxParallel":1}`, &bf)
	if len(bf) != 2 || bf[1].Status != jobs.StatusPending || len(bf[0].Stages[0].Runs) != 1 {
		t.Fatalf("backfill: %d runs", len(bf))
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "gantry.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TRIGGER refuse_promotion BEFORE UPDATE OF status ON pipeline_runs
		WHEN OLD.status = 'PENDING' AND NEW.status = 'RUNNING' BEGIN SELECT RAISE(ABORT, 'test refuses the promotion'); END`)
	exec(`CREATE TRIGGER refuse_report BEFORE INSERT ON pipeline_runs
		WHEN NEW.pipeline = 'report' BEGIN SELECT RAISE(ABORT, 'test refuses the report'); END`)
	e.finish(bf[0].Stages[0].Runs[0].RunID)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if l := logs.String(); strings.Contains(l, "test refuses the promotion") && strings.Contains(l, "test refuses the report") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no follow-up failed within 10s; logs:\n%s", logs.String())
		}
	}
	if runs := e.pipelineRuns("report"); len(runs) != 0 {
		t.Fatalf("%d report runs while the store refused them", len(runs))
	}
	exec(`DROP TRIGGER refuse_promotion`)
	exec(`DROP TRIGGER refuse_report`)

	e.waitRuns("sales", func(runs []jobs.PipelineRun) bool {
		return count(runs, jobs.StatusSucceeded) == 1 && count(runs, jobs.StatusRunning) == 1
	})
	reports := e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 1 })
	if reports[0].TriggeredBy != bf[0].PipelineRunID {
		t.Errorf("report triggered by %q, want %s", reports[0].TriggeredBy, bf[0].PipelineRunID)
	}
}

// TestFailedRecoveryIsTriedAgain: the follow-ups a server finds undone at
// start (here a backfill's next run, left PENDING by a server stopped
// before it promoted it) are tried again when that fails, not left until
// the next start.
func TestFailedRecoveryIsTriedAgain(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"sales","from":"2026-01-01T00:00:00Z","to":"2026-01-01T01:00:00Z","maxParallel":1}`, &bf)
	e.stop()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "gantry.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// The first run ended while no server ran; promoting the second fails.
	st, err := storage.Open(context.Background(), filepath.Join(e.data, "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC()
	st.UpdatePipelineRun(context.Background(), bf[0].PipelineRunID, func(pr *jobs.PipelineRun) bool {
		pr.Status, pr.FinishedAt = jobs.StatusSucceeded, &end
		return true
	})
	st.Close()
	exec(`CREATE TRIGGER refuse_promotion BEFORE UPDATE OF status ON pipeline_runs
		WHEN OLD.status = 'PENDING' AND NEW.status = 'RUNNING' BEGIN SELECT RAISE(ABORT, 'test refuses the promotion'); END`)

	var logs syncBuffer
	e.opts = []Option{WithLogger(zerolog.New(&logs)), func(c *config) { c.followUpRetry = 50 * time.Millisecond }}
	e.startServer()
	e.waitAll()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "test refuses the promotion"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the recovery did not fail within 10s; logs:\n%s", logs.String())
		}
	}
	exec(`DROP TRIGGER refuse_promotion`)
	e.waitRuns("sales", func(runs []jobs.PipelineRun) bool {
		return count(runs, jobs.StatusSucceeded) == 1 && count(runs, jobs.StatusRunning) == 1
	})
}

// TestFailedAdvanceIsTriedAgain: when the run of a pipeline's next stage
// cannot be stored as the stage before it ends, the server advances the
// pipeline run again on its retry tick, without a restart.
func TestFailedAdvanceIsTriedAgain(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: two\nstages: [{name: a, taskDefinition: hello}, {name: b, taskDefinition: hello, dependsOn: [{stage: a}]}]\n")
	e.stop()
	e.opts = []Option{func(c *config) { c.followUpRetry = 50 * time.Millisecond }}
	e.startServer()
	e.waitAll()
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"two"}`, &pr)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "gantry.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TRIGGER refuse_runs BEFORE INSERT ON runs BEGIN SELECT RAISE(ABORT, 'test refuses the run'); END`)
	runA := pr.Stages[0].Runs[0].RunID
	e.finish(runA)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var r jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, runA), &r)
		if r.Status == jobs.StatusSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stage a's run is %s after 10s", r.Status)
		}
	}
	time.Sleep(200 * time.Millisecond) // a few retry ticks, each refused
	if b := e.pipelineRuns("two")[0].StageState("b"); b == nil || len(b.Runs) != 0 {
		t.Fatalf("stage b while its run cannot be stored: %+v", b)
	}
	exec(`DROP TRIGGER refuse_runs`)
	e.waitRuns("two", func(runs []jobs.PipelineRun) bool {
		a, b := runs[0].StageState("a"), runs[0].StageState("b")
		return a != nil && a.Status == jobs.StatusSucceeded && b != nil && len(b.Runs) == 1
	})
}

// TestLastingFollowUpErrors: a follow-up is tried again unless each of
// its errors would come back however often it is tried.
func TestLastingFollowUpErrors(t *testing.T) {
	store := errors.New("disk I/O error")
	deleted := fmt.Errorf("trigger report: %w", fmt.Errorf("pipeline report: %w", jobs.ErrNotFound))
	invalid := fmt.Errorf("trigger report: %w", &jobs.FieldError{Path: "parameters.day", Msg: "required"})
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"store error", fmt.Errorf("create pipeline run pr-1: %w", store), false},
		{"pipeline deleted", deleted, true},
		{"invalid", invalid, true},
		{"invalid argument", jobs.Invalid("bad"), true},
		{"deleted and invalid", errors.Join(deleted, invalid), true},
		{"deleted and store error", errors.Join(deleted, store), false},
		{"wrapped join", fmt.Errorf("follow up: %w", errors.Join(deleted, store)), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := lasting(tt.err); got != tt.want {
				t.Errorf("lasting(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTaskSchedules(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(pipelineYAML)
	var reply PipelineApplyReply
	e.ok("gantry.api.schedules.create", `{"taskDefinition":"hello:1","schedule":{"cron":"@daily","timezone":"Europe/Paris","concurrencyPolicy":"Forbid"}}`, &reply)
	if p := reply.Pipeline; p.Name != "hello" || p.Kind != jobs.KindTask || len(p.Stages) != 1 || p.Stages[0].Name != "hello" || !reply.Changed {
		t.Fatalf("task schedule stored as %+v", reply)
	}
	var ss []ScheduleInfo
	e.ok("gantry.api.schedules.list", `{}`, &ss)
	kinds := map[string]string{}
	for _, s := range ss {
		kinds[s.Name] = s.Kind + " " + s.Target
	}
	if kinds["hello"] != "task hello:1" || kinds["nightly"] != "pipeline nightly" {
		t.Fatalf("schedules: %v", kinds)
	}
	e.ok("gantry.api.schedules.suspend", `{"name":"hello"}`, nil)
	var pr jobs.PipelineRun
	e.ok("gantry.api.schedules.trigger", `{"name":"hello"}`, &pr)
	if pr.Pipeline != "hello" || pr.ScheduledTime == nil || len(pr.Stages[0].Runs) != 1 {
		t.Fatalf("triggered: %+v", pr)
	}
	// Its runs take the schedule's priority.
	e.ok("gantry.api.schedules.create", `{"taskDefinition":"hello:1","priority":"low","schedule":{"cron":"@daily","suspend":true}}`, &reply)
	if st := reply.Pipeline.Stages[0]; st.Priority != jobs.PriorityLow || reply.Pipeline.Version != 2 {
		t.Fatalf("task schedule with priority low stored as version %d, stage priority %q", reply.Pipeline.Version, st.Priority)
	}
	e.ok("gantry.api.schedules.trigger", `{"name":"hello"}`, &pr)
	var run jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, pr.Stages[0].Runs[0].RunID), &run)
	if run.Priority != jobs.PriorityLow {
		t.Errorf("a run of the low-priority task schedule has priority %q", run.Priority)
	}
	// A task schedule never replaces a pipeline; an unknown family is refused.
	// Problems name the request's fields, not those of the one-stage
	// pipeline it is stored as, and a bad family is said once.
	for body, want := range map[string]string{
		`{"name":"nightly","taskDefinition":"hello","schedule":{"cron":"@daily"}}`:    "name: pipeline nightly exists",
		`{"taskDefinition":"nosuch","schedule":{"cron":"@daily"}}`:                    "taskDefinition: task definition family nosuch is not registered;",
		`{"taskDefinition":"hello","schedule":{"cron":"bad"}}`:                        "schedule.cron",
		`{"taskDefinition":"hello:x","schedule":{"cron":"@daily"}}`:                   `taskDefinition: task definition "hello:x": revision must be a positive number`,
		`{"taskDefinition":"bad.name","schedule":{"cron":"@daily"}}`:                  `taskDefinition: task definition "bad.name": want family[:revision]`,
		`{"taskDefinition":"hello","cluster":"a b","schedule":{"cron":"@daily"}}`:     `cluster: "a b"`,
		`{"taskDefinition":"hello","priority":"urgent","schedule":{"cron":"@daily"}}`: `priority: "urgent": want high, normal or low`,
	} {
		m := e.req(e.op, "gantry.api.schedules.create", body)
		got := apiError(t, m)
		if got.Code == "" || !strings.HasPrefix(got.Message, want) {
			t.Errorf("%s: %s %q, want it to start with %q", body, got.Code, got.Message, want)
		}
		if strings.Contains(got.Message, "stages[") || strings.Count(got.Message, "\n") > 0 {
			t.Errorf("%s: %q: want one problem, naming the request's field", body, got.Message)
		}
	}
}

// TestDataRetentionDeletesEndedRunsFiles runs the sweep with an injected
// clock over a real object store.
func TestDataRetentionDeletesEndedRunsFiles(t *testing.T) {
	e := startAll(t)
	e.stop() // the sweep is driven by hand
	ctx := context.Background()
	db := e.openStore()
	defer db.Close()
	q := e.queue()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	s := New(db, q, WithDataRetention(time.Hour), WithClock(func() time.Time { return now }))
	if err := s.pipes.data.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f.csv"), []byte("x\n"), 0o644)
	ends := map[string]time.Duration{"pr-old": 2 * time.Hour, "pr-recent": 30 * time.Minute, "pr-running": -1}
	for id, ago := range ends {
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "p", Status: jobs.StatusRunning, CreatedAt: now.Add(-3 * time.Hour), Stages: []jobs.StageState{}}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
		if ago > 0 {
			end := now.Add(-ago)
			db.UpdatePipelineRun(ctx, id, func(pr *jobs.PipelineRun) bool {
				pr.Status, pr.FinishedAt = jobs.StatusSucceeded, &end
				return true
			})
		}
		if err := s.pipes.data.Put(ctx, id, "extract", "run-"+id, 1, dir); err != nil {
			t.Fatal(err)
		}
	}
	objects := func() map[string]bool {
		obs, err := q.JetStream().ObjectStore(ctx, queue.DataBucket)
		if err != nil {
			t.Fatal(err)
		}
		infos, _ := obs.List(ctx)
		m := map[string]bool{}
		for _, i := range infos {
			m[strings.SplitN(i.Name, "/", 2)[0]] = true
		}
		return m
	}
	if n, err := s.sweepData(ctx); err != nil || n != 1 {
		t.Fatalf("swept %d runs, %v; want pr-old", n, err)
	}
	if got := objects(); got["pr-old"] || !got["pr-recent"] || !got["pr-running"] {
		t.Fatalf("after the first sweep: %v", got)
	}
	now = now.Add(time.Hour)
	if n, _ := s.sweepData(ctx); n != 1 {
		t.Fatalf("second sweep cleared %d runs, want pr-recent", n)
	}
	if got := objects(); len(got) != 1 || !got["pr-running"] {
		t.Fatalf("after the second sweep: %v", got)
	}
	st, _ := q.JetStream().Stream(ctx, "OBJ_"+queue.DataBucket)
	info, _ := st.Info(ctx)
	if info.Config.MaxAge != time.Hour+queue.DataBucketSlack || info.State.Msgs != 4 {
		t.Fatalf("bucket TTL %s with %d messages; want pr-running's 4", info.Config.MaxAge, info.State.Msgs)
	}
}

// A pipeline applied under an older gantry's looser rules keeps running:
// its inline stage definition is read as stored, not refused at every fire
// for a rule added since (here task cpu below 128, refused since stop 23).
// What a run's overrides bring is still checked.
func TestStoredInlineStageDefinitionUnderOlderRules(t *testing.T) {
	e := startAll(t)
	e.apply("name: old\nparameters: {who: x}\nstages:\n" +
		"- {name: one, taskDefinition: {family: inl, cpu: '256', containerDefinitions: [{name: main, image: 'gantry/samples:latest', memory: 64}]},\n" +
		"   overrides: {containerOverrides: [{name: main, environment: [{name: WHO, value: '${who}'}]}]}}\n" +
		"- {name: two, dependsOn: [{stage: one}], taskDefinition: {family: inl, cpu: '256', containerDefinitions: [{name: main, image: 'gantry/samples:latest', memory: 64}]},\n" +
		"   overrides: {containerOverrides: [{name: main, memory: 32}]}}\n")
	e.stop()
	ctx := context.Background()
	db := e.openStore()
	p, err := db.GetPipeline(ctx, "old", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Stages {
		td := strings.Replace(string(p.Stages[i].TaskDefinition), `"cpu":"256"`, `"cpu":"64"`, 1)
		if td == string(p.Stages[i].TaskDefinition) {
			t.Fatalf("stage %d's stored definition has no cpu 256: %s", i, td)
		}
		p.Stages[i].TaskDefinition = json.RawMessage(td)
	}
	// and stage two's override is one that apply would refuse today
	four := 4
	p.Stages[1].Overrides.ContainerOverrides[0].Memory = &four
	if _, _, err := db.PutPipeline(ctx, p, time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.startServer()
	e.waitAll()

	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"old","parameters":{"who":"me"}}`, &pr)
	one := pr.StageState("one")
	if one == nil || one.Status != jobs.StatusRunning || len(one.Runs) != 1 {
		t.Fatalf("stage one of a pipeline stored with cpu 64: %+v", one)
	}
	var r jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, one.Runs[0].RunID), &r)
	if r.Spec.Task.CPU != "64" {
		t.Errorf("run's task cpu %q, want the stored 64", r.Spec.Task.CPU)
	}
	// Stage two's override sets a memory below Docker's minimum: that
	// problem is the run's own, and the stage fails with it alone.
	e.finish(one.Runs[0].RunID)
	runs := e.waitRuns("old", func(runs []jobs.PipelineRun) bool {
		return len(runs) == 1 && runs[0].Status.Terminal()
	})
	two := runs[0].StageState("two")
	if two == nil || two.Status != jobs.StatusFailed || !strings.Contains(two.Reason, "memory") || strings.Contains(two.Reason, "cpu") {
		t.Fatalf("stage two: %+v, want failed for its override's memory alone", two)
	}
}

// TestScheduleListNextFireOfAnEverySchedule: schedule ls said an @every
// schedule fires next at now + delay; it fires at its creation (or last
// fire) plus whole delays.
func TestScheduleListNextFireOfAnEverySchedule(t *testing.T) {
	e := startLostEnv(t)
	created := e.now()
	if _, err := e.s.RegisterTaskDef(e.ctx, []byte(helloTaskDef)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.apiScheduleCreate(e.ctx, []byte(`{"taskDefinition":"hello","schedule":{"cron":"@every 1h","suspend":true}}`)); err != nil {
		t.Fatal(err)
	}
	e.advance(20 * time.Minute)
	reply, err := e.s.apiScheduleList(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := reply.([]ScheduleInfo)
	if want := created.Truncate(time.Second).Add(time.Hour); len(ss) != 1 || ss[0].NextFire == nil || !ss[0].NextFire.Equal(want) {
		t.Fatalf("schedules %+v, want the next fire at %s", ss, want)
	}
}

// TestBackfillWithoutScheduleSaysWhatToDo: the backfill of a pipeline
// without schedule: said only that it had none, where trigger, suspend
// and resume point at the file and at gantry pipeline run.
func TestBackfillWithoutScheduleSaysWhatToDo(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: adhoc-etl\nstages: [{name: only, taskDefinition: hello}]\n")
	m := e.req(e.op, "gantry.api.pipelines.backfill", `{"name":"adhoc-etl","from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z"}`)
	got := apiError(t, m)
	want := "pipeline adhoc-etl has no schedule to backfill: its times come from schedule.cron; add schedule: to its file and apply it, or run it now with gantry pipeline run adhoc-etl"
	if got.Code != "invalid_argument" || got.Message != want {
		t.Errorf("backfill without schedule: %s %q; want invalid_argument %q", got.Code, got.Message, want)
	}
}

// TestUnknownFamilySuggestsTheNearest: gantry run helo said only that
// helo had no ACTIVE revision; a family close to it is suggested. A
// missing revision of a family that exists says which it has; a name
// close to none gets no suggestion.
func TestUnknownFamilySuggestsTheNearest(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	for _, c := range []struct{ ref, want string }{
		{"helo", "task definition family helo is not registered; did you mean hello? gantry taskdef ls lists them; register it with `gantry taskdef register FILE`"},
		{"hello:9", "task definition hello:9: not found; hello has revision 1 only"},
		{"zzzzzzzz", "task definition family zzzzzzzz is not registered; gantry taskdef ls lists them; register it with `gantry taskdef register FILE`"},
	} {
		got := apiError(t, e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"`+c.ref+`"}`))
		if got.Code != "not_found" || got.Message != c.want {
			t.Errorf("submit %s: %s %q; want not_found %q", c.ref, got.Code, got.Message, c.want)
		}
	}
}

// TestUnregisteredFamilySaysSo: a family never registered said "helo has
// no ACTIVE revision", as if it had revisions, all deregistered; it says
// the family is not registered, suggesting the nearest, to describe and
// to a run (which also says how to register one), with a revision or
// without. A family whose revisions were all deregistered still says it
// has no ACTIVE revision.
func TestUnregisteredFamilySaysSo(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.ok("gantry.api.taskdefs.register", strings.Replace(helloTaskDef, `"hello"`, `"retired"`, 1), nil)
	e.ok("gantry.api.taskdefs.deregister", `{"taskDefinition":"retired:1"}`, nil)
	const register = "; register it with `gantry taskdef register FILE`"
	for _, c := range []struct{ subj, ref, want string }{
		{"gantry.api.taskdefs.describe", "helo", "task definition family helo is not registered; did you mean hello? gantry taskdef ls lists them"},
		{"gantry.api.taskdefs.describe", "helo:2", "task definition family helo is not registered; did you mean hello? gantry taskdef ls lists them"},
		{"gantry.api.taskdefs.describe", "zzzzzzzz", "task definition family zzzzzzzz is not registered; gantry taskdef ls lists them"},
		{"gantry.api.runs.submit", "helo:2", "task definition family helo is not registered; did you mean hello? gantry taskdef ls lists them" + register},
		// retired is INACTIVE: not a suggestion, and not "not registered".
		{"gantry.api.taskdefs.describe", "retird", "task definition family retird is not registered; gantry taskdef ls lists them"},
		{"gantry.api.taskdefs.describe", "retired", "task definition retired has no ACTIVE revision: not found"},
		{"gantry.api.runs.submit", "retired", "task definition retired has no ACTIVE revision: not found (register it with `gantry taskdef register FILE`)"},
	} {
		got := apiError(t, e.req(e.op, c.subj, `{"taskDefinition":"`+c.ref+`"}`))
		if got.Code != "not_found" || got.Message != c.want {
			t.Errorf("%s %s: %s %q; want not_found %q", c.subj, c.ref, got.Code, got.Message, c.want)
		}
	}
}

// TestMissingRevisionSaysWhichExist: gantry taskdef describe hello:9 said
// only "not found"; it says which revisions hello has and which of them is
// the one run without a revision, as does a run of it.
func TestMissingRevisionSaysWhichExist(t *testing.T) {
	e := startAPI(t)
	for range 3 {
		e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	}
	check := func(want string) {
		t.Helper()
		for _, subj := range []string{"gantry.api.taskdefs.describe", "gantry.api.runs.submit"} {
			got := apiError(t, e.req(e.op, subj, `{"taskDefinition":"hello:9"}`))
			if got.Code != "not_found" || got.Message != want {
				t.Errorf("%s hello:9: %s %q; want not_found %q", subj, got.Code, got.Message, want)
			}
		}
	}
	check("task definition hello:9: not found; hello has revisions 1-3 (latest 3)")
	e.ok("gantry.api.taskdefs.deregister", `{"taskDefinition":"hello:3"}`, nil)
	check("task definition hello:9: not found; hello has revisions 1-3 (latest ACTIVE 2)")
	e.ok("gantry.api.taskdefs.deregister", `{"taskDefinition":"hello:2"}`, nil)
	e.ok("gantry.api.taskdefs.deregister", `{"taskDefinition":"hello:1"}`, nil)
	check("task definition hello:9: not found; hello has revisions 1-3 (none ACTIVE)")
}

// TestScheduledRunsGetTheirDateParameter: with schedule.dateParameter,
// each backfilled run does its own day (its scheduled date in the
// schedule's zone, moved by dateOffsetDays), not the parameter's default,
// and its stages see it substituted; a manual run keeps the default or
// its --param.
func TestScheduledRunsGetTheirDateParameter(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: daily\nparameters: {day: '2000-01-01', rows: '10'}\n" +
		"schedule: {cron: '0 2 * * *', timezone: Europe/Paris, suspend: true, dateParameter: day, dateOffsetDays: -1}\n" +
		"stages: [{name: only, taskDefinition: hello, overrides: {containerOverrides: [{name: main, environment: [{name: DAY, value: '${day}'}]}]}}]\n")
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"daily","from":"2026-11-30T00:00:00Z","to":"2026-12-02T12:00:00Z"}`, &bf)
	var days []string
	for _, pr := range bf {
		days = append(days, pr.Parameters["day"])
		if pr.Parameters["rows"] != "10" {
			t.Errorf("%s: rows %q, want its default 10", pr.PipelineRunID, pr.Parameters["rows"])
		}
	}
	if want := []string{"2026-11-29", "2026-11-30", "2026-12-01"}; !slices.Equal(days, want) {
		t.Fatalf("backfilled runs' day %v, want %v (the day before each 02:00 fire in Paris)", days, want)
	}
	runs := e.waitRuns("daily", func(runs []jobs.PipelineRun) bool {
		return len(runs) == 3 && len(runs[0].Stages[0].Runs) == 1
	})
	var r jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, runs[0].Stages[0].Runs[0].RunID), &r)
	var env []jobs.KeyValue
	for _, co := range r.Spec.Overrides.ContainerOverrides {
		env = append(env, co.Environment...)
	}
	if want := (jobs.KeyValue{Name: "DAY", Value: runs[0].Parameters["day"]}); !slices.Contains(env, want) {
		t.Errorf("the stage's environment %v has no %v", env, want)
	}
	var manual jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"daily"}`, &manual)
	if manual.Parameters["day"] != "2000-01-01" {
		t.Errorf("a manual run's day %q, want the default 2000-01-01", manual.Parameters["day"])
	}
	// schedule trigger fires now: its scheduled time is now, so its day
	// is the day before today in Paris.
	var fired jobs.PipelineRun
	e.ok("gantry.api.schedules.trigger", `{"name":"daily"}`, &fired)
	at := fired.ScheduledTime.In(paris(t))
	if want := time.Date(at.Year(), at.Month(), at.Day()-1, 12, 0, 0, 0, at.Location()).Format(time.DateOnly); fired.Parameters["day"] != want {
		t.Errorf("schedule trigger's day %q, want %s", fired.Parameters["day"], want)
	}
}

func paris(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
