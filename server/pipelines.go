package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// pipelines is the server's share of pipelines and schedules: the DAG that
// advances pipeline runs and the cron that fires schedules.
type pipelines struct {
	dag  *scheduler.DAG
	cron *scheduler.Cron
	// cronDone is closed once the cron's Run has returned.
	cronDone chan struct{}
	// after is told of every pipeline run that ends: backfills and
	// triggers (followups.go).
	after *followUps
	// data deletes stage files when their retention ends (retention.go).
	data *queue.Stager
	// deadlines are those of the active pipeline runs that have a
	// timeout (timeouts.go).
	deadlines *deadlines
	// sweep is held while the retention deletes a batch of runs' files,
	// and while a retry checks that the files it needs are there and
	// takes its run from the retention (retry.go).
	sweep sync.Mutex
	// gate is held for reading while a pipeline run is created from a
	// pipeline, and for writing while a pipeline is deleted (delete.go):
	// no run of a deleted pipeline is created after its delete looked at
	// its active runs.
	gate sync.RWMutex
}

func (s *Server) initPipelines() {
	opts := []scheduler.Option{scheduler.WithLogger(s.cfg.log.With().Str("role", "scheduler").Logger()),
		scheduler.WithClock(s.cfg.now), scheduler.WithOutcomes(s.metrics.fired)}
	data := queue.NewStager(s.q.JetStream(), s.cfg.dataRetention, s.q.Replicas())
	s.pipes = &pipelines{
		// The DAG reads the outputs of stages for arraySize: {fromOutput}
		// and when: {output}.
		dag:       scheduler.NewDAG(s.db, s, pipelinePublisher{s}, append(opts, scheduler.WithOutputs(data))...),
		cron:      scheduler.NewCron(scheduleStore{s.db}, pipelineFirer{s}, opts...),
		cronDone:  make(chan struct{}),
		after:     newFollowUps(),
		data:      data,
		deadlines: newDeadlines(),
	}
}

