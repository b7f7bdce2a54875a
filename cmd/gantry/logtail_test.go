package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// tailLog publishes a run's log batches straight to JetStream, as the
// worker's LogWriter would, numbering each container's attempt's lines.
type tailLog struct {
	t    *testing.T
	b    *boundedLogs
	run  string
	seq  map[string]int64
	at   time.Time
	seqs []uint64 // of the batches published, in order
}

// line is one LogLine to publish: pieces of a long line are lines with
// partial set.
type line struct {
	stream, text string
	partial      bool
}

func (g *tailLog) publish(attempt int, container string, lines ...line) {
	g.t.Helper()
	key := fmt.Sprint(attempt, "/", container)
	var enc []byte
	for i, l := range lines {
		if i > 0 {
			enc = append(enc, ',')
		}
		g.seq[key]++
		enc = jobs.AppendLogLine(enc, g.seq[key], l.stream, []byte(l.text), l.partial, false)
	}
	g.at = g.at.Add(time.Millisecond)
	data := jobs.AppendEncodedLogBatch(nil, g.run, attempt, container, g.at, enc)
	ack, err := g.b.q.JetStream().Publish(g.b.ctx, queue.LogSubject(g.run, container), data)
	if err != nil {
		g.t.Fatal(err)
	}
	g.seqs = append(g.seqs, ack.Sequence)
}

// submitTwo makes a run of a task with the containers main and side.
func submitTwo(t *testing.T, b *boundedLogs) string {
	t.Helper()
	td := []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"},{"name":"side","image":"i"}]}`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := b.c.Submit(b.ctx, &jobs.SubmitRequest{TaskDefinition: td})
		if err == nil {
			return r.RunID
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not take a run within 10s: %v", err)
		}
	}
}

// printLogs prints a run's logs as gantry logs does, with --tail n (and
// more), read from the log's end when fromEnd is set, from its first
// batch otherwise (as gantry logs read them before); it returns stdout
// and stderr, and what the read said.
func printLogs(t *testing.T, b *boundedLogs, id string, o client.LogOptions, prefix, timestamps bool, since time.Time, n int, fromEnd bool) (string, string, queue.LogTail) {
	t.Helper()
	var out, errOut bytes.Buffer
	pr := newLinePrinter(&out, &errOut, prefix)
	pr.timestamps = timestamps
	drops := newDropWatch(b.ctx, b.c, pr, &errOut)
	drops.sel = newLogSelect(drops, since, n)
	o.CaughtUp = drops.sel.caughtUp
	var tail queue.LogTail
	if fromEnd {
		tail = queue.LogTail{Lines: n, Since: since}
		o.Tail = &tail
	}
	err := b.c.Logs(b.ctx, id, o, drops.batch)
	if err == nil {
		err = drops.sel.caughtUp()
	}
	if err == nil {
		err = pr.flush()
	}
	if err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	return out.String(), errOut.String(), tail
}

