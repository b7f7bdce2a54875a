package queue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// A log's end (gantry logs --tail, the web UI's run page) is read from near
// it, not from the log's first batch: from the log's last batch to its end,
// then backwards, a part at a time, each part the batches of the run
// stored before the part read last, until what was read holds the lines
// asked for whole, or reaches the log's start. Each batch is fetched once:
// reading from the start took a minute of a 1 GiB log to show 20 lines,
// and widening a window that was read again each time fetched up to twice
// the log.
//
// A part is planned in the run's batches, not in stream sequences, which
// GANTRY_LOGS shares among all runs: it holds about as many of the run's
// batches as were read (from tailFirstWindow, doubling). Where it starts
// is found with the server's count of the run's batches stored from a
// sequence on (Nats-Num-Pending, in the answer to a batched direct get
// of one message, which is the part's first when the part is taken): a
// guess from the density of the run's batches before, checked, and
// narrowed (alternately interpolated and halved) while the part would
// hold more than twice as many or fewer than half. So another run's output
// between a run's last batches and its earlier ones costs a few one-batch
// answers, not the step from a batch to the whole log that doubling in
// stream sequences took.
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

// A window whose batches are more than LogTail.MaxHold (a --tail longer
// than the log, or than most of it) is not held: held, a --tail 100000000
// held the whole log, and the reader's ring of the last lines held it
// again. Past the bound the read lets go of what it holds and only counts
// the lines of the batches it reads back, until it has counted Lines or
// reached the log's start (or Since's); then it reads the window again
// from there, giving fn its batches as they come, and says how many of
// their lines come before the last Lines (LogTail.Skip), so that the
// reader prints the rest as they come rather than hold them. The window's
// batches are then fetched twice, and what is held stays under the bound.
//
// The stream may drop the log's oldest batches (its limits) between the
// count and the read again: a Skip counted from where the count began
// would then leave out lines still stored. So the count keeps a small
// record of each batch of the part it read last (tailRec), in which the
// last Lines lines begin, and the read again starts at the batch they
// begin in (W), primed as a held window is: Skip leaves out only W's
// lines before them. Batches after W are newer, and outlast it; if W
// itself is gone when the read again gets there, the read gives every
// line left and says so (LogTail.Shortened). The records cost 24 bytes
// a batch, and a part read back while counting holds at most as many
// batches as MaxHold has room for records (more parts, not more memory);
// past that (a window read whole that grew meanwhile) the read again
// starts where the count began, as before.
//
// With Since, the read goes back no further than the first batch that can
// hold a line of Since on (sinceStart, logsince.go): a --since 1m --tail
// 1000 of a long log no longer read back to its start.

// tailFirstWindow is how many of the run's batches the first part read
// back holds, about; each part after holds about as many as were read.
const tailFirstWindow = 2

// DefaultTailHold bounds the batches a read of a log's end holds, where
// LogTail.MaxHold does not.
const DefaultTailHold = 16 << 20

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

	// MaxHold bounds the bytes of the batches the read holds (0:
	// DefaultTailHold): a window of more is not held but counted, then
	// read again and given as it is read (Streamed).
	MaxHold int

	// Whole says that the read began with the log's first batch, as
	// without Tail: every line of the log was given.
	Whole bool
	// Bounded says that MaxBytes stopped the read short of Lines lines.
	Bounded bool
	// Streamed says that the window was too big to hold (MaxHold):
	// the read gave its batches as it read them, after the primed ones,
	// up to the log's end as it was when the read began, then (following)
	// called CaughtUp. Of the lines that count (ended in a batch stored
	// at or after Since) in what it gave until then, the first Skip are
	// not among the last Lines: a reader leaves them out and prints the
	// rest as they come. Both are set before fn is given a batch.
	Streamed bool
	Skip     int
	// Shortened says, of a streamed read, that the stream dropped the
	// batch the last Lines lines began in (its limits, a purge) before
	// the read got to it again: Skip was lowered to the primed batches'
	// lines, so that the read gave every line left of the window, fewer
	// than Lines. It is set before fn is given a batch after the primed
	// ones.
	Shortened bool
}

// tailRec is what a count (LogTail.MaxHold) keeps of a batch: its stream
// sequence, the lines that count it ends, and its attempt/container's
// first line (key indexes tailRead.keys; first 0: no line).
type tailRec struct {
	seq   uint64
	first int64
	lines int32
	key   int32
}

