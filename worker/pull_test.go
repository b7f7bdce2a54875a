package worker

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestPullProgressIsThrottled(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := New("w1", "default", &fakeSource{}, nil, &fakeReporter{}, WithClock(func() time.Time { return now }))
	var events []jobs.Event
	pulling := w.pullReporter(func(ev jobs.Event) { events = append(events, ev) })
	step := func(d time.Duration, p jobs.PullProgress) { now = now.Add(d); pulling(p) }
	step(0, jobs.PullProgress{Image: "a", Layers: 2})                                               // first: published
	step(300*time.Millisecond, jobs.PullProgress{Image: "a", Layers: 2, Current: 10})               // too soon
	step(800*time.Millisecond, jobs.PullProgress{Image: "a", Layers: 2, Current: 20})               // a second on: published
	step(100*time.Millisecond, jobs.PullProgress{Image: "a", Layers: 2, Current: 30})               // too soon
	step(100*time.Millisecond, jobs.PullProgress{Image: "a", Layers: 2, LayersDone: 2, Done: true}) // the end: published
	step(10*time.Millisecond, jobs.PullProgress{Image: "b", Layers: 1})                             // another image: published
	var currents []int64
	for _, ev := range events {
		if ev.Status != jobs.StatusStarting || ev.Pull == nil || ev.StatusReason != ev.Pull.String() {
			t.Fatalf("event %+v", ev)
		}
		currents = append(currents, ev.Pull.Current)
	}
	if len(events) != 4 || currents[1] != 20 || !events[2].Pull.Done || events[3].Pull.Image != "b" {
		t.Fatalf("published %d: %+v", len(events), events)
	}
}

func TestPullProgressIsReportedBeforeRunning(t *testing.T) {
	rep := &fakeReporter{}
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) { return exited(0), nil })
	pulling := func(ctx context.Context, t *Task, logs LogSink) (*Result, error) {
		t.Pulling(jobs.PullProgress{Image: "img", Layers: 1})
		t.Pulling(jobs.PullProgress{Image: "img", Layers: 1, LayersDone: 1, Done: true})
		return rt.Run(ctx, t, logs)
	}
	runOne(t, job("r1"), 1, runtimeFunc(pulling), rep, nil)
	var got []string
	for _, ev := range rep.events {
		s := string(ev.Status)
		if ev.Pull != nil {
			s += ":" + ev.StatusReason
		}
		got = append(got, s)
	}
	want := []string{"STARTING", "STARTING:pulling image img: 0 of 1 layers", "STARTING:pulled image img", "RUNNING", "SUCCEEDED"}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %q, want %q", got, want)
		}
	}
}

type runtimeFunc func(ctx context.Context, t *Task, logs LogSink) (*Result, error)

func (f runtimeFunc) Run(ctx context.Context, t *Task, logs LogSink) (*Result, error) {
	return f(ctx, t, logs)
}
