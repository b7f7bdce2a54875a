package client_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

const waitTaskDef = `{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`

// TestEventsAndWaitWithoutDirectGet: on a NATS whose events stream
// answers no direct get (a server before 2.11, or AllowDirect off), a
// run's events are followed through an ordered consumer (queue's
// watchRunConsumer): Events delivers them in order, and Wait sees the
// run's end from them, its polls of the server being never.
func TestEventsAndWaitWithoutDirectGet(t *testing.T) {
	nc, stop := startGantry()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	natstest.DirectGetsOff(t, ctx, js, queue.StreamEvents)
	c, _ := client.New(nc)
	client.SetWaitHooks(t.Cleanup, time.Hour, func(runID string) {
		if _, err := c.Stop(ctx, runID, "stopped by the test"); err != nil {
			t.Error(err)
		}
	})
	r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(waitTaskDef)}) // no worker: it stays queued
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.Events(ctx, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	var seen []jobs.Status
	got, err := c.WaitFunc(wctx, r.RunID, func(ev jobs.Event) { seen = append(seen, ev.Status) })
	if err != nil || got.Status != jobs.StatusCanceled {
		t.Fatalf("Wait: %v %+v, want the run CANCELED, seen in its events", err, got)
	}
	if want := []jobs.Status{jobs.StatusQueued, jobs.StatusCanceled}; !slices.Equal(seen, want) {
		t.Errorf("Wait saw %v, want %v", seen, want)
	}
	var fromEvents []jobs.Status
	for ev := range events {
		if ev.RunID != r.RunID {
			t.Fatalf("an event of run %s among those of %s", ev.RunID, r.RunID)
		}
		if ev.Source == jobs.SourceServer {
			fromEvents = append(fromEvents, ev.Status)
		}
		if ev.Status.Terminal() {
			break
		}
	}
	if want := []jobs.Status{jobs.StatusQueued, jobs.StatusCanceled}; !slices.Equal(fromEvents, want) {
		t.Errorf("Events delivered %v, want %v", fromEvents, want)
	}
}

// TestWaitWhenItCannotFollowTheEvents: with no events stream to read
// (deleted: neither a direct get nor a consumer can follow the run), the
// watch ends at once and Wait finds the run's end by asking the server.
func TestWaitWhenItCannotFollowTheEvents(t *testing.T) {
	nc, stop := startGantry()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _ := client.New(nc)
	r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(waitTaskDef)})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, queue.StreamEvents); err != nil {
		t.Fatal(err)
	}
	events, err := c.Events(ctx, r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("an event with no events stream: %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("the watch of a run with no events stream did not end")
	}
	client.SetWaitHooks(t.Cleanup, 20*time.Millisecond, func(runID string) {
		if _, err := c.Stop(ctx, runID, "stopped by the test"); err != nil {
			t.Error(err)
		}
	})
	var seen []jobs.Status
	got, err := c.WaitFunc(ctx, r.RunID, func(ev jobs.Event) { seen = append(seen, ev.Status) })
	if err != nil || got.Status != jobs.StatusCanceled || got.StoppedReason != "stopped by the test" {
		t.Fatalf("Wait: %v %+v, want the run CANCELED", err, got)
	}
	if len(seen) != 0 {
		t.Errorf("Wait saw events %v with no events stream", seen)
	}
}
