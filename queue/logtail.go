package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// A log's end (gantry logs --tail, the web UI's run page) is read from near
// it, not from the log's first batch: a window of the log's last batches,
// widened backwards (doubling, in stream sequences) until it holds the
// lines asked for whole, or reaches the log's start. Reading from the
// start took a minute of a 1 GiB log to show 20 lines.
//
// What a reader of the whole log knows of a container's attempt when it
// reaches the window (the line it expects next, whether one came before,
// the pieces of a line in the making) is then taken from that container's
// last batches before the window: for each, the last batch of each
// attempt that needs it, and back from it to the nearest batch that ends
// a line (the rest are pieces of lines the window ends). Fed the batches
// so primed, then the window's, a reader that keeps the last N lines
// (gantry logs' logSelect, the run page's logTail) keeps what it keeps
// reading the whole log, and reports the same dropped lines.
//
// One case is beyond what the stored lines tell: a line over 16 MiB
// (which the worker passes on in pieces as it comes, lineWriter.emitPiece)
// written to one stream while the other stream wrote lines, whose start
// lies before the batch that primes its container. A line's pieces have
// consecutive sequence numbers otherwise, which is what the priming
// relies on.

// tailFirstWindow is the first window's width in stream sequences; it
// doubles until the window holds the lines asked for.
const tailFirstWindow = 2

// LogTail asks ReadLogs for a log's end, and says what it read.
type LogTail struct {
	// Lines is how many lines, at the log's end, the read gives whole (a
	// line stored in pieces counting as one); 0 reads no line of the
	// window (with Follow: only those stored from now on).
	Lines int
	// Since, when set, counts only the lines whose batch (that of their
	// last piece) was stored at or after it.
	Since time.Time
	// MaxBytes, above 0, bounds the window's batches: past it the read
	// gives the log's last batches of at most that many bytes (or its
	// last batch, a message of at most 1 MiB), from the first line they
	// hold whole on: fewer lines than asked for maybe, and no primed
	// batch (Bounded).
	MaxBytes int

	// Whole says that the read began with the log's first batch, as
	// without Tail: every line of the log was given.
	Whole bool
	// Bounded says that MaxBytes stopped the read short of Lines lines.
	Bounded bool
}

// tailBatch is a batch of the window, or one that primes it.
type tailBatch struct {
	seq   uint64
	size  int
	b     *jobs.LogBatch
	lines int // the lines it ends that count (lineCount), in readWindow
}

// readTail reads the end of the log lq asks for (lq.Tail) and gives fn the
// batches primed for it, then the window's, leaving r to go on from
// after the last batch read. It reads nothing (read false) when the log
// has no batch yet: the caller reads it from the start, as without Tail.
func (q *Queue) readTail(ctx context.Context, r *directReader, lq LogQuery, fn func(*jobs.LogBatch) error) (read bool, err error) {
	t := lq.Tail
	t.Whole, t.Bounded = false, false
	last, err := r.lastSeq(ctx)
	if errors.Is(err, nats.ErrNoResponders) {
		return false, fmt.Errorf("%w: %w", errNoBatch, err)
	}
	if err != nil {
		return false, err
	}
	first, err := r.firstSeq(ctx)
	if err != nil {
		return false, err
	}
	if last == 0 || first == 0 {
		t.Whole, r.next = true, 1
		return false, nil
	}
	width := uint64(tailFirstWindow)
	if t.Lines == 0 {
		width = 0 // no line of the window: only the primed batches
	}
	for {
		start := first
		if last+1-first > width {
			start = last + 1 - width
		}
		window, dropped, trimmed, err := q.readWindow(ctx, r, lq, start)
		if err != nil {
			return false, err
		}
		switch {
		case start == first && !dropped && !trimmed:
			t.Whole = true
			return true, deliver(nil, window, fn)
		case wholeLines(window, t.Since) >= t.Lines || start == first && trimmed:
			upTo := start - 1
			if len(window) > 0 {
				upTo = window[0].seq - 1
			}
			primed, err := q.primeTail(ctx, r, lq, upTo, window)
			if err != nil {
				return false, err
			}
			return true, deliver(primed, window, fn)
		case dropped:
			t.Bounded = true
			return true, deliver(nil, lineStarts(window), fn)
		}
		width = max(2*width, 1)
	}
}

