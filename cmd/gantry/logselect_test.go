package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/natstest"
)

// tailRun is a run whose log, stored in this order one batch at a time,
// is
//
//	a stdout  a1, a2
//	b stdout  b1; b stderr b-err1
//	a stdout  "long-" (a piece)        ← since: the time before it
//	a stdout  "line"  (the line's end)
//	b stdout  b-last, without a newline
//
// six lines as the printer counts them, of two containers.
type tailRun struct {
	b     *boundedLogs
	id    string
	w     *queue.LogWriter
	since time.Time
	n     int
}

func writeTailRun(t *testing.T, b *boundedLogs) *tailRun {
	t.Helper()
	r := &tailRun{b: b, id: b.submit()}
	r.w = b.q.NewLogWriter(r.id, 1)
	r.step(func(w *queue.LogWriter) {
		w.Line("a", jobs.Stdout, []byte("a1"))
		w.Line("a", jobs.Stdout, []byte("a2"))
	})
	r.step(func(w *queue.LogWriter) {
		w.Line("b", jobs.Stdout, []byte("b1"))
		w.Line("b", jobs.Stderr, []byte("b-err1"))
	})
	r.since = time.Now()
	r.step(func(w *queue.LogWriter) { w.Piece("a", jobs.Stdout, []byte("long-")) })
	r.step(func(w *queue.LogWriter) { w.Line("a", jobs.Stdout, []byte("line")) })
	r.step(func(w *queue.LogWriter) { w.End("b", jobs.Stdout, []byte("b-last")) })
	return r
}

// step writes one batch and waits until it is stored.
func (r *tailRun) step(write func(*queue.LogWriter)) {
	r.b.t.Helper()
	write(r.w)
	r.n++
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if p, err := r.b.c.LogPosition(r.b.ctx, r.id, ""); err == nil && p.Messages >= uint64(r.n) {
			return
		}
		if time.Now().After(deadline) {
			r.b.t.Fatalf("log batch %d not stored within 10s", r.n)
		}
	}
}

// logsCmd runs gantry logs with args against b's server.
func (b *boundedLogs) logsCmd(ctx context.Context, out, errOut io.Writer, args ...string) error {
	root := newRoot()
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetArgs(append([]string{"logs", "--nats", b.nc.ConnectedUrl()}, args...))
	return root.ExecuteContext(ctx)
}

// logReads are the two ways gantry logs reads a log: by batched direct
// get, and, where the NATS server cannot answer those (before 2.11, or a
// stream without direct get), through an ordered consumer. The tests of
// --tail and --since run against both, the second forced by turning the
// log stream's direct get off, and want the same output.
var logReads = []struct {
	name     string
	consumer bool
}{
	{"direct get", false},
	{"ordered consumer", true},
}

// startLogRead starts a server for a test of how gantry logs reads, with
// the log stream's direct get off when the read is through a consumer.
func startLogRead(t *testing.T, consumer bool) *boundedLogs {
	t.Helper()
	b := startBoundedLogs(t)
	if !consumer {
		return b
	}
	// The server makes its streams (direct get on) before it answers:
	// once it has taken a run, what is turned off here stays off.
	b.submit()
	natstest.DirectGetsOff(t, b.ctx, b.q.JetStream(), queue.StreamLogs)
	return b
}

// TestLogsTailAndSince: --tail N prints the last N lines of the log, of
// all its containers, each on its own output, a line stored in pieces
// counting as one and a last line without newline printed without; --since
// the lines of the batches stored from a time on; both, the last N of
// those. So whether the log is read by direct get or through a consumer.
func TestLogsTailAndSince(t *testing.T) {
	for _, read := range logReads {
		t.Run(read.name, func(t *testing.T) { testLogsTailAndSince(t, read.consumer) })
	}
}

