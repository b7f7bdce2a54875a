package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// A stage sized by an output (arraySize: {fromOutput: stage.KEY}) decides
// its size when it starts, from the outputs.env its upstream stage's runs
// stored in the object store: a read of two objects a run, which for an
// upstream array of thousands of children takes seconds. Advances of every
// pipeline run wait on the DAG's lock, and the server's events are applied
// on the goroutine that advances, so the read is done by RunDecisions, on
// a goroutine of its own, without the lock:
//
//  1. the advance that would start the stage asks for the read (wants)
//     and leaves the stage PENDING, going on with the others;
//  2. RunDecisions reads the output, then, under the lock, keeps what it
//     read beside the ask and advances the pipeline run again;
//  3. that advance takes it (arraySize): it stores the size in the
//     pipeline run before the first child is submitted, or fails the
//     stage naming the output and value, or skips it (0); an error of the
//     object store fails the advance, which Retry does again (asking
//     anew).
//
// Crash safety: nothing of 1 and 2 is stored. A server that dies before
// 3 asks again at its next start (startPipelines advances every active
// run), from the same output; one that dies after the size is stored
// finds it, with the stage still PENDING, and submits the same children,
// which the idempotency keys (stageKey) find if some were submitted.

// decisionKey names a decision of one try of a stage: its size, or its
// when (when.go), which reads outputs the same way.
type decisionKey struct {
	pipelineRun, stage string
	try                int
	what               string // "arraySize" or "when"
}

// decision is a read of outputs asked for by an advance, and what it
// found once done.
type decision struct {
	reads []outputRead
	busy  bool // being read
	done  bool
	// err is the first read's error, of the output errRef names.
	err    error
	errRef jobs.OutputRef
}

// outputRead is one output a decision reads, and its value once read.
type outputRead struct {
	ref    jobs.OutputRef
	runIDs []string // the upstream stage's runs, whose outputs are read
	value  string
	set    bool
}

// want returns the decision of key, asking for it (and waking
// RunDecisions) if no advance did yet: the outputs of refs, each read
// from the runs its stage has in pr. Called under d.mu.
func (d *DAG) want(key decisionKey, pr *jobs.PipelineRun, refs []jobs.OutputRef) *decision {
	if w := d.wants[key]; w != nil {
		return w
	}
	w := &decision{}
	for _, ref := range refs {
		r := outputRead{ref: ref}
		if up := pr.StageState(ref.Stage); up != nil {
			for _, run := range up.Runs {
				r.runIDs = append(r.runIDs, run.RunID)
			}
		}
		w.reads = append(w.reads, r)
	}
	d.wants[key] = w
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return w
}

// sizeDeciding is arraySize's answer for a stage whose output is being
// read: the stage stays PENDING.
const sizeDeciding = -2

