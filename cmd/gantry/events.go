package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

func newEventsCmd(g *globals) *cobra.Command {
	var f eventsFlags
	c := &cobra.Command{
		Use:   "events",
		Short: "Print status changes of runs and pipeline runs as they happen",
		Long: `events prints a line for each status change of a run or a pipeline run, as the
server announces it, until interrupted, as docker events does: the time, the
kind (run or pipeline), the id, the new status, and what the event says
besides (task=FAMILY:REV, exit=CODE, worker=, cluster=,
stage=PIPELINE-RUN/STAGE, STAGE[INDEX] for a run of an array stage, and
reason= for a run; pipeline=NAME, stages= and, while it waits PENDING,
reason= for a pipeline run). The server announces a pipeline run again as
its stages' runs change: a line that would say what the run's last line
said is left out. On a terminal lines are cut to its width and statuses
coloured; piped, they are whole and plain. -o json prints every event's
JSON as published on
gantry.events.runs.<run> and gantry.events.pipelines.<id> (docs/nats-api.md),
one object per line, for jq. Workers' image pull progress is not shown.

Without --since only events from now on are shown. --since (a duration back
from now, 10m, or an RFC 3339 time) first replays the events stored since
then, then follows. The GANTRY_EVENTS stream keeps events for 7 days: events
older than that are gone. --until (the same forms) stops at that time: with
a time past, events replays what it stored between --since and --until and
exits; a past --until without --since is refused (it would show nothing),
a future one without it follows from now until then.

Filters: --run ID (repeatable; a run or a pipeline run pr-...), --status S
(repeatable, or comma-separated: QUEUED, STARTING, RUNNING, SUCCEEDED,
FAILED, CANCELED, PENDING), --kind runs|pipelines, and --pipeline NAME: the
runs of that pipeline and their stages' runs, whose events name their
pipeline (pipeline=; a stage run queued by an older server, whose events
do not, is looked up once per pipeline run when events has not seen that
pipeline run yet: a submit-only user, who may not look it up, sees such a
run's events from its pipeline run's next event on). Filters given
together must all match. One --run, or
--kind, is asked of NATS (a subject filter); the others are applied as
events arrive.

Ctrl-C ends it with exit 0. Losing NATS ends it with exit 125 and says so:
start it again with --since to see what it missed. A submit-only NATS user
may follow events (by direct get, nats-server 2.11 or later); a user NATS
refuses the GANTRY_EVENTS stream gets "NATS refused ...".`,
		Example: `  gantry events                                  # every change from now on
  gantry events --since 1h                       # the last hour's, then live
  gantry events --status FAILED --kind runs      # runs failing, as they fail
  gantry events --run 01jf3... --since 24h       # one run's history, then live
  gantry events --pipeline daily-sales           # its runs and their stages
  gantry events --since 2026-01-02T00:00:00Z --until 2026-01-03T00:00:00Z -o json | jq -r .status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.parse(time.Now())
			if err != nil {
				return err
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			q.lookup = func(id string) (string, bool) {
				// A stage run's event can come before its pipeline run's
				// first (the server queues the run, then publishes the
				// pipeline run's start): ask, once per pipeline run.
				ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
				defer cancel()
				pr, err := c.GetPipelineRun(ctx, id)
				if err != nil {
					return "", false // a submit-only user may not ask: its next event tells
				}
				return pr.Pipeline, true
			}
			w := cmd.OutOrStdout()
			p := eventPrinter{w: w, st: styleOf(w), json: f.output == "json", shown: map[string]string{}}
			err = c.Watch(cmd.Context(), q.watch, func(ev client.StreamEvent) error {
				if !q.match(ev) {
					return nil
				}
				return p.print(ev)
			})
			return eventsError(err, nc, g.conn.URL)
		},
	}
	fl := c.Flags()
	fl.StringArrayVar(&f.runs, "run", nil, "only this run or pipeline run pr-... (repeatable)")
	fl.StringVar(&f.pipeline, "pipeline", "", "only the runs of this pipeline and their stages' runs")
	fl.StringSliceVar(&f.statuses, "status", nil, "only these statuses (repeatable, or comma-separated)")
	fl.StringVar(&f.kind, "kind", "", "only runs or only pipelines (pipeline runs)")
	fl.StringVar(&f.since, "since", "", "replay the events stored since a time (10m, 2d, or RFC 3339) first; kept 7 days")
	fl.StringVar(&f.until, "until", "", "stop at a time (10m or 1d ago, or RFC 3339)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table (a line per event) or json (JSON Lines)")
	return c
}

// eventsError says how a watch ended, when that is an error.
func eventsError(err error, nc *nats.Conn, url string) error {
	return lostNATS(err, nc, url, "start again with --since to see what was missed")
}

// lostNATS says, of an error that came once nc lost NATS, that NATS was
// lost and what to do then (again), rather than only nats.go's
// "nats: connection closed" behind the request or read it ended. Any
// other error is returned as it is.
func lostNATS(err error, nc *nats.Conn, url, again string) error {
	if err == nil || nc.IsConnected() {
		return err
	}
	return fmt.Errorf("lost NATS at %s (%s): %w", queue.RedactURL(url), again, err)
}

// eventsFlags are gantry events' flags as given.
type eventsFlags struct {
	runs, statuses       []string
	pipeline, kind       string
	since, until, output string
}

// eventsQuery is what the flags ask for: the NATS side (watch) and the
// rest, which match applies.
type eventsQuery struct {
	watch    client.WatchOptions
	runs     map[string]bool
	statuses map[jobs.Status]bool
	kind     string // runs, pipelines or empty
	pipeline string
	// ofPipeline are the pipeline runs of pipeline seen so far: their
	// stages' runs match.
	ofPipeline map[string]bool
	// lookup, when set, names the pipeline of a pipeline run whose stage
	// run's event came before any of its own and does not name its
	// pipeline (queued by an older server); asked once per pipeline run
	// (looked).
	lookup func(pipelineRun string) (pipeline string, ok bool)
	looked map[string]bool
}

// eventStatuses are the statuses events carry: runs' and pipeline runs'.
var eventStatuses = []jobs.Status{jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning,
	jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled, jobs.StatusPending}

// parse checks every flag, naming each one wrong, before anything connects.
func (f eventsFlags) parse(now time.Time) (*eventsQuery, error) {
	q := &eventsQuery{pipeline: f.pipeline, ofPipeline: map[string]bool{}}
	var errs []error
	for _, id := range f.runs {
		if id == "" || strings.ContainsAny(id, ".*> \t\r\n") {
			errs = append(errs, fmt.Errorf("invalid --run %q: want a run id or a pipeline run id (pr-...)", id))
			continue
		}
		if q.runs == nil {
			q.runs = map[string]bool{}
		}
		q.runs[id] = true
	}
	for _, s := range f.statuses {
		st := jobs.Status(strings.ToUpper(strings.TrimSpace(s)))
		if !slices.Contains(eventStatuses, st) {
			errs = append(errs, fmt.Errorf("invalid --status %q: want one of %s%s", s, joinStatuses(eventStatuses), jobs.StatusHint(s, eventStatuses)))
			continue
		}
		if q.statuses == nil {
			q.statuses = map[jobs.Status]bool{}
		}
		q.statuses[st] = true
	}
	switch k := strings.ToLower(f.kind); k {
	case "", "runs", "pipelines":
		q.kind = k
	case "run", "pipeline":
		q.kind = k + "s"
	default:
		errs = append(errs, fmt.Errorf("invalid --kind %q: want runs or pipelines", f.kind))
	}
	if strings.ContainsAny(f.pipeline, " \t\r\n") {
		errs = append(errs, fmt.Errorf("invalid --pipeline %q: a pipeline name has no spaces", f.pipeline))
	}
	if f.since != "" {
		t, err := parseEventTime("--since", f.since, now)
		errs = append(errs, err)
		q.watch.Since = t
	}
	if f.until != "" {
		t, err := parseEventTime("--until", f.until, now)
		errs = append(errs, err)
		q.watch.Until = t
	}
	if !q.watch.Since.IsZero() && !q.watch.Until.IsZero() && q.watch.Until.Before(q.watch.Since) {
		errs = append(errs, fmt.Errorf("invalid --until %q: before --since %q", f.until, f.since))
	}
	// Without --since events starts from now: a past --until would end it
	// at once, having shown nothing.
	if f.since == "" && !q.watch.Until.IsZero() && !q.watch.Until.After(now) {
		errs = append(errs, fmt.Errorf("invalid --until %q: it is past, and without --since events shows only what comes from now on: "+
			"give --since too (--since 1h --until %s) to replay what was stored between them", f.until, f.until))
	}
	switch f.output {
	case "table", "json":
	default:
		errs = append(errs, fmt.Errorf("invalid -o/--output %q: want table or json", f.output))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	q.watch.Subject = q.subject()
	return q, nil
}

func joinStatuses(ss []jobs.Status) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// parseEventTime reads a time flag of events: a duration back from now
// (jobs.ParseDuration: 10m, 2d) or an RFC 3339 time.
func parseEventTime(flag, s string, now time.Time) (time.Time, error) {
	if d, err := jobs.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("invalid %s %q: a duration counts back from now, so it may not be negative", flag, s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid %s %q: want a duration back from now (10m, 1h30m, 2d) or an RFC 3339 time (2026-01-02T15:04:05Z)", flag, s)
}

// subject is the NATS subject filter of the query: as narrow as one
// subject can be. A direct get takes one filter, so several runs are
// read on their kind's subjects and picked out by match. --pipeline
// learns its pipeline runs from their events, so a filter that would keep
// only runs' events reads them all: match drops the pipeline runs'.
func (q *eventsQuery) subject() string {
	kind := q.kind
	if q.pipeline != "" && kind != "pipelines" {
		if len(q.runs) == 1 {
			for id := range q.runs {
				if jobs.IsPipelineRunID(id) {
					return "gantry.events.pipelines." + id
				}
			}
		}
		return ""
	}
	if len(q.runs) == 1 {
		for id := range q.runs {
			if kind == "" {
				kind = "runs"
				if jobs.IsPipelineRunID(id) {
					kind = "pipelines"
				}
			}
			return "gantry.events." + kind + "." + id
		}
	}
	if kind != "" {
		return "gantry.events." + kind + ".>"
	}
	return ""
}

// match applies the filters that NATS's subject filter could not.
func (q *eventsQuery) match(ev client.StreamEvent) bool {
	var id, pipelineRun, pipeline string
	var status jobs.Status
	if ev.Run != nil {
		if q.kind == "pipelines" {
			return false
		}
		id, status, pipelineRun, pipeline = ev.Run.RunID, ev.Run.Status, ev.Run.PipelineRunID, ev.Run.Pipeline
	} else {
		id, status, pipelineRun = ev.Pipeline.PipelineRunID, ev.Pipeline.Status, ev.Pipeline.PipelineRunID
		// Seen before --kind runs drops it: its stages' runs match.
		if q.pipeline != "" && ev.Pipeline.Pipeline == q.pipeline {
			q.ofPipeline[id] = true
		}
		if q.kind == "runs" {
			return false
		}
	}
	if q.runs != nil && !q.runs[id] {
		return false
	}
	if q.statuses != nil && !q.statuses[status] {
		return false
	}
	if pipeline != "" {
		// A stage run's event names its pipeline: no lookup.
		if q.pipeline != "" && pipeline != q.pipeline {
			return false
		}
	} else if q.pipeline != "" && !q.ofPipeline[pipelineRun] {
		// One queued before the server named the pipeline in its
		// stage runs' events: learn it from the pipeline run.
		if pipelineRun == "" || q.lookup == nil || q.looked[pipelineRun] {
			return false
		}
		if q.looked == nil {
			q.looked = map[string]bool{}
		}
		q.looked[pipelineRun] = true
		name, ok := q.lookup(pipelineRun)
		if !ok || name != q.pipeline {
			return false
		}
		q.ofPipeline[pipelineRun] = true
	}
	return true
}

// eventPrinter writes events as lines (table) or JSON Lines.
type eventPrinter struct {
	w    io.Writer
	st   style
	json bool
	// shown holds what the last line of each active pipeline run said
	// (status, reason, stages): the server announces a pipeline run again
	// at each change of its stages' runs (QUEUED, STARTING, RUNNING), and
	// a line that says nothing new is left out. Nil prints every event.
	shown map[string]string
}

// Column widths of an event line: an RFC 3339 time in UTC, the kind, a
// run id (a ULID), the longest status.
const (
	eventTimeWidth   = 20
	eventKindWidth   = 8
	eventIDWidth     = 26
	eventStatusWidth = 9
)

func (p eventPrinter) print(ev client.StreamEvent) error {
	if p.json {
		_, err := fmt.Fprintf(p.w, "%s\n", ev.JSON)
		return err
	}
	if pe := ev.Pipeline; pe != nil && p.shown != nil {
		said := pipelineEventSays(pe)
		if p.shown[pe.PipelineRunID] == said {
			return nil
		}
		if pe.Status.Terminal() {
			delete(p.shown, pe.PipelineRunID) // a retry announces it again
		} else {
			p.shown[pe.PipelineRunID] = said
		}
	}
	_, err := io.WriteString(p.w, eventLine(ev, p.st)+"\n")
	return err
}

// pipelineEventSays is what a pipeline run's event line says but for its time.
func pipelineEventSays(pe *jobs.PipelineEvent) string {
	stages := make([]string, 0, len(pe.Stages))
	for name, s := range pe.Stages {
		stages = append(stages, name+":"+string(s))
	}
	slices.Sort(stages)
	return string(pe.Status) + "\x00" + pe.StatusReason + "\x00" + strings.Join(stages, ",")
}

// eventLine is an event as one line: time, kind, id, status and details,
// cut to the terminal's width and coloured there.
func eventLine(ev client.StreamEvent, st style) string {
	var kind, id string
	var status jobs.Status
	var details []string
	if r := ev.Run; r != nil {
		kind, id, status = "run", r.RunID, r.Status
		details = runEventDetails(r)
	} else {
		pe := ev.Pipeline
		kind, id, status = "pipeline", pe.PipelineRunID, pe.Status
		details = append(details, "pipeline="+pe.Pipeline)
		if len(pe.Stages) > 0 {
			stages := make([]string, 0, len(pe.Stages))
			for name, s := range pe.Stages {
				stages = append(stages, name+":"+string(s))
			}
			slices.Sort(stages)
			details = append(details, "stages="+strings.Join(stages, ","))
		}
		if pe.StatusReason != "" {
			details = append(details, "reason="+strconv.Quote(pe.StatusReason))
		}
	}
	at := "-"
	if t := ev.Time(); !t.IsZero() {
		at = t.In(localZone).Format(time.RFC3339)
	}
	head := pad(at, eventTimeWidth) + " " + pad(kind, eventKindWidth) + " " + pad(id, eventIDWidth) + " "
	rest := pad(string(status), eventStatusWidth)
	if len(details) > 0 {
		rest += " " + strings.Join(details, " ")
	}
	line := strings.TrimRight(head+rest, " ")
	if !st.tty {
		return line
	}
	line = cut(line, st.width)
	if code, ok := statusColors[string(status)]; ok && st.color && utf8.RuneCountInString(line) > len(head) {
		// The status starts where head ends (head is ASCII but for an id).
		i := len(head)
		j := min(i+len(status), len(line))
		for j < len(line) && !utf8.RuneStart(line[j]) {
			j++ // the status cut with "…"
		}
		line = line[:i] + "\x1b[" + code + "m" + line[i:j] + "\x1b[0m" + line[j:]
	}
	return line
}

func runEventDetails(r *jobs.Event) []string {
	var d []string
	if r.TaskDefinition != "" {
		d = append(d, "task="+r.TaskDefinition)
	}
	if r.ExitCode != nil {
		d = append(d, "exit="+strconv.Itoa(*r.ExitCode))
	}
	if r.Worker != "" {
		d = append(d, "worker="+r.Worker)
	}
	if r.Cluster != "" {
		d = append(d, "cluster="+r.Cluster)
	}
	if r.PipelineRunID != "" {
		d = append(d, "stage="+r.PipelineRunID+"/"+stageLabel(r.Stage, r.ArrayIndex, 0))
	}
	if reason := firstOf(r.StoppedReason, r.StatusReason); reason != "" {
		d = append(d, "reason="+strconv.Quote(reason))
	}
	return d
}

// firstOf is the first of its strings that is not empty.
func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// pad fills s with spaces to width runes; a longer s is kept whole.
func pad(s string, width int) string {
	if n := utf8.RuneCountInString(s); n < width {
		return s + strings.Repeat(" ", width-n)
	}
	return s
}
