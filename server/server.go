package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/gantry-dev/gantry/worker"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Version is reported by the micro service.
var Version = "0.1.0"

// Server is the control plane. Create it with New and call Run.
type Server struct {
	db  *storage.DB
	q   *queue.Queue
	cfg config
	// leases keeps the server lease (lease.go): q, or a test's wrapper.
	leases leaseStore
	// started is when the server was made, by its clock: the lost
	// workers it never saw a heartbeat of were silent since before it
	// (fleet.go, silence).
	started time.Time

	idMu    sync.Mutex
	entropy *ulid.MonotonicEntropy

	pipes *pipelines // pipelines.go
	// stopping is set once the server begins to shut down: it starts
	// nothing of its own accord from then on (WithStartsUntil).
	stopping atomic.Bool

	fleetMu     sync.Mutex
	fleetAt     time.Time
	fleetCached []jobs.WorkerInfo
	// fleetGen counts the fleet changes the sweep saw (fleet.go).
	fleetGen atomic.Uint64

	recheckMu  sync.Mutex
	recheck    map[string]struct{} // runs the next sweep looks at (fleet.go)
	recheckAll bool

	bg sync.WaitGroup // background writes (confirmQueued); Run waits for them

	inline inlineCache // inline.go

	waiters waiterFlag // rundeps.go

	metrics *metrics // metrics.go

	// answered tells the webhook sender of the hooks whose tests were
	// answered 2xx: their backoffs end (webhooks.go).
	answered answeredHooks

	backups backups // backup.go

	// retries wakes the sweep when a retry's backoff ends (retrywake.go).
	retries retryWake

	stream streamMark // jobsstream.go

	ann announcer // announce.go
	// confirming are the new runs whose QUEUED confirmQueued waits for
	// (announce.go).
	confirming sync.Map
	// unvouched are the new runs whose QUEUED neither was stored nor got
	// an outbox row (announce.go): the sweep's republish checks them.
	unvouched sync.Map
	// order keeps each run's announcements in the order of its changes
	// (announce.go, lockOrder).
	order sync.RWMutex

	// sweepStored, when set (tests), runs between the sweep's commit of a
	// run and its publishing of the run's status.
	sweepStored func()
}

type config struct {
	log             zerolog.Logger
	now             func() time.Time
	defaultCluster  string
	sweepEvery      time.Duration
	dataRetention   time.Duration         // retention.go
	runRetention    time.Duration         // history.go
	followUpRetry   time.Duration         // followups.go
	metrics         prometheus.Registerer // metrics.go; nil: not registered
	webhookRetry    webhookRetry          // webhooks.go
	backupTTL       time.Duration         // backup.go
	backupTemp      string                // backup.go; tests: the snapshot's file
	beforeBackupPut func()                // backup.go; tests: called before the put
	shutdown        <-chan struct{}       // pipelines.go; closed: the server starts nothing of its own accord
	// lostAnnouncement, when set (tests), loses the announcements of the
	// runs it names on their way to NATS (announce.go, lostFuture).
	lostAnnouncement func(runID string) bool
	// betweenCheckReads, when set (tests), runs between a check's read of
	// a run's last announcement and its read of the run (announce.go).
	betweenCheckReads func(runID string)
	// unsentAnnouncement, when set (tests), has the announcements of the
	// runs it names fail to be sent (announce.go, send).
	unsentAnnouncement func(runID string) bool
	// submitFails, when set (tests), fails the submissions it returns an
	// error for, before anything is read or stored (submit).
	submitFails func(*jobs.SubmitRequest) error
	// runStoring, when set (tests), runs just before a new run's commit
	// (createRun, createArray).
	runStoring func()
	// runStored, when set (tests), runs between a new run's commit and
	// the send of its status (createRun).
	runStored func(runID string)
	// orderWaits, when set (tests), runs when a change waits for another's
	// announcement to be sent (announce.go, lockOrder).
	orderWaits func()
	// childrenMarked, when set (tests), runs with the ids of each page of
	// an array's children stopArray marked canceled, before it stores
	// them (arrays.go).
	childrenMarked func(ids []string)
	leaseAge       time.Duration // lease.go
	storeLocked    bool          // lease.go; WithStoreLock
	// leases, when set (tests), wraps the queue's keeping of the server
	// lease (lease.go).
	leases func(leaseStore) leaseStore
}

// Option configures a Server.
type Option func(*config)

// WithLogger sets the logger.
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// WithStartsUntil makes the server start nothing of its own accord once
// stop is closed: a serving process that begins to shut down while its
// server goes on (gantry up, during its worker's --grace) starts no work
// its worker, draining, would not take. The cron fires no more, ended
// pipeline runs trigger no pipeline and promote no waiting run, and the
// DAG starts no stage (scheduler.DAG.Hold); the ends of runs are still
// applied, and the runs going on finish. What would have started is
// started by the next start, which does all of it again from the store
// (startPipelines, recoverFollowUps), and a fire time that passes
// meanwhile is its to fire or miss, as its misfire policy says. The end of
// Run's ctx does the same.
func WithStartsUntil(stop <-chan struct{}) Option {
	return func(c *config) { c.shutdown = stop }
}

