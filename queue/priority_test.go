package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

func TestJobSubjectsOfPriorities(t *testing.T) {
	for _, tc := range []struct {
		job        jobs.Job
		subject    string
		consumerOf jobs.Priority
	}{
		{jobs.Job{Cluster: "etl"}, "gantry.jobs.etl", jobs.PriorityNormal},
		{jobs.Job{Cluster: "etl", Priority: jobs.PriorityNormal}, "gantry.jobs.etl", jobs.PriorityNormal},
		{jobs.Job{Cluster: "etl", Priority: jobs.PriorityHigh}, "gantry.jobs.etl.p.high", jobs.PriorityHigh},
		{jobs.Job{Cluster: "etl", Priority: jobs.PriorityLow}, "gantry.jobs.etl.p.low", jobs.PriorityLow},
		// A worker's own jobs come first whatever their priority.
		{jobs.Job{Cluster: "etl", Worker: "w1", Priority: jobs.PriorityLow}, "gantry.jobs.etl.w.w1", ""},
	} {
		if got := JobSubjectOf(&tc.job); got != tc.subject {
			t.Errorf("JobSubjectOf(%+v) = %s, want %s", tc.job, got, tc.subject)
		}
	}
	// Durable names: no cluster's name makes one of another cluster's.
	names := map[string]string{}
	for _, cluster := range []string{"x", "high_x", "low_x", "x_high", "cluster_x"} {
		for _, p := range jobs.Priorities {
			n := ClusterConsumer(cluster, p)
			if prev, dup := names[n]; dup {
				t.Errorf("consumer %s is both %s's and %s/%s's", n, prev, cluster, p)
			}
			names[n] = cluster + "/" + string(p)
		}
	}
	if got := ClusterConsumer("etl", jobs.PriorityNormal); got != "cluster_etl" {
		t.Errorf("normal consumer %s, want cluster_etl as before priorities", got)
	}
}

// waitPending waits until each consumer of cons has the given number of
// jobs pending: the stream tells its consumers of a message after it has
// acknowledged the publish, and a no-wait pull before then finds nothing.
func waitPending(t *testing.T, cons *JobConsumer, want [numPulls]uint64) {
	t.Helper()
	ctx := context.Background()
	for i := range cons.pulls {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			info, err := cons.pulls[i].cons.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending == want[i] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("consumer %s has %d jobs pending, want %d", info.Name, info.NumPending, want[i])
			}
		}
	}
}

// TestJobsTakenByPriority: a worker with one slot takes its own jobs
// first, then high, normal and low ones, first come first served within
// a level; with more room, one batch holds them in that order.
func TestJobsTakenByPriority(t *testing.T) {
	queued := []jobs.Job{
		{RunID: "low1", Priority: jobs.PriorityLow},
		{RunID: "normal1"},
		{RunID: "high1", Priority: jobs.PriorityHigh},
		{RunID: "low2", Priority: jobs.PriorityLow},
		{RunID: "normal2", Priority: jobs.PriorityNormal},
		{RunID: "high2", Priority: jobs.PriorityHigh},
		{RunID: "mine", Priority: jobs.PriorityLow, Worker: "w1"},
	}
	want := []string{"mine", "high1", "high2", "normal1", "normal2", "low1", "low2"}
	for _, take := range []struct {
		name string
		next func(context.Context, *JobConsumer) ([]*Delivery, error)
	}{
		{"Next", func(ctx context.Context, c *JobConsumer) ([]*Delivery, error) {
			d, err := c.Next(ctx)
			return []*Delivery{d}, err
		}},
		{"NextBatch of one", func(ctx context.Context, c *JobConsumer) ([]*Delivery, error) { return c.NextBatch(ctx, 1) }},
		{"NextBatch of ten", func(ctx context.Context, c *JobConsumer) ([]*Delivery, error) { return c.NextBatch(ctx, 10) }},
	} {
		t.Run(take.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t)
			ctx := context.Background()
			// The worker has looked once: the levels are known empty
			// when the jobs come.
			cons := primedJobs(t, q)
			for _, j := range queued {
				j.Attempt, j.Cluster = 1, "etl"
				if _, err := q.PublishJob(ctx, &j); err != nil {
					t.Fatal(err)
				}
			}
			waitPending(t, cons, [numPulls]uint64{pullOwn: 1, pullHigh: 2, pullNormal: 2, pullLow: 2})
			var got []string
			for len(got) < len(want) {
				ds, err := take.next(ctx, cons)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range ds {
					got = append(got, d.Job().RunID)
					if err := d.Ack(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("taken in the order %v, want %v", got, want)
			}
		})
	}
}