// tailRecSize is a tailRec's bytes, by which MaxHold bounds the records.
const tailRecSize = 24

// tailBatch is a batch of the window, or one that primes it.
type tailBatch struct {
	seq    uint64
	size   int
	b      *jobs.LogBatch
	lines  int       // the lines it ends that count (lineCount), in readWindow
	stored time.Time // when JetStream stored it, in lastsUpTo
}

// readTail reads the end of the log lq asks for (lq.Tail) and gives fn the
// batches primed for it, then the window's, leaving r to go on from
// after the last batch read. It reads nothing (read false) when the log
// has no batch yet: the caller reads it from the start, as without Tail.
func (q *Queue) readTail(ctx context.Context, r *directReader, lq LogQuery, fn func(*jobs.LogBatch) error) (read bool, err error) {
	t := lq.Tail
	t.Whole, t.Bounded, t.Streamed, t.Skip, t.Shortened = false, false, false, 0, false
	last, err := r.lastSeq(ctx)
	if errors.Is(err, nats.ErrNoResponders) {
		return false, fmt.Errorf("%w: %w", errNoBatch, err)
	}
	if err != nil {
		return false, err
	}
	first, err := r.probe(ctx, 1)
	if err != nil {
		return false, err
	}
	if last == 0 || first.seq == 0 {
		t.Whole, r.next = true, 1
		return false, nil
	}
	// The read goes back to floor at most: lower is the probe there.
	floor, lower := first.seq, first
	if !t.Since.IsZero() {
		at, err := r.sinceStart(ctx, t.Since, lq.skew())
		if err != nil {
			return false, err
		}
		if at > floor {
			floor = at
			if lower, err = r.probe(ctx, at); err != nil {
				return false, err
			}
		}
	}
	start := last
	if t.Lines == 0 {
		start = last + 1 // no line of the window: only the primed batches
	}
	tr, err := readWindow(ctx, r, lq, start)
	if err != nil {
		return false, err
	}
	for {
		atFloor := tr.lo <= floor
		switch {
		case tr.counting && (tr.lines >= t.Lines || atFloor):
			return true, q.streamTail(ctx, r, lq, tr, first.seq, fn)
		case atFloor && floor == first.seq && !tr.dropped && !tr.trimmed:
			t.Whole = true
			return true, deliver(nil, tr.window, fn)
		case tr.lines >= t.Lines || atFloor && !tr.dropped:
			upTo := tr.lo - 1
			if len(tr.window) > 0 {
				upTo = tr.window[0].seq - 1
			}
			primed, err := q.primeTail(ctx, r, lq, upTo, windowStarts(tr.window))
			if err != nil {
				return false, err
			}
			return true, deliver(primed, tr.window, fn)
		case tr.dropped:
			t.Bounded = true
			return true, deliver(nil, lineStarts(tr.window, tr.ends), fn)
		}
		if err := tr.readBack(ctx, lower); err != nil {
			return false, err
		}
	}
}

// streamTail gives fn, of a window too big to hold (tr counted its lines,
// from tr.lo on), the batches that prime it, then its batches as it reads
// them again, from the one the last Lines lines begin in to the last the
// count read; following, it then calls CaughtUp. It sets the tail's
// Whole, Streamed and Skip first (the log's first batch is at logFirst).
func (q *Queue) streamTail(ctx context.Context, r *directReader, lq LogQuery, tr *tailRead, logFirst uint64, fn func(*jobs.LogBatch) error) error {
	t := lq.Tail
	from, expect, skip, firsts := tr.windowStart(t.Lines)
	var starts []lineStart
	for _, s := range firsts {
		starts = append(starts, s)
	}
	primed, err := q.primeTail(ctx, r, lq, from-1, starts)
	if err != nil {
		return err
	}
	t.Whole = from <= logFirst
	t.Streamed, t.Skip = true, skip
	for _, tb := range primed {
		t.Skip += lineCount(tb.b, t.Since)
	}
	primedLines := t.Skip - skip
	if err := deliver(primed, nil, fn); err != nil {
		return err
	}
	// gone: the batch the window begins in was dropped since the count;
	// the lines after it, newer, are all there is to give.
	gone := func() { t.Skip, t.Shortened, expect = primedLines, true, 0 }
	if err := r.readTo(ctx, from, tr.hi, func(seq uint64, data []byte) error {
		switch {
		case expect == 0 || seq < expect: // another attempt's, before it
		case seq == expect:
			expect = 0
		default:
			gone()
		}
		var b jobs.LogBatch
		if jobs.DecodeLogBatch(data, &b) != nil || lq.Attempt != 0 && b.Attempt != lq.Attempt {
			return nil
		}
		return fn(&b)
	}); err != nil {
		return err
	}
	if expect != 0 {
		gone()
	}
	if lq.Follow && r.caughtUp != nil {
		return r.caughtUp()
	}
	return nil
}

