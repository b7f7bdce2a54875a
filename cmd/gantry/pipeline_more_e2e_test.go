package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// End-to-end tests of backfill --max-parallel, cross-pipeline triggers,
// task schedules and data retention, against `gantry up`.

const backfilledPipeline = `
name: nightly
schedule: {cron: "0 3 * * *", timezone: Europe/Paris, suspend: true}
stages:
  - name: only
    taskDefinition: {family: only, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo at $GANTRY_SCHEDULED_TIME; sleep 1']}]}
`

// report starts whenever a run of nightly succeeds.
const triggeredPipeline = `
name: report
triggers: [{pipeline: nightly, on: success}]
stages:
  - name: only
    taskDefinition: {family: report, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo after $GANTRY_TRIGGERED_BY']}]}
`

func (in *instance) runsOf(name string) []jobs.PipelineRun {
	in.t.Helper()
	out, errOut, code := in.gantry("pipeline", "runs", name, "-o", "json")
	var prs []jobs.PipelineRun
	if err := json.Unmarshal([]byte(out), &prs); code != 0 || err != nil {
		in.t.Fatalf("pipeline runs %s: exit %d %v: %s", name, code, err, errOut)
	}
	return prs
}

func TestBackfillMaxParallelThenTriggers(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("nightly", backfilledPipeline)
	in.applyPipeline("report", triggeredPipeline)
	out, errOut, code := in.gantry("pipeline", "backfill", "nightly", "--from", "2026-11-01", "--to", "2026-11-03T23:00:00+01:00",
		"--max-parallel", "1")
	if code != 0 || strings.Count(out, "\n") != 3 || strings.Count(out, "PENDING") != 2 {
		t.Fatalf("backfill: exit %d\n%s%s", code, out, errOut)
	}
	// Never more than one active; each starts after the one before ended.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		prs := in.runsOf("nightly")
		active, done := 0, 0
		for _, pr := range prs {
			switch {
			case pr.Status == jobs.StatusRunning:
				active++
			case pr.Status.Terminal():
				done++
			}
		}
		if active > 1 {
			t.Fatalf("%d backfilled runs active at once", active)
		}
		if done == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backfill not done after 2m: %d ended\n%s", done, in.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	prs := in.runsOf("nightly")
	for i := range prs {
		pr := &prs[i]
		if pr.Status != jobs.StatusSucceeded {
			t.Fatalf("backfilled run %s: %s", pr.PipelineRunID, pr.Status)
		}
		for j := range prs {
			o := &prs[j]
			// Runs did not overlap: one that started later started after the other ended.
			if o != pr && o.StartedAt.After(*pr.StartedAt) && o.StartedAt.Before(*pr.FinishedAt) {
				t.Errorf("runs %s and %s overlapped", pr.PipelineRunID, o.PipelineRunID)
			}
		}
	}
	// Each succeeded nightly run triggered one report run, which knows it.
	var reports []jobs.PipelineRun
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		reports = in.runsOf("report")
		ended := 0
		for _, r := range reports {
			if r.Status.Terminal() {
				ended++
			}
		}
		if ended == 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(reports) != 3 {
		t.Fatalf("%d report runs, want 3", len(reports))
	}
	ups := map[string]bool{}
	for _, r := range reports {
		ups[r.TriggeredBy] = true
		if r.Status != jobs.StatusSucceeded || r.Trigger != "pipeline" {
			t.Errorf("report run %s: %s trigger %q", r.PipelineRunID, r.Status, r.Trigger)
		}
		if logs, _, _ := in.gantry("logs", in.pipelineRun(r.PipelineRunID).Stages[0].Runs[0].RunID); strings.TrimSpace(logs) != "after "+r.TriggeredBy {
			t.Errorf("report run logs %q, want GANTRY_TRIGGERED_BY=%s", logs, r.TriggeredBy)
		}
	}
	for _, pr := range prs {
		if !ups[pr.PipelineRunID] {
			t.Errorf("nightly run %s triggered nothing", pr.PipelineRunID)
		}
	}
	// A restart triggers nothing again.
	in.stop()
	in.start()
	if n := len(in.runsOf("report")); n != 3 {
		t.Fatalf("%d report runs after a restart, want 3", n)
	}
	// Unknown upstream pipelines and cycles are refused at apply time.
	for src, want := range map[string]string{
		"name: x\ntriggers: [{pipeline: ghost}]\nstages: [{name: a, taskDefinition: only}]\n":        `no pipeline "ghost"`,
		"name: nightly\ntriggers: [{pipeline: report}]\nstages: [{name: a, taskDefinition: only}]\n": "trigger cycle: nightly -> report -> nightly",
	} {
		path := filepath.Join(t.TempDir(), "p.yaml")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := in.gantry("pipeline", "apply", path); code != exitGantryError || !strings.Contains(errOut, want) {
			t.Errorf("apply %q: exit %d: %s", src, code, errOut)
		}
	}
}

const scheduledTaskDef = `{"family": "cleanup", "containerDefinitions": [{"name": "main", "image": "IMAGE",
  "command": ["sh", "-c", "echo cleanup at $GANTRY_SCHEDULED_TIME"]}]}`