// WithStoreLock says that the caller holds a lock on the store that one
// process alone can hold, for the life of its process (cmd/gantry's
// data directory lock): a server restarted on its store after a crash
// then takes the server lease its predecessor left at once, rather than
// wait for its age (lease.go, restartOf).
func WithStoreLock() Option { return func(c *config) { c.storeLocked = true } }

// withLeaseAge sets the server lease's age (lease.go), for tests.
func withLeaseAge(d time.Duration) Option { return func(c *config) { c.leaseAge = d } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// New returns a server over a store and a queue.
func New(db *storage.DB, q *queue.Queue, opts ...Option) *Server {
	cfg := config{log: zerolog.Nop(), now: time.Now, defaultCluster: "default", sweepEvery: 2 * time.Second,
		followUpRetry: pipelineRetry, webhookRetry: defaultWebhookRetry, leaseAge: defaultLeaseAge}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{db: db, q: q, cfg: cfg, started: cfg.now(), entropy: ulid.Monotonic(rand.Reader, 0), metrics: newMetrics(),
		answered: answeredHooks{kick: make(chan struct{}, 1)}, retries: newRetryWake()}
	s.leases = q
	if cfg.leases != nil {
		s.leases = cfg.leases(q)
	}
	s.waiters.any.Store(true)  // until the store says none wait (resolveAllWaiting)
	s.backups.left.Store(true) // a backup left by the server before this one
	s.initPipelines()
	if cfg.metrics != nil {
		s.metrics.register(cfg.metrics, s)
	}
	return s
}

// Run serves until ctx is done: it takes the server lease of its NATS
// (lease.go, waiting for JetStream as long as it cannot answer yet),
// makes sure the streams exist, announces what a crash left unannounced
// (announce.go), re-queues what a crash left unpublished or a new jobs
// stream lost (jobsstream.go), applies events and answers the API. A
// server that loses its lease stops, with a *LeaseLostError; one that
// stops at ctx's end releases it.
func (s *Server) Run(ctx context.Context) error {
	s.warnStoreMode() // storemode.go
	// Before anything changes streams, jobs or runs (alone.go).
	if err := s.checkAlone(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	l, err := s.takeLease(ctx)
	if err != nil || l == nil {
		return err
	}
	// The lease is kept until the server has stopped writing, after ctx's
	// end; its loss ends the server at once.
	serving, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	keeping, stopKeeping := context.WithCancel(context.WithoutCancel(ctx))
	var (
		keeper sync.WaitGroup
		lost   error
	)
	keeper.Go(func() {
		if lost = s.keepLease(keeping, l); lost != nil {
			s.cfg.log.Error().Err(lost).Msg("server stopping: it lost its lease")
			lose(lost)
		}
	})
	err = s.serve(serving)
	stopKeeping()
	keeper.Wait()
	if lost != nil {
		if ll := (*LeaseLostError)(nil); errors.As(lost, &ll) && ll.Unrenewed > 0 {
			// Still this one's if no one took it over meanwhile (the
			// delete is at its revision): the next server need not wait.
			s.releaseLease(ctx, l)
		}
		return lost
	}
	s.releaseLease(ctx, l)
	return err
}

// serve is Run once the server holds its lease.
func (s *Server) serve(ctx context.Context) error {
	defer s.bg.Wait()
	if err := s.ensureStreams(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	// Before anything changes runs: the changes a crash may have left
	// unannounced (announce.go).
	checked, err := s.resyncPending(ctx)
	if err != nil {
		return fmt.Errorf("check pending announcements: %w", err)
	}
	// Before republish, which publishes what it requeues.
	if err := s.checkJobsStream(ctx); err != nil { // jobsstream.go
		s.cfg.log.Warn().Err(err).Msg("check the jobs stream at start; the sweep tries again")
	}
	if err := s.republishAtStart(ctx, checked); err != nil {
		return err
	}
	// The start's announcements stored before any report is applied: a
	// report that comes again has its runs' last announcements compared
	// with the store, and one still on its way would be made twice.
	s.settleAnnouncements(ctx)
	// The announcements of the server's own changes: kept until Run
	// returns, after the API and the loops stopped.
	annCtx, stopAnn := context.WithCancel(context.WithoutCancel(ctx))
	var ann sync.WaitGroup
	ann.Go(func() { s.keepAnnouncements(annCtx) })
	defer ann.Wait()
	defer stopAnn()
	// Before the history's retention starts (startPipelines), so that
	// what the waiting runs wait for is resolved before it is due. One
	// that fails is left to the sweep (resolveEnded); the prune keeps
	// what a run still waits for.
	if err := s.resolveAllWaiting(ctx); err != nil { // rundeps.go
		s.cfg.log.Warn().Err(err).Msg("resolve waiting runs at start; the sweep tries again")
	}
	// Array runs whose children ended while the server was down end now
	// (arrays.go), and the runs that depend on them are resolved.
	if err := s.recomputeAllArrays(ctx); err != nil {
		s.cfg.log.Warn().Err(err).Msg("recompute array runs at start; recomputed when a child moves")
	}
	// A slot that freed while the server was down goes to the next
	// waiting run (pools.go).
	if err := s.releaseAllPools(ctx); err != nil {
		s.cfg.log.Warn().Err(err).Msg("release pools at start; the sweep tries again")
	}
	stopPipelines, err := s.startPipelines(ctx)
	if err != nil {
		return err
	}
	defer stopPipelines()
	stopAPI, err := s.service(ctx)
	if err != nil {
		return err
	}
	defer stopAPI() // answers the requests taken before the store closes
	// A loop that fails (its consumer could not be made, say) ends the
	// others and Run, at once: a server answering the API but applying no
	// report would leave every run QUEUED or RUNNING without a word.
	loops, endLoops := context.WithCancel(ctx)
	defer endLoops()
	errc := make(chan error, 4)
	go func() { errc <- s.q.ConsumeEvents(loops, 500, func(b *queue.EventBatch) { s.applyBatch(ctx, b) }) }()
	go func() { errc <- s.consumeSubmissions(loops) }()
	go func() { errc <- s.sweep(loops) }()        // fleet.go
	go func() { errc <- s.sendWebhooks(loops) }() // webhooks.go
	s.cfg.log.Info().Msg("server ready")
	var first error
	for range cap(errc) {
		if err := <-errc; err != nil && first == nil && ctx.Err() == nil {
			first = err
			s.cfg.log.Error().Err(err).Msg("server stopping")
			endLoops()
		}
	}
	return first
}

// ensureStreams makes gantry's streams, and waits, trying again with
// backoff, while JetStream cannot answer yet: a server started beside a
// fresh NATS cluster (by systemd, or compose) finds it electing its meta
// leader, as workers started with it find no streams and wait. It says
// what it waits for when that changes and every queue.WarnEvery. A
// failure that waiting does not cure (a refusal, a configuration
// JetStream rejects, a NATS server without JetStream) returns at once.
// So does ctx's end, with nil.
func (s *Server) ensureStreams(ctx context.Context) error {
	return s.waitJetStream(ctx, "streams ready", s.q.EnsureStreams)
}

// waitJetStream calls try until it succeeds, waiting while JetStream
// cannot answer yet, as ensureStreams says; done says what is done once
// it answers after a wait.
func (s *Server) waitJetStream(ctx context.Context, done string, try func(context.Context) error) error {
	waited := false
	err := queue.Wait{
		For: queue.WaitingFor,
		Warn: func(what string, err error) {
			s.cfg.log.Warn().Err(err).Msg("waiting for " + what)
			waited = true
		},
	}.Retry(ctx, try)
	switch {
	case ctx.Err() != nil:
		return nil
	case err == nil && waited:
		s.cfg.log.Info().Msg("JetStream answered: " + done)
	}
	return err
}

func (s *Server) newRunID() string {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	return strings.ToLower(ulid.MustNew(ulid.Timestamp(s.cfg.now()), s.entropy).String())
}

// Submit creates a run and queues its first attempt. A request whose
// idempotencyKey was seen before returns the run it created.
func (s *Server) Submit(ctx context.Context, req *jobs.SubmitRequest) (*jobs.Run, error) {
	r, _, err := s.submit(ctx, req)
	return r, err
}

// submit is Submit, also saying whether it created the run: false when
// the idempotency key found one. A request whose key a run holds gets
// that run, whatever changed since it was made: its task definition
// deregistered, its pool deleted, its worker gone. A pipeline's advance
// that failed after it submitted some runs of a stage relies on it: the
// next finds them, and stops them if the stage can no longer start. The
// key is looked up once the request is refused, so that the others cost
// no read more; the store's insert finds it otherwise.
func (s *Server) submit(ctx context.Context, req *jobs.SubmitRequest) (*jobs.Run, bool, error) {
	if err := req.Validate(); err != nil {
		return nil, false, err
	}
	r, created, err := s.submitValid(ctx, req)
	if err != nil && req.IdempotencyKey != "" {
		if found, ferr := s.db.RunByKey(ctx, req.IdempotencyKey); ferr == nil {
			return found, false, nil
		}
	}
	return r, created, err
}

// submitValid is submit of a valid request.
func (s *Server) submitValid(ctx context.Context, req *jobs.SubmitRequest) (*jobs.Run, bool, error) {
	if fails := s.cfg.submitFails; fails != nil {
		if err := fails(req); err != nil {
			return nil, false, err
		}
	}
	ref, inline, err := s.taskRef(req) // inline.go
	if err != nil {
		return nil, false, err
	}
	var td jobs.TaskDefinition
	if inline != nil {
		td = *inline
	} else if td, err = s.resolveTaskDef(ctx, ref); err != nil {
		return nil, false, err
	} else if req.Stage != nil {
		// A stage's inline definition comes with its parameters
		// substituted (scheduler.StageRequest); a registered one is read
		// here.
		td = jobs.SubstituteRefs(td, req.Stage.Parameters)
	}
	return s.createRun(ctx, req, td, "")
}

// keyTaken reports whether a run holds the idempotency key key ("" is
// never taken).
func (s *Server) keyTaken(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, nil
	}
	return s.db.RunKeyTaken(ctx, key)
}

// createRun is submit once the request is checked and its task
// definition is known: td runs, req.TaskDefinition is not read. rerunOf
// names the run that this one runs again (rerun.go), if any.
func (s *Server) createRun(ctx context.Context, req *jobs.SubmitRequest, td jobs.TaskDefinition, rerunOf string) (*jobs.Run, bool, error) {
	if req.ArrayProperties != nil {
		return s.createArray(ctx, req, td, rerunOf) // arrays.go
	}
	r, gen, err := s.newRun(ctx, req, td, rerunOf)
	if err != nil {
		return nil, false, err
	}
	// A job the NATS server would refuse for its size is refused here,
	// before the run is stored: it could never be queued.
	job := jobOf(r)
	data, err := s.q.EncodeJob(job)
	if tl := (*queue.JobTooLargeError)(nil); errors.As(err, &tl) {
		return nil, false, jobs.Invalid(tl.Error())
	} else if err != nil {
		return nil, false, err
	}
	// A run queued as any other has its QUEUED vouched for by its job's
	// published mark (confirmQueued); one that waits or fails at once by a
	// row of the announcement outbox (announce.go).
	plain := r.Status == jobs.StatusQueued && !r.Waiting() && !r.WaitingForSlot()
	if plain {
		// Before the commit: the sweep's republish must not mark it
		// before confirmQueued waits for its QUEUED.
		s.confirming.Store(r.RunID, struct{}{})
	}
	s.rlockOrder() // to the send of its status: the changes made of it after come after
	if hook := s.cfg.runStoring; hook != nil {
		hook()
	}
	stored, created, outbox, err := s.db.CreateRunAnnounced(ctx, r, !plain)
	if err != nil || !created {
		s.runlockOrder()
		s.confirming.Delete(r.RunID)
		if err != nil {
			return nil, false, err
		}
		return stored, false, nil
	}
	if stored := s.cfg.runStored; stored != nil {
		stored(r.RunID)
	}
	s.metrics.submitted.Inc()
	if s.fleetGen.Load() != gen {
		s.markRecheck(stored.RunID)
	}
	if !plain {
		s.announceRun(stored, outbox)
		s.runlockOrder()
	}
	switch {
	case stored.Status.Terminal(): // a dependency ended as it did not need
		s.metrics.runMoved(jobs.StatusQueued, false, stored)
		return stored, true, nil
	case stored.Waiting():
		s.waiters.stored()
		// A dependency may have ended after it was read and before this
		// run was stored, its waiters resolved without this one: look
		// again now that it is.
		// The submitter is told how it stands (failed, say): the DAG
		// advancing a pipeline run submits its stages' runs under its
		// lock, and is told of them by the reply alone.
		if _, err := s.resolveWaiting(ctx, stored.RunID); err != nil {
			s.cfg.log.Warn().Err(err).Str("run", stored.RunID).Msg("resolve new waiting run; the sweep tries again")
		} else if latest, err := s.db.GetRun(ctx, stored.RunID); err == nil {
			stored = latest
		}
		return stored, true, nil
	case stored.WaitingForSlot():
		// It takes a free slot now, or waits (pools.go); the reply says
		// which.
		if err := s.releasePools(ctx, stored.Pool); err != nil {
			s.cfg.log.Warn().Err(err).Str("run", stored.RunID).Msg("release pool of new run; the sweep tries again")
		}
		if latest, err := s.db.GetRun(ctx, stored.RunID); err == nil {
			stored = latest
		}
		return stored, true, nil
	}
	// The QUEUED goes before the job: a worker's STARTING must follow it.
	f := s.send(stored)
	s.runlockOrder()
	// The submitter waits for the job to be in the queue, not for the mark
	// that it is: the mark spares a republish after a crash, which the
	// queue's duplicate window absorbs, and vouches for the QUEUED's
	// announcement, which confirmQueued waits for. Not waiting for a
	// second commit made submissions about a third faster.
	if _, err := s.q.PublishEncodedJob(ctx, job, data); err != nil {
		// The run is stored; republish at the next start or retry picks
		// it up, and would mark it: the QUEUED gets its own outbox row.
		s.cfg.log.Error().Err(err).Str("run", stored.RunID).Msg("queue run")
		row, err := s.db.AddAnnouncement(ctx, stored.RunID)
		if err != nil {
			s.cfg.log.Warn().Err(err).Str("run", stored.RunID).Msg("record the announcement of a run not queued")
		}
		s.confirmQueued(ctx, stored.RunID, f, false, row)
	} else {
		s.confirmQueued(ctx, stored.RunID, f, true, 0)
	}
	return stored, true, nil
}

// newRun is the run a checked request makes of td, not stored yet, and
// the fleet's generation its placement reason was found at: its
// dependencies' and pool's states, tags, constraints, cluster and
// placement reason as createRun stores them.
func (s *Server) newRun(ctx context.Context, req *jobs.SubmitRequest, td jobs.TaskDefinition, rerunOf string) (*jobs.Run, uint64, error) {
	if _, err := td.WithOverrides(req.Overrides); err != nil {
		return nil, 0, err
	}
	var (
		depStatus map[string]jobs.Status
		err       error
	)
	if len(req.DependsOn) > 0 {
		s.waiters.mark()                                                           // before the run is stored: the ends applied after it look for it
		if depStatus, err = s.dependencyStatuses(ctx, req.DependsOn); err != nil { // rundeps.go
			return nil, 0, err
		}
	}
	var poolReason string
	if req.Pool != "" {
		if poolReason, err = s.checkPool(ctx, req.Pool); err != nil { // pools.go
			return nil, 0, err
		}
	}
	tags, err := jobs.RunTags(req, &td) // tags.go
	if err != nil {
		return nil, 0, err
	}
	// The task definition's placementConstraints and the request's, its
	// own winning key by key (constraints.go); nothing is allocated when
	// neither has any.
	constraints := jobs.MergeConstraints(td.Constraints(), req.Constraints)
	if err := constraints.CheckMerged("constraints", "the task definition's placementConstraints and the request's"); err != nil {
		return nil, 0, err
	}
	cluster := req.Cluster
	if cluster == "" {
		cluster = s.cfg.defaultCluster
	}
	if req.Worker != "" {
		if err := s.checkPinnedWorker(ctx, req.Worker, cluster, constraints); err != nil { // fleet.go
			// A key already taken gets its run back, whatever the worker's
			// cluster and labels are since it was accepted (a rerun's too,
			// which does not go through submit).
			if taken, kerr := s.keyTaken(ctx, req.IdempotencyKey); kerr != nil || !taken {
				return nil, 0, err
			}
		}
	}
	now := s.cfg.now().UTC()
	r := &jobs.Run{
		RunID:          s.newRunID(),
		Status:         jobs.StatusQueued,
		TaskDefinition: td.Ref(),
		Cluster:        cluster,
		TargetWorker:   req.Worker,
		Priority:       req.Priority.Level(),
		IdempotencyKey: req.IdempotencyKey,
		Tags:           tags,
		CreatedAt:      now,
		Attempts:       []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}},
		Containers:     []jobs.ContainerResult{},
		DependsOn:      jobs.DependencyStates(req.DependsOn),
		Pool:           req.Pool,
		RerunOf:        rerunOf,
		Spec: jobs.RunSpec{Task: td, Overrides: req.Overrides, TimeoutSeconds: req.TimeoutSeconds,
			RetryStrategy: req.RetryStrategy, Constraints: constraints, Stage: req.Stage},
	}
	if req.ActiveDeadlineSeconds > 0 {
		d := now.Add(time.Duration(req.ActiveDeadlineSeconds) * time.Second)
		r.Spec.ActiveDeadlineSeconds, r.Spec.Deadline = req.ActiveDeadlineSeconds, &d
	}
	// Dependencies that ended are resolved at once: the run waits for the
	// others (its reason says for what), or fails now if one ended as it
	// did not need, or is queued as any other.
	r.ResolveDependencies(now, statusIn(depStatus))
	if r.WaitingForSlot() {
		r.StatusReason = poolReason
	}
	// Say at once why no worker could take it (fleet.go); the sweep keeps
	// the reason current. It looks at every queued run when the fleet
	// changes, but may list them before this one is stored: a run whose
	// reason was found while the sweep saw a change is looked at again.
	gen := s.fleetGen.Load()
	if workers, err := s.liveWorkers(ctx); err == nil && r.Status == jobs.StatusQueued && !r.Waiting() && !r.WaitingForSlot() {
		r.StatusReason = placementReason(r, workers)
	}
	return r, gen, nil
}

