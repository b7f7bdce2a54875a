package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Log batching limits: a batch is published when its encoded lines reach
// this many bytes or lines, or when it has waited flushEvery.
const (
	maxBatchBytes = 256 << 10
	maxBatchLines = 2000
	flushEvery    = 50 * time.Millisecond
	// maxPiece is the longest text one LogLine carries; longer lines go in
	// pieces marked Partial so that no message exceeds NATS's default 1 MiB
	// payload limit.
	maxPiece = 128 << 10
	// maxEncodedBatch bounds a batch's encoded lines: a piece's text is
	// encoded in at most 6 bytes a byte (\u00XX), so a batch that could
	// not take one more under it is published first. A piece that is not
	// valid UTF-8 also carries its bytes in base64 ("raw", 4 for 3): past
	// the bound by at most 171 KiB for a piece of maxPiece, which keeps
	// under 1 MiB still, at no cost to the lines that are valid.
	maxEncodedBatch = 800 << 10
)

// LogWriter batches the log lines of one attempt into messages on
// gantry.logs.<run>.<container>. It implements worker.LogSink. Close
// flushes and waits until JetStream has stored every batch.
type LogWriter struct {
	q       *Queue
	runID   string
	attempt int

	mu      sync.Mutex
	batches map[string]*pending // by container
	err     error
	stop    chan struct{}
	done    chan struct{}
}

// pending is a container's batch in the making: its lines are encoded as
// they come (jobs.AppendLogLine), so no line is kept as a string.
type pending struct {
	lines []byte // encoded, separated by commas
	n     int
	seq   int64
}

// NewLogWriter starts a writer for one attempt of a run.
func (q *Queue) NewLogWriter(runID string, attempt int) *LogWriter {
	w := &LogWriter{q: q, runID: runID, attempt: attempt, batches: map[string]*pending{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.flusher()
	return w
}

func (w *LogWriter) flusher() {
	defer close(w.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			for c := range w.batches {
				w.flushLocked(c)
			}
			w.mu.Unlock()
		}
	}
}

// Line adds one line of a container's output.
func (w *LogWriter) Line(container, stream string, line []byte) {
	w.add(container, stream, line, false, false)
}

// Piece adds part of a line whose rest follows: its LogLines are all
// Partial.
func (w *LogWriter) Piece(container, stream string, piece []byte) {
	w.add(container, stream, piece, true, false)
}

// End adds a stream's last line, which had no newline: its last LogLine
// says NoNewline.
func (w *LogWriter) End(container, stream string, line []byte) {
	w.add(container, stream, line, false, true)
}

func (w *LogWriter) add(container, stream string, line []byte, more, noNewline bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.batches[container]
	if p == nil {
		p = &pending{}
		w.batches[container] = p
	}
	for {
		piece, partial, end := line, more, noNewline
		if len(line) > maxPiece {
			cut := maxPiece
			for cut > maxPiece-utf8.UTFMax && !utf8.RuneStart(line[cut]) {
				cut-- // keep runes whole so each piece stays valid UTF-8
			}
			piece, partial, end = line[:cut], true, false
		}
		if p.n > 0 && len(p.lines)+6*len(piece)+128 > maxEncodedBatch {
			w.flushLocked(container)
		}
		if p.n > 0 {
			p.lines = append(p.lines, ',')
		}
		p.seq++
		p.lines = jobs.AppendLogLine(p.lines, p.seq, stream, piece, partial, end)
		p.n++
		if len(p.lines) >= maxBatchBytes || p.n >= maxBatchLines {
			w.flushLocked(container)
		}
		line = line[len(piece):]
		if len(line) == 0 {
			return
		}
	}
}

func (w *LogWriter) flushLocked(container string) {
	p := w.batches[container]
	if p == nil || p.n == 0 {
		return
	}
	// A fresh buffer each time: an async publish keeps its message until
	// the ack, to publish it again if need be.
	data := jobs.AppendEncodedLogBatch(make([]byte, 0, len(p.lines)+256), w.runID, w.attempt, container, time.Now().UTC(), p.lines)
	if _, err := w.q.js.PublishAsync(LogSubject(w.runID, container), data); err != nil {
		w.err = errors.Join(w.err, fmt.Errorf("publish logs of %s/%s: %w", w.runID, container, err))
	}
	p.lines, p.n = p.lines[:0], 0
}

// Close flushes what is buffered and waits until every batch is stored.
func (w *LogWriter) Close(ctx context.Context) error {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	for c := range w.batches {
		w.flushLocked(c)
	}
	err := w.err
	w.mu.Unlock()
	select {
	case <-w.q.js.PublishAsyncComplete():
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("logs of %s not all stored: %w", w.runID, context.Cause(ctx)))
	}
	return err
}

