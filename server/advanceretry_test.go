package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestPipelineAdvanceRetriedAfterDeregister: an advance that submitted
// up[0] and up[1] and then failed on an internal error (nothing of it
// stored) is retried after up's task definition was deregistered. The
// retry finds up[0] and up[1] by their idempotency keys, is refused at
// up[2], and stops them: none runs on as an orphan of a pipeline run that
// ended, and the stage records them CANCELED. Before the fix the server
// looked the task definition up before the key: the retry was refused at
// up[0], the stage FAILED with no run, and up[0] and up[1] stayed QUEUED.
func TestPipelineAdvanceRetriedAfterDeregister(t *testing.T) {
	t.Parallel()
	var failed atomic.Bool
	e := startAPIOn(t, t.TempDir(), func(c *config) {
		c.submitFails = func(req *jobs.SubmitRequest) error {
			if st := req.Stage; st != nil && st.Stage == "up" && st.ArrayIndex != nil && *st.ArrayIndex == 2 && !failed.Swap(true) {
				return errors.New("store run: database is locked")
			}
			return nil
		}
	})
	e.waitAll()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(`name: orphans
stages:
- {name: up, taskDefinition: hello, arraySize: 3}
`)
	// The run is stored, its first advance fails: the request says so.
	e.req(e.op, "gantry.api.pipelines.run", `{"name":"orphans"}`)
	runs := e.pipelineRuns("orphans")
	if len(runs) != 1 {
		t.Fatalf("%d runs of orphans, want 1", len(runs))
	}
	pr := &runs[0]
	ctx := context.Background()
	ids := stageRunIDs(t, e.srv, pr.PipelineRunID, "up")
	if len(ids) != 2 || !failed.Load() {
		t.Fatalf("after the failed advance: up's runs %v, want up[0] and up[1]", ids)
	}
	if _, err := e.srv.db.DeregisterTaskDef(ctx, "hello", 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.srv.pipes.dag.Retry(ctx)
	got := e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	up := got.StageState("up")
	if got.Status != jobs.StatusFailed || up.Status != jobs.StatusFailed || len(up.Runs) != 2 {
		t.Fatalf("pipeline run %s, up %s (%q) with %d runs; want FAILED, FAILED with up[0] and up[1]:\n%s",
			got.Status, up.Status, up.Reason, len(up.Runs), dumpRun(got))
	}
	for i, id := range ids {
		var r jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &r)
		if r.Status != jobs.StatusCanceled {
			t.Errorf("up[%d] %s, want CANCELED by its stage's failed start", i, r.Status)
		}
		if ref := up.Runs[i]; ref.RunID != id || ref.Status != jobs.StatusCanceled {
			t.Errorf("up's record %d: %s %s, want %s CANCELED", i, ref.RunID, ref.Status, id)
		}
	}
}

// stageRunIDs lists the runs of a stage of a pipeline run from the store,
// by array index: those an advance that failed submitted, which its
// pipeline run does not record.
func stageRunIDs(t *testing.T, s *Server, prID, stage string) []string {
	t.Helper()
	var ids []string
	for i := range 10 {
		r, err := s.db.RunByKey(context.Background(), fmt.Sprintf("pipeline/%s/%s/%d", prID, stage, i))
		if errors.Is(err, jobs.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	return ids
}
