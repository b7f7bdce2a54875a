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

// readLogs prints a run's logs as gantry logs does with --since since
// (zero: none) and --tail n (-1: all): o says how it reads them, tail
// how it reads the log's end (nil: from where o says). It returns stdout
// and stderr.
func readLogs(t *testing.T, b *boundedLogs, id string, o client.LogOptions, tail *queue.LogTail, prefix, stamps bool, since time.Time, n int) (string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	pr := newLinePrinter(&out, &errOut, prefix)
	pr.timestamps = stamps
	drops := newDropWatch(b.ctx, b.c, pr, &errOut)
	if n >= 0 || !since.IsZero() {
		drops.sel = newLogSelect(drops, since, n)
		drops.sel.read = tail
		o.CaughtUp = drops.sel.caughtUp
	}
	o.Tail = tail
	err := b.c.Logs(b.ctx, id, o, drops.batch)
	if err == nil && drops.sel != nil {
		err = drops.sel.caughtUp()
	}
	if err == nil {
		err = pr.flush()
	}
	if err != nil {
		t.Fatalf("logs %s: %v", id, err)
	}
	return out.String(), errOut.String()
}

// TestLogsSinceReadsFromItsTime: gantry logs --since T starts at the first
// batch that can hold a line of T on, and prints what reading the whole
// log and dropping the lines before T printed, byte for byte, on stdout
// and stderr; so does --tail N with --since T, and --tail N holding at
// most a few bytes (counting the lines, then reading the window again and
// printing them as they come). The log: two containers, three attempts
// (the third's side writes at the log's start and end, among the
// others), lines in pieces across batches, another run's batches among
// them; attempt 2's worker clock runs ahead of the server's, attempt 3's
// behind. T runs over the log's batch times, and just around them; before
// and after the stream (bounded to 1 MiB) dropped the log's first batches.
func TestLogsSinceReadsFromItsTime(t *testing.T) {
	t.Parallel()
	b := startBoundedLogs(t)
	id := submitTwo(t, b)
	g := &tailLog{t: t, b: b, run: id, seq: map[string]int64{}}
	other := &tailLog{t: t, b: b, run: b.submit(), seq: map[string]int64{}}
	// A worker's clock: attempt 2's ahead of the NATS server's, 3's behind.
	ahead := map[int]time.Duration{1: 0, 2: 200 * time.Millisecond, 3: -20 * time.Millisecond}
	var times []time.Time // of the run's batches
	publish := func(attempt int, container string, lines ...line) {
		t.Helper()
		g.at = time.Now().Add(ahead[attempt] - time.Millisecond) // publish adds 1 ms
		g.publish(attempt, container, lines...)
		times = append(times, g.at)
	}
	otherBatch := func(text string) {
		other.at = time.Now()
		other.publish(1, "main", line{jobs.Stdout, text, false})
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	text := func(i int) string { return fmt.Sprintf("line %d %s", i, strings.Repeat("x", rnd.IntN(60))) }
	write := func(attempt, batches int, sideLast bool) {
		publish(attempt, "side", line{jobs.Stdout, "side starts", false})
		for i := range batches {
			var lines []line
			for j := range 1 + rnd.IntN(4) {
				lines = append(lines, line{jobs.Stdout, text(i*10 + j), false})
			}
			switch {
			case i%41 == 7: // a long line in pieces, over three batches
				publish(attempt, "main", append(lines, line{jobs.Stdout, "long-a ", true})...)
				publish(attempt, "main", line{jobs.Stdout, "long-b ", true})
				publish(attempt, "main", line{jobs.Stdout, "long-c", false}, line{jobs.Stdout, text(i), false})
			case i%23 == 3: // ends with a stderr piece that the next batch ends
				publish(attempt, "main", append(lines, line{jobs.Stderr, "piece-1 ", true})...)
				publish(attempt, "main", line{jobs.Stderr, "piece-2", false})
			default:
				publish(attempt, "main", lines...)
			}
			if i%3 == 0 {
				otherBatch("another run's line")
			}
			if i%60 == 30 {
				publish(attempt, "side", line{jobs.Stdout, "side " + text(i), false})
			}
		}
		publish(attempt, "main", line{jobs.Stderr, "Traceback", false}, line{jobs.Stderr, "  boom", false})
		if sideLast {
			publish(attempt, "side", line{jobs.Stdout, "side ends", false})
		}
	}
	publish(3, "side", line{jobs.Stdout, "s1", false})
	write(1, 200, true)
	write(2, 200, false)

	var marks []time.Time // more times for since, between a line's pieces
	compare := func(stage string) {
		t.Helper()
		sinces := marks
		for i := 0; i < len(times); i += 1 + len(times)/4 { // every eighth took 90 s of make test under the race detector
			sinces = append(sinces, times[i], times[i].Add(time.Nanosecond), times[i].Add(-5*time.Millisecond))
		}
		sinces = append(sinces, times[0].Add(-time.Hour), times[len(times)-1], times[len(times)-1].Add(time.Hour))
		streamed := false
		for _, since := range sinces {
			for _, c := range []struct {
				name           string
				o              client.LogOptions
				prefix, stamps bool
			}{
				{name: "plain"},
				{name: "--prefix -t", prefix: true, stamps: true},
				{name: "--container side", o: client.LogOptions{Container: "side"}, prefix: true},
				{name: "--container main", o: client.LogOptions{Container: "main"}},
			} {
				at := since.Sub(times[0])
				wantOut, wantErr := readLogs(t, b, id, c.o, nil, c.prefix, c.stamps, since, -1)
				o := c.o
				// Attempt 2's batches among attempt 3's are not its
				// container's last: the read covers them by starting
				// Skew before since.
				o.Since, o.Skew = since, 300*time.Millisecond
				out, errOut := readLogs(t, b, id, o, nil, c.prefix, c.stamps, since, -1)
				if out != wantOut || errOut != wantErr {
					t.Errorf("%s: --since %v (%v after the first batch) %s: from its time\n%s\nstderr %q\nwant (the whole log read)\n%s\nstderr %q",
						stage, since, at, c.name, out, errOut, wantOut, wantErr)
					continue
				}
				for _, n := range []int{0, 7, 100000} {
					wantOut, wantErr := readLogs(t, b, id, c.o, nil, c.prefix, c.stamps, since, n)
					for _, hold := range []int{0, 1} {
						tail := &queue.LogTail{Lines: n, Since: since, MaxHold: hold}
						out, errOut := readLogs(t, b, id, o, tail, c.prefix, c.stamps, since, n)
						if out != wantOut || errOut != wantErr {
							t.Errorf("%s: --since %v (%v after the first batch) --tail %d %s, holding at most %d bytes (streamed %v, skip %d): from the end\n%s\nstderr %q\nwant (the whole log read)\n%s\nstderr %q",
								stage, since, at, n, c.name, hold, tail.Streamed, tail.Skip, out, errOut, wantOut, wantErr)
						}
						streamed = streamed || tail.Streamed
					}
				}
			}
		}
		if !streamed {
			t.Errorf("%s: no read of the log's end was streamed", stage)
		}
	}
	compare("all kept")

	// Past 1 MiB the stream drops the first batches, attempt 3's s1 among
	// them; then attempt 3 writes again, its side last.
	st, err := b.q.JetStream().Stream(b.ctx, queue.StreamLogs)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; st.CachedInfo().State.FirstSeq <= g.seqs[10]; i++ {
		otherBatch("filler " + text(i))
		if _, err := st.Info(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	times = times[:0]
	publish(2, "side", line{jobs.Stdout, "side again", false})
	for i := range 20 {
		publish(3, "main", line{jobs.Stdout, "after the drop " + text(i), false})
	}
	publish(3, "main", line{jobs.Stdout, "end-a ", true})
	for i := range 50 {
		otherBatch("another run's line " + text(i))
	}
	publish(3, "main", line{jobs.Stdout, "end-b", false})
	// Between the pieces of attempt 3's last line, before attempt 2's
	// side again (its clock ahead): a read from the end keeps that batch,
	// and must keep those after it, end-a's too.
	marks = []time.Time{times[len(times)-1].Add(-time.Microsecond)}
	publish(3, "side", line{jobs.Stdout, "s2", false})
	compare("first batches dropped")
}

// TestLogsSinceFetchesFromItsTime: --since of the log's last batches
// fetches about those, not the log; a worker clock ahead of the server's
// moves the start back to where its batches of that time are.
func TestLogsSinceFetchesFromItsTime(t *testing.T) {
	t.Parallel()
	b := startBoundedLogs(t)
	id := b.submit()
	g := &tailLog{t: t, b: b, run: id, seq: map[string]int64{}}
	pad := strings.Repeat("p", 1000)
	var times []time.Time
	for i := range 400 {
		g.at = time.Now().Add(-time.Millisecond)
		if i >= 350 {
			g.at = g.at.Add(time.Hour) // attempt 1's worker clock set an hour ahead
		}
		g.publish(1, "main", line{jobs.Stdout, fmt.Sprintf("%d %s", i, pad), false})
		times = append(times, g.at)
	}
	fetched := func(o client.LogOptions, since time.Time) (string, uint64) {
		before := b.nc.Stats().InBytes
		out, _ := readLogs(t, b, id, o, nil, false, false, since, -1)
		return out, b.nc.Stats().InBytes - before
	}
	for _, tc := range []struct {
		name string
		from int // the batch since is the time of
		skew time.Duration
		most float64
	}{
		{"the last 50 lines, of an hour ahead", 350, -1, 0.2},
		{"the last 60, ten on the server's clock", 340, -1, 0.2},
		{"from the first, a second before it", 0, 0, 1.2},
	} {
		want, wholeBytes := fetched(client.LogOptions{}, times[tc.from])
		got, sinceBytes := fetched(client.LogOptions{Since: times[tc.from], Skew: tc.skew}, times[tc.from])
		if got != want || float64(sinceBytes) > tc.most*float64(wholeBytes) || !strings.HasPrefix(got, fmt.Sprint(tc.from, " ")) {
			t.Errorf("%s: --since fetched %d bytes, the whole read %d (want at most %.0f%% of it); printed %.40q..., want %.40q...",
				tc.name, sinceBytes, wholeBytes, 100*tc.most, got, want)
		}
	}
}
