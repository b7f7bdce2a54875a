package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/rs/zerolog"
)

// Store reads and writes pipeline runs and reads the runs of their stages.
type Store interface {
	GetPipelineRun(ctx context.Context, id string) (*jobs.PipelineRun, error)
	UpdatePipelineRun(ctx context.Context, id string, fn func(*jobs.PipelineRun) bool) (*jobs.PipelineRun, error)
	GetRun(ctx context.Context, id string) (*jobs.Run, error)
}

// Runner creates and stops runs. Submit must return the existing run for
// an idempotency key it has seen.
type Runner interface {
	Submit(ctx context.Context, req *jobs.SubmitRequest) (*jobs.Run, error)
	Stop(ctx context.Context, id, reason string) (*jobs.Run, error)
}

// Publisher tells followers that a pipeline run changed. It must not block.
type Publisher interface {
	PublishPipelineRun(pr *jobs.PipelineRun)
}

// DAG advances pipeline runs. It is safe for concurrent use: advances of
// all pipeline runs are serialized, which keeps a stop and an advance from
// writing over each other.
type DAG struct {
	store  Store
	runner Runner
	pub    Publisher
	cfg    config

	mu sync.Mutex
	// failed holds the pipeline runs whose last advance failed (a store
	// error, say), for Retry: when nothing else happens to them (no stage
	// run left to send an event) no other advance would come.
	failed map[string]struct{}
	// wants are the outputs that stages sized by one wait for, to be read
	// by RunDecisions (arraysize.go), which wake tells of one.
	wants map[decisionKey]*decision
	wake  chan struct{}
	// held: no stage starts (Hold).
	held atomic.Bool
}

type config struct {
	log     zerolog.Logger
	now     func() time.Time
	outcome func(Outcome, int) // cron.go; never nil
	outputs Outputs            // nil: a stage sized by an output fails
}

// Outputs reads the outputs.env lines stages wrote (the queue's object
// store), for the stages whose arraySize or when reads one.
type Outputs interface {
	// StageOutputs returns every key set in the outputs.env files that
	// the given runs of a stage stored, joined in the runs' order (the
	// last line setting a key wins); a key no run set is absent. A read
	// costs two objects a run, so a decision reads each stage once for
	// all the keys it wants. An error whose jobs.ErrorCode is
	// invalid_argument is the file's (a line that is no KEY=VALUE); any
	// other is the store's, worth trying again.
	StageOutputs(ctx context.Context, pipelineRun, stage string, runIDs []string) (map[string]string, error)
}

// WithOutputs lets the DAG read stage outputs, for arraySize: {fromOutput}.
func WithOutputs(o Outputs) Option { return func(c *config) { c.outputs = o } }

// Option configures a DAG or a Cron.
type Option func(*config)

// WithLogger sets the logger.
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

func newConfig(opts []Option) config {
	c := config{log: zerolog.Nop(), now: time.Now, outcome: func(Outcome, int) {}}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// NewDAG returns a DAG over a store, a runner and a publisher.
func NewDAG(store Store, runner Runner, pub Publisher, opts ...Option) *DAG {
	return &DAG{store: store, runner: runner, pub: pub, cfg: newConfig(opts), failed: map[string]struct{}{},
		wants: map[decisionKey]*decision{}, wake: make(chan struct{}, 1)}
}

// NewPipelineRun returns a pipeline run of p, every stage PENDING, ready to
// be stored and advanced.
func NewPipelineRun(p *jobs.Pipeline, id string, params jobs.Params, now time.Time) *jobs.PipelineRun {
	pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: p.Name, Version: p.Version, Status: jobs.StatusRunning,
		Parameters: params, Trigger: "manual", TimeoutSeconds: p.TimeoutSeconds, CreatedAt: now.UTC(), Spec: *p}
	for _, st := range p.Stages {
		pr.Stages = append(pr.Stages, jobs.StageState{Name: st.Name, Status: jobs.StatusPending, Runs: []jobs.StageRun{}})
	}
	return pr
}

// Hold stops the DAG starting stages, for good: a server that begins to
// shut down starts no work its workers, draining, would not take. The
// advances go on recording how the stages' runs stand, ending stages,
// skipping those that can no longer run, stopping and ending pipeline
// runs; a stage that could start stays PENDING, and a pipeline run that
// never started stays unstarted, its timeout not counting. Advance, at
// the next start (every active run is advanced then), starts them.
func (d *DAG) Hold() { d.held.Store(true) }

