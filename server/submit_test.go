package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// bigTask is a task definition whose job is larger than max bytes.
func bigTask(max int64) jobs.TaskDefinition {
	return jobs.TaskDefinition{Family: "big", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "img",
		Environment: []jobs.KeyValue{{Name: "BIG", Value: strings.Repeat("x", int(max))}}}}}
}

// A run whose job the NATS server would refuse for its size is refused at
// submission, with the reason, and nothing is stored.
func TestSubmitRefusesAJobTooLargeForNATS(t *testing.T) {
	ctx := context.Background()
	nc, q, db := testStack(t)
	s := New(db, q)
	td, _ := json.Marshal(bigTask(nc.MaxPayload()))
	_, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
	if !errors.Is(err, jobs.ErrInvalidArgument) || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("got %v, want invalid_argument naming max_payload", err)
	}
	if n, err := db.CountRuns(ctx); err != nil || len(n) != 0 {
		t.Fatalf("runs stored: %v %v", n, err)
	}
	// A task just under the limit goes through.
	small, _ := json.Marshal(bigTask(nc.MaxPayload() / 2))
	if _, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: small}); err != nil {
		t.Fatal(err)
	}
}

// TestSubmitBoundsDurations: an activeDeadlineSeconds of 10 digits (a
// common "no limit") overflowed time.Duration, put the run's deadline in
// 1758, and the run failed as timed out before it started; it is refused
// naming the field, and the largest allowed gives a deadline 50 years on.
func TestSubmitBoundsDurations(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	for _, field := range []string{"activeDeadlineSeconds", "timeoutSeconds"} {
		got := apiError(t, e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"hello","`+field+`":9999999999}`))
		if got.Code != jobs.CodeInvalidArgument || !strings.HasPrefix(got.Message, field+": 9999999999: must be at most") {
			t.Errorf("%s=9999999999: %s %q, want invalid_argument naming the field", field, got.Code, got.Message)
		}
	}
	var r jobs.Run
	e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":"hello","activeDeadlineSeconds":%d}`, jobs.MaxDurationSeconds), &r)
	if r.Spec.Deadline == nil || r.Spec.Deadline.Before(r.CreatedAt.AddDate(49, 0, 0)) {
		t.Fatalf("activeDeadlineSeconds=%d: deadline %v for a run created %v", jobs.MaxDurationSeconds, r.Spec.Deadline, r.CreatedAt)
	}
}

// A stored run whose job cannot be queued for its size (stored by an
// earlier version, or before max_payload shrank) fails with the reason;
// the runs after it are queued, and the server starts.
func TestRepublishFailsARunTooLargeAndGoesOn(t *testing.T) {
	ctx := context.Background()
	nc, q, db := testStack(t)
	now := time.Now().UTC()
	big := &jobs.Run{RunID: "a-big", Status: jobs.StatusQueued, Cluster: "default", CreatedAt: now,
		Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}},
		Spec:     jobs.RunSpec{Task: bigTask(nc.MaxPayload())}}
	if _, _, err := db.CreateRun(ctx, big); err != nil {
		t.Fatal(err)
	}
	createQueued(t, db, "b-small")
	s := New(db, q)
	if err := s.republish(ctx); err != nil {
		t.Fatalf("republish: %v", err)
	}
	r, err := db.GetRun(ctx, "a-big")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != jobs.StatusFailed || !strings.Contains(r.StoppedReason, "max_payload") || r.Current().Status != jobs.StatusFailed {
		t.Fatalf("big run: %s %q", r.Status, r.StoppedReason)
	}
	left, err := db.Unpublished(ctx)
	if err != nil || len(left) != 0 {
		t.Fatalf("unpublished after republish: %d runs, %v", len(left), err)
	}
	if err := s.republish(ctx); err != nil {
		t.Fatalf("republish again: %v", err)
	}
}

// A durable submission with neither idempotency key nor message id, taken
// again after a crash between its run and its ack, makes no second run;
// another message with the same body does.
func TestKeylessDurableSubmissionTakenTwiceIsOneRun(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q)
	td, _ := json.Marshal(bigTask(10))
	body, _ := json.Marshal(jobs.SubmitRequest{TaskDefinition: td})
	stored := time.Now()
	m := queue.Submission{Data: body, Seq: 5, Stored: stored, Delivered: 1}
	if err := s.takeSubmission(ctx, m); err != nil {
		t.Fatal(err)
	}
	m.Delivered = 2 // the same message, after a crash before its ack
	if err := s.takeSubmission(ctx, m); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountRuns(ctx); n[jobs.StatusQueued] != 1 {
		t.Fatalf("runs %v, want one queued", n)
	}
	other := queue.Submission{Data: body, Seq: 6, Stored: stored.Add(time.Millisecond), Delivered: 1}
	if err := s.takeSubmission(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountRuns(ctx); n[jobs.StatusQueued] != 2 {
		t.Fatalf("runs %v, want two queued", n)
	}
}

// A durable submission that sets a stage's context is refused as the API
// refuses it, and makes no run.
func TestDurableSubmissionWithAStageIsRefused(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	s := New(db, q)
	td, _ := json.Marshal(bigTask(10))
	body, _ := json.Marshal(jobs.SubmitRequest{TaskDefinition: td,
		Stage: &jobs.StageContext{PipelineRunID: "pr-x", Stage: "extract"}})
	if err := s.takeSubmission(ctx, queue.Submission{Data: body, Seq: 1, Stored: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.CountRuns(ctx); len(n) != 0 {
		t.Fatalf("runs %v, want none", n)
	}
}
