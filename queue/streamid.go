package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNoJobsStream is returned by JobsStream when GANTRY_JOBS does not
// exist (deleted by hand, or a NATS server that lost its state):
// EnsureStreams makes it again.
var ErrNoJobsStream = errors.New("queue: no jobs stream")

// JobsStream says which jobs stream this is, by when it was created (a
// stream made anew, on a new JetStream or after a deletion, has another
// time; a restart keeps it), and whether it holds no job. It is one
// JetStream API request.
func (q *Queue) JobsStream(ctx context.Context) (id string, empty bool, err error) {
	st, err := q.js.Stream(ctx, StreamJobs)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return "", false, fmt.Errorf("stream %s: %w", StreamJobs, ErrNoJobsStream)
	}
	if err != nil {
		return "", false, fmt.Errorf("stream %s: %w", StreamJobs, err)
	}
	info := st.CachedInfo()
	return info.Created.UTC().Format(time.RFC3339Nano), info.State.Msgs == 0, nil
}

// ReportsPosition is the sequence of the last report workers published.
// A report is removed from its work queue once the server applied it, so
// ReportsApplied(last) later says whether every report published by then
// is applied.
func (q *Queue) ReportsPosition(ctx context.Context) (last uint64, err error) {
	state, err := q.reportsState(ctx)
	return state.LastSeq, err
}

// ReportsApplied reports whether the server applied every report up to
// sequence last (ReportsPosition): none of them is left in the stream.
func (q *Queue) ReportsApplied(ctx context.Context, last uint64) (bool, error) {
	state, err := q.reportsState(ctx)
	if err != nil {
		return false, err
	}
	// A stream made anew starts its sequences again: empty, it holds no
	// report waiting either.
	return state.Msgs == 0 || state.FirstSeq > last, nil
}

func (q *Queue) reportsState(ctx context.Context) (jetstream.StreamState, error) {
	st, err := q.js.Stream(ctx, StreamReports)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("stream %s: %w", StreamReports, err)
	}
	return st.CachedInfo().State, nil
}