// TestPriorityKeptAcrossRedeliveryAndRetry: the job of a worker that was
// lost (its lease ran out) comes back on its priority's consumer, ahead of
// the normal jobs queued since, though no publish announced it; a retry's
// job (the next attempt, published again) goes where the first went.
func TestPriorityKeptAcrossRedeliveryAndRetry(t *testing.T) {
	t.Parallel()
	q := newQueue(t) // ack wait 2 s
	ctx := context.Background()
	lost, err := q.Jobs(ctx, "etl", "lost")
	if err != nil {
		t.Fatal(err)
	}
	defer lost.Close()
	other, err := q.Jobs(ctx, "etl", "other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "r-high", Attempt: 1, Cluster: "etl", Priority: jobs.PriorityHigh}); err != nil {
		t.Fatal(err)
	}
	waitPending(t, lost, [numPulls]uint64{pullHigh: 1})
	ds, err := lost.NextBatch(ctx, 1)
	if err != nil || len(ds) != 1 || ds[0].Job().RunID != "r-high" {
		t.Fatalf("the first worker took %v, %v", ds, err)
	}
	// The first worker is lost with it: no renewal, no ack. The other
	// worker finds the high consumer empty meanwhile (known empty), and
	// normal jobs come.
	prime(t, q, other)
	for _, id := range []string{"n1", "n2"} {
		if _, err := q.PublishJob(ctx, &jobs.Job{RunID: id, Attempt: 1, Cluster: "etl"}); err != nil {
			t.Fatal(err)
		}
	}
	waitPending(t, other, [numPulls]uint64{pullNormal: 2})
	// The lease runs out after the ack wait, when the server's timer
	// fires: the high job is to be delivered again.
	waitRedeliverable(t, q, ClusterConsumer("etl", jobs.PriorityHigh))
	// No publish told the other worker: it knows the high consumer as
	// empty, with no bell rung, and pulls it again only as recheckEvery
	// has passed since (the ack wait has, and more).
	if pl := &other.pulls[pullHigh]; pl.emptyAt.IsZero() || pl.rung.Load() {
		t.Fatalf("the other worker's high consumer: known empty since %v, bell rung %v", pl.emptyAt, pl.rung.Load())
	}
	ds, err = other.NextBatch(ctx, 1)
	if err != nil || len(ds) != 1 || ds[0].Job().RunID != "r-high" || ds[0].Delivered() != 2 {
		t.Fatalf("the other worker took %v, %v, want r-high's redelivery first", ids(ds), err)
	}
	// Its attempt fails and the run is retried: the next attempt's job
	// goes to the high consumer again, ahead of the normal ones.
	if err := ds[0].Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "r-high", Attempt: 2, Cluster: "etl", Priority: jobs.PriorityHigh}); err != nil {
		t.Fatal(err)
	}
	waitPending(t, other, [numPulls]uint64{pullHigh: 1, pullNormal: 2})
	ds, err = other.NextBatch(ctx, 1)
	if err != nil || len(ds) != 1 || ds[0].Job().RunID != "r-high" || ds[0].Job().Attempt != 2 {
		t.Fatalf("after the retry the worker took %v, %v, want r-high attempt 2", ids(ds), err)
	}
}

// waitRedeliverable waits until the consumer durable of q's jobs stream
// has a job delivered before to hand out again (a lease ran out), without
// taking it. A consumer's info counts the jobs never delivered, not those
// due again; a pull that allows one byte, fewer than any job, is answered
// "409 Message Size Exceeds MaxBytes" once a job is due, and the server
// keeps the job for the next pull, this delivery not counted. The pull is
// sent by hand: nats.go's Fetch reports that answer as an empty batch, as
// it does the timeout.
func waitRedeliverable(t *testing.T, q *Queue, durable string) {
	t.Helper()
	inbox := q.nc.NewInbox()
	sub, err := q.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	req := fmt.Appendf(nil, `{"batch":1,"max_bytes":1,"expires":%d}`, time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := q.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+StreamJobs+"."+durable, inbox, req); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("pull of %s: %v", durable, err)
		}
		switch status, desc := m.Header.Get("Status"), m.Header.Get("Description"); {
		case status == "409" && strings.Contains(strings.ToLower(desc), "maxbytes"):
			return
		case status != "408": // 408: the request expired with nothing due
			t.Fatalf("pull of %s answered %q %q %q", durable, status, desc, m.Data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job of %s to deliver again within 30s", durable)
		}
	}
}

