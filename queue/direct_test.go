package queue

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go"
)

// TestDirectReaderFollowsEveryMessageOnce: a follower started before the
// first message and ended after the last reads every message of its
// subject once, in order and byte for byte, across many batches (more
// messages than a batch takes, and more bytes than an answer holds), and
// none of another subject's; a reader started afterwards reads the same.
func TestDirectReaderFollowsEveryMessageOnce(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	subject, other := LogSubject("r1", "main"), LogSubject("r2", "main")

	rnd := rand.New(rand.NewPCG(1, 2))
	var msgs [][]byte
	for i := range 2*directBatch + 500 {
		n := rnd.IntN(200)
		if i%100 == 7 {
			n = 600 << 10 // enough of these fill an answer's bytes first
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rnd.UintN(256)) // any byte: \r\n, NUL, invalid UTF-8
		}
		msgs = append(msgs, b)
	}

	type result struct {
		got   [][]byte
		fetch int
		err   error
	}
	follow := func(follow bool, done <-chan struct{}) result {
		r, err := newDirectReader(q.Conn(), StreamLogs, subject)
		if err != nil {
			return result{err: err}
		}
		defer r.close()
		var res result
		res.err = r.follow(ctx, follow, done, func(data []byte, h nats.Header) error {
			if s := h.Get(nats.JSSubject); s != subject {
				return fmt.Errorf("message of %s", s)
			}
			res.got = append(res.got, bytes.Clone(data))
			return nil
		})
		res.fetch = r.n
		return res
	}
	done := make(chan struct{})
	followed := make(chan result, 1)
	go func() { followed <- follow(true, done) }()
	time.Sleep(200 * time.Millisecond) // the follower starts with nothing stored

	js := q.JetStream()
	for i, m := range msgs {
		if _, err := js.Publish(ctx, subject, m); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := js.Publish(ctx, other, []byte("not mine")); err != nil {
				t.Fatal(err)
			}
		}
		if i%700 == 0 {
			time.Sleep(50 * time.Millisecond) // let the follower catch up and wait
		}
	}
	close(done)

	check := func(name string, res result) {
		t.Helper()
		if res.err != nil {
			t.Fatalf("%s: %v", name, res.err)
		}
		if len(res.got) != len(msgs) {
			t.Fatalf("%s read %d messages, want %d", name, len(res.got), len(msgs))
		}
		for i := range msgs {
			if !bytes.Equal(res.got[i], msgs[i]) {
				t.Fatalf("%s: message %d differs (%d bytes, want %d)", name, i, len(res.got[i]), len(msgs[i]))
			}
		}
	}
	select {
	case res := <-followed:
		check("the follower", res)
	case <-ctx.Done():
		t.Fatal("the follower did not end after done")
	}
	late := follow(false, nil)
	check("a late reader", late)
	if late.fetch < 3 {
		t.Fatalf("a late reader read %d messages in %d requests: the test wants several batches", len(late.got), late.fetch)
	}
}

// TestReadLogsWithoutDirectGet: on a stream without direct get (a server
// that cannot answer), ReadLogs falls back to an ordered consumer and
// still reads every line.
func TestReadLogsWithoutDirectGet(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	natstest.DirectGetsOff(t, ctx, q.JetStream(), StreamLogs)
	w := q.NewLogWriter("r1", 1)
	for i := range 3000 {
		w.Line("main", "stdout", fmt.Appendf(nil, "line %d", i))
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, func(b *jobs.LogBatch) error {
		for _, l := range b.Lines {
			if l.Text != fmt.Sprintf("line %d", n) {
				return fmt.Errorf("line %d is %q", n, l.Text)
			}
			n++
		}
		return nil
	})
	if err != nil || n != 3000 {
		t.Fatalf("read %d lines, want 3000: %v", n, err)
	}
}

// TestDirectReaderAsksTheLeaderLast: before it stops, a reader asks the
// stream's leader for what comes after the last message it read: on a
// replicated stream a replica behind the leader may have answered its
// direct gets. Here the reader is set back as if a lagging replica had
// answered only the first two of five messages.
func TestDirectReaderAsksTheLeaderLast(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subject := EventSubject("r1")
	for i := range 5 {
		if _, err := q.JetStream().Publish(ctx, subject, fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := q.JetStream().Publish(ctx, EventSubject("r2"), []byte("not mine")); err != nil {
			t.Fatal(err)
		}
	}
	r, err := newDirectReader(q.Conn(), StreamEvents, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	r.next = 4 // after m0 and m1 (sequences 1 and 3)
	var got []string
	for {
		more, err := r.fromLeader(ctx, func(data []byte, _ nats.Header) error {
			got = append(got, string(data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
	}
	if fmt.Sprint(got) != "[m2 m3 m4]" {
		t.Fatalf("the leader gave %v, want [m2 m3 m4]", got)
	}
}
