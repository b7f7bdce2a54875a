package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxDeliver is how often a job is handed out before JetStream gives up on
// it: never. A worker hands back (naks) the jobs that do not fit its free
// capacity, and those deliveries count too, so a bound would fail runs that
// only wait for room. Lost workers are counted by the claims instead
// (worker.MaxLosses), and a run that loses too many fails with a reason.
const MaxDeliver = -1

// JobConsumer pulls jobs for one worker: its own and its cluster's, in
// the order it takes them (pulls). It is for one goroutine at a time.
type JobConsumer struct {
	nc *nats.Conn // for naks (Delivery.Nak)
	q  *Queue     // to make a deleted consumer again (restore)
	// pulls are the worker's own consumer, then its cluster's high,
	// normal and low ones: a worker takes what it finds in this order.
	pulls [numPulls]pull
	bells []*nats.Subscription // ring the pulls' bells (ring)
	// idleWaits counts the pulls begun that block on the cluster's normal
	// queue for ownEvery, the only waits of an idle worker: a test tells
	// by it after how many such waits a job was taken, not by the clock.
	idleWaits atomic.Uint64
}

// pull is one durable consumer a worker takes jobs from.
//
// A pull request costs a round trip to the NATS server even when it finds
// nothing, and most jobs are normal: the other consumers (the worker's
// own, the cluster's high and low ones) are skipped while they are known
// to be empty. A worker learns that a job came to one of them from a core
// NATS subscription, its bell: for its own jobs, to their subject (the
// stream and the subscription get the same message, a copy for this
// worker alone); for the cluster's high and low ones, to the empty message
// their publisher sends once the job is stored (BellSubject), so that a
// fleet's workers do not each receive every such job. Jobs also come back
// without a publish (a nak, a lapsed lease), and a bell can be lost or
// ring before the stream has stored its job: a consumer known empty is
// pulled again after recheckEvery whatever its bell says.
type pull struct {
	cons jetstream.Consumer
	cfg  jetstream.ConsumerConfig

	skips   bool        // may be skipped while known empty (all but normal)
	rung    atomic.Bool // a job was published to it since its last pull began
	emptyAt time.Time   // when the last pull, which found it empty, began; zero: not known empty
}

// recheckEvery bounds how long a consumer known empty goes unpulled when
// its bell did not ring: how late a job handed back (or whose lease ran
// out) on a skipped consumer can be seen, and what an idle worker polls.
const recheckEvery = 100 * time.Millisecond

// due reports whether pl is to be pulled at now.
func (pl *pull) due(now time.Time) bool {
	return !pl.skips || pl.emptyAt.IsZero() || pl.rung.Load() || now.Sub(pl.emptyAt) >= recheckEvery
}

// pulled records what a pull begun at began found: got jobs of the want
// it asked for.
func (pl *pull) pulled(began time.Time, got, want int) {
	if got < want {
		pl.emptyAt = began
	} else {
		pl.emptyAt = time.Time{}
	}
}

// The consumers of a JobConsumer, in the order a worker takes jobs.
const (
	pullOwn = iota
	pullHigh
	pullNormal // the cluster's consumer, cluster_<cluster>, as before priorities
	pullLow
	numPulls
)

// ClusterConsumer is the durable consumer of a cluster's jobs of priority
// p: cluster_<cluster> for normal ones (the name it had before priorities
// came), high_<cluster> and low_<cluster> for the others. Their prefixes
// differ, so no cluster's name makes one of another's.
func ClusterConsumer(cluster string, p jobs.Priority) string {
	switch p {
	case jobs.PriorityHigh, jobs.PriorityLow:
		return string(p) + "_" + cluster
	}
	return "cluster_" + cluster
}

