package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

func newPsCmd(g *globals) *cobra.Command {
	var (
		all      bool
		statuses []string
		limit    int
		out      output
		filter   psFilter // completion.go
		array    string
	)
	c := &cobra.Command{
		Use:   "ps",
		Short: "List runs: those not yet ended, or --all",
		Long: `ps lists runs, newest first: those not ended, or with --all every one the
history keeps. An array run (gantry run --array-size N) is listed as its
parent, whose status is its children's; its children are left out, as
AWS Batch's list-jobs leaves them out, and listed with --array PARENT,
by index (PARENT-0, PARENT-1, ..., PARENT-10, ...), whatever their status
unless --status is given.`,
		Example: `  gantry ps
  gantry ps --all -o json
  gantry ps --status FAILED --limit 20
  gantry ps --all --family etl-sales --since 24h
  gantry ps --all --tag team=data --tag env=prod -o json
  gantry ps --all --tag cost-centre   # runs with that tag, whatever its value
  gantry ps -o wide                   # every column, TAGS too, not cut to the terminal
  gantry ps --array 01jf3...          # the children of an array run, 0 first`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := client.ListOptions{All: all || array != "", Limit: limit, ArrayJobID: array}
			if filter.since < 0 {
				return fmt.Errorf("--since %s: give how long ago, as 1h or 2d", filter.since)
			}
			if err := filter.apply(&o); err != nil {
				return err
			}
			for _, s := range statuses {
				st, err := jobs.ParseStatus(s)
				if err != nil {
					return fmt.Errorf("--status: %w", err)
				}
				o.Statuses = append(o.Statuses, st)
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: give a positive number of runs", limit)
			}
			if limit == 0 {
				limit = 100 // as the server's default page
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]jobs.Run, error) {
				return listUpTo(ctx, c, o, limit)
			}, func(w io.Writer, runs []jobs.Run) error {
				cols := psNormal
				switch {
				case out == outputWide:
					cols = psWide
				case narrowTerminal(cmd.OutOrStdout()):
					cols = psNarrow
				}
				return psTable(w, runs, clock(), cols)
			})
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "include runs that ended")
	c.Flags().StringSliceVar(&statuses, "status", nil, "only runs in these statuses (QUEUED, RUNNING, FAILED, ...)")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many runs, newest first (with --array, the first by index)")
	c.Flags().StringVar(&array, "array", "", "list the children of this array run, by index (any status unless --status)")
	filter.add(c)
	addWideOutputFlag(c, &out)
	return c
}

// runLister is the client's List.
type runLister interface {
	List(ctx context.Context, o client.ListOptions) ([]jobs.Run, string, error)
}

// listUpTo lists up to limit runs, following the server's pages: a page
// can come back short, even empty, with a next cursor when filters the
// store does not index skip most runs (family, cluster, worker).
func listUpTo(ctx context.Context, c runLister, o client.ListOptions, limit int) ([]jobs.Run, error) {
	var out []jobs.Run
	for {
		o.Limit = min(limit-len(out), 1000)
		runs, next, err := c.List(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, runs...)
		if next == "" || len(out) >= limit {
			return out, nil
		}
		o.Before = next
	}
}

// psColumns are the columns gantry ps shows.
type psColumns int

const (
	psNormal psColumns = iota
	// psNarrow (a terminal under narrowColumns) leaves out WORKER and
	// CREATED: eight columns and a run id cannot share 80, and cut evenly
	// every one of them reads START… and waitin…; describe and -o json
	// still have them.
	psNarrow
	// psWide (-o wide) adds TAGS, and keeps WORKER and CREATED on any
	// terminal.
	psWide
)

// psTable is the table of `gantry ps`, with cols' columns.
func psTable(w io.Writer, runs []jobs.Run, now time.Time, cols psColumns) error {
	switch cols {
	case psNarrow:
		fmt.Fprintln(w, "RUN ID\tTASK\tSTATUS\tEXIT\tDURATION\tREASON")
	case psWide:
		fmt.Fprintln(w, "RUN ID\tTASK\tSTATUS\tEXIT\tWORKER\tCREATED\tDURATION\tTAGS\tREASON")
	default:
		fmt.Fprintln(w, "RUN ID\tTASK\tSTATUS\tEXIT\tWORKER\tCREATED\tDURATION\tREASON")
	}
	for _, r := range runs {
		reason := r.StatusReason
		if r.Status.Terminal() {
			reason = r.StoppedReason
		}
		worker := r.Worker
		if r.Status == jobs.StatusQueued {
			// A retry or a redelivery waits for the next worker; the
			// run's worker is still the last attempt's, which the
			// reason names.
			worker = ""
		}
		switch cols {
		case psNarrow:
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.TaskDefinition, r.Status,
				exitText(r.ExitCode), duration(&r, now), orDash(reason))
		case psWide:
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.TaskDefinition, r.Status,
				exitText(r.ExitCode), orDash(worker), ago(r.CreatedAt, now), duration(&r, now), tagsCell(r.Tags), orDash(reason))
		default:
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, r.TaskDefinition, r.Status,
				exitText(r.ExitCode), orDash(worker), ago(r.CreatedAt, now), duration(&r, now), orDash(reason))
		}
	}
	return nil
}

