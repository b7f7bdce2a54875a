package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	units "github.com/docker/go-units"
	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/spf13/cobra"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		o           client.LogOptions
		prefix      bool
		timestamps  bool
		tail, since string
		stages      []string // pr-...: --stage
		noPrefix    bool     // pr-...: --no-prefix
	)
	c := &cobra.Command{
		Use:   "logs RUN | PIPELINE-RUN",
		Short: "Print a run's logs, or every stage run's of a pipeline run; -f follows them until it ends",
		Long: `logs prints what the run's containers wrote, stdout to stdout and stderr to
stderr, in order, byte for byte (also bytes that are not UTF-8). The log is kept in JetStream, so it can be read again after
the run ended and after gantry restarts, for 30 days (the GANTRY_LOGS stream's
max age, the server's --log-retention): of a run that ended longer ago, logs
says on stderr that its logs are no longer kept, and of one that ended
before any of its containers started (stopped while queued) that it has
no log. Of a run still QUEUED or STARTING, none of whose containers has
started yet, it says on stderr that the run has no log yet, and exits 0;
with -f, that it waits for the log, which it then prints as it comes. A server with --log-max-size
bounds the stream's bytes, and past the bound the oldest lines are dropped:
logs says on stderr when a run's lines, or the first ones of a container,
went that way, and which lines went while it read too slowly (a reader
behind the run's output by more than the bound misses lines). With -f, why
a run waits in the queue (no worker can take it, a retry's backoff) and its
image pull's progress show on stderr, as gantry run shows them.

--tail N prints only the last N lines (a line too long for one message,
stored in pieces, counts as one), as docker logs --tail does; it reads the
log's end, not all of it (its last batches, then back from them until it
holds N lines, each batch once), so a long log's last lines come as fast
as a short one's. Until it prints them it holds about 8 MiB of a line at
most: of a longer one (a blob written without newlines) it prints the
start, and says on stderr how much it left out. With -f it prints the
last N lines stored when it has read them, then follows. --since keeps the lines of the
batches stored at or after a time, a duration back from now (10m, 2d) or an
RFC 3339 time: lines are stored in batches, up to 50 ms after the
container wrote them, so the time is the batch's, within a fraction of a
second of the line's. --since reads the log from about that time, not
from its start. A --tail longer than most of the log holds at most about
16 MiB of it: it counts the lines back from the end, then reads them
again and prints them as it goes; should the stream drop the oldest of
those lines meanwhile, it prints those left and says so on stderr. Lines
left out by --tail or --since are never reported as dropped.

--timestamps (-t) starts each line with a time in RFC 3339 with
nanoseconds, in UTC (2026-12-06T06:14:18.123456789Z line), after the
--prefix if both are given. docker logs -t prints the time the daemon read
the line; gantry does not keep a time per line, and prints its batch's:
when the worker, on its clock, sent the batch the line was in, normally
within 50 ms of reading the line from the container. So lines of one
batch share a time, a container's attempt's times go up as its lines do
(unless the worker's clock is set back), and the time is the one --since
compares with. A line too long for one message, stored in pieces, gets
the time of its first piece's batch.

Of a pipeline run (pr-...), logs prints the logs of its stages' runs, each
line starting with its stage run's label: extract | ..., transform[2] | ...
for a child of an array stage, load (try 1) | ... for an earlier try of a
stage that 'gantry pipeline retry' ran again, as 'gantry describe pr-...'
names them. --stage NAME (repeatable) keeps those stages' runs; --no-prefix
leaves the labels out. Without -f it prints the stages in DAG order (a
stage after those it depends on), a stage run's lines together, a stage's
earlier tries before its latest, an array's children by index, every
attempt of each. With -f it follows every stage run, and those that start
meanwhile, printing their lines as they come, interleaved, until the
pipeline run has ended and its runs' lines are read; it exits 0 then,
whatever the pipeline run's outcome, as for a run ('gantry wait pr-...' or
'gantry pipeline runs' tell that). --tail, --since and --timestamps work
as for a run, --tail N being the last N lines of each stage run; with -f,
--tail and --since apply to the stage runs there are when logs starts, and
a stage run that starts later is printed from its first line. A
submit-only NATS user may read a pipeline run's logs as a run's.`,
		Example: `  gantry logs 01jf3...
  gantry logs -f 01jf3... --container main
  gantry logs 01jf3... --attempt 2
  gantry logs 01jf3... --tail 20                 # the last 20 lines
  gantry logs -f 01jf3... --tail 0               # only lines written from now on
  gantry logs 01jf3... --since 10m               # the lines of the last 10 minutes
  gantry logs 01jf3... --since 2026-01-02T15:04:05Z --tail 100
  gantry logs -t 01jf3... --prefix               # main|stdout 2026-12-06T06:14:18.123456789Z hello
  gantry logs pr-01jf3...                        # extract | ..., then transform[0] | ..., in DAG order
  gantry logs -f pr-01jf3... --stage transform   # follow the transform stage's runs until the pipeline run ends`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pipe := jobs.IsPipelineRunID(args[0])
			n, terr := parseTail(tail)
			var (
				from time.Time
				serr error
			)
			if since != "" {
				from, serr = parseSince(since, time.Now())
			}
			if err := errors.Join(terr, serr, logsFlagsFor(cmd, pipe)); err != nil {
				return err
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			again := "the run goes on: gantry logs again reads it"
			if pipe {
				pr, err := pipelineRunStatus(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				p := &pipelineLogs{c: c, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), stages: stages,
					noPrefix: noPrefix, timestamps: timestamps, tail: n, since: from}
				return lostNATS(p.print(cmd.Context(), pr, o.Follow), nc, g.conn.URL, again)
			}
			pr := newLinePrinter(cmd.OutOrStdout(), cmd.ErrOrStderr(), prefix)
			pr.timestamps = timestamps
			defer pr.flush()
			if o.Follow {
				// A run no container of has started yet: say that logs
				// waits for it, rather than sit silent as if it hung.
				if r, err := c.Get(cmd.Context(), args[0]); err == nil {
					if r.ArrayParent() {
						fmt.Fprintln(cmd.ErrOrStderr(), "gantry:", arrayNoLog(r))
						return nil
					}
					if st := notStartedYet(r, o.Attempt); st != "" {
						fmt.Fprintf(cmd.ErrOrStderr(), "gantry: %s: waiting for its log\n", st)
					}
				}
				// As gantry run attached: why the run waits in the queue,
				// or how its image pull goes, on stderr; silence read as
				// a hang.
				stop := watchRunEvents(cmd.Context(), c.EventsFromLatest, args[0], cmd.ErrOrStderr()) // pullprogress.go
				defer stop()
			}
			batches := 0
			drops := newDropWatch(cmd.Context(), c, pr, cmd.ErrOrStderr())
			if n >= 0 || !from.IsZero() {
				drops.sel = newLogSelect(drops, from, n)
				o.CaughtUp = drops.sel.caughtUp
			}
			o.Since = from // read from near it, not from the log's start
			if n >= 0 {
				o.Tail = &queue.LogTail{Lines: n, Since: from} // the log's end, not all of it
				drops.sel.read = o.Tail
			}
			err = c.Logs(cmd.Context(), args[0], o, func(b *jobs.LogBatch) error {
				batches++
				return drops.batch(b)
			})
			if err == nil && drops.sel != nil {
				err = drops.sel.caughtUp() // read through, or the run was over
			}
			if err == nil && batches == 0 {
				why := logsExpired(cmd.Context(), c, args[0], o, time.Now())
				if why == "" && !o.Follow {
					if r, err := c.Get(cmd.Context(), args[0]); err == nil {
						if r.ArrayParent() {
							why = arrayNoLog(r)
						} else if st := notStartedYet(r, o.Attempt); st != "" {
							why = fmt.Sprintf("%s: it has no log yet (gantry logs -f %s waits for it)", st, args[0])
						}
					}
				}
				if why != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), "gantry:", why)
				}
			}
			return lostNATS(err, nc, g.conn.URL, again)
		},
	}
	c.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines until the run ends")
	c.Flags().StringVar(&o.Container, "container", "", "only this container's lines")
	c.Flags().IntVar(&o.Attempt, "attempt", 0, "only this attempt's lines (default: all)")
	c.Flags().BoolVar(&prefix, "prefix", false, "start each line with its container's name and stream")
	c.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "start each line with its batch's time (RFC 3339, nanoseconds, UTC): when the worker sent it, normally within 50 ms of the line")
	c.Flags().StringVar(&tail, "tail", "all", "only the last N lines (read from the log's end); with -f, then new ones")
	c.Flags().StringVar(&since, "since", "", "only lines stored since a time: a duration back from now (10m, 2d) or an RFC 3339 time (to the batch, within a fraction of a second)")
	c.Flags().StringArrayVar(&stages, "stage", nil, "of a pipeline run (pr-...): only this stage's runs (repeatable)")
	c.Flags().BoolVar(&noPrefix, "no-prefix", false, "of a pipeline run (pr-...): lines without their stage run's label")
	hintUnknownRuns(c) // runs.go
	return c
}

