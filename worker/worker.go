package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/rs/zerolog"
)

// Source hands out jobs, each with a lease that expires unless renewed.
type Source interface {
	Next(ctx context.Context) (Lease, error)
}

// BatchSource is a Source that can hand out several jobs at once; the
// worker asks for as many as it has free slots.
type BatchSource interface {
	Source
	NextBatch(ctx context.Context, max int) ([]Lease, error)
}

// Lease is one delivery of a job.
type Lease interface {
	Job() jobs.Job
	// Delivered is 1 the first time a job is handed out; more means the
	// workers it went to before were lost.
	Delivered() uint64
	InProgress() error
	Ack(ctx context.Context) error
	// Nak hands the job back, to be delivered again after delay.
	Nak(delay time.Duration) error
}

// Reporter carries what the worker tells the rest of gantry.
type Reporter interface {
	// PublishEvents returns once the events are stored, in order. The
	// worker sends an image pull progress event (ev.Pull set) alone.
	PublishEvents(ctx context.Context, evs ...*jobs.Event) error
	// Logs returns the sink for one attempt's output.
	Logs(runID string, attempt int) LogStream
	// Canceled reports whether a run was canceled before it got here.
	Canceled(ctx context.Context, runID string) (bool, string, error)
}

// LogStream is a LogSink that must be closed, which waits until every line
// is stored.
type LogStream interface {
	LogSink
	Close(ctx context.Context) error
}

// Worker runs jobs. Create it with New and call Run.
type Worker struct {
	id, cluster string
	src         Source
	rt          Runtime
	rep         Reporter
	cfg         config

	mu      sync.Mutex
	running map[string][]*delivery // by run id

	bg sync.WaitGroup // clean-ups left to run after a result is reported; Run waits for them

	fl     fleet
	pr     peers  // fleet.go; Run's loop only
	counts counts // stats.go
}

type config struct {
	slots      int
	leaseEvery time.Duration
	grace      time.Duration
	pull       PullPolicy
	log        zerolog.Logger
	now        func() time.Time

	capacity           jobs.Resources
	host               string
	labels             map[string]string
	presence           Presence
	beatEvery          time.Duration
	nakLater, nakNever time.Duration
	claims             Claims
	leftovers          Leftovers
	dockerSocket       bool

	stager   Stager // stage.go
	stageDir string

	reportLinger time.Duration
}

// Option configures a Worker.
type Option func(*config)

// WithSlots sets how many jobs run at once (default 4).
func WithSlots(n int) Option { return func(c *config) { c.slots = max(n, 1) } }

// WithLeaseRenewal sets how often leases are renewed; a third of the
// queue's ack wait.
func WithLeaseRenewal(d time.Duration) Option { return func(c *config) { c.leaseEvery = d } }

// WithGracePeriod sets how long running jobs may go on after Run's ctx is
// done before they are stopped (default 30 s); stopped so, an attempt ends
// with stopCode TerminationNotice and its job goes back to the queue.
func WithGracePeriod(d time.Duration) Option { return func(c *config) { c.grace = d } }

// WithPullPolicy sets when images are pulled (default missing).
func WithPullPolicy(p PullPolicy) Option { return func(c *config) { c.pull = p } }

// DefaultReportLinger is how long an attempt's STARTING and RUNNING wait
// to be sent with its next event: long enough for a short attempt to be
// reported in one piece, too short for anyone watching to notice.
const DefaultReportLinger = 25 * time.Millisecond

// WithReportLinger sets how long an attempt's events before its last wait
// to be sent with the next one (default DefaultReportLinger; 0 sends each
// at once).
func WithReportLinger(d time.Duration) Option { return func(c *config) { c.reportLinger = max(d, 0) } }