// Jobs returns the consumer of a worker, creating the durable consumers of
// its cluster (one per priority) and of the worker itself if they do not
// exist. Its errors are as EnsureStreams's: WaitingFor tells those that
// pass on their own. A consumer deleted later is made again when a pull
// finds it gone.
func (q *Queue) Jobs(ctx context.Context, cluster, worker string) (*JobConsumer, error) {
	c := &JobConsumer{nc: q.nc, q: q}
	c.pulls[pullOwn].skips, c.pulls[pullHigh].skips, c.pulls[pullLow].skips = true, true, true
	c.pulls[pullOwn].cfg = jetstream.ConsumerConfig{
		Durable:           "worker_" + worker,
		Description:       "gantry: jobs for worker " + worker,
		FilterSubject:     JobSubject(cluster, worker),
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           q.cfg.ackWait,
		MaxDeliver:        MaxDeliver,
		InactiveThreshold: 24 * time.Hour,
	}
	for i, p := range map[int]jobs.Priority{pullHigh: jobs.PriorityHigh, pullNormal: jobs.PriorityNormal, pullLow: jobs.PriorityLow} {
		desc := "gantry: workers of cluster " + cluster
		if p != jobs.PriorityNormal {
			desc = "gantry: " + string(p) + "-priority jobs of cluster " + cluster
		}
		c.pulls[i].cfg = jetstream.ConsumerConfig{
			Durable:       ClusterConsumer(cluster, p),
			Description:   desc,
			FilterSubject: ClusterJobSubject(cluster, p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       q.cfg.ackWait,
			MaxDeliver:    MaxDeliver,
			MaxAckPending: 100000,
		}
	}
	var noJS *NoJetStreamError // about NATS, not the consumer: said as is
	for _, i := range []int{pullNormal, pullOwn, pullHigh, pullLow} {
		pl := &c.pulls[i]
		var err error
		if pl.cons, err = q.js.CreateOrUpdateConsumer(ctx, StreamJobs, pl.cfg); err != nil {
			if err = q.explain(err); errors.As(err, &noJS) {
				return nil, err
			}
			if i == pullOwn {
				return nil, fmt.Errorf("consumer for worker %s: %w", worker, err)
			}
			return nil, fmt.Errorf("consumer %s for cluster %s: %w", pl.cfg.Durable, cluster, err)
		}
	}
	high, low := BellSubject(cluster, jobs.PriorityHigh), BellSubject(cluster, jobs.PriorityLow)
	c.ring(BellSubject(cluster, "*"), func(subject string) *pull {
		switch subject {
		case high:
			return &c.pulls[pullHigh]
		case low:
			return &c.pulls[pullLow]
		}
		return nil
	})
	// The worker's own jobs reach it alone: their subject is their bell.
	c.ring(JobSubject(cluster, worker), func(string) *pull { return &c.pulls[pullOwn] })
	return c, nil
}

// ring subscribes to subject, a bell for the pull which of says a
// message is for. A bell that cannot be had (a NATS user not allowed to
// subscribe there, say) leaves its pulls to recheckEvery.
func (c *JobConsumer) ring(subject string, which func(subject string) *pull) {
	sub, err := c.q.nc.Subscribe(subject, func(m *nats.Msg) {
		if pl := which(m.Subject); pl != nil {
			pl.rung.Store(true)
		}
	})
	if err != nil {
		c.q.cfg.log.Warn().Err(err).Str("subject", subject).
			Msg("no bell for new jobs: consumers found empty are pulled again every " + recheckEvery.String())
		for i := range c.pulls {
			c.pulls[i].rung.Store(true)
		}
		return
	}
	c.bells = append(c.bells, sub)
}

// Close ends the consumer's subscriptions; the durable consumers stay.
func (c *JobConsumer) Close() {
	for _, b := range c.bells {
		_ = b.Unsubscribe()
	}
	c.bells = nil
}

// restore makes the consumer of pl again if the pull that failed with err
// found it deleted (durable.go), and says whether it did: the caller then
// pulls again. Other errors are the caller's, as before.
func (c *JobConsumer) restore(ctx context.Context, pl *pull, err error) bool {
	if !consumerGone(ctx, pl.cons, err) {
		return false
	}
	log := c.q.cfg.log.With().Str("stream", StreamJobs).Str("consumer", pl.cfg.Durable).Logger()
	log.Warn().AnErr("cause", err).Msg("durable consumer deleted under the worker: making it again")
	made, err := c.q.js.CreateOrUpdateConsumer(ctx, StreamJobs, pl.cfg)
	if err != nil {
		log.Warn().Err(err).Msg("make the deleted consumer again")
		return false
	}
	pl.cons = made
	return true
}

// Delivery is a job handed to this worker, with its lease.
type Delivery struct {
	job       jobs.Job
	delivered uint64
	seq       uint64
	stored    time.Time
	msg       jetstream.Msg
	nc        *nats.Conn

	mu     sync.Mutex // orders renewals before the nak
	nakked bool
}

// Job is the job delivered.
func (d *Delivery) Job() jobs.Job { return d.job }

// Delivered counts the deliveries of this message, 1 the first time.
func (d *Delivery) Delivered() uint64 { return d.delivered }

// Seq is the job message's sequence in the jobs stream (JobQueued), 0 if
// unknown.
func (d *Delivery) Seq() uint64 { return d.seq }

// Stored is when the job was queued (the stream stored its message).
func (d *Delivery) Stored() time.Time { return d.stored }

// AckSubject is the subject the delivery is answered on ("" if unknown):
// kept with the attempt's containers, it lets the worker restarted after
// a crash answer the delivery its earlier life held (NakDelivery).
func (d *Delivery) AckSubject() string { return d.msg.Reply() }

// JobQueued reports whether the job message at sequence seq of the jobs
// stream is still there. A job leaves the work queue only when a worker
// acknowledges it, which a worker does once the attempt's end is stored:
// a job that is gone will not be handed out again.
func (q *Queue) JobQueued(ctx context.Context, seq uint64) (bool, error) {
	stream, err := q.stream(ctx, StreamJobs)
	if err != nil {
		return false, err
	}
	if _, err := stream.GetMsg(ctx, seq); errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("job message %d: %w", seq, err)
	}
	return true, nil
}

