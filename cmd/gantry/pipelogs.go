package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// gantry logs pr-<id>: the logs of every run of a pipeline run's stages,
// as `argo logs WORKFLOW` shows a workflow's steps. Each line starts with
// its stage run's label ("extract | ", "transform[2] | ", "load (try 1) | ").
//
// Ended (or without -f), it prints the stages in DAG order, a stage run's
// lines together, the earlier tries of a retried stage before its latest,
// the children of an array by index: what kubectl logs prints of each pod
// in turn. With -f it follows every stage run there is and every one that
// starts, interleaving their lines as they come (kubectl logs -f -l),
// until the pipeline run has ended and every stage run's lines are read.
//
// The stage runs come from pipelines.status, which a submit-only user may
// request too; their lines are read as gantry logs RUN reads them.

// stageLog is one run of a stage to print the logs of.
type stageLog struct {
	label string // what starts its lines: "transform[2] (try 1)"
	runID string
	// queued: the run has not started yet (nor ever had, as a retried
	// run back in the queue has): nothing to read so far.
	queued bool
}

// stageLabel names a stage run as gantry describe pr-... does: the stage,
// its array index in brackets, and "(try N)" for a try of a retried
// stage.
func stageLabel(stage string, idx *int, try int) string {
	label := stage
	if idx != nil {
		label += "[" + strconv.Itoa(*idx) + "]"
	}
	if try > 0 {
		label += fmt.Sprintf(" (try %d)", try)
	}
	return label
}

// stageLogs lists the stage runs of pr whose logs to print, in order:
// stages in DAG order (pr.StagesInOrder), only those named in only if any;
// within a stage its earlier tries first, then its latest; within a try
// its runs by array index. A try is named only where the stage was
// retried, as gantry describe names it.
func stageLogs(pr *jobs.PipelineRun, only []string) []stageLog {
	var out []stageLog
	add := func(stage string, try int, runs []jobs.StageRun) {
		runs = slices.Clone(runs)
		slices.SortStableFunc(runs, func(a, b jobs.StageRun) int {
			if a.ArrayIndex == nil || b.ArrayIndex == nil {
				return 0
			}
			return *a.ArrayIndex - *b.ArrayIndex
		})
		for _, r := range runs {
			out = append(out, stageLog{label: stageLabel(stage, r.ArrayIndex, try), runID: r.RunID,
				queued: r.Status == jobs.StatusQueued && r.Attempts <= 1})
		}
	}
	for _, st := range pr.StagesInOrder() {
		if len(only) > 0 && !slices.Contains(only, st.Name) {
			continue
		}
		for _, t := range st.EarlierTries {
			add(st.Name, t.Try, t.Runs)
		}
		try := 0
		if st.Try > 1 {
			try = st.Try
		}
		add(st.Name, try, st.Runs)
	}
	return out
}