// tagsWidth bounds the TAGS cell of gantry ps -o wide, in characters.
const tagsWidth = 40

// tagsCell is a run's tags in a cell: key=value, by key, comma-joined.
// Tags past tagsWidth characters are counted instead (team=data,+3); a
// first tag longer than that alone is cut with "…". describe and -o json
// show them all.
func tagsCell(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(tags))
	var b strings.Builder
	for i, k := range keys {
		tag := k + "=" + tags[k]
		sep := ""
		if i > 0 {
			sep = ","
		}
		more := ""
		if rest := len(keys) - i - 1; rest > 0 {
			more = ",+" + strconv.Itoa(rest) // room kept to say so
		}
		if utf8.RuneCountInString(b.String()+sep+tag+more) > tagsWidth {
			if i == 0 {
				return cut(tag, tagsWidth-utf8.RuneCountInString(more)) + more
			}
			return b.String() + ",+" + strconv.Itoa(len(keys)-i)
		}
		b.WriteString(sep + tag)
	}
	return b.String()
}

// narrowColumns is the terminal width under which gantry ps leaves out
// its WORKER and CREATED columns.
const narrowColumns = 100

// narrowTerminal reports whether w is a terminal narrower than
// narrowColumns; piped output is never narrow.
func narrowTerminal(w io.Writer) bool {
	st := styleOf(w) // table.go
	return st.tty && st.width < narrowColumns
}

func exitText(code *int) string {
	if code == nil {
		return "-"
	}
	return strconv.Itoa(*code)
}

func duration(r *jobs.Run, now time.Time) string {
	if r.StartedAt == nil {
		return "-"
	}
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return short(end.Sub(*r.StartedAt))
}

func newDescribeCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "describe RUN|PIPELINE-RUN",
		Short: "Show a run: status, exit code, reason, attempts and containers; or a pipeline run (pr-...) and its stages",
		Long: `describe shows a run: its status, exit code and reason, its attempts and
containers, and, for a stage's run, its pipeline run. Given a pipeline run's
id (pr-...), it shows the pipeline run: its parameters and each stage with
its runs, their status, attempts, exit code and reason.`,
		Example: `  gantry describe 01jf3... -o json
  gantry describe pr-01jf3...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if jobs.IsPipelineRunID(args[0]) {
				return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.PipelineRun, error) {
					return c.GetPipelineRun(ctx, args[0])
				}, describePipelineRun)
			}
			var children []jobs.Run // a few of an array run's, for the table
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.Run, error) {
				r, err := c.Get(ctx, args[0])
				if err == nil && r.ArrayParent() && out == "table" {
					// The first by index: a listing's are those whose ids
					// sort last (PARENT-9999 before PARENT-10 before PARENT-1).
					for i := range min(describeChildren, r.ArrayProperties.Size) {
						ch, err := c.Get(ctx, jobs.ArrayChildID(r.RunID, i))
						if errors.Is(err, jobs.ErrNotFound) {
							continue
						}
						if err != nil {
							return nil, err
						}
						children = append(children, *ch)
					}
				}
				return r, err
			}, func(w io.Writer, r *jobs.Run) error {
				if err := describeRun(w, r); err != nil || len(children) == 0 {
					return err
				}
				return describeArrayChildren(w, r, children)
			})
		},
	}
	addOutputFlag(c, &out)
	hintUnknownRuns(c)
	return c
}

func describeRun(w io.Writer, r *jobs.Run) error {
	now := clock()
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.In(localZone).Format(time.RFC3339) + " (" + ago(*t, now) + ")"
	}
	fmt.Fprintf(w, "Run:\t%s\n", r.RunID)
	fmt.Fprintf(w, "Task definition:\t%s\n", r.TaskDefinition)
	fmt.Fprintf(w, "Status:\t%s\n", r.Status)
	if r.RerunOf != "" {
		fmt.Fprintf(w, "Rerun of:\t%s\n", r.RerunOf)
	}
	if ap := r.ArrayProperties; ap != nil && r.ArrayParent() {
		fmt.Fprintf(w, "Array:\t%s\n", ap.ArraySummaryText())
		if ap.Order == jobs.ArrayOrderSequential {
			fmt.Fprintf(w, "Array order:\tsequential (child I+1 after child I succeeded)\n")
		}
		fmt.Fprintf(w, "Children:\t%s to %s (gantry ps --array %s)\n", jobs.ArrayChildID(r.RunID, 0),
			jobs.ArrayChildID(r.RunID, ap.Size-1), r.RunID)
	} else if ap != nil && ap.Index != nil {
		fmt.Fprintf(w, "Array run:\t%s (index %d)\n", r.ArrayJobID, *ap.Index)
	}
	if st := r.Spec.Stage; st != nil {
		fmt.Fprintf(w, "Pipeline run:\t%s (%s)\n", st.PipelineRunID, stageOf(st))
	}
	if r.StatusReason != "" && !r.Status.Terminal() {
		fmt.Fprintf(w, "Status reason:\t%s\n", r.StatusReason)
	}
	fmt.Fprintf(w, "Exit code:\t%s\n", exitText(r.ExitCode))
	if r.StopCode != "" || r.StoppedReason != "" {
		fmt.Fprintf(w, "Stop code:\t%s\n", orDash(r.StopCode))
		fmt.Fprintf(w, "Stopped reason:\t%s\n", orDash(r.StoppedReason))
	}
	if len(r.DependsOn) > 0 {
		fmt.Fprintf(w, "Depends on:\t%s\n", dependsOnText(r))
	}
	if r.Pool != "" {
		fmt.Fprintf(w, "Pool:\t%s\n", poolText(r))
	}
	fmt.Fprintf(w, "Cluster:\t%s\n", r.Cluster)
	fmt.Fprintf(w, "Priority:\t%s\n", r.Priority.Level())
	worker, started := currentPlace(r)
	if cur := r.Current(); worker == "" && cur != nil && cur.Attempt > 1 && !r.Status.Terminal() {
		// A retry waiting for its backoff, or a lost worker's job waiting
		// for the next: the earlier attempts' workers are in the table.
		fmt.Fprintf(w, "Worker:\t- (attempt %d not taken yet)\n", cur.Attempt)
	} else {
		fmt.Fprintf(w, "Worker:\t%s\n", orDash(worker))
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(w, "Tags:\t%s\n", tagsText(r.Tags))
	}
	if len(r.Spec.Constraints) > 0 {
		fmt.Fprintf(w, "Constraints:\t%s\n", r.Spec.Constraints)
	}
	fmt.Fprintf(w, "Created:\t%s\n", ts(&r.CreatedAt))
	fmt.Fprintf(w, "Started:\t%s\n", ts(started))
	fmt.Fprintf(w, "Finished:\t%s\n", ts(r.FinishedAt))
	if r.Status.Terminal() {
		fmt.Fprintf(w, "Duration:\t%s\n", duration(r, now))
	} else {
		fmt.Fprintf(w, "Duration:\t%s\n", duration(&jobs.Run{StartedAt: started}, now))
	}
	if r.ArrayParent() {
		return nil // it runs nothing: no attempt, no container
	}
	fmt.Fprintf(w, "\nATTEMPT\tWORKER\tSTATUS\tEXIT\tSTARTED\tREASON\n")
	var afterEnd []string
	for _, a := range r.Attempts {
		started := "-"
		if a.StartedAt != nil {
			started = ago(*a.StartedAt, now)
		}
		num := strconv.Itoa(a.Attempt)
		if a.AfterEnd != "" {
			// Not the run's: its status and exit code are the run's last
			// attempt's before it. The note says why it ran.
			num += " (after end)"
			afterEnd = append(afterEnd, fmt.Sprintf("Attempt %d %s", a.Attempt, a.AfterEnd))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", num, orDash(a.Worker), a.Status, exitText(a.ExitCode), started, orDash(a.StoppedReason))
	}
	for _, note := range afterEnd {
		// In lines a terminal shows whole: a table's lines are cut to fit.
		fmt.Fprintf(w, "\n%s.\n", strings.Join(wrapWords(note, 78), "\n"))
	}
	if len(r.Containers) > 0 {
		ports := slices.ContainsFunc(r.Containers, func(c jobs.ContainerResult) bool { return len(c.NetworkBindings) > 0 })
		if ports {
			fmt.Fprintf(w, "\nCONTAINER\tEXIT\tPORTS\tREASON\n")
		} else {
			fmt.Fprintf(w, "\nCONTAINER\tEXIT\tREASON\n")
		}
		for _, c := range r.Containers {
			if ports {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Name, exitText(c.ExitCode), portsText(c.NetworkBindings), orDash(c.Reason))
			} else {
				fmt.Fprintf(w, "%s\t%s\t%s\n", c.Name, exitText(c.ExitCode), orDash(c.Reason))
			}
		}
	}
	return nil
}

// describeChildren is how many of an array run's children describe shows.
const describeChildren = 5

// describeArrayChildren is the table of a few of an array run's children,
// by index.
func describeArrayChildren(w io.Writer, r *jobs.Run, children []jobs.Run) error {
	index := func(c jobs.Run) int {
		if c.ArrayProperties != nil && c.ArrayProperties.Index != nil {
			return *c.ArrayProperties.Index
		}
		return -1
	}
	slices.SortFunc(children, func(a, b jobs.Run) int { return index(a) - index(b) })
	fmt.Fprintf(w, "\nCHILD\tSTATUS\tEXIT\tWORKER\tREASON\n")
	for _, c := range children {
		reason := c.StoppedReason
		if !c.Status.Terminal() {
			reason = c.StatusReason
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.RunID, c.Status, exitText(c.ExitCode), orDash(c.Worker), orDash(reason))
	}
	if more := r.ArrayProperties.Size - len(children); more > 0 {
		fmt.Fprintf(w, "(and %d more: gantry ps --array %s)\n", more, r.RunID)
	}
	return nil
}

// currentPlace is the worker and start time describe shows at its top.
// While the run has not ended they are its current attempt's: the run's
// own fields keep the attempt before a retry or a redelivery (its worker,
// its first start), and read as if it still ran there. Once it ended they
// are the run's.
func currentPlace(r *jobs.Run) (worker string, started *time.Time) {
	if cur := r.Current(); cur != nil && !r.Status.Terminal() {
		return cur.Worker, cur.StartedAt
	}
	return r.Worker, r.StartedAt
}

// wrapWords breaks text at spaces into lines of at most width runes (a
// longer word has a line of its own).
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// stageOf names the pipeline and the stage of a stage's run:
// "pipeline daily-sales, stage transform[2]"; runs queued before runs
// kept their pipeline's name have only the stage.
func stageOf(st *jobs.StageContext) string {
	stage := "stage " + stageLabel(st.Stage, st.ArrayIndex, 0)
	if st.Pipeline == "" {
		return stage
	}
	return "pipeline " + st.Pipeline + ", " + stage
}

// tagsText shows tags as they are given: k=v, in key order.
func tagsText(tags map[string]string) string {
	parts := make([]string, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ", ")
}

// poolText shows a run's pool and whether it holds a slot of it.
func poolText(r *jobs.Run) string {
	switch r.PoolState() {
	case jobs.PoolHolding:
		return r.Pool + " (holds a slot since " + r.PoolSlotAt.In(localZone).Format(time.RFC3339) + ")"
	case jobs.PoolKept:
		k := r.PoolSlotKept
		return fmt.Sprintf("%s (ended, still holds its slot: worker %s took attempt %d and has not reported its containers gone)",
			r.Pool, k.Worker, k.Attempt)
	case jobs.PoolWaiting:
		return r.Pool + " (waiting for a slot)"
	case jobs.PoolBlocked:
		return r.Pool + " (waiting for its dependencies, then a slot)"
	}
	return r.Pool
}

// dependsOnText shows a run's dependencies as --depends-on takes them,
// each with how it ended: "waiting" while the run waits for it, "-" for
// one the run did not see end (it failed or was stopped first).
func dependsOnText(r *jobs.Run) string {
	parts := make([]string, len(r.DependsOn))
	for i, d := range r.DependsOn {
		st := string(d.Status)
		switch {
		case st != "":
		case r.Waiting():
			st = "waiting"
		default:
			st = "-"
		}
		parts[i] = fmt.Sprintf("%s:%s (%s)", d.RunID, d.Condition, st)
	}
	return strings.Join(parts, ", ")
}

// portsText shows network bindings as docker ps does:
// 0.0.0.0:49153->8080/tcp.
func portsText(bs []jobs.NetworkBinding) string {
	if len(bs) == 0 {
		return "-"
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s->%d/%s", net.JoinHostPort(b.BindIP, strconv.Itoa(b.HostPort)), b.ContainerPort, b.Protocol)
	}
	return strings.Join(parts, ", ")
}

// stopOutcome says what a stop did to a run the server's reply left in
// status s. The reply is the run as stored when the stop was recorded: a
// run that had started is still RUNNING (or STARTING) there, its worker
// stopping it, which printed as is read as if the stop had done nothing.
func stopOutcome(s jobs.Status) string {
	if s.Terminal() {
		return string(s)
	}
	return "stopping"
}

func newStopCmd(g *globals) *cobra.Command {
	var (
		reason string
		out    output
	)
	c := &cobra.Command{
		Use:   "stop RUN...",
		Short: "Stop runs: SIGTERM to their containers, SIGKILL after their stopTimeout",
		Long: `stop stops runs and pipeline runs. The table output has one line per run,
