package main

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// parseSince reads --since: a duration back from now (10m, 1h30m, 2d:
// jobs.ParseDuration) or an RFC 3339 time (2026-01-02T15:04:05Z, with
// fractions and offsets too).
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := jobs.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("invalid --since %q: a duration counts back from now, so it may not be negative", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid --since %q: want a duration back from now (10m, 1h30m, 2d) or an RFC 3339 time (2026-01-02T15:04:05Z)", s)
}

// parseTail reads --tail: a number of lines, 0 or more, or "all" (-1).
func parseTail(s string) (int, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid --tail %q: want a number of lines, 0 or more, or all", s)
	}
	return n, nil
}

// logSelect keeps the lines --since and --tail ask for, of the batches a
// dropWatch gives it, and prints them. It counts lines as the printer
// does: the pieces of a split line (Partial) make one line, kept or
// skipped whole, and the batch of its last piece is the line's.
//
// With --tail it holds the last lines read in a ring until the read has
// caught up with what is stored (caughtUp), prints them, and from then on
// prints lines as they come, as without --tail. A read of the log's end
// whose window was too big to hold (read.Streamed) says how many of the
// lines it gives come before the last N (read.Skip): those are left out,
// and the rest printed as they come, so that a --tail longer than the log
// holds no line. It holds at most
// maxHeldLine bytes of a line in pieces meanwhile, as the printer does: the
// rest of a longer line (a blob written with no newline) is left out, and
// said so on stderr where the line is printed. Should the stream drop
// the batch the last N lines begin in before a streamed read got to it
// again (read.Shortened), it prints what is left and says so.
//
// Lines it skips on purpose must not read as dropped by the stream: a gap
// the dropWatch found before a line is reported only if that line is
// printed and so is the line of its container's attempt before it (or
// there is none: the first lines are gone).
type logSelect struct {
	d       *dropWatch
	since   time.Time // zero: all
	tail    int       // -1: all
	tailing bool      // filling the ring: the read has not caught up yet
	// read is the read of the log's end, whose Streamed and Skip say to
	// skip lines rather than fill the ring; skipped counts those skipped.
	read    *queue.LogTail
	skipped int
	// toldShort: it said on stderr that the stream dropped the start of
	// the last lines while they were read (read.Shortened).
	toldShort bool

	ring    []selLine // the last lines, oldest at ring[head] once full
	head    int
	parts   map[string][]jobs.LogLine // attempt/container/stream → the pieces so far
	partsAt map[string]time.Time      // attempt/container/stream → the time of its first piece's batch
	held    map[string]heldLine       // attempt/container/stream → how much of its line is held, and left out
	gaps    map[string]gap            // attempt/container → the lines missing before its next line
	seen    map[string]bool           // attempt/container → a line was read
	shown   map[string]bool           // attempt/container → its last line read was printed
}

// heldLine is how many bytes of a line in pieces are held, and how many
// were left out past maxHeldLine.
type heldLine struct{ held, cut int }

// gap is a run of lines, from to to, the stream dropped before they were
// read.
type gap struct{ from, to int64 }

// selLine is one line as the printer counts it.
type selLine struct {
	container string
	attempt   int
	time      time.Time // its last piece's batch's, which --since looks at
	start     time.Time // its first piece's batch's, which --timestamps prints
	pieces    []jobs.LogLine
	gap       *gap
	first     bool // its container's attempt had no line before it
	cut       int  // bytes of it left out past maxHeldLine, while --tail held it
}

func newLogSelect(d *dropWatch, since time.Time, tail int) *logSelect {
	return &logSelect{d: d, since: since, tail: tail, tailing: tail >= 0,
		parts: map[string][]jobs.LogLine{}, partsAt: map[string]time.Time{}, held: map[string]heldLine{}, gaps: map[string]gap{}, seen: map[string]bool{}, shown: map[string]bool{}}
}

