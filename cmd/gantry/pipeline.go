package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

// exitPipelineFailed is the exit code of an attached `pipeline run` whose
// pipeline run did not succeed.
const exitPipelineFailed = 1

func newPipelineCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "pipeline",
		Short: "Apply, list, run and delete pipelines: DAGs of stages passing files along",
		Example: `  gantry pipeline validate samples/pipelines/daily-sales.yaml
  gantry pipeline apply --dry-run samples/pipelines/daily-sales.yaml
  gantry pipeline apply samples/pipelines/daily-sales.yaml
  gantry pipeline run daily-sales --param day=2026-11-24
  gantry pipeline runs daily-sales -o json
  gantry pipeline retry pr-01jf3...
  gantry describe pr-01jf3...
  gantry pipeline delete daily-sales`,
	}
	c.AddCommand(newPipelineApplyCmd(g), newPipelineValidateCmd(), newPipelineLsCmd(g), newPipelineDescribeCmd(g),
		newPipelineRunCmd(g), newPipelineRetryCmd(g), newPipelineRunsCmd(g), newPipelineBackfillCmd(g), newPipelineDeleteCmd(g)) // delete.go
	hintUnknownNames(c, "pipeline", "gantry pipeline ls lists them") // runs.go
	return c
}

func newPipelineApplyCmd(g *globals) *cobra.Command {
	var dryRun bool
	c := &cobra.Command{
		Use:   "apply FILE|-...",
		Short: "Create or update pipelines from YAML or JSON files (a new version when one changed)",
		Long: `apply stores each pipeline file as the next version of its pipeline, or
changes nothing when it equals the latest version. The server checks
everything first, all at once: the file, that its task definitions are
registered, that its pools exist, that its triggers name pipelines and close
no cycle. Several files are applied in the order given, up to the first one
refused.

--dry-run asks the server to check the files as apply does and to say what
each would change, storing nothing (no version, no schedule change, no
waiting run started, no event):

  pipelines/sales.yaml: pipeline sales: would be version 4 (now 3):
    schedule.cron: "0 2 * * *" -> "0 3 * * *"
    stages[1](transform).timeoutSeconds: 600 -> 900

Each file is checked against what the server holds, not against the other
files given. Its problems are listed on stderr, a line each, after the
file's name, file by file in the order given; it exits 0 when every file would apply, 1 when problems were
found, 125 when gantry could not check (the server unreachable, say).
'gantry pipeline validate' checks files without a server.`,
		Example: `  gantry pipeline apply samples/pipelines/daily-sales.yaml
  gantry pipeline apply --dry-run pipelines/*.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dryRun {
				return dryRunPipelines(cmd, g, args) // check.go
			}
			files, err := readFiles(cmd, args)
			if err != nil {
				return err
			}
			// A file that does not decode goes no further. Other problems
			// are listed by the server with those only it can see (unknown
			// task definitions), all at once, or here if it is not reached.
			for i, data := range files {
				if _, err := jobs.DecodePipeline(data); err != nil {
					return applyRefused(cmd, args, i, false, err)
				}
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				// Nothing is applied, but what the files show by
				// themselves is told, as --dry-run tells it.
				c := &checks{stderr: cmd.ErrOrStderr()}
				for i, data := range files {
					if _, perr := jobs.ParsePipeline(data); perr != nil {
						c.found(args[i], perr)
					}
				}
				return err
			}
			defer nc.Close()
			for i, data := range files {
				p, changed, err := c.ApplyPipeline(cmd.Context(), data)
				if errors.Is(err, client.ErrInvalidArgument) {
					return applyRefused(cmd, args, i, true, err)
				}
				if err != nil {
					return fmt.Errorf("%s: %s", args[i], oneLine(err))
				}
				verb := "applied"
				if !changed {
					verb = "unchanged"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pipeline %s version %d %s\n", p.Name, p.Version, verb)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "check the files as apply does and say what would change, storing nothing (exit 1 on problems)")
	return c
}

// applyRefused tells why apply refused the file names[i]: each problem
// on a line of its own after the file's name, as validate and --dry-run
// list them (joined on one line, a file with a few problems made a line
// too long to read), then the error that ends apply, saying what was not
// applied: the files after it, or, when it was refused before any was
// sent (it does not decode), every file.
func applyRefused(cmd *cobra.Command, names []string, i int, sent bool, err error) error {
	c := &checks{stderr: cmd.ErrOrStderr()}
	c.found(names[i], err)
	msg := fmt.Sprintf("%s: refused (%s): ", fileName(names[i]), plural(c.problems, "problem"))
	switch rest := len(names) - i - 1; {
	case len(names) == 1:
		msg += "not applied"
	case !sent:
		msg += "no file applied"
	case rest == 0:
		msg += "not applied"
	case rest == 1:
		msg += "not applied, nor the file after it"
	default:
		msg += fmt.Sprintf("not applied, nor the %d files after it", rest)
	}
	return errors.New(msg)
}

// oneLine joins the lines of a multi-problem error with "; ".
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func newPipelineLsCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "ls",
		Short: "List pipelines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]jobs.Pipeline, error) {
				return c.ListPipelines(ctx)
			}, func(w io.Writer, ps []jobs.Pipeline) error {
				fmt.Fprintln(w, "NAME\tVERSION\tSTAGES\tSCHEDULE\tUPDATED")
				for _, p := range ps {
					sched := "-"
					if p.Schedule != nil {
						sched = p.Schedule.Cron
					}
					fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%s\n", p.Name, p.Version, len(p.Stages), sched, ago(p.CreatedAt, time.Now()))
				}
				return nil
			})
		},
	}
	addOutputFlag(c, &out)
	return c
}

func newPipelineDescribeCmd(g *globals) *cobra.Command {
	var (
		out     output
		version int
	)
	c := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a pipeline: parameters, schedule and stages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// suspended is the schedule's state now, which gantry schedule
			// suspend and resume change and the file's suspend does not say.
			var suspended *bool
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.Pipeline, error) {
				p, err := c.DescribePipeline(ctx, args[0], version)
				if err != nil || p.Schedule == nil || version != 0 || out != "table" {
					return p, err
				}
				ss, err := c.Schedules(ctx)
				if err != nil {
					return nil, err
				}
				for _, s := range ss {
					if s.Name == p.Name {
						suspended = &s.Suspended
					}
				}
				return p, nil
			}, func(w io.Writer, p *jobs.Pipeline) error {
				fmt.Fprintf(w, "Pipeline:\t%s\nVersion:\t%d\n", p.Name, p.Version)
				keys := make([]string, 0, len(p.Parameters))
				for k := range p.Parameters {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					if p.Parameters[k].Required {
						fmt.Fprintf(w, "Parameter:\t%s (required: no default, give --param %s=VALUE)\n", k, k)
						continue
					}
					fmt.Fprintf(w, "Parameter:\t%s=%s\n", k, p.Parameters[k].Default)
				}
				if s := p.Schedule; s != nil {
					state := fmt.Sprintf("suspend=%v", s.Suspend)
					if suspended != nil && *suspended != s.Suspend {
						verb := map[bool]string{true: "suspend", false: "resume"}[*suspended]
						state = fmt.Sprintf("suspend=%v (by gantry schedule %s; the file's suspend: %v comes back when a changed file is applied)", *suspended, verb, s.Suspend)
					}
					fmt.Fprintf(w, "Schedule:\t%s (%s) %s %s\n", s.Cron, orDash(s.Timezone), s.Policy(), state)
				}
				if p.Kind == jobs.KindTask {
					fmt.Fprintf(w, "Kind:\ttask schedule\n")
				}
				if p.Priority != "" {
					fmt.Fprintf(w, "Priority:\t%s\n", p.Priority)
				}
				if p.TimeoutSeconds > 0 {
					fmt.Fprintf(w, "Timeout:\t%s (timeoutSeconds %d, each run)\n", time.Duration(p.TimeoutSeconds)*time.Second, p.TimeoutSeconds)
				}
				if p.MaxActiveRuns != nil {
					fmt.Fprintf(w, "Max active runs:\t%d (maxActiveRuns: the others wait PENDING)\n", *p.MaxActiveRuns)
				}
				if p.DependsOnPast {
					fmt.Fprintf(w, "Depends on past:\ttrue (dependsOnPast: a run with a scheduled time waits PENDING until the previous one SUCCEEDED)\n")
				}
				if len(p.Tags) > 0 {
					fmt.Fprintf(w, "Tags:\t%s\n", tagsText(p.Tags.Map())) // runs.go
				}
				if p.PropagateTags != "" {
					fmt.Fprintf(w, "Propagate tags:\t%s\n", p.PropagateTags)
				}
				if len(p.Constraints) > 0 {
					fmt.Fprintf(w, "Constraints:\t%s\n", p.Constraints)
				}
				for _, st := range p.Stages {
					if st.Priority != "" {
						fmt.Fprintf(w, "Priority of %s:\t%s\n", st.Name, st.Priority)
					}
					if len(st.Tags) > 0 {
						fmt.Fprintf(w, "Tags of %s:\t%s\n", st.Name, tagsText(st.Tags.Map()))
					}
					if st.PropagateTags != "" {
						fmt.Fprintf(w, "Propagate tags of %s:\t%s\n", st.Name, st.PropagateTags)
					}
					if len(st.Constraints) > 0 {
						fmt.Fprintf(w, "Constraints of %s:\t%s (over the pipeline's, key by key)\n", st.Name, st.Constraints)
					}
					if len(st.SkipOnExitCode) > 0 {
						codes := make([]string, len(st.SkipOnExitCode))
						for i, c := range st.SkipOnExitCode {
							codes[i] = strconv.Itoa(c)
						}
						fmt.Fprintf(w, "Skip codes of %s:\t%s (skipOnExitCode: SKIPPED, not retried)\n", st.Name, strings.Join(codes, ", "))
					}
					if !st.When.IsZero() {
						fmt.Fprintf(w, "When of %s:\t%s (else SKIPPED)\n", st.Name, st.When)
					}
				}
				for _, t := range p.Triggers {
					fmt.Fprintf(w, "Trigger:\ton %s of pipeline %s\n", t.Condition(), t.Pipeline)
				}
				fmt.Fprintln(w, "\nSTAGE\tTASK DEFINITION\tARRAY\tDEPENDS ON")
				for _, name := range p.Order() {
					st := p.Stage(name)
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", st.Name, taskDefText(st.TaskDefinition), arrayText(st),
						orDash(st.DependsOnText()))
				}
				return nil
			})
		},
	}
	c.Flags().IntVar(&version, "version", 0, "this version rather than the latest")
	addOutputFlag(c, &out)
	return c
}

func taskDefText(raw []byte) string {
	req := jobs.SubmitRequest{TaskDefinition: raw}
	ref, inline, err := req.TaskRef()
	switch {
	case err != nil:
		return "?"
	case inline != nil:
		return inline.Family + " (inline)"
	}
	return ref
}

// arrayText is a stage's ARRAY column: its size, the output it reads it
// from (extract.FILES), or - for one plain run.
// A sequential array says so: 3, sequential.
func arrayText(st *jobs.Stage) string {
	if st.ArraySize.IsZero() {
		return "-"
	}
	if st.Sequential() {
		return st.ArraySize.String() + ", sequential"
	}
	return st.ArraySize.String()
}

func newPipelineRunCmd(g *globals) *cobra.Command {
	var (
		params   []string
		detach   bool
		priority string
		timeout  time.Duration
		tags     []string
		cons     []string
		key      string
		out      output // detach_output.go
	)
	c := &cobra.Command{
		Use:   "run NAME [--param K=V]... [--tag K=V]... [--constraint K=V]... [--priority P] [--timeout DUR] [--idempotency-key K] [-d]",
		Short: "Run a pipeline and show its stages live, or print its run id with -d",
		Long: `run starts a run of the latest version of a pipeline. Attached, it shows each
stage's status as it changes and, when a stage fails, its last log lines; it
exits 0 when the pipeline run succeeded, 124 when it timed out and 1
otherwise. Ctrl-C stops the pipeline run.

A stage that skipped itself (its task exited with one of the stage's
skipOnExitCode codes: nothing to do) shows SKIPPED with the code, and
fails nothing: the run still exits 0 when no stage failed.

--timeout bounds this run, over the pipeline file's timeoutSeconds: counted
from the run's start, it stops the run as 'gantry stop' would once passed
(running stages' runs stopped, no other stage started, failure stages
included) and the run ends FAILED with stopCode Timeout.

--constraint (repeatable: K=V, K!=V, K for a label K of any value, !K for
no label K) places every stage's runs on workers with those labels, as
gantry run --constraint does, besides the pipeline file's constraints (the
top-level ones and the stage's own): all of them hold. One that contradicts
the file's for some stage (--constraint disk=ssd where a stage asks for
disk=hdd, or gpu where it asks for !gpu) is refused, naming both, rather
than leaving that stage's runs QUEUED for ever: to place such a stage
elsewhere, change the file.

A parameter the file declares as {required: true} has no default: the run
is refused unless --param gives it.

--idempotency-key makes the run once, for a caller that retries (a webhook
relay, an upstream job's hook, CI): a second run of the pipeline with the
same key starts nothing and shows (or, with -d, prints) the run the first
one started, as it is now, whatever its other flags say, for as long as that
run is kept (--run-retention).

When the pipeline file's maxActiveRuns runs are RUNNING already, the run
waits PENDING (stderr says so: "is PENDING: waiting: 2 of 2 active runs of
daily-sales (maxActiveRuns)") and starts when one ends; its timeout counts
from then. A run started here has no scheduled time: dependsOnPast neither
holds it back nor makes the scheduled runs wait for it.`,
		Example: `  gantry pipeline run daily-sales --param day=2026-11-24
  gantry pipeline run daily-sales --timeout 2h      # FAILED, exit 124, if not done in 2 hours
  gantry pipeline run daily-sales --tag reason=reload   # then: gantry ps --all --tag reason=reload
  gantry pipeline run daily-sales --constraint zone=eu-2 --constraint '!spot'   # every stage in zone eu-2, on no spot host
  id=$(gantry pipeline run daily-sales -d)
  gantry pipeline run reload --param customer=42 --idempotency-key reload-42-2026-03-01 -d   # retried: the same run id`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			given := map[string]string{}
			for _, kv := range params {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--param %q: want K=V", kv)
				}
				given[k] = v
			}
			if err := out.detachedOnly(detach); err != nil {
				return err
			}
			prio, secs, tagList, err := stageRunFlags(cmd, priority, timeout, tags)
			if err != nil {
				return err
			}
			consList, err := constraintFlags(cons) // run.go
			if err != nil {
				return err
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			pr, err := c.RunPipelineWith(cmd.Context(), args[0],
				client.RunOptions{Parameters: given, Priority: prio, TimeoutSeconds: secs, Tags: tagList, Constraints: consList,
					IdempotencyKey: key})
			if errors.Is(err, client.ErrNotFound) {
				return err // its code kept, for the hint of hintUnknownNames
			}
			if err != nil {
				return fmt.Errorf("%s", pipelineRunFlagErrors(err))
			}
			if detach {
				return out.writeID(cmd.OutOrStdout(), pr.PipelineRunID, pr)
			}
			return attachPipeline(cmd.Context(), c, pr.PipelineRunID, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringArrayVarP(&params, "param", "p", nil, "set a parameter K=V (repeatable)")
	c.Flags().BoolVarP(&detach, "detach", "d", false, "print the pipeline run id and return at once")
	c.Flags().StringVar(&priority, "priority", "", "high, normal or low: the priority of every stage's runs (default: the pipeline file's, else normal)")
	durationVar(c.Flags(), &timeout, "timeout", 0, "fail the pipeline run if it has not ended this long (e.g. 90m, 2h) after its start (default: the pipeline file's timeoutSeconds, else no limit)")
	c.Flags().StringArrayVar(&tags, "tag", nil, "tag every stage's runs K=V, over the pipeline file's tags, to find them with gantry ps --tag (repeatable)")
	c.Flags().StringArrayVar(&cons, "constraint", nil, "run every stage only on workers with label K=V, K!=V, K (any value) or !K (none), besides the pipeline file's constraints (repeatable)")
	c.Flags().StringVar(&key, "idempotency-key", "", "running the pipeline twice with the same key starts one run: the second gets the first's")
	addDetachOutputFlag(c, &out)
	return c
}

// constraintFlagErrors puts the server's problems with a request on one
// line, those of its constraints (constraints[1]: "disk=ssd": ...) naming
// the --constraint flag instead (--constraint "disk=ssd": ...).
func constraintFlagErrors(err error) string {
	return strings.Join(mapErrorLines(err, constraintFlagLine), "; ")
}

// mapErrorLines is err's message, one line a problem as the server joins
// them, each line passed through f: the CLI's errors name its flags where
// the server's name the request's fields.
func mapErrorLines(err error, f func(string) string) []string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = f(l)
	}
	return lines
}

// pipelineRunFlagErrors is constraintFlagErrors for gantry pipeline run,
// whose parameters the server names as fields too: parameters.dya: ...
// becomes --param dya: ...
func pipelineRunFlagErrors(err error) string {
	return strings.Join(mapErrorLines(err, func(l string) string {
		if rest, ok := strings.CutPrefix(l, "parameters."); ok {
			if k, msg, ok := strings.Cut(rest, ": "); ok {
				if m, ok := strings.CutSuffix(msg, ": "+jobs.MissingParamHint); ok {
					// pipeline daily-sales needs parameter customer: give --param customer=VALUE
					return m + ": give --param " + k + "=VALUE"
				}
				return "--param " + k + ": " + msg
			}
		}
		if rest, ok := strings.CutPrefix(l, "idempotencyKey: "); ok {
			return "--idempotency-key: " + rest
		}
		return constraintFlagLine(l)
	}), "; ")
}

// backfillFlagErrors puts the server's problems with a backfill on one
// line, those of its range naming the --from and --to flags rather than
// the request's from and to fields.
func backfillFlagErrors(err error) string {
	return strings.Join(mapErrorLines(err, func(l string) string {
		for _, f := range []string{"from", "to"} {
			if rest, ok := strings.CutPrefix(l, f+": "); ok {
				return "--" + f + ": " + rest
			}
		}
		return l
	}), "; ")
}

// constraintFlagLine is one line of a server's error, naming the
// --constraint flag if it named the constraints field.
func constraintFlagLine(l string) string {
	if rest, ok := strings.CutPrefix(l, "constraints: "); ok {
		return "--constraint: " + rest
	}
	if rest, ok := strings.CutPrefix(l, "constraints["); ok {
		if _, msg, ok := strings.Cut(rest, "]: "); ok {
			return "--constraint " + msg
		}
	}
	return l
}

func newPipelineRetryCmd(g *globals) *cobra.Command {
	var (
		detach bool
		out    output // detach_output.go
	)
	c := &cobra.Command{
		Use:   "retry PIPELINE-RUN [-d]",
		Short: "Run again the stages of a failed or canceled pipeline run that did not succeed",
		Long: `retry takes a pipeline run that ended FAILED or CANCELED back to RUNNING under
the same id: its stages that did not succeed (failed, canceled, skipped) and
every stage downstream of them run again, with the pipeline version and
parameters the run had; the stages that succeeded keep their runs and files.
The earlier tries' runs stay in gantry describe PIPELINE-RUN. A run with a
timeout has the whole of it again, counted from the retry. A run of a
pipeline with maxActiveRuns takes a place as a new run does: it waits
PENDING while that many runs are RUNNING (its timeout counting from when
it gets one). Attached, it
shows the stages as pipeline run does and exits 0 when the run succeeded,
124 when it timed out, 1 otherwise.`,
		Example: `  gantry pipeline retry pr-01jf3...
  gantry pipeline retry pr-01jf3... -d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.detachedOnly(detach); err != nil {
				return err
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			pr, err := c.RetryPipelineRun(cmd.Context(), args[0])
			if errors.Is(err, client.ErrNotFound) {
				return err // its code kept, for the hint of hintUnknownRuns
			}
			if err != nil {
				return fmt.Errorf("%s", oneLine(err))
			}
			if detach {
				return out.writeID(cmd.OutOrStdout(), pr.PipelineRunID, pr)
			}
			return attachPipeline(cmd.Context(), c, pr.PipelineRunID, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().BoolVarP(&detach, "detach", "d", false, "print the pipeline run id and return at once")
	addDetachOutputFlag(c, &out)
	hintUnknownRuns(c) // runs.go
	return c
}

// attachPipeline shows the stages as the run goes: on a terminal a live
// table redrawn in place (pipeline_live.go), elsewhere a line whenever a
// stage changes. Then it prints the summary and the failing stages' last
// log lines, and maps the outcome to the exit code.
func attachPipeline(ctx context.Context, c *client.Client, id string, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "pipeline run %s\n", id)
	waiting := waitTeller(id, stderr)
	changes := stageChanges(stdout, time.Now)
	show := func(pr *jobs.PipelineRun) {
		waiting(pr)
		changes(pr)
	}
	stopView := func() {}
	if st := styleOf(stdout); st.tty {
		var live func(*jobs.PipelineRun)
		live, stopView = liveStages(stdout, st, 500*time.Millisecond, time.Now)
		show = live
		if !styleOf(stderr).tty {
			// The live table's pipeline row says why the run waits; a
			// stderr elsewhere (a log file) is told too.
			show = func(pr *jobs.PipelineRun) { waiting(pr); live(pr) }
		}
	}
	pr, err := c.WatchPipelineRun(ctx, id, show)
	stopView()
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "gantry: stopping pipeline run %s\n", id)
		if _, err := c.StopPipelineRun(context.WithoutCancel(ctx), id, "Stopped by user (Ctrl-C)"); err != nil {
			return err
		}
		return &exitError{code: exitGantryError}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pipeline run %s %s in %s\n", id, pr.Status, pipelineDuration(pr, time.Now()))
	if pr.Status == jobs.StatusSucceeded {
		return nil
	}
	for _, st := range pr.Stages {
		if st.Status != jobs.StatusFailed {
			continue
		}
		fmt.Fprintf(stderr, "stage %s failed: %s\n", st.Name, orDash(st.Reason))
		for _, r := range st.Runs {
			if r.Status == jobs.StatusFailed {
				// The stage's reason only counts its failed runs: say which
				// one and why, which is all there is when it never started
				// (a host path refused, an image missing).
				if run, err := c.Get(ctx, r.RunID); err == nil {
					exit := ""
					if run.ExitCode != nil {
						exit = fmt.Sprintf(" (exit %d)", *run.ExitCode)
					}
					fmt.Fprintf(stderr, "  run %s %s%s: %s\n", r.RunID, run.Status, exit, orDash(run.StoppedReason))
				}
				printTail(ctx, c, r.RunID, stderr, 10)
				break
			}
		}
	}
	return pipelineExit(pr)
}

// waitTeller returns a function that tells w, once per reason, why the
// pipeline run id waits PENDING ("pipeline run pr-... is PENDING:
// waiting: 2 of 2 active runs of daily-sales (maxActiveRuns)"), and why
// the runs of a stage it started wait QUEUED, as gantry run tells of a
// run ("stage load: run 01j... is queued: no worker in cluster default
// has labels gpu=t4"; of an array, how many of its runs wait so).
func waitTeller(id string, w io.Writer) func(*jobs.PipelineRun) {
	told := ""
	stages := map[string]string{} // stage → the reason last told
	return func(pr *jobs.PipelineRun) {
		if pr.Status == jobs.StatusPending && pr.StatusReason != "" && pr.StatusReason != told {
			told = pr.StatusReason
			fmt.Fprintf(w, "pipeline run %s is PENDING: %s\n", id, pr.StatusReason)
		}
		for _, st := range pr.Stages {
			var first *jobs.StageRun
			n := 0
			for i := range st.Runs {
				r := &st.Runs[i]
				if r.Status != jobs.StatusQueued || r.StatusReason == "" {
					continue
				}
				if first == nil {
					first = r
				}
				if r.StatusReason == first.StatusReason {
					n++
				}
			}
			if first == nil {
				delete(stages, st.Name) // none waits: a wait again is told again
				continue
			}
			if stages[st.Name] == first.StatusReason {
				continue
			}
			stages[st.Name] = first.StatusReason
			if len(st.Runs) == 1 {
				fmt.Fprintf(w, "stage %s: run %s is queued: %s\n", st.Name, first.RunID, first.StatusReason)
			} else {
				fmt.Fprintf(w, "stage %s: %d of %d runs are queued: %s\n", st.Name, n, len(st.Runs), first.StatusReason)
			}
		}
	}
}

// stageWaitReason says why a stage of pr waits. A RUNNING stage's runs
// that have not ended say it (jobs.StageRun.StatusReason): the first
// one's reason, with, for an array, how many runs it holds back and how
// many others wait for other reasons. A PENDING stage whose dependencies
// let it run waits for the stages whose outputs it reads to end
// (jobs.Pipeline.OutputWait). "" when none says.
func stageWaitReason(pr *jobs.PipelineRun, st *jobs.StageState) string {
	if st.Status == jobs.StatusPending {
		if spec := pr.Spec.Stage(st.Name); spec == nil || spec.ArraySize.From == nil && !spec.When.ReadsOutputs() {
			return "" // reads no output: the statuses need not be gathered
		}
		return pr.Spec.OutputWait(st.Name, pr.StageStatuses(), pr.Runless())
	}
	if st.Status != jobs.StatusRunning {
		return ""
	}
	var first string
	same, others := 0, 0
	for _, r := range st.Runs {
		switch {
		case r.StatusReason == "" || r.Status.Terminal():
		case first == "" || r.StatusReason == first:
			first = r.StatusReason
			same++
		default:
			others++
		}
	}
	switch {
	case first == "":
		return ""
	case len(st.Runs) == 1:
		return first
	case others > 0:
		return fmt.Sprintf("%d of %d runs: %s (%d more: other reasons)", same, len(st.Runs), first, others)
	}
	return fmt.Sprintf("%d of %d runs: %s", same, len(st.Runs), first)
}

// pipelineExit maps an ended pipeline run to the exit code of an attached
// `gantry pipeline run`: 0 when it succeeded, 124 (as a run's timeout)
// when it timed out, 1 otherwise.
func pipelineExit(pr *jobs.PipelineRun) error {
	switch {
	case pr.Status == jobs.StatusSucceeded:
		return nil
	case pr.StopCode == jobs.StopTimeout:
		return &exitError{code: exitTimeout, err: fmt.Errorf("%s: %s", pr.PipelineRunID, pr.StoppedReason)}
	}
	return &exitError{code: exitPipelineFailed}
}

// printTail prints the last n log lines of a run.
func printTail(ctx context.Context, c *client.Client, runID string, w io.Writer, n int) {
	var lines []string
	_ = c.Logs(ctx, runID, client.LogOptions{}, func(b *jobs.LogBatch) error {
		for _, l := range b.Lines {
			lines = append(lines, l.Text)
			if len(lines) > n {
				lines = lines[1:]
			}
		}
		return nil
	})
	for _, l := range lines {
		fmt.Fprintf(w, "  | %s\n", l)
	}
}

// stageChanges returns a function that prints on w a line for each stage
// of a pipeline run that changed (status, runs ended, attempts) since the
// last call: the view of an attached pipeline run off a terminal.
func stageChanges(w io.Writer, now func() time.Time) func(*jobs.PipelineRun) {
	seen := map[string]string{}
	lines := &stageLines{start: now()}
	return func(pr *jobs.PipelineRun) {
		lines.fit(pr)
		for _, st := range pr.Stages {
			key := string(st.Status) + "/" + attemptsText(&st)
			if seen[st.Name] != key {
				seen[st.Name] = key
				fmt.Fprintln(w, lines.line(&st, now()))
			}
		}
	}
}

// stageLines are the lines an attached pipeline run prints off a
// terminal, one per stage change: time since the attach, stage, status,
// runs and attempts, duration and reason. Lines go out at different
// times, which tabwriter cannot align: each column is padded instead to
// the widest value it may hold (statuses) or has held so far (stage
// names, runs and attempts), so that "RUNNING    0/3 runs" lines up with
// "SUCCEEDED  3/3 runs".
type stageLines struct {
	start time.Time
	name  int // widths so far: they only grow
	runs  int
}

// statusWidth is the width of the widest status a stage may have.
var statusWidth = func() int {
	w := 0
	for _, s := range []jobs.Status{jobs.StatusPending, jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning,
		jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled, jobs.StatusSkipped} {
		w = max(w, len(s))
	}
	return w
}()

// durationWidth holds short's durations up to two days (59m59s, 47h59m).
const durationWidth = 6

// fit widens the columns for the stages of pr: all its stage names, and
// the runs of the arrays that started (their attempts as many as their
// runs at first).
func (l *stageLines) fit(pr *jobs.PipelineRun) {
	l.name = max(l.name, 14)
	for _, st := range pr.Stages {
		l.name = max(l.name, utf8.RuneCountInString(st.Name))
		if n := len(st.Runs); n > 1 {
			l.runs = max(l.runs, len(fmt.Sprintf("%d/%d runs, %d attempts", n, n, n)))
		}
	}
}

// line is the line of stage st at now, without trailing spaces.
func (l *stageLines) line(st *jobs.StageState, now time.Time) string {
	pad := func(s string, w int) string {
		return s + strings.Repeat(" ", max(w-utf8.RuneCountInString(s), 0))
	}
	runs := attemptsText(st)
	l.runs = max(l.runs, len(runs))
	dur := ""
	if st.StartedAt != nil {
		end := now
		if st.FinishedAt != nil {
			end = *st.FinishedAt
		}
		dur = short(end.Sub(*st.StartedAt))
	}
	cols := []string{fmt.Sprintf("%8s", short(now.Sub(l.start))), pad(st.Name, l.name) + " " + pad(string(st.Status), statusWidth)}
	if l.runs > 0 {
		cols = append(cols, pad(runs, l.runs))
	}
	cols = append(cols, pad(dur, durationWidth), st.Reason)
	return strings.TrimRight(strings.Join(cols, "  "), " ")
}

// attemptsText says how many runs of the stage ended and how many attempts
// they took, for stages with several runs or retries.
func attemptsText(st *jobs.StageState) string {
	if len(st.Runs) == 0 {
		return ""
	}
	done, attempts := 0, 0
	for _, r := range st.Runs {
		if r.Status.Terminal() {
			done++
		}
		attempts += r.Attempts
	}
	if len(st.Runs) == 1 && attempts <= 1 {
		return ""
	}
	return fmt.Sprintf("%d/%d runs, %d attempts", done, len(st.Runs), attempts)
}

// pipelineDuration is how long pr has run: since its latest retry, if it
// was retried (the time between its earlier end and the retry is not
// running time), else since its start.
func pipelineDuration(pr *jobs.PipelineRun, now time.Time) string {
	start := pr.StartedAt
	if pr.RetriedAt != nil {
		start = pr.RetriedAt
	}
	if start == nil {
		return "-"
	}
	end := now
	if pr.FinishedAt != nil {
		end = *pr.FinishedAt
	}
	return short(end.Sub(*start))
}

func newPipelineRunsCmd(g *globals) *cobra.Command {
	var (
		out   output
		limit int
	)
	c := &cobra.Command{
		Use:   "runs NAME",
		Short: "List a pipeline's runs with each stage's status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]jobs.PipelineRun, error) {
				return c.PipelineRuns(ctx, args[0], limit)
			}, func(w io.Writer, runs []jobs.PipelineRun) error {
				now := time.Now()
				fmt.Fprintln(w, "PIPELINE RUN\tSTATUS\tTRIGGER\tCREATED\tDURATION\tSTAGES\tREASON")
				for _, pr := range runs {
					var stages []string
					for _, st := range pr.Stages {
						stages = append(stages, st.Name+"="+string(st.Status))
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", pr.PipelineRunID, pr.Status, orDash(pr.Trigger),
						ago(pr.CreatedAt, now), pipelineDuration(&pr, now), strings.Join(stages, " "), orDash(runsReason(&pr)))
				}
				return nil
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 100, "at most this many runs, newest first")
	addOutputFlag(c, &out)
	return c
}

// runsReason is the REASON of a pipeline run in `gantry pipeline runs`:
// why it stopped, or why it waits PENDING, or else, for a run that
// failed, which stages failed (or were canceled) and why, then which
// stages skipped themselves (skipOnExitCode), which a run that succeeded
// would not show otherwise.
func runsReason(pr *jobs.PipelineRun) string {
	if pr.StoppedReason != "" {
		return pr.StoppedReason
	}
	if pr.Status == jobs.StatusPending && pr.StatusReason != "" {
		return pr.StatusReason
	}
	var why []string
	if pr.Status == jobs.StatusRunning {
		// A stage RUNNING may not have started a container yet: its runs
		// say why they wait. One PENDING may wait for a stage whose
		// output it reads.
		for _, st := range pr.Stages {
			if wait := stageWaitReason(pr, &st); wait != "" {
				why = append(why, st.Name+": "+wait)
			}
		}
	}
	if pr.Status == jobs.StatusFailed {
		for _, st := range pr.Stages {
			if st.Status == jobs.StatusFailed || st.Status == jobs.StatusCanceled {
				why = append(why, st.Name+": "+orDash(st.Reason))
			}
		}
	}
	for _, st := range pr.Stages {
		if st.Status == jobs.StatusSkipped && slices.ContainsFunc(st.Runs, func(r jobs.StageRun) bool { return r.Skipped }) {
			why = append(why, st.Name+": "+st.Reason)
		}
	}
	return strings.Join(why, "; ")
}

// describePipelineRun prints one pipeline run: its stages, their runs and
// attempts.
func describePipelineRun(w io.Writer, pr *jobs.PipelineRun) error {
	now := time.Now()
	fmt.Fprintf(w, "Pipeline run:\t%s\n", pr.PipelineRunID)
	fmt.Fprintf(w, "Pipeline:\t%s (version %d)\n", pr.Pipeline, pr.Version)
	fmt.Fprintf(w, "Status:\t%s\n", pr.Status)
	if pr.Status == jobs.StatusPending && pr.StatusReason != "" {
		fmt.Fprintf(w, "Status reason:\t%s\n", pr.StatusReason)
	}
	fmt.Fprintf(w, "Trigger:\t%s\n", orDash(pr.Trigger))
	if pr.ScheduledTime != nil {
		fmt.Fprintf(w, "Scheduled:\t%s\n", pr.ScheduledTime.Format(time.RFC3339))
	}
	if pr.TriggeredBy != "" {
		fmt.Fprintf(w, "Triggered by:\t%s\n", pr.TriggeredBy)
	}
	if pr.Priority != "" {
		fmt.Fprintf(w, "Priority:\t%s\n", pr.Priority)
	}
	if len(pr.Tags) > 0 {
		fmt.Fprintf(w, "Tags:\t%s\n", tagsText(pr.Tags))
	}
	if len(pr.Constraints) > 0 {
		fmt.Fprintf(w, "Constraints:\t%s (every stage's, besides the pipeline file's)\n", pr.Constraints)
	}
	if bf := pr.Backfill; bf != nil {
		limit := "no limit"
		if bf.MaxParallel > 0 {
			limit = fmt.Sprintf("at most %d at once", bf.MaxParallel)
		}
		fmt.Fprintf(w, "Backfill:\t%s (%s)\n", bf.ID, limit)
	}
	if pr.TimeoutSeconds > 0 {
		limit := (time.Duration(pr.TimeoutSeconds) * time.Second).String()
		if at, ok := pr.Deadline(); ok {
			limit += fmt.Sprintf(" (times out at %s, in %s)", at.In(localZone).Format(time.RFC3339), short(max(at.Sub(now), 0)))
		}
		fmt.Fprintf(w, "Timeout:\t%s\n", limit)
	}
	if pr.StopCode != "" {
		fmt.Fprintf(w, "Stop code:\t%s\n", pr.StopCode)
	}
	if pr.StoppedReason != "" {
		fmt.Fprintf(w, "Stopped reason:\t%s\n", pr.StoppedReason)
	}
	if pr.Retries > 0 {
		last := ""
		if pr.RetriedAt != nil {
			last = fmt.Sprintf(" (last %s)", ago(*pr.RetriedAt, now))
		}
		fmt.Fprintf(w, "Retries:\t%d%s\n", pr.Retries, last)
	}
	keys := make([]string, 0, len(pr.Parameters))
	for k := range pr.Parameters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "Parameter:\t%s=%s\n", k, pr.Parameters[k])
	}
	fmt.Fprintf(w, "Created:\t%s (%s)\n", pr.CreatedAt.In(localZone).Format(time.RFC3339), ago(pr.CreatedAt, now))
	if pr.FinishedAt != nil {
		fmt.Fprintf(w, "Finished:\t%s (%s)\n", pr.FinishedAt.In(localZone).Format(time.RFC3339), ago(*pr.FinishedAt, now))
	}
	fmt.Fprintf(w, "Duration:\t%s\n", pipelineDuration(pr, now))
	fmt.Fprintln(w, "\nSTAGE\tSTATUS\tRUN\tINDEX\tRUN STATUS\tATTEMPTS\tEXIT\tREASON")
	for _, st := range pr.Stages {
		// The earlier tries of a retried stage first, as "stage (try N)".
		for _, try := range st.EarlierTries {
			stageRows(w, fmt.Sprintf("%s (try %d)", st.Name, try.Try), try.Status, try.Reason, try.Runs)
		}
		name := st.Name
		if st.Try > 1 {
			name = fmt.Sprintf("%s (try %d)", st.Name, st.Try)
		}
		stageRows(w, name, st.Status, firstOf(st.Reason, stageWaitReason(pr, &st)), st.Runs)
	}
	return nil
}

// stageRows prints the rows of one try of a stage: one per run, with each
// run's own reason (the stage's, "1 of 3 runs failed", only counts the
// rows), or one row of the stage's when it has no run.
func stageRows(w io.Writer, name string, status jobs.Status, reason string, runs []jobs.StageRun) {
	if len(runs) == 0 {
		fmt.Fprintf(w, "%s\t%s\t-\t-\t-\t-\t-\t%s\n", name, status, orDash(reason))
		return
	}
	for _, r := range runs {
		idx := "-"
		if r.ArrayIndex != nil {
			idx = strconv.Itoa(*r.ArrayIndex)
		}
		// Why it ended, or else why it waits (the run's statusReason now).
		why := firstOf(r.StoppedReason, r.StatusReason)
		if r.Skipped && r.ExitCode != nil {
			// FAILED, as the run itself ended: the row says why that
			// did not fail the stage.
			why = jobs.SkipReason(1, 1, []int{*r.ExitCode})
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", name, status, r.RunID, idx, r.Status, r.Attempts,
			exitText(r.ExitCode), orDash(why))
	}
}

func newPipelineBackfillCmd(g *globals) *cobra.Command {
	var (
		from, to    string
		maxParallel int
		priority    string
		timeout     time.Duration
		tags        []string
	)
	c := &cobra.Command{
		Use:   "backfill NAME --from T --to T [--max-parallel N] [--priority low] [--tag K=V]... [--timeout DUR]",
		Short: "Create one run per fire time of the pipeline's schedule in [from, to]",
		Long: `backfill creates the runs the schedule would have made between --from and
--to, both included (RFC 3339 times or YYYY-MM-DD dates, in the schedule's
zone; --to 2026-11-07 takes in the whole of the 7th). Each is the
schedule's run for its time: a time already fired is not run again. Each run
sees GANTRY_SCHEDULED_TIME, and the schedule's dateParameter, if it has one,
as its date (schedule.dateParameter: day runs each day's day). With --max-parallel N at most N of the runs are
active at once: the others wait PENDING and start, earliest first, as runs
end (a server restart keeps the bound). The pipeline's maxActiveRuns holds
too: a run starts when both leave room. --priority sets the priority of
every stage's runs over the pipeline file's: low lets the scheduled runs
go first. --timeout bounds each run over the file's timeoutSeconds,
counted from when that run starts: not while it waits PENDING.`,
		Example: `  gantry pipeline backfill daily-sales --from 2026-11-01 --to 2026-11-07
  gantry pipeline backfill daily-sales --from 2026-10-01 --to 2026-10-31 --max-parallel 2 --priority low
  gantry pipeline backfill daily-sales --from 2026-10-01 --to 2026-10-07 --timeout 3h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prio, secs, tagList, err := stageRunFlags(cmd, priority, timeout, tags)
			if err != nil {
				return err
			}
			if maxParallel < 0 {
				return fmt.Errorf("--max-parallel %d: must not be negative", maxParallel)
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			p, err := c.DescribePipeline(cmd.Context(), args[0], 0)
			if err != nil {
				return err
			}
			loc := time.UTC
			if p.Schedule != nil {
				if l, err := p.Schedule.Location(); err == nil {
					loc = l
				}
			}
			f, err := parseTimeFlag("--from", from, loc, false)
			if err != nil {
				return err
			}
			t, err := parseTimeFlag("--to", to, loc, true)
			if err != nil {
				return err
			}
			if t.Before(f) {
				return fmt.Errorf("--to %s is before --from %s", to, from)
			}
			runs, err := c.BackfillWith(cmd.Context(), args[0], f, t,
				client.BackfillOptions{MaxParallel: maxParallel, Priority: prio, TimeoutSeconds: secs, Tags: tagList})
			if err != nil {
				if msg := backfillFlagErrors(err); msg != oneLine(err) {
					return errors.New(msg)
				}
				return err
			}
			for _, pr := range runs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", pr.PipelineRunID, pr.ScheduledTime.In(loc).Format(time.RFC3339), pr.Status)
			}
			return nil
		},
	}
	c.Flags().StringVar(&from, "from", "", "first time (RFC 3339, YYYY-MM-DDTHH:MM or YYYY-MM-DD, in the schedule's zone), included")
	c.Flags().StringVar(&to, "to", "", "last time, included; a bare date YYYY-MM-DD takes in the whole day")
	c.Flags().IntVar(&maxParallel, "max-parallel", 0, "at most this many of the runs active at once (0: all)")
	c.Flags().StringVar(&priority, "priority", "", "high, normal or low: the priority of every stage's runs (default: the pipeline file's, else normal; low keeps a backfill from delaying scheduled runs)")
	durationVar(c.Flags(), &timeout, "timeout", 0, "fail each run that has not ended this long after its start (default: the pipeline file's timeoutSeconds, else no limit)")
	c.Flags().StringArrayVar(&tags, "tag", nil, "tag every stage's runs of the backfill K=V, over the pipeline file's tags (repeatable; e.g. --tag reason=reload)")
	c.MarkFlagRequired("from")
	c.MarkFlagRequired("to")
	return c
}

// parseTimeFlag reads a time flag in loc. A bare date is the day's start,
// or with end its last instant, so that --to 2026-11-07 takes in the
// fires of the 7th.
func parseTimeFlag(name, v string, loc *time.Location, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, loc); err == nil {
		if end {
			y, m, d := t.Date()
			t = time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
		}
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02T15:04", v, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time or YYYY-MM-DD", name, v)
}

