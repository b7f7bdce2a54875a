package worker

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Presence publishes a worker's heartbeats, which keep it listed among the
// live workers of its cluster.
type Presence interface {
	Beat(ctx context.Context, info jobs.WorkerInfo) error
	// Leave unlists the worker at once, when it stops.
	Leave(ctx context.Context, id string) error
}

// WithPresence makes the worker beat every interval (and at every change
// of what it runs or of its state).
func WithPresence(p Presence, every time.Duration) Option {
	return func(c *config) { c.presence, c.beatEvery = p, every }
}

// WithCapacity sets the CPU units and MiB of memory the worker offers;
// zero means unbounded. Slots are set by WithSlots.
func WithCapacity(cpu, memoryMiB int) Option {
	return func(c *config) { c.capacity.CPU, c.capacity.Memory = cpu, memoryMiB }
}

// WithHost sets the host name and labels shown in the worker's heartbeats.
func WithHost(host string, labels map[string]string) Option {
	return func(c *config) { c.host, c.labels = host, labels }
}

// WithNakDelays sets how long a job that does not fit goes back to the
// queue: fitLater when it would fit once running jobs end, never when it
// exceeds the worker's whole capacity (defaults 1 s and 5 s). A job whose
// constraints the worker's labels do not meet goes back for fitLater while
// another worker of the cluster meets them, for never when none does
// (unmatchedDelay).
func WithNakDelays(fitLater, never time.Duration) Option {
	return func(c *config) { c.nakLater, c.nakNever = fitLater, never }
}

// fleet is the worker's capacity ledger and state. Its wake channel has
// capacity 1: the take loop waits on it for room.
type fleet struct {
	mu       sync.Mutex
	inUse    jobs.Resources
	draining bool
	// stopping is set once the worker's ctx ended (SIGTERM): it takes
	// nothing new while its runs have their grace period, and says so in
	// its heartbeats, as a drained worker does.
	stopping bool
	started  time.Time
	wake     chan struct{}
	beat     chan struct{}
	// runtimeErr is the error of the last ping of a runtime that does not
	// answer (health.go), "" while it does; down wakes watchRuntime.
	runtimeErr string
	down       chan struct{}
}