// batch takes b, before whose first line the lines g are missing (g.from
// is 0 when none are).
func (s *logSelect) batch(b *jobs.LogBatch, g gap) error {
	if err := s.tellShortened(); err != nil {
		return err
	}
	key := fmt.Sprint(b.Attempt, "/", b.Container)
	if g.from > 0 {
		s.gaps[key] = g
	}
	var out []selLine
	for _, l := range b.Lines {
		pkey := key + "/" + l.Stream
		h := s.held[pkey]
		if h.cut > 0 || s.tailing && h.held >= maxHeldLine {
			// Past what --tail holds of a line: its text is left out, its
			// end kept (a newline or none).
			h.cut += len(l.Text)
			l.Text = ""
		}
		if l.Partial {
			if _, ok := s.partsAt[pkey]; !ok {
				s.partsAt[pkey] = b.Time
			}
			if l.Text != "" {
				s.parts[pkey] = append(s.parts[pkey], l)
			}
			h.held += len(l.Text)
			s.held[pkey] = h
			continue
		}
		line := selLine{container: b.Container, attempt: b.Attempt, time: b.Time, start: b.Time,
			pieces: append(s.parts[pkey], l), first: !s.seen[key], cut: h.cut}
		if at, ok := s.partsAt[pkey]; ok {
			line.start = at
		}
		delete(s.parts, pkey)
		delete(s.partsAt, pkey)
		delete(s.held, pkey)
		if g, ok := s.gaps[key]; ok {
			line.gap = &g
			delete(s.gaps, key)
		}
		s.seen[key] = true
		switch {
		case b.Time.Before(s.since):
			s.shown[key] = false
		case s.tailing && s.read != nil && s.read.Streamed:
			if s.skipped < s.read.Skip {
				s.skipped++
				s.shown[key] = false
				break
			}
			out = append(out, line)
		case s.tailing:
			s.shown[key] = false // until the ring is printed
			s.push(line)
		default:
			out = append(out, line)
		}
	}
	return s.print(out)
}

func (s *logSelect) push(l selLine) {
	switch {
	case s.tail == 0:
	case len(s.ring) < s.tail:
		s.ring = append(s.ring, l)
	default:
		s.ring[s.head] = l
		s.head = (s.head + 1) % s.tail
	}
}

// caughtUp prints the lines the ring holds, once: the read has caught up
// with what is stored, and what comes next is printed as it comes.
func (s *logSelect) caughtUp() error {
	if err := s.tellShortened(); err != nil {
		return err
	}
	if !s.tailing {
		return nil
	}
	s.tailing = false
	lines := slices.Concat(s.ring[s.head:], s.ring[:s.head])
	s.ring = nil
	return s.print(lines)
}

// tellShortened says on stderr, once, that the read of the log's end gave
// fewer than the last N lines, the stream having dropped their start
// while it read them.
func (s *logSelect) tellShortened() error {
	if s.toldShort || s.read == nil || !s.read.Shortened {
		return nil
	}
	s.toldShort = true
	if err := s.d.pr.flush(); err != nil {
		return err
	}
	s.d.reportShortened(s.tail)
	return nil
}

// print writes lines out, a batch for each run of one container's lines
// of one batch time, with the gaps before them that are to be reported.
// A line's pieces before its last go in a batch of its start's time, so
// that the printer stamps it (--timestamps) with its first piece's time.
func (s *logSelect) print(lines []selLine) error {
	var b *jobs.LogBatch
	out := func() error {
		if b == nil {
			return nil
		}
		err := s.d.pr.batch(b)
		b = nil
		return err
	}
	for _, l := range lines {
		key := fmt.Sprint(l.attempt, "/", l.container)
		if l.gap != nil && (l.first || s.shown[key]) {
			if err := out(); err != nil {
				return err
			}
			if err := s.d.pr.flush(); err != nil {
				return err
			}
			s.d.reportGap(&jobs.LogBatch{Container: l.container, Attempt: l.attempt}, l.gap.from, l.gap.to)
		}
		s.shown[key] = true
		for _, piece := range l.pieces {
			at := l.time
			if piece.Partial {
				at = l.start
			}
			if b != nil && (b.Container != l.container || b.Attempt != l.attempt || !b.Time.Equal(at)) {
				if err := out(); err != nil {
					return err
				}
			}
			if b == nil {
				b = &jobs.LogBatch{Container: l.container, Attempt: l.attempt, Time: at}
			}
			b.Lines = append(b.Lines, piece)
		}
		if l.cut > 0 {
			if err := out(); err != nil {
				return err
			}
			if err := s.d.pr.flush(); err != nil {
				return err
			}
			s.d.reportCut(l.container, l.attempt, l.cut)
		}
	}
	return out()
}