// stream returns the handle of one of gantry's streams, looked up once: a
// lookup is a JetStream API request, and reading a message by sequence or
// subject needs only the stream's name (gantry's streams allow no direct
// get), which a deleted and recreated stream keeps.
func (q *Queue) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	q.mu.Lock()
	st := q.streams[name]
	q.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := q.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	q.mu.Lock()
	if q.streams == nil {
		q.streams = map[string]jetstream.Stream{}
	}
	q.streams[name] = st
	q.mu.Unlock()
	return st, nil
}

// ErrBadJob is returned by Next for a message that is not a job; the
// message has been terminated so that it is not delivered again.
var ErrBadJob = errors.New("queue: malformed job")

// ownEvery is how long a worker with nothing to do waits on its cluster's
// queue before it looks at its own again. It waits on one queue at a time
// (a pull request cannot be taken back without risking the message it may
// be answered with), so a job aimed at an idle worker waits up to this
// long; a cluster's job arrives at once. It was 2 s, which a run with
// --worker paid on an idle worker.
const ownEvery = 250 * time.Millisecond

// Next blocks until a job arrives or ctx is done. Jobs aimed at this worker
// come first, then the cluster's high, normal and low ones.
func (c *JobConsumer) Next(ctx context.Context) (*Delivery, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		for i := range c.pulls {
			pl := &c.pulls[i]
			began := time.Now()
			if !pl.due(began) {
				continue
			}
			pl.rung.Store(false)
			msg, err := next(ctx, pl.cons, 0)
			if err == nil {
				pl.pulled(began, 1, 1)
				return c.deliver(msg)
			}
			if isTimeout(err) {
				pl.pulled(began, 0, 1)
			} else if !c.restore(ctx, pl, err) {
				return nil, err
			}
		}
		c.idleWaits.Add(1)
		if msg, err := next(ctx, c.pulls[pullNormal].cons, ownEvery); err == nil {
			return c.deliver(msg)
		} else if !isTimeout(err) && !c.restore(ctx, &c.pulls[pullNormal], err) {
			return nil, err
		}
	}
}

func next(ctx context.Context, cons jetstream.Consumer, wait time.Duration) (jetstream.Msg, error) {
	var batch jetstream.MessageBatch
	var err error
	if wait == 0 {
		batch, err = cons.FetchNoWait(1)
	} else {
		// The server ends the request after wait and says so: a job it
		// sends just before then is not lost to a deadline of the client's
		// (it would come back only after the ack wait).
		batch, err = cons.Fetch(1, jetstream.FetchMaxWait(wait))
	}
	if err != nil {
		return nil, err
	}
	select {
	case msg, ok := <-batch.Messages():
		if ok {
			return msg, nil
		}
	case <-ctx.Done():
		// A job that came with the cancel is handed over, not left to
		// come back after the ack wait.
		select {
		case msg, ok := <-batch.Messages():
			if ok {
				return msg, nil
			}
		default:
		}
		return nil, context.Cause(ctx)
	}
	if err := batch.Error(); err != nil {
		return nil, err
	}
	return nil, context.DeadlineExceeded
}

