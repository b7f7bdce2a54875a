package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// nToNFailedPipeline: up's size reads count.N, which is no number, so up
// FAILS without a child; down (N_TO_N on up) has nothing to pair with.
const nToNFailedPipeline = `
name: pairs-failed
stages:
  - name: count
    taskDefinition: {family: pf-count, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo N=abc > /gantry/out/outputs.env']}]}
  - name: up
    dependsOn: [count]
    arraySize: {fromOutput: count.N}
    taskDefinition: {family: pf-up, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo up']}]}
  - name: down
    arraySize: 2
    dependsOn: [{stage: up, type: N_TO_N}]
    taskDefinition: {family: pf-down, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo down']}]}
  - name: notify
    dependsOn: [down]
    triggerRule: oneFailed
    taskDefinition: {family: pf-notify, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo notify']}]}
  - name: join
    dependsOn: [down]
    triggerRule: noneFailed
    taskDefinition: {family: pf-join, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo join']}]}
`

// TestPipelineNToNAfterFailureTriggersOneFailed: up FAILS without a
// child, down is SKIPPED for that upstream failure: notify (oneFailed on
// down) runs, join (noneFailed) is SKIPPED, each saying why.
func TestPipelineNToNAfterFailureTriggersOneFailed(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	in.applyPipeline("pairs-failed", nToNFailedPipeline)
	id := strings.TrimSpace(in.mustGantry("pipeline", "run", "pairs-failed", "-d"))
	pr := in.waitPipeline(id, ended)
	s := pr.StageStatuses()
	if pr.Status != jobs.StatusFailed || s["up"] != jobs.StatusFailed || s["down"] != jobs.StatusSkipped ||
		s["notify"] != jobs.StatusSucceeded || s["join"] != jobs.StatusSkipped {
		t.Fatalf("pipeline run %s, stages %v", pr.Status, s)
	}
	if got, want := pr.StageState("down").Reason, "dependency up ended FAILED without a child; N_TO_N needs children of it that ran"; got != want {
		t.Errorf("down's reason %q, want %q", got, want)
	}
	if got, want := pr.StageState("join").Reason, "dependency down ended SKIPPED (upstream failed); triggerRule noneFailed cannot hold"; got != want {
		t.Errorf("join's reason %q, want %q", got, want)
	}
}

// ruleReadsPipeline: broken fails at once; slow waits for DIR/open, then
// writes a file and ROWS=7. notify (oneFailed) starts once broken failed,
// while slow waits; its first attempt lets slow go, waits until slow
// wrote (and a moment for its worker to store that) and fails; its second
// records what it got of slow.
const ruleReadsPipeline = `
name: rule-reads
stages:
  - name: broken
    taskDefinition: {family: rr-broken, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'exit 1']}]}
  - name: slow
    taskDefinition:
      family: rr-slow
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'while ! test -f /shared/open; do sleep 0.05; done; echo slow > /gantry/out/slow.txt; echo ROWS=7 > /gantry/out/outputs.env; touch /shared/slow-wrote'],
        mountPoints: [{sourceVolume: shared, containerPath: /shared}]}]
      volumes: [{name: shared, host: {sourcePath: DIR}}]
  - name: notify
    dependsOn: [broken, slow]
    triggerRule: oneFailed
    retryStrategy: {attempts: 2}
    taskDefinition:
      family: rr-notify
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'if test "$GANTRY_ATTEMPT" = 1; then touch /shared/open; while ! test -f /shared/slow-wrote; do sleep 0.05; done; sleep 2; exit 1; fi; ls /gantry/in/slow > /shared/saw; echo "rows=$SLOW_ROWS" >> /shared/saw'],
        mountPoints: [{sourceVolume: shared, containerPath: /shared}]}]
      volumes: [{name: shared, host: {sourcePath: DIR}}]
`

