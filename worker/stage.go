package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Stager moves the files of pipeline stages between hosts (the queue's
// object store).
type Stager interface {
	// Get writes into dir the files the given runs of a stage stored.
	Get(ctx context.Context, pipelineRun, stage string, runIDs []string, dir string) error
	// Put stores the files under dir as the outputs of one attempt of a
	// run of a stage, replacing what an earlier attempt stored. An error
	// with a Transient method that returns true may pass on its own (NATS
	// restarting): the worker calls Put again.
	Put(ctx context.Context, pipelineRun, stage, runID string, attempt int, dir string) error
}

// WithStager makes the worker give pipeline stages /gantry/in and
// /gantry/out, staged through s in directories under dir (the system's
// temporary directory when empty). The Docker daemon must see dir at the
// same path: it runs on the worker's host.
func WithStager(s Stager, dir string) Option {
	return func(c *config) { c.stager, c.stageDir = s, dir }
}

// Bind mounts a host directory into every container of a task.
type Bind struct {
	HostPath, ContainerPath string
	ReadOnly                bool
}

// Spec is the bind in Docker's "src:dst:mode" form.
func (b Bind) Spec() string {
	mode := "rw"
	if b.ReadOnly {
		mode = "ro"
	}
	return b.HostPath + ":" + b.ContainerPath + ":" + mode
}

// Container paths of staged data.
const (
	StageInPath  = "/gantry/in"
	StageOutPath = "/gantry/out"
	// OutputsFile in /gantry/out holds KEY=VALUE lines that downstream
	// stages see as <STAGE>_<KEY>.
	OutputsFile = jobs.StageOutputsFile
)

// staged is the data directory of one attempt of a stage.
type staged struct {
	dir     string
	sc      *jobs.StageContext
	attempt int
}

// stageIn creates /gantry/in/<upstream>/ with the upstream stages' files
// and an empty /gantry/out, binds both into the task and adds the
// upstream outputs.env values to its environment. Nothing is staged for a
// run outside a pipeline or on a worker without a stager.
func (w *Worker) stageIn(ctx context.Context, job jobs.Job, task *Task) (*staged, error) {
	sc := job.Spec.Stage
	if sc == nil || w.cfg.stager == nil {
		return nil, nil
	}
	base := w.stageBase()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("stage data: %w", err)
	}
	dir, err := os.MkdirTemp(base, fmt.Sprintf("%s-%d-", job.RunID, job.Attempt))
	if err != nil {
		return nil, fmt.Errorf("stage data: %w", err)
	}
	st := &staged{dir: dir, sc: sc, attempt: job.Attempt}
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	for _, d := range []string{in, out} {
		if err := os.Mkdir(d, 0o777); err != nil {
			st.remove()
			return nil, fmt.Errorf("stage data: %w", err)
		}
		// Containers may run as any user: let them write.
		_ = os.Chmod(d, 0o777)
	}
	for _, up := range sc.Upstream {
		upDir := filepath.Join(in, up)
		if err := os.Mkdir(upDir, 0o755); err != nil {
			st.remove()
			return nil, fmt.Errorf("stage data: %w", err)
		}
		if err := w.getStaged(ctx, sc, up, upDir); err != nil {
			st.remove()
			return nil, fmt.Errorf("stage inputs from %s: %w", up, err)
		}
		env, err := readOutputs(filepath.Join(upDir, OutputsFile))
		if err != nil {
			st.remove()
			return nil, fmt.Errorf("stage inputs from %s: %s: %w", up, OutputsFile, err)
		}
		for _, kv := range env {
			task.Env = append(task.Env, jobs.KeyValue{Name: jobs.EnvName(up, kv.Name), Value: kv.Value})
		}
	}
	task.Binds = append(task.Binds,
		Bind{HostPath: in, ContainerPath: StageInPath, ReadOnly: true},
		Bind{HostPath: out, ContainerPath: StageOutPath})
	return st, nil
}

// stageGetRetryFor bounds how long the worker tries again to read an
// upstream stage's files whose read timed out.
const stageGetRetryFor = time.Minute

