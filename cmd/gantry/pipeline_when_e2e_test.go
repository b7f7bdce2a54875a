package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestPipelineWhenChoosesABranch runs samples/pipelines/branching.yaml
// on a day that is not the first of a month: check writes
// MODE=incremental, incremental runs and full-reload is SKIPPED, with no
// run, saying why; report runs after both and sees CHECK_MODE; announce,
// whose when reads the channel parameter (empty), is SKIPPED too. Then
// with the first of a month the other branch runs. describe shows the
// conditions and the reasons; a dry run shows a change to a when.
func TestPipelineWhenChoosesABranch(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../samples/pipelines/branching.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := startUp(t)
	in.applyPipeline("branching", string(src))
	if out, errOut, code := in.gantry("pipeline", "run", "branching"); code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	id := in.runsOf("branching")[0].PipelineRunID
	pr := in.pipelineRun(id)
	full, inc := pr.StageState("full-reload"), pr.StageState("incremental")
	const why = `when: check.MODE is "incremental", not "full"`
	if pr.Status != jobs.StatusSucceeded || full.Status != jobs.StatusSkipped || full.Reason != why || len(full.Runs) != 0 ||
		inc.Status != jobs.StatusSucceeded || !inc.WhenHeld || len(inc.Runs) != 1 {
		t.Fatalf("pipeline run %s: full-reload %s %q (%d runs), incremental %s held %v", pr.Status, full.Status, full.Reason,
			len(full.Runs), inc.Status, inc.WhenHeld)
	}
	if s := pr.StageStatuses(); s["report"] != jobs.StatusSucceeded || s["announce"] != jobs.StatusSkipped ||
		pr.StageState("announce").Reason != `when: parameter channel is "", excluded by notEquals` {
		t.Fatalf("stages %v, announce %q", s, pr.StageState("announce").Reason)
	}
	out, errOut, code := in.gantry("logs", id)
	if want := "check | check: 2026-01-15 needs a incremental load\nincremental | incremental load of 2026-01-15\nreport | report: a incremental load\n"; code != 0 || out != want {
		t.Fatalf("logs %s: exit %d\n%s%s\nwant\n%s", id, code, out, errOut, want)
	}
	if desc, _, _ := in.gantry("describe", id); !strings.Contains(desc, why) || !strings.Contains(desc, "SKIPPED") {
		t.Errorf("describe %s does not show full-reload skipped and why:\n%s", id, desc)
	}
	if out, _, _ := in.gantry("pipeline", "describe", "branching"); !strings.Contains(out, "When of full-reload:") ||
		!strings.Contains(out, "check.MODE equals full (else SKIPPED)") || !strings.Contains(out, `parameter channel notEquals ""`) {
		t.Errorf("pipeline describe does not show the whens:\n%s", out)
	}

	// The first of a month: the other branch.
	if out, errOut, code := in.gantry("pipeline", "run", "branching", "--param", "day=2026-02-01", "--param", "channel=data"); code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", code, out, errOut)
	}
	var second *jobs.PipelineRun
	for _, r := range in.runsOf("branching") {
		if r.PipelineRunID != id {
			second = in.pipelineRun(r.PipelineRunID)
		}
	}
	if s := second.StageStatuses(); s["full-reload"] != jobs.StatusSucceeded || s["incremental"] != jobs.StatusSkipped ||
		s["announce"] != jobs.StatusSucceeded || second.StageState("incremental").Reason != `when: check.MODE is "full", excluded by notEquals` {
		t.Fatalf("second run: %v, incremental %q", s, second.StageState("incremental").Reason)
	}

	// A dry run shows a change to a when as the file writes it.
	changed := strings.Replace(strings.ReplaceAll(string(src), "gantry/samples:latest", in.image),
		"when: {output: check.MODE, equals: full}", "when: {output: check.MODE, in: [full, rebuild]}", 1)
	path := filepath.Join(t.TempDir(), "branching.yaml")
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = in.gantry("pipeline", "apply", "--dry-run", path)
	if want := "stages[1](full-reload).when.equals: removed (was full)"; code != 0 || !strings.Contains(out, want) ||
		!strings.Contains(out, "stages[1](full-reload).when.in: added [full, rebuild]") {
		t.Errorf("apply --dry-run: exit %d, want %q and the in added:\n%s%s", code, want, out, errOut)
	}
}
