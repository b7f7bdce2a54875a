package server

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// TestScheduleLastRunMovesOnlyWithAFire: schedule ls's lastRun is the
// scheduled time of the latest fire that started a run; the times a
// suspended schedule lets pass and those Forbid skips move its lastFire
// only. A fire finding its run again changes nothing.
func TestScheduleLastRunMovesOnlyWithAFire(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(h, m int) { mu.Lock(); defer mu.Unlock(); clock = time.Date(2026, 1, 1, h, m, 10, 0, time.UTC) }
	hour := func(h int) time.Time { return time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC) }
	s := New(db, q, WithClock(now))
	call := func(f func(context.Context, []byte) (any, error), body string) any {
		t.Helper()
		reply, err := f(ctx, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return reply
	}
	call(s.apiRegisterTaskDef, helloTaskDef)
	body, _ := json.Marshal(map[string][]byte{"data": []byte(
		"name: sales\nschedule: {cron: '0 * * * *', concurrencyPolicy: Forbid}\nstages: [{name: a, taskDefinition: hello}]\n")})
	call(s.apiPipelineApply, string(body))
	tick := func() {
		t.Helper()
		if _, err := s.pipes.cron.Tick(ctx); err != nil {
			t.Fatalf("tick at %s: %v", now(), err)
		}
	}
	want := func(step string, lastFire, lastRun time.Time) {
		t.Helper()
		ss := call(s.apiScheduleList, "").([]ScheduleInfo)
		if len(ss) != 1 {
			t.Fatalf("%s: schedules %+v", step, ss)
		}
		got := ss[0]
		if got.LastFire == nil || !got.LastFire.Equal(lastFire) || got.LastRun == nil || !got.LastRun.Equal(lastRun) {
			t.Fatalf("%s: lastFire %v lastRun %v; want %s and %s", step, got.LastFire, got.LastRun, lastFire, lastRun)
		}
		data, _ := json.Marshal(got)
		var fields map[string]any
		if err := json.Unmarshal(data, &fields); err != nil || fields["lastRun"] == nil || fields["lastFire"] == nil {
			t.Fatalf("%s: schedule JSON %s lacks lastRun or lastFire", step, data)
		}
	}

	if ss := call(s.apiScheduleList, "").([]ScheduleInfo); len(ss) != 1 || ss[0].LastRun != nil {
		t.Fatalf("before the first fire: %+v, want no lastRun", ss)
	}
	set(1, 0)
	tick()
	want("fired at 01:00", hour(1), hour(1))

	call(s.apiScheduleSuspend, `{"name":"sales"}`)
	set(2, 0)
	tick()
	want("suspended at 02:00", hour(2), hour(1))

	// Resumed, Forbid skips 03:00: the 01:00 run, no worker taking its
	// stage, is still active.
	call(s.apiScheduleResume, `{"name":"sales"}`)
	set(3, 0)
	tick()
	want("skipped at 03:00 (Forbid)", hour(3), hour(1))

	// A fire of 01:00 again finds its run and leaves lastRun where it is.
	if _, err := (pipelineFirer{s}).Fire(ctx, "sales", hour(1)); err != nil {
		t.Fatal(err)
	}
	want("01:00 fired again", hour(3), hour(1))
}