// startPipelines advances the pipeline runs a previous server left active
// (a crash may have come between a stage run's end and its advance, or
// between a run's creation and its first advance) and starts the cron. The
// returned function stops the cron and waits for it.
func (s *Server) startPipelines(ctx context.Context) (func(), error) {
	active, err := s.db.ListPipelineRuns(ctx, storage.PipelineRunFilter{Active: true})
	if err != nil {
		return nil, fmt.Errorf("find active pipeline runs: %w", err)
	}
	for _, pr := range active {
		// Noted before the advance, which tells of what it changes (a
		// run it ends, one it starts): a deadline that passed while no
		// server ran times its run out at once (startTimeouts).
		s.pipes.deadlines.note(&pr)
		// A stop (a user's, a timeout's) that a crash cut short before
		// it stopped the stage runs stops them now.
		s.pipes.dag.StopStageRuns(ctx, &pr)
		if _, err := s.pipes.dag.Advance(ctx, pr.PipelineRunID); err != nil {
			s.cfg.log.Error().Err(err).Str("pipelineRun", pr.PipelineRunID).Msg("resume pipeline run")
		}
	}
	if len(active) > 0 {
		s.cfg.log.Info().Int("pipelineRuns", len(active)).Msg("resumed active pipeline runs")
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	cronCtx, stopCron := context.WithCancel(cctx)
	wg.Go(func() {
		defer close(s.pipes.cronDone)
		s.pipes.cron.Run(cronCtx)
	})
	// The shutdown begins with the option's signal or with ctx's end,
	// whichever comes first (cctx ends with ctx).
	wg.Go(func() {
		select {
		case <-s.cfg.shutdown: // nil: never
		case <-cctx.Done():
		}
		s.beginShutdown()
		stopCron()
	})
	// Reads the outputs stages sized by one wait for, off the advances'
	// lock and the events' goroutine (asked for by the advances above too).
	wg.Go(func() { s.pipes.dag.RunDecisions(cctx) })
	s.startFollowUps(cctx, &wg)        // followups.go; retries failed advances too
	s.startDataRetention(cctx, &wg)    // retention.go
	s.startHistoryRetention(cctx, &wg) // history.go
	s.startTimeouts(cctx, &wg)         // timeouts.go
	return func() { stopCron(); cancel(); wg.Wait() }, nil
}

// beginShutdown stops the server starting work of its own accord
// (WithStartsUntil): from now on no trigger fires, no waiting pipeline
// run is promoted and no stage starts; the cron is stopped by the caller.
func (s *Server) beginShutdown() {
	if s.stopping.Swap(true) {
		return
	}
	s.pipes.dag.Hold()
	s.cfg.log.Info().Msg("shutting down: schedules fire no more, and no trigger, waiting pipeline run or stage starts; " +
		"the runs going on finish, and the next start starts what they let start")
}

// pipelineRetry is how often the pipeline runs whose advance or follow-ups
// failed (a store error, say) are tried again: nothing else would before
// the next start.
const pipelineRetry = 10 * time.Second

// pipelinesChanged advances the pipeline runs whose stage runs changed.
func (s *Server) pipelinesChanged(ctx context.Context, changed ...*jobs.Run) {
	for _, r := range changed {
		s.pipes.dag.RunChanged(ctx, r)
	}
	// Every change of a run is told here: array runs hear of their
	// children's too (arrays.go).
	s.arraysChanged(ctx, changed...)
}

// PipelineEventSubject carries the changes of one pipeline run.
func PipelineEventSubject(id string) string { return "gantry.events.pipelines." + id }

type pipelinePublisher struct{ s *Server }

// PublishPipelineRun tells followers of a pipeline run; it does not wait.
func (p pipelinePublisher) PublishPipelineRun(pr *jobs.PipelineRun) {
	p.s.pipes.deadlines.note(pr) // a start, a retry or an end moves it
	if pr.Status.Terminal() {
		// Once per end of a pipeline run: the DAG publishes an ended one
		// no more, until a retry (retry.go) runs it again.
		p.s.metrics.pipelineEnded(pr.Status)
		p.s.pipes.after.ended(pr)
	}
	ev := jobs.PipelineEvent{PipelineRunID: pr.PipelineRunID, Pipeline: pr.Pipeline, Status: pr.Status,
		StatusReason: pr.StatusReason, Stages: pr.StageStatuses(), Time: p.s.cfg.now().UTC()}
	data, err := json.Marshal(ev)
	if err != nil {
		return
	}
	if _, err := p.s.q.JetStream().PublishAsync(PipelineEventSubject(pr.PipelineRunID), data); err != nil {
		p.s.cfg.log.Warn().Err(err).Str("pipelineRun", pr.PipelineRunID).Msg("publish pipeline event")
	}
}

// scheduleStore adapts the store to the cron.
type scheduleStore struct{ db *storage.DB }

func (st scheduleStore) Schedules(ctx context.Context) ([]scheduler.Entry, error) {
	states, err := st.db.ListSchedules(ctx)
	if err != nil {
		return nil, err
	}
	var out []scheduler.Entry
	for _, state := range states {
		p, err := st.db.GetPipeline(ctx, state.Name, 0)
		if errors.Is(err, jobs.ErrNotFound) {
			continue // deleted since ListSchedules
		}
		if err != nil {
			return nil, err
		}
		if p.Schedule == nil {
			continue
		}
		out = append(out, scheduler.Entry{Pipeline: p, Suspended: state.Suspended, LastFire: state.LastFire, LastRun: state.LastRun})
	}
	return out, nil
}

func (st scheduleStore) SetLastFire(ctx context.Context, name string, t time.Time) error {
	return st.db.SetScheduleLastFire(ctx, name, t)
}

func (st scheduleStore) ActiveRuns(ctx context.Context, pipeline string) ([]jobs.PipelineRun, error) {
	// A deleted pipeline's runs, stopping after a forced delete, are not
	// the new pipeline's to forbid or replace.
	return st.db.ListPipelineRuns(ctx, storage.PipelineRunFilter{Pipeline: pipeline, Current: true, Active: true})
}

type pipelineFirer struct{ s *Server }

// Fire starts (or finds) the run of a schedule's fire time and records the
// time as the schedule's last run. A fire that fails is fired again at the
// next tick (the cron records nothing of it), which records it then.
func (f pipelineFirer) Fire(ctx context.Context, name string, t time.Time) (*jobs.PipelineRun, error) {
	pr, err := f.s.startPipelineRun(ctx, name, nil, "schedule", &t)
	if err != nil {
		return nil, err
	}
	if err := f.s.db.SetScheduleLastRun(ctx, name, t); err != nil {
		return nil, err
	}
	return pr, nil
}

func (f pipelineFirer) StopPipelineRun(ctx context.Context, id, reason string) error {
	_, err := f.s.pipes.dag.Stop(ctx, id, reason)
	return err
}

// scheduledRunID derives a pipeline run id from a schedule and a fire time,
// so that every attempt to fire it names the same run. A time a ULID
// cannot hold (checkScheduledTime) is an error.
func scheduledRunID(name string, t time.Time) (string, error) {
	if err := checkScheduledTime(t); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d", name, t.UnixNano())))
	id, err := ulid.New(ulid.Timestamp(t), bytes.NewReader(sum[:]))
	if err != nil {
		return "", jobs.Invalid(fmt.Sprintf("scheduled time %s: %v", t.UTC().Format(time.RFC3339Nano), err))
	}
	return jobs.PipelineRunPrefix + strings.ToLower(id.String()), nil
}

// The scheduled times a pipeline run id can hold: its ULID counts the
// milliseconds since 1970 in 48 bits, up to the year 10889.
var (
	minScheduledTime = time.UnixMilli(0).UTC()
	maxScheduledTime = time.UnixMilli(int64(ulid.MaxTime())).UTC()
)

// checkScheduledTime says why t cannot be a pipeline run's scheduled time,
// or returns nil.
func checkScheduledTime(t time.Time) error {
	switch {
	case t.Before(minScheduledTime):
		return jobs.Invalid(fmt.Sprintf("%s is before %s: pipeline runs cannot be scheduled before 1970",
			t.Format(time.RFC3339Nano), minScheduledTime.Format(time.RFC3339)))
	case t.After(maxScheduledTime):
		return jobs.Invalid(fmt.Sprintf("%s is after %s, the latest time a pipeline run can be scheduled for",
			t.Format(time.RFC3339Nano), maxScheduledTime.Format(time.RFC3339Nano)))
	}
	return nil
}

// ScheduleKey is the idempotency key of the run of a schedule at t.
func ScheduleKey(name string, t time.Time) string {
	return "schedule/" + name + "/" + t.UTC().Format(time.RFC3339Nano)
}

// startPipelineRun creates a run of the latest version of a pipeline and
// starts its first stages, or, if the pipeline has a maxActiveRuns, lets
// it wait PENDING for a place (promote, followups.go), as it does, with
// dependsOnPast and a scheduled time, for its previous run to succeed. With a scheduled time the run is the schedule's
// for that time: its id and idempotency key derive from both, and creating
// it again returns the first one.
// mods change the run before it is stored (a backfill's group, a
// trigger's key).
func (s *Server) startPipelineRun(ctx context.Context, name string, params map[string]string, trigger string, scheduled *time.Time,
	mods ...func(*jobs.PipelineRun)) (*jobs.PipelineRun, error) {
	s.pipes.gate.RLock() // until the run is stored
	p, err := s.db.GetPipeline(ctx, name, 0)
	if err != nil {
		s.pipes.gate.RUnlock()
		return nil, err
	}
	resolved, err := p.ResolveParams(params)
	if err != nil {
		s.pipes.gate.RUnlock()
		return nil, err
	}
	id := jobs.PipelineRunPrefix + s.newRunID()
	var key string
	if scheduled != nil {
		t := scheduled.UTC()
		scheduled = &t
		if id, err = scheduledRunID(name, t); err != nil {
			s.pipes.gate.RUnlock()
			return nil, err
		}
		key = ScheduleKey(name, t)
		resolved = p.ScheduledParams(resolved, t)
	}
	pr := scheduler.NewPipelineRun(p, id, resolved, s.cfg.now())
	pr.Trigger, pr.ScheduledTime, pr.IdempotencyKey = trigger, scheduled, key
	if p.MaxActiveRuns != nil || jobs.WaitsForPast(p, pr) {
		// It waits for a place, or for its previous run to succeed; the
		// promotion below starts it at once if it need not wait.
		pr.Status = jobs.StatusPending
	}
	for _, m := range mods {
		m(pr)
	}
	// Every source has given what it gives (the request, a trigger's
	// upstream run, the schedule's date): a required parameter still
	// missing refuses the run.
	if err := p.CheckRequired(pr.Parameters); err != nil {
		s.pipes.gate.RUnlock()
		return nil, jobs.Invalid(err.Error())
	}
	var stored *jobs.PipelineRun
	var created bool
	if scheduled != nil {
		stored, created, err = s.storeScheduled(ctx, p, pr, *scheduled)
	} else {
		stored, created, err = s.db.CreatePipelineRun(ctx, pr)
	}
	s.pipes.gate.RUnlock()
	if err != nil {
		return nil, err
	}
	if created && key != "" {
		// Within the duplicate window a second server firing the same time
		// is told so by JetStream as well as by the store's unique key.
		id, key := stored.PipelineRunID, stored.IdempotencyKey
		data, _ := json.Marshal(jobs.PipelineEvent{PipelineRunID: id, Pipeline: name, Status: pr.Status,
			Stages: pr.StageStatuses(), Time: s.cfg.now().UTC()})
		if _, err := s.q.JetStream().Publish(ctx, PipelineEventSubject(id), data, jetstream.WithMsgID(key)); err != nil {
			s.cfg.log.Warn().Err(err).Str("pipelineRun", id).Msg("publish fire")
		}
	}
	if stored.Status == jobs.StatusPending {
		// A failure leaves the run waiting, for the follow-ups to start.
		if err := s.promote(ctx, name); err != nil {
			s.cfg.log.Warn().Err(err).Str("pipelineRun", stored.PipelineRunID).Msg("start waiting pipeline runs")
		}
	}
	return s.pipes.dag.Advance(ctx, stored.PipelineRunID)
}

// storeScheduled stores pr, the run of pipeline p for the scheduled time
// t, under the id and idempotency key that derive from p's name and t, or
// returns the run that holds them (created false).
//
// A pipeline deleted and applied again is another pipeline: a time that a
// run of the deleted one holds gets, for the new one, an id and a key that
// derive from its name, the time and when the new pipeline's first version
// was stored ("schedule/<name>@<first version's time>/<time>"). Only such
// times do: a pipeline never deleted keeps the ids and keys it had, and
// the runs of the deleted one keep theirs. Pipeline runs are deleted only
// by --run-retention (history.go), long after they ended, so the run
// holding a key never changes while it is kept and every fire of a time
// names the same run; the cron never fires a time again (last_fire), and
// a backfill over a pruned range makes its times' runs anew.
func (s *Server) storeScheduled(ctx context.Context, p *jobs.Pipeline, pr *jobs.PipelineRun, t time.Time) (*jobs.PipelineRun, bool, error) {
	stored, created, err := s.db.CreatePipelineRun(ctx, pr)
	if err != nil || created || !stored.CreatedAt.Before(p.CreatedAt) {
		return stored, created, err // ours, or this version's
	}
	since, err := s.db.PipelineCreated(ctx, p.Name)
	if err != nil {
		return nil, false, err
	}
	if !stored.CreatedAt.Before(since) {
		return stored, false, nil // an earlier version's
	}
	// A deleted pipeline's run: created before this pipeline's first
	// version, and so before the delete (which waits for runs being
	// created, gate).
	name := p.Name + "@" + since.UTC().Format(time.RFC3339Nano) // '@' is in no pipeline name
	if pr.PipelineRunID, err = scheduledRunID(name, t); err != nil {
		return nil, false, err
	}
	pr.IdempotencyKey = ScheduleKey(name, t)
	return s.db.CreatePipelineRun(ctx, pr)
}

// API requests and replies of pipelines and schedules.

// PipelineApplyRequest carries a pipeline file, YAML or JSON.
type PipelineApplyRequest struct {
	Data []byte `json:"data"`
	// DryRun checks the file as an apply does, refusing what it refuses,
	// and says what it would store, storing nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

// PipelineApplyReply says which version an apply made, or, of a dry
// run, would make: Changed with the next version (1 for a new
// pipeline), or the latest version unchanged.
type PipelineApplyReply struct {
	Pipeline jobs.Pipeline `json:"pipeline"`
	Changed  bool          `json:"changed"`
	// DryRun says that nothing was stored.
	DryRun bool `json:"dryRun,omitempty"`
	// Changes, of a dry run making a new version of a pipeline, sum up
	// what differs from the latest one, a line each
	// (jobs.PipelineChanges).
	Changes []string `json:"changes,omitempty"`
}

// PipelineRunRequest starts a pipeline run.
type PipelineRunRequest struct {
	Name       string            `json:"name"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// Priority, when set, is that of every stage's runs, over what the
	// pipeline file says (high, normal or low).
	Priority jobs.Priority `json:"priority,omitempty"`
	// TimeoutSeconds, when set, bounds this run over the pipeline file's
	// timeoutSeconds (1 to 50 years); 0 keeps the file's.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// Tags are every stage's runs', over the pipeline file's key by key.
	Tags jobs.TagList `json:"tags,omitempty"`
	// Constraints hold for every stage's runs besides the pipeline
	// file's, which they must not contradict (jobs.CheckRunConstraints):
	// ["zone=eu-2", "gpu", "!spot"], or {"zone": "eu-2"}.
	Constraints jobs.Constraints `json:"constraints,omitempty"`
	// IdempotencyKey makes the run once: a request with a key that a run
	// of the pipeline holds returns that run, as it is now, whatever else
	// it asks (as runs.submit does), for as long as the run is kept. The
	// run holds it as "run/<pipeline>/<key>" (pipelineRunKey).
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// PipelineRunsRequest lists the runs of a pipeline.
type PipelineRunsRequest struct {
	Name   string `json:"name"`
	Limit  int    `json:"limit,omitempty"`
	Active bool   `json:"active,omitempty"`
}

// NameRequest names a pipeline or a schedule (and, for describe, a version).
type NameRequest struct {
	Name    string `json:"name"`
	Version int    `json:"version,omitempty"`
}

// PipelineRunRef names a pipeline run.
type PipelineRunRef struct {
	PipelineRunID string `json:"pipelineRunId"`
	Reason        string `json:"reason,omitempty"`
}

// BackfillRequest creates one run per fire time of a pipeline's schedule in
// [From, To].
type BackfillRequest struct {
	Name string    `json:"name"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// MaxParallel bounds the backfill's active runs; the others wait
	// PENDING and start as runs end. 0 starts them all at once.
	MaxParallel int `json:"maxParallel,omitempty"`
	// Priority, when set, is that of every stage's runs of the backfill,
	// over what the pipeline file says: low keeps a backfill from
	// delaying the scheduled runs.
	Priority jobs.Priority `json:"priority,omitempty"`
	// TimeoutSeconds, when set, bounds each run of the backfill over the
	// pipeline file's timeoutSeconds; 0 keeps the file's. Each run's
	// clock starts when it does, not while it waits PENDING.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// Tags are every stage's runs' of the backfill, over the pipeline
	// file's key by key.
	Tags jobs.TagList `json:"tags,omitempty"`
}

// ScheduleInfo is a schedule as `gantry schedule ls` shows it.
type ScheduleInfo struct {
	Name string `json:"name"`
	// Kind is pipeline, or task for a task schedule; Target is what it runs:
	// the pipeline's name, or the task definition (family[:rev]).
	Kind      string        `json:"kind"`
	Target    string        `json:"target"`
	Schedule  jobs.Schedule `json:"schedule"`
	Suspended bool          `json:"suspended"`
	// LastFire is the latest fire time handled: fired, skipped, missed or
	// passed while suspended (but for misfire: runAll, whose resume runs
	// those).
	LastFire *time.Time `json:"lastFire,omitempty"`
	// LastRun is the latest fire time that started (or found) a pipeline
	// run: when the schedule last ran.
	LastRun  *time.Time `json:"lastRun,omitempty"`
	NextFire *time.Time `json:"nextFire,omitempty"`
}

// MaxBackfill bounds the runs one backfill creates, as many as one
// catch-up of misfire: runAll fires.
const MaxBackfill = scheduler.MaxCatchUp

func (s *Server) apiPipelineApply(ctx context.Context, data []byte) (any, error) {
	var req PipelineApplyRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	p, err := jobs.DecodePipeline(req.Data)
	if err != nil {
		// The file's fault, whatever it is (a YAML syntax error is no
		// field's): not the server's internal.
		return nil, invalidJoin(asInvalid(err))
	}
	// Every problem at once: the file's own, unknown task definitions, and
	// (of a pipeline valid in itself) triggers.
	verr := p.Validate()
	var terr error
	if verr == nil {
		terr = s.checkTriggers(ctx, p) // followups.go
	}
	if err := invalidJoin(verr, s.checkStageRefs(ctx, p), terr); err != nil {
		return nil, err
	}
	if req.DryRun {
		// Reads only: no version, no schedule row, no cron wake, no
		// promotion, no event.
		next, prev, changed, err := s.db.PreviewPipeline(ctx, p, s.cfg.now())
		if err != nil {
			return nil, err
		}
		reply := PipelineApplyReply{Pipeline: *next, Changed: changed, DryRun: true}
		if changed && prev != nil {
			if reply.Changes = jobs.PipelineChanges(prev, next); len(reply.Changes) == 0 {
				// Equal in meaning, unequal as stored (an older gantry's
				// form of a field): an apply stores a new version all
				// the same.
				reply.Changes = []string{"no field differs in meaning; the stored form does"}
			}
		}
		return reply, nil
	}
	stored, changed, err := s.db.PutPipeline(ctx, p, s.cfg.now())
	if err != nil {
		return nil, err
	}
	s.pipes.cron.Wake()
	// A maxActiveRuns raised or removed starts the runs it leaves room
	// for. The apply is stored: a promotion that fails is tried again by
	// the follow-ups, as a failed advance is by the DAG.
	if err := s.promote(ctx, p.Name); err != nil {
		s.cfg.log.Warn().Err(err).Str("pipeline", p.Name).Msg("start waiting pipeline runs")
	}
	return PipelineApplyReply{Pipeline: *stored, Changed: changed}, nil
}

// asInvalid is err as an invalid_argument error, keeping its message.
func asInvalid(err error) error {
	if jobs.ErrorCode(err) == jobs.CodeInvalidArgument {
		return err
	}
	return jobs.Invalid(err.Error())
}

// checkStageRefs reports every stage whose family[:rev] the registry
// does not know, and the Ref::name references of those it knows to
// parameters the pipeline does not declare, and every stage whose pool
// does not exist (its runs would fail, naming it), as one error naming
// each stage.
func (s *Server) checkStageRefs(ctx context.Context, p *jobs.Pipeline) error {
	var problems []string
	for i, st := range p.Stages {
		if st.Pool != "" {
			var e *jobs.Error
			if _, err := s.checkPool(ctx, st.Pool); errors.As(err, &e) && e.Code == jobs.CodeNotFound {
				problems = append(problems, fmt.Sprintf("stages[%d](%s).%s", i, st.Name, e.Message))
			} else if err != nil {
				return err
			}
		}
		req := jobs.SubmitRequest{TaskDefinition: st.TaskDefinition}
		ref, _, err := req.TaskRef()
		if err != nil || ref == "" {
			continue
		}
		td, err := s.resolveTaskDef(ctx, ref)
		if err != nil {
			problems = append(problems, fmt.Sprintf("stages[%d](%s).taskDefinition: %v", i, st.Name, err))
			continue
		}
		if err := p.CheckRegisteredRefs(i, &td); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return jobs.Invalid(strings.Join(problems, "\n"))
	}
	return nil
}

func (s *Server) apiPipelineList(ctx context.Context, _ []byte) (any, error) {
	return s.db.ListPipelines(ctx)
}

func (s *Server) apiPipelineDescribe(ctx context.Context, data []byte) (any, error) {
	var req NameRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	return s.db.GetPipeline(ctx, req.Name, req.Version)
}

func (s *Server) apiPipelineRun(ctx context.Context, data []byte) (any, error) {
	var req PipelineRunRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, jobs.Invalid("name: required")
	}
	if err := invalidJoin(jobs.CheckPriority("priority", req.Priority),
		jobs.CheckTimeoutSeconds("timeoutSeconds", req.TimeoutSeconds),
		checkPipelineRunKey(req.IdempotencyKey)); err != nil {
		return nil, err
	}
	var key string
	if req.IdempotencyKey != "" {
		// A key taken returns its run before the request is checked
		// against the pipeline as it is now: a retry gets the run the
		// first request made, even once the file changed since.
		found, k, err := s.pipelineRunOfKey(ctx, req.Name, req.IdempotencyKey)
		if err != nil || found != nil {
			return found, err
		}
		key = k
	}
	if err := s.checkRunTags(ctx, req.Name, req.Tags); err != nil {
		return nil, err
	}
	if err := s.checkRunConstraints(ctx, req.Name, req.Constraints); err != nil {
		return nil, err
	}
	return s.startPipelineRun(ctx, req.Name, req.Parameters, "manual", nil, func(pr *jobs.PipelineRun) {
		pr.Priority, pr.Tags = req.Priority, req.Tags.Map()
		pr.Constraints = jobs.MergeConstraints(req.Constraints) // sorted by key, as a run's
		if req.TimeoutSeconds > 0 {
			pr.TimeoutSeconds = req.TimeoutSeconds
		}
		pr.IdempotencyKey = key
	})
}

// maxPipelineRunKey bounds a pipeline run's idempotencyKey, as a run's
// (jobs.SubmitRequest.Validate).
const maxPipelineRunKey = 512

func checkPipelineRunKey(key string) error {
	if len(key) > maxPipelineRunKey {
		return jobs.Invalid(fmt.Sprintf("idempotencyKey: longer than %d bytes", maxPipelineRunKey))
	}
	return nil
}

// pipelineRunKey is the key by which a run of pipeline holds a client's
// idempotencyKey: scoped to the pipeline, apart from gantry's own keys
// (schedule/..., trigger/...).
func pipelineRunKey(pipeline, key string) string {
	return "run/" + pipeline + "/" + key
}

// pipelineRunOfKey returns the run of pipeline name that holds the
// client's key, as it is now, or nil and the key a new run takes.
//
// As for scheduled runs (storeScheduled), a pipeline deleted and applied
// again is another pipeline: a key that a run of the deleted one holds
// is, for the new one, "run/<name>@<first version's time>/<key>". A run
// made under the plain key after this lookup, by a request racing this
// one, is found by CreatePipelineRun, which looks the key up in the
// insert's transaction.
func (s *Server) pipelineRunOfKey(ctx context.Context, name, key string) (*jobs.PipelineRun, string, error) {
	since, err := s.db.PipelineCreated(ctx, name)
	if err != nil {
		return nil, "", err
	}
	plain := pipelineRunKey(name, key)
	found, err := s.db.PipelineRunByKey(ctx, plain)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return nil, plain, nil
	case err != nil:
		return nil, "", err
	case !found.CreatedAt.Before(since):
		return found, plain, s.withStageReasons(ctx, found)
	}
	own := pipelineRunKey(name+"@"+since.UTC().Format(time.RFC3339Nano), key) // '@' is in no pipeline name
	found, err = s.db.PipelineRunByKey(ctx, own)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return nil, own, nil
	case err != nil:
		return nil, "", err
	}
	return found, own, s.withStageReasons(ctx, found)
}

