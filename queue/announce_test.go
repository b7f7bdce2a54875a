package queue

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// reportOne reports one worker event of run id.
func reportOne(t *testing.T, q *Queue, id string) {
	t.Helper()
	ev := &jobs.Event{RunID: id, Attempt: 1, Seq: 1, Status: jobs.StatusSucceeded, Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}
	if err := q.Report(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// reportsLeft returns how many reports GANTRY_REPORTS holds and how many
// the server's consumer has delivered without their acknowledgement.
func reportsLeft(t *testing.T, ctx context.Context, q *Queue) (msgs uint64, ackPending int) {
	t.Helper()
	s, info := reportsNow(t, ctx, q)
	c, err := s.Consumer(ctx, "server")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, ci.NumAckPending
}

// A report is acknowledged only once the status change announced for it
// is stored: while the stream has not answered the announcement, the
// report stays, unacknowledged, past the held acknowledgement's wait; once
// it answers, the report goes, applied once.
func TestReportAckedOnceItsAnnouncementIsStored(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A stand-in for the stream the announcement goes to, which answers
	// when the test says.
	held := make(chan string, 1)
	sub, err := q.Conn().Subscribe("pubgap.held", func(m *nats.Msg) { held <- m.Reply })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	applied := make(chan *EventBatch, 10)
	go q.ConsumeEvents(ctx, 500, func(b *EventBatch) {
		b.Announced(q.js.PublishMsgAsync(nats.NewMsg("pubgap.held")))
		b.Ack()
		applied <- b
	})
	reportOne(t, q, "run-1")
	b := <-applied
	if got := b.RedeliveredRuns(); len(got) != 0 {
		t.Errorf("first delivery: RedeliveredRuns() = %v, want none", got)
	}
	reply := <-held
	time.Sleep(reportAckHold + 500*time.Millisecond) // past the held acknowledgement's wait
	if msgs, pending := reportsLeft(t, ctx, q); msgs != 1 || pending != 1 {
		t.Fatalf("announcement not stored yet: %d reports in the stream, %d delivered unacknowledged; want 1 and 1", msgs, pending)
	}
	if err := q.Conn().Publish(reply, []byte(`{"stream":"PUBGAP","seq":1}`)); err != nil {
		t.Fatal(err)
	}
	s, _ := reportsNow(t, ctx, q)
	if !waitEmpty(ctx, s) {
		msgs, pending := reportsLeft(t, ctx, q)
		t.Fatalf("announcement stored: %d reports left in the stream, %d unacknowledged; want none", msgs, pending)
	}
	select {
	case b := <-applied:
		t.Errorf("report applied again (%v) though its announcement was stored", b.Events)
	default:
	}
}

// A report whose announcement fails (no stream takes it) is not
// acknowledged but delivered again, and the batch says which runs were
// redelivered; once its announcement is stored, it goes.
func TestReportRedeliveredWhenItsAnnouncementFails(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applied := make(chan []string, 10)
	deliveries := 0
	go q.ConsumeEvents(ctx, 500, func(b *EventBatch) {
		deliveries++
		if deliveries == 1 {
			b.Announced(q.js.PublishMsgAsync(nats.NewMsg("pubgap.nowhere"))) // no stream: fails
		} else if err := b.Settle(ctx); err != nil {
			t.Error(err)
		}
		b.Ack()
		applied <- b.RedeliveredRuns()
	})
	reportOne(t, q, "run-1")
	if got := <-applied; len(got) != 0 {
		t.Errorf("first delivery: RedeliveredRuns() = %v, want none", got)
	}
	select {
	case got := <-applied:
		if !slices.Equal(got, []string{"run-1"}) {
			t.Errorf("second delivery: RedeliveredRuns() = %v, want [run-1]", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a report whose announcement failed was not delivered again")
	}
	s, _ := reportsNow(t, ctx, q)
	if !waitEmpty(ctx, s) {
		msgs, pending := reportsLeft(t, ctx, q)
		t.Fatalf("%d reports left, %d unacknowledged, once applied again with nothing to announce", msgs, pending)
	}
}

// LastStatus reads the server's last announcement on a run's subject:
// none before any, the newest after several, none when the last message
// is a worker's.
func TestLastStatus(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if ev, err := q.LastStatus(ctx, "run-1"); err != nil || ev != nil {
		t.Fatalf("no announcement: LastStatus = %+v, %v; want nil, nil", ev, err)
	}
	for _, st := range []jobs.Status{jobs.StatusQueued, jobs.StatusRunning, jobs.StatusSucceeded} {
		if err := q.PublishEvent(ctx, &jobs.Event{RunID: "run-1", Attempt: 2, Seq: len(st), Status: st, Source: jobs.SourceServer}); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := q.LastStatus(ctx, "run-1")
	if err != nil || ev == nil || ev.Status != jobs.StatusSucceeded || ev.Attempt != 2 {
		t.Fatalf("LastStatus = %+v, %v; want SUCCEEDED at attempt 2", ev, err)
	}
	if err := q.PublishEvent(ctx, &jobs.Event{RunID: "run-2", Attempt: 1, Seq: 1, Status: jobs.StatusStarting, Source: jobs.SourceWorker}); err != nil {
		t.Fatal(err)
	}
	if ev, err := q.LastStatus(ctx, "run-2"); err != nil || ev != nil {
		t.Fatalf("a worker's last message: LastStatus = %+v, %v; want nil, nil", ev, err)
	}
}

// Batches whose announcements the stream never answers are given up on
// reportAnnounceWait after each was handed, not one wait after another:
// five batches handed together are all delivered again within about one
// wait (in turn, the last would wait five, and the acknowledger, its queue
// full, would hold up the applying of every report). Once ConsumeEvents'
// ctx is done, it returns within about reportStopWait.
func TestReportsUnansweredAreGivenUpOnTogether(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A listener that never answers: the announcements' futures never
	// resolve (with nobody listening they would fail at once).
	sub, err := q.Conn().Subscribe("pubgap.unanswered", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	type delivery struct {
		run string
		at  time.Time
	}
	delivered := make(chan delivery, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.ConsumeEvents(ctx, 1, func(b *EventBatch) {
			b.Announced(q.js.PublishMsgAsync(nats.NewMsg("pubgap.unanswered")))
			b.Ack()
			delivered <- delivery{b.Events[0].RunID, time.Now()}
		})
	}()
	runs := []string{"run-1", "run-2", "run-3", "run-4", "run-5"}
	for _, id := range runs {
		reportOne(t, q, id)
	}
	first, again := map[string]time.Time{}, map[string]time.Duration{}
	limit := time.After(time.Duration(len(runs)) * reportAnnounceWait)
	for len(again) < len(runs) {
		select {
		case d := <-delivered:
			if at, ok := first[d.run]; !ok {
				first[d.run] = d.at
			} else if _, ok := again[d.run]; !ok {
				again[d.run] = d.at.Sub(at)
			}
		case <-limit:
			t.Fatalf("after %s, delivered again: %v of %d runs", time.Duration(len(runs))*reportAnnounceWait, again, len(runs))
		}
	}
	for _, id := range runs {
		if again[id] > reportAnnounceWait+reportRetry+5*time.Second {
			t.Errorf("%s delivered again %s after its first delivery; want about %s", id, again[id], reportAnnounceWait+reportRetry)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(reportAnnounceWait):
		t.Fatalf("ConsumeEvents did not return %s after its ctx ended", reportAnnounceWait)
	}
}

// A report not acknowledged is delivered again a second after its first
// delivery, then twice as long each time, up to reportRetryMax: not
// every second for as long as the events stream takes no announcement.
func TestReportRetryDelay(t *testing.T) {
	for n, want := range map[uint64]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		5: 16 * time.Second, 6: reportRetryMax, 100: reportRetryMax,
	} {
		if got := retryDelay(n); got != want {
			t.Errorf("delivered %d times: retryDelay = %s, want %s", n, got, want)
		}
	}
}