// WithLogger sets the logger.
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// New returns a worker with the given id in the given cluster.
func New(id, cluster string, src Source, rt Runtime, rep Reporter, opts ...Option) *Worker {
	cfg := config{slots: 4, leaseEvery: 10 * time.Second, grace: 30 * time.Second, pull: PullMissing,
		log: zerolog.Nop(), now: time.Now}
	cfg.beatEvery, cfg.nakLater, cfg.nakNever = 5*time.Second, time.Second, 5*time.Second
	cfg.reportLinger = DefaultReportLinger
	for _, o := range opts {
		o(&cfg)
	}
	cfg.capacity.Slots = cfg.slots
	return &Worker{id: id, cluster: cluster, src: src, rt: rt, rep: rep, cfg: cfg,
		running: map[string][]*delivery{},
		fl: fleet{wake: make(chan struct{}, 1), beat: make(chan struct{}, 1), down: make(chan struct{}, 1),
			started: cfg.now().UTC()}}
}

// ID is the worker's id.
func (w *Worker) ID() string { return w.id }

// Cause values that say why a run's context ended.
var (
	errCanceled = errors.New("canceled")
	errTimeout  = errors.New("timeout")
	errShutdown = errors.New("worker shutdown")
)

// timeoutError is the cause of a run stopped by its timeout or deadline;
// it is errTimeout. Its text is the reason alone: "Task timed out: " and
// "Stopped: " come before it, so "timeout: " would stutter.
type timeoutError struct{ reason string }

func (e *timeoutError) Error() string        { return e.reason }
func (e *timeoutError) Is(target error) bool { return target == errTimeout }

// UserCancel is the cause of a user's stop request.
type UserCancel struct{ Reason string }

func (e *UserCancel) Error() string   { return e.Reason }
func (e *UserCancel) Is(t error) bool { return t == errCanceled }

// delivery is a job being handled here.
type delivery struct {
	cancel context.CancelCauseFunc
	seq    uint64 // the job message's stream sequence; 0 if unknown
}

// Cancel stops a run if it runs here; it reports whether it did. Every
// delivery of the run here is stopped: a retry's job can come while the
// attempt before it is still being cleaned up.
func (w *Worker) Cancel(runID, reason string) bool {
	w.mu.Lock()
	ds := slices.Clone(w.running[runID])
	w.mu.Unlock()
	for _, d := range ds {
		d.cancel(&UserCancel{Reason: reason})
	}
	return len(ds) > 0
}

// Running returns the ids of the runs in progress here.
func (w *Worker) Running() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ids := make([]string, 0, len(w.running))
	for id := range w.running {
		ids = append(ids, id)
	}
	return ids
}

// Run takes and runs jobs until ctx is done, then lets the running ones
// finish within the grace period, stops what is left and returns once every
// result is reported. With claims (WithClaims), the job of an attempt
// stopped so is handed back to the queue, to run as the next attempt.
func (w *Worker) Run(ctx context.Context) error {
	wg := NewPool() // runs the jobs
	defer wg.Close()
	// life ends the runs: not with ctx, but a grace period after it.
	life, endLife := context.WithCancelCause(context.WithoutCancel(ctx))
	defer endLife(nil)
	if err := w.Reconcile(ctx); err != nil {
		w.cfg.log.Error().Err(err).Msg("reconcile containers left by an earlier life")
	}
	if w.cfg.presence != nil {
		stopBeat := make(chan struct{})
		var beater sync.WaitGroup
		beater.Go(func() { w.heartbeat(life, stopBeat) })
		defer func() { close(stopBeat); beater.Wait() }()
	}
	stopWatch := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() { w.watchRuntime(life, stopWatch) })
	defer func() { close(stopWatch); watcher.Wait() }()
	var err error
	for w.waitForRoom(ctx) {
		leases, nerr := w.take(ctx)
		if nerr != nil {
			if ctx.Err() != nil {
				break
			}
			w.cfg.log.Warn().Err(nerr).Msg("take job")
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			continue
		}
		w.counts.jobsTaken.Add(uint64(len(leases)))
		for _, lease := range leases {
			if cs := lease.Job().Spec.Constraints; len(cs) > 0 && !cs.Match(w.cfg.labels) {
				w.counts.unmatched.Add(1)
				w.cfg.log.Debug().Str("run", lease.Job().RunID).Stringer("constraints", cs).
					Msg("job's constraints not met by this worker's labels; handed back")
				_ = lease.Nak(w.unmatchedDelay(ctx, lease.Job(), lease.Delivered()))
				continue
			}
			need := lease.Job().Spec.Demand()
			switch w.reserve(need) {
			case fitsLater:
				// Another worker with room may take it meanwhile.
				w.counts.busy.Add(1)
				_ = lease.Nak(w.cfg.nakLater)
				continue
			case fitsNever:
				w.counts.tooLarge.Add(1)
				w.cfg.log.Debug().Str("run", lease.Job().RunID).Int("cpu", need.CPU).Int("memory", need.Memory).
					Msg("job exceeds this worker's capacity; handed back")
				_ = lease.Nak(w.cfg.nakNever)
				continue
			}
			w.fl.notify()
			wg.Go(func() {
				defer w.release(need)
				w.handle(life, lease)
			})
		}
	}
	w.stop()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(w.cfg.grace):
		w.cfg.log.Warn().Strs("runs", w.Running()).Msg("grace period over: stopping runs")
		endLife(errShutdown)
		<-finished
	}
	w.bg.Wait()
	if w.cfg.stager != nil {
		_ = os.Remove(w.stageBase()) // this worker's stage directory, once empty
	}
	return err
}

