package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/queue/natstest"
)

// newConn starts an embedded NATS server on a random port with its store in
// a temporary directory, and returns a connection to it.
func newConn(t *testing.T) *nats.Conn {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return dialTest(t, context.Background(), ConnOptions{URL: ns.ClientURL()})
}

// dialTest dials NATS as o says, for the rest of the test.
func dialTest(t testing.TB, ctx context.Context, o ConnOptions) *nats.Conn {
	t.Helper()
	nc, err := Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newQueue returns a queue, with the streams made, over newConn.
func newQueue(t *testing.T) *Queue {
	t.Helper()
	q, err := New(newConn(t), WithAckWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := q.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.EnsureStreams(ctx); err != nil {
		t.Fatalf("EnsureStreams is not idempotent: %v", err)
	}
	return q
}

func TestPublishJobIsIdempotent(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	job := &jobs.Job{RunID: "r1", Attempt: 1, Cluster: "default"}
	s1, err := q.PublishJob(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := q.PublishJob(ctx, job)
	if err != nil || s2 != s1 {
		t.Fatalf("second publish: seq %d (first %d), err %v", s2, s1, err)
	}
	cons, err := q.Jobs(ctx, "default", "w1")
	if err != nil {
		t.Fatal(err)
	}
	d, err := cons.Next(ctx)
	if err != nil || d.Job().RunID != "r1" || d.Delivered() != 1 {
		t.Fatalf("Next: %+v %v", d, err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if d, err := cons.Next(short); err == nil {
		t.Fatalf("a duplicate was delivered: %+v", d.Job())
	}
}

func TestJobsForAWorkerComeFirst(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	cons, err := q.Jobs(ctx, "etl", "w1")
	if err != nil {
		t.Fatal(err)
	}
	q.PublishJob(ctx, &jobs.Job{RunID: "any", Attempt: 1, Cluster: "etl"})
	q.PublishJob(ctx, &jobs.Job{RunID: "mine", Attempt: 1, Cluster: "etl", Worker: "w1"})
	// The stream tells its consumers of a new message after it has
	// acknowledged the publish: until then a no-wait fetch of the worker's
	// own consumer finds nothing, and the cluster's job comes first. Own
	// jobs come first once both consumers know of theirs.
	for _, c := range []jetstream.Consumer{cons.pulls[pullOwn].cons, cons.pulls[pullNormal].cons} {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.NumPending == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("consumer %s has %d jobs pending, want 1", info.Name, info.NumPending)
			}
		}
	}
	for _, want := range []string{"mine", "any"} {
		d, err := cons.Next(ctx)
		if err != nil || d.Job().RunID != want {
			t.Fatalf("Next = %v %v, want %s", d, err, want)
		}
		d.Ack(ctx)
	}
}

// TestOwnJobReachesAnIdleWorkerSoon: an idle worker waits on its
// cluster's queue, and looks at its own between waits. A job aimed at it
// used to wait out a whole 2 s wait; it now waits at most ownEvery. The
// bound here is loose, for busy machines: it fails only the old wait.
func TestOwnJobReachesAnIdleWorkerSoon(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	cons, err := q.Jobs(ctx, "etl", "w1")
	if err != nil {
		t.Fatal(err)
	}
	for _, take := range []struct {
		name string
		next func() (string, error)
	}{
		{"Next", func() (string, error) {
			d, err := cons.Next(ctx)
			if err != nil {
				return "", err
			}
			return d.Job().RunID, d.Ack(ctx)
		}},
		{"NextBatch", func() (string, error) {
			ds, err := cons.NextBatch(ctx, 4)
			if err != nil || len(ds) != 1 {
				return "", fmt.Errorf("%d jobs, %v", len(ds), err)
			}
			return ds[0].Job().RunID, ds[0].Ack(ctx)
		}},
	} {
		t.Run(take.name, func(t *testing.T) {
			type got struct {
				id  string
				err error
				at  time.Time
			}
			done := make(chan got, 1)
			go func() {
				id, err := take.next()
				done <- got{id, err, time.Now()}
			}()
			time.Sleep(100 * time.Millisecond) // idle: waiting on the cluster's queue
			sent := time.Now()
			if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "mine-" + take.name, Attempt: 1, Cluster: "etl", Worker: "w1"}); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-done:
				if g.err != nil || g.id != "mine-"+take.name {
					t.Fatalf("took %q, %v", g.id, g.err)
				}
				if wait := g.at.Sub(sent); wait > 1500*time.Millisecond {
					t.Errorf("the worker's own job waited %s", wait)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the worker's own job was not taken within 10s")
			}
		})
	}
}

func TestUnackedJobIsRedelivered(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	cons, _ := q.Jobs(ctx, "default", "w1")
	q.PublishJob(ctx, &jobs.Job{RunID: "r1", Attempt: 1, Cluster: "default"})
	if _, err := cons.Next(ctx); err != nil {
		t.Fatal(err)
	}
	// Nobody renews the lease: after the ack wait (2 s here) it comes back.
	d, err := cons.Next(ctx)
	if err != nil || d.Delivered() != 2 {
		t.Fatalf("redelivery: %+v %v", d, err)
	}
}

// A job stays queued, at the sequence its delivery carries, while it is
// handed out and handed back; it leaves once acknowledged.
func TestJobQueuedUntilAcknowledged(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	cons, _ := q.Jobs(ctx, "default", "w1")
	seq, err := q.PublishJob(ctx, &jobs.Job{RunID: "r1", Attempt: 1, Cluster: "default"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := cons.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Seq() != seq {
		t.Fatalf("delivery of sequence %d, published at %d", d.Seq(), seq)
	}
	if queued, err := q.JobQueued(ctx, seq); err != nil || !queued {
		t.Fatalf("a delivered job: queued %v, %v", queued, err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if queued, err := q.JobQueued(ctx, seq); err != nil || queued {
		t.Fatalf("an acknowledged job: queued %v, %v", queued, err)
	}
	if queued, err := q.JobQueued(ctx, seq+100); err != nil || queued {
		t.Fatalf("a sequence never used: queued %v, %v", queued, err)
	}
}

// RunEnded reads the last status the server announced on a run's subject:
// an end is an end; anything else, or a message not from the server, is not.
func TestRunEndedByTheServersLastStatus(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	announce := func(ev *jobs.Event) {
		t.Helper()
		f, err := q.PublishEventAsync(ev)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(10 * time.Second):
			t.Fatal("no acknowledgement")
		}
	}
	ended := func(want bool, when string) {
		t.Helper()
		if got, err := q.RunEnded(ctx, "r1"); err != nil || got != want {
			t.Fatalf("%s: RunEnded = %v, %v; want %v", when, got, err, want)
		}
	}
	ended(false, "no events")
	announce(&jobs.Event{RunID: "r1", Attempt: 1, Status: jobs.StatusRunning, Source: jobs.SourceServer})
	ended(false, "running")
	announce(&jobs.Event{RunID: "r1", Attempt: 1, Status: jobs.StatusSucceeded, Source: jobs.SourceServer})
	ended(true, "succeeded")
	if err := q.PublishEvent(ctx, &jobs.Event{RunID: "r1", Attempt: 2, Seq: 1, Status: jobs.StatusStarting, Source: jobs.SourceWorker}); err != nil {
		t.Fatal(err)
	}
	ended(false, "a worker's event last")
}

func TestMalformedJobIsTerminated(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	cons, _ := q.Jobs(ctx, "default", "w1")
	if _, err := q.js.Publish(ctx, JobSubject("default", ""), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Next(ctx); !errors.Is(err, ErrBadJob) {
		t.Fatalf("err = %v, want ErrBadJob", err)
	}
}

func TestLogsRoundTrip(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	long := strings.Repeat("é", maxPiece) // 2 bytes a rune: forces pieces cut inside runes
	w := q.NewLogWriter("r1", 1)
	w.Line("main", jobs.Stdout, []byte("first"))
	w.Line("main", jobs.Stderr, []byte("oops"))
	w.Line("side", jobs.Stdout, []byte("side line"))
	w.Line("main", jobs.Stdout, []byte(long))
	// A line the worker passed on in pieces (worker.LogSink.Piece).
	w.Piece("main", jobs.Stdout, []byte("head-"))
	w.Piece("main", jobs.Stdout, []byte(long))
	w.Line("main", jobs.Stdout, []byte("-tail"))
	for i := range 5000 {
		w.Line("main", jobs.Stdout, []byte(strings.Repeat("x", i%100)))
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	w2 := q.NewLogWriter("r1", 2)
	w2.Line("main", jobs.Stdout, []byte("second attempt"))
	w2.Close(ctx)

	var lines []jobs.LogLine
	var joined strings.Builder
	var pieces int
	err := q.ReadLogs(ctx, LogQuery{RunID: "r1", Container: "main", Attempt: 1}, func(b *jobs.LogBatch) error {
		for _, l := range b.Lines {
			if l.Partial {
				pieces++
				joined.WriteString(l.Text)
				continue
			}
			if pieces > 0 && joined.Len() > 0 {
				joined.WriteString(l.Text)
				l.Text = joined.String()
				joined.Reset()
			}
			lines = append(lines, l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 5004 || lines[0].Text != "first" || lines[1].Stream != jobs.Stderr || lines[2].Text != long {
		t.Fatalf("got %d lines; first %q, second %+v, long one intact: %v", len(lines), lines[0].Text, lines[1], lines[2].Text == long)
	}
	if lines[3].Text != "head-"+long+"-tail" {
		t.Fatalf("a line given in pieces came back as %d bytes, want %d", len(lines[3].Text), len("head-"+long+"-tail"))
	}
	if pieces == 0 {
		t.Fatal("a line longer than maxPiece was not split")
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Seq <= lines[i-1].Seq {
			t.Fatalf("seq not increasing at %d", i)
		}
	}
	var all int
	q.ReadLogs(ctx, LogQuery{RunID: "r1"}, func(b *jobs.LogBatch) error { all += len(b.Lines); return nil })
	if all < 5004+2 {
		t.Fatalf("all containers and attempts: %d lines", all)
	}
}

// TestLogsEndWithoutNewline: a stream's last line without a newline
// (LogWriter.End) is stored marked NoNewline, on its last piece only when
// it is long enough to be cut.
func TestLogsEndWithoutNewline(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	long := strings.Repeat("x", maxPiece+10)
	w := q.NewLogWriter("r1", 1)
	w.Line("main", jobs.Stdout, []byte("first"))
	w.End("main", jobs.Stdout, []byte("done"))
	w.End("main", jobs.Stderr, []byte(long))
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var got []jobs.LogLine
	err := q.ReadLogs(ctx, LogQuery{RunID: "r1", Container: "main", Attempt: 1}, func(b *jobs.LogBatch) error {
		got = append(got, b.Lines...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d lines, want 4 (a line, an end, a long end in two pieces)", len(got))
	}
	want := []struct{ partial, noNewline bool }{{false, false}, {false, true}, {true, false}, {false, true}}
	for i, w := range want {
		if got[i].Partial != w.partial || got[i].NoNewline != w.noNewline {
			t.Errorf("line %d (%.10q): partial %v noNewline %v, want %v %v", i, got[i].Text, got[i].Partial, got[i].NoNewline, w.partial, w.noNewline)
		}
	}
	if got[2].Text+got[3].Text != long {
		t.Error("the long last line did not come back whole")
	}
}

func TestFollowLogsEndsWhenDone(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	got := make(chan int, 1)
	go func() {
		n := 0
		err := q.ReadLogs(ctx, LogQuery{RunID: "r9", Follow: true, Done: done}, func(b *jobs.LogBatch) error {
			n += len(b.Lines)
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		got <- n
	}()
	w := q.NewLogWriter("r9", 1)
	for range 100 {
		w.Line("main", jobs.Stdout, []byte("line"))
	}
	w.Close(ctx)
	close(done)
	select {
	case n := <-got:
		if n != 100 {
			t.Fatalf("followed %d lines, want 100", n)
		}
	case <-ctx.Done():
		t.Fatal("follow did not end after the run was done")
	}
}

func TestCanceledRuns(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	got := make(chan CancelMsg, 1)
	sub, err := q.SubscribeCancels(func(c CancelMsg) { got <- c })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if ok, _, err := q.Canceled(ctx, "r1"); ok || err != nil {
		t.Fatalf("Canceled before: %v %v", ok, err)
	}
	if err := q.MarkCanceled(ctx, "r1", "no longer needed", nil); err != nil {
		t.Fatal(err)
	}
	if ok, reason, err := q.Canceled(ctx, "r1"); !ok || reason != "no longer needed" || err != nil {
		t.Fatalf("Canceled after: %v %q %v", ok, reason, err)
	}
	select {
	case c := <-got:
		if c.RunID != "r1" {
			t.Fatalf("cancel message %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no cancel message")
	}
}

func TestDialErrorsSayWhatToDo(t *testing.T) {
	_, err := Dial(context.Background(), ConnOptions{URL: "nats://127.0.0.1:1", Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "is `gantry up` running?") {
		t.Fatalf("err = %v", err)
	}
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	_, err = Dial(context.Background(), ConnOptions{URL: ns.ClientURL()})
	if want := "asks for credentials and none were given: give --user and --password, --token, --creds or --nkey"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("no credentials: err = %v; want %q", err, want)
	}
	for _, o := range []ConnOptions{
		{URL: ns.ClientURL(), User: "u", Password: "wrong"},
		{URL: ns.ClientURL(), Token: "wrong"},
		{URL: strings.Replace(ns.ClientURL(), "://", "://u:wrong@", 1)},
	} {
		_, err = Dial(context.Background(), o)
		if want := "refused the credentials: check --user/--password, --token, --creds or --nkey"; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("wrong credentials %+v: err = %v; want %q", o, err, want)
		} else if strings.Contains(err.Error(), "wrong") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
	nc, err := Dial(context.Background(), ConnOptions{URL: ns.ClientURL(), User: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
}

// TestClaimsSurviveTheirBucketBeingDeleted: claim handles are kept between
// calls; when the bucket is gone (deleted by hand, a NATS server that lost
// its state) a call fails once, and the next looks the bucket up, creates
// it again and works.
func TestClaimsSurviveTheirBucketBeingDeleted(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if _, err := q.PutClaim(ctx, "r1", []byte(`{"attempt":1}`), 0); err != nil {
		t.Fatal(err)
	}
	if err := q.JetStream().DeleteKeyValue(ctx, claimsBucket); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 2 {
		if _, err = q.PutClaim(ctx, "r2", []byte(`{"attempt":1}`), 0); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the bucket was deleted: %v", err)
	}
	if data, rev, err := q.Claim(ctx, "r2"); err != nil || rev == 0 || string(data) != `{"attempt":1}` {
		t.Fatalf("claim r2: %q %d %v", data, rev, err)
	}
}

// TestLogsOfControlCharacters: output that JSON escapes six bytes for one
// (\u0001) still fits NATS's 1 MiB payload limit, batch by batch, and
// comes back as it was written.
func TestLogsOfControlCharacters(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	w := q.NewLogWriter("ctl", 1)
	line := strings.Repeat("\x01", maxPiece*2+10) // three pieces
	for range 4 {
		w.Line("main", jobs.Stdout, []byte(line))
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("storing escape-heavy lines: %v", err)
	}
	// The embedded server takes 8 MiB; a cluster left at its defaults, 1.
	s, info := streamNow(t, ctx, q, StreamLogs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil && len(m.Data) > 1<<20 {
			t.Fatalf("a batch of %d bytes: over NATS's default 1 MiB payload limit", len(m.Data))
		}
	}
	var got strings.Builder
	err := q.ReadLogs(ctx, LogQuery{RunID: "ctl"}, func(b *jobs.LogBatch) error {
		for _, l := range b.Lines {
			got.WriteString(l.Text)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != strings.Repeat(line, 4) {
		t.Fatalf("read back %d bytes of the %d written, or not the same", got.Len(), 4*len(line))
	}
}

// TestJobsDuplicateWindowOnUpgrade: a jobs stream made by an older gantry,
// with JetStream's default 2-minute duplicate window, gets the shorter
// window when a new server makes sure of the streams, and keeps its jobs.
func TestJobsDuplicateWindowOnUpgrade(t *testing.T) {
	q, err := New(newConn(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old, err := q.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: StreamJobs, Subjects: []string{"gantry.jobs.>"},
		Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.PublishJob(ctx, &jobs.Job{RunID: "r1", Attempt: 1, Cluster: "default"}); err != nil {
		t.Fatal(err)
	}
	if err := q.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := old.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates != JobsDuplicateWindow || info.State.Msgs != 1 {
		t.Fatalf("jobs stream after EnsureStreams: duplicate window %s (want %s), %d jobs (want 1)",
			info.Config.Duplicates, JobsDuplicateWindow, info.State.Msgs)
	}
}

// TestEnsureUpdatesOnlyWhatChanged shows that ensuring gantry's streams and
// buckets again, as every server and worker does at start, updates nothing
// that is already as asked (an update raced consumers being created, see
// ensure in queue.go), and still updates what differs.
func TestEnsureUpdatesOnlyWhatChanged(t *testing.T) {
	nc := newConn(t)
	ctx := context.Background()
	ensure := func(logRetention, dataRetention time.Duration) {
		t.Helper()
		q, err := New(nc, WithLogRetention(logRetention))
		if err != nil {
			t.Fatal(err)
		}
		if err := q.EnsureStreams(ctx); err != nil {
			t.Fatal(err)
		}
		if err := NewStager(q.JetStream(), dataRetention, 1).EnsureBucket(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ensure(time.Hour, time.Hour)

	updated, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	updates := func() []string {
		t.Helper()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			m, err := updated.NextMsg(200 * time.Millisecond)
			if err != nil {
				return got
			}
			got = append(got, strings.TrimPrefix(m.Subject, "$JS.EVENT.ADVISORY.STREAM.UPDATED."))
		}
	}
	ensure(time.Hour, time.Hour)
	if got := updates(); len(got) != 0 {
		t.Fatalf("ensuring again updated %v, want nothing", got)
	}
	ensure(2*time.Hour, 2*time.Hour)
	got := updates()
	slices.Sort(got)
	if want := []string{StreamLogs, "OBJ_" + DataBucket}; !slices.Equal(got, want) {
		t.Fatalf("with new retentions updated %v, want %v", got, want)
	}
}

// TestJobTooLarge: a job the server would refuse for its size is a
// *JobTooLargeError, whether EncodeJob finds it or the publish does.
func TestJobTooLarge(t *testing.T) {
	q := newQueue(t)
	max := q.nc.MaxPayload()
	job := &jobs.Job{RunID: "r", Attempt: 1, Cluster: "default"}
	job.Spec.Task.ContainerDefinitions = []jobs.ContainerDefinition{{Name: "main", Image: "i",
		Environment: []jobs.KeyValue{{Name: "BIG", Value: strings.Repeat("x", int(max))}}}}
	var tl *JobTooLargeError
	if _, err := q.EncodeJob(job); !errors.As(err, &tl) || tl.Max != max || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("EncodeJob: %v", err)
	}
	tl = nil
	if _, err := q.PublishEncodedJob(context.Background(), job, make([]byte, max+1)); !errors.As(err, &tl) || tl.Size != max+1 {
		t.Fatalf("PublishEncodedJob: %v", err)
	}
	small := &jobs.Job{RunID: "s", Attempt: 1, Cluster: "default"}
	data, err := q.EncodeJob(small)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.PublishEncodedJob(context.Background(), small, data); err != nil {
		t.Fatal(err)
	}
}

// A message a JetStream consumer delivered to the cancel subject (a
// submitter's consumer on the events stream may deliver anywhere) is no
// cancellation: a run's events carry its runId.
func TestJetStreamDeliveryIsNoCancel(t *testing.T) {
	q := newQueue(t)
	got := make(chan CancelMsg, 2)
	sub, err := q.SubscribeCancels(func(c CancelMsg) { got <- c })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc := q.Conn()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish("gantry.events.runs.r1", []byte(`{"runId":"r1","status":"RUNNING","source":"server"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddConsumer(StreamEvents, &nats.ConsumerConfig{Name: "replay", DeliverSubject: CancelSubject,
		FilterSubject: "gantry.events.runs.r1", AckPolicy: nats.AckNonePolicy}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the consumer's delivery, first
	if err := nc.Publish(CancelSubject, []byte(`{"runId":"r2","reason":"no longer needed"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.RunID != "r2" {
			t.Fatalf("cancelled %s, which only a JetStream delivery named", c.RunID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no cancel message")
	}
}

// TestLogsOfInvalidUTF8: bytes that are not valid UTF-8 (latin-1, binary)
// come back as they were written, also in pieces, and the batches that
// carry them ("raw" beside "text") still fit NATS's 1 MiB payload limit.
func TestLogsOfInvalidUTF8(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	// The most a byte costs: \u0001 in text, and raw because of the \xff.
	worst := strings.Repeat("\x01", maxPiece*2+10) + "\xff"
	long := strings.Repeat("é\xe9", maxPiece) // pieces cut inside runes and between bad bytes
	w := q.NewLogWriter("bin", 1)
	w.Line("main", jobs.Stdout, []byte("caf\xe9"))
	w.Line("main", jobs.Stderr, all[:10]) // \n is a byte like any other here
	w.Line("main", jobs.Stdout, all)
	for range 4 {
		w.Line("main", jobs.Stdout, []byte(worst))
	}
	w.Piece("main", jobs.Stdout, []byte("\xc3"))
	w.Line("main", jobs.Stdout, []byte("\xa9 joined"))
	w.Line("main", jobs.Stdout, []byte(long))
	w.End("main", jobs.Stdout, []byte("no newline \xfe"))
	if err := w.Close(ctx); err != nil {
		t.Fatalf("storing lines of invalid UTF-8: %v", err)
	}
	want := []string{"caf\xe9", string(all[:10]), string(all), worst, worst, worst, worst, "\xc3\xa9 joined", long, "no newline \xfe"}

	s, info := streamNow(t, ctx, q, StreamLogs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil && len(m.Data) > 1<<20 {
			t.Fatalf("a batch of %d bytes: over NATS's default 1 MiB payload limit", len(m.Data))
		}
	}
	var got []string
	var joined strings.Builder
	var end bool
	err := q.ReadLogs(ctx, LogQuery{RunID: "bin"}, func(b *jobs.LogBatch) error {
		for _, l := range b.Lines {
			joined.WriteString(l.Text)
			if !l.Partial {
				got = append(got, joined.String())
				joined.Reset()
				end = l.NoNewline
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || !end {
		t.Fatalf("read back %d lines, want %d; last without newline: %v", len(got), len(want), end)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: read back %d bytes %.40q, want %d bytes %.40q", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}

// TestCanceledBindsAgainWithoutDirectGets: a cancel bucket handle bound
// while the stream allowed direct gets asks for them, which no one
// answers once they are off (the server turns them off on an R3 bucket):
// the read says so, and the next one binds again and reads the stream's
// leader.
func TestCanceledBindsAgainWithoutDirectGets(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	if err := q.MarkCanceled(ctx, "r1", "stopped", nil); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := q.Canceled(ctx, "r1"); err != nil || !ok {
		t.Fatalf("canceled: %v, %v", ok, err)
	}
	natstest.DirectGetsOff(t, ctx, q.js, "KV_"+cancelBucket)
	if _, _, err := q.Canceled(ctx, "r1"); err == nil {
		t.Fatal("read by direct get of a stream without them: no error; want no responders")
	}
	if ok, reason, err := q.Canceled(ctx, "r1"); err != nil || !ok || reason != "stopped" {
		t.Fatalf("read after binding again: %v, %q, %v; want canceled, stopped", ok, reason, err)
	}
}
