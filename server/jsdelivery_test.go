package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// A user who may only submit and follow runs may make no JetStream
// consumer: NATS does not check where a consumer delivers, so one could
// copy a run's stored events into any subject (gantry's API, the claims
// and cancel buckets, the job queue). Followers read by direct get.
func TestSubmitterMayMakeNoConsumer(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var r jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &r)

	for _, stream := range []string{"GANTRY_EVENTS", "GANTRY_LOGS"} {
		// Every way JetStream's API takes a consumer: ephemeral, named,
		// named with a filter, durable (older clients).
		for _, subject := range []string{
			"$JS.API.CONSUMER.CREATE." + stream,
			"$JS.API.CONSUMER.CREATE." + stream + ".replay",
			"$JS.API.CONSUMER.CREATE." + stream + ".replay.gantry.events.runs." + r.RunID,
			"$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".replay",
		} {
			req := fmt.Sprintf(`{"stream_name":%q,"config":{"name":"replay","durable_name":"replay","deliver_subject":"$KV.gantry_canceled.%s","ack_policy":"none","deliver_policy":"all"}}`, stream, r.RunID)
			if _, err := e.sub.Request(subject, []byte(req), 500*time.Millisecond); err == nil {
				t.Errorf("the submitter's %s was answered", subject)
				continue
			}
			// NATS refuses the subject; the violation comes to the
			// connection's error handler, the request times out.
			if !refused(t, e.subErrs, subject) {
				t.Errorf("%s: no permissions violation", subject)
			}
		}
		opjs, err := e.op.JetStream()
		if err != nil {
			t.Fatal(err)
		}
		for name := range opjs.ConsumerNames(stream) {
			t.Errorf("stream %s has consumer %s", stream, name)
		}
	}
}

// refused reports whether a permissions violation naming subject (a
// prefix of it) comes from the connection within 10 s: it comes at once,
// but a loaded machine may hand it to the error handler late.
func refused(t *testing.T, errs <-chan error, subject string) bool {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), strconv.Quote(subject)) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// Someone who may make consumers (the operator) can still have a run's
// stored events delivered to gantry.api.runs.stop; that must not stop the
// run ({"runId": ...} reads as a stop request): the API takes no message a
// JetStream consumer delivered.
func TestJetStreamDeliveriesAreNoRequests(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var r jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &r)

	js, err := e.op.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddConsumer("GANTRY_EVENTS", &nats.ConsumerConfig{Name: "replay", DeliverSubject: "gantry.api.runs.stop", DeliverGroup: "q", // micro's queue group
		FilterSubject: "gantry.events.runs." + r.RunID, AckPolicy: nats.AckNonePolicy, DeliverPolicy: nats.DeliverAllPolicy}); err != nil {
		t.Fatalf("push consumer: %v", err)
	}
	// The same consumer delivers to a subject the test hears too, to know
	// when the stop's would have been answered.
	seen := make(chan struct{}, 10)
	s, err := e.op.Subscribe("test.seen", func(*nats.Msg) { seen <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unsubscribe()
	if _, err := js.AddConsumer("GANTRY_EVENTS", &nats.ConsumerConfig{Name: "witness", DeliverSubject: "test.seen",
		FilterSubject: "gantry.events.runs." + r.RunID, AckPolicy: nats.AckNonePolicy, DeliverPolicy: nats.DeliverAllPolicy}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(5 * time.Second):
		t.Fatal("no event delivered within 5s")
	}
	time.Sleep(300 * time.Millisecond) // the stop endpoint had as long
	var got jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, r.RunID), &got)
	if got.Status != jobs.StatusQueued {
		t.Fatalf("a run whose events were delivered to gantry.api.runs.stop is %s (%s), want QUEUED", got.Status, got.StoppedReason)
	}
}
