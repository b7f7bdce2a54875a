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
	// run of a stage, replacing what an earlier attempt stored.
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
	if later := w.supersededBy(ctx, runID, st.attempt); later > 0 {
		// This worker was thought lost and the run's job runs again as a
		// later attempt, which stores the outputs the downstream stages
		// read; this attempt's end is stored too late to count. Storing
		// its files would replace the later attempt's under the same
		// names.
		w.cfg.log.Warn().Str("run", runID).Int("attempt", st.attempt).Int("current", later).
			Msg("a later attempt of the run took over while this one ran; its /gantry/out is not stored")
		return ev
	}
	if err := w.cfg.stager.Put(ctx, st.sc.PipelineRunID, st.sc.Stage, runID, st.attempt, filepath.Join(st.dir, "out")); err != nil {
		ev.Status, ev.StopCode = jobs.StatusFailed, jobs.StopEssentialExited
		ev.StoppedReason = "the task succeeded but its /gantry/out could not be stored: " + err.Error()
	}
	return ev
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