// arrayNoLog says that an array run has no log of its own: its children
// have theirs.
func arrayNoLog(r *jobs.Run) string {
	n := r.ArrayProperties.Size
	return fmt.Sprintf("run %s is an array run: it runs no container, and has no log; each of its %d children has its own "+
		"(gantry logs %s ... gantry logs %s; gantry ps --array %s lists them)",
		r.RunID, n, jobs.ArrayChildID(r.RunID, 0), jobs.ArrayChildID(r.RunID, n-1), r.RunID)
}

// logsFlagsFor refuses the flags that do not apply to a run (pipeline,
// true: to a pipeline run), naming each.
func logsFlagsFor(cmd *cobra.Command, pipeline bool) error {
	runOnly := []struct{ flag, instead string }{
		{"container", "give one of its stage runs' ids (gantry describe PIPELINE-RUN lists them)"},
		{"attempt", "give one of its stage runs' ids (gantry describe PIPELINE-RUN lists them)"},
		{"prefix", "its lines start with their stage run's label (--no-prefix leaves it out)"},
	}
	pipeOnly := []string{"stage", "no-prefix"}
	var errs []error
	for _, f := range runOnly {
		if pipeline && cmd.Flags().Changed(f.flag) {
			errs = append(errs, fmt.Errorf("--%s: applies to a run, not to a pipeline run: %s", f.flag, f.instead))
		}
	}
	for _, f := range pipeOnly {
		if !pipeline && cmd.Flags().Changed(f) {
			errs = append(errs, fmt.Errorf("--%s: applies to a pipeline run (pr-...), not to a run", f))
		}
	}
	return errors.Join(errs...)
}

