package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// exitAttempt reports an attempt of a run as its worker would: RUNNING,
// then ended with the exit code of its essential container.
func (e *apiEnv) exitAttempt(runID string, attempt, exit int) {
	e.t.Helper()
	q, err := queue.New(e.op)
	if err != nil {
		e.t.Fatal(err)
	}
	end := &jobs.Event{Status: jobs.StatusSucceeded, ExitCode: &exit}
	if exit != 0 {
		end.Status, end.StopCode, end.StoppedReason = jobs.StatusFailed, jobs.StopEssentialExited, "Essential container in task exited"
	}
	for i, ev := range []*jobs.Event{{Status: jobs.StatusRunning}, end} {
		ev.RunID, ev.Attempt, ev.Seq, ev.Source, ev.Worker, ev.Time = runID, attempt, i+1, jobs.SourceWorker, "w1", time.Now().UTC()
		if err := q.Report(context.Background(), ev); err != nil {
			e.t.Fatal(err)
		}
	}
}

const skipYAML = `name: daily
stages:
- {name: extract, taskDefinition: hello, skipOnExitCode: 99, retryStrategy: {attempts: 3}}
- {name: load, taskDefinition: hello, dependsOn: [extract]}
- {name: cleanup, taskDefinition: hello, dependsOn: [{stage: extract, condition: complete}]}
`

// Over the real NATS: a stage whose run exits 99, its skipOnExitCode,
// ends SKIPPED without a retry; load after it is skipped without a run,
// cleanup runs, and the pipeline run succeeds. The stage's run is FAILED
// with exit 99, its reason saying why it was not retried.
func TestStageSkipsItselfOverNATS(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)

	// A bad code is refused at apply, naming the stage and the code.
	body, _ := json.Marshal(map[string][]byte{"data": []byte(strings.Replace(skipYAML, "skipOnExitCode: 99", "skipOnExitCode: [99, 0]", 1))})
	got := apiError(t, e.req(e.op, "gantry.api.pipelines.apply", string(body)))
	if want := "stages[0](extract).skipOnExitCode[1]: 0: exit code 0 is success"; got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, want) {
		t.Fatalf("apply with skipOnExitCode [99, 0]: %s %q, want %q", got.Code, got.Message, want)
	}

	e.apply(skipYAML)
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"daily"}`, &pr)
	id := pr.PipelineRunID
	extract := e.stageRunning(id, "extract")
	e.exitAttempt(extract, 1, 99)
	e.finish(e.stageRunning(id, "cleanup"))
	done := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	if done.Status != jobs.StatusSucceeded {
		t.Fatalf("pipeline run %s: %v", done.Status, done.StageStatuses())
	}
	st := done.StageState("extract")
	if st.Status != jobs.StatusSkipped || st.Reason != "exited 99 (skipOnExitCode): skipped" || len(st.Runs) != 1 || !st.Runs[0].Skipped {
		t.Fatalf("extract: %+v", st)
	}
	if load := done.StageState("load"); load.Status != jobs.StatusSkipped || len(load.Runs) != 0 ||
		load.Reason != "dependency extract ended SKIPPED; condition success cannot hold" {
		t.Fatalf("load: %+v", load)
	}
	var run jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, extract), &run)
	if run.Status != jobs.StatusFailed || run.ExitCode == nil || *run.ExitCode != 99 || len(run.Attempts) != 1 ||
		run.StoppedReason != "Essential container in task exited; not retried: exit code 99 is in skipOnExitCode of stage extract" {
		t.Fatalf("extract's run: %s exit %v, %d attempts, %q", run.Status, run.ExitCode, len(run.Attempts), run.StoppedReason)
	}
	if got := run.Spec.Stage.SkipOnExitCode; len(got) != 1 || got[0] != 99 {
		t.Errorf("extract's run's spec.stage.skipOnExitCode %v", got)
	}
	// A run that succeeded, skipped stages and all, has nothing to retry.
	if got := e.retryError(id); got.Code != jobs.CodeFailedPrecond || !strings.Contains(got.Message, "SUCCEEDED: nothing to retry") {
		t.Errorf("retry of the run: %s %q", got.Code, got.Message)
	}
}

// A retry of a run that failed elsewhere runs the stage that skipped
// itself again, on its next try, and what depends on it.
func TestRetryRunsAStageThatSkippedItselfAgain(t *testing.T) {
	t.Parallel()
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(skipYAML + "- {name: other, taskDefinition: hello}\n")
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"daily"}`, &pr)
	id := pr.PipelineRunID
	e.exitAttempt(e.stageRunning(id, "extract"), 1, 99)
	e.fail(e.stageRunning(id, "other"))
	e.finish(e.stageRunning(id, "cleanup"))
	failed := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	if failed.Status != jobs.StatusFailed || failed.StageState("extract").Status != jobs.StatusSkipped {
		t.Fatalf("before the retry: %s %v", failed.Status, failed.StageStatuses())
	}
	e.ok("gantry.api.pipelines.retry", fmt.Sprintf(`{"pipelineRunId":%q}`, id), &pr)
	if st := pr.StageState("extract"); st.Status != jobs.StatusRunning || st.Try != 2 || len(st.EarlierTries) != 1 ||
		st.EarlierTries[0].Status != jobs.StatusSkipped {
		t.Fatalf("extract after the retry: %+v", st)
	}
	e.finish(e.stageRunning(id, "extract"))
	e.finish(e.stageRunning(id, "other"))
	e.finish(e.stageRunning(id, "load"))
	e.finish(e.stageRunning(id, "cleanup"))
	done := e.waitRun(id, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	if done.Status != jobs.StatusSucceeded {
		t.Fatalf("after the retry: %s %v", done.Status, done.StageStatuses())
	}
}