func testLogsTailAndSince(t *testing.T, consumer bool) {
	b := startLogRead(t, consumer)
	r := writeTailRun(t, b)
	since := r.since.Format(time.RFC3339Nano)
	for _, tc := range []struct {
		name           string
		args           []string
		stdout, stderr string
	}{
		{"all", nil, "a1\na2\nb1\nlong-line\nb-last", "b-err1\n"},
		{"tail all", []string{"--tail", "all"}, "a1\na2\nb1\nlong-line\nb-last", "b-err1\n"},
		{"tail past the start", []string{"--tail", "100"}, "a1\na2\nb1\nlong-line\nb-last", "b-err1\n"},
		{"tail 4", []string{"--tail", "4"}, "b1\nlong-line\nb-last", "b-err1\n"},
		{"tail 3", []string{"--tail", "3"}, "long-line\nb-last", "b-err1\n"},
		{"tail 2: the pieces are one line", []string{"--tail", "2"}, "long-line\nb-last", ""},
		{"tail 1: without newline", []string{"--tail", "1"}, "b-last", ""},
		{"tail 0", []string{"--tail", "0"}, "", ""},
		{"tail with prefix", []string{"--tail", "2", "--prefix"}, "a|stdout long-line\nb|stdout b-last\n", ""},
		{"since", []string{"--since", since}, "long-line\nb-last", ""},
		{"since a duration", []string{"--since", "1h"}, "a1\na2\nb1\nlong-line\nb-last", "b-err1\n"},
		{"since and tail", []string{"--since", since, "--tail", "1"}, "b-last", ""},
		{"since and tail past it", []string{"--since", since, "--tail", "5"}, "long-line\nb-last", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := b.logsCmd(b.ctx, &out, &errOut, append([]string{r.id}, tc.args...)...); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.stdout || errOut.String() != tc.stderr {
				t.Errorf("gantry logs %s: stdout %q, stderr %q; want %q, %q", strings.Join(tc.args, " "), out.String(), errOut.String(), tc.stdout, tc.stderr)
			}
		})
	}
}

// TestLogsFollowTail: gantry logs -f --tail N prints the last N lines
// stored once it has read them, then the lines written after, until the
// run ends; with --tail 0 only the latter. So whether the log is read by
// direct get or through a consumer.
func TestLogsFollowTail(t *testing.T) {
	for _, read := range logReads {
		t.Run(read.name, func(t *testing.T) { testLogsFollowTail(t, read.consumer) })
	}
}

func testLogsFollowTail(t *testing.T, consumer bool) {
	b := startLogRead(t, consumer)
	r := writeTailRun(t, b)
	for i, tc := range []struct {
		tail, before string
	}{
		{"2", "long-line\nb-last"},
		{"0", ""},
	} {
		t.Run("tail "+tc.tail, func(t *testing.T) {
			ctx, cancel := context.WithCancel(b.ctx)
			defer cancel()
			var out, errOut syncBuffer
			done := make(chan error, 1)
			go func() { done <- b.logsCmd(ctx, &out, &errOut, "-f", "--tail", tc.tail, r.id) }()
			want := func(s string) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); out.String() != s; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("stdout %q, want %q", out.String(), s)
					}
				}
			}
			if tc.before == "" {
				time.Sleep(300 * time.Millisecond) // what is stored is read, and not printed
			}
			want(tc.before)
			// The read is the one asked for: a consumer of the log stream
			// is the fallback's.
			st, err := b.q.JetStream().Stream(ctx, queue.StreamLogs)
			if err != nil {
				t.Fatal(err)
			}
			if n := st.CachedInfo().State.Consumers; (n > 0) != consumer {
				t.Fatalf("the log stream has %d consumers while gantry logs -f reads it; want them only when it reads through one: %v", n, consumer)
			}
			// Another attempt's line, written after.
			w := b.q.NewLogWriter(r.id, 2+i)
			w.Line("b", jobs.Stdout, []byte("new"))
			if err := w.Close(b.ctx); err != nil {
				t.Fatal(err)
			}
			after := "new\n"
			if tc.before != "" {
				after = tc.before + "\n" + after // b-last gets its newline
			}
			want(after)
			if i == 0 {
				cancel()
				<-done
				return
			}
			if _, err := b.c.Stop(b.ctx, r.id, ""); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if out.String() != after {
				t.Errorf("stdout %q once the run ended, want %q", out.String(), after)
			}
		})
	}
}