// take asks the source for as many jobs as there are free slots.
func (w *Worker) take(ctx context.Context) ([]Lease, error) {
	if bs, ok := w.src.(BatchSource); ok {
		return bs.NextBatch(ctx, w.freeSlots())
	}
	lease, err := w.src.Next(ctx)
	if err != nil {
		return nil, err
	}
	return []Lease{lease}, nil
}

// handle runs one delivery to its end and reports it.
func (w *Worker) handle(life context.Context, lease Lease) {
	taken := w.cfg.now()
	job := lease.Job()
	log := w.cfg.log.With().Str("run", job.RunID).Int("attempt", job.Attempt).Str("worker", w.id).Logger()
	// The run is registered before it is claimed, so that a stop request
	// the server sends once the claim is stored finds it (CancelClaim).
	runCtx, cancel := context.WithCancelCause(life)
	defer cancel(nil)
	var jobSeq uint64
	if sl, ok := lease.(sequenced); ok {
		jobSeq = sl.Seq()
	}
	me := &delivery{cancel: cancel, seq: jobSeq}
	w.mu.Lock()
	for _, d := range w.running[job.RunID] {
		if jobSeq != 0 && d.seq == jobSeq {
			// The same job message again, while this worker still
			// handles it: its lease lapsed (cut off from NATS for longer
			// than the ack wait) and the queue gave it back here. The
			// attempt here keeps it; its lease renewals and its ack go by
			// stream sequence and hold for this delivery too. Taking it
			// as a lost attempt would run the next one beside it.
			w.mu.Unlock()
			log.Info().Uint64("seq", jobSeq).Msg("job redelivered to the worker still handling it; left to the attempt here")
			return
		}
	}
	w.running[job.RunID] = append(w.running[job.RunID], me)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		ds := slices.DeleteFunc(w.running[job.RunID], func(d *delivery) bool { return d == me })
		if len(ds) == 0 {
			delete(w.running, job.RunID)
		} else {
			w.running[job.RunID] = ds
		}
		w.mu.Unlock()
	}()
	// Every other delivery runs an attempt of its own: a redelivered job
	// whose claim shows a worker that never finished it runs as the next
	// attempt.
	var queued time.Time
	if q, ok := lease.(queuedAt); ok {
		queued = q.Stored()
	}
	tk, err := w.claimDelivery(life, job.RunID, job.Attempt, jobSeq, queued)
	if err != nil {
		log.Warn().Err(err).Msg("claim job; handing it back")
		w.counts.claimFailed.Add(1)
		_ = lease.Nak(w.cfg.nakLater)
		return
	}
	if tk.stale {
		log.Info().Msg("job of an attempt that already ended; acknowledging it")
		w.ack(life, log, lease)
		return
	}
	if tk.heldBy != "" {
		log.Info().Str("holder", tk.heldBy).Uint64("seq", jobSeq).Msg("job delivered again while the live worker holding it runs it; left to that worker")
		return
	}
	if tk.attempt != job.Attempt { // a lost attempt's job runs as the next
		job.Attempt = tk.attempt
		log = w.cfg.log.With().Str("run", job.RunID).Int("attempt", job.Attempt).Str("worker", w.id).Logger()
	}
	// The lease is renewed from the claim on: telling of a lost worker
	// can take minutes when reports cannot be stored, and a lapsed lease
	// would hand the job to yet another worker meanwhile.
	keep := make(chan struct{})
	var keeper sync.WaitGroup
	keeper.Add(1)
	go func() {
		defer keeper.Done()
		t := time.NewTicker(w.cfg.leaseEvery)
		defer t.Stop()
		for {
			select {
			case <-keep:
				return
			case <-t.C:
				if err := lease.InProgress(); err != nil {
					log.Warn().Err(err).Msg("renew lease")
				}
			}
		}
	}()
	defer func() { close(keep); keeper.Wait() }()

	losses := tk.losses
	if lost := tk.lost; lost != nil {
		losses = lost.Losses + 1
		ev := jobs.Event{RunID: job.RunID, Attempt: lost.Attempt, Seq: lostSeq, Status: jobs.StatusFailed,
			Source: jobs.SourceWorker, Worker: lost.Worker, Time: w.cfg.now().UTC(), StopCode: jobs.StopWorkerLost,
			StoppedReason: fmt.Sprintf("worker %s stopped renewing the lease (killed or cut off); the job went to worker %s as attempt %d",
				lost.Worker, w.id, tk.attempt),
			Redelivered: losses <= MaxLosses}
		if !ev.Redelivered {
			ev.StoppedReason = fmt.Sprintf("worker %s was lost with this run; giving up after %d lost workers", lost.Worker, losses)
		}
		log.Warn().Str("lostWorker", lost.Worker).Int("lostAttempt", lost.Attempt).Msg("job redelivered: attempt lost with its worker")
		if !w.publish(life, log, &ev) {
			return
		}
		if !ev.Redelivered {
			w.settle(life, log, lease, job.RunID, tk, losses)
			return
		}
	}
	// The attempt's events before its last are held for up to
	// cfg.reportLinger and sent with the next one: an attempt that ends
	// quickly is reported in one piece, which the server stores in one
	// write and announces as one status change. The end goes at once.
	var (
		repMu     sync.Mutex // orders the attempt's reports
		seq       int
		held      []*jobs.Event
		armed     bool // a timer will send what is held
		published = true
	)
	sendHeld := func() { // with repMu held
		if len(held) > 0 {
			published = w.publish(life, log, held...)
			held = nil
		}
	}
	report := func(ev jobs.Event) {
		repMu.Lock()
		defer repMu.Unlock()
		seq++
		ev.RunID, ev.Attempt, ev.Seq, ev.Source, ev.Worker = job.RunID, job.Attempt, seq, jobs.SourceWorker, w.id
		ev.Time = w.cfg.now().UTC()
		switch {
		case ev.Pull != nil: // progress that clients show as it comes
			sendHeld()
			published = w.publish(life, log, &ev)
		case !ev.Status.Terminal() && w.cfg.reportLinger > 0:
			held = append(held, &ev)
			if !armed {
				armed = true
				time.AfterFunc(w.cfg.reportLinger, func() {
					repMu.Lock()
					defer repMu.Unlock()
					armed = false
					sendHeld()
				})
			}
		default:
			held = append(held, &ev)
			sendHeld()
		}
	}
	// done reports the attempt's last event and, once it is stored, lets
	// the job go; a job whose result could not be stored is left to its
	// lease, so that it comes back and the attempt is recorded as lost.
	done := func(ev jobs.Event) {
		w.counts.ended(ev.Status)
		report(ev)
		if !published {
			return
		}
		w.settle(life, log, lease, job.RunID, tk, losses)
	}

	switch {
	case tk.canceled != "":
		done(jobs.Event{Status: jobs.StatusCanceled, StopCode: jobs.StopUserInitiated, StoppedReason: tk.canceled})
		return
	case !tk.first:
		// A stop may have come while the claim was held by a worker that
		// was lost since; the cancel bucket remembers it. A first claim
		// needs no look: a stop before it is in the claim (CancelClaim),
		// a stop after it reaches runCtx, registered before the claim.
		if canceled, reason, err := w.rep.Canceled(runCtx, job.RunID); err != nil {
			log.Warn().Err(err).Msg("cannot check cancellation; running")
		} else if canceled {
			done(jobs.Event{Status: jobs.StatusCanceled, StopCode: jobs.StopUserInitiated, StoppedReason: reason})
			return
		}
	}
	if d := job.Spec.Deadline; d != nil && !w.cfg.now().Before(*d) {
		done(jobs.Event{Status: jobs.StatusFailed, StopCode: jobs.StopTimeout,
			StoppedReason: fmt.Sprintf("Run timed out: activeDeadlineSeconds=%d passed before attempt %d could start",
				job.Spec.ActiveDeadlineSeconds, job.Attempt)})
		return
	}
	report(jobs.Event{Status: jobs.StatusStarting})
	w.fl.notify()

	// The attempt's timeout counts from when its containers start, as AWS
	// Batch's attemptDurationSeconds counts from startedAt: a slow pull,
	// stage-in or create does not use it up (armTimeout, called by
	// Task.Started). The run's deadline bounds everything, pulls included.
	// The server refuses a timeout beyond jobs.MaxDurationSeconds; one
	// queued by a server before it did would overflow time.Duration and
	// time the attempt out at once: it runs without a timeout instead.
	armTimeout := func() {}
	if s := job.Spec.TimeoutSeconds; s > 0 && s <= jobs.MaxDurationSeconds {
		var cancelRun context.CancelCauseFunc
		runCtx, cancelRun = context.WithCancelCause(runCtx)
		defer cancelRun(nil)
		var (
			timerMu sync.Mutex
			timer   *time.Timer
		)
		armTimeout = func() {
			timerMu.Lock()
			defer timerMu.Unlock()
			if timer == nil {
				timer = time.AfterFunc(time.Duration(s)*time.Second, func() {
					cancelRun(&timeoutError{fmt.Sprintf("attempt ran longer than timeoutSeconds=%d", s)})
				})
			}
		}
		defer func() {
			timerMu.Lock()
			defer timerMu.Unlock()
			if timer != nil {
				timer.Stop()
			}
		}()
	}
	if d := job.Spec.Deadline; d != nil {
		var stop context.CancelFunc
		runCtx, stop = context.WithDeadlineCause(runCtx, *d,
			&timeoutError{fmt.Sprintf("run went past activeDeadlineSeconds=%d", job.Spec.ActiveDeadlineSeconds)})
		defer stop()
	}
	task, err := w.task(job)
	if s, ok := lease.(ackSubjected); ok && err == nil {
		task.AckSubject = s.AckSubject()
	}
	var res *Result
	logs := countedLogs{w.rep.Logs(job.RunID, job.Attempt), &w.counts}
	// doing is what the attempt does before its containers run: a
	// deadline that ends it then says so.
	var doing atomic.Value
	doing.Store("preparing it")
	var st *staged
	if err == nil {
		if job.Spec.Stage != nil && w.cfg.stager != nil {
			doing.Store("staging its inputs")
		}
		st, err = w.stageIn(runCtx, job, task)
	}
	// finish stores the logs and the stage's output and reports the end,
	// once: as soon as the runtime says every container has exited (it
	// removes them after), or when Run returns.
	var (
		once    sync.Once
		ran     bool        // the runtime was asked to run the task
		started atomic.Bool // some of its containers started (Task.Started)
	)
	finish := func(res *Result, err error) {
		once.Do(func() {
			if started.Load() {
				w.counts.tasksRunning.Add(-1)
			}
			// The end is what it was when the runtime returned: a
			// timeout or a shutdown that comes while the logs are
			// stored (up to a minute) stopped nothing.
			cause := context.Cause(runCtx)
			// A runtime that could not run the task, or lost track of
			// a container, may have gone away (a Docker daemon
			// stopped): ask it.
			var down error
			runtimeFailed := ran && err != nil
			if runtimeFailed || anyLost(res) {
				down = w.checkRuntime(life)
			}
			closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(life), time.Minute)
			if cerr := logs.Close(closeCtx); cerr != nil {
				log.Warn().Err(cerr).Msg("store logs")
			}
			cancelClose()
			if took := (*supersededError)(nil); errors.As(cause, &took) && !started.Load() {
				// Taken for lost while it set up (takenOver): the attempt
				// is the later one's worker's to report, as lost, and
				// its job that worker's to settle. Nothing is reported
				// or acknowledged here.
				repMu.Lock()
				held = nil
				repMu.Unlock()
				w.stageOut(life, st, job.RunID, jobs.Event{Status: jobs.StatusFailed}) // removes the stage directory
				log.Warn().Int("current", took.attempt).
					Msg("a later attempt of the run took over while this one set up; its containers were not started, and the attempt is left to the worker that took over")
				w.counts.takenOver.Add(1)
				return
			}
			if down != nil && runtimeFailed && !started.Load() && !errors.Is(err, ErrSomeStarted) && cause == nil && w.cfg.claims != nil {
				// Nothing ran: the run is not to blame, and failing it
				// would use up its attempts (in a fleet, every queued
				// run's, a second each). Its job goes to a worker whose
				// runtime answers, as a lost worker's does.
				ev := jobs.Event{Status: jobs.StatusFailed, StopCode: jobs.StopWorkerLost, Redelivered: true,
					StoppedReason: fmt.Sprintf("worker %s could not reach its container runtime before the task started (%v); the job went back to the queue for another worker",
						w.id, err)}
				w.stageOut(life, st, job.RunID, ev) // removes the stage directory
				log.Warn().Err(err).AnErr("ping", down).Msg("container runtime unreachable; job handed back to the queue")
				w.counts.runtimeDown.Add(1)
				report(ev)
				// Back after as long as a job too big for this worker:
				// it is for another one.
				w.handBack(life, log, lease, job.RunID, tk, losses, published, w.cfg.nakNever)
				return
			}
			ev := outcome(task, res, err, cause)
			if errors.Is(cause, errTimeout) && !started.Load() && !errors.Is(err, ErrSomeStarted) {
				// The run's deadline passed before any container ran (the
				// attempt's timeout is not armed yet): no exit code, and
				// the reason says what the attempt was doing. What the
				// runtime made of being stopped (an error, say) follows
				// from the deadline.
				ev = jobs.Event{Status: jobs.StatusFailed, StopCode: jobs.StopTimeout,
					StoppedReason: fmt.Sprintf("Task timed out: %v before its container started (%s)", cause, doing.Load())}
				if res != nil {
					ev.Containers = res.Containers
				}
			}
			if down != nil && anyLost(res) {
				ev.StoppedReason = fmt.Sprintf("Lost the connection to the container runtime while the task ran (%v); %s", down, ev.StoppedReason)
			}
			ev = w.stageOut(life, st, job.RunID, ev)
			if ev.StopCode == jobs.StopTerminationNotice && w.cfg.claims != nil {
				// Stopped by this worker's shutdown, the task is no
				// worse off than with a crash: its job goes back to
				// the queue, to run as the next attempt, which the
				// server does not count against the retry strategy.
				ev.Redelivered = true
				ev.StoppedReason = fmt.Sprintf("worker %s shut down before the task ended (its grace period of %s ran out); the job went back to the queue for the next attempt",
					w.id, w.cfg.grace)
				log.Warn().Msg("attempt stopped by the worker's shutdown; job handed back to the queue")
				w.counts.shutdown.Add(1)
				report(ev)
				w.handBack(life, log, lease, job.RunID, tk, losses, published, 0)
				return
			}
			log.Info().Str("status", string(ev.Status)).Str("reason", ev.StoppedReason).Msg("attempt ended")
			done(ev)
		})
	}
	if err == nil {
		task.Started = func(cs []jobs.ContainerResult) {
			w.counts.tasksStarted.Add(1)
			w.counts.tasksRunning.Add(1)
			started.Store(true)
			armTimeout()
			report(jobs.Event{Status: jobs.StatusRunning, Containers: cs})
		}
		task.Setup = func(s SetupStep) {
			doing.Store(s.String())
			if s == SetupStarting {
				w.takenOver(life, cancel, job.RunID, job.Attempt, taken)
			}
		}
		pulling := w.pullReporter(report)
		task.Pulling = func(p jobs.PullProgress) {
			if p.Done {
				doing.Store(SetupImages.String())
			} else {
				doing.Store("pulling its image " + p.Image)
			}
			pulling(p)
		}
		task.Finished = func(res *Result) { finish(res, nil) }
		ran = true
		res, err = w.rt.Run(runCtx, task, logs)
	}
	finish(res, err)
}

