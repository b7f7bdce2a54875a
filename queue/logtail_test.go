package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/natstest"
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
// last lines, holding only the batches that hold them, and past MaxHold
// none: before, a --tail longer than the log held every batch of it.
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
		// it could do without; past MaxHold, none (it counts the lines).
		r, err := newDirectReader(q.nc, StreamLogs, LogSubject("r1", ""))
		if err != nil {
			t.Fatal(err)
		}
		first, err := r.probe(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		lq := LogQuery{RunID: "r1", Tail: &LogTail{Lines: tc.n, Since: tc.since}}
		tr, err := readWindow(ctx, r, lq, first.seq)
		r.close()
		if err != nil {
			t.Fatal(err)
		}
		window := tr.window
		if len(window) > 1 && wholeLines(window[1:], tc.since) >= tc.n {
			t.Errorf("last %d since %v: the window holds %d of the log's %d batches, %d lines after the first",
				tc.n, tc.since, len(window), len(times), wholeLines(window[1:], tc.since))
		}
		if r, err = newDirectReader(q.nc, StreamLogs, LogSubject("r1", "")); err != nil {
			t.Fatal(err)
		}
		lq.Tail.MaxHold = 64 << 10
		tr, err = readWindow(ctx, r, lq, first.seq)
		r.close()
		if err != nil {
			t.Fatal(err)
		}
		if size := tr.size; size > 64<<10+maxBatchBytes+1024 || tc.n == 100000 && (!tr.counting || tr.lines != len(whole.lines)) {
			t.Errorf("last %d since %v, holding at most 64 KiB: holds %d bytes of %d batches, counting %v %d lines (want %d)",
				tc.n, tc.since, size, len(tr.window), tr.counting, tr.lines, len(whole.lines))
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
	natstest.DirectGetsOff(t, ctx, q.JetStream(), StreamLogs)
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
	kept := func(ends map[string]bool) []string {
		var got []string
		for _, tb := range lineStarts(window, ends) {
			for _, l := range tb.b.Lines {
				got = append(got, l.Text)
			}
		}
		return got
	}
	if got, want := kept(nil), []string{"whole", "the side's first", "after stdout's line", "whole too"}; !slices.Equal(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
	// With what the batches dropped before the window ended: a stream
	// whose last line there ended starts its lines with the window's
	// first; one whose last line goes on drops the rest of it, whatever
	// its container's line before in the window.
	ends := map[string]bool{"1/main/stdout": true, "1/main/stderr": false, "2/main/stdout": true}
	if got, want := kept(ends), []string{"piece", "end of a line begun before", "whole", "the side's first", "maybe an end", "whole too"}; !slices.Equal(got, want) {
		t.Errorf("with the ends before the window: kept %q, want %q", got, want)
	}
}

// TestReadLogTailBoundedKeepsTheWindowsFirstLine: a read bounded by
// MaxBytes gives every line of the batches it keeps, the first too, where
// the batches it dropped before them end the line before; whatever cut
// the writer's batches (a loaded machine's 50 ms flushes cut them
// anywhere). It left out the first line of each stream, and gave nothing
// of a log whose last batch held one line and came after a batch bigger
// than the bound: the web UI's run page said "The last 0 lines".
func TestReadLogTailBoundedKeepsTheWindowsFirstLine(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const n = 3002 // 3000 lines of 1005 bytes, a line of 4106, "the last line"
	text := func(i int) string {
		switch {
		case i < 3000:
			return fmt.Sprintf("%04d %s", i, strings.Repeat("x", 1000))
		case i == 3000:
			return strings.Repeat("y", 4106)
		}
		return "the last line"
	}
	for ci, tc := range []struct {
		cuts  []int // the lines after which the writer flushes, besides its size bounds
		lines int   // how many the read gives: those of the last batches within 64 KiB, or of the last batch; 0: not checked
	}{
		{cuts: nil}, {cuts: []int{2000, 2100}}, // batches of 256 KiB: the last alone
		{cuts: []int{2999}, lines: 2},       // the long line and the last, a batch of their own
		{cuts: []int{2999, 3000}, lines: 2}, // each a batch of its own
		{cuts: []int{3000}, lines: 1},       // the last line alone, after a batch bigger than the bound
		{cuts: []int{2990}, lines: 11},
		{cuts: []int{2990, 3000}, lines: 11},
	} {
		run := fmt.Sprintf("r%d", ci)
		w := q.NewLogWriter(run, 1)
		close(w.stop) // only the cuts flush, and the size bounds
		<-w.done
		for i := range n {
			w.Line("main", jobs.Stdout, []byte(text(i)))
			if slices.Contains(tc.cuts, i) {
				w.mu.Lock()
				w.flushLocked("main")
				w.mu.Unlock()
			}
		}
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		close(w.done)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		whole := newLastLines(n)
		if err := q.ReadLogs(ctx, LogQuery{RunID: run}, whole.batch); err != nil {
			t.Fatal(err)
		}
		end := newLastLines(1000)
		tail := &LogTail{Lines: 1000, MaxBytes: 64 << 10}
		if err := q.ReadLogs(ctx, LogQuery{RunID: run, Tail: tail}, end.batch); err != nil {
			t.Fatal(err)
		}
		if len(end.lines) == 0 || tc.lines > 0 && len(end.lines) != tc.lines ||
			!slices.Equal(end.lines, whole.lines[len(whole.lines)-len(end.lines):]) || !tail.Bounded {
			var first string
			if len(end.lines) > 0 {
				first = end.lines[0][:min(len(end.lines[0]), 30)]
			}
			t.Errorf("batches cut after lines %v: read %d lines from %q (bounded: %v), want the log's last %d",
				tc.cuts, len(end.lines), first, tail.Bounded, tc.lines)
		}
	}
}

// batchWriter publishes log batches one at a time, numbering each
// container's lines of an attempt as a LogWriter does: a test decides
// which run's batch is stored next.
type batchWriter struct {
	t   *testing.T
	q   *Queue
	seq map[string]int64 // run/attempt/container → its last line's number
	at  time.Time
}

// line is a line of a batch: text, and whether its rest follows.
type line struct {
	text    string
	partial bool
}

func (w *batchWriter) batch(ctx context.Context, run string, attempt int, container string, lines ...line) {
	w.t.Helper()
	key := fmt.Sprint(run, "/", attempt, "/", container)
	var enc []byte
	for i, l := range lines {
		if i > 0 {
			enc = append(enc, ',')
		}
		w.seq[key]++
		enc = jobs.AppendLogLine(enc, w.seq[key], jobs.Stdout, []byte(l.text), l.partial, false)
	}
	w.at = w.at.Add(time.Millisecond)
	if _, err := w.q.js.Publish(ctx, LogSubject(run, container), jobs.AppendEncodedLogBatch(nil, run, attempt, container, w.at, enc)); err != nil {
		w.t.Fatal(err)
	}
}

// TestReadLogTailReadsEachBatchOnce: a read of a log's end fetches each
// of the run's batches once, and widens by the run's batches, not by the
// stream's, which holds other runs' batches too. The run's log here is
// 600 batches between which another run stored a third of its 1500, then
// 6 more after the rest of the other run's; a line in pieces spans the
// other run's. Before, a read that reached the log's start fetched it
// about twice, and 20 lines (the last 6 batches' and 2 before the other
// run's) took a step from 4 of the run's batches to all 600.
func TestReadLogTailReadsEachBatchOnce(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	w := &batchWriter{t: t, q: q, seq: map[string]int64{}, at: time.Now().Add(-time.Hour)}
	pad := strings.Repeat("p", 2000)
	other := 0
	otherBatch := func() {
		w.batch(ctx, "r2", 1, "main", line{text: fmt.Sprintf("other %d %s", other, pad)})
		other++
	}
	for i := range 600 {
		container := "main"
		if i%7 == 3 {
			container = "side"
		}
		w.batch(ctx, "r1", 1, container, line{text: fmt.Sprintf("r1 %d.0 %s", i, pad)}, line{text: fmt.Sprintf("r1 %d.1 %s", i, pad), partial: i%50 == 49})
		if i%3 == 0 {
			otherBatch()
		}
	}
	w.batch(ctx, "r1", 1, "main", line{text: "a line in pieces, begun", partial: true})
	for other < 1500 {
		otherBatch()
	}
	w.batch(ctx, "r1", 1, "main", line{text: " and ended after the other run's batches"})
	for i := range 5 {
		w.batch(ctx, "r1", 1, "side", line{text: fmt.Sprintf("end %d.0", i)}, line{text: fmt.Sprintf("end %d.1", i)})
	}

	fetched := func(fn func()) uint64 {
		before := q.nc.Stats().InBytes
		fn()
		return q.nc.Stats().InBytes - before
	}
	for _, tc := range []struct {
		n    int
		most float64 // the most bytes fetched, a share of those of the whole read
	}{{1, 0.05}, {11, 0.05}, {20, 0.05}, {100, 0.25}, {100000, 1.1}} {
		whole := newLastLines(tc.n)
		wholeBytes := fetched(func() {
			if err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, whole.batch); err != nil {
				t.Fatal(err)
			}
		})
		end := newLastLines(tc.n)
		tail := &LogTail{Lines: tc.n}
		endBytes := fetched(func() {
			if err := q.ReadLogs(ctx, LogQuery{RunID: "r1", Tail: tail}, end.batch); err != nil {
				t.Fatal(err)
			}
		})
		if !slices.Equal(end.lines, whole.lines) {
			t.Errorf("last %d: read from the end\n%.300q\nwant\n%.300q", tc.n, end.lines, whole.lines)
		}
		if float64(endBytes) > tc.most*float64(wholeBytes) {
			t.Errorf("last %d: the read from the end fetched %d bytes, the whole read %d: want at most %.0f%% of it", tc.n, endBytes, wholeBytes, 100*tc.most)
		}
		if tc.n == 100000 && !tail.Whole {
			t.Errorf("last %d: not read whole", tc.n)
		}
	}

	// Bounded by bytes (the web UI's read), a read fetches about what it
	// may hold, not the log.
	tail := &LogTail{Lines: 100000, MaxBytes: 64 << 10}
	n := 0
	got := fetched(func() {
		if err := q.ReadLogs(ctx, LogQuery{RunID: "r1", Tail: tail}, func(*jobs.LogBatch) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	})
	if !tail.Bounded || n == 0 || got > 4*64<<10 {
		t.Errorf("at most 64 KiB: %d batches given, %d bytes fetched (bounded: %v); want some, at most 256 KiB fetched, bounded", n, got, tail.Bounded)
	}
}

// skipLines keeps the lines of the batches it is given after the first
// tail.Skip that count, as gantry logs does of a streamed read; of a read
// that did not stream (Skip 0), all of them.
type skipLines struct {
	tail  *LogTail
	since time.Time
	parts map[string]string
	lines []string
	seen  int
}

func (k *skipLines) batch(b *jobs.LogBatch) error {
	for _, l := range b.Lines {
		key := fmt.Sprint(b.Attempt, "/", b.Container, "/", l.Stream)
		k.parts[key] += l.Text
		if l.Partial {
			continue
		}
		text := k.parts[key]
		delete(k.parts, key)
		if b.Time.Before(k.since) {
			continue
		}
		if k.seen++; k.seen > k.tail.Skip {
			k.lines = append(k.lines, key+":"+text)
		}
	}
	return nil
}

// TestReadLogTailStreamsPastMaxHold: a read of the log's end whose window
// is more than MaxHold gives its batches as it reads them again, and says
// how many lines to skip: the rest are the whole read's last lines, for
// a tail within the log, longer than it, and of one attempt or container.
func TestReadLogTailStreamsPastMaxHold(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	writeTailLog(t, ctx, q, "r1")
	for _, lq := range []LogQuery{{RunID: "r1"}, {RunID: "r1", Attempt: 2}, {RunID: "r1", Container: "side"}} {
		for _, n := range []int{3000, 7000, 100000} {
			whole := newLastLines(n)
			if err := q.ReadLogs(ctx, lq, whole.batch); err != nil {
				t.Fatal(err)
			}
			lq.Tail = &LogTail{Lines: n, MaxHold: 256 << 10}
			end := &skipLines{tail: lq.Tail, parts: map[string]string{}}
			if err := q.ReadLogs(ctx, lq, end.batch); err != nil {
				t.Fatal(err)
			}
			got := end.lines
			if !lq.Tail.Streamed {
				got = got[max(0, len(got)-n):]
			}
			if !slices.Equal(got, whole.lines) || lq.Container == "" && !lq.Tail.Streamed {
				t.Errorf("attempt %d, container %q, last %d (streamed %v, skip %d): read from the end\n%.300q\nwant\n%.300q",
					lq.Attempt, lq.Container, n, lq.Tail.Streamed, lq.Tail.Skip, end.lines, whole.lines)
			}
			lq.Tail = nil
		}
	}
}

// TestReadLogsSinceFollows: a following read with Since starts near it,
// gives what the whole read gives of Since on, is told it caught up, then
// gets the lines stored after, until the run is done.
func TestReadLogsSinceFollows(t *testing.T) {
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
	since := times[len(times)*3/4]
	whole := newLastLines(1 << 30)
	whole.since = since
	if err := q.ReadLogs(ctx, LogQuery{RunID: "r1"}, whole.batch); err != nil {
		t.Fatal(err)
	}

	var (
		got      = newLastLines(1 << 30)
		atCaught []string
		caught   = make(chan struct{})
		done     = make(chan struct{})
		read     = make(chan error, 1)
	)
	got.since = since
	go func() {
		read <- q.ReadLogs(ctx, LogQuery{RunID: "r1", Since: since, Skew: -1, Follow: true, Done: done, CaughtUp: func() error {
			if atCaught == nil {
				atCaught = slices.Clone(got.lines)
				close(caught)
			}
			return nil
		}}, got.batch)
	}()
	select {
	case <-caught:
	case err := <-read:
		t.Fatalf("the read ended before it caught up: %v", err)
	}
	if !slices.Equal(atCaught, whole.lines) || got.batches >= len(times) {
		t.Fatalf("caught up with %d lines of %d batches (the log has %d), want the whole read's %d", len(atCaught), got.batches, len(times), len(whole.lines))
	}
	w := q.NewLogWriter("r1", 3)
	w.Line("main", jobs.Stdout, []byte("after"))
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(done)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	if after := got.lines[len(atCaught):]; !slices.Equal(after, []string{"3/main/stdout:after"}) {
		t.Errorf("after catching up: %q", after)
	}
}
