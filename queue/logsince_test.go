package queue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestReadLogsSinceInterleavedAttempts: three attempts write two
// containers' lines interleaved (a retry while an earlier attempt's
// worker still runs), one's clock ahead of the server's (within
// DefaultLogSkew), one's behind, with lines in pieces over up to 11
// batches and another run's batches among them. A read with Since, of
// the whole run, a container or an attempt, and one of the log's end
// with Since (held or streamed), give what the whole read gives of Since
// on.
func TestReadLogsSinceInterleavedAttempts(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	rnd := rand.New(rand.NewPCG(1, 2))
	seq := map[string]int64{}
	ahead := map[int]time.Duration{1: 150 * time.Millisecond, 2: -300 * time.Millisecond, 3: 0}
	var times []time.Time
	pub := func(attempt int, container string, lines ...line) {
		key := fmt.Sprint(attempt, "/", container)
		var enc []byte
		for i, l := range lines {
			if i > 0 {
				enc = append(enc, ',')
			}
			seq[key]++
			stream := jobs.Stdout
			if strings.HasPrefix(l.text, "E") {
				stream = jobs.Stderr
			}
			enc = jobs.AppendLogLine(enc, seq[key], stream, []byte(l.text), l.partial, false)
		}
		at := time.Now().Add(ahead[attempt])
		times = append(times, at)
		if _, err := q.js.Publish(ctx, LogSubject("r1", container), jobs.AppendEncodedLogBatch(nil, "r1", attempt, container, at, enc)); err != nil {
			t.Fatal(err)
		}
		if _, err := q.js.Publish(ctx, LogSubject("r2", "main"), jobs.AppendEncodedLogBatch(nil, "r2", 1, "main", at, jobs.AppendLogLine(nil, 1, "stdout", []byte("other"), false, false))); err != nil {
			t.Fatal(err)
		}
	}
	// pieces in progress per attempt/container
	for i := range 400 { // 1500 took 200 s under the race detector; 400 keep every kind of interleaving
		attempt := 1 + rnd.IntN(3)
		container := []string{"main", "side"}[rnd.IntN(2)]
		switch r := rnd.IntN(10); {
		case r == 0: // a long line in 2..12 batches
			n := 2 + rnd.IntN(10)
			for j := range n {
				pub(attempt, container, line{text: fmt.Sprintf("L%d.%d ", i, j), partial: j < n-1})
			}
		default:
			var ls []line
			for j := range 1 + rnd.IntN(3) {
				ls = append(ls, line{text: fmt.Sprintf("l%d.%d", i, j)})
			}
			if rnd.IntN(5) == 0 {
				ls = append(ls, line{text: fmt.Sprintf("E%d", i)})
			}
			pub(attempt, container, ls...)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	bad := 0
	for i := 0; i < len(times); i += len(times) / 7 {
		since := times[i]
		for _, lq := range []LogQuery{{RunID: "r1"}, {RunID: "r1", Container: "side"}, {RunID: "r1", Attempt: 2}} {
			whole := newLastLines(1 << 30)
			whole.since = since
			if err := q.ReadLogs(ctx, lq, whole.batch); err != nil {
				t.Fatal(err)
			}
			got := newLastLines(1 << 30)
			got.since = since
			lq.Since = since
			if err := q.ReadLogs(ctx, lq, got.batch); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.lines, whole.lines) {
				bad++
				t.Errorf("since %d (%v) %+v: %d lines, want %d", i, since, lq, len(got.lines), len(whole.lines))
			}
			for _, n := range []int{1, 50, 100000} {
				whole := newLastLines(n)
				whole.since = since
				lq.Since = time.Time{}
				if err := q.ReadLogs(ctx, lq, whole.batch); err != nil {
					t.Fatal(err)
				}
				for _, hold := range []int{0, 1} {
					tail := &LogTail{Lines: n, Since: since, MaxHold: hold}
					lq.Tail = tail
					got := &skipLines{tail: tail, since: since, parts: map[string]string{}}
					if err := q.ReadLogs(ctx, lq, got.batch); err != nil {
						t.Fatal(err)
					}
					lines := got.lines
					if !tail.Streamed {
						lines = lines[max(0, len(lines)-n):]
					}
					if !slices.Equal(lines, whole.lines) {
						bad++
						t.Errorf("since %d tail %d hold %d %+v: streamed %v: %d lines, want %d", i, n, hold, lq, tail.Streamed, len(lines), len(whole.lines))
					}
					lq.Tail = nil
				}
			}
			if bad > 10 {
				t.FailNow()
			}
		}
	}
}
