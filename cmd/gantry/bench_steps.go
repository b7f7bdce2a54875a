package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// rawRunSteps is a second baseline for the control plane: the NATS
// messages of a run and nothing else, through raw nats.go on a fresh
// embedded server. Per run, as gantry does it:
//
//   - a client's request and the reply (gantry.api.runs.submit);
//   - the QUEUED status stored on the run's own subject (asynchronously);
//   - the job stored in a work queue with a message id, waited for;
//   - a worker pulls it and creates its claim (a stop while queued is
//     in the claim: worker.CancelClaim);
//   - the final status stored on the run's subject;
//   - the job acked and the ack confirmed (the claim is marked done only
//     when an ack fails: a job that left the queue says its attempt ended).
//
// What gantry adds to this — its SQLite writes, JSON of runs and events,
// the report that carries the worker's events to the server, placement,
// logs and the logic between — is what the ratio against this baseline
// measures. Concurrency is the harness's: benchSubmitters clients, 256
// slots.
// It returns runs/s and the process's CPU time per run.
func rawRunSteps(ctx context.Context, n, jobSize int) (float64, time.Duration, error) {
	ns, stop, err := freshServer("gantry-bench-steps")
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	// As in the gantry run: server and worker in-process, clients over TCP.
	inner, err := queue.Dial(ctx, queue.ConnOptions{URL: ns.ClientURL(), Name: "steps-roles", InProcess: ns})
	if err != nil {
		return 0, 0, err
	}
	defer inner.Close()
	outer, err := nats.Connect(ns.ClientURL(), nats.Name("steps-clients"))
	if err != nil {
		return 0, 0, err
	}
	defer outer.Close()
	js, err := jetstream.New(inner)
	if err != nil {
		return 0, 0, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STEPS_JOBS", Subjects: []string{"steps.jobs.>"},
		Retention: jetstream.WorkQueuePolicy, Duplicates: queue.JobsDuplicateWindow}); err != nil {
		return 0, 0, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STEPS_EVENTS", Subjects: []string{"steps.events.>"},
		MaxAge: 7 * 24 * time.Hour}); err != nil {
		return 0, 0, err
	}
	claims, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "steps_claims", TTL: 7 * 24 * time.Hour})
	if err != nil {
		return 0, 0, err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "STEPS_JOBS", jetstream.ConsumerConfig{Durable: "worker",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 20000})
	if err != nil {
		return 0, 0, err
	}
	job := []byte(strings.Repeat("j", jobSize))
	event := []byte(strings.Repeat("e", 200))
	claim := []byte(strings.Repeat("c", 100))

	// The "server": answers submissions.
	var nextID atomic.Int64
	svc, err := inner.Subscribe("steps.api.submit", func(m *nats.Msg) {
		go func() {
			id := strconv.FormatInt(nextID.Add(1), 10)
			if _, err := js.PublishAsync("steps.events."+id, event, jetstream.WithStallWait(time.Minute)); err != nil {
				_ = m.Respond([]byte("error"))
				return
			}
			if _, err := js.Publish(ctx, "steps.jobs."+id, job, jetstream.WithMsgID(id+"/1")); err != nil {
				_ = m.Respond([]byte("error"))
				return
			}
			_ = m.Respond([]byte(id))
		}()
	})
	if err != nil {
		return 0, 0, err
	}
	defer svc.Unsubscribe()
	// The NATS server has the subscription once it answers a flush: the
	// clients ask on another connection, which would otherwise race it
	// and could find no responder (a CI run under -race did).
	if err := inner.Flush(); err != nil {
		return 0, 0, err
	}

	// The worker: 256 slots.
	slots := make(chan struct{}, 256)
	var workErr atomic.Value
	cc, err := cons.Consume(func(m jetstream.Msg) {
		slots <- struct{}{}
		go func() {
			defer func() { <-slots }()
			id := strings.TrimPrefix(m.Subject(), "steps.jobs.")
			if err := runSteps(ctx, js, claims, m, id, event, claim); err != nil {
				workErr.Store(err)
			}
		}()
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return 0, 0, err
	}
	defer cc.Stop()

	// The clients: submit, and follow the ends.
	var ended atomic.Int64
	finished := make(chan struct{})
	sub, err := outer.Subscribe("steps.events.*", func(m *nats.Msg) {
		if m.Header.Get("Steps-End") != "" && ended.Add(1) == int64(n) {
			close(finished)
		}
	})
	if err != nil {
		return 0, 0, err
	}
	defer sub.Unsubscribe()
	if err := outer.Flush(); err != nil {
		return 0, 0, err
	}
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	var next atomic.Int64
	var submitErr atomic.Value
	for range benchSubmitters {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				r, err := outer.RequestWithContext(ctx, "steps.api.submit", []byte(`{"taskDefinition":"bench"}`))
				if err == nil && string(r.Data) == "error" {
					err = fmt.Errorf("the submit responder failed")
				}
				if err != nil {
					submitErr.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := submitErr.Load().(error); err != nil {
		return 0, 0, err
	}
	select {
	case <-finished:
	case <-time.After(10 * time.Minute):
		if err, _ := workErr.Load().(error); err != nil {
			return 0, 0, err
		}
		return 0, 0, fmt.Errorf("only %d of %d runs ended within 10 minutes", ended.Load(), n)
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	return float64(n) / time.Since(start).Seconds(), (cpuTime() - cpu0) / time.Duration(n), nil
}

// runSteps is the worker's part of one run.
func runSteps(ctx context.Context, js jetstream.JetStream, claims jetstream.KeyValue, m jetstream.Msg,
	id string, event, claim []byte) error {
	if _, err := claims.Create(ctx, id, claim); err != nil {
		return err
	}
	end := nats.NewMsg("steps.events." + id)
	end.Data = event
	end.Header.Set("Steps-End", "1")
	if _, err := js.PublishMsgAsync(end, jetstream.WithStallWait(time.Minute)); err != nil {
		return err
	}
	return m.DoubleAck(ctx)
}