// TestHighJobReachesAnIdleWorkerSoon: an idle worker waits on its
// cluster's normal queue, ownEvery at a time; a high job is taken by the
// pass that follows the wait under way once the high consumer knows of the
// job (or the one after, when that pass had already looked), not after
// more waits: the worker looks at the other consumers between any two. The
// waits are counted, not timed, so a busy machine does not fail the test.
func TestHighJobReachesAnIdleWorkerSoon(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := context.Background()
	cons, err := q.Jobs(ctx, "etl", "w1")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	high := cons.pulls[pullHigh].cons
	for i := range 5 {
		start := cons.idleWaits.Load()
		taken := make(chan uint64, 1) // the idle waits begun when the job was taken
		go func() {
			ds, err := cons.NextBatch(ctx, 4)
			if err != nil || len(ds) != 1 {
				t.Errorf("took %d jobs, %v", len(ds), err)
			} else {
				_ = ds[0].Ack(ctx)
			}
			taken <- cons.idleWaits.Load()
		}()
		// Idle: the worker found every consumer empty and waits on the
		// normal one, in its first, second or third wait.
		waitIdle(t, cons, start+1+uint64(i%3))
		if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "h" + string(rune('0'+i)), Attempt: 1, Cluster: "etl",
			Priority: jobs.PriorityHigh}); err != nil {
			t.Fatal(err)
		}
		// The stream tells its consumers of a job after it acknowledged
		// the publish: count the waits from when the high one is seen to
		// know (read after, so that the count is never short).
		var known uint64
		for deadline := time.Now().Add(10 * time.Second); known == 0; time.Sleep(time.Millisecond) {
			info, err := high.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending+uint64(info.NumAckPending) > 0 || len(taken) > 0 {
				known = cons.idleWaits.Load()
			} else if time.Now().After(deadline) {
				t.Fatalf("job h%d: the high consumer has not heard of it in 10s", i)
			}
		}
		select {
		case at := <-taken:
			if at > known+1 {
				t.Errorf("job h%d: taken after %d idle waits since its consumer knew of it, want at most 1",
					i, at-known)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("job h%d: not taken within 30s", i)
		}
	}
}

// waitIdle waits until cons has begun n waits on the normal queue.
func waitIdle(t *testing.T, cons *JobConsumer, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); cons.idleWaits.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker began %d idle waits in 10s, want %d", cons.idleWaits.Load(), n)
		}
	}
}

// primedJobs is worker w1's consumer of cluster etl, closed at the end of
// the test, after it took one normal job, finding the consumers before it
// empty: it knows them empty, and pulls them again only when their bells
// ring or recheckEvery has passed. (A pull that blocks and is given up, as a
// NextBatch whose ctx ends, would take the next normal job for nobody.)
func primedJobs(t *testing.T, q *Queue) *JobConsumer {
	t.Helper()
	cons, err := q.Jobs(context.Background(), "etl", "w1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	prime(t, q, cons)
	return cons
}

// prime has cons take one normal job, finding the consumers before it
// empty (primedJobs).
func prime(t *testing.T, q *Queue, cons *JobConsumer) {
	t.Helper()
	ctx := context.Background()
	if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "prime-" + t.Name(), Attempt: 1, Cluster: "etl"}); err != nil {
		t.Fatal(err)
	}
	waitPending(t, cons, [numPulls]uint64{pullNormal: 1})
	ds, err := cons.NextBatch(ctx, 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("prime: %v, %v", ids(ds), err)
	}
	if err := ds[0].Ack(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{pullOwn, pullHigh} { // a batch of one stops at the normal job
		if cons.pulls[i].emptyAt.IsZero() {
			t.Fatalf("consumer %s not known empty after a pull", cons.pulls[i].cfg.Durable)
		}
	}
}

// TestBellsRing: a job published to a consumer known empty rings its bell,
// so that the next pull does not skip it; a normal job rings none.
func TestBellsRing(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	ctx := context.Background()
	cons := primedJobs(t, q)
	bells := make(chan *nats.Msg, 16)
	sub, err := q.nc.ChanSubscribe(BellSubject("etl", "*"), bells)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	for _, tc := range []struct {
		job  jobs.Job
		pull int
	}{
		{jobs.Job{RunID: "h", Priority: jobs.PriorityHigh}, pullHigh},
		{jobs.Job{RunID: "l", Priority: jobs.PriorityLow}, pullLow},
		{jobs.Job{RunID: "o", Worker: "w1"}, pullOwn},
		{jobs.Job{RunID: "x", Worker: "w2", Priority: jobs.PriorityHigh}, -1}, // another worker's
		{jobs.Job{RunID: "n"}, -1},
	} {
		for i := range cons.pulls {
			cons.pulls[i].rung.Store(false)
		}
		tc.job.Attempt, tc.job.Cluster = 1, "etl"
		if _, err := q.PublishJob(ctx, &tc.job); err != nil {
			t.Fatal(err)
		}
		if err := q.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if tc.job.Worker == "" && (tc.job.Priority == jobs.PriorityHigh || tc.job.Priority == jobs.PriorityLow) {
			// The cluster's bell is an empty message, not a copy of the job.
			select {
			case m := <-bells:
				if m.Subject != BellSubject("etl", tc.job.Priority) || len(m.Data) != 0 {
					t.Errorf("job %s: bell on %s with %d bytes", tc.job.RunID, m.Subject, len(m.Data))
				}
			case <-time.After(10 * time.Second):
				t.Errorf("job %s: no bell on %s", tc.job.RunID, BellSubject("etl", tc.job.Priority))
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for tc.pull >= 0 && !cons.pulls[tc.pull].rung.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // for a bell that should not ring
		for i := range cons.pulls {
			if rung := cons.pulls[i].rung.Load(); rung != (i == tc.pull) {
				t.Errorf("job %s: bell of %s rung=%v", tc.job.RunID, cons.pulls[i].cfg.Durable, rung)
			}
		}
	}
}

func ids(ds []*Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Job().RunID)
	}
	return out
}
