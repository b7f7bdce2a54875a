package queue

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// A read of the lines of a time on (gantry logs --since) starts near that
// time, not at the log's first batch: a --since 1m of a 200 MiB log
// fetched all of it to keep its last minute.
//
// A batch's Time (what --since compares) is the worker's clock when it
// sent the batch; JetStream stamps the batch, on the server's clock, when
// it stores it, which is later. So, clocks agreeing, a batch stored before
// Since holds no line of Since on, and the read starts at the first of the
// run's batches stored at or after it (a direct get by start_time). The
// batches stored after it whose lines are older are read and dropped by
// the reader, as a reader of the whole log drops them.
//
// A worker's clock ahead of the server's makes a batch stored before
// Since later than Since. The last batch of each container stored before
// the start tells: where it is later, the start moves back to where the
// server stored the batches of Since on that worker's clock (the batch's
// Time less its stamp), and is checked again. An attempt's times go up
// (LogWriter stamps batches in order), so the batches before the last are
// older still. An earlier attempt of a container, whose batches are not
// its last, is not checked: the read starts Skew (DefaultLogSkew) before
// Since for it, so a worker clock up to that far ahead is covered.
//
// A reader of the batches from the start on would know less than a reader
// of the whole log of a container's attempt that wrote before it (the
// line it expects next, the pieces of a line begun before): before the
// first batch of an attempt that does not begin with its first line, the
// read gives that attempt's batches before the start back to the nearest
// that ends a line, as a read of the log's end does (logtail.go).

// DefaultLogSkew is how far before Since a read with Since starts, by the
// servers' clock, for the attempts whose batches it does not check: the
// most that their workers' clocks may run ahead of the NATS servers' for
// the read to give every line of Since on. NTP keeps clocks far closer.
const DefaultLogSkew = time.Second

// skew is the LogQuery's Skew, or its default.
func (lq LogQuery) skew() time.Duration {
	switch {
	case lq.Skew == 0:
		return DefaultLogSkew
	case lq.Skew < 0:
		return 0
	}
	return lq.Skew
}

// sinceStart returns the stream sequence from which a read of the reader's
// filter gives every batch whose Time is at or after since (past the last
// sequence when there is none yet).
func (r *directReader) sinceStart(ctx context.Context, since time.Time, skew time.Duration) (uint64, error) {
	at, err := r.seqAt(ctx, since.Add(-skew))
	if err != nil {
		return 0, err
	}
	if at == 0 {
		last, err := r.lastSeq(ctx)
		if err != nil {
			return 0, err
		}
		at = last + 1
	}
	for at > 1 {
		lasts, err := r.lastsUpTo(ctx, r.filter, at-1)
		if err != nil {
			return 0, err
		}
		back := at
		for _, tb := range lasts {
			if tb.b.Time.Before(since) {
				continue
			}
			// Stored before the start, later than since: its worker's
			// clock is ahead by about Time - stored.
			back = min(back, tb.seq)
			s, err := r.seqAt(ctx, since.Add(-tb.b.Time.Sub(tb.stored)-skew))
			if err != nil {
				return 0, err
			}
			if s != 0 {
				back = min(back, s)
			}
		}
		if back == at {
			break
		}
		at = back
	}
	return at, nil
}

// sincePrimer primes a read from a stream sequence on: before the first
// batch it is given of a container's attempt that does not begin with the
// attempt's first line, it gives that attempt's batches stored before the
// read's start back to the nearest that ends a line.
type sincePrimer struct {
	run  string
	upTo uint64 // the last sequence before the read's start
	// r is the primer's own reader: the read's is amid an answer when a
	// batch comes.
	r    *directReader
	seen map[string]bool // attempt/container
}

func (q *Queue) newSincePrimer(lq LogQuery, start uint64) *sincePrimer {
	return &sincePrimer{run: lq.RunID, upTo: start - 1, seen: map[string]bool{},
		r: &directReader{nc: q.nc, stream: StreamLogs, filter: LogSubject(lq.RunID, lq.Container)}}
}

func (p *sincePrimer) close() {
	if p.r.sub != nil {
		p.r.close()
	}
}

// batch gives fn b, after the batches that prime its attempt, if it is the
// first of it the read gives.
func (p *sincePrimer) batch(ctx context.Context, b *jobs.LogBatch, fn func(*jobs.LogBatch) error) error {
	key := fmt.Sprint(b.Attempt, "/", b.Container)
	if len(b.Lines) == 0 || p.seen[key] {
		return fn(b)
	}
	p.seen[key] = true
	if b.Lines[0].Seq > 1 && p.upTo > 0 {
		primed, err := p.prime(ctx, b.Container, b.Attempt)
		if err != nil {
			return fmt.Errorf("read logs of %s: %w", p.run, err)
		}
		for _, tb := range primed {
			if err := fn(tb.b); err != nil {
				return err
			}
		}
	}
	return fn(b)
}

// prime returns the batches of the container's attempt stored up to upTo,
// back to the nearest that ends a line, in stored order.
func (p *sincePrimer) prime(ctx context.Context, container string, attempt int) ([]tailBatch, error) {
	if p.r.sub == nil {
		r, err := newDirectReader(p.r.nc, p.r.stream, p.r.filter)
		if err != nil {
			return nil, err
		}
		p.r = r
	}
	subject := LogSubject(p.run, container)
	last, err := p.r.lastsUpTo(ctx, subject, p.upTo)
	if err != nil || len(last) == 0 {
		return nil, err
	}
	primed, err := walkBack(ctx, p.r, subject, last[0], map[int]bool{attempt: true})
	slices.SortFunc(primed, func(a, b tailBatch) int { return cmpSeq(a.seq, b.seq) })
	return primed, err
}