// getStaged writes the files of upstream stage up into upDir, trying
// again while a read times out (NATS restarting, its JetStream leader
// being elected): a NATS server that was down for a second, as the
// object store's reads waited, failed the attempt as TaskFailedToStart,
// and with it the pipeline run. Each try starts from an empty upDir.
// Other errors (a clash of files, a manifest that is no list) fail at
// once.
func (w *Worker) getStaged(ctx context.Context, sc *jobs.StageContext, up, upDir string) error {
	until := time.Now().Add(stageGetRetryFor)
	wait := 250 * time.Millisecond
	for {
		err := w.cfg.stager.Get(ctx, sc.PipelineRunID, up, sc.UpstreamRuns[up], upDir)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || time.Now().After(until) {
			return err
		}
		w.cfg.log.Warn().Err(err).Str("stage", up).Msg("reading an upstream stage's files timed out; trying again")
		if err := os.RemoveAll(upDir); err != nil {
			return err
		}
		if err := os.Mkdir(upDir, 0o755); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// stageOut stores /gantry/out after an attempt that succeeded; when that
// fails the attempt fails, since its downstream stages would miss data.
// It removes the attempt's directory in every case.
func (w *Worker) stageOut(ctx context.Context, st *staged, runID string, ev jobs.Event) jobs.Event {
	if st == nil {
		return ev
	}
	// Removing a directory that was mounted into a container took up to
	// 10 ms here; the next stage waits for this attempt's end, not for that.
	defer w.bg.Go(st.remove)
	if ev.Status != jobs.StatusSucceeded {
		return ev
	}
	err := w.putStaged(ctx, st, runID)
	var late *supersededError
	switch {
	case errors.As(err, &late):
		// This worker was thought lost and the run's job runs again as a
		// later attempt, which stores the outputs the downstream stages
		// read; this attempt's end is stored too late to count. Storing
		// its files would replace the later attempt's under the same
		// names.
		w.cfg.log.Warn().Str("run", runID).Int("attempt", st.attempt).Int("current", late.attempt).
			Msg("a later attempt of the run took over while this one ran; its /gantry/out is not stored")
	case err != nil:
		ev.Status, ev.StopCode = jobs.StatusFailed, jobs.StopEssentialExited
		ev.StoppedReason = "the task succeeded but its /gantry/out could not be stored: " + err.Error()
	}
	return ev
}

// stagePutRetryFor bounds how long the worker tries again to store a
// stage's outputs while NATS is unavailable, on top of the time their
// size may take to store at minStoreRate.
const stagePutRetryFor = time.Minute

// minStoreRate is the slowest the worker expects a stage's outputs to be
// stored: a try that failed late, after storing most of a large output,
// still leaves time for another whole one (a GiB stored here in about
// 10 s, at 1 MiB/s given 17 minutes).
const minStoreRate = 1 << 20 // bytes a second

// supersededError is a later attempt of the run that took over from this
// one (its claim names it) before this one's outputs were stored.
type supersededError struct{ attempt int }

func (e *supersededError) Error() string {
	return fmt.Sprintf("attempt %d of the run took over", e.attempt)
}

// putStaged stores the attempt's /gantry/out, trying again while the
// Stager says a failure may pass (Transient: NATS restarting, a JetStream
// leader election), with backoff, for up to stagePutRetryFor plus the
// time the outputs take at minStoreRate: a stage that ran for an hour and
// succeeded was failed because NATS restarted while its files were
// stored. A Put replaces what an earlier try stored. Before each try it
// checks that no later attempt of the run took over (a
// *supersededError): a try must not replace that attempt's files.
// Other errors (a file that cannot be read, a bucket that is full) fail
// at once.
func (w *Worker) putStaged(ctx context.Context, st *staged, runID string) error {
	out := filepath.Join(st.dir, "out")
	start := time.Now()
	until := start.Add(stagePutRetryFor + time.Duration(dirSize(out)/minStoreRate)*time.Second)
	wait := 250 * time.Millisecond
	for try := 1; ; try++ {
		if later := w.supersededBy(ctx, runID, st.attempt); later > 0 {
			return &supersededError{later}
		}
		err := w.cfg.stager.Put(ctx, st.sc.PipelineRunID, st.sc.Stage, runID, st.attempt, out)
		switch {
		case err == nil:
			return nil
		case !transient(err) && try > 1:
			return fmt.Errorf("%w (try %d)", err, try)
		case !transient(err):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("%w (stopped trying: %w)", err, context.Cause(ctx))
		case time.Now().After(until):
			return fmt.Errorf("%w (gave up after %d tries over %s)", err, try, time.Since(start).Round(time.Second))
		}
		w.cfg.log.Warn().Err(err).Str("run", runID).Int("attempt", st.attempt).Int("try", try).Dur("wait", wait).
			Msg("storing the stage's /gantry/out failed while NATS was unavailable; trying again")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped trying: %w)", err, context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(2*wait, 4*time.Second)
	}
}

// transient reports whether the Stager says that err may pass on its own
// (it has a Transient method returning true).
func transient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

// dirSize is the size of the regular files under dir, as far as it can
// tell.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func (st *staged) remove() { _ = os.RemoveAll(st.dir) }

// supersededBy returns the attempt of the run that its claim names when
// that is later than attempt, else 0 (also when the claims cannot tell).
func (w *Worker) supersededBy(ctx context.Context, runID string, attempt int) int {
	if w.cfg.claims == nil {
		return 0
	}
	data, _, err := w.cfg.claims.Claim(ctx, runID)
	if err != nil {
		return 0
	}
	if c, ok := ReadClaim(data); ok && c.Attempt > attempt {
		return c.Attempt
	}
	return 0
}

// stageBase is the directory of this worker's attempt directories: one
// per worker id, so that a worker starting again can remove what its
// earlier life left (Reconcile stopped that life's containers) without
// touching another worker's on the same host.
func (w *Worker) stageBase() string {
	base := w.cfg.stageDir
	if base == "" {
		base = filepath.Join(os.TempDir(), "gantry-stage")
	}
	if filepath.Base(w.id) == w.id && w.id != "." && w.id != ".." && w.id != "" {
		base = filepath.Join(base, w.id)
	}
	return base
}

// sweepStaged removes, in the background, the attempt directories an
// earlier life of this worker left when it was killed. Called once its
// containers are gone and before any new attempt makes a directory.
func (w *Worker) sweepStaged() {
	if w.cfg.stager == nil {
		return
	}
	base := w.stageBase()
	entries, err := os.ReadDir(base)
	if err != nil || len(entries) == 0 {
		return
	}
	w.cfg.log.Info().Int("directories", len(entries)).Str("dir", base).Msg("removing stage data left by an earlier life of this worker")
	w.bg.Go(func() {
		for _, e := range entries {
			_ = os.RemoveAll(filepath.Join(base, e.Name()))
		}
	})
}

// readOutputs parses KEY=VALUE lines (jobs.ParseOutputs: the server
// reads an arraySize by the same rules). A missing file has no values.
func readOutputs(path string) ([]jobs.KeyValue, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jobs.ParseOutputs(f)
}
