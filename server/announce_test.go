package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/natstest"
)

// A run's end that the server stored but could not announce (GANTRY_EVENTS
// took nothing on the run's subject) is announced once it can be: the
// report that ended it is not acknowledged meanwhile, comes again, changes
// nothing in the store, and the server announces the stored end, once.
// A server killed between its commit and the announcement's arrival
// leaves the report unacknowledged in the same way, for the next one
// (cmd/gantry's chaos test kills it).
func TestLostEndAnnouncedWhenItsReportComesAgain(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	q := e.queue()
	ctx := context.Background()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var run jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &run)
	id := run.RunID
	waitLast := func(what string, ok func(*jobs.Event) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ev, err := q.LastStatus(ctx, id)
			if err == nil && ok(ev) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last announcement %+v (%v)", what, ev, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLast("QUEUED announced", func(ev *jobs.Event) bool { return ev != nil && ev.Status == jobs.StatusQueued })

	// Cut the run's subject off its stream: announcements fail.
	js := q.JetStream()
	stream, err := js.Stream(ctx, queue.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	cut := cfg
	cut.Subjects = []string{"gantry.events.cut.>"}
	if _, err := js.UpdateStream(ctx, cut); err != nil {
		t.Fatal(err)
	}
	e.exitAttempt(id, 1, 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var r jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &r)
		if r.Status == jobs.StatusSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: %s, want SUCCEEDED in the store", id, r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reports, err := js.Stream(ctx, queue.StreamReports)
	if err != nil {
		t.Fatal(err)
	}
	// The report that ended it is not acknowledged but delivered again
	// (after NATS's own tries of the announcement), while the end stays
	// unannounced.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	natstest.Eventually(t, wctx, "the end's report delivered again", func(ctx context.Context) error {
		info, err := reports.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs == 0 {
			t.Fatal("the end is stored, not announced: its report was acknowledged")
		}
		c, err := reports.Consumer(ctx, "server")
		if err != nil {
			return err
		}
		ci, err := c.Info(ctx)
		if err == nil && ci.NumRedelivered == 0 {
			err = fmt.Errorf("%d reports, none delivered again", info.State.Msgs)
		}
		return err
	})
	if ev, err := q.LastStatus(ctx, id); err != nil || ev == nil || ev.Status != jobs.StatusQueued {
		t.Fatalf("while the subject is cut off: last announcement %+v (%v), want QUEUED", ev, err)
	}

	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitLast("SUCCEEDED announced once the subject is back", func(ev *jobs.Event) bool {
		return ev != nil && ev.Status == jobs.StatusSucceeded && ev.Attempt == 1
	})
	// Its reports go, and the end is announced once.
	natstest.Eventually(t, wctx, "the reports acknowledged", func(ctx context.Context) error {
		info, err := reports.Info(ctx)
		if err == nil && info.State.Msgs != 0 {
			err = fmt.Errorf("%d reports left", info.State.Msgs)
		}
		return err
	})
	statuses := announcedStatuses(t, q, id)
	if n := countStatus(statuses, jobs.StatusSucceeded); n != 1 || statuses[len(statuses)-1] != jobs.StatusSucceeded {
		t.Errorf("announced %v: want one SUCCEEDED, last", statuses)
	}
}

func countStatus(ss []jobs.Status, s jobs.Status) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}
