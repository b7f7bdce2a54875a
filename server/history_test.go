package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TestRunRetention: a server with a run retention deletes, at start, the
// runs and pipeline runs that ended more than the retention ago, stage
// runs with their pipeline run, and keeps what has not ended; it counts
// them in its metrics and logs the sweep; runs.get, runs.status,
// runs.logs, pipelines.get and pipelines.retry of a deleted one say why it
// may be gone.
func TestRunRetention(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: etl\nstages: [{name: only, taskDefinition: hello}]\n")

	var ended, queued jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","idempotencyKey":"k1"}`, &ended)
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q}`, ended.RunID), nil) // queued: CANCELED at once
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &queued)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"etl"}`, &pr)
	runs := e.waitRuns("etl", func(runs []jobs.PipelineRun) bool { return len(runs[0].Stages[0].Runs) == 1 })
	stageRun := runs[0].Stages[0].Runs[0].RunID
	e.finish(stageRun)
	e.waitRuns("etl", func(runs []jobs.PipelineRun) bool { return runs[0].Status == jobs.StatusSucceeded })

	// 31 days on, the server restarts with a 30-day retention.
	e.stop()
	later := time.Now().Add(31 * 24 * time.Hour)
	reg := prometheus.NewRegistry()
	var logs syncBuffer
	e.opts = []Option{WithRunRetention(30 * 24 * time.Hour), WithClock(func() time.Time { return later }),
		WithMetrics(reg), WithLogger(zerolog.New(&logs))}
	e.startServer()
	e.waitAll()

	// The sweep deletes pipeline runs, then runs, each batch in its own
	// transaction: wait for the last run it deletes too.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m := e.req(e.op, "gantry.api.pipelines.get", fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID))
		r := e.req(e.op, "gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, ended.RunID))
		if m.Header.Get("Nats-Service-Error-Code") != "" && r.Header.Get("Nats-Service-Error-Code") != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pipeline run or the canceled run is still there 10s after the start")
		}
	}
	gone := func(subject, id string, body string) {
		t.Helper()
		got := apiError(t, e.req(e.op, subject, body))
		if got.Code != jobs.CodeNotFound || !strings.Contains(got.Message, id+": not found; its id dates from ") ||
			!strings.Contains(got.Message, "runs that ended more than 720h0m0s ago are deleted (the server's --run-retention): if it existed, it is gone") {
			t.Errorf("%s of %s: %s %q; want not_found saying why", subject, id, got.Code, got.Message)
		}
	}
	for _, id := range []string{ended.RunID, stageRun} {
		gone("gantry.api.runs.get", id, fmt.Sprintf(`{"runId":%q}`, id))
	}
	gone("gantry.api.runs.status", ended.RunID, fmt.Sprintf(`{"runId":%q}`, ended.RunID))
	gone("gantry.api.runs.logs", ended.RunID, fmt.Sprintf(`{"runId":%q}`, ended.RunID))
	gone("gantry.api.pipelines.get", pr.PipelineRunID, fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID))
	gone("gantry.api.pipelines.retry", pr.PipelineRunID, fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID))
	var kept jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, queued.RunID), &kept) // not ended: kept

	// A pruned run's idempotency key makes a new run.
	var again jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","idempotencyKey":"k1"}`, &again)
	if again.RunID == ended.RunID {
		t.Errorf("the key of a pruned run found it again")
	}

	checkSamples(t, gathered(t, reg), map[string]float64{"gantry_runs_deleted_total": 2, "gantry_pipeline_runs_deleted_total": 1})
	if !strings.Contains(logs.String(), `"runs":2,"pipelineRuns":1`) || !strings.Contains(logs.String(), "deleted run history past --run-retention") {
		t.Errorf("no log of the sweep:\n%s", logs.String())
	}
}