// RunChanged is called with every run whose status changed; runs of
// pipeline stages advance their pipeline run. Called with the context an
// advance gave the server (a stop it makes fails a waiting run, say), it
// returns at once, and the run is advanced once that advance is over
// (lock.go).
func (d *DAG) RunChanged(ctx context.Context, r *jobs.Run) {
	if r.Spec.Stage == nil || d.noteHeld(ctx, r) {
		return
	}
	ctx, unlock := d.lock(ctx)
	_, err := d.advance(ctx, r.Spec.Stage.PipelineRunID, r)
	unlock()
	if err != nil {
		d.cfg.log.Error().Err(err).Str("pipelineRun", r.Spec.Stage.PipelineRunID).Str("run", r.RunID).Msg("advance pipeline run")
	}
}

// Advance brings a pipeline run up to date with its stages' runs: it
// records how the running stages' runs stand, ends the stages whose runs
// all ended, skips the stages that can no longer run, starts those whose
// dependencies hold and ends the pipeline run when every stage has ended.
// Calling it again changes nothing; after a crash it picks up where the
// stored state is.
func (d *DAG) Advance(ctx context.Context, id string) (*jobs.PipelineRun, error) {
	ctx, unlock := d.lock(ctx)
	defer unlock()
	return d.advance(ctx, id, nil)
}

// Retry advances again the pipeline runs whose last advance failed, and
// returns how many still fail. Call it from time to time.
func (d *DAG) Retry(ctx context.Context) int {
	ctx, unlock := d.lock(ctx)
	defer unlock()
	for id := range d.failed {
		if ctx.Err() != nil {
			break
		}
		if _, err := d.advance(ctx, id, nil); err != nil {
			d.cfg.log.Warn().Err(err).Str("pipelineRun", id).Msg("advance pipeline run again")
		}
	}
	return len(d.failed)
}

// advance is Advance knowing that only the run changed (nil: any may have),
// so that an event of one child of a large array reads one run, not all.
// A failure is noted for Retry.
func (d *DAG) advance(ctx context.Context, id string, changedRun *jobs.Run) (*jobs.PipelineRun, error) {
	pr, err := d.advanceOnce(ctx, id, changedRun)
	switch {
	case err == nil:
		delete(d.failed, id)
	case errors.Is(err, jobs.ErrNotFound):
		delete(d.failed, id) // no such pipeline run: nothing to retry
	default:
		d.failed[id] = struct{}{}
	}
	return pr, err
}