// checkRunTags checks the tags a run of pipeline name is started with:
// each of them, and that no stage's runs would get more than jobs.MaxTags
// with the pipeline's and the stage's own.
func (s *Server) checkRunTags(ctx context.Context, name string, tags jobs.TagList) error {
	if len(tags) == 0 {
		return nil
	}
	if err := tags.Validate("tags"); err != nil {
		return err
	}
	p, err := s.db.GetPipeline(ctx, name, 0)
	if err != nil {
		return err
	}
	return p.CheckStageTags(tags)
}

// checkRunConstraints checks the constraints a run of pipeline name is
// started with: each of them, and that none contradicts the pipeline
// file's nor gives a stage's runs more than jobs.MaxConstraints.
func (s *Server) checkRunConstraints(ctx context.Context, name string, cs jobs.Constraints) error {
	if len(cs) == 0 {
		return nil
	}
	if err := cs.Validate("constraints"); err != nil {
		return err
	}
	p, err := s.db.GetPipeline(ctx, name, 0)
	if err != nil {
		return err
	}
	return p.CheckRunConstraints("constraints", cs)
}

func (s *Server) apiPipelineRuns(ctx context.Context, data []byte) (any, error) {
	var req PipelineRunsRequest
	if len(data) > 0 { // empty ok: the runs of every pipeline
		if err := decode(data, &req); err != nil {
			return nil, err
		}
	}
	if req.Limit <= 0 || req.Limit > 1000 {
		req.Limit = 100
	}
	if req.Name != "" {
		if _, err := s.db.GetPipeline(ctx, req.Name, 0); err != nil {
			return nil, err
		}
	}
	// Only the runs of the pipeline now applied under the name: those of
	// one deleted before are not its (they stay readable by id).
	runs, err := s.db.ListPipelineRuns(ctx, storage.PipelineRunFilter{Pipeline: req.Name, Current: req.Name != "",
		Limit: req.Limit, Active: req.Active})
	if err != nil {
		return nil, err
	}
	prs := make([]*jobs.PipelineRun, len(runs))
	for i := range runs {
		prs[i] = &runs[i]
	}
	if err := s.withStageReasons(ctx, prs...); err != nil {
		return nil, err
	}
	return runs, nil
}