// windowStart returns where a counted window's read again starts (from):
// at the batch the last lines lines begin in, found in the records of
// the part read last, or where the count began when they hold fewer (or
// were not kept). It returns that batch's sequence (expect: 0 when not
// known), how many lines that count of those read from there on come
// before the last lines, and each attempt/container's first line from
// there on.
func (tr *tailRead) windowStart(lines int) (from, expect uint64, skip int, firsts map[string]lineStart) {
	if tr.recsOver {
		return tr.lo, 0, max(tr.lines-lines, 0), tr.firsts
	}
	firsts = maps.Clone(tr.later)
	n := tr.laterLines
	for i := len(tr.recs) - 1; i >= 0; i-- {
		rec := tr.recs[i]
		if rec.first != 0 {
			k := tr.keyList[rec.key]
			firsts[fmt.Sprint(k.attempt, "/", k.container)] = lineStart{k.container, k.attempt, rec.first}
		}
		n += int(rec.lines)
		if n >= lines {
			return rec.seq, rec.seq, n - lines, firsts
		}
	}
	if len(tr.recs) > 0 {
		expect = tr.recs[0].seq
	}
	return tr.lo, expect, 0, tr.firsts
}

// readTo calls fn with each message on the reader's filter stored from
// the sequence from to hi, and its sequence, in order, and leaves the
// reader to go on after hi.
func (r *directReader) readTo(ctx context.Context, from, hi uint64, fn func(seq uint64, data []byte) error) error {
	next := from
	for next <= hi {
		got, past := 0, false
		req := directGetRequest{Seq: next, NextBy: r.filter, Batch: directBatch, MaxBytes: directMaxBytes}
		_, err := r.ask(ctx, req, func(seq uint64, m *nats.Msg) error {
			if seq < next || seq > hi {
				past = past || seq > hi
				return nil
			}
			next, got = seq+1, got+1
			return fn(seq, m.Data)
		})
		if err != nil {
			return err
		}
		if past || got == 0 {
			break
		}
	}
	r.next = hi + 1
	return nil
}

// tailRead is a read of a log's end: of the stream sequences from lo to
// the log's end, the batches it needs (window).
type tailRead struct {
	r  *directReader
	lq LogQuery
	lo uint64
	// from is how many of the filter's messages are stored from lo on, as
	// last counted; msgs and bytes are how many were read, and their size.
	from        uint64
	msgs, bytes int

	window           []tailBatch
	lines, size      int // the window's lines (lineCount) and bytes
	dropped, trimmed bool
	// ends says, of each attempt/container/stream with a line in the
	// batches dropped before the window, whether the last of them ended
	// its line (false: a piece whose line goes on in the window).
	ends map[string]bool
	// counting: the window was too big to hold (MaxHold); lines
	// counts those of every batch read, none is held. firsts are the
	// first lines of each attempt/container of the batches read, and hi
	// the last sequence the window read.
	counting bool
	firsts   map[string]lineStart
	hi       uint64
	// recs are the records of the batches of the part read last (all
	// of them, from lo on: recsOver, too many to keep), later the first
	// lines and laterLines the lines of the batches after it; keys and
	// keyList number the attempt/containers (attempt/container → index).
	recs       []tailRec
	recsOver   bool
	later      map[string]lineStart
	laterLines int
	keys       map[string]int32
	keyList    []lineStart
}

// lineStart is the first line of a container's attempt in a window.
type lineStart struct {
	container string
	attempt   int
	seq       int64
}