// logsExpired says why a run that showed no log line has none, when it can
// be told for sure: the run (or the --attempt asked for) ended before any
// of its containers started, so it never had one; the run ended longer
// ago than the log stream keeps lines, or before the oldest line the
// stream holds when it dropped older ones (bounded by --log-max-size), so
// whatever it wrote is gone; or before the stream was made, so whatever
// it wrote went to another. Otherwise (a run that wrote nothing, a user
// who may not read the stream's configuration) it returns "", and the
// empty output stands.
func logsExpired(ctx context.Context, c *client.Client, runID string, o client.LogOptions, now time.Time) string {
	r, err := c.Get(ctx, runID)
	if err != nil {
		return ""
	}
	if why := noContainerStarted(r, o.Attempt); why != "" {
		return why
	}
	if r.FinishedAt == nil || o.Attempt > len(r.Attempts) {
		return ""
	}
	l, err := c.LogLimits(ctx)
	if err != nil {
		return ""
	}
	return logsGone(runID, *r.FinishedAt, l, now)
}

// noContainerStarted says that r ended before any of its containers
// started (the worker reports RUNNING once they have, before any end),
// or, attempt above 0, that this attempt of it did: it has no log. ""
// for a run or attempt that has not ended, or that started.
func noContainerStarted(r *jobs.Run, attempt int) string {
	what, status, reason, started, ok := startOf(r, attempt)
	if !ok || !status.Terminal() || started {
		return ""
	}
	how := "ended " + string(status)
	switch status {
	case jobs.StatusCanceled:
		how = "was canceled"
	case jobs.StatusFailed:
		how = "failed"
	}
	if reason != "" {
		how += " (" + reason + ")"
	}
	return fmt.Sprintf("%s %s before any container started: it has no log", what, how)
}