// jobOf is the job of the run's current attempt. Its priority picks the
// queue it goes to (queue.JobSubjectOf): a retry's or a republished job's
// is the run's, as the first attempt's was.
func jobOf(r *jobs.Run) *jobs.Job {
	j := &jobs.Job{RunID: r.RunID, Attempt: r.Current().Attempt, Cluster: r.Cluster, Worker: r.TargetWorker, Spec: r.Spec}
	if p := r.Priority.Level(); p != jobs.PriorityNormal {
		j.Priority = p
	}
	return j
}

// enqueue publishes the job of the run's current attempt and records that
// it did. A crash between the two publishes again at start, which the
// queue's duplicate window absorbs.
func (s *Server) enqueue(ctx context.Context, r *jobs.Run) error {
	return s.enqueueThen(ctx, r, s.db.MarkPublished)
}

// enqueueThen is enqueue with mark recording the publication.
func (s *Server) enqueueThen(ctx context.Context, r *jobs.Run, mark func(context.Context, string, int) error) error {
	a := r.Current()
	if a.Attempt > 1 {
		// A retry or a redelivery: the sweep replaces the reason Apply
		// gave it by the fleet's and watches redeliveries (redeliver.go).
		s.markRecheck(r.RunID)
	}
	if a.Redelivery {
		// Its job is the lost attempt's, which the queue hands out again;
		// if that never comes, the sweep publishes one (redeliver.go).
		return mark(ctx, r.RunID, a.Attempt)
	}
	if _, err := s.q.PublishJob(ctx, jobOf(r)); err != nil {
		return err
	}
	return mark(ctx, r.RunID, a.Attempt)
}