// readWindow reads the log from the stream sequence start on, to its end,
// holding at most lq.Tail.MaxBytes of the last batches (dropped: some
// were let go). Without MaxBytes it holds only the batches the read
// needs (trimmed: it let go of some at the window's start): those from
// the last that, with the batches after it, hold lq.Tail.Lines lines; or,
// past lq.Tail.MaxHold, none (counting). The parts read back (readBack)
// are held the same way, as if read with the window.
//
// It does not let go of the batches stored before lq.Tail.Since that the
// window starts with: with workers' clocks apart, a part read back may
// hold a batch of Since on before them, and the window would have a hole
// where pieces of a line that counts were (a --since read's start and
// MaxHold bound what such batches cost).
func readWindow(ctx context.Context, r *directReader, lq LogQuery, start uint64) (*tailRead, error) {
	tr := &tailRead{r: r, lq: lq, lo: start, firsts: map[string]lineStart{}, keys: map[string]int32{}}
	h := tr.holder()
	r.next = start
	err := r.follow(ctx, false, nil, func(data []byte, _ nats.Header) error {
		tr.add(h, r.next-1, data)
		return nil
	})
	tr.from, tr.hi = uint64(tr.msgs), r.next-1
	tr.keep(h)
	return tr, err
}

// holder holds the batches of a part of the log read, before the window.
type holder struct {
	batches     []tailBatch
	head        int
	lines, size int  // of batches[head:] and the window
	after       bool // the window holds a batch: the last of batches may go too
	dropped     bool
	ends        map[string]bool // as tailRead's, of the batches dropped
	trimmed     bool
	firsts      map[string]lineStart // of the batches given, held or not
	recs        []tailRec            // of the batches given, held or not
	recsOver    bool                 // more than maxRecs were given: recs is nil
}

func (tr *tailRead) holder() *holder {
	return &holder{lines: tr.lines, size: tr.size, after: len(tr.window) > 0, firsts: map[string]lineStart{}}
}

// add takes the message at seq, read in stream order after those h was
// given, and holds its batch if the read needs it, letting go of those
// before it that it no longer needs.
func (tr *tailRead) add(h *holder, seq uint64, data []byte) {
	tr.msgs++
	tr.bytes += len(data)
	var b jobs.LogBatch
	if jobs.DecodeLogBatch(data, &b) != nil || tr.lq.Attempt != 0 && b.Attempt != tr.lq.Attempt {
		return
	}
	tail := tr.lq.Tail
	key := fmt.Sprint(b.Attempt, "/", b.Container)
	if len(b.Lines) > 0 && h.firsts[key] == (lineStart{}) {
		h.firsts[key] = lineStart{b.Container, b.Attempt, b.Lines[0].Seq}
	}
	lines := lineCount(&b, tail.Since)
	tr.record(h, key, seq, &b, lines)
	if tr.counting {
		h.lines += lines
		return
	}
	h.batches = append(h.batches, tailBatch{seq: seq, size: len(data), b: &b, lines: lines})
	h.size += len(data)
	h.lines += lines
	end := len(h.batches) - 1 // the log's last batch read stays
	if h.after {
		end++
	}
	for ; h.head < end; h.head++ {
		hb := h.batches[h.head]
		if max := tail.MaxBytes; max > 0 {
			if h.size <= max {
				break
			}
			h.dropped = true
			h.dropEnds(hb.b)
		} else {
			if h.lines-hb.lines < tail.Lines {
				break // needed: its lines, or the pieces of one that counts
			}
			h.trimmed = true
		}
		h.size -= hb.size
		h.lines -= hb.lines
		h.batches[h.head] = tailBatch{}
	}
	if h.head > len(h.batches)/2 {
		h.batches, h.head = slices.Clip(h.batches[h.head:]), 0
	}
	hold := tail.MaxHold
	if hold <= 0 {
		hold = DefaultTailHold
	}
	if tail.MaxBytes <= 0 && h.size > hold && h.lines < tail.Lines {
		// Too big to hold: count from here on.
		tr.counting = true
		tr.window, tr.size = nil, 0
		h.batches, h.head, h.size = nil, 0, 0
	}
}

// maxRecs is how many tailRecs a part read back may keep: as many as the
// tail's MaxHold has room for.
func (tr *tailRead) maxRecs() int {
	hold := tr.lq.Tail.MaxHold
	if hold <= 0 {
		hold = DefaultTailHold
	}
	return max(hold/tailRecSize, 4*tailFirstWindow)
}

// record keeps h's record of the batch b, at seq, which ends lines lines
// that count.
func (tr *tailRead) record(h *holder, key string, seq uint64, b *jobs.LogBatch, lines int) {
	if h.recsOver {
		return
	}
	if len(h.recs) >= tr.maxRecs() {
		h.recs, h.recsOver = nil, true
		return
	}
	k, ok := tr.keys[key]
	if !ok {
		k = int32(len(tr.keyList))
		tr.keys[key] = k
		tr.keyList = append(tr.keyList, lineStart{container: b.Container, attempt: b.Attempt})
	}
	rec := tailRec{seq: seq, lines: int32(lines), key: k}
	if len(b.Lines) > 0 {
		rec.first = b.Lines[0].Seq
	}
	h.recs = append(h.recs, rec)
}