// notStartedYet says that r (or, attempt above 0, that attempt of it) has
// not ended and none of its containers has started yet, so that it has no
// log yet: "run ID is QUEUED, no container has started". "" for a run or
// attempt that has ended, or that started.
func notStartedYet(r *jobs.Run, attempt int) string {
	what, status, _, started, ok := startOf(r, attempt)
	if !ok || status.Terminal() || started || status == jobs.StatusRunning {
		return ""
	}
	return fmt.Sprintf("%s is %s, no container has started", what, status)
}

// startOf is what the log's notices say of r, or of its attempt above 0:
// its name, its status and why it stopped, and whether a container of it
// started (of the run: of any of its attempts); ok is false for an
// attempt the run has not reached.
func startOf(r *jobs.Run, attempt int) (what string, status jobs.Status, reason string, started, ok bool) {
	if attempt > 0 {
		if attempt > len(r.Attempts) {
			return "", "", "", false, false
		}
		a := r.Attempts[attempt-1]
		return fmt.Sprintf("attempt %d of run %s", attempt, r.RunID), a.Status, a.StoppedReason, a.StartedAt != nil, true
	}
	started = r.StartedAt != nil
	for _, a := range r.Attempts {
		started = started || a.StartedAt != nil
	}
	return "run " + r.RunID, r.Status, r.StoppedReason, started, true
}

// logsGone is logsExpired's reason for a run that ended at finished,
// given the log stream's limits l.
func logsGone(runID string, finished time.Time, l queue.LogLimits, now time.Time) string {
	ago := now.Sub(finished)
	switch {
	case l.MaxAge > 0 && ago > l.MaxAge:
		return fmt.Sprintf("run %s ended %s ago, and logs are kept %s (the %s stream's max age): its logs, if it wrote any, are no longer kept",
			runID, short(ago), short(l.MaxAge), queue.StreamLogs)
	case !l.Created.IsZero() && finished.Before(l.Created):
		return fmt.Sprintf("run %s ended %s ago, before the %s stream was made (%s ago): its logs, if it wrote any, are in the JetStream it ran with, not this one (a store restored onto a new data directory?)",
			runID, short(ago), queue.StreamLogs, short(now.Sub(l.Created)))
	case !l.Oldest.IsZero() && finished.Before(l.Oldest) && l.Dropped:
		return fmt.Sprintf("run %s ended %s ago, before the oldest line the %s stream holds (stored %s ago): %s; its logs, if it wrote any, are no longer kept",
			runID, short(ago), queue.StreamLogs, short(now.Sub(l.Oldest)), dropCause(l))
	}
	return ""
}

// dropWatch prints log batches, and says on stderr where lines of a
// container's attempt are missing: a writer numbers them from 1, so a
// first line past 1, or a batch that does not start where the one before
// ended, means the stream dropped those lines (its limits, or a purge)
// before they were read. Past --log-max-size that happens to the first
// lines of a run written long ago, and to the middle of one whose reader
// fell behind its writer by more than the bound (a slow pipe after
// gantry run or gantry logs -f).
type dropWatch struct {
	ctx    context.Context
	c      *client.Client
	pr     *linePrinter
	stderr io.Writer
	next   map[string]int64 // attempt/container → the line expected next
	sel    *logSelect       // --tail, --since: nil prints every line
	// label, when set, names the run in what it says (a pipeline run's
	// stage run, "transform[2]").
	label string
}

func newDropWatch(ctx context.Context, c *client.Client, pr *linePrinter, stderr io.Writer) *dropWatch {
	return &dropWatch{ctx: ctx, c: c, pr: pr, stderr: stderr, next: map[string]int64{}}
}

// batch prints b, after saying which lines before it are gone, if any.
func (d *dropWatch) batch(b *jobs.LogBatch) error {
	if len(b.Lines) == 0 {
		return d.pr.batch(b)
	}
	key := fmt.Sprint(b.Attempt, "/", b.Container)
	next, ok := d.next[key]
	if !ok {
		next = 1
	}
	var g gap
	if first := b.Lines[0].Seq; first > next {
		g = gap{next, first - 1}
	}
	d.next[key] = max(next, b.Lines[len(b.Lines)-1].Seq+1)
	if d.sel != nil {
		return d.sel.batch(b, g)
	}
	if g.from > 0 {
		if err := d.pr.flush(); err != nil {
			return err
		}
		d.reportGap(b, g.from, g.to)
	}
	return d.pr.batch(b)
}

