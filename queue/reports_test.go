package queue

import (
	"context"
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
	s, err := q.JetStream().Stream(ctx, StreamReports)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 && !waitEmpty(ctx, s) {
		t.Errorf("%d reports left in %s after they were applied", info.State.Msgs, StreamReports)
	}
	if int(info.State.LastSeq) >= runs*perRun {
		t.Errorf("%d report messages for %d events: not batched", info.State.LastSeq, runs*perRun)
	}
	t.Logf("%d events in %d report messages, applied in %d batches", runs*perRun, info.State.LastSeq, batches)
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