// republish queues the runs whose current attempt was never published,
// but for the new runs whose QUEUED confirmQueued waits for (it marks
// them) and those whose QUEUED it could vouch for by no means (vouch).
func (s *Server) republish(ctx context.Context) error {
	return s.republishRuns(ctx, s.republishable(ctx))
}

// republishable is republish's take: not the new runs whose QUEUED
// confirmQueued waits for, nor those it could vouch for by no means.
func (s *Server) republishable(ctx context.Context) func(*jobs.Run) (bool, error) {
	return func(r *jobs.Run) (bool, error) {
		if s.beingConfirmed(r.RunID) {
			return false, nil
		}
		// Marked since the listing: by its submission (an array's
		// children are enqueued while the sweep may be going through
		// thousands of them), or by a retry's queueing.
		if a := r.Current(); a != nil {
			if done, err := s.db.PublishedSince(ctx, r.RunID, a.Attempt); err != nil || done {
				return false, nil // an error: the next round tries again
			}
		}
		return s.vouch(ctx, r.RunID), nil
	}
}

// republishAtStart is republish at start: a crash before a new run's mark
// may have lost its QUEUED's announcement too, which it checks first
// (ensureAnnounced), but for the runs checked already (resyncPending).
func (s *Server) republishAtStart(ctx context.Context, checked map[string]bool) error {
	return s.republishRuns(ctx, func(r *jobs.Run) (bool, error) {
		if checked[r.RunID] {
			return true, nil
		}
		return true, s.ensureAnnounced(ctx, r)
	})
}

