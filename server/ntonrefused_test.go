package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// refusedYAML: down pairs with up child by child; notify tells, by its
// rule, whether something upstream of it failed.
const refusedYAML = `name: refused
stages:
- {name: up, taskDefinition: hello, arraySize: 3}
- {name: down, taskDefinition: bye, arraySize: 3, dependsOn: [{stage: up, type: N_TO_N}]}
- {name: notify, taskDefinition: bye, dependsOn: [down], triggerRule: oneFailed}
`

// TestPipelineNToNUpstreamRefusedMidSubmission: a stage whose task
// definition is deregistered while its children are being submitted
// (here once up[1] is stored) fails as it starts and stops the children
// it had submitted; the N_TO_N stage after it is SKIPPED for an upstream
// failure, as it is when the first child is refused, and the oneFailed
// stage after that runs. Before the fix, down started, paired its first
// children with up's stopped ones and failed at the third, which had
// none ("child 2 waits for up[2], which has no run"), stopping its own.
func TestPipelineNToNUpstreamRefusedMidSubmission(t *testing.T) {
	t.Parallel()
	var (
		srv  atomic.Pointer[Server]
		once sync.Once
	)
	e := startAPIOn(t, t.TempDir(), func(c *config) {
		c.runStored = func(id string) {
			s := srv.Load()
			if s == nil {
				return
			}
			r, err := s.db.GetRun(context.Background(), id)
			if err != nil {
				t.Error(err)
				return
			}
			if st := r.Spec.Stage; st != nil && st.Stage == "up" && st.ArrayIndex != nil && *st.ArrayIndex == 1 {
				once.Do(func() {
					if _, err := s.db.DeregisterTaskDef(context.Background(), "hello", 1, time.Now()); err != nil {
						t.Error(err)
					}
				})
			}
		}
	})
	srv.Store(e.srv)
	e.waitAll()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.ok("gantry.api.taskdefs.register", strings.Replace(helloTaskDef, `"hello"`, `"bye"`, 1), nil)
	e.apply(refusedYAML)
	pr := e.runPipeline("refused", "")
	got := e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool {
		return pr.StageState("notify").Status == jobs.StatusRunning
	})
	up, down := got.StageState("up"), got.StageState("down")
	if up.Status != jobs.StatusFailed || len(up.Runs) != 2 || !strings.Contains(up.Reason, "hello") {
		t.Errorf("up %s (%q) with %d runs, want FAILED naming hello, with the 2 runs it submitted:\n%s", up.Status, up.Reason, len(up.Runs), dumpRun(got))
	}
	want := "dependency up ended FAILED before all its children were submitted (2 submitted, then stopped); N_TO_N needs children of it that ran"
	if down.Status != jobs.StatusSkipped || down.Reason != want || len(down.Runs) != 0 {
		t.Errorf("down %s (%q) with %d runs, want SKIPPED (%q), none:\n%s", down.Status, down.Reason, len(down.Runs), want, dumpRun(got))
	}
	for i, ref := range up.Runs {
		var r jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, ref.RunID), &r)
		if r.Status != jobs.StatusCanceled {
			t.Errorf("up[%d] %s (%q), want CANCELED by its stage's failed start", i, r.Status, r.StoppedReason)
		}
	}
}