// takenOver looks, before an attempt's containers start, whether a later
// attempt of the run took over from it, and if so stops the attempt
// (cancel, with a *supersededError) so that they do not start. A worker
// slow to set up (an image pull, a Docker daemon under load) may have
// been taken for lost meanwhile, its job run by another worker as the
// next attempt; starting the containers would run the two side by side.
// Only an attempt that took a lease renewal's time or more (taken is when
// its job was) is looked at, since no other worker can take a job before
// its lease, three renewals long, lapses: the attempts that start
// promptly, nearly all, cost no read of the claim. A claim that cannot
// be read lets the attempt start. This narrows the window in which two
// attempts can overlap; it cannot close it (the takeover can come just
// after the look).
func (w *Worker) takenOver(ctx context.Context, cancel context.CancelCauseFunc, runID string, attempt int, taken time.Time) {
	if w.cfg.claims == nil || w.cfg.now().Sub(taken) < w.cfg.leaseEvery {
		return
	}
	ctx, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	if later := w.supersededBy(ctx, runID, attempt); later > 0 {
		cancel(&supersededError{later})
	}
}

// task builds the runtime's view of a job.
func (w *Worker) task(job jobs.Job) (*Task, error) {
	def, err := job.Spec.Task.WithOverrides(job.Spec.Overrides)
	if err != nil {
		return nil, fmt.Errorf("apply overrides: %w", err)
	}
	if !w.cfg.dockerSocket {
		if err := refuseDockerSocket(&def); err != nil {
			return nil, err
		}
	}
	return &Task{
		RunID: job.RunID, Attempt: job.Attempt, Def: def, PullPolicy: w.cfg.pull,
		Env: []jobs.KeyValue{
			{Name: "GANTRY_RUN_ID", Value: job.RunID},
			{Name: "GANTRY_ATTEMPT", Value: strconv.Itoa(job.Attempt)},
			{Name: "GANTRY_CLUSTER", Value: job.Cluster},
			{Name: "GANTRY_WORKER", Value: w.id},
		},
	}, nil
}

