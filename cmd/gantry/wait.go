package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

func newWaitCmd(g *globals) *cobra.Command {
	var (
		timeout time.Duration
		out     output
	)
	c := &cobra.Command{
		Use:   "wait RUN...",
		Short: "Wait until runs end; exit with the code an attached run would give",
		Long: `wait blocks until every run given has ended (runs and pipeline runs pr-...,
queued, running or already ended), following their status events, and
prints a line for each as it ends: its id, status and exit code (- for none,
and for a pipeline run), separated by tabs (cut -f2 gives the status). With -o json or yaml it prints each run as
'gantry describe -o json|yaml' does, one after another as they end.

It exits as an attached 'gantry run' would: 0 when every run succeeded;
otherwise with the code of the first of the runs given (in the order given)
that did not succeed: 124 if it timed out; else its task's exit code if it
has one, as docker wait: a run stopped while running (gantry stop, Ctrl-C
on its gantry run) gives its container's, 143 after SIGTERM or 137 after
SIGKILL, and a line on stderr says how it was stopped, as for a container
killed for its memory or a lost worker; 125 if it ended without one
(stopped before it started, its image missing...) or with 0 (stopped, its
task trapped SIGTERM and exited 0): a run that did not succeed never exits
0. For a pipeline run (as 'gantry pipeline run'), 124 if it timed out, 1 if
it did not succeed otherwise. A run id gantry does not know and --timeout reached are errors
of gantry itself (125), naming the runs.

wait does not stop the runs: Ctrl-C, or --timeout, ends only the wait. A
submit-only NATS user may wait for runs, not for pipeline runs.`,
		Example: `  # Start a run, do something else, then wait for it:
  id=$(gantry run -d --image gantry/samples:latest -- sh -c 'sleep 5; exit 3')
  gantry wait "$id"; echo "exit $?"          # 01jf3...<TAB>FAILED<TAB>3, then exit 3

  # Several runs: wait for all, at most 10 minutes
  gantry wait --timeout 10m "$a" "$b" "$c"

  # A pipeline run
  gantry wait $(gantry pipeline run -d daily-sales)

  # The runs as JSON, once ended
  gantry wait -o json "$id" | jq .exitCode`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout < 0 {
				return fmt.Errorf("--timeout %s: give how long to wait, as 90s or 10m (0 for no limit)", timeout)
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			w := cmd.OutOrStdout()
			var printed int
			err = waitEnds(cmd.Context(), c, args, timeout, func(e *endedRun) error {
				if out == "table" {
					_, err := io.WriteString(w, e.line())
					return err
				}
				if printed++; printed > 1 && out == "yaml" {
					io.WriteString(w, "---\n")
				}
				return out.write(w, e.object(), nil)
			})
			return lostNATS(err, nc, g.conn.URL, "the runs go on: gantry wait again waits for them")
		},
	}
	durationVar(c.Flags(), &timeout, "timeout", 0, "give up after this long (e.g. 90s, 10m), exit 125 naming the runs not ended; 0: no limit")
	addOutputFlag(c, &out)
	hintUnknownRuns(c) // runs.go
	return c
}

// runFollower is what wait needs of the client: a run or a pipeline run
// followed until it ends, its statuses told as they come.
type runFollower interface {
	Get(ctx context.Context, runID string) (*jobs.Run, error)
	GetPipelineRun(ctx context.Context, id string) (*jobs.PipelineRun, error)
	WaitFunc(ctx context.Context, runID string, fn func(jobs.Event)) (*jobs.Run, error)
	WatchPipelineRun(ctx context.Context, id string, fn func(*jobs.PipelineRun)) (*jobs.PipelineRun, error)
}

// endedRun is a run or a pipeline run that wait saw end.
type endedRun struct {
	id          string
	run         *jobs.Run
	pipelineRun *jobs.PipelineRun
}

func (e *endedRun) status() jobs.Status {
	if e.pipelineRun != nil {
		return e.pipelineRun.Status
	}
	return e.run.Status
}

// line is the table output of an ended run: its id, status and exit
// code, separated by tabs (for cut and awk, as gantry stop's lines).
func (e *endedRun) line() string {
	return fmt.Sprintf("%s\t%s\t%s\n", e.id, e.status(), e.exitText())
}

func (e *endedRun) exitText() string {
	if e.pipelineRun != nil {
		return "-"
	}
	return exitText(e.run.ExitCode)
}

func (e *endedRun) object() any {
	if e.pipelineRun != nil {
		return e.pipelineRun
	}
	return e.run
}

// exit is the outcome as an attached `gantry run` (or `pipeline run`)
// gives it: nil on success, an *exitError otherwise.
func (e *endedRun) exit() error {
	if e.pipelineRun == nil {
		return runExit(e.run)
	}
	return pipelineExit(e.pipelineRun) // pipeline.go
}

