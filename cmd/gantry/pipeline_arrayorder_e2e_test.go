package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// sequentialPipeline's children each append "start i" and, a moment
// later, "end i" to a file of the host directory DIR; child FAIL exits 1
// after its start (-1: none fails).
const sequentialPipeline = `
name: in-order
stages:
  - name: chunks
    arraySize: 3
    arrayOrder: sequential
    taskDefinition:
      family: seq-chunk
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'echo start $GANTRY_ARRAY_INDEX >> /shared/order; sleep 0.3; test $GANTRY_ARRAY_INDEX != FAIL || exit 1; echo end $GANTRY_ARRAY_INDEX >> /shared/order'],
        mountPoints: [{sourceVolume: shared, containerPath: /shared}]}]
      volumes: [{name: shared, host: {sourcePath: DIR}}]
  - name: report
    dependsOn: [chunks]
    taskDefinition: {family: seq-report, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo done']}]}
`

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// TestPipelineSequentialArray: with 4 worker slots free, the children of
// a sequential array run one at a time in index order (each one's end
// before the next one's start, as the children themselves recorded it),
// and the stage after it runs; describe shows the order.
func TestPipelineSequentialArray(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	in.applyPipeline("in-order", strings.NewReplacer("DIR", dir, "FAIL", "-1").Replace(sequentialPipeline))
	if out := in.mustGantry("pipeline", "describe", "in-order"); !strings.Contains(out, "3, sequential") {
		t.Errorf("describe does not show the order:\n%s", out)
	}
	id := strings.TrimSpace(in.mustGantry("pipeline", "run", "in-order", "-d"))
	pr := in.waitPipeline(id, ended)
	if pr.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s %v", pr.Status, pr.StageStatuses())
	}
	want := []string{"start_0", "end_0", "start_1", "end_1", "start_2", "end_2"}
	if got := readLines(t, filepath.Join(dir, "order")); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("children ran in the order %v, want %v", got, want)
	}
	if pr.StageState("report").Status != jobs.StatusSucceeded {
		t.Fatalf("report %s", pr.StageState("report").Status)
	}
}

// TestPipelineSequentialArrayChildFails: child 1 fails, child 2 never
// runs (its run FAILED without starting, naming child 1's run), the stage
// FAILED naming child 1, and what follows it is SKIPPED.
func TestPipelineSequentialArrayChildFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	in.applyPipeline("in-order", strings.NewReplacer("DIR", dir, "FAIL", "1").Replace(sequentialPipeline))
	id := strings.TrimSpace(in.mustGantry("pipeline", "run", "in-order", "-d"))
	pr := in.waitPipeline(id, ended)
	chunks := pr.StageState("chunks")
	if pr.Status != jobs.StatusFailed || chunks.Status != jobs.StatusFailed ||
		chunks.Reason != "1 of 3 runs failed; 1 of 3 runs not run after chunks[1] FAILED" {
		t.Fatalf("pipeline run %s, chunks %s %q", pr.Status, chunks.Status, chunks.Reason)
	}
	if got := readLines(t, filepath.Join(dir, "order")); strings.Join(got, " ") != "start_0 end_0 start_1" {
		t.Fatalf("children ran %v, want child 2 never started", got)
	}
	last := chunks.Runs[2]
	if last.Status != jobs.StatusFailed || !strings.Contains(last.StoppedReason, "run "+chunks.Runs[1].RunID+" FAILED; this run needed it to succeed") {
		t.Fatalf("child 2: %s %q", last.Status, last.StoppedReason)
	}
	if st := pr.StageState("report"); st.Status != jobs.StatusSkipped {
		t.Fatalf("report %s", st.Status)
	}
	if out := in.mustGantry("pipeline", "runs", "in-order"); !strings.Contains(out, "chunks: 1 of 3 runs failed; 1 of 3 runs not run after chunks[1] FAILED") {
		t.Errorf("pipeline runs does not say why child 2 did not run:\n%s", out)
	}
}

// nToNPipeline: up's child 1 waits for the file DIR/open; down's children
// record their start. down[0] and down[2] start while up[1] still waits:
// child i of down needs only child i of up.
const nToNPipeline = `
name: pairs
stages:
  - name: up
    arraySize: 3
    taskDefinition:
      family: pairs-up
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'if test $GANTRY_ARRAY_INDEX = 1; then while ! test -f /shared/open; do sleep 0.05; done; fi; echo $GANTRY_ARRAY_INDEX > /gantry/out/part-$GANTRY_ARRAY_INDEX'],
        mountPoints: [{sourceVolume: shared, containerPath: /shared}]}]
      volumes: [{name: shared, host: {sourcePath: DIR}}]
  - name: down
    arraySize: 3
    dependsOn: [{stage: up, type: N_TO_N}]
    taskDefinition:
      family: pairs-down
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'ls /gantry/in/up | tr "\n" " " > /shared/down-$GANTRY_ARRAY_INDEX'],
        mountPoints: [{sourceVolume: shared, containerPath: /shared}]}]
      volumes: [{name: shared, host: {sourcePath: DIR}}]
`

// TestPipelineNToN: down[0] and down[2] run (and end) while up[1] has
// not ended, each reading only its counterpart's files; down[1] runs
// once up[1] ends; everything succeeds.
func TestPipelineNToN(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	in.applyPipeline("pairs", strings.ReplaceAll(nToNPipeline, "DIR", dir))
	if out := in.mustGantry("pipeline", "describe", "pairs"); !strings.Contains(out, "up(N_TO_N") {
		t.Errorf("describe does not show the N_TO_N dependency:\n%s", out)
	}
	id := strings.TrimSpace(in.mustGantry("pipeline", "run", "pairs", "-d"))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err0 := os.Stat(filepath.Join(dir, "down-0"))
		_, err2 := os.Stat(filepath.Join(dir, "down-2"))
		if err0 == nil && err2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("down[0] and down[2] did not run while up[1] waited: %v\n%s", in.pipelineRun(id).StageStatuses(), in.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pr := in.pipelineRun(id)
	if up := pr.StageState("up"); up.Status != jobs.StatusRunning || up.Runs[1].Status.Terminal() {
		t.Fatalf("up %s, up[1] %s: it should still wait for the gate", up.Status, up.Runs[1].Status)
	}
	if _, err := os.Stat(filepath.Join(dir, "down-1")); err == nil {
		t.Fatal("down[1] ran before up[1] ended")
	}
	if err := os.WriteFile(filepath.Join(dir, "open"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pr = in.waitPipeline(id, ended)
	if pr.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s %v", pr.Status, pr.StageStatuses())
	}
	for i, want := range []string{"part-0 ", "part-1 ", "part-2 "} {
		b, err := os.ReadFile(filepath.Join(dir, "down-"+itoa(i)))
		if err != nil || string(b) != want {
			t.Errorf("down[%d] saw /gantry/in/up: %q (%v), want only its counterpart's %q", i, b, err, want)
		}
	}
}