// outcome turns what the runtime returned into the attempt's final event.
func outcome(task *Task, res *Result, err, cause error) jobs.Event {
	var ue *UserCancel
	switch {
	case errors.As(cause, &ue):
		ev := jobs.Event{Status: jobs.StatusCanceled, StopCode: jobs.StopUserInitiated, StoppedReason: ue.Reason}
		if res != nil {
			ev.Containers = res.Containers
			ev.ExitCode = taskExitCode(task, res)
		}
		return ev
	case errors.Is(cause, errShutdown):
		ev := jobs.Event{Status: jobs.StatusFailed, StopCode: jobs.StopTerminationNotice, StoppedReason: "worker shut down before the task ended"}
		if res != nil {
			ev.Containers = res.Containers
			ev.ExitCode = taskExitCode(task, res)
		}
		return ev
	case err != nil:
		return jobs.Event{Status: jobs.StatusFailed, StopCode: jobs.StopFailedToStart, StoppedReason: err.Error()}
	case errors.Is(cause, errTimeout):
		return jobs.Event{Status: jobs.StatusFailed, StopCode: jobs.StopTimeout, StoppedReason: "Task timed out: " + cause.Error(),
			Containers: res.Containers, ExitCode: taskExitCode(task, res)}
	}
	ev := jobs.Event{Status: jobs.StatusSucceeded, Containers: res.Containers, ExitCode: taskExitCode(task, res)}
	if ev.ExitCode == nil || *ev.ExitCode != 0 {
		ev.Status = jobs.StatusFailed
		ev.StopCode = jobs.StopEssentialExited
		ev.StoppedReason = "Essential container in task exited"
		c := failedEssential(task, res)
		switch {
		case c != nil && lostTrack(c):
			// It ran, but how it ended is not known: ECS stops such a
			// task as it does for an exit, the container's reason
			// saying why (CannotInspectContainerError).
			ev.StoppedReason = "Essential container in task was lost"
		case ev.ExitCode == nil:
			// An essential container never ran (a dependency that could
			// not be met, say): the task failed to start, as ECS says.
			ev.StopCode = jobs.StopFailedToStart
			ev.StoppedReason = "Task failed to start"
		}
		if c != nil && c.Reason != "" && c.Reason != "Essential container exited" {
			ev.StoppedReason += ": " + c.Name + ": " + c.Reason
		}
	}
	return ev
}