its id and what the stop did: CANCELED for a run stopped at once (one still
queued), stopping for one its worker is stopping (SIGTERM, then SIGKILL after
its stopTimeout; it ends CANCELED), or the status of a run that had already
ended. -o json or yaml prints a list of the runs (and pipeline runs) as the
server returned them.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			// The table is printed as runs stop; JSON and YAML once, as a
			// list, with the runs stopped before any failure.
			var stopped []any
			defer func() {
				if out != "table" && len(stopped) > 0 {
					out.write(cmd.OutOrStdout(), stopped, nil)
				}
			}()
			for _, id := range args {
				if jobs.IsPipelineRunID(id) {
					pr, err := c.StopPipelineRun(cmd.Context(), id, reason)
					if err != nil {
						return err
					}
					stopped = append(stopped, pr)
					if out == "table" {
						fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", pr.PipelineRunID, stopOutcome(pr.Status))
					}
					continue
				}
				r, err := c.Stop(cmd.Context(), id, reason)
				if err != nil {
					return err
				}
				stopped = append(stopped, r)
				if out == "table" {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", r.RunID, stopOutcome(r.Status))
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, recorded as the run's stoppedReason")
	addOutputFlag(c, &out)
	hintUnknownRuns(c)
	return c
}

// hintUnknownRuns makes c's errors about a run or pipeline run of its
// arguments that the server does not know say how to find the runs it
// does, as the not-found errors of schedules and webhooks do: "run
// nosuch: not found (gantry ps --all lists runs)". The error keeps its
// code, and the exit code stays gantry's own (125).
func hintUnknownRuns(c *cobra.Command) {
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return unknownRunsHint(run(cmd, args), args)
	}
}