// readWindow reads the log from the stream sequence start on, to its end,
// holding at most lq.Tail.MaxBytes of the last batches (dropped: some
// were let go). Without MaxBytes it holds only the batches the read
// needs (trimmed: it let go of some at the window's start): those from
// the last that, with the batches after it, hold lq.Tail.Lines lines,
// and none stored before lq.Tail.Since. Holding every batch read, a
// --tail longer than the log, or a --since that leaves fewer lines than
// --tail, held the whole log in memory, where the whole read keeps only
// the lines it prints.
func (q *Queue) readWindow(ctx context.Context, r *directReader, lq LogQuery, start uint64) (window []tailBatch, dropped, trimmed bool, err error) {
	var head, size, lines int
	r.next = start
	err = r.follow(ctx, false, nil, func(data []byte, _ nats.Header) error {
		var b jobs.LogBatch
		if jobs.DecodeLogBatch(data, &b) != nil || lq.Attempt != 0 && b.Attempt != lq.Attempt {
			return nil
		}
		window = append(window, tailBatch{seq: r.next - 1, size: len(data), b: &b, lines: lineCount(&b, lq.Tail.Since)})
		size += len(data)
		if max := lq.Tail.MaxBytes; max > 0 {
			for ; size > max && head < len(window)-1; head++ {
				size -= window[head].size
				window[head] = tailBatch{}
				dropped = true
			}
		} else {
			lines += window[len(window)-1].lines
			for ; head < len(window)-1; head++ {
				h := window[head]
				if lines-h.lines < lq.Tail.Lines && !h.b.Time.Before(lq.Tail.Since) {
					break // needed: its lines, or the pieces of one that counts
				}
				lines -= h.lines
				window[head] = tailBatch{}
				trimmed = true
			}
		}
		if head > len(window)/2 {
			window, head = slices.Clip(window[head:]), 0
		}
		return nil
	})
	return window[head:], dropped, trimmed, err
}

// lineCount counts the lines b ends (their last piece) if it was stored
// at or after since, as wholeLines does.
func lineCount(b *jobs.LogBatch, since time.Time) int {
	if b.Time.Before(since) {
		return 0
	}
	n := 0
	for _, l := range b.Lines {
		if !l.Partial {
			n++
		}
	}
	return n
}

// wholeLines counts the lines the window's batches end (their last
// piece): those whose batch was stored at or after since.
func wholeLines(window []tailBatch, since time.Time) int {
	n := 0
	for _, tb := range window {
		n += lineCount(tb.b, since)
	}
	return n
}

// lineStarts returns the window without the pieces, at its start, of
// lines that may have begun before it: a container's attempt's stream's
// lines are kept from the first that follows its container's previous
// line (by sequence number) in the window, or is its first (1).
func lineStarts(window []tailBatch) []tailBatch {
	type prev struct {
		seq     int64
		stream  string
		partial bool
	}
	last := map[string]prev{}   // attempt/container → its line before
	synced := map[string]bool{} // attempt/container/stream → its lines are whole from here
	out := make([]tailBatch, 0, len(window))
	for _, tb := range window {
		key := fmt.Sprint(tb.b.Attempt, "/", tb.b.Container)
		var lines []jobs.LogLine
		for _, l := range tb.b.Lines {
			skey := key + "/" + l.Stream
			p, ok := last[key]
			last[key] = prev{l.Seq, l.Stream, l.Partial}
			if !synced[skey] {
				if l.Seq != 1 && !(ok && p.seq == l.Seq-1 && !(p.stream == l.Stream && p.partial)) {
					// A piece of a line begun before the window, maybe:
					// its lines are whole after the next end of a line.
					synced[skey] = !l.Partial
					continue
				}
				synced[skey] = true
			}
			lines = append(lines, l)
		}
		if len(lines) > 0 {
			b := *tb.b
			b.Lines = lines
			out = append(out, tailBatch{seq: tb.seq, size: tb.size, b: &b})
		}
	}
	return out
}