func (d *DAG) advanceOnce(ctx context.Context, id string, changedRun *jobs.Run) (*jobs.PipelineRun, error) {
	pr, err := d.store.GetPipelineRun(ctx, id)
	if err != nil {
		return nil, err
	}
	// A PENDING run (waiting for its turn: a backfill's maxParallel, its
	// pipeline's maxActiveRuns) starts when promoted; stopped, it ends
	// CANCELED without having started.
	if pr.Status.Terminal() {
		// A run its stage stopped as its start failed ended since: told
		// of it, or (changedRun nil) retrying an advance told of it that
		// failed, which read it then.
		return pr, d.recordEndedRun(ctx, pr, changedRun)
	}
	if pr.Status == jobs.StatusPending && !pr.StopRequested {
		return pr, nil
	}
	held := d.held.Load()
	if held && pr.StartedAt == nil && !pr.StopRequested {
		// Created as the server stops: it starts, and its clock with
		// it, at the next start.
		return pr, nil
	}
	now := d.cfg.now().UTC()
	changed := false
	if pr.StartedAt == nil && pr.Status != jobs.StatusPending {
		pr.StartedAt, changed = &now, true
	}
	for i := range pr.Stages {
		c, err := d.refreshStage(ctx, pr, &pr.Stages[i], now, changedRun)
		if err != nil {
			return nil, err
		}
		changed = changed || c
		if !c {
			// An ended stage whose runs had not all ended (its start
			// failed) follows them.
			recorded, err := d.recordEnded(ctx, pr, &pr.Stages[i], changedRun)
			if err != nil {
				return nil, err
			}
			changed = changed || len(recorded) > 0
		}
	}
	if pr.StopRequested {
		// A stage that could never run is SKIPPED, as without the stop:
		// there was nothing of it to stop, and a stop that comes after
		// the last stage ended (before its advance) leaves the run to end
		// as its stages did. The others no longer start.
		for {
			status, runless := stoppedStatuses(pr), pr.Runless()
			_, skip := pr.Spec.Next(status, runless)
			if len(skip) == 0 {
				break
			}
			changed = true
			skipStages(pr, skip, status, runless, now)
		}
		reason := "pipeline run stopped"
		if pr.StopCode == jobs.StopTimeout {
			reason = "pipeline run timed out"
		}
		for i := range pr.Stages {
			if st := &pr.Stages[i]; st.Status == jobs.StatusPending {
				st.Status, st.Reason, st.FinishedAt, changed = jobs.StatusCanceled, reason, &now, true
			}
		}
	}
	var deciding map[string]bool // stages whose size is being read: they stay PENDING
	heldLogged := false
	for !pr.StopRequested {
		status, runless := pr.StageStatuses(), pr.Runless()
		start, skip := pr.Spec.Next(status, runless)
		if deciding != nil {
			start = slices.DeleteFunc(start, func(name string) bool { return deciding[name] })
		}
		if held && len(start) > 0 {
			if !heldLogged {
				d.cfg.log.Info().Str("pipelineRun", id).Strs("stages", start).
					Msg("shutting down: stages ready to start are left for the next start")
				heldLogged = true
			}
			start = nil
		}
		if len(start)+len(skip) == 0 {
			break
		}
		changed = changed || len(skip) > 0
		skipStages(pr, skip, status, runless, now)
		for _, name := range start {
			waits, err := d.start(ctx, pr, name, now)
			if err != nil {
				return nil, err
			}
			if waits {
				if deciding == nil {
					deciding = map[string]bool{}
				}
				deciding[name] = true
				continue
			}
			changed = true
			// Runs submitted again (an advance whose store failed after
			// it submitted them) may have ended already, and no event of
			// theirs will come: end the stage now if so.
			if st := pr.StageState(name); st.Status == jobs.StatusRunning && runsEnded(st.Runs) {
				if _, err := d.refreshStage(ctx, pr, st, now, nil); err != nil {
					return nil, err
				}
			}
		}
	}
	if s, stopped, done := outcome(pr); done {
		// A run stopped while it waited PENDING waits no more: its
		// reason would tell of a place it no longer wants.
		pr.Status, pr.StatusReason, pr.FinishedAt, changed = s, "", &now, true
		if pr.StopRequested && !stopped {
			// The stop came too late to stop anything: the run ended as
			// its stages did, in time.
			pr.StoppedReason, pr.StopCode = "", ""
		}
	}
	if !changed {
		return pr, nil
	}
	stored, err := d.store.UpdatePipelineRun(ctx, id, func(p *jobs.PipelineRun) bool {
		*p = *pr
		return true
	})
	if err != nil {
		return nil, err
	}
	d.pub.PublishPipelineRun(stored)
	if stored.Status.Terminal() {
		d.cfg.log.Info().Str("pipelineRun", id).Str("status", string(stored.Status)).Msg("pipeline run ended")
	}
	return stored, nil
}