// hintUnknownNames makes the errors of parent's subcommands about a
// pipeline, task definition or schedule the server does not know ("what
// NAME: not found", with no hint of its own) say how to list those it
// does, as hintUnknownRuns does for runs: "pipeline nosuch: not found
// (gantry pipeline ls lists them)". The error keeps its code.
func hintUnknownNames(parent *cobra.Command, what, hint string) {
	for _, c := range parent.Commands() {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				err := run(cmd, args)
				if err == nil || !errors.Is(err, jobs.ErrNotFound) {
					return err
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, what+" ") || !strings.HasSuffix(msg, ": not found") {
					return err
				}
				return &jobs.Error{Code: jobs.CodeNotFound, Message: msg + " (" + hint + ")"}
			}
		}
	}
}

// unknownRunsHint is the error of hintUnknownRuns for err, of a command
// given ids.
func unknownRunsHint(err error, ids []string) error {
	if err == nil || !errors.Is(err, jobs.ErrNotFound) {
		return err
	}
	msg := err.Error()
	if strings.Contains(msg, " lists ") {
		return err // the server's own hint (pipeline retry of a run's id)
	}
	var runs, pipelineRuns bool
	for _, id := range ids {
		if strings.Contains(msg, "run "+id+": not found") {
			if jobs.IsPipelineRunID(id) {
				pipelineRuns = true
			} else {
				runs = true
			}
		}
	}
	var hints []string
	if runs {
		hints = append(hints, "gantry ps --all lists runs")
	}
	if pipelineRuns {
		hints = append(hints, "gantry pipeline runs PIPELINE lists its runs")
	}
	if len(hints) == 0 {
		return err
	}
	return &jobs.Error{Code: jobs.CodeNotFound, Message: msg + " (" + strings.Join(hints, "; ") + ")"}
}