// TestLogsTailSinceDropReports: lines --tail or --since leave out are not
// reported as dropped by the stream; lines the stream dropped between two
// lines printed still are.
func TestLogsTailSinceDropReports(t *testing.T) {
	b := startBoundedLogs(t)
	t0 := time.Now()
	batch := func(at time.Duration, seqs ...int64) *jobs.LogBatch {
		lb := &jobs.LogBatch{Attempt: 1, Container: "main", Time: t0.Add(at)}
		for _, s := range seqs {
			lb.Lines = append(lb.Lines, jobs.LogLine{Seq: s, Stream: jobs.Stdout, Text: "l" + strconv.FormatInt(s, 10)})
		}
		return lb
	}
	const gap4to6 = "gantry: 3 lines of container main (attempt 1), 4 to 6, were dropped before they were read"
	for _, tc := range []struct {
		name   string
		since  time.Duration // from t0; 0: none
		tail   int
		stdout string
		gap    bool
	}{
		{"all", 0, -1, "l1\nl2\nl3\nl7\nl8\n", true},
		{"tail across the gap", 0, 3, "l3\nl7\nl8\n", true},
		{"tail after the gap", 0, 2, "l7\nl8\n", false},
		{"since after the gap", time.Second, -1, "l7\nl8\n", false},
		{"since before the gap", time.Millisecond, 3, "l3\nl7\nl8\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			d := newDropWatch(b.ctx, b.c, newLinePrinter(&out, &errOut, false), &errOut)
			if tc.since != 0 || tc.tail >= 0 {
				var since time.Time
				if tc.since != 0 {
					since = t0.Add(tc.since)
				}
				d.sel = newLogSelect(d, since, tc.tail)
			}
			for _, lb := range []*jobs.LogBatch{batch(0, 1, 2), batch(time.Millisecond, 3), batch(time.Second, 7, 8)} {
				if err := d.batch(lb); err != nil {
					t.Fatal(err)
				}
			}
			if d.sel != nil {
				if err := d.sel.caughtUp(); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Contains(errOut.String(), gap4to6); out.String() != tc.stdout || got != tc.gap ||
				strings.Count(errOut.String(), "\n") != map[bool]int{true: 1}[tc.gap] {
				t.Errorf("stdout %q, stderr %q; want stdout %q, the gap reported: %v", out.String(), errOut.String(), tc.stdout, tc.gap)
			}
		})
	}
}

// TestLogsTailSinceBadValues: a bad --tail or --since is refused before
// anything is read, naming the flag and what it takes; both at once.
func TestLogsTailSinceBadValues(t *testing.T) {
	_, stderr, code := gantryCmd(context.Background(), "logs", "--nats", "nats://127.0.0.1:1", "--tail", "-1", "--since", "yesterday", "r1")
	want := `gantry: invalid --tail "-1": want a number of lines, 0 or more, or all
invalid --since "yesterday": want a duration back from now (10m, 1h30m, 2d) or an RFC 3339 time (2026-01-02T15:04:05Z)
`
	if stderr != want || code != exitGantryError {
		t.Errorf("exit %d, stderr %q; want %d, %q", code, stderr, exitGantryError, want)
	}
	for _, args := range [][]string{{"--tail", "ten"}, {"--tail", "1.5"}, {"--since", "-5m"}, {"--since", "2026-01-02"}} {
		_, stderr, _ := gantryCmd(context.Background(), append([]string{"logs", "--nats", "nats://127.0.0.1:1", "r1"}, args...)...)
		if !strings.HasPrefix(stderr, "gantry: invalid "+args[0]+" ") {
			t.Errorf("gantry logs %s: stderr %q", strings.Join(args, " "), stderr)
		}
	}
}