// LogQuery selects the log lines to read.
type LogQuery struct {
	RunID     string
	Container string // empty for all
	Attempt   int    // 0 for all
	// Follow keeps reading until Done is closed and every line stored
	// before that has been read.
	Follow bool
	Done   <-chan struct{}
	// Tail, when set, reads the log's end rather than all of it
	// (logtail.go): fn is given batches that hold the last Tail.Lines
	// lines whole, and that a reader keeping the last lines can take for
	// the whole log. Following, the read goes on from there. ReadLogs sets
	// Tail.Whole and Tail.Bounded.
	Tail *LogTail
	// Since, when set, lets a read without Tail skip the batches that
	// hold no line of a batch whose Time is at or after it: it starts at
	// the first that can (logsince.go), and gives fn, before a container's
	// attempt's first batch, those before it that a reader of the whole
	// log would know that attempt by. A reader that drops the lines of
	// batches older than Since gets what it would of the whole log. With
	// Tail, Tail.Since is the one that counts.
	Since time.Time
	// Skew is how far a worker's clock may run ahead of the NATS servers'
	// for a read with Since (or Tail.Since) to give every line of Since
	// on, where the read cannot tell (logsince.go): 0 for DefaultLogSkew,
	// below 0 for none.
	Skew time.Duration
	// CaughtUp, if set, is called by a following read each time it has
	// read every batch stored so far, before it waits for more: what fn
	// was given until then is what was stored when the read began, or
	// later. Its error ends the read. A read without Follow, or of a run
	// already done, may return without calling it.
	CaughtUp func() error
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// LogRetention returns how long the log stream keeps a message after it
// was stored (its MaxAge, which WithLogRetention set or an operator
// changed since); 0 means no age limit.
func (q *Queue) LogRetention(ctx context.Context) (time.Duration, error) {
	l, err := q.LogLimits(ctx)
	return l.MaxAge, err
}

// LogLimits are the log stream's limits and how far back it reaches.
type LogLimits struct {
	MaxAge   time.Duration // 0: no age limit
	MaxBytes int64         // 0: no size bound
	// Oldest is when the oldest line the stream holds was stored; zero
	// when it holds none. Lines stored before it are gone, dropped by
	// the limits (or by an operator's purge).
	Oldest time.Time
	// Dropped says lines were removed from the stream's start (its first
	// sequence is past 1): without it, nothing older than Oldest was ever
	// stored, so a run that ended before Oldest just wrote nothing.
	Dropped bool
	// Created is when the stream was made: a run that ended before it
	// wrote its lines to another stream (a store restored onto a new
	// data directory, a stream an operator deleted).
	Created time.Time
}

// LogLimits returns the log stream's limits as it has them now (as
// WithLogRetention and WithLogMaxBytes set them, or an operator changed
// them since) and the time of its oldest line.
func (q *Queue) LogLimits(ctx context.Context) (LogLimits, error) {
	st, err := q.js.Stream(ctx, StreamLogs)
	if err != nil {
		return LogLimits{}, fmt.Errorf("stream %s: %w", StreamLogs, err)
	}
	info := st.CachedInfo()
	l := LogLimits{MaxAge: info.Config.MaxAge, MaxBytes: max(info.Config.MaxBytes, 0)}
	if info.State.Msgs > 0 {
		l.Oldest = info.State.FirstTime
	}
	l.Dropped = info.State.FirstSeq > 1
	l.Created = info.Created
	return l, nil
}

// logLimits is the MaxAge and MaxBytes to make or update the log stream
// with: those the options gave, and for those they did not the stream's
// own (an operator may have changed them: nats stream edit --max-age), or
// for a stream not made yet DefaultLogRetention and no bound. So a server
// started without --log-retention or --log-max-size changes neither, as
// one without --replicas keeps the replicas (replicasFor, queue.go).
func (q *Queue) logLimits(ctx context.Context) (time.Duration, int64, error) {
	age, size := DefaultLogRetention, int64(-1)
	if q.cfg.logMaxAge == nil || q.cfg.logMaxBytes == nil {
		s, err := q.js.Stream(ctx, StreamLogs)
		switch {
		case err == nil:
			c := s.CachedInfo().Config
			age, size = c.MaxAge, c.MaxBytes
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return 0, 0, fmt.Errorf("look up its limits: %w", err)
		}
	}
	if q.cfg.logMaxAge != nil {
		age = *q.cfg.logMaxAge
	}
	if q.cfg.logMaxBytes != nil {
		size = *q.cfg.logMaxBytes
	}
	if size <= 0 {
		size = -1 // JetStream's "no bound"
	}
	return age, size, nil
}

// ReadLogs calls fn for every batch of the run's logs, in the order they
// were stored, until all are read (or, following, until the run is done).
//
// It reads GANTRY_LOGS by direct get (direct.go), woken up by the run's
// subject when following; on a NATS server before 2.11 it falls back to an
// ordered consumer, which a submitter may not make.
func (q *Queue) ReadLogs(ctx context.Context, lq LogQuery, fn func(*jobs.LogBatch) error) error {
	r, err := newDirectReader(q.nc, StreamLogs, LogSubject(lq.RunID, lq.Container))
	if err != nil {
		return fmt.Errorf("read logs of %s: %w", lq.RunID, err)
	}
	defer r.close()
	r.caughtUp = lq.CaughtUp
	var primer *sincePrimer
	switch {
	case lq.Tail != nil:
		read, err := q.readTail(ctx, r, lq, fn)
		if errors.Is(err, errNoBatch) {
			lq.Tail.Whole, lq.Tail.Bounded, lq.Tail.Streamed, lq.Tail.Skip = true, false, false, 0
			return q.readLogsConsumer(ctx, lq, 1, fn)
		}
		if err != nil || read && !lq.Follow {
			return err
		}
	case !lq.Since.IsZero():
		start, err := r.sinceStart(ctx, lq.Since, lq.skew())
		if errors.Is(err, errNoBatch) {
			return q.readLogsConsumer(ctx, lq, 1, fn)
		}
		if err != nil {
			return fmt.Errorf("read logs of %s: %w", lq.RunID, err)
		}
		if r.next = start; start > 1 {
			primer = q.newSincePrimer(lq, start)
			defer primer.close()
		}
	}
	err = r.follow(ctx, lq.Follow, lq.Done, func(data []byte, _ nats.Header) error {
		var b jobs.LogBatch
		if jobs.DecodeLogBatch(data, &b) != nil {
			return nil
		}
		if lq.Attempt != 0 && b.Attempt != lq.Attempt {
			return nil
		}
		if primer != nil {
			return primer.batch(ctx, &b, fn)
		}
		return fn(&b)
	})
	if errors.Is(err, errNoBatch) {
		return q.readLogsConsumer(ctx, lq, r.next, fn)
	}
	return err // fn's as it returned it; the reader's name the stream
}

// readLogsConsumer is ReadLogs through an ordered consumer, from the
// stream sequence start on, for servers without batched direct get.
func (q *Queue) readLogsConsumer(ctx context.Context, lq LogQuery, start uint64, fn func(*jobs.LogBatch) error) error {
	cons, err := q.js.OrderedConsumer(ctx, StreamLogs, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{LogSubject(lq.RunID, lq.Container)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return fmt.Errorf("read logs of %s: %w", lq.RunID, err)
	}
	for {
		done := lq.Follow && closed(lq.Done)
		var batch jetstream.MessageBatch
		endFetch := func() {}
		if !lq.Follow || done {
			batch, err = cons.FetchNoWait(500)
		} else {
			// Wait for lines, but wake up as soon as the run is done: the
			// last of them are stored by then.
			fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			endFetch = cancel
			go func() {
				select {
				case <-lq.Done:
					cancel()
				case <-fctx.Done():
				}
			}()
			batch, err = cons.Fetch(500, jetstream.FetchContext(fctx))
		}
		if err != nil {
			endFetch()
			return fmt.Errorf("read logs of %s: %w", lq.RunID, err)
		}
		n := 0
		var pendingAfter uint64
		for m := range batch.Messages() {
			n++
			pendingAfter = 1 // unknown: not caught up
			if md, err := m.Metadata(); err == nil {
				pendingAfter = md.NumPending
			}
			var b jobs.LogBatch
			if jobs.DecodeLogBatch(m.Data(), &b) == nil && (lq.Attempt == 0 || b.Attempt == lq.Attempt) {
				if err := fn(&b); err != nil {
					endFetch()
					return err
				}
			}
			// Caught up with what is stored: say so now, not when the
			// fetch ends, which waits for more (up to 2s) and hands
			// them over first, as if stored before.
			if pendingAfter == 0 && lq.Follow && !done && lq.CaughtUp != nil {
				if err := lq.CaughtUp(); err != nil {
					endFetch()
					return err
				}
			}
		}
		endFetch()
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, context.Canceled) {
			return fmt.Errorf("read logs of %s: %w", lq.RunID, err)
		}
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if n == 0 || pendingAfter == 0 {
			if !lq.Follow || done {
				return nil
			}
			if lq.CaughtUp != nil {
				if err := lq.CaughtUp(); err != nil {
					return err
				}
			}
		}
	}
}