// refresh copies the state of a running stage's runs into it and ends the
// stage once they all ended. skip is the stage's skipOnExitCode: a run
// that failed with one of those codes skipped itself. The stage FAILS if
// any run failed otherwise, is CANCELED if any was canceled, is SKIPPED
// if every run skipped itself, and SUCCEEDED otherwise: the children of
// an array that found nothing to do do not hold back those that did work,
// as skipped mapped tasks in Airflow do not fail theirs.
func (d *DAG) refresh(ctx context.Context, st *jobs.StageState, skip []int, now time.Time, only *jobs.Run) (bool, error) {
	if st.Status != jobs.StatusRunning {
		return false, nil
	}
	changed := false
	ended, failed, canceled := 0, 0, 0
	var skipped []int // the exit codes of the runs that skipped themselves
	for j := range st.Runs {
		ref := &st.Runs[j]
		r, recorded := only, false
		switch {
		case only == nil:
			var err error
			if r, err = d.store.GetRun(ctx, ref.RunID); err != nil {
				return false, fmt.Errorf("stage %s: %w", st.Name, err)
			}
		case ref.RunID != only.RunID:
			// As last recorded.
			r, recorded = &jobs.Run{Status: ref.Status, ExitCode: ref.ExitCode, Attempts: make([]jobs.Attempt, ref.Attempts),
				StoppedReason: ref.StoppedReason}, true
		}
		if !recorded && record(ref, r, skip) {
			changed = true
		}
		if r.Status.Terminal() {
			ended++
			switch {
			case ref.Skipped:
				skipped = append(skipped, *r.ExitCode)
			case r.Status == jobs.StatusFailed:
				failed++
			case r.Status == jobs.StatusCanceled:
				canceled++
			}
		}
	}
	if ended < len(st.Runs) {
		return changed, nil
	}
	st.FinishedAt = &now
	switch {
	case failed > 0:
		st.Status = jobs.StatusFailed
		st.Reason = fmt.Sprintf("%d of %d runs failed", failed, len(st.Runs))
	case canceled > 0:
		st.Status = jobs.StatusCanceled
		st.Reason = fmt.Sprintf("%d of %d runs canceled", canceled, len(st.Runs))
	case len(skipped) == len(st.Runs):
		st.Status = jobs.StatusSkipped
		st.Reason = jobs.SkipReason(len(skipped), len(st.Runs), skipped)
	default:
		st.Status = jobs.StatusSucceeded
		if len(skipped) > 0 {
			st.Reason = jobs.SkipReason(len(skipped), len(st.Runs), skipped)
		}
	}
	return true, nil
}

// record copies into ref how its run r stands, skip being its stage's
// skipOnExitCode, and reports whether ref changed.
func record(ref *jobs.StageRun, r *jobs.Run, skip []int) bool {
	_, skips := r.SkipCode(skip)
	if ref.Status == r.Status && ref.Attempts == len(r.Attempts) && sameCode(ref.ExitCode, r.ExitCode) &&
		ref.StoppedReason == r.StoppedReason && ref.Skipped == skips {
		return false
	}
	ref.Status, ref.Attempts, ref.ExitCode, ref.StoppedReason, ref.Skipped = r.Status, len(r.Attempts), r.ExitCode,
		r.StoppedReason, skips
	return true
}

// recordEnded brings up to date the records of the runs of an ended stage
// that had not ended when it did: those a stage whose start failed
// stopped, which a worker held and ends later. The stage's own status
// stays. only, if not nil, is the one run that changed; otherwise each
// run not ended is read (a run deleted since keeps its record). It
// returns the runs whose records changed, as it read them.
func (d *DAG) recordEnded(ctx context.Context, pr *jobs.PipelineRun, st *jobs.StageState, only *jobs.Run) ([]*jobs.Run, error) {
	if !jobs.StageEnded(st.Status) {
		return nil, nil
	}
	var changed []*jobs.Run
	for j := range st.Runs {
		ref := &st.Runs[j]
		if ref.Status.Terminal() || only != nil && ref.RunID != only.RunID {
			continue
		}
		r := only
		if r == nil {
			var err error
			switch r, err = d.store.GetRun(ctx, ref.RunID); {
			case errors.Is(err, jobs.ErrNotFound):
				continue
			case err != nil:
				return nil, fmt.Errorf("stage %s: %w", st.Name, err)
			}
		}
		if record(ref, r, skipCodes(pr, st.Name)) {
			changed = append(changed, r)
		}
	}
	return changed, nil
}

// recordEndedRun is recordEnded for a pipeline run that ended, told that
// r changed, or, r nil, reading every run not ended (Retry, after a
// failed advance told of one): the records are stored, and no one told,
// as the pipeline run and its stages stand as they did.
func (d *DAG) recordEndedRun(ctx context.Context, pr *jobs.PipelineRun, r *jobs.Run) error {
	read := map[string]*jobs.Run{} // by run id, those whose records changed
	for i := range pr.Stages {
		st := &pr.Stages[i]
		if r != nil && st.Name != r.Spec.Stage.Stage {
			continue
		}
		changed, err := d.recordEnded(ctx, pr, st, r)
		if err != nil {
			return err
		}
		for _, c := range changed {
			read[c.RunID] = c
		}
	}
	if len(read) == 0 {
		return nil
	}
	_, err := d.store.UpdatePipelineRun(ctx, pr.PipelineRunID, func(p *jobs.PipelineRun) bool {
		if !p.Status.Terminal() {
			return false // retried since: its advance records them
		}
		changed := false
		for i := range p.Stages {
			pst := &p.Stages[i]
			for j := range pst.Runs {
				if c, ok := read[pst.Runs[j].RunID]; ok {
					changed = record(&pst.Runs[j], c, skipCodes(p, pst.Name)) || changed
				}
			}
		}
		return changed
	})
	return err
}

