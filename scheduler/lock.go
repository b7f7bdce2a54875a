package scheduler

import (
	"context"
	"sync"

	"github.com/gantry-dev/gantry/jobs"
)

// The advances hold d.mu while they call the server (a submission, a
// stop), and the server tells the DAG of the runs that change as it goes
// (RunChanged): a stop that fails a child waiting for the stopped run, a
// new run of a deleted pool failed at once. Told under the lock its
// caller holds, RunChanged would wait for it for ever. So the lock comes
// with a context that says it is held (lock), which the DAG passes to
// the server, which passes it back: RunChanged with that context notes
// the run, and the advance's unlock tells the DAG of it once it let go.

// heldKey is the context key of the DAG's lock, held.
type heldKey struct{}

// held is the lock of dag, taken, and the runs told while it is held.
type held struct {
	dag *DAG

	mu   sync.Mutex
	open bool // until the unlock: after it RunChanged advances at once
	runs []*jobs.Run
}

// note keeps r for the unlock, unless the lock was let go.
func (h *held) note(r *jobs.Run) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open {
		h.runs = append(h.runs, r)
	}
	return h.open
}

// close returns the runs noted, and notes no more.
func (h *held) close() []*jobs.Run {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open = false
	runs := h.runs
	h.runs = nil
	return runs
}

// lock takes d.mu. It returns ctx marked as holding it, for the calls
// made under it, and the unlock, which tells the DAG of the runs noted
// meanwhile (RunChanged) once d.mu is let go.
func (d *DAG) lock(ctx context.Context) (context.Context, func()) {
	d.mu.Lock()
	h := &held{dag: d, open: true}
	return context.WithValue(ctx, heldKey{}, h), func() {
		runs := h.close()
		d.mu.Unlock()
		for _, r := range runs {
			d.RunChanged(ctx, r)
		}
	}
}

// noteHeld notes r for the unlock if ctx says that d's lock is held, and
// reports whether it did.
func (d *DAG) noteHeld(ctx context.Context, r *jobs.Run) bool {
	h, ok := ctx.Value(heldKey{}).(*held)
	return ok && h.dag == d && h.note(r)
}
