package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// togetherPipeline uses the four pipeline features of one day at once:
// dependsOnPast; a required parameter (day, the schedule's date); a
// sequential array (migrate) whose child 1 fails on 2026-11-01 until the
// file ok is in the host directory DIR; an N_TO_N array after it (verify
// reads its counterpart's file); trigger rules over both (alert on a
// failure, cleanup in every case).
const togetherPipeline = `
name: together
dependsOnPast: true
parameters: {day: {required: true}, customer: acme}
schedule: {cron: "0 3 * * *", suspend: true, dateParameter: day}
stages:
  - name: migrate
    arraySize: 3
    arrayOrder: sequential
    taskDefinition:
      family: together-migrate
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'echo "$DAY start $GANTRY_ARRAY_INDEX" >> /flag/order; test "$DAY $GANTRY_ARRAY_INDEX" != "2026-11-01 1" || test -f /flag/ok || exit 1; echo "step $GANTRY_ARRAY_INDEX of $DAY" > /gantry/out/step-$GANTRY_ARRAY_INDEX.txt'],
        environment: [{name: DAY, value: "${day}"}],
        mountPoints: [{sourceVolume: flag, containerPath: /flag}]}]
      volumes: [{name: flag, host: {sourcePath: DIR}}]
  - name: verify
    arraySize: 3
    dependsOn: [{stage: migrate, type: N_TO_N}]
    taskDefinition:
      family: together-verify
      containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo "checked $(cat /gantry/in/migrate/step-$GANTRY_ARRAY_INDEX.txt)"']}]
  - name: alert
    dependsOn: [migrate]
    triggerRule: oneFailed
    taskDefinition: {family: together-alert, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo alert']}]}
  - name: cleanup
    dependsOn: [migrate, verify]
    triggerRule: allDone
    taskDefinition: {family: together-cleanup, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo cleanup']}]}
`

// TestPipelineFeaturesTogether: a two-day backfill of togetherPipeline.
// Day 1's migrate[1] fails: migrate[2] and verify[1], verify[2] are not
// run, alert and cleanup run, day 1 FAILS and day 2 waits PENDING. A
// manual run lacking the required day is refused naming --param day. The
// retry of day 1, its failure removed, runs migrate's children again in
// order, verify after them, cleanup and not alert; day 2 then runs to
// success. describe, -o json and apply --dry-run show the pipeline.
func TestPipelineFeaturesTogether(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	src := strings.ReplaceAll(togetherPipeline, "DIR", dir)
	in.applyPipeline("together", src)

	desc := in.mustGantry("pipeline", "describe", "together")
	for _, want := range []string{"day (required: no default", "Depends on past:", "3, sequential", "migrate(N_TO_N: child i after its child i)",
		"migrate, verify (triggerRule allDone)", "migrate (triggerRule oneFailed)"} {
		if !strings.Contains(desc, want) {
			t.Errorf("pipeline describe lacks %q:\n%s", want, desc)
		}
	}
	var p jobs.Pipeline
	if err := json.Unmarshal([]byte(in.mustGantry("pipeline", "describe", "together", "-o", "json")), &p); err != nil ||
		!p.DependsOnPast || !p.Parameters["day"].Required || !p.Stage("migrate").Sequential() || !p.Stage("verify").DependsOn[0].NToN() ||
		p.Stage("cleanup").TriggerRule != jobs.RuleAllDone {
		t.Errorf("pipeline describe -o json: %v %+v", err, p)
	}
	if out, errOut, code := in.gantry("pipeline", "run", "together"); code != 125 || !strings.Contains(errOut, "--param day=") {
		t.Errorf("pipeline run without day: exit %d\n%s%s", code, out, errOut)
	}

	if out, errOut, code := in.gantry("pipeline", "backfill", "together", "--from", "2026-11-01", "--to", "2026-11-02"); code != 0 {
		t.Fatalf("backfill: exit %d\n%s%s", code, out, errOut)
	}
	runs := in.runsOf("together")
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2", len(runs))
	}
	slices.SortFunc(runs, func(a, b jobs.PipelineRun) int { return a.ScheduledTime.Compare(*b.ScheduledTime) })
	d1, d2 := runs[0].PipelineRunID, runs[1].PipelineRunID

	pr := in.waitPipeline(d1, ended)
	s := pr.StageStatuses()
	if pr.Status != jobs.StatusFailed || s["migrate"] != jobs.StatusFailed || s["verify"] != jobs.StatusFailed ||
		s["alert"] != jobs.StatusSucceeded || s["cleanup"] != jobs.StatusSucceeded {
		t.Fatalf("day 1: %s %v\n%s", pr.Status, s, in.log)
	}
	if want := "1 of 3 runs failed; 1 of 3 runs not run after migrate[1] FAILED"; pr.StageState("migrate").Reason != want {
		t.Errorf("migrate: %q, want %q", pr.StageState("migrate").Reason, want)
	}
	if got := in.pipelineRun(d2); got.Status != jobs.StatusPending || !strings.Contains(got.StatusReason, "(dependsOnPast): it FAILED") {
		t.Errorf("day 2: %s %q, want PENDING for day 1", got.Status, got.StatusReason)
	}

	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := in.gantry("pipeline", "retry", d1); code != 0 {
		t.Fatalf("retry of day 1: exit %d\n%s\n%s\n%s", code, out, errOut, in.log)
	}
	pr = in.waitPipeline(d1, ended)
	if s := pr.StageStatuses(); pr.Status != jobs.StatusSucceeded || s["alert"] != jobs.StatusSkipped || s["cleanup"] != jobs.StatusSucceeded {
		t.Fatalf("retried day 1: %s %v", pr.Status, s)
	}
	pr = in.waitPipeline(d2, ended)
	if pr.Status != jobs.StatusSucceeded || pr.StartedAt == nil || pr.StartedAt.Before(*in.pipelineRun(d1).FinishedAt) {
		t.Fatalf("day 2: %s started %v", pr.Status, pr.StartedAt)
	}
	want := []string{"2026-11-01_start_0", "2026-11-01_start_1", "2026-11-01_start_0", "2026-11-01_start_1", "2026-11-01_start_2",
		"2026-11-02_start_0", "2026-11-02_start_1", "2026-11-02_start_2"}
	var got []string
	b, _ := os.ReadFile(filepath.Join(dir, "order"))
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		got = append(got, strings.ReplaceAll(l, " ", "_"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("migrate's children ran %v, want %v", got, want)
	}
	if logs, _, _ := in.gantry("logs", d2); !strings.Contains(logs, "checked step 2 of 2026-11-02") {
		t.Errorf("day 2's logs lack verify[2]'s line:\n%s", logs)
	}

	// A dry run of the file without dependsOnPast names that change alone.
	off := filepath.Join(t.TempDir(), "off.yaml")
	if err := os.WriteFile(off, []byte(strings.ReplaceAll(strings.Replace(src, "dependsOnPast: true\n", "", 1), "gantry/samples:latest", in.image)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := in.gantry("pipeline", "apply", "--dry-run", off); code != 0 || !strings.Contains(out, "dependsOnPast: removed (was true)") {
		t.Errorf("apply --dry-run: exit %d\n%s%s", code, out, errOut)
	}
}