// refreshStage is refresh of a stage of pr, whose children, if they
// waited for others, are then told apart: those that did not run from
// those that failed (orderedOutcome, arrayorder.go).
func (d *DAG) refreshStage(ctx context.Context, pr *jobs.PipelineRun, st *jobs.StageState, now time.Time, only *jobs.Run) (bool, error) {
	prev := *st
	changed, err := d.refresh(ctx, st, skipCodes(pr, st.Name), now, only)
	if err != nil || !jobs.StageEnded(st.Status) || prev.Status != jobs.StatusRunning {
		return changed, err
	}
	if err := d.orderedOutcome(ctx, pr, st, now); err != nil {
		*st = prev // still RUNNING: the next advance ends it
		return false, err
	}
	return changed, nil
}

// skipCodes is the skipOnExitCode of the named stage of pr's spec.
func skipCodes(pr *jobs.PipelineRun, name string) []int {
	if spec := pr.Spec.Stage(name); spec != nil {
		return spec.SkipOnExitCode
	}
	return nil
}

// runsEnded reports whether every run of a stage, as submitted, had ended.
func runsEnded(runs []jobs.StageRun) bool {
	for _, r := range runs {
		if !r.Status.Terminal() {
			return false
		}
	}
	return len(runs) > 0
}

func sameCode(a, b *int) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// skipStages records that the stages named can never run, status and
// runless being what Next decided it from.
func skipStages(pr *jobs.PipelineRun, names []string, status map[string]jobs.Status, runless map[string]int, now time.Time) {
	for _, name := range names {
		st := pr.StageState(name)
		st.Status, st.FinishedAt = jobs.StatusSkipped, &now
		st.Reason = pr.Spec.SkipReason(name, status, runless)
	}
}

// stoppedStatuses are the statuses of a stopped run's stages as Next
// should see them to find the stages that could never have run: the
// stages the stop canceled count as not ended, for what would have
// followed them is canceled with them, not skipped.
func stoppedStatuses(pr *jobs.PipelineRun) map[string]jobs.Status {
	m := pr.StageStatuses()
	for name, s := range m {
		if s == jobs.StatusCanceled {
			m[name] = jobs.StatusRunning
		}
	}
	return m
}