// reportGap says on stderr that lines from to to of b's container and
// attempt are gone.
func (d *dropWatch) reportGap(b *jobs.LogBatch, from, to int64) {
	if d.label != "" {
		fmt.Fprintf(d.stderr, "gantry: %s: %s\n", d.label, linesDropped(d.ctx, d.c, b, from, to))
		return
	}
	fmt.Fprintln(d.stderr, "gantry:", linesDropped(d.ctx, d.c, b, from, to))
}

// reportCut says on stderr that --tail left out the end of a line of a
// container's attempt: the cut bytes past the maxHeldLine it holds.
func (d *dropWatch) reportCut(container string, attempt, cut int) {
	msg := fmt.Sprintf("the line above of container %s (attempt %d) is cut: --tail holds about %d bytes of a line, and left out its last %d (gantry logs without --tail prints it whole)",
		container, attempt, maxHeldLine, cut)
	if d.label != "" {
		msg = d.label + ": " + msg
	}
	fmt.Fprintln(d.stderr, "gantry:", msg)
}

// reportShortened says on stderr that the oldest of the last n lines
// --tail asked for were dropped while they were read: what follows is
// all that is left of them.
func (d *dropWatch) reportShortened(n int) {
	msg := fmt.Sprintf("the oldest of the last %d lines were dropped while --tail read them; the lines printed after this are all that is left", n)
	if d.c != nil {
		if l, err := d.c.LogLimits(d.ctx); err == nil {
			msg += ": " + dropCause(l)
		}
	}
	if d.label != "" {
		msg = d.label + ": " + msg
	}
	fmt.Fprintln(d.stderr, "gantry:", msg)
}

// linesDropped says that the lines from to to of b's container and
// attempt are gone, and why as far as the stream's limits tell.
func linesDropped(ctx context.Context, c *client.Client, b *jobs.LogBatch, from, to int64) string {
	msg := fmt.Sprintf("the first %d lines of container %s (attempt %d) are no longer kept", to, b.Container, b.Attempt)
	if from > 1 {
		msg = fmt.Sprintf("%d lines of container %s (attempt %d), %d to %d, were dropped before they were read", to-from+1, b.Container, b.Attempt, from, to)
	}
	if l, err := c.LogLimits(ctx); err == nil {
		msg += ": " + dropCause(l)
	}
	return msg
}

// dropCause names the limits of the log stream that drop its oldest lines.
func dropCause(l queue.LogLimits) string {
	switch {
	case l.MaxBytes > 0 && l.MaxAge > 0:
		return fmt.Sprintf("the %s stream keeps lines %s and at most %s (its max age and max size, the server's --log-retention and --log-max-size), dropping the oldest first",
			queue.StreamLogs, short(l.MaxAge), units.BytesSize(float64(l.MaxBytes)))
	case l.MaxBytes > 0:
		return fmt.Sprintf("the %s stream holds at most %s (its max size, the server's --log-max-size), dropping the oldest lines first",
			queue.StreamLogs, units.BytesSize(float64(l.MaxBytes)))
	case l.MaxAge > 0:
		return fmt.Sprintf("the %s stream keeps lines %s (its max age, the server's --log-retention)", queue.StreamLogs, short(l.MaxAge))
	}
	return fmt.Sprintf("the %s stream no longer holds them (it was purged, or its limits were changed)", queue.StreamLogs)
}

// linePrinter writes log batches out, joining the pieces of long lines.
// A stream's last line that its container ended without a newline
// (LogLine.NoNewline) is printed without one, so that the output is what
// the container wrote, byte for byte; should another line follow on the
// same output (another container's), it gets its newline first. With
// prefixes, or a label, every line ends with a newline.
type linePrinter struct {
	out, err *bufio.Writer
	prefix   bool
	// label, when set, starts each line, before anything else, as
	// "label | ": the stage run's of a pipeline run (gantry logs pr-...),
	// whose lines then end with a newline, also where the container's
	// did not, so that the next run's first line is not joined to them.
	label     string
	whole     bool   // every line ends with a newline
	labelText []byte // "label | "
	// timestamps starts each line (after its prefix) with its batch's
	// time, that of its first piece's batch for a line in pieces.
	timestamps bool
	partial    map[string][]byte    // container/stream → the pieces so far
	partialAt  map[string]time.Time // container/stream → the time of its first piece's batch
	// open marks a container/stream whose line in pieces grew past
	// maxHeldLine: its start is written out and its next pieces go out
	// as they come, so that a line without end (a blob written with no
	// newline) is never held whole.
	open  map[string]bool
	owed  map[*bufio.Writer]bool
	stamp []byte // a timestamp's bytes, reused
}

