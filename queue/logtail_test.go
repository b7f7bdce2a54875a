package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// lastLines keeps the last n lines of the batches it is given, as
// attempt/container/stream:text, a line's pieces joined, the way gantry
// logs --tail counts them.
type lastLines struct {
	n       int
	since   time.Time // lines whose batch is older are left out, as --since does
	parts   map[string]string
	lines   []string
	batches int
}

func newLastLines(n int) *lastLines { return &lastLines{n: n, parts: map[string]string{}} }

func (k *lastLines) batch(b *jobs.LogBatch) error {
	k.batches++
	for _, l := range b.Lines {
		key := fmt.Sprint(b.Attempt, "/", b.Container, "/", l.Stream)
		k.parts[key] += l.Text
		if l.Partial {
			continue
		}
		if b.Time.Before(k.since) {
			delete(k.parts, key)
			continue
		}
		k.lines = append(k.lines, key+":"+k.parts[key])
		delete(k.parts, key)
		if len(k.lines) > k.n {
			k.lines = k.lines[1:]
		}
	}
	return nil
}

// writeTailLog writes a log of two attempts of two containers through
// LogWriters, long lines (stored in pieces) among them, in many batches.
func writeTailLog(t *testing.T, ctx context.Context, q *Queue, run string) {
	t.Helper()
	for attempt := 1; attempt <= 2; attempt++ {
		w := q.NewLogWriter(run, attempt)
		for i := range 6000 {
			w.Line("main", jobs.Stdout, fmt.Appendf(nil, "a%d line %d %s", attempt, i, strings.Repeat("x", i%97)))
			if i%500 == 250 {
				w.Line("main", jobs.Stderr, fmt.Appendf(nil, "a%d long %d %s", attempt, i, strings.Repeat("y", 200<<10)))
			}
			if i%1500 == 0 {
				w.Line("side", jobs.Stdout, fmt.Appendf(nil, "a%d side %d", attempt, i))
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadLogTailOfAnAttempt: the end of one attempt's lines, or of one
// container's, read from the log's end, is the end of all of them read.
func TestReadLogTailOfAnAttempt(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	writeTailLog(t, ctx, q, "r1")
	for _, lq := range []LogQuery{{RunID: "r1", Attempt: 1}, {RunID: "r1", Attempt: 2}, {RunID: "r1", Container: "side"}, {RunID: "r1", Container: "main", Attempt: 1}} {
		for _, n := range []int{1, 4, 30, 100000} {
			whole := newLastLines(n)
			if err := q.ReadLogs(ctx, lq, whole.batch); err != nil {
				t.Fatal(err)
			}
			end := newLastLines(n)
			lq.Tail = &LogTail{Lines: n}
			if err := q.ReadLogs(ctx, lq, end.batch); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(end.lines, whole.lines) {
				t.Errorf("attempt %d, container %q, last %d: read from the end\n%.300q\nwant\n%.300q", lq.Attempt, lq.Container, n, end.lines, whole.lines)
			}
			// How many batches the end takes depends on where the
			// writer's 50 ms flushes cut them (a loaded machine cuts more,
			// smaller ones), so only its not reading the whole is checked.
			if n == 4 && lq.Container == "" && lq.Tail.Whole {
				t.Errorf("attempt %d, last 4: read the whole log (%d batches of %d)", lq.Attempt, end.batches, whole.batches)
			}
			lq.Tail = nil
		}
	}
}

// TestReadLogTailHoldsOnlyWhatItGives: a read of the log's end that asks
// for more lines than the log holds after Since gives the whole read's
// last lines, holding only the batches that hold them: before, a --tail
// longer than what --since leaves held every batch of the log.
func TestReadLogTailHoldsOnlyWhatItGives(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	writeTailLog(t, ctx, q, "r1")
	var times []time.Time
	if err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, func(b *jobs.LogBatch) error {
		times = append(times, b.Time)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	late := times[len(times)*2/3] // a third of the batches from here on
	for _, tc := range []struct {
		n     int
		since time.Time
	}{{100000, late}, {30, late}, {1, late}, {100000, time.Time{}}, {5, times[len(times)-1].Add(time.Second)}} {
		whole := newLastLines(tc.n)
		whole.since = tc.since
		if err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, whole.batch); err != nil {
			t.Fatal(err)
		}
		end := newLastLines(tc.n)
		end.since = tc.since
		if err := q.ReadLogs(ctx, LogQuery{RunID: "r1", Tail: &LogTail{Lines: tc.n, Since: tc.since}}, end.batch); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(end.lines, whole.lines) {
			t.Errorf("last %d since %v: read from the end\n%.300q\nwant\n%.300q", tc.n, tc.since, end.lines, whole.lines)
		}

		// What the window holds, read from the log's first batch: none
		// stored before Since, and none it could do without.
		r, err := newDirectReader(q.nc, StreamLogs, LogSubject("r1", ""))
		if err != nil {
			t.Fatal(err)
		}
		first, err := r.firstSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lq := LogQuery{RunID: "r1", Tail: &LogTail{Lines: tc.n, Since: tc.since}}
		window, _, _, err := q.readWindow(ctx, r, lq, first)
		r.close()
		if err != nil {
			t.Fatal(err)
		}
		if len(window) > 1 && (window[0].b.Time.Before(tc.since) || wholeLines(window[1:], tc.since) >= tc.n) {
			t.Errorf("last %d since %v: the window holds %d of the log's %d batches, the first stored %v, %d lines after it",
				tc.n, tc.since, len(window), len(times), window[0].b.Time, wholeLines(window[1:], tc.since))
		}
	}
}

// TestReadLogTailFollows: following from the log's end, a reader gets
// what holds the last lines stored, is told it caught up, then gets the
// lines stored after, each once, until the run is done.
func TestReadLogTailFollows(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	writeTailLog(t, ctx, q, "r1")
	whole := newLastLines(10)
	if err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, whole.batch); err != nil {
		t.Fatal(err)
	}

	var (
		end      = newLastLines(1 << 30)
		atCaught []string
		caught   = make(chan struct{})
		done     = make(chan struct{})
		read     = make(chan error, 1)
		tail     = &LogTail{Lines: 10}
	)
	go func() {
		read <- q.ReadLogs(ctx, LogQuery{RunID: "r1", Follow: true, Done: done, Tail: tail, CaughtUp: func() error {
			if atCaught == nil {
				atCaught = slices.Clone(end.lines)
				close(caught)
			}
			return nil
		}}, end.batch)
	}()
	select {
	case <-caught:
	case err := <-read:
		t.Fatalf("the read ended before it caught up: %v", err)
	}
	if len(atCaught) < 10 || !slices.Equal(atCaught[len(atCaught)-10:], whole.lines) || tail.Whole {
		t.Fatalf("caught up with %d lines, ending %q; want them to end %q (the whole read: %v)", len(atCaught), atCaught[max(0, len(atCaught)-10):], whole.lines, tail.Whole)
	}
	w := q.NewLogWriter("r1", 3)
	w.Line("main", jobs.Stdout, []byte("after"))
	w.Line("main", jobs.Stdout, []byte(strings.Repeat("z", 300<<10)))
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(done)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if got, want := end.lines[len(atCaught):], []string{"3/main/stdout:after", "3/main/stdout:" + strings.Repeat("z", 300<<10)}; !slices.Equal(got, want) {
		t.Errorf("after catching up: %.200q, want %.200q", got, want)
	}
}

// TestReadLogTailWithoutDirectGet: on a stream without direct get, a read
// of the log's end reads it all, through an ordered consumer, and says so.
func TestReadLogTailWithoutDirectGet(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := q.JetStream().Stream(ctx, StreamLogs)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.AllowDirect = false
	if _, err := q.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	w := q.NewLogWriter("r1", 1)
	for i := range 3000 {
		w.Line("main", "stdout", fmt.Appendf(nil, "line %d", i))
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	end := newLastLines(2)
	tail := &LogTail{Lines: 2}
	if err := q.ReadLogs(ctx, LogQuery{RunID: "r1", Tail: tail}, end.batch); err != nil {
		t.Fatal(err)
	}
	if want := []string{"1/main/stdout:line 2998", "1/main/stdout:line 2999"}; !slices.Equal(end.lines, want) || !tail.Whole {
		t.Errorf("last 2: %q (the whole log read: %v), want %q, read whole", end.lines, tail.Whole, want)
	}
}

// TestLineStartsDropsPiecesBegunBefore: a bounded window keeps a
// container's stream's lines from the first whose start it holds: it
// drops the pieces, at its start, of a line that began before it, and the
// first line of a stream whose line before is not in it, unless it is
// its container's first.
func TestLineStartsDropsPiecesBegunBefore(t *testing.T) {
	b := func(attempt int, container string, lines ...jobs.LogLine) tailBatch {
		return tailBatch{b: &jobs.LogBatch{Attempt: attempt, Container: container, Lines: lines}}
	}
	l := func(seq int64, stream, text string, partial bool) jobs.LogLine {
		return jobs.LogLine{Seq: seq, Stream: stream, Text: text, Partial: partial}
	}
	window := []tailBatch{
		b(1, "main", l(7, "stdout", "piece", true), l(8, "stdout", "end of a line begun before", false), l(9, "stdout", "whole", false)),
		b(1, "side", l(1, "stdout", "the side's first", false)),
		b(1, "main", l(10, "stderr", "after stdout's line", false)),
		b(2, "main", l(40, "stdout", "maybe an end", false), l(41, "stdout", "whole too", false)),
	}
	var got []string
	for _, tb := range lineStarts(window) {
		for _, l := range tb.b.Lines {
			got = append(got, l.Text)
		}
	}
	if want := []string{"whole", "the side's first", "after stdout's line", "whole too"}; !slices.Equal(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
}