// arraySize returns the number of children of a stage about to start: its
// fixed arraySize, or the one decided from an upstream output. It returns
// sizeDeciding while the output has not been read (see above), -1 having
// failed the stage when the output is missing or no size (the reason
// names the output and its value; not retried: a retry of the pipeline
// run decides again), and an error, for the next advance to try again,
// when the output or the store could not be read. Called under d.mu.
func (d *DAG) arraySize(ctx context.Context, pr *jobs.PipelineRun, spec *jobs.Stage, st *jobs.StageState, now time.Time) (int, error) {
	if !spec.ArraySize.Dynamic() {
		return spec.ArraySize.N, nil
	}
	if st.ArraySize != nil {
		return *st.ArraySize, nil
	}
	ref := *spec.ArraySize.From
	fail := func(err error) (int, error) {
		st.Status, st.Reason, st.StartedAt, st.FinishedAt, st.Runs = jobs.StatusFailed, err.Error(), &now, &now, []jobs.StageRun{}
		return -1, nil
	}
	if d.cfg.outputs == nil {
		return fail(fmt.Errorf("arraySize: %s: this server cannot read stage outputs", ref))
	}
	key := decisionKey{pr.PipelineRunID, st.Name, st.Try, "arraySize"}
	w := d.want(key, pr, []jobs.OutputRef{ref})
	if !w.done {
		return sizeDeciding, nil
	}
	delete(d.wants, key) // taken: a later advance asks again if it must
	if w.err != nil {
		if jobs.ErrorCode(w.err) == jobs.CodeInvalidArgument {
			return fail(fmt.Errorf("arraySize: %s: %w", ref, w.err))
		}
		return 0, fmt.Errorf("stage %s: arraySize: read %s: %w", spec.Name, ref, w.err)
	}
	n, err := jobs.DecideArraySize(ref, w.reads[0].value, w.reads[0].set)
	if up := pr.StageState(ref.Stage); err != nil && !w.reads[0].set && up != nil && up.Status != jobs.StatusSucceeded {
		// The stage read ended (readiness waits for that) without
		// succeeding, as allDone or noneFailed allow: say how.
		err = fmt.Errorf("%w (stage %s ended %s)", err, ref.Stage, up.Status)
	}
	if err != nil {
		return fail(err)
	}
	if n == 0 {
		return 0, nil // nothing submitted: nothing to store first
	}
	stored, err := d.store.UpdatePipelineRun(ctx, pr.PipelineRunID, func(p *jobs.PipelineRun) bool {
		s := p.StageState(st.Name)
		if s == nil || s.ArraySize != nil || s.Status != jobs.StatusPending || s.Try != st.Try {
			return false
		}
		s.ArraySize = &n
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("stage %s: store arraySize: %w", spec.Name, err)
	}
	if s := stored.StageState(st.Name); s != nil && s.ArraySize != nil && s.Try == st.Try {
		n = *s.ArraySize // decided already (cannot happen under d.mu, but the store says)
	}
	st.ArraySize = &n
	d.cfg.log.Info().Str("pipelineRun", pr.PipelineRunID).Str("stage", spec.Name).Str("from", ref.String()).
		Int("arraySize", n).Msg("array size decided")
	return n, nil
}

// RunDecisions reads the outputs that stages sized by one, or whose when
// reads one, wait for, each outside the DAG's lock, and advances their
// pipeline runs with what it read, until ctx is done. The server runs it for as long as it advances
// pipeline runs: without it such a stage waits PENDING.
func (d *DAG) RunDecisions(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		d.decide(ctx)
	}
}

// decide reads the outputs asked for until none is left to read.
func (d *DAG) decide(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		var key decisionKey
		var w *decision
		for k, x := range d.wants {
			if !x.busy && !x.done {
				key, w = k, x
				break
			}
		}
		if w != nil {
			w.busy = true
		}
		d.mu.Unlock()
		if w == nil {
			return
		}
		// The reads are w's alone while it is busy: no advance takes a
		// decision not done. Each upstream stage is read once, for every
		// key the decision wants of it: a when with three conditions on
		// one array of N children read 3×N manifests and 3×N outputs.env.
		var err error
		var errRef jobs.OutputRef
		read := map[string]map[string]string{} // by stage
		for i := range w.reads {
			r := &w.reads[i]
			kvs, ok := read[r.ref.Stage]
			if !ok {
				if kvs, err = d.cfg.outputs.StageOutputs(ctx, key.pipelineRun, r.ref.Stage, r.runIDs); err != nil {
					errRef = r.ref
					break
				}
				read[r.ref.Stage] = kvs
			}
			r.value, r.set = kvs[r.ref.Key]
		}
		actx, unlock := d.lock(ctx)
		if ctx.Err() != nil {
			delete(d.wants, key) // asked again at the next start
			unlock()
			return
		}
		w.busy, w.done, w.err, w.errRef = false, true, err, errRef
		if _, err := d.advance(actx, key.pipelineRun, nil); err != nil {
			d.cfg.log.Error().Err(err).Str("pipelineRun", key.pipelineRun).Msg("advance pipeline run")
		}
		// Taken by the advance, or no longer wanted (the run stopped, its
		// advance failed before the stage): either way not kept.
		delete(d.wants, key)
		unlock()
	}
}