// writeSchedules is schedule ls's table. LAST FIRE is when a schedule last
// ran (lastRun), not the last time it handled: a suspended schedule's
// would move on with nothing run.
func writeSchedules(w io.Writer, ss []client.ScheduleInfo) error {
	fmt.Fprintln(w, "NAME\tRUNS\tCRON\tTIMEZONE\tPOLICY\tSUSPENDED\tLAST FIRE\tNEXT FIRE\tNEXT FIRE (LOCAL)")
	for _, s := range ss {
		loc, _ := s.Schedule.Location()
		last, next, local := "-", "-", "-"
		if s.LastRun != nil {
			last = s.LastRun.In(loc).Format(time.RFC3339)
		}
		if s.NextFire != nil && !s.Suspended {
			next = s.NextFire.In(loc).Format(time.RFC3339)
			local = s.NextFire.In(localZone).Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\n", s.Name, scheduleRuns(s), s.Schedule.Cron, loc, s.Schedule.Policy(),
			s.Suspended, last, next, local)
	}
	return nil
}

func newScheduleCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "schedule",
		Short: "Create, list, describe, suspend, resume, trigger and delete the cron schedules of pipelines and task definitions",
	}
	var out output
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List schedules with their next fire time, in the schedule's zone and yours",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]client.ScheduleInfo, error) {
				return c.Schedules(ctx)
			}, writeSchedules)
		},
	}
	addOutputFlag(ls, &out)
	toggle := func(use, past, short string, suspend bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				nc, c, err := g.connect(cmd.Context())
				if err != nil {
					return err
				}
				defer nc.Close()
				if err := c.SuspendSchedule(cmd.Context(), args[0], suspend); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schedule %s %s\n", args[0], past)
				return nil
			},
		}
	}
	trigger := &cobra.Command{
		Use:   "trigger NAME",
		Short: "Run a scheduled pipeline now; prints the pipeline run id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			pr, err := c.TriggerSchedule(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pr.PipelineRunID)
			return nil
		},
	}
	c.AddCommand(ls, toggle("suspend", "suspended", "Stop firing a schedule until resumed", true),
		toggle("resume", "resumed", "Fire a suspended schedule again (fire times passed meanwhile are not run)", false), trigger,
		newScheduleDescribeCmd(g), // schedule_describe.go
		newScheduleCreateCmd(g),   // schedule_create.go
		newScheduleDeleteCmd(g))   // delete.go
	hintUnknownNames(c, "schedule", "gantry schedule ls lists them") // runs.go
	return c
}

// pipelineTimeout is --timeout in seconds, 0 when it is left out. A
// --timeout 0 given is refused: the request's 0 means the file's
// timeoutSeconds, so it would not lift the file's timeout, as the user
// who typed it would expect, but silently keep it.
// stageRunFlags reads the flags pipeline run and backfill share, for the
// stages' runs they start: --priority, --timeout and --tag.
func stageRunFlags(cmd *cobra.Command, priority string, timeout time.Duration, tags []string) (jobs.Priority, int, jobs.TagList, error) {
	prio, err := priorityFlag(priority) // run.go
	if err != nil {
		return "", 0, nil, err
	}
	secs, err := pipelineTimeout(cmd, timeout)
	if err != nil {
		return "", 0, nil, err
	}
	tagList, err := tagFlags(tags) // run.go
	return prio, secs, tagList, err
}

func pipelineTimeout(cmd *cobra.Command, d time.Duration) (int, error) {
	if d == 0 && cmd.Flags().Changed("timeout") {
		return 0, fmt.Errorf("--timeout %s: must be at least 1s; leave it out for the pipeline file's timeoutSeconds (a run cannot lift the file's timeout)", d)
	}
	return seconds("--timeout", d) // run.go
}
