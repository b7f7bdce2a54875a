package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReportsReachTheServerBatched: events reported by many goroutines at
// once all reach the server's consumer, each once, in fewer messages than
// events, and a goroutine's events keep their order; the server's own
// status changes on the events subject are skipped; applied reports leave
// the work-queue stream.
func TestReportsReachTheServerBatched(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const runs, perRun = 200, 3
	var (
		mu      sync.Mutex
		got     = map[string][]int{} // run → seqs in arrival order
		batches int
		total   int
		done    = make(chan struct{})
	)
	go q.ConsumeEvents(ctx, 500, func(b *EventBatch) {
		mu.Lock()
		for _, ev := range b.Events {
			got[ev.RunID] = append(got[ev.RunID], ev.Seq)
			total++
		}
		if len(b.Events) > 0 {
			batches++
		}
		if total == runs*perRun && len(b.Events) > 0 { // a batch may be empty
			close(done)
		}
		mu.Unlock()
		b.Ack()
	})
	// A status change the server published: not for the server to apply.
	if _, err := q.PublishEventAsync(&jobs.Event{RunID: "server-only", Status: jobs.StatusQueued, Source: jobs.SourceServer}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			for seq := 1; seq <= perRun; seq++ {
				ev := &jobs.Event{RunID: fmt.Sprintf("run-%03d", i), Attempt: 1, Seq: seq, Status: jobs.StatusRunning,
					Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}
				if err := q.Report(ctx, ev); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d events reached the server", total, runs*perRun)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := got["server-only"]; ok {
		t.Error("the server's own status change was handed to it")
	}
	for run, seqs := range got {
		if len(seqs) != perRun || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 {
			t.Errorf("run %s: seqs %v", run, seqs)
		}
	}
	s, info := reportsNow(t, ctx, q)
	if info.State.Msgs != 0 && !waitEmpty(ctx, s) {
		t.Errorf("%d reports left in %s after they were applied", info.State.Msgs, StreamReports)
	}
	if int(info.State.LastSeq) >= runs*perRun {
		t.Errorf("%d report messages for %d events: not batched", info.State.LastSeq, runs*perRun)
	}
	t.Logf("%d events in %d report messages, applied in %d batches", runs*perRun, info.State.LastSeq, batches)
}

// reportsNow returns GANTRY_REPORTS and its state now.
func reportsNow(t *testing.T, ctx context.Context, q *Queue) (jetstream.Stream, *jetstream.StreamInfo) {
	t.Helper()
	return streamNow(t, ctx, q, StreamReports)
}

// streamNow returns one of gantry's streams and its state now.
func streamNow(t *testing.T, ctx context.Context, q *Queue, name string) (jetstream.Stream, *jetstream.StreamInfo) {
	t.Helper()
	s, err := q.JetStream().Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, info
}

func waitEmpty(ctx context.Context, s jetstream.Stream) bool {
	for range 50 {
		if info, err := s.Info(ctx); err == nil && info.State.Msgs == 0 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestReportWithoutItsStreamFails: a worker whose NATS has no
// GANTRY_REPORTS (no server ever started there) gets an error naming the
// event, not a hang, and so retries as for any failed publish.
func TestReportWithoutItsStreamFails(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if err := q.JetStream().DeleteStream(ctx, StreamReports); err != nil {
		t.Fatal(err)
	}
	ev := &jobs.Event{RunID: "r1", Attempt: 1, Seq: 1, Status: jobs.StatusStarting, Source: jobs.SourceWorker}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	err := q.Report(cctx, ev)
	if err == nil || !strings.Contains(err.Error(), "report event r1/1/1") {
		t.Fatalf("got %v", err)
	}
}

// TestEventsReportedTogetherArriveTogether: the events of one Report call
// reach the server in one batch, in order, even while other goroutines
// report at the same time.
func TestEventsReportedTogetherArriveTogether(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const runs = 100
	var (
		mu    sync.Mutex
		split []string
		seen  int
		done  = make(chan struct{})
	)
	go q.ConsumeEvents(ctx, 500, func(b *EventBatch) {
		mu.Lock()
		defer mu.Unlock()
		byRun := map[string][]int{}
		for _, ev := range b.Events {
			byRun[ev.RunID] = append(byRun[ev.RunID], ev.Seq)
		}
		for run, seqs := range byRun {
			if fmt.Sprint(seqs) != "[1 2 3]" {
				split = append(split, fmt.Sprintf("%s: %v", run, seqs))
			}
			if seen++; seen == runs {
				close(done)
			}
		}
		b.Ack()
	})
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			var evs []*jobs.Event
			for seq, st := range []jobs.Status{jobs.StatusStarting, jobs.StatusRunning, jobs.StatusSucceeded} {
				evs = append(evs, &jobs.Event{RunID: fmt.Sprintf("run-%03d", i), Attempt: 1, Seq: seq + 1, Status: st,
					Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()})
			}
			if err := q.Report(ctx, evs...); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not every run's events reached the server")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(split) > 0 {
		t.Fatalf("events of one report split or out of order: %v", split)
	}
}

// TestConsumeEventsRemovesTheOldEventsConsumer: the durable consumer
// through which earlier servers read GANTRY_EVENTS is deleted, so that it
// does not hold every status change since as pending.
func TestConsumeEventsRemovesTheOldEventsConsumer(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := q.JetStream().CreateOrUpdateConsumer(ctx, StreamEvents, jetstream.ConsumerConfig{
		Durable: "server", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	go q.ConsumeEvents(ctx, 10, func(b *EventBatch) { b.Ack() })
	for range 100 {
		if _, err := q.JetStream().Consumer(ctx, StreamEvents, "server"); errors.Is(err, jetstream.ErrConsumerNotFound) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the old consumer of GANTRY_EVENTS is still there")
}

// TestNewestReportAckIsHeld: the newest applied report stays in the work
// queue until the next is applied or the reports stop for a second, so
// that a busy stream is not emptied (and its block file replaced) after
// every report; it is then removed, not delivered again.
func TestNewestReportAckIsHeld(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var handled sync.WaitGroup
	handled.Add(1)
	var once sync.Once
	deliveries := 0
	var mu sync.Mutex
	go q.ConsumeEvents(ctx, 10, func(b *EventBatch) {
		mu.Lock()
		deliveries += len(b.msgs)
		mu.Unlock()
		b.Ack()
		once.Do(handled.Done)
	})
	ev := &jobs.Event{RunID: "r1", Attempt: 1, Seq: 1, Status: jobs.StatusStarting, Source: jobs.SourceWorker}
	if err := q.Report(ctx, ev); err != nil {
		t.Fatal(err)
	}
	handled.Wait()
	s, info := reportsNow(t, ctx, q)
	if info.State.Msgs != 1 {
		t.Fatalf("right after it was applied, the stream holds %d reports, want 1", info.State.Msgs)
	}
	if !waitEmpty(ctx, s) {
		t.Fatal("the held report was never acknowledged")
	}
	mu.Lock()
	defer mu.Unlock()
	if deliveries != 1 {
		t.Fatalf("the report was delivered %d times", deliveries)
	}
}

// TestReportsNotAppliedAreGivenBackAtStop: once ConsumeEvents' ctx ends,
// the reports it received and did not apply (a batch the server did not
// acknowledge, its store failing as it stops, and those waiting behind it
// in the consumer's buffers) are given back to JetStream at once, and the
// next server gets them as it starts. Before, they waited out the
// consumer's 30 s ack wait: a stage run that ended just before a restart
// stayed RUNNING as long, and its pipeline run's next stages unstarted.
// (A report given back stays counted pending on the consumer until it is
// delivered again: only the next consumer's deliveries tell.)
func TestReportsNotAppliedAreGivenBackAtStop(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	runs := []string{"run-1", "run-2", "run-3"}
	for _, id := range runs {
		reportOne(t, q, id)
	}
	s, info := reportsNow(t, ctx, q)
	delivered := func() (int, error) { // delivered and not acknowledged
		c, err := s.Consumer(ctx, "server")
		if err != nil {
			return 0, err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return 0, err
		}
		return ci.NumAckPending, nil
	}
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.ConsumeEvents(stop, 1, func(b *EventBatch) {
			// The server stops while it applies the first batch, every
			// report delivered to it; the batch is not acknowledged.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if n, err := delivered(); err == nil && uint64(n) == info.State.Msgs {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("not every one of %d reports delivered within 10s", info.State.Msgs)
					break
				}
			}
			cancel()
		})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ConsumeEvents did not return after its ctx ended")
	}
	next, stopNext := context.WithCancel(ctx)
	defer stopNext()
	got := make(chan string, 10)
	go q.ConsumeEvents(next, 500, func(b *EventBatch) {
		for _, ev := range b.Events {
			got <- ev.RunID
		}
		b.Ack()
	})
	seen := map[string]bool{}
	for len(seen) < len(runs) {
		select {
		case id := <-got:
			seen[id] = true
		case <-time.After(10 * time.Second): // a third of the ack wait
			t.Fatalf("the next consumer got %v of %v within 10s: the others wait out the ack wait", seen, runs)
		}
	}
}

// TestReportSaysHowManyEvents: a report tells the server how many events
// it carries, and the server decodes them into a slice of that size.
func TestReportSaysHowManyEvents(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	var evs []*jobs.Event
	for seq := 1; seq <= 3; seq++ {
		evs = append(evs, &jobs.Event{RunID: "r1", Attempt: 1, Seq: seq, Status: jobs.StatusRunning, Source: jobs.SourceWorker})
	}
	if err := q.Report(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	s, info := reportsNow(t, ctx, q) // no server consumes it here: it stays
	m, err := s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(reportEventsHeader); got != "3" {
		t.Fatalf("%s header %q, want 3", reportEventsHeader, got)
	}
	got, err := decodeReport(m.Data, m.Header)
	if err != nil || len(got) != 3 || cap(got) != 3 {
		t.Fatalf("decoded %d events (capacity %d, err %v), want 3 in a slice of 3", len(got), cap(got), err)
	}
}