// TestLogsTailIsTheWholeReadsEnd: gantry logs --tail N reads the log's end,
// and prints what reading it all and keeping the last N lines printed,
// byte for byte, on stdout and stderr (the lines said to be gone too): of
// a log of two containers whose batches interleave with another run's
// (and, near each attempt's end, a stretch of the other run's batches
// that a line in pieces spans), one of them silent but for its first and last lines, with lines long
// enough to be stored in pieces across batches, two attempts, a stream
// written only at the end; for N of 0 to more than the log holds, with
// --prefix, -t, --since and --container; before and after the stream
// (bounded to 1 MiB) dropped the log's first batches.
func TestLogsTailIsTheWholeReadsEnd(t *testing.T) {
	t.Parallel()
	b := startBoundedLogs(t)
	id := submitTwo(t, b)
	g := &tailLog{t: t, b: b, run: id, seq: map[string]int64{}, at: time.Now().Add(-time.Hour).UTC()}
	other := &tailLog{t: t, b: b, run: b.submit(), seq: map[string]int64{}, at: g.at}
	rnd := rand.New(rand.NewPCG(3, 4))
	text := func(i int) string { return fmt.Sprintf("line %d %s", i, strings.Repeat("x", rnd.IntN(60))) }
	write := func(attempt, batches int, sideLast bool) {
		g.publish(attempt, "side", line{jobs.Stdout, "side starts", false})
		for i := range batches {
			var lines []line
			for j := range 1 + rnd.IntN(4) {
				lines = append(lines, line{jobs.Stdout, text(i*10 + j), false})
			}
			if i%37 == 5 {
				lines = append(lines, line{jobs.Stderr, "warning " + text(i), false})
			}
			switch {
			case i%53 == 7: // a long line in pieces, over three batches
				g.publish(attempt, "main", append(lines, line{jobs.Stdout, "long-a ", true})...)
				g.publish(attempt, "main", line{jobs.Stdout, "long-b ", true})
				g.publish(attempt, "main", line{jobs.Stdout, "long-c", false}, line{jobs.Stdout, text(i), false})
			case i%29 == 3: // ends with a piece that the next batch ends
				g.publish(attempt, "main", append(lines, line{jobs.Stderr, "piece-1 ", true})...)
				g.publish(attempt, "main", line{jobs.Stderr, "piece-2", false})
			default:
				g.publish(attempt, "main", lines...)
			}
			if i%3 == 0 {
				other.publish(1, "main", line{jobs.Stdout, "another run's line", false})
			}
		}
		// Another run's output, a stretch of it between this run's
		// batches, with a line in pieces across it: a read from the end
		// widens by this run's batches, not the stream's.
		g.publish(attempt, "main", line{jobs.Stdout, "across-a ", true})
		for i := range 150 {
			other.publish(1, "main", line{jobs.Stdout, "another run's stretch " + text(i), false})
		}
		g.publish(attempt, "main", line{jobs.Stdout, "across-b", false})
		// Only at the end: stderr lines of main, the side's last line.
		g.publish(attempt, "main", line{jobs.Stderr, "Traceback", false}, line{jobs.Stderr, "  boom", false})
		if sideLast {
			g.publish(attempt, "side", line{jobs.Stdout, "side ends", false})
		}
	}
	// The run's first batch is attempt 3's side's: the stream drops it
	// below, and its next line is the log's last.
	g.publish(3, "side", line{jobs.Stdout, "s1", false})
	write(1, 300, true)
	write(2, 300, false)

	since := g.at.Add(-50 * time.Millisecond)
	compare := func(stage string, wantPartial bool) {
		t.Helper()
		partial := false
		for _, n := range []int{0, 1, 2, 3, 5, 20, 77, 400, 100000} {
			for _, c := range []struct {
				name           string
				o              client.LogOptions
				prefix, stamps bool
				since          time.Time
			}{
				{name: "plain"},
				{name: "--prefix -t", prefix: true, stamps: true},
				{name: "--since", prefix: true, since: since},
				{name: "--container side", o: client.LogOptions{Container: "side"}, prefix: true},
				{name: "--container main", o: client.LogOptions{Container: "main"}},
			} {
				wantOut, wantErr, _ := printLogs(t, b, id, c.o, c.prefix, c.stamps, c.since, n, false)
				out, errOut, tail := printLogs(t, b, id, c.o, c.prefix, c.stamps, c.since, n, true)
				if out != wantOut || errOut != wantErr {
					t.Errorf("%s: --tail %d %s: from the end\n%s\nstderr %q\nwant (the whole log read)\n%s\nstderr %q",
						stage, n, c.name, out, errOut, wantOut, wantErr)
				}
				if n == 20 && c.name == "plain" && !tail.Whole {
					partial = true
				}
			}
		}
		if partial != wantPartial {
			t.Errorf("%s: --tail 20 read part of the log: %v, want %v", stage, partial, wantPartial)
		}
	}
	compare("all kept", true)

	// Past 1 MiB the stream drops the first batches, the side's first
	// line of attempts 1 and 3 among them; attempt 1's last one stays.
	st, err := b.q.JetStream().Stream(b.ctx, queue.StreamLogs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; st.CachedInfo().State.FirstSeq <= g.seqs[10]; i++ {
		other.publish(1, "main", line{jobs.Stdout, "filler " + text(i), false})
		if _, err := st.Info(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	g.publish(2, "side", line{jobs.Stdout, "side again", false})
	for i := range 100 {
		g.publish(3, "main", line{jobs.Stdout, "after the drop " + text(i), false})
	}
	g.publish(1, "side", line{jobs.Stdout, "attempt 1's side, late", false})
	g.publish(3, "side", line{jobs.Stdout, "s2", false})
	// The last line, in pieces, begins far before the first window.
	g.publish(3, "main", line{jobs.Stdout, "end-a ", true})
	for i := range 100 {
		other.publish(1, "main", line{jobs.Stdout, "another run's line " + text(i), false})
	}
	g.publish(3, "main", line{jobs.Stdout, "end-b ", true})
	g.publish(3, "main", line{jobs.Stdout, "end-c", false})
	compare("first batches dropped", true)
	if out, errOut, tail := printLogs(t, b, id, client.LogOptions{}, false, false, time.Time{}, 2, true); tail.Whole ||
		out != "s2\nend-a end-b end-c\n" ||
		!strings.HasPrefix(errOut, "gantry: the first 1 lines of container side (attempt 3) are no longer kept") {
		t.Errorf("--tail 2: %q, stderr %q (the whole log read: %v)", out, errOut, tail.Whole)
	}
}