// primeTail returns the batches stored up to the stream sequence upTo that
// bring a reader of the window to where a reader of the whole log is:
// for each container of the log, and each of its attempts that either
// wrote its last batch before the window or has lines in the window that
// are not its first, its batches back to the nearest that ends a line.
// It asks for the last batch of every container up to upTo (one request),
// then, only where that one is another attempt's or ends no line, for
// the container's batch before, one at a time.
func (q *Queue) primeTail(ctx context.Context, r *directReader, lq LogQuery, upTo uint64, window []tailBatch) ([]tailBatch, error) {
	if upTo == 0 {
		return nil, nil
	}
	need := map[string]map[int]bool{} // container → attempts
	want := func(container string, attempt int) {
		if lq.Attempt != 0 && attempt != lq.Attempt {
			return
		}
		if need[container] == nil {
			need[container] = map[int]bool{}
		}
		need[container][attempt] = true
	}
	seen := map[string]bool{}
	for _, tb := range window {
		key := fmt.Sprint(tb.b.Attempt, "/", tb.b.Container)
		if !seen[key] && len(tb.b.Lines) > 0 {
			seen[key] = true
			if tb.b.Lines[0].Seq > 1 {
				want(tb.b.Container, tb.b.Attempt)
			}
		}
	}
	lasts, err := r.lastsUpTo(ctx, r.filter, upTo)
	if err != nil {
		return nil, err
	}
	if lq.Attempt != 0 {
		for _, tb := range lasts {
			want(tb.b.Container, lq.Attempt)
		}
	}
	var primed []tailBatch
	for _, cur := range lasts {
		c := cur.b.Container
		if lq.Attempt == 0 {
			want(c, cur.b.Attempt)
		}
		subject := LogSubject(lq.RunID, c)
		for {
			if a := cur.b.Attempt; need[c][a] {
				primed = append(primed, cur)
				if slices.ContainsFunc(cur.b.Lines, func(l jobs.LogLine) bool { return !l.Partial }) {
					delete(need[c], a)
				}
			}
			if len(need[c]) == 0 || cur.seq <= 1 {
				break
			}
			before, err := r.lastsUpTo(ctx, subject, cur.seq-1)
			if err != nil {
				return nil, err
			}
			if len(before) == 0 {
				break
			}
			cur = before[0]
		}
	}
	slices.SortFunc(primed, func(a, b tailBatch) int { return cmpSeq(a.seq, b.seq) })
	return primed, nil
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// deliver gives fn the primed batches, then the window's.
func deliver(primed, window []tailBatch, fn func(*jobs.LogBatch) error) error {
	for _, tb := range slices.Concat(primed, window) {
		if err := fn(tb.b); err != nil {
			return err
		}
	}
	return nil
}

// firstSeq returns the sequence of the first message on the reader's
// filter, 0 when there is none.
func (r *directReader) firstSeq(ctx context.Context) (uint64, error) {
	var first uint64
	_, err := r.ask(ctx, directGetRequest{Seq: 1, NextBy: r.filter, Batch: 1, MaxBytes: 1}, func(seq uint64, _ *nats.Msg) error {
		first = seq
		return nil
	})
	return first, err
}

// lastsUpTo returns the last message of each subject that filter matches,
// of those stored up to the sequence upTo, decoded, in stream order (a
// batched direct get with multi_last and up_to_seq, nats-server 2.11 and
// later).
func (r *directReader) lastsUpTo(ctx context.Context, filter string, upTo uint64) ([]tailBatch, error) {
	var out []tailBatch
	req := struct {
		MultiLast []string `json:"multi_last"`
		UpToSeq   uint64   `json:"up_to_seq"`
	}{[]string{filter}, upTo}
	_, err := r.ask(ctx, req, func(seq uint64, m *nats.Msg) error {
		var b jobs.LogBatch
		if jobs.DecodeLogBatch(m.Data, &b) == nil && seq <= upTo {
			out = append(out, tailBatch{seq: seq, size: len(m.Data), b: &b})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the last batches of %s before %d: %w", filter, upTo+1, err)
	}
	slices.SortFunc(out, func(a, b tailBatch) int { return cmpSeq(a.seq, b.seq) })
	return out, nil
}