// TestPipelineRuleStageReadsWhatEndedBeforeIt: a oneFailed stage that
// started while slow still ran gets none of slow's files nor outputs,
// also in an attempt after slow ended: what it reads is fixed when it
// starts. A file where notify reads an output of a dependency is refused
// by validate, naming the field and the rule.
func TestPipelineRuleStageReadsWhatEndedBeforeIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	in.applyPipeline("rule-reads", strings.ReplaceAll(ruleReadsPipeline, "DIR", dir))
	id := strings.TrimSpace(in.mustGantry("pipeline", "run", "rule-reads", "-d"))
	pr := in.waitPipeline(id, ended)
	s := pr.StageStatuses()
	if pr.Status != jobs.StatusFailed || s["broken"] != jobs.StatusFailed || s["slow"] != jobs.StatusSucceeded || s["notify"] != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s, stages %v\n%s", pr.Status, s, in.log)
	}
	if n := pr.StageState("notify").Runs[0].Attempts; n != 2 {
		t.Fatalf("notify ran %d attempts, want 2", n)
	}
	saw, err := os.ReadFile(filepath.Join(dir, "saw"))
	if err != nil || string(saw) != "rows=\n" {
		t.Errorf("notify's second attempt saw of slow %q (%v), want no file and no SLOW_ROWS", saw, err)
	}

	bad := strings.Replace(strings.ReplaceAll(ruleReadsPipeline, "DIR", dir), "    triggerRule: oneFailed\n",
		"    triggerRule: oneFailed\n    when: {output: slow.ROWS, notEquals: \"0\"}\n", 1)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := in.gantry("pipeline", "validate", path)
	want := `stages[2](notify).when.output: "slow.ROWS": under triggerRule oneFailed notify starts once one dependency failed, ` +
		`without waiting for the others: slow may be the one that failed, which wrote no outputs to count on, or may not have ended then: ` +
		`read an output of a stage upstream of its dependencies`
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("validate: exit %d, want 1 and %q:\n%s%s", code, want, out, errOut)
	}
}

// ruleWaitsPipeline: x fails at once, so b (after a and x) is SKIPPED
// while a still waits for DIR/go; notify (oneFailed on b) may run then,
// but its when reads a.MODE, so it waits PENDING for a to end.
const ruleWaitsPipeline = `
name: rule-waits
stages:
  - name: x
    taskDefinition: {family: rw-x, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'exit 1']}]}
  - name: a
    taskDefinition:
      family: rw-a
      containerDefinitions: [{name: main, image: gantry/samples:latest,
        command: [sh, -c, 'while ! test -f /shared/go; do sleep 0.05; done; echo MODE=full > /gantry/out/outputs.env'],
        mountPoints: [{sourceVolume: shared, containerPath: /shared}]}]
      volumes: [{name: shared, host: {sourcePath: DIR}}]
  - name: b
    dependsOn: [a, x]
    taskDefinition: {family: rw-b, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo b']}]}
  - name: notify
    dependsOn: [b]
    triggerRule: oneFailed
    when: {output: a.MODE, equals: full}
    taskDefinition: {family: rw-notify, containerDefinitions: [{name: main, image: gantry/samples:latest, command: [sh, -c, 'echo notify']}]}
`

// TestPipelineRuleStageWaitsForOutputAcrossRestart: a stage whose rule
// holds waits PENDING for the stage whose output it reads, describe
// saying so; the wait is no state of its own: a server restarted
// meanwhile waits the same, and starts the stage, its when read as final,
// once that stage ended.
func TestPipelineRuleStageWaitsForOutputAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := startUp(t, "--allow-host-path", dir)
	in.applyPipeline("rule-waits", strings.ReplaceAll(ruleWaitsPipeline, "DIR", dir))
	id := strings.TrimSpace(in.mustGantry("pipeline", "run", "rule-waits", "-d"))
	// b is skipped in the advance that decides notify: notify waits from then on.
	pr := in.waitPipeline(id, func(pr *jobs.PipelineRun) bool { return pr.StageState("b").Status == jobs.StatusSkipped })
	if s := pr.StageStatuses(); s["a"] != jobs.StatusRunning || s["notify"] != jobs.StatusPending {
		t.Fatalf("after x failed: %v, want a RUNNING, notify PENDING", s)
	}
	const why = "waiting for a to end, to read a.MODE (its when)"
	if out := in.mustGantry("describe", id); !strings.Contains(out, why) {
		t.Errorf("describe does not say %q:\n%s", why, out)
	}
	in.stop()
	in.start()
	if s := in.pipelineRun(id).StageStatuses(); s["a"] != jobs.StatusRunning || s["notify"] != jobs.StatusPending {
		t.Fatalf("after the restart: %v, want a RUNNING, notify PENDING", s)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pr = in.waitPipeline(id, ended)
	if s := pr.StageStatuses(); pr.Status != jobs.StatusFailed || s["a"] != jobs.StatusSucceeded || s["notify"] != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s, stages %v (notify: %q)\n%s", pr.Status, s, pr.StageState("notify").Reason, in.log)
	}
}
