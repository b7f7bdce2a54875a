package queue

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/rs/zerolog"
)

// Each loop below is set up once, on a durable consumer; an operator's
// "nats consumer rm", or a NATS cluster losing the consumer, deletes it
// under the loop. A message published after that must still be taken:
// the loop makes the consumer again.

// deleteConsumer deletes a durable consumer as an operator would, once it
// exists.
func deleteConsumer(t *testing.T, q *Queue, stream, name string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := q.js.DeleteConsumer(ctx, stream, name)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delete consumer %s of %s: %v", name, stream, err)
		}
	}
}

func TestConsumeEventsSurvivesItsConsumerDeleted(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 16)
	errc := make(chan error, 1)
	go func() {
		errc <- q.ConsumeEvents(ctx, 10, func(b *EventBatch) {
			for _, ev := range b.Events {
				got <- ev.RunID
			}
			b.Ack()
		})
	}()
	report := func(run string) {
		t.Helper()
		ev := &jobs.Event{RunID: run, Attempt: 1, Seq: 1, Status: jobs.StatusRunning,
			Source: jobs.SourceWorker, Worker: "w1", Time: time.Now().UTC()}
		if err := q.Report(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	report("before")
	expectTaken(t, got, errc, "before")
	deleteConsumer(t, q, StreamReports, "server")
	report("after")
	expectTaken(t, got, errc, "after")
}

func TestConsumeSubmissionMsgsSurvivesItsConsumerDeleted(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 16)
	errc := make(chan error, 1)
	go func() {
		errc <- q.ConsumeSubmissionMsgs(ctx, func(s Submission) error {
			got <- string(s.Data)
			return nil
		})
	}()
	submit := func(data string) {
		t.Helper()
		if _, err := q.js.Publish(ctx, SubmitSubject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	submit("before")
	expectTaken(t, got, errc, "before")
	deleteConsumer(t, q, StreamSubmit, "server")
	submit("after")
	expectTaken(t, got, errc, "after")
}

// TestSubmissionsNotTakenAreGivenBackAtStop: once ConsumeSubmissionMsgs'
// ctx ends, the durable submissions its subscription had received and not
// handed to handle go to the next server at once. Before, they waited out
// the consumer's 30 s ack wait: a run submitted just before a restart was
// made half a minute after it.
func TestSubmissionsNotTakenAreGivenBackAtStop(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	subs := []string{"s1", "s2", "s3"}
	for _, data := range subs {
		if _, err := q.js.Publish(ctx, SubmitSubject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	delivered := func() (int, error) { // delivered and not acknowledged
		c, err := q.js.Consumer(ctx, StreamSubmit, "server")
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
	taken := make(chan string, 10)
	done := make(chan struct{})
	first := true
	go func() {
		defer close(done)
		_ = q.ConsumeSubmissionMsgs(stop, func(s Submission) error {
			taken <- string(s.Data)
			if !first {
				return nil
			}
			first = false
			// The server stops while it takes the first, every
			// submission delivered to it, and is done with it only
			// once the consumption ended (the others are held in the
			// subscription meanwhile).
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if n, err := delivered(); err == nil && n == len(subs) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("not every one of %d submissions delivered within 10s", len(subs))
					break
				}
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
			return nil
		})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("ConsumeSubmissionMsgs did not return after its ctx ended")
	}
	next, stopNext := context.WithCancel(ctx)
	defer stopNext()
	go q.ConsumeSubmissionMsgs(next, func(s Submission) error {
		taken <- string(s.Data)
		return nil
	})
	seen := map[string]bool{}
	for len(seen) < len(subs) {
		select {
		case data := <-taken:
			seen[data] = true
		case <-time.After(10 * time.Second): // a third of the ack wait
			t.Fatalf("taken %v of %v within 10s: the others wait out the ack wait", seen, subs)
		}
	}
}

func TestJobsSurviveTheirConsumersDeleted(t *testing.T) {
	for _, tc := range []struct {
		name, consumer, worker string // worker: whom the job is aimed at
	}{
		{"cluster", "cluster_etl", ""},
		{"own", "worker_w1", "w1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, batch := range []bool{false, true} {
				q := newQueue(t)
				var logs bytes.Buffer
				q.cfg.log = zerolog.New(&logs)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cons, err := q.Jobs(ctx, "etl", "w1")
				if err != nil {
					t.Fatal(err)
				}
				take := func() (string, error) {
					if batch {
						ds, err := cons.NextBatch(ctx, 4)
						if err != nil {
							return "", err
						}
						_ = ds[0].Ack(ctx)
						return ds[0].Job().RunID, nil
					}
					d, err := cons.Next(ctx)
					if err != nil {
						return "", err
					}
					_ = d.Ack(ctx)
					return d.Job().RunID, nil
				}
				deleteConsumer(t, q, StreamJobs, tc.consumer)
				if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "after", Attempt: 1, Cluster: "etl", Worker: tc.worker}); err != nil {
					t.Fatal(err)
				}
				if run, err := take(); run != "after" {
					t.Fatalf("batch=%v: the job published after the consumer was deleted was not taken: %q %v", batch, run, err)
				}
				if !strings.Contains(logs.String(), `"level":"warn"`) || !strings.Contains(logs.String(), tc.consumer) {
					t.Errorf("batch=%v: no warning of the deleted consumer: %s", batch, logs.String())
				}
			}
		})
	}
}

// expectTaken waits for want on got, failing if the loop ends or nothing
// comes.
func expectTaken(t *testing.T, got <-chan string, errc <-chan error, want string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case s := <-got:
			if s == want {
				return
			}
		case err := <-errc:
			t.Fatalf("the loop ended before taking %q: %v", want, err)
		case <-timeout:
			t.Fatalf("%q was not taken: the loop stopped silently", want)
		}
	}
}