// keep puts what h holds before the window.
func (tr *tailRead) keep(h *holder) {
	tr.later, tr.laterLines = maps.Clone(tr.firsts), tr.lines
	tr.recs, tr.recsOver = h.recs, h.recsOver
	maps.Copy(tr.firsts, h.firsts) // h's are earlier
	tr.window = slices.Concat(h.batches[h.head:], tr.window)
	tr.lines, tr.size = h.lines, h.size
	tr.dropped = tr.dropped || h.dropped
	tr.trimmed = tr.trimmed || h.trimmed
	// Only the last part read drops batches (a drop ends the read): these
	// are the batches right before the window.
	if h.ends != nil {
		tr.ends = h.ends
	}
}

// dropEnds records, of the batch b let go of before the window (batches
// are let go of in stream order), whether each stream's last line in it
// ended its line.
func (h *holder) dropEnds(b *jobs.LogBatch) {
	if h.ends == nil {
		h.ends = map[string]bool{}
	}
	for _, l := range b.Lines {
		h.ends[fmt.Sprint(b.Attempt, "/", b.Container, "/", l.Stream)] = !l.Partial
	}
}

// readBack reads the part of the log before lo: from a sequence after
// which, up to lo, about as many of the filter's messages are stored as
// were read (at most as many as MaxBytes has room for, by their average
// size), or from first, the log's first batch, when fewer are. It asks
// for one message from a guessed sequence, whose answer counts those
// stored from it on, until the part holds between half and twice as
// many; the last of these answers is the part's first message, and one
// request more asks for the rest of it by their count.
func (tr *tailRead) readBack(ctx context.Context, first tailProbe) error {
	want := max(tr.msgs, tailFirstWindow)
	if bound := tr.lq.Tail.MaxBytes; bound > 0 && tr.msgs > 0 {
		want = min(want, max(bound-tr.size, 0)/(tr.bytes/tr.msgs+1)+1)
	}
	if tr.counting && tr.lines > 0 {
		// As many as hold the lines still to count, by their density so
		// far, and a little more: the part is read again.
		perMsg := float64(tr.lines) / float64(tr.msgs)
		want = min(want, int(float64(tr.lq.Tail.Lines-tr.lines)/perMsg*1.1)+tailFirstWindow)
	}
	if tr.counting {
		want = min(want, tr.maxRecs()/2-1) // the part's records fit (n is at most 2*want+1)
	}
	count := func(p tailProbe) int { // the messages from p on before lo
		if p.seq == 0 || p.seq >= tr.lo {
			return 0
		}
		return max(int(p.from)-int(tr.from), 1)
	}
	var (
		near, nearN = tr.lo, 0                // from near on, too few (none yet read)
		far, farN   = first.seq, count(first) // from far on, too many (once asked)
		p           tailProbe
		n           int
		err         error
	)
	for i := 0; ; i++ {
		x := far
		switch {
		case i == 0 && farN <= 2*want, near-far <= 1:
		case i%2 == 1 || farN <= nearN:
			x = far + (near-far)/2
		default:
			d := uint64(float64(near-far) * float64(want-nearN) / float64(farN-nearN))
			x = min(max(near-min(d, near-far), far+1), near-1)
		}
		if p, err = tr.r.probe(ctx, x); err != nil {
			return err
		}
		n = count(p)
		if near-far <= 1 || n <= 2*want && (2*n >= want || x <= first.seq) {
			break
		}
		if n > 2*want {
			far, farN = x, n
		} else {
			near, nearN = x, n
		}
	}
	return tr.readPart(ctx, p, n)
}