// start submits the runs of a stage. A stage that cannot be submitted (an
// unknown task definition, say) fails with the reason; a store or queue
// error is returned and the next advance tries again, the idempotency keys
// making sure no run is created twice. It reports waits, changing
// nothing, for a stage sized by an output not read yet (arraysize.go), or
// whose when reads one (when.go); a stage whose when does not hold ends
// SKIPPED.
func (d *DAG) start(ctx context.Context, pr *jobs.PipelineRun, name string, now time.Time) (waits bool, err error) {
	st := pr.StageState(name)
	spec := pr.Spec.Stage(name)
	switch held, err := d.when(ctx, pr, spec, st, now); { // when.go
	case err != nil:
		return false, err
	case held == whenDeciding: // its outputs are being read: it waits PENDING
		return true, nil
	case held == whenEnded: // skipped, or failed to decide: st says why
		return false, nil
	}
	size, err := d.arraySize(ctx, pr, spec, st, now) // arraysize.go
	if err != nil {
		return false, err
	}
	switch {
	case size == sizeDeciding: // its output is being read: it waits PENDING
		return true, nil
	case size < 0: // the stage failed to decide its size: st says why
		return false, nil
	case size == 0 && spec.ArraySize.Dynamic():
		st.Status, st.StartedAt, st.FinishedAt, st.Runs = jobs.StatusSkipped, &now, &now, []jobs.StageRun{}
		st.Reason = fmt.Sprintf("arraySize from %s is 0: nothing to run", spec.ArraySize.From)
		return false, nil
	case checkNToN(pr, spec, st, size, now): // arrayorder.go: skipped or failed, st says why
		return false, nil
	}
	n := max(size, 1)
	runs := make([]jobs.StageRun, 0, n)
	for i := range n {
		var idx *int
		if spec.ArraySize.Array() {
			idx = &i
		}
		req, err := StageRequest(pr, spec, idx)
		if err == nil && idx != nil && spec.OrdersChildren() {
			// It waits for the children it needs (arrayorder.go).
			req.DependsOn, err = childDependsOn(pr, spec, i, runs)
		}
		if err == nil {
			var r *jobs.Run
			r, err = d.runner.Submit(ctx, req)
			if err == nil {
				runs = append(runs, jobs.StageRun{RunID: r.RunID, ArrayIndex: idx, Status: r.Status, Attempts: len(r.Attempts),
					StoppedReason: r.StoppedReason})
				continue
			}
		}
		if jobs.ErrorCode(err) == jobs.CodeInternal || jobs.ErrorCode(err) == jobs.CodeUnavailable {
			return false, fmt.Errorf("stage %s: submit: %w", name, err)
		}
		// The stage cannot run: stop what it started and fail it,
		// recording how its runs stand after the stop (CANCELED, or
		// still running until their worker stops them: recordEnded
		// follows them). Last first: a child waiting for the one before
		// it (arrayorder.go) is stopped before that one, so that it ends
		// CANCELED, as stopped, rather than FAILED by its dependency's
		// stop.
		for j := range slices.Backward(runs) {
			ref := &runs[j]
			r, serr := d.runner.Stop(ctx, ref.RunID, "another run of the stage could not be submitted")
			if serr != nil {
				d.cfg.log.Warn().Err(serr).Str("run", ref.RunID).Msg("stop stage run")
				continue
			}
			record(ref, r, spec.SkipOnExitCode)
		}
		st.Status, st.Reason, st.StartedAt, st.FinishedAt, st.Runs = jobs.StatusFailed, err.Error(), &now, &now, runs
		return false, nil
	}
	st.Status, st.StartedAt, st.Runs = jobs.StatusRunning, &now, runs
	return false, nil
}

// StageRequest builds the submission of one run of a stage: parameters
// substituted (into a registered task definition by the server, which
// reads it: Stage.Parameters), the GANTRY_* variables of pipelines added
// to every container, an idempotency key derived from (pipeline run,
// stage, try after the first, index), and the runs whose files it reads:
// those of the dependencies that have ended (child i's of an N_TO_N one).
func StageRequest(pr *jobs.PipelineRun, st *jobs.Stage, idx *int) (*jobs.SubmitRequest, error) {
	req := &jobs.SubmitRequest{TaskDefinition: st.TaskDefinition, Cluster: st.Cluster,
		TimeoutSeconds: st.TimeoutSeconds, RetryStrategy: st.RetryStrategy, Priority: pr.StagePriority(st),
		Tags:           jobs.TagsOf(pr.StageTags(st)),
		PropagateTags:  pr.StagePropagateTags(st),
		Pool:           st.Pool,
		Constraints:    pr.StageConstraints(st),
		Overrides:      jobs.SubstituteOverrides(st.Overrides, pr.Parameters),
		IdempotencyKey: stageKey(pr, st.Name),
		Stage: &jobs.StageContext{PipelineRunID: pr.PipelineRunID, Pipeline: pr.Pipeline, Stage: st.Name, ArrayIndex: idx, Upstream: st.Upstream(),
			SkipOnExitCode: st.SkipOnExitCode, Parameters: pr.Parameters}}
	for _, d := range st.DependsOn {
		us := pr.StageState(d.Stage)
		if us == nil {
			continue
		}
		var ids []string
		switch {
		case d.NToN() && idx != nil:
			// Child i reads child i's files only: the others may not
			// have run yet.
			if id := childRun(us.Runs, *idx); id != "" {
				ids = []string{id}
			}
		case jobs.StageEnded(us.Status):
			for _, r := range us.Runs {
				ids = append(ids, r.RunID)
			}
		}
		// A dependency that has not ended (a oneFailed or oneSuccess
		// stage starts without waiting for it) gives no files, rather
		// than those it stored by the time the worker reads them.
		if len(ids) > 0 {
			if req.Stage.UpstreamRuns == nil {
				req.Stage.UpstreamRuns = map[string][]string{}
			}
			req.Stage.UpstreamRuns[d.Stage] = ids
		}
	}
	if _, inline, err := req.StoredTaskRef(); err != nil {
		return nil, err
	} else if inline != nil {
		td := jobs.SubstituteTask(*inline, pr.Parameters)
		raw, err := json.Marshal(td)
		if err != nil {
			return nil, err
		}
		req.TaskDefinition = raw
	}
	env := []jobs.KeyValue{
		{Name: "GANTRY_PIPELINE", Value: pr.Pipeline},
		{Name: "GANTRY_PIPELINE_RUN_ID", Value: pr.PipelineRunID},
		{Name: "GANTRY_STAGE", Value: st.Name},
	}
	if idx != nil {
		i := strconv.Itoa(*idx)
		req.IdempotencyKey += "/" + i
		env = append(env, jobs.KeyValue{Name: "GANTRY_ARRAY_INDEX", Value: i},
			jobs.KeyValue{Name: "AWS_BATCH_JOB_ARRAY_INDEX", Value: i},
			jobs.KeyValue{Name: "GANTRY_ARRAY_SIZE", Value: strconv.Itoa(stageArraySize(pr, st))})
	}
	if pr.ScheduledTime != nil {
		env = append(env, jobs.KeyValue{Name: "GANTRY_SCHEDULED_TIME", Value: pr.ScheduledTime.UTC().Format(time.RFC3339)})
	}
	if pr.TriggeredBy != "" {
		env = append(env, jobs.KeyValue{Name: "GANTRY_TRIGGERED_BY", Value: pr.TriggeredBy})
	}
	if req.Overrides == nil {
		req.Overrides = &jobs.Overrides{}
	}
	// Last, so that a stage's own overrides cannot hide them; a nameless
	// override applies to every container.
	req.Overrides.ContainerOverrides = append(req.Overrides.ContainerOverrides, jobs.ContainerOverride{Environment: env})
	return req, nil
}