func TestTaskScheduleCommands(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.mustGantry("taskdef", "register", in.writeTaskDef("cleanup.json", scheduledTaskDef))
	out := in.mustGantry("schedule", "create", "--task", "cleanup", "--cron", "0 4 * * *", "--timezone", "Europe/Paris",
		"--concurrency-policy", "Forbid")
	if out != "schedule cleanup (task cleanup) version 1 created\n" {
		t.Fatalf("schedule create: %q", out)
	}
	if ls := in.mustGantry("schedule", "ls"); !strings.Contains(ls, "task cleanup") || !strings.Contains(ls, "Europe/Paris") {
		t.Fatalf("schedule ls:\n%s", ls)
	}
	in.mustGantry("schedule", "suspend", "cleanup")
	var ss []struct {
		Name, Kind, Target string
		Suspended          bool
	}
	if json.Unmarshal([]byte(in.mustGantry("schedule", "ls", "-o", "json")), &ss); len(ss) != 1 || !ss[0].Suspended ||
		ss[0].Kind != "task" || ss[0].Target != "cleanup" {
		t.Fatalf("schedule ls -o json: %+v", ss)
	}
	in.mustGantry("schedule", "resume", "cleanup")
	id := strings.TrimSpace(in.mustGantry("schedule", "trigger", "cleanup"))
	pr := in.waitPipeline(id, ended)
	if pr.Status != jobs.StatusSucceeded {
		t.Fatalf("triggered task schedule: %s", pr.Status)
	}
	if logs, _, _ := in.gantry("logs", pr.Stages[0].Runs[0].RunID); !strings.HasPrefix(logs, "cleanup at 20") {
		t.Errorf("logs %q: GANTRY_SCHEDULED_TIME not set", logs)
	}
	// logs and describe complete runs and pipeline runs.
	if out, _, _ := in.gantry("__complete", "logs", ""); !strings.Contains(out, pr.Stages[0].Runs[0].RunID) || !strings.Contains(out, id) {
		t.Errorf("__complete logs '':\n%s", out)
	}
	if out, _, _ := in.gantry("__complete", "describe", ""); !strings.Contains(out, pr.Stages[0].Runs[0].RunID) || !strings.Contains(out, id) {
		t.Errorf("__complete describe '':\n%s", out)
	}
	// Updating it makes a new version; a pipeline is never replaced.
	if out := in.mustGantry("schedule", "create", "--task", "cleanup:1", "--cron", "@hourly"); !strings.Contains(out, "version 2 updated") {
		t.Fatalf("update: %q", out)
	}
	// Problems name the flags, not the one-stage pipeline behind the schedule.
	_, errOut, code := in.gantry("schedule", "create", "--task", "nosuch", "--cron", "@hourly")
	oneLineError(t, "schedule create --task nosuch", errOut, code,
		"--task: task definition family nosuch is not registered;", "register it with")
	if _, errOut, _ = in.gantry("schedule", "create", "--task", "cleanup", "--cron", "bad", "--timezone", "Nowhere"); !strings.Contains(errOut, `--cron: "bad"`) ||
		!strings.Contains(errOut, `--timezone: "Nowhere"`) || strings.Contains(errOut, "stages[") {
		t.Errorf("schedule create --cron bad --timezone Nowhere: %q", errOut)
	}
	in.applyPipeline("nightly", backfilledPipeline)
	if _, errOut, code := in.gantry("schedule", "create", "nightly", "--task", "cleanup", "--cron", "@daily"); code != exitGantryError ||
		!strings.Contains(errOut, "pipeline nightly exists") {
		t.Fatalf("task schedule over a pipeline: exit %d %s", code, errOut)
	}
}

const dataPipeline = `
name: data
stages:
  - name: write
    taskDefinition: {family: write, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo hello > /gantry/out/f.txt']}]}
  - name: read
    dependsOn: [write]
    taskDefinition: {family: read, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [cat, /gantry/in/write/f.txt]}]}
`

func TestDataRetentionDeletesStageFiles(t *testing.T) {
	t.Parallel()
	const retention = 5 * time.Second
	in := startUp(t, "--data-retention", retention.String())
	in.applyPipeline("data", dataPipeline)
	out, errOut, code := in.gantry("pipeline", "run", "data")
	if code != 0 {
		t.Fatalf("pipeline run: exit %d\n%s%s", code, out, errOut)
	}
	var url string
	for _, e := range in.env {
		if v, ok := strings.CutPrefix(e, "GANTRY_NATS_URL="); ok {
			url = v
		}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	// Within the retention the files are there.
	obs, err := js.ObjectStore(ctx, queue.DataBucket)
	if err != nil {
		t.Fatal(err)
	}
	pr := in.runsOf("data")[0]
	// A listing can wait for ever on an object the server deletes while it
	// lists (ObjectStore.List): bound it.
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	infos, err := obs.List(lctx)
	cancel()
	if err != nil || len(infos) == 0 || !strings.HasPrefix(infos[0].Name, pr.PipelineRunID+"/") {
		t.Fatalf("stage files of %s just after the run: %d, %v", pr.PipelineRunID, len(infos), err)
	}
	if logs, _, _ := in.gantry("logs", in.pipelineRun(pr.PipelineRunID).StageState("read").Runs[0].RunID); logs != "hello\n" {
		t.Fatalf("read stage saw %q", logs)
	}
	// The files are deleted within a few seconds of the retention's end,
	// delete markers included: the bucket's stream is empty.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := js.Stream(ctx, "OBJ_"+queue.DataBucket)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := st.Info(ctx)
		if info.State.Msgs == 0 { // no object, and no delete marker either
			if want := retention + queue.DataBucketSlack; info.Config.MaxAge != want {
				t.Errorf("bucket TTL %s, want %s", info.Config.MaxAge, want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s the bucket holds %d messages\n%s", info.State.Msgs, in.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
