package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/nats-io/nats.go"
	"github.com/oklog/ulid/v2"
)

// etlYAML fails at transform in these tests: extract's files are kept,
// transform, load and the failure handler run again on a retry.
const etlYAML = `name: etl
parameters: {day: "2026-01-01"}
stages:
- {name: extract, taskDefinition: hello}
- {name: transform, taskDefinition: hello, dependsOn: [extract]}
- {name: load, taskDefinition: hello, dependsOn: [transform]}
- {name: alert, taskDefinition: hello, dependsOn: [{stage: transform, condition: failure}]}
`

// fail ends a run as its worker would: RUNNING, then FAILED with exit 3.
func (e *apiEnv) fail(runID string) {
	e.t.Helper()
	e.end(runID, jobs.StatusFailed, 3)
}

// getRun returns a pipeline run.
func (e *apiEnv) getRun(id string) *jobs.PipelineRun {
	e.t.Helper()
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.get", fmt.Sprintf(`{"pipelineRunId":%q}`, id), &pr)
	return &pr
}

// waitRun polls a pipeline run until ok holds.
func (e *apiEnv) waitRun(id string, ok func(*jobs.PipelineRun) bool) *jobs.PipelineRun {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pr := e.getRun(id)
		if ok(pr) {
			return pr
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(pr, "", " ")
			e.t.Fatalf("pipeline run %s after 10s:\n%s", id, b)
		}
	}
}

// stageRunning waits for a stage to be RUNNING and returns its run.
func (e *apiEnv) stageRunning(id, stage string) string {
	e.t.Helper()
	pr := e.waitRun(id, func(pr *jobs.PipelineRun) bool {
		st := pr.StageState(stage)
		return st.Status == jobs.StatusRunning && len(st.Runs) == 1
	})
	return pr.StageState(stage).Runs[0].RunID
}