// stageArraySize is the number of children of a stage of pr: its fixed
// arraySize, or the size its current try decided.
func stageArraySize(pr *jobs.PipelineRun, st *jobs.Stage) int {
	if !st.ArraySize.Dynamic() {
		return st.ArraySize.N
	}
	if s := pr.StageState(st.Name); s != nil && s.ArraySize != nil {
		return *s.ArraySize
	}
	return 0
}

// stageKey is the idempotency key of a stage's run (an array child's
// adds its index): that of before retries on the first try, so that a
// restart finds the runs submitted then, and one per try after.
func stageKey(pr *jobs.PipelineRun, stage string) string {
	key := "pipeline/" + pr.PipelineRunID + "/" + stage
	if st := pr.StageState(stage); st != nil && st.Try > 1 {
		key += "/try" + strconv.Itoa(st.Try)
	}
	return key
}

// outcome says whether every stage ended and, if so, how the pipeline run
// ends and whether its stop stopped something (a stage was canceled):
// CANCELED if it was stopped and the stop stopped something, but FAILED
// if that stop was its timeout's (as Airflow fails a dag run past its
// dagrun_timeout, so that failure triggers and alerts fire); FAILED if a
// stage failed or was canceled; SUCCEEDED otherwise (skipped stages do not
// fail a run). A stop that came once every stage's runs had ended, before
// the advance that ends the run, leaves the run ending as its stages did.
func outcome(pr *jobs.PipelineRun) (status jobs.Status, stopped, done bool) {
	failed, canceled := false, false
	for _, st := range pr.Stages {
		if !jobs.StageEnded(st.Status) {
			return "", false, false
		}
		failed = failed || st.Status == jobs.StatusFailed || st.Status == jobs.StatusCanceled
		canceled = canceled || st.Status == jobs.StatusCanceled
	}
	stopped = pr.StopRequested && canceled
	switch {
	case stopped && pr.StopCode == jobs.StopTimeout:
		return jobs.StatusFailed, true, true
	case stopped:
		return jobs.StatusCanceled, true, true
	case failed:
		return jobs.StatusFailed, false, true
	}
	return jobs.StatusSucceeded, false, true
}

