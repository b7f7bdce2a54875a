package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReadLogTailStreamedOutlivesDrops: a read of a log's end too big to
// hold (streamed) whose log loses its oldest batches between the count
// and the read again (the stream's limits; here a purge, while the primed
// batches are handed over) still gives the last lines stored: all of the
// last Lines where the batch they begin in is left, every line left
// (Shortened) where it is not. Before, Skip counted from where the count
// began, and left out lines still stored.
func TestReadLogTailStreamedOutlivesDrops(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	stream, err := q.js.Stream(ctx, StreamLogs)
	if err != nil {
		t.Fatal(err)
	}
	const tail = 15000
	w := &batchWriter{t: t, q: q, seq: map[string]int64{}, at: time.Now().Add(-time.Hour)}
	// keep is how many of the run's batches the purge leaves: 400 of 100
	// lines and 40 of side's; the last 15000 lines begin 165 from the end.
	for _, keep := range []uint64{12, 160, 165, 200, 300} {
		run := fmt.Sprint("r", keep)
		for i := range 400 {
			var lines []line
			for j := range 100 {
				lines = append(lines, line{text: fmt.Sprintf("%s %d.%d %s", run, i, j, strings.Repeat("x", (i+j)%13))})
			}
			w.batch(ctx, run, 1, "main", lines...)
			if i%10 == 5 {
				w.batch(ctx, run, 1, "side", line{text: fmt.Sprintf("side %d, in", i), partial: true}, line{text: " pieces"})
			}
		}

		lt := &LogTail{Lines: tail, MaxHold: 64 << 10}
		end := &skipLines{tail: lt, parts: map[string]string{}}
		purged := false
		err := q.ReadLogs(ctx, LogQuery{RunID: run, Tail: lt}, func(b *jobs.LogBatch) error {
			if !purged {
				purged = true
				if err := stream.Purge(ctx, jetstream.WithPurgeSubject(LogSubject(run, "")), jetstream.WithPurgeKeep(keep)); err != nil {
					return err
				}
			}
			return end.batch(b)
		})
		if err != nil {
			t.Fatal(err)
		}
		left := newLastLines(1 << 30)
		if err := q.ReadLogs(ctx, LogQuery{RunID: run}, left.batch); err != nil {
			t.Fatal(err)
		}
		want := left.lines[max(0, len(left.lines)-tail):]
		if !lt.Streamed || !slices.Equal(end.lines, want) {
			t.Errorf("keep %d: streamed %v, skip %d: got %d lines, %.100q...; want the last %d of the %d left, %.100q...",
				keep, lt.Streamed, lt.Skip, len(end.lines), end.lines[:min(1, len(end.lines))], len(want), len(left.lines), want[:min(1, len(want))])
		}
		if short := len(left.lines) < tail; lt.Shortened != short {
			t.Errorf("keep %d: %d lines left: shortened %v, want %v", keep, len(left.lines), lt.Shortened, short)
		}
	}
}