func (c *JobConsumer) deliver(msg jetstream.Msg) (*Delivery, error) {
	d := &Delivery{msg: msg, nc: c.nc, delivered: 1}
	if md, err := msg.Metadata(); err == nil {
		d.delivered, d.seq, d.stored = md.NumDelivered, md.Sequence.Stream, md.Timestamp
	}
	// Room for one container, which most tasks have: go-json makes a
	// slice it grows from nothing with room for four (2 KB a job here).
	d.job.Spec.Task.ContainerDefinitions = make([]jobs.ContainerDefinition, 0, 1)
	if err := json.Unmarshal(msg.Data(), &d.job); err != nil || d.job.RunID == "" || d.job.Attempt < 1 {
		_ = msg.Term()
		return nil, fmt.Errorf("%w on %s: %v", ErrBadJob, msg.Subject(), err)
	}
	return d, nil
}

// InProgress renews the lease; after Nak it only returns an error, as a
// renewal would hold back the job handed back.
func (d *Delivery) InProgress() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nakked {
		return jetstream.ErrMsgAlreadyAckd
	}
	return d.msg.InProgress()
}

// Ack removes the job from the queue, waiting for the server to confirm.
func (d *Delivery) Ack(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nakked {
		return jetstream.ErrMsgAlreadyAckd
	}
	return d.msg.DoubleAck(ctx)
}

// minNakDelay is the least delay a nak carries. JetStream keeps where a
// plain nak (no delay) puts the message, the consumer's redelivery queue,
// in memory only: a job handed back just before the server stops (gantry
// up shut down with a task past --grace) came back after the restart only
// once its lease, the ack wait, ran out. A nak with a delay instead dates
// the message's pending entry back, in the consumer's stored state, to
// when it is due again, which a restarted server finds expired at once.
const minNakDelay = time.Millisecond

// nakTimeout bounds how long Nak waits for the server to take the nak.
const nakTimeout = 5 * time.Second

// Nak hands the job back to be delivered again after delay (at least
// minNakDelay), and returns once the server took it: the nak is sent as a
// request, which the server answers once the consumer's state says so. A
// nak sent and not waited for can still sit in the server's queue of acks
// when it stops, which drops it. If Nak fails, the job comes back when its
// lease runs out.
func (d *Delivery) Nak(delay time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nakked {
		return jetstream.ErrMsgAlreadyAckd
	}
	d.nakked = true
	delay = max(delay, minNakDelay)
	if d.nc == nil || d.msg.Reply() == "" {
		return d.msg.NakWithDelay(delay)
	}
	// What nats.go's NakWithDelay sends, which it only publishes.
	if _, err := d.nc.Request(d.msg.Reply(), nakBody(delay), nakTimeout); err != nil {
		return fmt.Errorf("nak job %s attempt %d: %w", d.job.RunID, d.job.Attempt, err)
	}
	return nil
}

// NextBatch blocks until at least one job arrives or ctx is done, and
// returns up to max of those waiting, in the order a worker takes them:
// this worker's own, then the cluster's high, normal and low ones. It
// takes only what is there already, so the jobs it returns are the ones
// the caller has room for, and no lease ticks on a job nobody runs.
func (c *JobConsumer) NextBatch(ctx context.Context, max int) ([]*Delivery, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		var out []*Delivery
		for i := range c.pulls {
			if len(out) >= max {
				break
			}
			pl := &c.pulls[i]
			began := time.Now()
			if !pl.due(began) {
				continue
			}
			pl.rung.Store(false)
			want := max - len(out)
			batch, err := pl.cons.FetchNoWait(want)
			if err != nil {
				if c.restore(ctx, pl, err) {
					continue // its jobs come with the next pull
				}
				return nil, err
			}
			got := 0
			for msg := range batch.Messages() {
				got++
				if d, err := c.deliver(msg); err == nil {
					out = append(out, d)
				}
			}
			// A pull of a deleted consumer ends with an error, not
			// with jobs: unseen here, the worker's own jobs stopped
			// coming without a word.
			if err := batch.Error(); err != nil && !isTimeout(err) {
				if c.restore(ctx, pl, err) {
					continue
				}
				got = want // not known empty
			}
			pl.pulled(began, got, want)
		}
		if len(out) > 0 {
			return out, nil
		}
		// Nothing waits: block for the next one.
		normal := &c.pulls[pullNormal]
		c.idleWaits.Add(1)
		msg, err := next(ctx, normal.cons, ownEvery)
		if isTimeout(err) || (err != nil && c.restore(ctx, normal, err)) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d, err := c.deliver(msg)
		if err != nil {
			return nil, err
		}
		return []*Delivery{d}, nil
	}
}