// failedETL runs etl, extract succeeding and transform failing, alert
// succeeding, and returns the run FAILED.
func (e *apiEnv) failedETL() *jobs.PipelineRun {
	e.t.Helper()
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"etl","parameters":{"day":"2026-11-24"}}`, &pr)
	e.finish(e.stageRunning(pr.PipelineRunID, "extract"))
	e.fail(e.stageRunning(pr.PipelineRunID, "transform"))
	e.finish(e.stageRunning(pr.PipelineRunID, "alert"))
	return e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
}

// retryError asks to retry id and returns the error reply.
func (e *apiEnv) retryError(id string) jobs.Error {
	e.t.Helper()
	return apiError(e.t, e.req(e.op, "gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, id)))
}

func TestPipelineRetryRunsWhatDidNotSucceedUnderTheSameID(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(etlYAML)
	failed := e.failedETL()
	id := failed.PipelineRunID
	extract, transform1 := failed.StageState("extract").Runs[0].RunID, failed.StageState("transform").Runs[0].RunID
	if s := failed.StageStatuses(); s["load"] != jobs.StatusSkipped || s["alert"] != jobs.StatusSucceeded {
		t.Fatalf("before the retry: %v", s)
	}

	events := make(chan jobs.Status, 100)
	sub, err := e.op.Subscribe(PipelineEventSubject(id), func(m *nats.Msg) {
		var ev jobs.PipelineEvent
		json.Unmarshal(m.Data, &ev)
		events <- ev.Status
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	// A newer version of the pipeline is not the one the run retries.
	e.apply(strings.Replace(etlYAML, "2026-01-01", "2027-01-01", 1) + "- {name: extra, taskDefinition: hello}\n")
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, id), &pr)
	if pr.PipelineRunID != id || pr.Status != jobs.StatusRunning || pr.Retries != 1 || pr.RetriedAt == nil ||
		pr.FinishedAt != nil || pr.Version != 1 || len(pr.Stages) != 4 || pr.Parameters["day"] != "2026-11-24" {
		t.Fatalf("retried: %s %s retries %d version %d, %d stages, parameters %v", pr.PipelineRunID, pr.Status, pr.Retries,
			pr.Version, len(pr.Stages), pr.Parameters)
	}
	ex := pr.StageState("extract")
	if ex.Status != jobs.StatusSucceeded || ex.Runs[0].RunID != extract || ex.Try != 0 || len(ex.EarlierTries) != 0 {
		t.Fatalf("extract, which succeeded, is not kept: %+v", ex)
	}
	tr := pr.StageState("transform")
	if tr.Status != jobs.StatusRunning || tr.Try != 2 || len(tr.Runs) != 1 || tr.Runs[0].RunID == transform1 {
		t.Fatalf("transform on its second try: %+v", tr)
	}
	if len(tr.EarlierTries) != 1 || tr.EarlierTries[0].Try != 1 || tr.EarlierTries[0].Status != jobs.StatusFailed ||
		tr.EarlierTries[0].Runs[0].RunID != transform1 || tr.EarlierTries[0].Reason != "1 of 1 runs failed" {
		t.Fatalf("transform's first try is not kept: %+v", tr.EarlierTries)
	}
	for _, name := range []string{"load", "alert"} {
		st := pr.StageState(name)
		if st.Status != jobs.StatusPending || st.Try != 2 || len(st.EarlierTries) != 1 {
			t.Errorf("%s after the retry: %+v", name, st)
		}
	}
	// The earlier run stays readable; the new one reads extract's files.
	var old, again jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, transform1), &old)
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, tr.Runs[0].RunID), &again)
	if old.Status != jobs.StatusFailed {
		t.Errorf("the first try's run: %s", old.Status)
	}
	if up := again.Spec.Stage.UpstreamRuns["extract"]; len(up) != 1 || up[0] != extract {
		t.Errorf("the retried transform reads extract's runs %v, want %s", up, extract)
	}
	if again.IdempotencyKey != "pipeline/"+id+"/transform/try2" {
		t.Errorf("the second try's key %q", again.IdempotencyKey)
	}

	// The run advances as any: transform succeeds, alert is skipped, load runs.
	e.finish(tr.Runs[0].RunID)
	e.finish(e.stageRunning(id, "load"))
	done := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	if done.Status != jobs.StatusSucceeded || done.StageState("alert").Status != jobs.StatusSkipped || done.FinishedAt == nil {
		t.Fatalf("after the retry: %s %v", done.Status, done.StageStatuses())
	}
	// Followers were told it runs again, then how it ended.
	var seen []jobs.Status
	for timeout := time.After(5 * time.Second); len(seen) == 0 || seen[len(seen)-1] != jobs.StatusSucceeded; {
		select {
		case s := <-events:
			seen = append(seen, s)
		case <-timeout:
			t.Fatalf("events %v, want RUNNING then SUCCEEDED", seen)
		}
	}
	if seen[0] != jobs.StatusRunning {
		t.Errorf("events %v, want RUNNING first", seen)
	}

	// Now it succeeded: nothing to retry.
	if got := e.retryError(id); got.Code != jobs.CodeFailedPrecond || got.Message != id+" SUCCEEDED: nothing to retry (gantry pipeline run etl starts a new run)" {
		t.Errorf("retry of a succeeded run: %s %q", got.Code, got.Message)
	}
}

func TestPipelineRetryRefusals(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(etlYAML)

	if got := e.retryError("pr-nosuch"); got.Code != jobs.CodeNotFound || got.Message != "pipeline run pr-nosuch: not found" {
		t.Errorf("unknown run: %s %q", got.Code, got.Message)
	}
	if got := e.retryError(""); got.Code != jobs.CodeInvalidArgument || got.Message != "pipelineRunId: required" {
		t.Errorf("no id: %s %q", got.Code, got.Message)
	}
	var active jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"etl"}`, &active)
	want := active.PipelineRunID + " is RUNNING: only a pipeline run that ended FAILED or CANCELED can be retried; wait for its end, or stop it (gantry stop " + active.PipelineRunID + ")"
	if got := e.retryError(active.PipelineRunID); got.Code != jobs.CodeFailedPrecond || got.Message != want {
		t.Errorf("active run: %s %q, want %q", got.Code, got.Message, want)
	}

	// Two retries at once: one wins, the other finds the run RUNNING.
	failed := e.failedETL()
	id := failed.PipelineRunID

	// A run's id, or a pipeline's name, where the pipeline run's is
	// wanted: not found, saying what is.
	transform := failed.StageState("transform").Runs[0].RunID
	if got, want := e.retryError(transform), "pipeline run "+transform+": not found; "+transform+" is a run of stage transform of pipeline run "+
		id+": retry that (gantry pipeline retry "+id+")"; got.Code != jobs.CodeNotFound || got.Message != want {
		t.Errorf("a stage's run: %s %q, want %q", got.Code, got.Message, want)
	}
	if got, want := e.retryError("etl"), "pipeline run etl: not found; pipeline run ids start with pr- (gantry pipeline runs NAME lists a pipeline's)"; got.Code != jobs.CodeNotFound || got.Message != want {
		t.Errorf("a pipeline's name: %s %q, want %q", got.Code, got.Message, want)
	}
	var wg sync.WaitGroup
	replies := make([]*nats.Msg, 8)
	for i := range replies {
		wg.Go(func() {
			m, err := e.op.Request("gantry.api.pipelines.retry", []byte(fmt.Sprintf(`{"pipelineRunId":%q}`, id)), 5*time.Second)
			if err != nil {
				t.Error(err)
			}
			replies[i] = m
		})
	}
	wg.Wait()
	won := 0
	for _, m := range replies {
		if m == nil {
			continue
		}
		if m.Header.Get("Nats-Service-Error-Code") == "" {
			won++
			continue
		}
		if got := apiError(t, m); got.Code != jobs.CodeFailedPrecond || !strings.HasPrefix(got.Message, id+" is RUNNING: ") {
			t.Errorf("a losing retry: %s %q", got.Code, got.Message)
		}
	}
	pr := e.getRun(id)
	if won != 1 || pr.Retries != 1 || len(pr.StageState("transform").EarlierTries) != 1 || len(pr.StageState("transform").Runs) != 1 {
		t.Fatalf("%d retries won; the run has %d retries, transform %+v", won, pr.Retries, pr.StageState("transform"))
	}

	// A stopped run is retried as a failed one; once its pipeline is
	// deleted, it is not, even with the name applied again.
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q}`, id), nil)
	e.ok("gantry.api.pipelines.stop", fmt.Sprintf(`{"pipelineRunId":%q}`, active.PipelineRunID), nil)
	e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusCanceled })
	e.waitRun(active.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusCanceled })
	e.ok("gantry.api.pipelines.delete", `{"name":"etl"}`, nil)
	deleted := id + ": pipeline etl was deleted: the runs of a deleted pipeline cannot be retried (apply it and run it again: gantry pipeline run etl)"
	if got := e.retryError(id); got.Code != jobs.CodeFailedPrecond || got.Message != deleted {
		t.Errorf("run of a deleted pipeline: %s %q", got.Code, got.Message)
	}
	e.apply(etlYAML)
	if got := e.retryError(id); got.Message != deleted {
		t.Errorf("run of a deleted pipeline applied again: %s %q", got.Code, got.Message)
	}
}

// TestPipelineRetryAfterTheBucketExpiry: a run retried again and again
// has its retention restart at every end, but the data bucket drops a
// kept stage's files 30 days past the retention after their writing: a
// retry that needs them then is refused, naming the stage and its end,
// rather than run a stage over missing inputs.
func TestPipelineRetryAfterTheBucketExpiry(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(etlYAML)
	failed := e.failedETL()
	id := failed.PipelineRunID
	e.stop()

	db := e.openStore()
	defer db.Close()
	q := e.queue()
	extractEnd := *failed.StageState("extract").FinishedAt
	for _, c := range []struct {
		after time.Duration
		want  string
	}{
		{time.Hour + queue.DataBucketSlack - time.Minute, ""},
		{time.Hour + queue.DataBucketSlack, fmt.Sprintf("%s: stage transform needs the files of stage extract, which ended at %s: the data bucket drops a file 30 days past --data-retention (1h0m0s) after its writing, so those are gone: run the pipeline again (gantry pipeline run etl)",
			id, extractEnd.UTC().Format(time.RFC3339))},
	} {
		now := extractEnd.Add(c.after)
		s := New(db, q, WithDataRetention(time.Hour), WithClock(func() time.Time { return now }))
		// The check alone, as the retry makes it: the run's files are
		// not the sweep's (its retention restarted at a later end).
		err := s.keptFilesGone(failed, scheduler.RetryStages(failed), time.Time{})
		got := ""
		if err != nil {
			got = err.Error()
			if jobs.ErrorCode(err) != jobs.CodeFailedPrecond {
				t.Errorf("%s after extract's end: code %s", c.after, jobs.ErrorCode(err))
			}
		}
		if got != c.want {
			t.Errorf("%s after extract's end: %q\nwant %q", c.after, got, c.want)
		}
	}
}

// TestPipelineRetryAfterTheDataRetention: a retry whose stages read files
// of stages it keeps is refused once the retention deleted them, naming
// the stages and the retention; one that runs again every stage that
// passes files on is not, and its retention counts from its new end.
func TestPipelineRetryAfterTheDataRetention(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(etlYAML)
	failed := e.failedETL()
	id := failed.PipelineRunID
	var first jobs.PipelineRun // fails at its first stage: nothing kept
	e.ok("gantry.api.pipelines.run", `{"name":"etl"}`, &first)
	e.fail(e.stageRunning(first.PipelineRunID, "extract"))
	e.waitRun(first.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
	e.stop()

	ctx := context.Background()
	db := e.openStore()
	defer db.Close()
	q := e.queue()
	now := time.Now().Add(2 * time.Hour)
	s := New(db, q, WithDataRetention(time.Hour), WithClock(func() time.Time { return now }))
	if n, err := s.sweepData(ctx); err != nil || n != 2 {
		t.Fatalf("swept %d runs, %v; want 2", n, err)
	}
	_, err := s.apiPipelineRetry(ctx, []byte(fmt.Sprintf(`{"pipelineRunId":%q}`, id)))
	want := fmt.Sprintf("%s: stage transform needs the files of stage extract, deleted on %s, 1h0m0s (--data-retention) after it ended at %s: run the pipeline again (gantry pipeline run etl)",
		id, now.UTC().Format(time.RFC3339), failed.FinishedAt.UTC().Format(time.RFC3339))
	if jobs.ErrorCode(err) != jobs.CodeFailedPrecond || err.Error() != want {
		t.Fatalf("retry after the retention: %v\nwant %s", err, want)
	}
	if pr, _ := db.GetPipelineRun(ctx, id); pr.Status != jobs.StatusFailed || pr.Retries != 0 {
		t.Fatalf("a refused retry changed the run: %s, %d retries", pr.Status, pr.Retries)
	}

	// The store's part of the other retry: its run's data is the
	// retention's again, from its next end.
	pr, err := db.RetryPipelineRun(ctx, first.PipelineRunID, func(pr *jobs.PipelineRun, _ *jobs.Pipeline, deleted time.Time) error {
		if deleted.IsZero() {
			t.Error("the store does not say the run's files were deleted")
		}
		if kept := scheduler.KeptInputs(pr, scheduler.RetryStages(pr)); len(kept) != 0 {
			t.Errorf("kept inputs %v, want none", kept)
		}
		scheduler.Retry(pr, scheduler.RetryStages(pr), now)
		return nil
	})
	if err != nil || pr.Status != jobs.StatusRunning {
		t.Fatalf("retry with nothing kept: %v", err)
	}
	end := now.Add(time.Minute)
	db.UpdatePipelineRun(ctx, pr.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		pr.Status, pr.FinishedAt = jobs.StatusFailed, &end
		return true
	})
	for _, c := range []struct {
		at   time.Time
		want int
	}{{end.Add(59 * time.Minute), 0}, {end.Add(time.Hour), 1}} {
		ids, err := db.PipelineRunsWithData(ctx, c.at.Add(-time.Hour), 10)
		if err != nil || len(ids) != c.want {
			t.Errorf("runs with data due at %s: %v %v, want %d", c.at, ids, err, c.want)
		}
	}
}

// TestPipelineRetryCarriedOnAfterARestart: a server stopped right after a
// retry was stored (before any stage of it started) starts its stages
// at its next start.
func TestPipelineRetryCarriedOnAfterARestart(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(etlYAML)
	id := e.failedETL().PipelineRunID
	e.stop()
	ctx := context.Background()
	db := e.openStore()
	if _, err := db.RetryPipelineRun(ctx, id, func(pr *jobs.PipelineRun, _ *jobs.Pipeline, _ time.Time) error {
		scheduler.Retry(pr, scheduler.RetryStages(pr), time.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.startServer()
	e.waitAll()
	tr := e.stageRunning(id, "transform")
	e.finish(tr)
	e.finish(e.stageRunning(id, "load"))
	if pr := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() }); pr.Status != jobs.StatusSucceeded {
		t.Fatalf("after the restart: %s %v", pr.Status, pr.StageStatuses())
	}
}

// TestPipelineRetryTriggersOnItsNewEnd: each end of an upstream run
// starts at most one run of a pipeline it triggers, a retried run's new
// end included.
func TestPipelineRetryTriggersOnItsNewEnd(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(etlYAML)
	e.apply("name: report\nparameters: {day: x}\ntriggers: [{pipeline: etl, on: complete}]\nstages: [{name: only, taskDefinition: hello}]\n")
	id := e.failedETL().PipelineRunID
	e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 1 })
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, id), nil)
	e.finish(e.stageRunning(id, "transform"))
	e.finish(e.stageRunning(id, "load"))
	runs := e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 2 })
	keys := []string{runs[1].IdempotencyKey, runs[0].IdempotencyKey} // oldest first
	if keys[0] != jobs.TriggerKey("report", id, 0) || keys[1] != jobs.TriggerKey("report", id, 1) ||
		runs[0].TriggeredBy != id || runs[0].Parameters["day"] != "2026-11-24" {
		t.Fatalf("triggered runs: keys %v, by %s, day %s", keys, runs[0].TriggeredBy, runs[0].Parameters["day"])
	}
	// A restart fires no end twice.
	e.stop()
	e.startServer()
	e.waitAll()
	time.Sleep(200 * time.Millisecond)
	if runs := e.pipelineRuns("report"); len(runs) != 2 {
		t.Fatalf("%d report runs after a restart, want 2", len(runs))
	}
}

// TestPipelineRetryOfAnOldRunTriggersAfterARestart: a server that stops
// right after a retried run ended, before its triggers fired, fires them
// at its next start, however many runs of the pipeline were created
// since the retried one (the recovery looked only at the latest
// recoverTriggerRuns runs by creation, which a retried run is not among).
func TestPipelineRetryOfAnOldRunTriggersAfterARestart(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: up\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\ntriggers: [{pipeline: up, on: failure}]\nstages: [{name: only, taskDefinition: hello}]\n")
	var old jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"up"}`, &old)
	e.fail(e.stageRunning(old.PipelineRunID, "only"))
	e.waitRun(old.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status == jobs.StatusFailed })
	e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 1 })
	e.stop()

	// Newer runs of up, which succeeded (report triggers on failure only),
	// then the old run retried and failed again as the server stopped.
	ctx := context.Background()
	db := e.openStore()
	p, err := db.GetPipeline(ctx, "up", 0)
	if err != nil {
		t.Fatal(err)
	}
	for range recoverTriggerRuns {
		now := time.Now().UTC()
		pr := scheduler.NewPipelineRun(p, jobs.PipelineRunPrefix+strings.ToLower(ulid.Make().String()), nil, now)
		pr.Status, pr.FinishedAt = jobs.StatusSucceeded, &now
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpdatePipelineRun(ctx, pr.PipelineRunID, func(*jobs.PipelineRun) bool { return true }); err != nil {
			t.Fatal(err) // stores finished_at
		}
	}
	if _, err := db.RetryPipelineRun(ctx, old.PipelineRunID, func(pr *jobs.PipelineRun, _ *jobs.Pipeline, _ time.Time) error {
		scheduler.Retry(pr, scheduler.RetryStages(pr), time.Now())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdatePipelineRun(ctx, old.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		end := time.Now().UTC()
		pr.Status, pr.FinishedAt = jobs.StatusFailed, &end
		return true
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	e.startServer()
	e.waitAll()
	runs := e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 2 })
	if runs[0].IdempotencyKey != jobs.TriggerKey("report", old.PipelineRunID, 1) {
		t.Fatalf("the retried run's end triggered %q", runs[0].IdempotencyKey)
	}
}