func (s *Server) apiPipelineGet(ctx context.Context, data []byte) (any, error) {
	var req PipelineRunRef
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	pr, err := s.db.GetPipelineRun(ctx, req.PipelineRunID)
	if err != nil {
		return nil, s.explainPruned(err, req.PipelineRunID) // history.go
	}
	if err := s.withStageReasons(ctx, pr); err != nil {
		return nil, err
	}
	return pr, nil
}

// withStageReasons gives the stage runs of prs that have not ended the
// statusReason their runs have now (jobs.StageRun.StatusReason): why a
// stage that is RUNNING still waits is its runs' to say. The reasons are
// read when a pipeline run is shown rather than copied into it as they
// change: they change in many places (placement at submission and at
// every change of the fleet, pools, retries, image pulls), most of which
// would otherwise have to rewrite the pipeline run too, and far more
// often than a pipeline run is looked at. Ended pipeline runs have no
// run left waiting and are not looked at.
func (s *Server) withStageReasons(ctx context.Context, prs ...*jobs.PipelineRun) error {
	var ids []string
	for _, pr := range prs {
		if pr.Status.Terminal() {
			continue
		}
		for _, st := range pr.Stages {
			for _, r := range st.Runs {
				if !r.Status.Terminal() {
					ids = append(ids, r.RunID)
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	reasons, err := s.db.RunStatusReasons(ctx, ids)
	if err != nil {
		return err
	}
	for _, pr := range prs {
		for i := range pr.Stages {
			for j := range pr.Stages[i].Runs {
				r := &pr.Stages[i].Runs[j]
				r.StatusReason = reasons[r.RunID]
			}
		}
	}
	return nil
}

// apiPipelineStatus answers pipelines.status, the submit role's
// pipelines.get (gantry logs pr-...): the pipeline run without what it
// runs (pipelineRunStatus).
func (s *Server) apiPipelineStatus(ctx context.Context, data []byte) (any, error) {
	var req PipelineRunRef
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.PipelineRunID == "" {
		return nil, jobs.Invalid("pipelineRunId: required")
	}
	pr, err := s.db.GetPipelineRun(ctx, req.PipelineRunID)
	if err != nil {
		return nil, s.explainPruned(err, req.PipelineRunID) // history.go
	}
	// As runs.status shows a run's statusReason.
	if err := s.withStageReasons(ctx, pr); err != nil {
		return nil, err
	}
	return pipelineRunStatus(pr), nil
}

// pipelineRunStatus is a pipeline run as pipelines.status shows it: its
// stages in DAG order, with their runs, and without its spec (the stages'
// task definitions, commands and environment), its parameters (which go
// into those) and its idempotency key, as runs.status shows a run. What
// is left, the stage runs' ids included, a submitter reads on
// gantry.events.> already; an output value a stage's reason quotes
// (arraySize) is taken out (jobs.HideOutputValues).
func pipelineRunStatus(pr *jobs.PipelineRun) *jobs.PipelineRun {
	st := *pr
	st.Stages = pr.StagesInOrder()
	st.Spec = jobs.Pipeline{}
	st.Parameters = nil
	st.IdempotencyKey = ""
	// A stage whose arraySize read a bad output quotes its value in its
	// reason: the container's output, not the submitter's to read.
	st.StatusReason, st.StoppedReason = jobs.HideOutputValues(st.StatusReason), jobs.HideOutputValues(st.StoppedReason)
	st.Stages = slices.Clone(st.Stages)
	for i := range st.Stages {
		s := &st.Stages[i]
		s.Reason = jobs.HideOutputValues(s.Reason)
		s.EarlierTries = slices.Clone(s.EarlierTries)
		for j := range s.EarlierTries {
			s.EarlierTries[j].Reason = jobs.HideOutputValues(s.EarlierTries[j].Reason)
		}
	}
	return &st
}

func (s *Server) apiPipelineStop(ctx context.Context, data []byte) (any, error) {
	var req PipelineRunRef
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	return s.pipes.dag.Stop(ctx, req.PipelineRunID, req.Reason)
}

func (s *Server) apiPipelineBackfill(ctx context.Context, data []byte) (any, error) {
	var req BackfillRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if err := invalidJoin(jobs.CheckPriority("priority", req.Priority),
		jobs.CheckTimeoutSeconds("timeoutSeconds", req.TimeoutSeconds)); err != nil {
		return nil, err
	}
	if err := s.checkRunTags(ctx, req.Name, req.Tags); err != nil {
		return nil, err
	}
	p, err := s.db.GetPipeline(ctx, req.Name, 0)
	if err != nil {
		return nil, err
	}
	if p.Schedule == nil {
		return nil, jobs.Invalid(fmt.Sprintf("pipeline %s has no schedule to backfill: its times come from schedule.cron; add schedule: to its file and apply it, or run it now with gantry pipeline run %s", req.Name, req.Name))
	}
	// Each run's id holds its scheduled time (scheduledRunID): a range
	// outside what it can hold is refused before anything is created.
	var problems []string
	for _, f := range []struct {
		name string
		t    time.Time
	}{{"from", req.From}, {"to", req.To}} {
		if f.t.IsZero() {
			problems = append(problems, f.name+": required")
		} else if err := checkScheduledTime(f.t); err != nil {
			problems = append(problems, f.name+": "+err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, jobs.Invalid(strings.Join(problems, "\n"))
	}
	if req.To.Before(req.From) {
		return nil, jobs.Invalid(fmt.Sprintf("to: %s is before from (%s)", req.To.Format(time.RFC3339), req.From.Format(time.RFC3339)))
	}
	// The times are those the live schedule fires, counted from where it
	// does (an @every schedule's depend on it).
	entry := scheduler.Entry{Pipeline: p}
	states, err := s.db.ListSchedules(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		if st.Name == p.Name {
			entry.LastFire = st.LastFire
		}
	}
	times, err := scheduler.FireTimes(p.Schedule, entry.Base(), req.From, req.To, MaxBackfill+1)
	if err != nil {
		return nil, err
	}
	// A time yet to come is the schedule's to fire. Backfilled, it would
	// run now, before its data exists, and its fire, finding its run
	// there, would run nothing. Told before the count: a range reaching
	// into the future was refused as too long, and shortening it as told
	// met this refusal next. Looked for after now, not among times: those
	// are the range's first MaxBackfill+1, which a long range's future
	// ones lie past.
	now := s.cfg.now()
	if req.To.After(now) {
		after := now.Add(time.Nanosecond)
		if req.From.After(after) {
			after = req.From
		}
		next, err := scheduler.FireTimes(p.Schedule, entry.Base(), after, req.To, 1)
		if err != nil {
			return nil, err
		}
		if len(next) > 0 {
			return nil, jobs.Invalid(fmt.Sprintf("to: the range holds fire times yet to come (the first at %s); backfill up to now, the schedule fires the others",
				next[0].Format(time.RFC3339)))
		}
	}
	if len(times) > MaxBackfill {
		return nil, jobs.Invalid(fmt.Sprintf("the range holds more than %d fire times; backfill a shorter one", MaxBackfill))
	}
	return s.backfill(ctx, req, times) // followups.go
}

func (s *Server) apiScheduleList(ctx context.Context, _ []byte) (any, error) {
	entries, err := scheduleStore{s.db}.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	out := []ScheduleInfo{}
	now := s.cfg.now()
	for _, e := range entries {
		info := ScheduleInfo{Name: e.Pipeline.Name, Schedule: *e.Pipeline.Schedule, Suspended: e.Suspended}
		info.Kind, info.Target = scheduleTarget(e.Pipeline) // taskschedule.go
		if !e.LastFire.IsZero() {
			t := e.LastFire
			info.LastFire = &t
		}
		if !e.LastRun.IsZero() {
			t := e.LastRun
			info.LastRun = &t
		}
		if n, err := scheduler.NextFire(e.Pipeline.Schedule, e.Base(), now); err == nil && !n.IsZero() {
			info.NextFire = &n
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Server) setSuspended(ctx context.Context, data []byte, suspended bool) (any, error) {
	var req NameRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if err := s.db.SetScheduleSuspended(ctx, req.Name, suspended); err != nil {
		if errors.Is(err, jobs.ErrNotFound) {
			if _, perr := s.db.GetPipeline(ctx, req.Name, 0); perr == nil {
				return nil, noSchedule(req.Name)
			}
		}
		return nil, err
	}
	s.pipes.cron.Wake()
	return map[string]any{"name": req.Name, "suspended": suspended}, nil
}

func (s *Server) apiScheduleSuspend(ctx context.Context, data []byte) (any, error) {
	return s.setSuspended(ctx, data, true)
}

func (s *Server) apiScheduleResume(ctx context.Context, data []byte) (any, error) {
	return s.setSuspended(ctx, data, false)
}

// noSchedule is the not-found error of a schedule named after a pipeline
// that has none: it says what to do instead.
func noSchedule(name string) error {
	return jobs.NotFound(fmt.Sprintf("schedule %s: pipeline %s has no schedule: run it now with gantry pipeline run %s, "+
		"or add schedule: to its file and apply it", name, name, name))
}

// apiScheduleTrigger runs a scheduled pipeline now, as a fire at the
// current time would, outside its concurrency policy.
func (s *Server) apiScheduleTrigger(ctx context.Context, data []byte) (any, error) {
	var req NameRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	p, err := s.db.GetPipeline(ctx, req.Name, 0)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, jobs.NotFound(fmt.Sprintf("schedule %s: not found", req.Name))
	}
	if err != nil {
		return nil, err
	}
	if p.Schedule == nil {
		return nil, noSchedule(req.Name)
	}
	t := s.cfg.now().UTC()
	return s.startPipelineRun(ctx, req.Name, nil, "trigger", &t)
}