// Stop stops a pipeline run: no stage starts any more, PENDING stages are
// CANCELED (those that could never run SKIPPED) and every running stage's
// runs are stopped. The run ends CANCELED once they have; a stop that
// finds every stage's runs already ended (their end not advanced yet) has
// nothing to stop, and the run ends as they did (see outcome).
func (d *DAG) Stop(ctx context.Context, id, reason string) (*jobs.PipelineRun, error) {
	if reason == "" {
		reason = "Stopped by user"
	}
	pr, _, err := d.stop(ctx, id, func(p *jobs.PipelineRun) bool {
		p.StopRequested, p.StoppedReason = true, reason
		return true
	})
	return pr, err
}

// TimeOut stops, as Stop does, a pipeline run whose deadline (Deadline)
// has passed at now, saying so (TimeoutReason) with stopCode Timeout: it
// ends FAILED once its running stages' runs have stopped, each with a
// reason naming the pipeline run that timed out. It reports false, and
// changes nothing, when the run as stored has not timed out: ended or
// stopped already, retried since (its clock restarted), or not due yet.
func (d *DAG) TimeOut(ctx context.Context, id string, now time.Time) (*jobs.PipelineRun, bool, error) {
	return d.stop(ctx, id, func(p *jobs.PipelineRun) bool {
		if !p.TimedOut(now) {
			return false
		}
		p.StopRequested, p.StoppedReason, p.StopCode = true, p.TimeoutReason(), jobs.StopTimeout
		return true
	})
}

// stop marks a pipeline run stopped with mark, unless it ended or was
// stopped already or mark returns false (leaving it alone); then it stops
// the running stages' runs and advances the run.
func (d *DAG) stop(ctx context.Context, id string, mark func(*jobs.PipelineRun) bool) (*jobs.PipelineRun, bool, error) {
	// The lock covers the flag only: stopping a run may advance this
	// pipeline run again, and once the flag is set no advance starts a stage.
	marked := false
	d.mu.Lock()
	pr, err := d.store.UpdatePipelineRun(ctx, id, func(p *jobs.PipelineRun) bool {
		if p.Status.Terminal() || p.StopRequested {
			return false
		}
		marked = mark(p)
		return marked
	})
	d.mu.Unlock()
	if err != nil {
		return nil, false, err
	}
	if pr.Status.Terminal() || !marked {
		return pr, marked, nil
	}
	d.StopStageRuns(ctx, pr)
	pr, err = d.Advance(ctx, id)
	return pr, true, err
}

// StopStageRuns stops the runs of the running stages of a pipeline run
// marked stopped (StopRequested), giving each the reason stageStopReason
// says; a run that ended already is left as it is. The server calls it
// again at start for the runs a crash may have left marked but not
// stopped: stopping a run twice is harmless.
//
// It stops those that wait for others first: the stages last in DAG
// order first, each stage's children last index first. A child waits
// for the one before it (arrayOrder: sequential) or for its pair in an
// upstream stage (N_TO_N), and the stop of the one it waits for, were it
// first, would reach it as a dependency CANCELED and fail it
// (TaskFailedToStart) before its own stop came; stopped first, it ends
// CANCELED with the stop's reason, as the user asked.
func (d *DAG) StopStageRuns(ctx context.Context, pr *jobs.PipelineRun) {
	if !pr.StopRequested || pr.Status.Terminal() {
		return
	}
	reason := stageStopReason(pr)
	for _, st := range slices.Backward(pr.StagesInOrder()) {
		if st.Status != jobs.StatusRunning {
			continue
		}
		for _, r := range slices.Backward(st.Runs) {
			if r.Status.Terminal() {
				continue
			}
			if _, err := d.runner.Stop(ctx, r.RunID, reason); err != nil {
				d.cfg.log.Warn().Err(err).Str("run", r.RunID).Msg("stop stage run")
			}
		}
	}
}

// stageStopReason is the stoppedReason of the stage runs a stop of pr
// stops: the stop's own, or, for a timeout, one that names the pipeline
// run, as a stage run's reason is read on its own (gantry describe RUN).
func stageStopReason(pr *jobs.PipelineRun) string {
	if pr.StopCode == jobs.StopTimeout {
		return fmt.Sprintf("pipeline run %s timed out after %s (timeoutSeconds %d)", pr.PipelineRunID,
			time.Duration(pr.TimeoutSeconds)*time.Second, pr.TimeoutSeconds)
	}
	return pr.StoppedReason
}