// republishRuns queues the runs whose current attempt was never
// published and that take says to.
func (s *Server) republishRuns(ctx context.Context, take func(*jobs.Run) (bool, error)) error {
	runs, err := s.db.Unpublished(ctx)
	if err != nil {
		return fmt.Errorf("find unpublished runs: %w", err)
	}
	queued, err := s.republishThese(ctx, runs, s.cfg.now(), take)
	if queued > 0 {
		// The runs it queued alone: the retries waiting for their
		// backoff, which it leaves, are in runs at every round.
		s.cfg.log.Info().Int("runs", queued).Msg("re-queued runs left unpublished")
	}
	return err
}

// republishThese queues those of runs, unpublished, that take says to
// and that are due at now, and returns how many it queued; it tells the
// sweep of the retries that wait.
func (s *Server) republishThese(ctx context.Context, runs []jobs.Run, now time.Time, take func(*jobs.Run) (bool, error)) (queued int, err error) {
	for i := range runs {
		if runs[i].ArrayParent() {
			continue // no job: stored marked published, unless by a gantry before arrays
		}
		if ok, err := take(&runs[i]); err != nil {
			return queued, fmt.Errorf("announce unpublished run %s: %w", runs[i].RunID, err)
		} else if !ok {
			continue
		}
		if !due(&runs[i], now) {
			s.retryWaiting(&runs[i], now) // the sweep queues it when due (retrywake.go)
			continue
		}
		err := s.enqueue(ctx, &runs[i])
		if tl := (*queue.JobTooLargeError)(nil); errors.As(err, &tl) {
			// Stored before its size was checked, or the NATS server's
			// max_payload shrank since: it can never be queued. Failing
			// it says why; leaving it would stop every run after it.
			if err = s.failUnqueueable(ctx, &runs[i], tl, now); err == nil {
				continue
			}
		}
		if err != nil {
			return queued, err
		}
		queued++
	}
	return queued, nil
}

