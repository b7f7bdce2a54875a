// Package workerq connects a worker (package worker) to the NATS queue
// (package queue): the adapters that `gantry worker`, `gantry up`, the
// benchmarks and the server's tests give worker.New.
package workerq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/worker"
)

// Source hands the worker the deliveries of a cluster's job consumer.
type Source struct{ C *queue.JobConsumer }

// NextBatch returns up to max deliveries (worker.BatchSource).
func (s Source) NextBatch(ctx context.Context, max int) ([]worker.Lease, error) {
	ds, err := s.C.NextBatch(ctx, max)
	if err != nil {
		return nil, err
	}
	leases := make([]worker.Lease, len(ds))
	for i, d := range ds {
		leases[i] = d
	}
	return leases, nil
}

// Next returns one delivery.
func (s Source) Next(ctx context.Context) (worker.Lease, error) {
	d, err := s.C.Next(ctx)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Reporter carries the worker's events, logs and cancellations.
type Reporter struct{ Q *queue.Queue }

// PublishEvents reports the attempt's progress to the server in batches
// (queue.Report); image pull progress, which clients show as it comes, also
// goes straight to the run's event subject.
func (r Reporter) PublishEvents(ctx context.Context, evs ...*jobs.Event) error {
	if len(evs) == 1 && evs[0].Pull != nil {
		if err := r.Q.PublishEvent(ctx, evs[0]); err != nil {
			return err
		}
	}
	return r.Q.Report(ctx, evs...)
}

// Logs returns the writer of one attempt's output.
func (r Reporter) Logs(runID string, attempt int) worker.LogStream {
	return r.Q.NewLogWriter(runID, attempt)
}

// Canceled reports whether the run was canceled, and why.
func (r Reporter) Canceled(ctx context.Context, runID string) (bool, string, error) {
	return r.Q.Canceled(ctx, runID)
}

// Claims is the queue's claim bucket, as the worker's worker.Claims.
type Claims struct{ Q *queue.Queue }

// Claim returns the run's claim and its revision.
func (c Claims) Claim(ctx context.Context, runID string) ([]byte, uint64, error) {
	return c.Q.Claim(ctx, runID)
}

// JobQueued reports whether a job message is still in the queue
// (worker.JobQueue).
func (c Claims) JobQueued(ctx context.Context, seq uint64) (bool, error) {
	return c.Q.JobQueued(ctx, seq)
}

// RunEnded reports whether the server announced the run's end
// (worker.RunEnds).
func (c Claims) RunEnded(ctx context.Context, runID string) (bool, error) {
	return c.Q.RunEnded(ctx, runID)
}

// AckSubjectSeq returns the stream sequence of the job message whose
// delivery has ack subject s (worker.Deliveries).
func (c Claims) AckSubjectSeq(s string) (uint64, bool) { return queue.AckSubjectSeq(s) }

// NakDelivery hands back the job of the delivery with that ack subject.
func (c Claims) NakDelivery(ctx context.Context, ackSubject string) error {
	return c.Q.NakDelivery(ctx, ackSubject)
}

// AckDelivery takes the job of the delivery with that ack subject out of
// the queue.
func (c Claims) AckDelivery(ctx context.Context, ackSubject string) error {
	return c.Q.AckDelivery(ctx, ackSubject)
}

// PutClaim stores a claim if it is still at revision rev.
func (c Claims) PutClaim(ctx context.Context, runID string, data []byte, rev uint64) (uint64, error) {
	newRev, err := c.Q.PutClaim(ctx, runID, data, rev)
	if errors.Is(err, queue.ErrClaimConflict) {
		return 0, fmt.Errorf("%w: %v", worker.ErrClaimConflict, err)
	}
	return newRev, err
}

// RunState asks the server how it records a run (worker.RunRecords), with
// the API's runs.get: its status, and the attempt whose job it waits for.
func (c Claims) RunState(ctx context.Context, runID string) (jobs.Status, int, error) {
	req, _ := json.Marshal(map[string]string{"runId": runID})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msg, err := c.Q.Conn().RequestWithContext(ctx, "gantry.api.runs.get", req)
	if err != nil {
		return "", 0, fmt.Errorf("gantry.api.runs.get: %w", err)
	}
	var reply struct {
		jobs.Run
		Error *jobs.Error `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return "", 0, fmt.Errorf("gantry.api.runs.get: bad reply: %w", err)
	}
	if reply.Error != nil {
		return "", 0, reply.Error
	}
	return reply.Status, JobAttempt(&reply.Run), nil
}

// JobAttempt is the attempt whose job message a run waits for: its
// current attempt's, or for a redelivery (an attempt that runs the job of
// a lost one) that of the attempt that published it.
func JobAttempt(r *jobs.Run) int {
	for i := len(r.Attempts) - 1; i >= 0; i-- {
		if !r.Attempts[i].Redelivery {
			return r.Attempts[i].Attempt
		}
	}
	return 0
}

var _ worker.Deliveries = Claims{}