func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"10m", "1h30m", "2d", "1d12h", "1w", "0s", "-5m", "2026-01-02T15:04:05Z", "2026-01-02T15:04:05.123+02:00", "yesterday", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSince(s, now)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid --since ") {
				t.Fatalf("parseSince(%q): error %q does not name the flag", s, err)
			}
			return
		}
		if d, derr := jobs.ParseDuration(s); derr == nil {
			if !got.Equal(now.Add(-d)) || got.After(now) {
				t.Fatalf("parseSince(%q) = %v, want %v", s, got, now.Add(-d))
			}
		} else if _, terr := time.Parse(time.RFC3339Nano, s); terr != nil {
			t.Fatalf("parseSince(%q) = %v, but it is neither a duration nor an RFC 3339 time", s, got)
		}
	})
}

func FuzzParseTail(f *testing.F) {
	for _, s := range []string{"0", "10", "all", "-1", "ten", "", "+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseTail(s)
		switch {
		case err != nil && !strings.HasPrefix(err.Error(), "invalid --tail "):
			t.Fatalf("parseTail(%q): error %q does not name the flag", s, err)
		case err == nil && n < 0 && s != "all":
			t.Fatalf("parseTail(%q) = %d", s, n)
		}
	})
}

// stampsAt are the times the timestamp tests give their batches, and how
// --timestamps prints them: in UTC, always with nine digits.
var (
	stampAt = []time.Time{
		time.Date(2026, 12, 6, 7, 14, 18, 123456789, time.FixedZone("CET", 3600)),
		time.Date(2026, 12, 6, 6, 14, 18, 500000000, time.UTC),
		time.Date(2026, 12, 6, 6, 14, 19, 0, time.UTC),
		time.Date(2026, 12, 6, 6, 14, 19, 7000, time.UTC),
	}
	stampOf = []string{
		"2026-12-06T06:14:18.123456789Z",
		"2026-12-06T06:14:18.500000000Z",
		"2026-12-06T06:14:19.000000000Z",
		"2026-12-06T06:14:19.000007000Z",
	}
)

// TestLogTimestamps: with --timestamps every line starts with its batch's
// time, after the prefix if any; a line in pieces has its first piece's.
func TestLogTimestamps(t *testing.T) {
	out := func(text string) jobs.LogLine { return jobs.LogLine{Stream: jobs.Stdout, Text: text} }
	piece := func(text string) jobs.LogLine { return jobs.LogLine{Stream: jobs.Stdout, Text: text, Partial: true} }
	errl := func(text string) jobs.LogLine { return jobs.LogLine{Stream: jobs.Stderr, Text: text} }
	batch := func(at int, container string, lines ...jobs.LogLine) *jobs.LogBatch {
		return &jobs.LogBatch{Container: container, Attempt: 1, Time: stampAt[at], Lines: lines}
	}
	for _, c := range []struct {
		name    string
		prefix  bool
		batches []*jobs.LogBatch
		want    string
	}{
		{"a batch's lines share its time, both streams", false,
			[]*jobs.LogBatch{batch(0, "main", out("a"), errl("e")), batch(1, "main", out("b"))},
			stampOf[0] + " a\n" + stampOf[0] + " e\n" + stampOf[1] + " b\n"},
		{"nine digits always", false, []*jobs.LogBatch{batch(2, "main", out("x")), batch(3, "main", out("y"))},
			stampOf[2] + " x\n" + stampOf[3] + " y\n"},
		{"a line in pieces: its first piece's time", false,
			[]*jobs.LogBatch{batch(0, "main", out("a"), piece("lo")), batch(1, "main", piece("n")), batch(2, "main", out("g"), out("b"))},
			stampOf[0] + " a\n" + stampOf[0] + " long\n" + stampOf[2] + " b\n"},
		{"pieces and the other stream", false,
			[]*jobs.LogBatch{batch(0, "main", piece("ab")), batch(1, "main", errl("e"), out("c"))},
			stampOf[1] + " e\n" + stampOf[0] + " abc\n"},
		{"after the prefix", true, []*jobs.LogBatch{batch(0, "main", out("a"), errl("e"))},
			"main|stdout " + stampOf[0] + " a\nmain|stderr " + stampOf[0] + " e\n"},
		{"a last line without newline", false, []*jobs.LogBatch{
			batch(0, "one", jobs.LogLine{Stream: jobs.Stdout, Text: "x", NoNewline: true}), batch(1, "two", out("y"))},
			stampOf[0] + " x\n" + stampOf[1] + " y\n"},
		{"an empty line", false, []*jobs.LogBatch{batch(0, "main", out(""))}, stampOf[0] + " \n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newLinePrinter(&buf, &buf, c.prefix)
			p.timestamps = true
			for _, b := range c.batches {
				if err := p.batch(b); err != nil {
					t.Fatal(err)
				}
			}
			if buf.String() != c.want {
				t.Fatalf("printed\n%q, want\n%q", buf.String(), c.want)
			}
			for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				if c.prefix {
					_, l, _ = strings.Cut(l, " ")
				}
				stamp, _, _ := strings.Cut(l, " ")
				if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
					t.Errorf("line %q: %v", l, err)
				}
			}
		})
	}
}