// checkStages refuses stage names pr has not, naming them and the stages
// it has.
func checkStages(pr *jobs.PipelineRun, names []string) error {
	var unknown []string
	for _, n := range names {
		if pr.StageState(n) == nil && !slices.Contains(unknown, strconv.Quote(n)) {
			unknown = append(unknown, strconv.Quote(n))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	var have []string
	for _, st := range pr.StagesInOrder() {
		have = append(have, st.Name)
	}
	what := "no stage"
	if len(unknown) > 1 {
		what = "no stages"
	}
	return fmt.Errorf("--stage: pipeline run %s has %s %s; its stages: %s", pr.PipelineRunID, what,
		strings.Join(unknown, ", "), strings.Join(have, ", "))
}

// pipelineRunStatus reads a pipeline run for its logs: pipelines.status,
// or pipelines.get from a server older than it (whose run has its spec,
// and so its DAG order).
func pipelineRunStatus(ctx context.Context, c *client.Client, id string) (*jobs.PipelineRun, error) {
	pr, err := c.PipelineRunStatus(ctx, id)
	if errors.Is(err, client.ErrNoServer) {
		return c.GetPipelineRun(ctx, id)
	}
	return pr, err
}

// pipelineLogs prints the logs of a pipeline run's stage runs.
type pipelineLogs struct {
	c              *client.Client
	stdout, stderr io.Writer
	stages         []string // --stage: empty for every stage
	noPrefix       bool
	timestamps     bool
	tail           int       // -1: all
	since          time.Time // zero: all

	mu sync.Mutex // held while a batch is printed: -f prints from many runs
}

// print prints pr's stage runs' logs (after checking --stage); with
// follow it follows them, and those that start, until pr has ended.
func (p *pipelineLogs) print(ctx context.Context, pr *jobs.PipelineRun, follow bool) error {
	if err := checkStages(pr, p.stages); err != nil {
		return err
	}
	if !follow {
		list := stageLogs(pr, p.stages)
		if len(list) == 0 {
			fmt.Fprintf(p.stderr, "gantry: pipeline run %s (%s) has no stage run%s yet\n", pr.PipelineRunID, pr.Status, p.stagesText())
		}
		var silent []stageLog
		for _, sl := range list {
			n, err := p.run(ctx, sl, false, true)
			if err != nil {
				return err
			}
			if n == 0 {
				silent = append(silent, sl)
			}
		}
		// Stages that write nothing are common: why a run has no line is
		// said only when none has, where the output would be empty.
		if len(silent) == len(list) {
			for _, sl := range silent {
				if why := logsExpired(ctx, p.c, sl.runID, client.LogOptions{}, time.Now()); why != "" {
					fmt.Fprintf(p.stderr, "gantry: %s: %s\n", sl.label, why)
				}
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg      sync.WaitGroup
		started = map[string]bool{}
	)
	// A run is followed from its start: following one still queued (an
	// array of thousands waiting for a pool, a stage behind a busy
	// cluster) held its subscriptions, a JetStream consumer and a
	// request every 2 s each, for nothing; the pipeline run's next
	// change shows it started, and its lines are read from the first.
	start := func(pr *jobs.PipelineRun, selective bool) {
		for _, sl := range stageLogs(pr, p.stages) {
			if started[sl.runID] || sl.queued {
				continue
			}
			started[sl.runID] = true
			wg.Go(func() {
				if _, err := p.run(ctx, sl, true, selective); err != nil {
					cancel(err)
				}
			})
		}
	}
	// --tail and --since narrow the stage runs there are now; a run that
	// starts while following is printed from its first line, all of it
	// written since.
	start(pr, true)
	_, err := p.c.WatchPipelineRunStatus(ctx, pr.PipelineRunID, func(pr *jobs.PipelineRun) { start(pr, false) })
	if err != nil {
		cancel(err)
	}
	wg.Wait() // each ends with its run, all ended once the pipeline run has
	if cause := context.Cause(ctx); err != nil || (cause != nil && !errors.Is(cause, context.Canceled)) {
		return cause
	}
	return nil
}

func (p *pipelineLogs) stagesText() string {
	if len(p.stages) == 0 {
		return ""
	}
	return " of stage " + strings.Join(p.stages, ", ")
}

// run prints one stage run's logs, and returns how many batches it read;
// selective applies --tail and --since.
func (p *pipelineLogs) run(ctx context.Context, sl stageLog, follow, selective bool) (int, error) {
	label := sl.label
	if p.noPrefix {
		label = ""
	}
	pr := newLinePrinter(p.stdout, p.stderr, false)
	pr.label, pr.whole, pr.timestamps = label, true, p.timestamps
	drops := newDropWatch(ctx, p.c, pr, p.stderr)
	drops.label = sl.label
	o := client.LogOptions{Follow: follow}
	if selective && (p.tail >= 0 || !p.since.IsZero()) {
		drops.sel = newLogSelect(drops, p.since, p.tail)
		o.CaughtUp = func() error {
			p.mu.Lock()
			defer p.mu.Unlock()
			return drops.sel.caughtUp()
		}
		o.Since = p.since // read from near it, not from the log's start
		if p.tail >= 0 {
			o.Tail = &queue.LogTail{Lines: p.tail, Since: p.since} // the log's end, not all of it
			drops.sel.read = o.Tail
		}
	}
	batches := 0
	err := p.c.Logs(ctx, sl.runID, o, func(b *jobs.LogBatch) error {
		batches++
		p.mu.Lock()
		defer p.mu.Unlock()
		return drops.batch(b)
	})
	if err == nil && o.CaughtUp != nil {
		err = o.CaughtUp()
	}
	if err != nil {
		return batches, fmt.Errorf("%s (run %s): %w", sl.label, sl.runID, err)
	}
	return batches, nil
}