// failUnqueueable fails a queued run whose job the queue refuses.
func (s *Server) failUnqueueable(ctx context.Context, r *jobs.Run, why error, now time.Time) error {
	reason := "Run could not be queued: " + why.Error()
	s.cfg.log.Error().Str("run", r.RunID).Msg(reason)
	changed := false
	s.lockOrder()
	stored, outbox, err := s.db.UpdateRunAnnounced(ctx, r.RunID, func(r *jobs.Run) (bool, bool) {
		if r.Status != jobs.StatusQueued {
			return false, false
		}
		at := now.UTC()
		r.Status, r.StopCode, r.StoppedReason, r.StatusReason, r.FinishedAt = jobs.StatusFailed, jobs.StopFailedToStart, reason, "", &at
		if a := r.Current(); a != nil {
			a.Status, a.StopCode, a.StoppedReason, a.FinishedAt = jobs.StatusFailed, jobs.StopFailedToStart, reason, &at
		}
		changed = true
		return true, true
	})
	if err == nil && changed {
		s.announceRun(stored, outbox)
	}
	s.unlockOrder()
	if err != nil {
		return err
	}
	if changed {
		s.metrics.runMoved(jobs.StatusQueued, false, stored)
		s.pipelinesChanged(ctx, stored)
		s.dependenciesMoved(ctx, stored)
	}
	return nil
}

// publishStatus tells followers of a run its new status, without the
// guarantee that the outbox gives (announce.go): for the changes of a
// run's statusReason alone. It does not wait: the store already holds the
// truth, and followers also poll it.
func (s *Server) publishStatus(r *jobs.Run) { s.sends().publishStatus(r) }

// publishStatus is Server.publishStatus within a hold of lockOrder.
func (h *heldSends) publishStatus(r *jobs.Run) {
	if _, err := h.publish(h.s.statusEvent(r)); err != nil {
		h.s.cfg.log.Warn().Err(err).Str("run", r.RunID).Msg("publish status")
	}
}