func (f *fleet) notify() {
	for _, c := range []chan struct{}{f.wake, f.beat} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Verdicts of placement.
type verdict int

const (
	fits      verdict = iota
	fitsLater         // once running jobs end
	fitsNever         // beyond the worker's whole capacity
)

// place says whether need fits a worker of capacity cap that uses inUse. A
// zero CPU or memory capacity is unbounded.
func place(capacity, inUse, need jobs.Resources) verdict {
	over := func(capa, used, n int) (now, ever bool) {
		if capa <= 0 {
			return false, false
		}
		return used+n > capa, n > capa
	}
	cpuNow, cpuEver := over(capacity.CPU, inUse.CPU, need.CPU)
	memNow, memEver := over(capacity.Memory, inUse.Memory, need.Memory)
	slotNow, _ := over(capacity.Slots, inUse.Slots, need.Slots)
	switch {
	case cpuEver || memEver:
		return fitsNever
	case cpuNow || memNow || slotNow:
		return fitsLater
	}
	return fits
}

// reserve takes need from the free capacity if it fits.
func (w *Worker) reserve(need jobs.Resources) verdict {
	w.fl.mu.Lock()
	defer w.fl.mu.Unlock()
	if w.fl.draining || w.fl.runtimeErr != "" {
		return fitsLater
	}
	v := place(w.cfg.capacity, w.fl.inUse, need)
	if v == fits {
		w.fl.inUse = w.fl.inUse.Add(need)
	}
	return v
}

func (w *Worker) release(need jobs.Resources) {
	w.fl.mu.Lock()
	w.fl.inUse = w.fl.inUse.Sub(need)
	w.fl.mu.Unlock()
	w.fl.notify()
}

// roomForMore reports whether the take loop should ask for a job: not
// draining, a runtime that answers, a free slot, and some CPU and memory
// left.
func (w *Worker) roomForMore() bool {
	w.fl.mu.Lock()
	defer w.fl.mu.Unlock()
	c, u := w.cfg.capacity, w.fl.inUse
	return !w.fl.draining && w.fl.runtimeErr == "" && u.Slots < c.Slots &&
		(c.CPU <= 0 || u.CPU < c.CPU) && (c.Memory <= 0 || u.Memory < c.Memory)
}

// freeSlots is the number of slots not in use, at least 1.
func (w *Worker) freeSlots() int {
	w.fl.mu.Lock()
	defer w.fl.mu.Unlock()
	return max(1, w.cfg.capacity.Slots-w.fl.inUse.Slots)
}

// waitForRoom blocks until roomForMore or ctx is done; false means done.
func (w *Worker) waitForRoom(ctx context.Context) bool {
	for !w.roomForMore() {
		select {
		case <-w.fl.wake:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// stop marks the worker as stopping: its heartbeats say DRAINING from
// then on, so that neither the fleet's listing (gantry workers ls), the
// server's placement reasons and slot gauges nor the other workers count
// on it during its grace period.
func (w *Worker) stop() {
	w.fl.mu.Lock()
	w.fl.stopping = true
	w.fl.mu.Unlock()
	w.fl.notify()
}

// Drain stops (true) or resumes (false) taking new jobs; running ones go
// on.
func (w *Worker) Drain(drain bool) {
	w.fl.mu.Lock()
	changed := w.fl.draining != drain
	w.fl.draining = drain
	w.fl.mu.Unlock()
	if changed {
		w.cfg.log.Info().Bool("draining", drain).Msg("drain setting changed")
		w.fl.notify()
	}
}

// Info is what the worker's heartbeat says.
func (w *Worker) Info() jobs.WorkerInfo {
	w.fl.mu.Lock()
	inUse, stopping, draining, started, runtimeErr := w.fl.inUse, w.fl.stopping, w.fl.draining || w.fl.stopping, w.fl.started, w.fl.runtimeErr
	w.fl.mu.Unlock()
	runs := w.Running()
	sort.Strings(runs)
	st := jobs.WorkerActive
	if draining {
		st = jobs.WorkerDraining
	}
	return jobs.WorkerInfo{ID: w.id, Cluster: w.cluster, Host: w.cfg.host, Labels: w.cfg.labels,
		Capacity: w.cfg.capacity, InUse: inUse, Runs: runs, State: st, Stopping: stopping, RuntimeError: runtimeErr, StartedAt: started,
		LastHeartbeat: w.cfg.now().UTC(), Priorities: true}
}

// heartbeat beats until stop is closed, then unlists the worker, even
// when ctx (the worker's life, ended when the grace period ran out) is
// done by then.
func (w *Worker) heartbeat(ctx context.Context, stop <-chan struct{}) {
	p := w.cfg.presence
	t := time.NewTicker(w.cfg.beatEvery)
	defer t.Stop()
	leave := func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := p.Leave(lctx, w.id); err != nil {
			w.cfg.log.Warn().Err(err).Msg("leave the worker list")
		}
		cancel()
	}
	for {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := p.Beat(bctx, w.Info()); err != nil && !errors.Is(err, context.Canceled) {
			w.cfg.log.Warn().Err(err).Msg("heartbeat")
		}
		cancel()
		last := time.Now()
		select {
		case <-t.C:
		case <-w.fl.beat:
			// A busy worker starts and ends jobs faster than anyone reads
			// its heartbeats: tell its changes at most every beatGap.
			if wait := beatGap - time.Since(last); wait > 0 {
				gap := time.NewTimer(wait)
				select {
				case <-gap.C:
				case <-stop:
					gap.Stop()
					leave()
					return
				}
			}
		case <-stop:
			leave()
			return
		}
	}
}

// beatGap is the least time between two heartbeats that tell changes.
const beatGap = 250 * time.Millisecond

// quickUnmatched is how many deliveries of a job whose constraints a
// worker's labels do not meet are handed back after the short delay
// (nakLater) when the worker cannot tell whether another worker meets
// them (its Presence lists no fleet, or the listing failed): in a cluster
// where few workers have the labels, the job reaches one of them within
// seconds. Past it the job goes back after nakNever, as one too large
// does.
const quickUnmatched = 10

// peersEvery bounds how often a worker that hands back jobs for their
// constraints lists the fleet: one walk of the presence bucket (a message
// per live worker) per worker at most this often, and only while it hands
// such jobs back.
const peersEvery = 2 * time.Second

// FleetLister lists the live workers of every cluster (queue.Queue's
// Workers). A Presence that is one also tells the worker whether a job
// whose constraints its labels do not meet has a taker in its cluster.
type FleetLister interface {
	Workers(ctx context.Context) ([]jobs.WorkerInfo, error)
}

// peers is what a worker last read of the labels of the other live,
// undrained workers of its cluster, at at; known is false when that read
// failed. Only Run's loop uses it.
type peers struct {
	takers []peer
	at     time.Time
	known  bool
}

// peer is another worker that may take a job: its labels, and whether it
// had a free slot.
type peer struct {
	labels map[string]string
	free   bool
}

// unmatchedDelay is how long a job whose constraints cs this worker's
// labels do not meet goes back to the queue, at its delivered-th delivery.
// While another live worker of the cluster meets them, the job waits only
// for that worker: it goes back after takerFreeDelay when the worker had a
// free slot at its last heartbeat, after nakLater (as a job that does not
// fit yet) when it had none, however often the job came back. (Counting
// deliveries instead, a busy taker's jobs, handed back again and again by
// the idle workers that do not meet them, were soon out of the queue for
// nakNever at a time, the taker idling meanwhile once it had room.) When
// none does, no one will take it before the fleet changes: it goes back
// after nakNever, from its first delivery; so does a job aimed at this
// worker (--worker), which no other worker is handed.
func (w *Worker) unmatchedDelay(ctx context.Context, job jobs.Job, delivered uint64) time.Duration {
	if job.Worker != "" {
		return w.cfg.nakNever
	}
	cs := job.Spec.Constraints
	if w.readPeers(ctx) {
		delay := w.cfg.nakNever
		for _, p := range w.pr.takers {
			if !cs.Match(p.labels) {
				continue
			}
			if p.free {
				return min(takerFreeDelay, w.cfg.nakLater)
			}
			delay = w.cfg.nakLater
		}
		return delay
	}
	if delivered <= quickUnmatched {
		return w.cfg.nakLater
	}
	return w.cfg.nakNever
}

// takerFreeDelay is how long a job goes back to the queue when a worker
// that meets its constraints has a free slot: about to take it, it should
// not find it out of the queue for long.
const takerFreeDelay = 100 * time.Millisecond

// readPeers refreshes w.pr at most every peersEvery and reports whether it
// holds a listing.
func (w *Worker) readPeers(ctx context.Context) bool {
	fl, ok := w.cfg.presence.(FleetLister)
	if !ok {
		return false
	}
	now := w.cfg.now()
	if !w.pr.at.IsZero() && now.Sub(w.pr.at) < peersEvery {
		return w.pr.known
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ws, err := fl.Workers(lctx)
	if err != nil {
		w.cfg.log.Debug().Err(err).Msg("list the fleet to place a job handed back for its constraints")
		w.pr.at, w.pr.known = now, false // not again before peersEvery; meanwhile deliveries decide
		return false
	}
	w.pr.takers, w.pr.at, w.pr.known = w.pr.takers[:0], now, true
	for i := range ws {
		if p := &ws[i]; p.ID != w.id && p.Cluster == w.cluster && p.State != jobs.WorkerDraining && p.RuntimeError == "" {
			w.pr.takers = append(w.pr.takers, peer{labels: p.Labels, free: p.InUse.Slots < p.Capacity.Slots})
		}
	}
	return true
}
