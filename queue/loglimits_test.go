package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go"
)

// ensureLogs makes gantry's streams on nc with opts and returns the log
// stream's limits.
func ensureLogs(t *testing.T, nc *nats.Conn, opts ...Option) LogLimits {
	t.Helper()
	ctx := context.Background()
	q, err := New(nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := q.LogLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLogStreamLimits: the log stream gets the MaxAge and MaxBytes the
// options give, when it is made and when it exists with others; without
// the options a new stream keeps lines DefaultLogRetention without a size
// bound, and an existing one keeps the limits it has, an operator's edit
// by hand included, as a start without --replicas keeps the replicas.
func TestLogStreamLimits(t *testing.T) {
	t.Parallel()
	check := func(what string, got LogLimits, age time.Duration, size int64) {
		t.Helper()
		if got.MaxAge != age || got.MaxBytes != size {
			t.Errorf("%s: max age %s, max bytes %d; want %s, %d", what, got.MaxAge, got.MaxBytes, age, size)
		}
	}
	t.Run("new stream", func(t *testing.T) {
		t.Parallel()
		check("no options", ensureLogs(t, newConn(t)), DefaultLogRetention, 0)
		check("both given", ensureLogs(t, newConn(t), WithLogRetention(3*time.Hour), WithLogMaxBytes(16<<20)), 3*time.Hour, 16<<20)
		check("size given", ensureLogs(t, newConn(t), WithLogMaxBytes(16<<20)), DefaultLogRetention, 16<<20)
	})
	t.Run("existing stream", func(t *testing.T) {
		t.Parallel()
		nc := newConn(t)
		ensureLogs(t, nc)
		check("both given", ensureLogs(t, nc, WithLogRetention(time.Hour), WithLogMaxBytes(64<<20)), time.Hour, 64<<20)
		check("none given", ensureLogs(t, nc), time.Hour, 64<<20)
		check("age given", ensureLogs(t, nc, WithLogRetention(2*time.Hour)), 2*time.Hour, 64<<20)
		check("size given", ensureLogs(t, nc, WithLogMaxBytes(32<<20)), 2*time.Hour, 32<<20)
		check("bound and age limit removed", ensureLogs(t, nc, WithLogRetention(0), WithLogMaxBytes(0)), 0, 0)

		ctx := context.Background()
		q, err := New(nc)
		if err != nil {
			t.Fatal(err)
		}
		natstest.Eventually(t, ctx, "edit "+StreamLogs, func(ctx context.Context) error {
			s, err := q.JetStream().Stream(ctx, StreamLogs)
			if err != nil {
				return err
			}
			cfg := s.CachedInfo().Config
			cfg.MaxAge, cfg.MaxBytes = 90*24*time.Hour, 10<<30
			_, err = q.JetStream().UpdateStream(ctx, cfg)
			return err
		})
		check("after an operator's edit, none given", ensureLogs(t, nc), 90*24*time.Hour, 10<<30)
	})
}

// TestLogMaxBytesDropsTheOldestLines: past its MaxBytes the log stream
// drops the oldest lines, never refuses new ones; a reader finds the
// first lines it reads numbered past 1, and LogLimits says from when the
// stream holds lines.
func TestLogMaxBytesDropsTheOldestLines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc := newConn(t)
	ensureLogs(t, nc, WithLogMaxBytes(1<<20))
	q, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w := q.NewLogWriter("r1", 1)
	line := []byte(strings.Repeat("x", 1000))
	for range 3000 { // 3 MB in 1 MiB
		w.Line("main", jobs.Stdout, line)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("writing past the bound: %v", err)
	}
	var first, last int64
	if err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, func(b *jobs.LogBatch) error {
		if first == 0 {
			first = b.Lines[0].Seq
		}
		last = b.Lines[len(b.Lines)-1].Seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if first <= 1 || last != 3000 {
		t.Errorf("read lines %d to %d; want the first ones dropped and the last, 3000, kept", first, last)
	}
	l, err := q.LogLimits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.MaxBytes != 1<<20 || l.Oldest.Before(start.Add(-time.Second)) {
		t.Errorf("limits %+v: want max bytes 1 MiB and the oldest line stored since %s", l, start)
	}
	// Made before the lines, which gantry logs tells a run restored from
	// another JetStream by.
	if l.Created.IsZero() || l.Created.After(start) {
		t.Errorf("limits %+v: want the stream made before %s", l, start)
	}
}