// announce is publishStatus for a change that b's events made, within a
// hold of lockOrder: b is acknowledged once the announcement is stored.
func (h *heldSends) announce(b *queue.EventBatch, r *jobs.Run) {
	f, err := h.publish(h.s.statusEvent(r))
	if err != nil {
		h.s.cfg.log.Warn().Err(err).Str("run", r.RunID).Msg("publish status; its report is applied again")
	}
	b.Announced(f, err)
}

// statusEvent is the announcement of a run's status.
func (s *Server) statusEvent(r *jobs.Run) *jobs.Event {
	ev := &jobs.Event{RunID: r.RunID, Attempt: currentAttempt(r), Status: r.Status, Source: jobs.SourceServer,
		Worker: r.Worker, Time: s.cfg.now().UTC(), ExitCode: r.ExitCode, StopCode: r.StopCode,
		StoppedReason: r.StoppedReason, StatusReason: r.StatusReason,
		TaskDefinition: r.TaskDefinition, Cluster: r.Cluster}
	if st := r.Spec.Stage; st != nil {
		ev.PipelineRunID, ev.Pipeline, ev.Stage, ev.ArrayIndex = st.PipelineRunID, st.Pipeline, st.Stage, st.ArrayIndex
	}
	if len(r.Containers) > 0 {
		ev.Containers = r.Containers // with their networkBindings once running
	}
	return ev
}

// currentAttempt is the number of r's current attempt, 0 for an array
// run's parent, which has none.
func currentAttempt(r *jobs.Run) int {
	if a := r.Current(); a != nil {
		return a.Attempt
	}
	return 0
}

// applyBatch stores a batch of worker events, tells followers and queues
// the retries it caused, then hands the batch to be acknowledged once
// what it told followers is stored (EventBatch.Ack). On a store error the
// batch is not acknowledged and comes back after the ack wait.
func (s *Server) applyBatch(ctx context.Context, b *queue.EventBatch) {
	start := time.Now()
	s.lockOrder() // to the send of the announcements (announce.go)
	changed, err := s.db.ApplyEventsChecking(ctx, b.Events, s.endClaim)
	if err != nil {
		s.unlockOrder()
		s.metrics.batchFailures.Inc()
		s.cfg.log.Error().Err(err).Int("events", len(b.Events)).Msg("apply events")
		return
	}
	sends := s.sends()
	for _, c := range changed {
		if !c.Before.Terminal() {
			// A run that had ended changes only in its attempts (one
			// that ran after its end, jobs.Attempt.AfterEnd, or the
			// attempt a stop left to its worker): its end was
			// announced, once (or, if a crash lost that, is
			// announced again by announceRedelivered).
			sends.announce(b, c.Run)
		}
	}
	s.unlockOrder()
	for _, c := range changed {
		r := c.Run
		s.metrics.runMoved(c.Before, c.StartedBefore, r)
		if now := s.cfg.now(); r.Status == jobs.StatusQueued && due(r, now) {
			if err := s.enqueue(ctx, r); err != nil {
				s.cfg.log.Error().Err(err).Str("run", r.RunID).Msg("queue retry")
			}
		} else {
			s.retryWaiting(r, now) // queued when its backoff ends (retrywake.go)
		}
	}
	if len(b.RedeliveredRuns()) > 0 {
		s.announceRedelivered(ctx, b, changed)
	}
	var moved, freed []*jobs.Run
	runs := make([]*jobs.Run, len(changed))
	for i, c := range changed {
		runs[i] = c.Run
	}
	// At once: an array run is recomputed once a batch, however many of
	// its children the batch changed (arrays.go).
	s.pipelinesChanged(ctx, runs...)
	for _, c := range changed {
		if c.Before != c.Run.Status {
			moved = append(moved, c.Run)
		} else if c.SlotFreed {
			freed = append(freed, c.Run)
		}
	}
	if len(moved) > 0 {
		// Runs may wait for these: released or failed at their end, told
		// of their new status before it (rundeps.go).
		s.dependenciesMoved(ctx, moved...)
	}
	if len(freed) > 0 {
		// Stopped runs whose worker reported the attempt it took ended:
		// their slots free (poolstop.go).
		s.poolsMoved(ctx, freed...)
	}
	b.Ack()
	s.metrics.batchApplied(len(b.Events), time.Since(start))
}

// announceRedelivered makes sure that the runs of b's redelivered reports
// that b did not change have their stored status announced: a server that
// applied such a report before may have died, or failed to publish,
// before its announcement was stored, and the report, applied again,
// changes nothing. It reads each run's last announcement (once the
// announcements on their way are stored, EventBatch.Settle) and
// publishes the stored status where that is not it. Only redelivered
// reports cost this: a read of the store and of the stream per run. An
// announcement on its way when the last one was read is announced twice.
func (s *Server) announceRedelivered(ctx context.Context, b *queue.EventBatch, changed []storage.Applied) {
	if err := b.Settle(ctx); err != nil {
		// ctx ended: the reports are delivered again, to the next server.
		// Acknowledged, their runs' announcements would go unchecked.
		b.Announced(nil, err)
		return
	}
	for _, id := range b.RedeliveredRuns() {
		if slices.ContainsFunc(changed, func(c storage.Applied) bool { return c.Run.RunID == id && !c.Before.Terminal() }) {
			continue // announced just now
		}
		// The last announcement is read before the run, as checkAnnounced
		// does, and the run read and announced holding lockOrder: a
		// change made meanwhile is then announced after this one.
		last, err := s.q.LastStatus(ctx, id)
		if err != nil {
			s.cfg.log.Warn().Err(err).Str("run", id).Msg("read the last status announced; its report is applied again")
			b.Announced(nil, err)
			continue
		}
		s.lockOrder()
		r, err := s.db.GetRun(ctx, id)
		switch {
		case errors.Is(err, jobs.ErrNotFound): // deleted since
		case err != nil:
			s.cfg.log.Warn().Err(err).Str("run", id).Msg("read redelivered report's run; its report is applied again")
			b.Announced(nil, err)
		case last != nil && last.Status == r.Status && last.Attempt == r.Current().Attempt:
		default:
			s.cfg.log.Info().Str("run", id).Str("status", string(r.Status)).
				Msg("announce a status a redelivered report changed, whose announcement was lost")
			s.sends().announce(b, r)
		}
		s.unlockOrder()
	}
}