// TestLogTimestampsTailSince: the lines --tail and --since keep carry the
// times they would without them; a line in pieces, kept whole, its first
// piece's, though --since goes by its last's batch.
func TestLogTimestampsTailSince(t *testing.T) {
	batches := []*jobs.LogBatch{
		{Container: "a", Attempt: 1, Time: stampAt[0], Lines: []jobs.LogLine{{Seq: 1, Stream: jobs.Stdout, Text: "a1"}}},
		{Container: "a", Attempt: 1, Time: stampAt[1], Lines: []jobs.LogLine{{Seq: 2, Stream: jobs.Stdout, Text: "long-", Partial: true}}},
		{Container: "a", Attempt: 1, Time: stampAt[2], Lines: []jobs.LogLine{{Seq: 3, Stream: jobs.Stdout, Text: "line"}, {Seq: 4, Stream: jobs.Stdout, Text: "a2"}}},
		{Container: "b", Attempt: 1, Time: stampAt[3], Lines: []jobs.LogLine{{Seq: 1, Stream: jobs.Stdout, Text: "b1"}}},
	}
	a1, long, a2, b1 := stampOf[0]+" a1\n", stampOf[1]+" long-line\n", stampOf[2]+" a2\n", stampOf[3]+" b1\n"
	for _, c := range []struct {
		name  string
		since time.Time
		tail  int
		want  string
	}{
		{"all", time.Time{}, -1, a1 + long + a2 + b1},
		{"tail 3", time.Time{}, 3, long + a2 + b1},
		{"tail 1", time.Time{}, 1, b1},
		{"since the line's last piece", stampAt[2], -1, long + a2 + b1},
		{"since after it", stampAt[3], -1, b1},
		{"since and tail", stampAt[1], 2, a2 + b1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			d := newDropWatch(context.Background(), nil, newLinePrinter(&out, &errOut, false), &errOut)
			d.pr.timestamps = true
			if c.tail >= 0 || !c.since.IsZero() {
				d.sel = newLogSelect(d, c.since, c.tail)
			}
			for _, b := range batches {
				if err := d.batch(b); err != nil {
					t.Fatal(err)
				}
			}
			if d.sel != nil {
				if err := d.sel.caughtUp(); err != nil {
					t.Fatal(err)
				}
			}
			if out.String() != c.want || errOut.Len() > 0 {
				t.Errorf("stdout\n%q, stderr %q; want\n%q", out.String(), errOut.String(), c.want)
			}
		})
	}
}

