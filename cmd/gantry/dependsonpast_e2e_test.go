package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// pastPipeline loads a day after the day before (dependsOnPast); the
// load of 2026-11-01 fails until the file ok is in the host directory
// DIR.
const pastPipeline = `
name: daily-load
dependsOnPast: true
parameters: {day: none}
schedule: {cron: "0 3 * * *", suspend: true, dateParameter: day}
stages:
  - name: load
    taskDefinition:
      family: daily-load
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'test "$DAY" != 2026-11-01 || test -f /flag/ok || { echo source of $DAY not ready >&2; exit 1; }; echo loaded $DAY'],
        environment: [{name: DAY, value: "${day}"}],
        mountPoints: [{sourceVolume: flag, containerPath: /flag}]}]
      volumes: [{name: flag, host: {sourcePath: DIR}}]
`

// TestDependsOnPastBackfillWaitsForTheFailedDay: a backfill of three days
// whose first fails: the two others wait PENDING, the reason in pipeline
// runs, describe and the JSON; the retry of day 1, its failure removed,
// lets day 2 and then day 3 run and succeed, one after the other, without
// anything else done.
func TestDependsOnPastBackfillWaitsForTheFailedDay(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	src := strings.ReplaceAll(pastPipeline, "DIR", dir)
	in.applyPipeline("daily-load", src)
	if out, _, _ := in.gantry("pipeline", "describe", "daily-load"); !strings.Contains(out, "Depends on past:") {
		t.Errorf("pipeline describe does not show dependsOnPast:\n%s", out)
	}
	out, errOut, code := in.gantry("pipeline", "backfill", "daily-load", "--from", "2026-11-01", "--to", "2026-11-03")
	if code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("backfill: exit %d\n%s%s", code, out, errOut)
	}
	// byDay returns the runs of the three days, oldest first.
	byDay := func() [3]jobs.PipelineRun {
		t.Helper()
		var days [3]jobs.PipelineRun
		for _, pr := range in.runsOf("daily-load") {
			i := int(pr.ScheduledTime.Sub(time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)) / (24 * time.Hour))
			if i < 0 || i > 2 {
				t.Fatalf("run %s scheduled %v", pr.PipelineRunID, pr.ScheduledTime)
			}
			days[i] = pr
		}
		return days
	}
	waitDays := func(what string, ok func(d [3]jobs.PipelineRun) bool) [3]jobs.PipelineRun {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			d := byDay()
			if ok(d) {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 2m: %s %s %s\n%s", what, d[0].Status, d[1].Status, d[2].Status, in.log)
			}
		}
	}
	d := waitDays("day 1 FAILED", func(d [3]jobs.PipelineRun) bool { return d[0].Status == jobs.StatusFailed })
	id1, id2 := d[0].PipelineRunID, d[1].PipelineRunID
	want2 := "waiting for " + id1 + " (scheduled 2026-11-01T03:00:00Z) to succeed (dependsOnPast): it FAILED; gantry pipeline retry " + id1 + " runs it again"
	want3 := "waiting for " + id2 + " (scheduled 2026-11-02T03:00:00Z) to succeed (dependsOnPast): it is PENDING"
	d = waitDays("days 2 and 3 told why they wait", func(d [3]jobs.PipelineRun) bool { return d[1].StatusReason == want2 })
	for i, want := range []string{want2, want3} {
		if pr := d[i+1]; pr.Status != jobs.StatusPending || pr.StatusReason != want || pr.StartedAt != nil {
			t.Fatalf("day %d: %s %q started %v, want PENDING %q", i+2, pr.Status, pr.StatusReason, pr.StartedAt, want)
		}
	}
	if tbl, _, _ := in.gantry("pipeline", "runs", "daily-load"); !strings.Contains(tbl, "(dependsOnPast): it FAILED; gantry pipeline retry "+id1) {
		t.Errorf("pipeline runs does not say why day 2 waits:\n%s", tbl)
	}
	if tbl, _, _ := in.gantry("describe", id2); !strings.Contains(tbl, want2) {
		t.Errorf("describe %s does not say why it waits:\n%s", id2, tbl)
	}

	if err := os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = in.gantry("pipeline", "retry", id1)
	if code != 0 || !strings.Contains(out, "pipeline run "+id1+" SUCCEEDED") {
		t.Fatalf("retry of day 1: exit %d\n%s\n%s\n%s", code, out, errOut, in.log)
	}
	d = waitDays("days 2 and 3 SUCCEEDED", func(d [3]jobs.PipelineRun) bool {
		return d[1].Status == jobs.StatusSucceeded && d[2].Status == jobs.StatusSucceeded
	})
	// Strictly in order: each day started after the day before ended.
	for i := 1; i < 3; i++ {
		if d[i].StartedAt.Before(*d[i-1].FinishedAt) {
			t.Errorf("day %d started at %v, before day %d ended at %v", i+1, d[i].StartedAt, i, d[i-1].FinishedAt)
		}
		if d[i].StatusReason != "" {
			t.Errorf("day %d ended with reason %q", i+1, d[i].StatusReason)
		}
	}
	if logs, _, _ := in.gantry("logs", d[2].PipelineRunID); !strings.Contains(logs, "loaded 2026-11-03") {
		t.Errorf("day 3's logs: %q", logs)
	}
	// Turning it off is a change a dry run names.
	off := filepath.Join(t.TempDir(), "off.yaml")
	offSrc := strings.ReplaceAll(strings.Replace(src, "dependsOnPast: true\n", "", 1), "gantry/samples:latest", in.image)
	if err := os.WriteFile(off, []byte(offSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := in.gantry("pipeline", "apply", "--dry-run", off); code != 0 || !strings.Contains(out, "dependsOnPast: removed (was true)") {
		t.Errorf("apply --dry-run without dependsOnPast: exit %d\n%s%s", code, out, errOut)
	}
}