// TestNotFoundWithoutRetention: without a retention, or for an id not
// older than it (or not a run id), not found stays plain.
func TestNotFoundWithoutRetention(t *testing.T) {
	t.Parallel()
	now := time.Now()
	old := timeID(now.Add(-60 * 24 * time.Hour))
	plain := fmt.Errorf("run %s: %w", old, jobs.ErrNotFound)
	for _, c := range []struct {
		name      string
		retention time.Duration
		id        string
		explained bool
	}{
		{"no retention", 0, old, false},
		{"id older than the retention", 720 * time.Hour, old, true},
		{"pipeline run id", 720 * time.Hour, jobs.PipelineRunPrefix + old, true},
		{"id younger", 90 * 24 * time.Hour, old, false},
		{"not a run id", 720 * time.Hour, "nosuch", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &Server{cfg: config{runRetention: c.retention, now: func() time.Time { return now }}}
			got := s.explainPruned(plain, c.id)
			if explained := got.Error() != plain.Error(); explained != c.explained {
				t.Errorf("explainPruned = %q; want explained %v", got, c.explained)
			}
		})
	}
}

// TestTriggerAfterItsUpstreamWasPruned: a run that --run-retention deleted
// while the run it triggered (ended later, or still going) was kept does
// not hold back the trigger of the run a backfill makes anew under its id:
// that run's end starts a run of its own, once, restarts included.
func TestTriggerAfterItsUpstreamWasPruned(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nschedule: {cron: '0 * * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\ntriggers: [{pipeline: sales}]\nstages: [{name: only, taskDefinition: hello}]\n")
	const backfill = `{"name":"sales","from":"2026-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z"}`
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", backfill, &bf)
	id := bf[0].PipelineRunID
	sales := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return len(pr.Stages[0].Runs) == 1 })
	e.finish(sales.Stages[0].Runs[0].RunID)
	e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) == 1 }) // and left running

	// The sales run is deleted; the report it triggered, still running, is kept.
	e.stop()
	db := e.openStore()
	n, err := db.PruneHistory(context.Background(), storage.Prune{EndedBefore: time.Now()})
	db.Close()
	if err != nil || n.PipelineRuns != 1 {
		t.Fatalf("prune: %+v, %v; want the sales run deleted", n, err)
	}
	e.startServer()
	e.waitAll()
	e.ok("gantry.api.pipelines.backfill", backfill, &bf)
	if bf[0].PipelineRunID != id {
		t.Fatalf("the backfill made %s, want the deleted run's id %s again", bf[0].PipelineRunID, id)
	}
	again := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return len(pr.Stages[0].Runs) == 1 })

	// It ends while no server runs: the next one's start fires the trigger.
	e.stop()
	db = e.openStore()
	end := time.Now().UTC()
	if _, err := db.UpdatePipelineRun(context.Background(), id, func(pr *jobs.PipelineRun) bool {
		pr.Status, pr.FinishedAt = jobs.StatusSucceeded, &end
		return true
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for range 2 { // a second restart starts no third run
		e.startServer()
		e.waitAll()
		reports := e.waitRuns("report", func(runs []jobs.PipelineRun) bool { return len(runs) >= 2 })
		if len(reports) != 2 || reports[0].TriggeredBy != id || reports[1].TriggeredBy != id ||
			reports[0].IdempotencyKey == reports[1].IdempotencyKey {
			t.Fatalf("report runs %d (by %s, %s; keys %q, %q); want two, one per end of a sales run %s",
				len(reports), reports[0].TriggeredBy, reports[1].TriggeredBy, reports[0].IdempotencyKey, reports[1].IdempotencyKey, id)
		}
		want := jobs.TriggerKey("report", id, 0) + "@" + again.CreatedAt.UTC().Format(time.RFC3339Nano)
		if k := reports[0].IdempotencyKey + " " + reports[1].IdempotencyKey; !strings.Contains(k, want) {
			t.Errorf("report keys %s; want one of them %s", k, want)
		}
		e.stop()
	}
}
