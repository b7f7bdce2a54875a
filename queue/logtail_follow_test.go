package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestReadLogTailStreamedFollowsAWriter: a following read of a log's end
// too big to hold (streamed), begun while the run writes, prints a run of
// the log's last lines, at least as many as asked: each line once, none
// left out between those it skips and those it follows.
func TestReadLogTailStreamedFollowsAWriter(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	writeTailLog(t, ctx, q, "r1")
	for round := range 3 {
		var caught atomic.Bool
		var out []string
		parts := map[string]string{}
		tail := &LogTail{Lines: 3000, MaxHold: 64 << 10}
		seen := 0
		fn := func(b *jobs.LogBatch) error {
			for _, l := range b.Lines {
				key := fmt.Sprint(b.Attempt, "/", b.Container, "/", l.Stream)
				parts[key] += l.Text
				if l.Partial {
					continue
				}
				text := parts[key]
				delete(parts, key)
				if !caught.Load() && tail.Streamed {
					if seen++; seen <= tail.Skip {
						continue
					}
				}
				out = append(out, key+":"+text)
			}
			return nil
		}
		done := make(chan struct{})
		read := make(chan error, 1)
		w := q.NewLogWriter("r1", 10+round)
		go func() {
			read <- q.ReadLogs(ctx, LogQuery{RunID: "r1", Follow: true, Done: done, Tail: tail, CaughtUp: func() error { caught.Store(true); return nil }}, fn)
		}()
		for i := range 20000 {
			w.Line("main", jobs.Stdout, fmt.Appendf(nil, "w%d %d %s", round, i, strings.Repeat("q", i%300)))
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		close(done)
		if err := <-read; err != nil {
			t.Fatal(err)
		}
		whole := newLastLines(1 << 30)
		if err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, whole.batch); err != nil {
			t.Fatal(err)
		}
		k := len(whole.lines) - len(out)
		if k < 0 || !slices.Equal(whole.lines[k:], out) || len(out) < 3000 {
			t.Errorf("round %d: streamed %v skip %d: got %d lines, whole %d; not a suffix", round, tail.Streamed, tail.Skip, len(out), len(whole.lines))
			for i := range out {
				if k+i >= 0 && whole.lines[k+i] != out[i] {
					t.Errorf("first diff at %d: %.80q vs %.80q", i, out[i], whole.lines[k+i])
					break
				}
			}
		}
		if !tail.Streamed {
			t.Errorf("round %d: the read of the log's end was not streamed", round)
		}
	}
}
