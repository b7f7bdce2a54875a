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