// readPart reads the part of the log from p (the answer to a probe) to
// lo, the n messages p counts there, and holds it before the window.
func (tr *tailRead) readPart(ctx context.Context, p tailProbe, n int) error {
	h := tr.holder()
	lo, left := tr.lo, n
	if left > 0 {
		tr.add(h, p.seq, p.data)
		left--
	}
	next := p.seq + 1
	for left > 0 {
		got, past := 0, false
		req := directGetRequest{Seq: next, NextBy: tr.r.filter, Batch: min(left, directBatch), MaxBytes: directMaxBytes}
		_, err := tr.r.ask(ctx, req, func(seq uint64, m *nats.Msg) error {
			if seq >= lo {
				past = true // stored after the count was taken: more than counted
				return nil
			}
			tr.add(h, seq, m.Data)
			next, got, left = seq+1, got+1, left-1
			return nil
		})
		if err != nil {
			return err
		}
		if past || got == 0 {
			break
		}
	}
	tr.lo, tr.from = p.at, p.from
	tr.keep(h)
	return nil
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
// line (by sequence number) in the window, or is its first (1), or
// follows the end of a line in the batches dropped before the window
// (ends, as tailRead's). A stream that ends does not tell of loses its
// first line in the window, which may be the rest of a line begun before.
func lineStarts(window []tailBatch, ends map[string]bool) []tailBatch {
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
				starts := l.Seq == 1 || ok && p.seq == l.Seq-1 && !(p.stream == l.Stream && p.partial)
				if ended, known := ends[skey]; known {
					starts = ended
				}
				if !starts {
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
func (q *Queue) primeTail(ctx context.Context, r *directReader, lq LogQuery, upTo uint64, starts []lineStart) ([]tailBatch, error) {
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
	for _, s := range starts {
		if s.seq > 1 {
			want(s.container, s.attempt)
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
		back, err := walkBack(ctx, r, LogSubject(lq.RunID, c), cur, need[c])
		if err != nil {
			return nil, err
		}
		primed = append(primed, back...)
	}
	slices.SortFunc(primed, func(a, b tailBatch) int { return cmpSeq(a.seq, b.seq) })
	return primed, nil
}

// windowStarts returns the first line of each attempt/container in window.
func windowStarts(window []tailBatch) []lineStart {
	var starts []lineStart
	seen := map[string]bool{}
	for _, tb := range window {
		key := fmt.Sprint(tb.b.Attempt, "/", tb.b.Container)
		if !seen[key] && len(tb.b.Lines) > 0 {
			seen[key] = true
			starts = append(starts, lineStart{tb.b.Container, tb.b.Attempt, tb.b.Lines[0].Seq})
		}
	}
	return starts
}

// walkBack returns the batches of one container's subject, from cur (its
// last up to some sequence) back, that prime the attempts need names: for
// each, its batches back to the nearest that ends a line. It takes the
// attempts it primed out of need.
func walkBack(ctx context.Context, r *directReader, subject string, cur tailBatch, need map[int]bool) ([]tailBatch, error) {
	var primed []tailBatch
	for {
		if a := cur.b.Attempt; need[a] {
			primed = append(primed, cur)
			if slices.ContainsFunc(cur.b.Lines, func(l jobs.LogLine) bool { return !l.Partial }) {
				delete(need, a)
			}
		}
		if len(need) == 0 || cur.seq <= 1 {
			return primed, nil
		}
		before, err := r.lastsUpTo(ctx, subject, cur.seq-1)
		if err != nil || len(before) == 0 {
			return primed, err
		}
		cur = before[0]
	}
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

// tailProbe is the answer to a probe: the first message on the reader's
// filter stored at or after the sequence at (seq 0: none), and how many
// are stored from at on (from).
type tailProbe struct {
	at, seq uint64
	data    []byte
	from    uint64
}

// probe asks for the first message on the reader's filter stored at or
// after the sequence at, and how many are: the server's Nats-Num-Pending
// after it, in a batched direct get's answer.
func (r *directReader) probe(ctx context.Context, at uint64) (tailProbe, error) {
	p := tailProbe{at: at}
	_, err := r.ask(ctx, directGetRequest{Seq: at, NextBy: r.filter, Batch: 1, MaxBytes: 1}, func(seq uint64, m *nats.Msg) error {
		pending, err := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
		if err != nil {
			return fmt.Errorf("read %s %s: a message without a valid %s", r.stream, r.filter, hdrNumPending)
		}
		p.seq, p.data, p.from = seq, m.Data, pending+1
		return nil
	})
	return p, err
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
			stored, _ := time.Parse(time.RFC3339Nano, m.Header.Get(nats.JSTimeStamp))
			out = append(out, tailBatch{seq: seq, size: len(m.Data), b: &b, stored: stored})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the last batches of %s before %d: %w", filter, upTo+1, err)
	}
	slices.SortFunc(out, func(a, b tailBatch) int { return cmpSeq(a.seq, b.seq) })
	return out, nil
}