// errWaitTimeout is the cause of the end of a wait that reached --timeout.
var errWaitTimeout = errors.New("wait: --timeout reached")

// waitEnds follows the runs ids names (run ids or pipeline run ids; each
// once) until all have ended, or timeout (0: none) has passed, or ctx
// ends. It calls ended, one call at a time, with each run as it ends. It
// returns nil when all succeeded; else the outcome (runExit) of the first
// in ids' order that did not; or its own error: a run that cannot be
// followed (not found, say), the timeout naming the runs not ended, ctx's
// end.
func waitEnds(ctx context.Context, c runFollower, ids []string, timeout time.Duration, ended func(*endedRun) error) error {
	var uniq []string
	for _, id := range ids {
		if !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	ids = uniq
	tctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeoutCause(ctx, timeout, errWaitTimeout)
		defer cancel()
	}
	if err := lookUp(tctx, c, ids); err != nil {
		// A signal or the timeout that comes while the runs are looked
		// up ends the wait as it would later, not as a failed request.
		switch {
		case ctx.Err() != nil:
			return &stoppedWaiting{cause: context.Cause(ctx)}
		case errors.Is(context.Cause(tctx), errWaitTimeout):
			return fmt.Errorf("--timeout %s reached; not ended: %s", timeout, strings.Join(ids, ", "))
		}
		return err
	}
	gctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	var (
		mu       sync.Mutex // guards what follows and serialises ended
		last     = make([]jobs.Status, len(ids))
		done     = make([]*endedRun, len(ids))
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) { // with mu held
		// Once gctx is done, the others' errors only say so.
		if gctx.Err() == nil {
			firstErr = err
			cancel(err)
		}
	}
	for i, id := range ids {
		wg.Go(func() {
			seen := func(s jobs.Status) {
				mu.Lock()
				last[i] = s
				mu.Unlock()
			}
			e, err := follow(gctx, c, id, seen)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fail(err)
				return
			}
			done[i] = e
			if err := ended(e); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	var left []string
	for i, e := range done {
		if e == nil {
			s := ids[i]
			if last[i] != "" {
				s += " (" + string(last[i]) + ")"
			}
			left = append(left, s)
		}
	}
	switch {
	case len(left) == 0:
	case ctx.Err() != nil: // a signal
		return &stoppedWaiting{cause: context.Cause(ctx)}
	case errors.Is(context.Cause(tctx), errWaitTimeout):
		return fmt.Errorf("--timeout %s reached; not ended: %s", timeout, strings.Join(left, ", "))
	}
	for _, e := range done {
		if err := e.exit(); err != nil {
			return err
		}
	}
	return nil
}

// lookUp reads every run of ids at once, so that a wait given ids it
// cannot follow (mistyped, say) fails at once naming all of them, not only
// the first to answer: it returns nil, or the first error in ids' order
// with the others' messages after it.
func lookUp(ctx context.Context, c runFollower, ids []string) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			if jobs.IsPipelineRunID(id) {
				_, errs[i] = c.GetPipelineRun(ctx, id)
			} else {
				_, errs[i] = c.Get(ctx, id)
			}
		})
	}
	wg.Wait()
	var first error
	var more []string
	for _, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			more = append(more, err.Error())
		}
	}
	if first != nil && len(more) > 0 {
		return fmt.Errorf("%w; %s", first, strings.Join(more, "; "))
	}
	return first
}

// follow follows one run or pipeline run to its end.
func follow(ctx context.Context, c runFollower, id string, seen func(jobs.Status)) (*endedRun, error) {
	if jobs.IsPipelineRunID(id) {
		pr, err := c.WatchPipelineRun(ctx, id, func(pr *jobs.PipelineRun) { seen(pr.Status) })
		if err != nil {
			return nil, err
		}
		return &endedRun{id: id, pipelineRun: pr}, nil
	}
	r, err := c.WaitFunc(ctx, id, func(ev jobs.Event) { seen(ev.Status) })
	if err != nil {
		return nil, err
	}
	return &endedRun{id: id, run: r}, nil
}

// stoppedWaiting is wait's error when a signal (cause) ended it before
// the runs did: "stopped waiting (terminated); the runs go on". It wraps
// cause, for exitCode to tell an interrupt (130).
type stoppedWaiting struct{ cause error }

func (e *stoppedWaiting) Error() string {
	return "stopped waiting (" + signalName(e.cause) + "); the runs go on"
}

func (e *stoppedWaiting) Unwrap() error { return e.cause }

// signalName is the signal of signal.NotifyContext's cause, as it names
// it ("interrupt", "terminated"), or the cause as it is.
func signalName(cause error) string {
	if cause == nil {
		return "interrupted"
	}
	return strings.TrimSuffix(cause.Error(), " signal received")
}