// anyLost reports whether the runtime lost track of a container of res.
func anyLost(res *Result) bool {
	if res == nil {
		return false
	}
	for i := range res.Containers {
		if lostTrack(&res.Containers[i]) {
			return true
		}
	}
	return false
}

// taskExitCode is the exit code of the essential container that decides
// the task's end (failedEssential), or 0 when none failed; nil when that
// one has no exit code.
func taskExitCode(task *Task, res *Result) *int {
	if res == nil {
		return nil
	}
	if c := failedEssential(task, res); c != nil {
		return c.ExitCode
	}
	zero := 0
	return &zero
}

// failedEssential is the first essential container that failed, nil when
// none did. Containers the runtime stopped because another essential one
// had ended (SIGTERM's 143, say) do not count when one ended on its own:
// a sidecar stopped after the main container exited 0 does not fail the
// task, nor hide the main container's own code. When every essential
// container was stopped (a timeout, a stop), the first that failed counts.
func failedEssential(task *Task, res *Result) *jobs.ContainerResult {
	ownEnd := false
	for i := range res.Containers {
		c := &res.Containers[i]
		if !isEssential(task, c.Name) || stoppedByRuntime(c) {
			continue
		}
		ownEnd = true
		if c.ExitCode == nil || *c.ExitCode != 0 {
			return c
		}
	}
	if ownEnd {
		return nil
	}
	for i := range res.Containers {
		c := &res.Containers[i]
		if isEssential(task, c.Name) && (c.ExitCode == nil || *c.ExitCode != 0) {
			return c
		}
	}
	return nil
}

func isEssential(task *Task, name string) bool {
	if task == nil {
		return true
	}
	for _, c := range task.Def.ContainerDefinitions {
		if c.Name == name {
			return c.IsEssential()
		}
	}
	return true
}

// publish stores an event, retrying while the worker lives: a result that
// is never reported would leave the run RUNNING forever. It reports whether
// the event was stored.
func (w *Worker) publish(life context.Context, log zerolog.Logger, evs ...*jobs.Event) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(life), 5*time.Minute)
	defer cancel()
	status := string(evs[len(evs)-1].Status)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := w.rep.PublishEvents(ctx, evs...)
		if err == nil {
			return true
		}
		log.Warn().Err(err).Str("status", status).Msg("publish event; retrying")
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			log.Error().Err(err).Str("status", status).Msg("event lost; the lease will expire and the job be redelivered")
			return false
		}
	}
}

func (w *Worker) ack(life context.Context, log zerolog.Logger, lease Lease) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(life), 10*time.Second)
	defer cancel()
	err := lease.Ack(ctx)
	if err != nil {
		log.Warn().Err(err).Msg("ack job")
	}
	return err
}
