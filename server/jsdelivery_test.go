package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// A user who may only submit and read runs may make consumers on the
// events stream, to follow them; NATS does not stop such a consumer
// delivering to any subject. One delivering a run's stored events to
// gantry.api.runs.stop must not stop the run ({"runId": ...} reads as a
// stop request): the API takes no message a JetStream consumer delivered.
func TestJetStreamDeliveriesAreNoRequests(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var r jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &r)

	js, err := e.sub.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddConsumer("GANTRY_EVENTS", &nats.ConsumerConfig{Name: "replay", DeliverSubject: "gantry.api.runs.stop", DeliverGroup: "q", // micro's queue group
		FilterSubject: "gantry.events.runs." + r.RunID, AckPolicy: nats.AckNonePolicy, DeliverPolicy: nats.DeliverAllPolicy}); err != nil {
		t.Fatalf("the submitter may not make a push consumer (then this test is moot): %v", err)
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
