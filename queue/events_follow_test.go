package queue

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/natstest"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
)

// publishEvents stores a server event per run id and returns each one's
// stored time.
func publishEvents(t *testing.T, ctx context.Context, q *Queue, ids ...string) []time.Time {
	t.Helper()
	var at []time.Time
	for _, id := range ids {
		ack, err := q.js.PublishMsg(ctx, eventMsg(&jobs.Event{RunID: id, Attempt: 1, Status: jobs.StatusQueued, Source: jobs.SourceServer}))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := q.js.Stream(ctx, StreamEvents)
		m, err := s.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		at = append(at, m.Time)
	}
	return at
}

// readEvents follows with o until n events came or the follow ended, and
// returns their run ids.
func readEvents(t *testing.T, ctx context.Context, q *Queue, o EventsQuery, n int) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ids []string
	err := q.FollowEvents(ctx, o, func(data []byte, _ nats.Header) error {
		var ev jobs.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return err
		}
		ids = append(ids, ev.RunID)
		if len(ids) == n {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Errorf("FollowEvents(%+v): %v", o, err) // not Fatal: called from goroutines too
	}
	return ids
}

// TestFollowEventsFromATime: a read from a time starts at the first event
// stored then, in order, on its filter only; with Done closed it ends
// once it read what is stored.
func TestFollowEventsFromATime(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at := publishEvents(t, ctx, q, "a", "b", "a", "c")
	done := make(chan struct{})
	close(done)
	for _, c := range []struct {
		o    EventsQuery
		want []string
	}{
		{EventsQuery{Since: at[0], Done: done}, []string{"a", "b", "a", "c"}},
		{EventsQuery{Since: at[1], Done: done}, []string{"b", "a", "c"}},
		{EventsQuery{Since: at[1], Filter: EventSubject("a"), Done: done}, []string{"a"}},
		{EventsQuery{Since: at[3].Add(time.Second), Done: done}, nil},
		{EventsQuery{Done: done}, nil}, // from now: none
	} {
		if got := readEvents(t, ctx, q, c.o, -1); !slices.Equal(got, c.want) {
			t.Errorf("FollowEvents(since %v, filter %q): %v, want %v", c.o.Since, c.o.Filter, got, c.want)
		}
	}
}

// TestFollowEventsFromNow: without Since only events stored after the
// read started come.
func TestFollowEventsFromNow(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publishEvents(t, ctx, q, "old1", "old2")
	got := make(chan []string, 1)
	go func() { got <- readEvents(t, ctx, q, EventsQuery{}, 1) }()
	// The read's start is not seen from here: publish until one comes.
	for {
		publishEvents(t, ctx, q, "new")
		select {
		case ids := <-got:
			if !slices.Equal(ids, []string{"new"}) {
				t.Errorf("FollowEvents from now: %v, want only new", ids)
			}
			return
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("FollowEvents from now: no event")
		}
	}
}

// TestFollowEventsWithoutDirectGet: on a stream without direct get the
// read goes through an ordered consumer, from the same time.
func TestFollowEventsWithoutDirectGet(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	natstest.DirectGetsOff(t, ctx, q.js, StreamEvents)
	at := publishEvents(t, ctx, q, "a", "b", "c")
	if got := readEvents(t, ctx, q, EventsQuery{Since: at[1]}, 2); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("FollowEvents through a consumer from the second event: %v, want [b c]", got)
	}
	// A caller's error ends it, as is.
	stop := errors.New("stop")
	if err := q.FollowEvents(ctx, EventsQuery{Since: at[0]}, func([]byte, nats.Header) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("FollowEvents through a consumer, fn failing: %v", err)
	}
}