// TestLogsTailHoldsALineUpToTheBound: --tail holds at most maxHeldLine of
// a line in pieces until it prints it, as the printer does, and says on
// stderr how much of the line it left out; a line the ring does not keep
// is not reported, and without --tail the line is printed whole.
func TestLogsTailHoldsALineUpToTheBound(t *testing.T) {
	old := maxHeldLine
	maxHeldLine = 8
	t.Cleanup(func() { maxHeldLine = old })
	piece := func(seq int64, text string, partial bool) *jobs.LogBatch {
		return &jobs.LogBatch{Container: "main", Attempt: 1, Lines: []jobs.LogLine{{Seq: seq, Stream: jobs.Stdout, Text: text, Partial: partial}}}
	}
	batches := []*jobs.LogBatch{
		piece(1, "0123", true), piece(2, "4567", true), piece(3, "89ab", true), piece(4, "cdef", true), piece(5, "-end", false),
		piece(6, "short", false),
	}
	cut := "gantry: the line above of container main (attempt 1) is cut: --tail holds about 8 bytes of a line, and left out its last 12 (gantry logs without --tail prints it whole)\n"
	for _, c := range []struct {
		name              string
		tail              int
		wantOut, wantErr  string
		afterFirstBatches int // caught up after these: the line's rest comes after
	}{
		{"--tail 2", 2, "01234567\nshort\n", cut, 6},
		{"--tail 1", 1, "short\n", "", 6},
		{"all", -1, "0123456789abcdef-end\nshort\n", "", 6},
		{"caught up within the line", 2, "01234567\nshort\n", cut, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			d := newDropWatch(context.Background(), nil, newLinePrinter(&out, &errOut, false), &errOut)
			d.sel = newLogSelect(d, time.Time{}, c.tail)
			for i, b := range batches {
				if i == c.afterFirstBatches {
					if err := d.sel.caughtUp(); err != nil {
						t.Fatal(err)
					}
				}
				if err := d.batch(b); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.sel.caughtUp(); err != nil {
				t.Fatal(err)
			}
			if err := d.pr.flush(); err != nil {
				t.Fatal(err)
			}
			if out.String() != c.wantOut || errOut.String() != c.wantErr {
				t.Errorf("stdout %q, stderr %q; want %q, %q", out.String(), errOut.String(), c.wantOut, c.wantErr)
			}
			if len(d.sel.held) > 0 || len(d.sel.parts) > 0 {
				t.Errorf("still held: %v %v", d.sel.held, d.sel.parts)
			}
		})
	}
}

// TestLogsTailShortenedSays: a streamed read of the log's end whose
// start the stream dropped while it was read (LogTail.Shortened) prints
// the lines left, primed ones skipped, and says once on stderr, before
// them, that the oldest of the last N lines went and why.
func TestLogsTailShortenedSays(t *testing.T) {
	b := startBoundedLogs(t)
	t0 := time.Now()
	batch := func(seqs ...int64) *jobs.LogBatch {
		lb := &jobs.LogBatch{Attempt: 1, Container: "main", Time: t0}
		for _, s := range seqs {
			lb.Lines = append(lb.Lines, jobs.LogLine{Seq: s, Stream: jobs.Stdout, Text: "l" + strconv.FormatInt(s, 10)})
		}
		return lb
	}
	var out, errOut bytes.Buffer
	d := newDropWatch(b.ctx, b.c, newLinePrinter(&out, &errOut, false), &errOut)
	d.sel = newLogSelect(d, time.Time{}, 5)
	read := &queue.LogTail{Lines: 5, Streamed: true, Skip: 2}
	d.sel.read = read
	if err := d.batch(batch(1, 2)); err != nil { // primed
		t.Fatal(err)
	}
	read.Shortened = true // the window's first batch, 3 to 5, is gone
	for _, lb := range []*jobs.LogBatch{batch(6, 7), batch(8)} {
		if err := d.batch(lb); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.sel.caughtUp(); err != nil {
		t.Fatal(err)
	}
	const want = "gantry: the oldest of the last 5 lines were dropped while --tail read them; the lines printed after this are all that is left: the GANTRY_LOGS stream keeps lines"
	if out.String() != "l6\nl7\nl8\n" || !strings.HasPrefix(errOut.String(), want) || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("stdout %q, stderr %q; want stdout l6 to l8, stderr one line starting %q", out.String(), errOut.String(), want)
	}
}
