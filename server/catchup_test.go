package server

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/storage"
)

// crashingStore is the server's schedule store, whose SetLastFire fails
// at its failAt-th call: a server dying between a fire and its record.
type crashingStore struct {
	scheduleStore
	failAt, calls int
}

func (c *crashingStore) SetLastFire(ctx context.Context, name string, t time.Time) error {
	c.calls++
	if c.calls == c.failAt {
		return errors.New("crashed")
	}
	return c.scheduleStore.SetLastFire(ctx, name, t)
}

// TestRunAllCatchesUpEveryMissedFireAcrossARestart: a daily schedule with
// misfire: runAll, after five days and more without a server, gets one
// run per missed day, each with its own scheduled time and day, though
// the server dies in the middle of the catch-up (after storing the third
// day's run, before recording it) and the next one finishes it: no day
// twice, none passed over. maxActiveRuns: 2 starts the oldest two and
// queues their jobs; the others wait PENDING.
func TestRunAllCatchesUpEveryMissedFireAcrossARestart(t *testing.T) {
	ctx := context.Background()
	nc, q, db := testStack(t)
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	s1 := New(db, q, WithClock(now))
	if _, err := s1.apiRegisterTaskDef(ctx, []byte(helloTaskDef)); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string][]byte{"data": []byte("name: sales\nmaxActiveRuns: 2\nparameters: {day: none}\n" +
		"schedule: {cron: '0 2 * * *', misfire: runAll, dateParameter: day, dateOffsetDays: -1}\n" +
		"stages: [{name: load, taskDefinition: hello, overrides: {containerOverrides: [{name: main, command: ['${day}']}]}}]\n")})
	if _, err := s1.apiPipelineApply(ctx, body); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clock = time.Date(2026, 1, 6, 3, 0, 0, 0, time.UTC)
	mu.Unlock()

	crashing := &crashingStore{scheduleStore: scheduleStore{db}, failAt: 3}
	if _, err := scheduler.NewCron(crashing, pipelineFirer{s1}, scheduler.WithClock(now)).Tick(ctx); err == nil {
		t.Fatal("the crash was not reported")
	}
	runs, err := db.ListPipelineRuns(ctx, storage.PipelineRunFilter{Pipeline: "sales"})
	if err != nil || len(runs) != 3 {
		t.Fatalf("before the restart: %d runs (%v), want 3", len(runs), err)
	}

	s2 := New(db, q, WithClock(now)) // the next start, over the same store and streams
	if _, err := s2.pipes.cron.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.pipes.cron.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	runs, err = db.ListPipelineRuns(ctx, storage.PipelineRunFilter{Pipeline: "sales"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(runs) // oldest first
	var times, days []string
	for _, r := range runs {
		if r.ScheduledTime == nil || r.Trigger != "schedule" {
			t.Fatalf("run %s: scheduled %v, trigger %q", r.PipelineRunID, r.ScheduledTime, r.Trigger)
		}
		times = append(times, r.ScheduledTime.Format("01-02T15"))
		days = append(days, r.Parameters["day"])
	}
	if want := []string{"01-01T02", "01-02T02", "01-03T02", "01-04T02", "01-05T02", "01-06T02"}; !slices.Equal(times, want) {
		t.Fatalf("scheduled times %v, want %v: each missed day once", times, want)
	}
	if want := []string{"2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"}; !slices.Equal(days, want) {
		t.Fatalf("days %v, want %v", days, want)
	}
	for i, r := range runs {
		if want := jobs.StatusRunning; i < 2 && r.Status != want {
			t.Errorf("run %d (%s): %s, want %s", i, times[i], r.Status, want)
		}
		if i >= 2 && (r.Status != jobs.StatusPending || r.StatusReason != "waiting: 2 of 2 active runs of sales (maxActiveRuns)") {
			t.Errorf("run %d (%s): %s %q, want PENDING for maxActiveRuns", i, times[i], r.Status, r.StatusReason)
		}
	}

	// The jobs queued are those of the two running runs, once each.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, queue.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var queued []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		var j jobs.Job
		if err := json.Unmarshal(m.Data, &j); err != nil {
			t.Fatal(err)
		}
		queued = append(queued, j.RunID)
	}
	want := []string{runs[0].Stages[0].Runs[0].RunID, runs[1].Stages[0].Runs[0].RunID}
	if !slices.Equal(queued, want) {
		t.Fatalf("jobs queued for runs %v, want %v (the oldest two days, once each)", queued, want)
	}
}
