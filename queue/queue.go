package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Queue is gantry's handle on JetStream. It is safe for concurrent use.
type Queue struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg config

	mu      sync.Mutex
	kv      jetstream.KeyValue            // the cancel bucket, once looked up
	lease   jetstream.KeyValue            // the server lease's bucket, once made (lease.go)
	buckets map[string]jetstream.KeyValue // the fleet's buckets, once looked up
	streams map[string]jetstream.Stream   // streams read by message (stream)

	reports reporter // reports.go
}

type config struct {
	replicas int
	// The log stream's limits, set only where an option gave them
	// (logLimits in logs.go).
	logMaxAge   *time.Duration
	logMaxBytes *int64
	ackWait     time.Duration
	log         zerolog.Logger
}

// Option configures a Queue.
type Option func(*config)

// WithReplicas sets the replica count of the streams and buckets (3 on a
// NATS cluster). Without it (or with 0) a stream or bucket that exists
// keeps its count, which an operator may have changed by hand, and one
// made anew is R1. Consumers take their stream's: JetStream requires it of
// a work queue's, and a worker, which makes its own, is not told the count.
func WithReplicas(n int) Option { return func(c *config) { c.replicas = n } }

// WithLogRetention sets how long the log stream keeps a line (its MaxAge;
// 0 for no age limit). Without it a log stream that exists keeps its own,
// which an operator may have changed by hand, and one made anew keeps
// lines DefaultLogRetention.
func WithLogRetention(d time.Duration) Option {
	return func(c *config) { c.logMaxAge = &d }
}

// WithLogMaxBytes bounds the bytes the log stream holds (its MaxBytes):
// past it, JetStream drops the oldest lines. 0 or less removes the bound.
// Without it a log stream that exists keeps its own bound, and one made
// anew has none.
func WithLogMaxBytes(n int64) Option {
	return func(c *config) { c.logMaxBytes = &n }
}

// DefaultLogRetention is how long a log stream made without
// WithLogRetention keeps a line.
const DefaultLogRetention = 30 * 24 * time.Hour

// WithAckWait sets how long a worker may stay silent about a job before
// JetStream hands it to another worker (30 s by default). Workers renew the
// lease at a third of it.
func WithAckWait(d time.Duration) Option { return func(c *config) { c.ackWait = d } }