// Stop cancels a run: at once if it is queued, through its worker if it
// runs. Stopping a run that ended changes nothing. A queued run of a pool
// whose job a worker had just taken keeps its slot until that worker has
// stopped it (poolstop.go).
func (s *Server) Stop(ctx context.Context, id, reason string) (*jobs.Run, error) {
	if reason == "" {
		reason = "Stopped by user"
	}
	r, err := s.db.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status.Terminal() {
		return r, nil
	}
	if r.ArrayParent() {
		return s.stopArray(ctx, id, reason) // arrays.go
	}
	taken, err := s.markCanceled(ctx, id, reason, r.Current()) // the claim of a worker that took the run's job
	if err != nil {
		return nil, err
	}
	var canceledHere bool
	s.lockOrder()
	r, outbox, err := s.db.UpdateRunAnnounced(ctx, id, func(r *jobs.Run) (bool, bool) {
		canceledHere = cancelRun(r, s.cfg.now().UTC(), reason, taken)
		return canceledHere, canceledHere
	})
	if err == nil && canceledHere {
		s.announceRun(r, outbox)
	}
	s.unlockOrder()
	if err != nil {
		return nil, err
	}
	if canceledHere {
		s.canceledQueued(r)
		s.dependenciesMoved(ctx, r) // rundeps.go
	}
	return r, nil
}

// markCanceled is the part of a stop that tells the queue: it marks run
// id canceled and records the stop in its claim (cancelClaim), and
// returns the claim of a worker that took its job, if one did.
func (s *Server) markCanceled(ctx context.Context, id, reason string, cur *jobs.Attempt) (*worker.Claimed, error) {
	var taken *worker.Claimed
	err := s.q.MarkCanceled(ctx, id, reason, func(ctx context.Context) (err error) {
		taken, err = s.cancelClaim(ctx, id, reason, cur)
		return err
	})
	return taken, err
}

// cancelRun cancels r if it is queued, as of the worker that took its
// job when one did (taken, markCanceled), and reports whether it did.
func cancelRun(r *jobs.Run, now time.Time, reason string, taken *worker.Claimed) bool {
	if taken != nil {
		return r.CancelTaken(now, reason, taken.Attempt, taken.Worker)
	}
	return r.Cancel(now, reason)
}

// canceledQueued counts run r, just stopped while queued, as moved, and
// says so when it keeps its pool slot for the worker that took its job.
func (s *Server) canceledQueued(r *jobs.Run) {
	s.metrics.runMoved(jobs.StatusQueued, false, r) // Cancel ends only QUEUED runs
	if k := r.PoolSlotKept; k != nil {
		s.cfg.log.Info().Str("run", r.RunID).Str("pool", r.Pool).Str("worker", k.Worker).Int("attempt", k.Attempt).
			Msg("stopped after a worker took its job: it keeps its slot until that worker reports the attempt ended")
	}
}

// cancelClaim records a stop in the run's claim when no worker holds it,
// so that the worker that takes its job next reports it canceled
// (worker.CancelClaim); cur is the run's current attempt as stored. A
// worker that holds it hears of the stop from the cancel message that
// follows: cancelClaim then returns its claim, unchanged.
func (s *Server) cancelClaim(ctx context.Context, id, reason string, cur *jobs.Attempt) (*worker.Claimed, error) {
	var current int
	var redelivery bool
	if cur != nil {
		current, redelivery = cur.Attempt, cur.Redelivery
	}
	for try := 0; try < 5; try++ {
		data, rev, err := s.q.Claim(ctx, id)
		if err != nil {
			return nil, err
		}
		next, ok := worker.CancelClaim(data, reason, current, redelivery)
		if !ok {
			c, _ := worker.ReadClaim(data) // CancelClaim read it: it is one
			return &c, nil
		}
		_, err = s.q.PutClaim(ctx, id, next, rev)
		if !errors.Is(err, queue.ErrClaimConflict) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("claim of run %s: too many concurrent changes", id)
}

// consumeSubmissions takes durable submissions from gantry.submit; see
// consumeDurable (submit.go), which also answers on Gantry-Reply-To.
func (s *Server) consumeSubmissions(ctx context.Context) error {
	return s.consumeDurable(ctx)
}