// timestampLayout is RFC 3339 with nanoseconds, as docker logs -t writes
// it: always nine digits, so that the lines' texts line up.
const timestampLayout = "2006-01-02T15:04:05.000000000Z07:00"

func newLinePrinter(stdout, stderr io.Writer, prefix bool) *linePrinter {
	return &linePrinter{out: bufio.NewWriterSize(stdout, 64<<10), err: bufio.NewWriterSize(stderr, 16<<10),
		prefix: prefix, partial: map[string][]byte{}, partialAt: map[string]time.Time{}, open: map[string]bool{},
		owed: map[*bufio.Writer]bool{}}
}

// maxHeldLine is how much of a line in pieces the printer holds to write
// it whole; past it the line goes out as it comes, and another
// container's line on the same stream may then land inside it.
var maxHeldLine = 8 << 20

func (p *linePrinter) batch(b *jobs.LogBatch) error {
	var last *bufio.Writer
	for _, l := range b.Lines {
		w := p.out
		if l.Stream == jobs.Stderr {
			w = p.err
		}
		// Lines of the other stream go out first: on one terminal (or
		// with 2>&1) the lines keep their order.
		if last != nil && last != w {
			if err := last.Flush(); err != nil {
				return err
			}
		}
		last = w
		var key string // for a line in pieces: made only while one is held
		if l.Partial || p.holding() {
			key = b.Container + "/" + l.Stream
		}
		if l.Partial {
			if p.open[key] {
				w.WriteString(l.Text)
				continue
			}
			if _, ok := p.partialAt[key]; !ok && p.timestamps {
				p.partialAt[key] = b.Time
			}
			p.partial[key] = append(p.partial[key], l.Text...)
			if len(p.partial[key]) >= maxHeldLine {
				p.lineStart(w, b, key, l.Stream)
				p.open[key] = true
			}
			continue
		}
		if p.open[key] {
			delete(p.open, key)
		} else {
			p.lineStart(w, b, key, l.Stream)
		}
		w.WriteString(l.Text)
		if l.NoNewline && !p.prefix && !p.whole {
			p.owed[w] = true
			continue
		}
		if err := w.WriteByte('\n'); err != nil {
			return err
		}
	}
	return p.flush()
}

// holding reports whether pieces of a line are held or being written
// out: only then do lines need their container/stream key.
func (p *linePrinter) holding() bool {
	return len(p.partial) > 0 || len(p.partialAt) > 0 || len(p.open) > 0
}

// lineStart writes a line's start: the newline owed to the line before,
// the label, prefix and timestamp, and the pieces held of it (under key,
// "" when none is held).
func (p *linePrinter) lineStart(w *bufio.Writer, b *jobs.LogBatch, key, stream string) {
	if p.owed[w] {
		w.WriteByte('\n')
		delete(p.owed, w)
	}
	if p.label != "" {
		if p.labelText == nil {
			p.labelText = []byte(p.label + " | ")
		}
		w.Write(p.labelText)
	}
	if p.prefix {
		fmt.Fprintf(w, "%s|%s ", b.Container, stream)
	}
	if p.timestamps {
		at, ok := p.partialAt[key]
		if ok {
			delete(p.partialAt, key)
		} else {
			at = b.Time
		}
		p.stamp = append(at.UTC().AppendFormat(p.stamp[:0], timestampLayout), ' ')
		w.Write(p.stamp)
	}
	if pieces := p.partial[key]; len(pieces) > 0 {
		w.Write(pieces)
		delete(p.partial, key)
	}
}

func (p *linePrinter) flush() error {
	if err := p.err.Flush(); err != nil {
		return err
	}
	return p.out.Flush()
}