// WithLogger sets the logger of the queue's own warnings, such as a
// durable consumer deleted under its loop (durable.go). It logs nothing
// without it.
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// New wraps a connection. It does not touch the streams: call EnsureStreams
// once at the start of a server.
func New(nc *nats.Conn, opts ...Option) (*Queue, error) {
	cfg := config{ackWait: 30 * time.Second, log: zerolog.Nop()}
	for _, o := range opts {
		o(&cfg)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Queue{nc: nc, js: js, cfg: cfg}, nil
}

// Conn returns the underlying connection.
func (q *Queue) Conn() *nats.Conn { return q.nc }

// JetStream returns the JetStream context.
func (q *Queue) JetStream() jetstream.JetStream { return q.js }

// Replicas is the replica count of the streams and buckets the queue makes,
// 0 when it keeps the count of those that exist (WithReplicas).
func (q *Queue) Replicas() int { return q.cfg.replicas }

// AckWait is the lease duration of jobs.
func (q *Queue) AckWait() time.Duration { return q.cfg.ackWait }

// EnsureStreams creates or updates gantry's streams; it is safe to call on
// every start and from several servers at once. WaitingFor tells the
// failures that pass on their own, as a NATS cluster elects its leader; a
// request NATS refused comes back as such, not as the timeout it shows as.
func (q *Queue) EnsureStreams(ctx context.Context) error {
	return q.explain(q.ensureStreams(ctx))
}

func (q *Queue) ensureStreams(ctx context.Context) error {
	streams := []jetstream.StreamConfig{
		{
			Name:        StreamJobs,
			Description: "gantry: runs waiting for a worker (work queue)",
			Subjects:    []string{"gantry.jobs.>"},
			Retention:   jetstream.WorkQueuePolicy,
			Duplicates:  JobsDuplicateWindow,
		},
		{
			Name:        StreamEvents,
			Description: "gantry: status changes of runs, kept until applied and for followers",
			Subjects:    []string{"gantry.events.>"},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      EventsRetention,
			Duplicates:  EventsDuplicateWindow,
			AllowDirect: true, // followers read by direct get (direct.go)
		},
		{
			Name:        StreamLogs,
			Description: "gantry: log lines of runs",
			Subjects:    []string{"gantry.logs.>"},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld, // past MaxBytes, drop the oldest lines, never refuse new ones
			AllowDirect: true,
		},
		reportsStream(), // reports.go
		{
			Name:        StreamSubmit,
			Description: "gantry: fire-and-forget submissions waiting for the server",
			Subjects:    []string{SubmitSubject},
			Retention:   jetstream.WorkQueuePolicy,
			Duplicates:  2 * time.Minute,
		},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		n, err := replicasFor(ctx, q.js, sc.Name, q.cfg.replicas)
		if err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
		sc.Replicas = n
		if sc.Name == StreamLogs {
			if sc.MaxAge, sc.MaxBytes, err = q.logLimits(ctx); err != nil {
				return fmt.Errorf("stream %s: %w", sc.Name, err)
			}
		}
		if _, err := ensure(ctx, sc, jetstream.ErrStreamNameAlreadyInUse, q.js.CreateStream, q.js.UpdateStream); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	if _, err := q.ensureCancelBucket(ctx); err != nil {
		return err
	}
	return q.ensureWorkerBuckets(ctx)
}

// ensure creates a stream or bucket with create, and updates it with
// update only when it exists with another configuration (create fails with
// exists): creating one that exists as asked changes nothing, where an
// update rewrites the stream's metadata even when nothing changed. Beyond
// the saved write, the NATS server (2.15) reads a stream's configuration
// without its lock while it adds a consumer to it, so an update at every
// start raced the consumers that a server and a worker starting side by
// side create (the race detector caught it).
func ensure[C, T any](ctx context.Context, cfg C, exists error, create, update func(context.Context, C) (T, error)) (T, error) {
	v, err := create(ctx, cfg)
	if errors.Is(err, exists) {
		return update(ctx, cfg)
	}
	return v, err
}

// ensureKeyValue is ensure for a key-value bucket, with the replicas
// replicasFor gives it for want.
func ensureKeyValue(ctx context.Context, js jetstream.JetStream, c jetstream.KeyValueConfig, want int) (jetstream.KeyValue, error) {
	n, err := replicasFor(ctx, js, "KV_"+c.Bucket, want)
	if err != nil {
		return nil, err
	}
	c.Replicas = n
	return ensure(ctx, c, jetstream.ErrBucketExists, js.CreateKeyValue, js.CreateOrUpdateKeyValue)
}

// replicasFor is the replica count to create or update a stream with when
// want were asked: want itself, or when it is 0 (the operator gave no
// count) the stream's own, and 1 for a stream that does not exist yet. So
// a server started without --replicas does not undo an operator who scaled
// a stream by hand (nats stream edit --replicas 3), as it did when its
// default of 1 was applied to every stream at every start.
func replicasFor(ctx context.Context, js jetstream.JetStream, stream string, want int) (int, error) {
	if want > 0 {
		return want, nil
	}
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up its replicas: %w", err)
	}
	return max(s.CachedInfo().Config.Replicas, 1), nil
}

// JobsDuplicateWindow is how long GANTRY_JOBS remembers a job's message id
// (run/attempt). A job published again within it, by a server restarted
// right after a publish it had not recorded, is dropped by the queue; one
// published again later reaches a worker, whose claim shows the attempt
// taken (worker/claim.go), so the window spares work, not correctness. The
// stream keeps every id of the window in memory, and at thousands of runs
// a second JetStream's default 2 minutes held hundreds of thousands: about
// 50 MB of live heap at the control plane's rate, which the collector
// marks at every cycle.
const JobsDuplicateWindow = 30 * time.Second

// EventsDuplicateWindow is how long GANTRY_EVENTS remembers a message id:
// a worker event's (run/attempt/seq, PublishEvent) or a pipeline event's.
// The claims bucket has JetStream's default window, of the same length.
const EventsDuplicateWindow = 2 * time.Minute

// PublishJob puts a job on its cluster's queue for its priority, or on its
// worker's (JobSubjectOf). The message id
// run/attempt makes a repeated publish within the duplicate window a no-op.
func (q *Queue) PublishJob(ctx context.Context, job *jobs.Job) (uint64, error) {
	data, err := q.EncodeJob(job)
	if err != nil {
		return 0, err
	}
	return q.PublishEncodedJob(ctx, job, data)
}

// JobTooLargeError is a job bigger than the NATS server takes in one
// message (its max_payload).
type JobTooLargeError struct {
	RunID     string
	Size, Max int64
}

func (e *JobTooLargeError) Error() string {
	return fmt.Sprintf("the run's job (its task definition with the overrides) is %d bytes, more than the %d bytes "+
		"the NATS server takes in a message (max_payload): make the task definition or its overrides smaller, "+
		"and pass data through volumes or stage files", e.Size, e.Max)
}

// jobHeaderRoom is what a job message's headers (its message id) may take
// of the server's max_payload.
const jobHeaderRoom = 256

// EncodeJob encodes a job for PublishEncodedJob; a job the NATS server
// would refuse for its size is a *JobTooLargeError.
func (q *Queue) EncodeJob(job *jobs.Job) ([]byte, error) {
	data, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("encode job %s/%d: %w", job.RunID, job.Attempt, err)
	}
	// Asking the connection takes its lock, which every publish takes:
	// jobs far below any server's limit need not ask. A smaller limit is
	// still told, by the publish (PublishEncodedJob).
	if len(data) < smallJob {
		return data, nil
	}
	if max := q.nc.MaxPayload(); max > 0 && int64(len(data))+jobHeaderRoom > max {
		return nil, &JobTooLargeError{RunID: job.RunID, Size: int64(len(data)), Max: max}
	}
	return data, nil
}

// smallJob is a job size no NATS server set up for gantry refuses.
const smallJob = 64 << 10

// PublishEncodedJob is PublishJob of a job EncodeJob encoded as data.
func (q *Queue) PublishEncodedJob(ctx context.Context, job *jobs.Job, data []byte) (uint64, error) {
	ack, err := q.publishSync(ctx, &nats.Msg{Subject: JobSubjectOf(job), Data: data,
		Header: nats.Header{jetstream.MsgIDHeader: {job.RunID + "/" + strconv.Itoa(job.Attempt)}}})
	if errors.Is(err, nats.ErrMaxPayload) {
		return 0, &JobTooLargeError{RunID: job.RunID, Size: int64(len(data)), Max: q.nc.MaxPayload()}
	}
	if err != nil {
		return 0, fmt.Errorf("publish job %s/%d: %w", job.RunID, job.Attempt, err)
	}
	if job.Worker == "" && (job.Priority == jobs.PriorityHigh || job.Priority == jobs.PriorityLow) {
		// Lost, it costs a worker recheckEvery at most.
		_ = q.nc.Publish(BellSubject(job.Cluster, job.Priority), nil)
	}
	return ack.Sequence, nil
}

// isTimeout reports whether err is a fetch that found nothing in time.
func isTimeout(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}
