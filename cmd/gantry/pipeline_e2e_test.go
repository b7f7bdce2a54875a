package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// applyPipeline writes a pipeline file (with the samples image put in) and
// applies it.
func (in *instance) applyPipeline(name, src string) {
	in.t.Helper()
	src = strings.ReplaceAll(src, "gantry/samples:latest", in.image)
	path := filepath.Join(in.t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		in.t.Fatal(err)
	}
	if out, errOut, code := in.gantry("pipeline", "apply", path); code != 0 || !strings.Contains(out, "pipeline "+name+" version") {
		in.t.Fatalf("pipeline apply: exit %d: %s%s", code, out, errOut)
	}
}

func (in *instance) pipelineRun(id string) *jobs.PipelineRun {
	in.t.Helper()
	out, errOut, code := in.gantry("describe", id, "-o", "json")
	if code != 0 {
		in.t.Fatalf("describe %s: exit %d: %s", id, code, errOut)
	}
	var pr jobs.PipelineRun
	if err := json.Unmarshal([]byte(out), &pr); err != nil {
		in.t.Fatalf("describe %s: %v\n%s", id, err, out)
	}
	return &pr
}

// waitPipeline polls until the pipeline run satisfies ok.
func (in *instance) waitPipeline(id string, ok func(*jobs.PipelineRun) bool) *jobs.PipelineRun {
	in.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pr := in.pipelineRun(id)
		if ok(pr) {
			return pr
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("pipeline run %s: %s %v after 2m\n%s", id, pr.Status, pr.StageStatuses(), in.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ended(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() }

func TestPipelineDailySalesLoadsTheWarehouse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	src, err := os.ReadFile("../../samples/pipelines/daily-sales.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in.applyPipeline("daily-sales", strings.ReplaceAll(string(src), "/tmp/gantry-demo", dir))
	if ls, _, _ := in.gantry("pipeline", "ls"); !strings.Contains(ls, "daily-sales") {
		t.Fatalf("pipeline ls:\n%s", ls)
	}
	out, errOut, code := in.gantry("pipeline", "run", "daily-sales", "--param", "day=2026-11-20", "--param", "rows=200")
	if code != 0 {
		t.Fatalf("pipeline run: exit %d\n%s\n%s\n%s", code, out, errOut, in.log)
	}
	for _, want := range []string{"extract", "transform", "load", "SUCCEEDED"} {
		if !strings.Contains(out, want) {
			t.Errorf("attached output lacks %q:\n%s", want, out)
		}
	}
	runs, _, _ := in.gantry("pipeline", "runs", "daily-sales", "-o", "json")
	var prs []jobs.PipelineRun
	if err := json.Unmarshal([]byte(runs), &prs); err != nil || len(prs) != 1 {
		t.Fatalf("pipeline runs -o json: %v\n%s", err, runs)
	}
	pr := in.pipelineRun(prs[0].PipelineRunID)
	want := map[string]jobs.Status{"extract": jobs.StatusSucceeded, "transform": jobs.StatusSucceeded,
		"load": jobs.StatusSucceeded, "report-failure": jobs.StatusSkipped}
	for name, s := range want {
		if got := pr.StageState(name).Status; got != s {
			t.Errorf("stage %s is %s, want %s", name, got, s)
		}
	}
	if n := len(pr.StageState("extract").Runs); n != 3 {
		t.Fatalf("extract has %d runs, want 3", n)
	}
	// The file's tags are on every stage's runs: ps --tag finds the five.
	if js, _, _ := in.gantry("ps", "--all", "--tag", "team=data", "-o", "json"); strings.Count(js, `"runId"`) != 5 {
		t.Errorf("ps --all --tag team=data finds %d runs, want the five of extract, transform and load:\n%s", strings.Count(js, `"runId"`), js)
	}
	// The hop from the last extract child's end to transform's run.
	var lastEnd time.Time
	for _, r := range pr.StageState("extract").Runs {
		if fin := in.describe(r.RunID).FinishedAt; fin != nil && fin.After(lastEnd) {
			lastEnd = *fin
		}
	}
	tr := in.describe(pr.StageState("transform").Runs[0].RunID)
	t.Logf("stage hop: extract ended → transform run created in %s, started after %s",
		tr.CreatedAt.Sub(lastEnd), tr.StartedAt.Sub(lastEnd))
	// The warehouse holds the aggregates of the three shards' 600 rows.
	f, err := os.Open(filepath.Join(dir, "warehouse", "sales.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var facts, orders int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fact struct {
			Day    string `json:"day"`
			Orders int    `json:"orders"`
		}
		if err := json.Unmarshal(sc.Bytes(), &fact); err != nil || fact.Day != "2026-11-20" {
			t.Fatalf("fact %s: %v", sc.Text(), err)
		}
		facts++
		orders += fact.Orders
	}
	if facts == 0 || orders < 500 || orders > 600 {
		tr, _, _ := in.gantry("logs", pr.StageState("transform").Runs[0].RunID)
		ex, _, _ := in.gantry("logs", pr.StageState("extract").Runs[0].RunID)
		t.Fatalf("%d facts with %d orders; want the valid part of 600 rows\ntransform:\n%s\nextract:\n%s", facts, orders, tr, ex)
	}
	// load saw transform's outputs.env as TRANSFORM_* variables.
	load := pr.StageState("load").Runs[0].RunID
	if logs, _, _ := in.gantry("logs", load); !strings.Contains(logs, "loading "+itoa(facts)+" aggregates of 2026-11-20") {
		t.Errorf("load logs:\n%s", logs)
	}
	if tbl, _, _ := in.gantry("describe", pr.PipelineRunID); !strings.Contains(tbl, "report-failure") || !strings.Contains(tbl, "SKIPPED") {
		t.Errorf("describe table:\n%s", tbl)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

const failingPipeline = `
name: failing
stages:
  - name: flaky
    retryStrategy: {attempts: 2}
    taskDefinition:
      family: flaky
      containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo try $GANTRY_ATTEMPT; echo broken >&2; exit 3']}]
  - name: after
    dependsOn: [flaky]
    taskDefinition: {family: after, containerDefinitions: [{name: main, image: gantry/samples:latest, command: ['true']}]}
  - name: alert
    dependsOn: [{stage: flaky, condition: failure}]
    taskDefinition: {family: alert, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo alert $GANTRY_STAGE']}]}
  - name: cleanup
    dependsOn: [{stage: after, condition: complete}]
    taskDefinition: {family: cleanup, containerDefinitions: [{name: main, image: gantry/samples:latest, command: ['true']}]}
`

func TestPipelineFailureConditionsRetriesAndExitCode(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("failing", failingPipeline)
	out, errOut, code := in.gantry("pipeline", "run", "failing")
	if code != exitPipelineFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitPipelineFailed, out, errOut)
	}
	if !strings.Contains(errOut, "stage flaky failed") || !strings.Contains(errOut, "broken") {
		t.Errorf("stderr lacks the failing stage and its last lines:\n%s", errOut)
	}
	runs, _, _ := in.gantry("pipeline", "runs", "failing", "-o", "json")
	var prs []jobs.PipelineRun
	json.Unmarshal([]byte(runs), &prs)
	pr := in.pipelineRun(prs[0].PipelineRunID)
	want := map[string]jobs.Status{"flaky": jobs.StatusFailed, "after": jobs.StatusSkipped,
		"alert": jobs.StatusSucceeded, "cleanup": jobs.StatusSucceeded}
	for name, s := range want {
		if got := pr.StageState(name).Status; got != s {
			t.Errorf("stage %s is %s, want %s", name, got, s)
		}
	}
	if pr.Status != jobs.StatusFailed {
		t.Errorf("pipeline run %s", pr.Status)
	}
	if a := pr.StageState("flaky").Runs[0].Attempts; a != 2 {
		t.Errorf("flaky ran %d attempts, want 2 (retryStrategy passes through)", a)
	}
}

const slowPipeline = `
name: slow
stages:
  - name: first
    taskDefinition: {family: first, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo ready; sleep 2; echo done']}]}
  - name: second
    dependsOn: [first]
    taskDefinition: {family: second, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo ready; sleep 300']}]}
  - name: third
    dependsOn: [second]
    taskDefinition: {family: third, containerDefinitions: [{name: main, image: gantry/samples:latest, command: ['true']}]}
`

func TestPipelineRestartMidRunThenStop(t *testing.T) {
	t.Parallel()
	// A grace long enough for first's last 2 s under any load: once in a
	// run of the whole package, first ran a second attempt, which its
	// stop at the end of a 5 s grace would explain (its log was not kept).
	in := startUp(t, "--grace", "60s")
	in.applyPipeline("slow", slowPipeline)
	out, errOut, code := in.gantry("pipeline", "run", "slow", "-d")
	id := strings.TrimSpace(out)
	if code != 0 || !jobs.IsPipelineRunID(id) {
		t.Fatalf("run -d: exit %d %q %s", code, out, errOut)
	}
	in.waitPipeline(id, func(pr *jobs.PipelineRun) bool { return pr.StageState("first").Status == jobs.StatusRunning })
	// Restart while first runs: it finishes within the grace period, and
	// the restarted server goes on with second without running first again.
	in.stop()
	in.start()
	pr := in.waitPipeline(id, func(pr *jobs.PipelineRun) bool {
		return pr.StageState("second").Status == jobs.StatusRunning || ended(pr)
	})
	first := pr.StageState("first")
	if first.Status != jobs.StatusSucceeded || len(first.Runs) != 1 {
		t.Fatalf("first after restart: %s with %d runs\n%s", first.Status, len(first.Runs), in.log)
	}
	in.waitLog(pr.StageState("second").Runs[0].RunID, "ready")
	if out, errOut, code := in.gantry("stop", id); code != 0 {
		t.Fatalf("stop: exit %d %s %s", code, out, errOut)
	}
	pr = in.waitPipeline(id, ended)
	if pr.Status != jobs.StatusCanceled || pr.StageState("second").Status != jobs.StatusCanceled ||
		pr.StageState("third").Status != jobs.StatusCanceled {
		t.Fatalf("after stop: %s %v", pr.Status, pr.StageStatuses())
	}
	if r := in.describe(first.Runs[0].RunID); len(r.Attempts) != 1 {
		t.Fatalf("first ran %d attempts: %+v\n%s%s", len(r.Attempts), r.Attempts, &in.earlier, in.log)
	}
}

func TestPipelineApplyReportsEveryProblem(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte(`
name: bad
stages:
  - {name: a, taskDefinition: t, dependsOn: [b]}
  - {name: b, taskDefinition: t, dependsOn: [a, ghost]}
`), 0o644)
	_, errOut, code := in.gantry("pipeline", "apply", path)
	if code != exitGantryError || !strings.Contains(errOut, "dependency cycle: a -> b -> a") || !strings.Contains(errOut, `no stage "ghost"`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// An unregistered family is reported at apply time too.
	os.WriteFile(path, []byte("name: unknown\nstages: [{name: a, taskDefinition: nosuchfamily}]\n"), 0o644)
	if _, errOut, code := in.gantry("pipeline", "apply", path); code == 0 || !strings.Contains(errOut, "nosuchfamily") {
		t.Fatalf("unknown task definition: exit %d: %s", code, errOut)
	}
	// With a problem of the file's own too, both at once.
	os.WriteFile(path, []byte("name: unknown\nstages: [{name: a, taskDefinition: nosuchfamily, dependsOn: [ghost]}]\n"), 0o644)
	if _, errOut, code := in.gantry("pipeline", "apply", path); code == 0 || !strings.Contains(errOut, "nosuchfamily") || !strings.Contains(errOut, "ghost") {
		t.Fatalf("unknown task definition and stage: exit %d: %s", code, errOut)
	}
}

const scheduledPipeline = `
name: nightly
parameters: {day: x}
schedule: {cron: "0 3 * * *", timezone: Europe/Paris, concurrencyPolicy: Forbid}
stages:
  - name: only
    taskDefinition: {family: only, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo at $GANTRY_SCHEDULED_TIME']}]}
`

func TestScheduleCommandsAndBackfill(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("nightly", scheduledPipeline)
	ls, _, _ := in.gantry("schedule", "ls")
	if !strings.Contains(ls, "nightly") || !strings.Contains(ls, "Europe/Paris") {
		t.Fatalf("schedule ls:\n%s", ls)
	}
	if _, errOut, code := in.gantry("schedule", "suspend", "nightly"); code != 0 {
		t.Fatal(errOut)
	}
	var ss []struct {
		Suspended bool `json:"suspended"`
	}
	js, _, _ := in.gantry("schedule", "ls", "-o", "json")
	if json.Unmarshal([]byte(js), &ss); len(ss) != 1 || !ss[0].Suspended {
		t.Fatalf("not suspended: %s", js)
	}
	in.gantry("schedule", "resume", "nightly")
	out, errOut, code := in.gantry("schedule", "trigger", "nightly")
	id := strings.TrimSpace(out)
	if code != 0 || !jobs.IsPipelineRunID(id) {
		t.Fatalf("trigger: %d %q %s", code, out, errOut)
	}
	pr := in.waitPipeline(id, ended)
	if pr.Status != jobs.StatusSucceeded || pr.ScheduledTime == nil {
		t.Fatalf("triggered run: %s scheduled %v", pr.Status, pr.ScheduledTime)
	}
	if logs, _, _ := in.gantry("logs", pr.Stages[0].Runs[0].RunID); !strings.HasPrefix(logs, "at 20") {
		t.Errorf("GANTRY_SCHEDULED_TIME not set: %q", logs)
	}
	// Backfill three nights, the last day's included; doing it again
	// creates nothing new.
	out, errOut, code = in.gantry("pipeline", "backfill", "nightly", "--from", "2026-11-01", "--to", "2026-11-03")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "2026-11-01T03:00:00+01:00") {
		t.Fatalf("backfill: exit %d\n%s%s", code, out, errOut)
	}
	again, _, _ := in.gantry("pipeline", "backfill", "nightly", "--from", "2026-11-01", "--to", "2026-11-03")
	ids := func(s string) (out []string) {
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			out = append(out, strings.Fields(l)[0])
		}
		return out
	}
	if strings.Join(ids(out), " ") != strings.Join(ids(again), " ") {
		t.Fatalf("backfill again made other runs:\n%s\n%s", out, again)
	}
	// Before 1970 is refused naming the flag's time as given (a run's id
	// holds its scheduled time in a ULID, which starts then); it took the
	// server down.
	_, errOut, code = in.gantry("pipeline", "backfill", "nightly", "--from", "1969-12-30", "--to", "1970-01-02")
	if code != exitGantryError || !strings.Contains(errOut, "from: 1969-12-30T00:00:00+01:00 is before 1970-01-01") {
		t.Fatalf("backfill before 1970: exit %d\n%s", code, errOut)
	}
	// A range the wrong way round names the flags.
	_, errOut, code = in.gantry("pipeline", "backfill", "nightly", "--from", "2026-11-03", "--to", "2026-11-01")
	oneLineError(t, "backfill --from after --to", errOut, code, "--to 2026-11-01 is before --from 2026-11-03")
	runs, _, _ := in.gantry("pipeline", "runs", "nightly", "-o", "json")
	var prs []jobs.PipelineRun
	json.Unmarshal([]byte(runs), &prs)
	if len(prs) != 4 {
		t.Fatalf("%d runs, want 4 (trigger + 3 backfilled)", len(prs))
	}
}

// TestAttachedPipelineSaysWhyAStageFailed: a stage whose run never started
// (its host path is not allowed) has no log lines to show, and its reason
// only counted the failed runs ("1 of 1 runs failed"): the summary names
// the failed run and its own reason.
func TestAttachedPipelineSaysWhyAStageFailed(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("refused", `
name: refused
stages:
  - name: load
    taskDefinition:
      family: refused-load
      containerDefinitions: [{name: main, image: gantry/samples:latest, command: ['true'],
        mountPoints: [{sourceVolume: data, containerPath: /data}]}]
      volumes: [{name: data, host: {sourcePath: /tmp/gantry-not-allowed}}]
`)
	out, errOut, code := in.gantry("pipeline", "run", "refused")
	if code != exitPipelineFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitPipelineFailed, out, errOut)
	}
	pr := in.pipelineRun(in.runsOf("refused")[0].PipelineRunID)
	runID := pr.StageState("load").Runs[0].RunID
	want := "run " + runID + " FAILED: volumes[0].host.sourcePath: host path \"/tmp/gantry-not-allowed\" is not allowed"
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
}
