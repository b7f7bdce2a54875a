package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is the state of a run or of one of its attempts.
type Status string

// The statuses of runs and attempts, in the order a run moves through them.
const (
	StatusQueued    Status = "QUEUED"
	StatusStarting  Status = "STARTING"
	StatusRunning   Status = "RUNNING"
	StatusSucceeded Status = "SUCCEEDED"
	StatusFailed    Status = "FAILED"
	StatusCanceled  Status = "CANCELED"
)

// Terminal reports whether nothing follows s.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// RunStatuses are the statuses of a run, in the order a run goes through
// them.
var RunStatuses = []Status{StatusQueued, StatusStarting, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled}

// ParseStatus accepts a status in any case.
func ParseStatus(s string) (Status, error) {
	switch st := Status(upper(s)); st {
	case StatusQueued, StatusStarting, StatusRunning, StatusSucceeded, StatusFailed, StatusCanceled:
		return st, nil
	}
	return "", fmt.Errorf("status %q: want one of QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELED%s", s, StatusHint(s, RunStatuses))
}

// StatusHint is "; did you mean "FAILED"?" for a status s that is not one
// of candidates but close to one (FAILD), or "".
func StatusHint(s string, candidates []Status) string {
	names := make([]string, len(candidates))
	for i, c := range candidates {
		names[i] = string(c)
	}
	if n := Nearest(strings.TrimSpace(s), names); n != "" {
		return fmt.Sprintf("; did you mean %q?", n)
	}
	return ""
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Stop codes say why a run stopped, as ECS's stopCode does.
const (
	StopEssentialExited = "EssentialContainerExited"
	StopUserInitiated   = "UserInitiated"
	StopTimeout         = "Timeout"
	StopFailedToStart   = "TaskFailedToStart"
	StopWorkerLost      = "WorkerLost"
	// StopTerminationNotice ends an attempt that its worker stopped
	// because it was shutting down (its grace period ran out). Like a
	// lost worker's, such an attempt does not count against
	// retryStrategy.attempts.
	StopTerminationNotice = "TerminationNotice"
)

// handedOn reports whether an attempt that ended with stopCode failed
// through no fault of its own (its worker was lost, or shut down), so that
// its job runs again as the next attempt whatever the retry strategy says.
func handedOn(stopCode string) bool {
	return stopCode == StopWorkerLost || stopCode == StopTerminationNotice
}

// ContainerResult is how one container of an attempt ended, or, while it
// runs, where it can be reached.
type ContainerResult struct {
	Name      string `json:"name"`
	ExitCode  *int   `json:"exitCode"`
	Reason    string `json:"reason"`
	OOMKilled bool   `json:"oomKilled,omitempty"`
	// NetworkBindings are the host ports published for the container's
	// portMappings, as ECS reports them: the port Docker picked when the
	// mapping's hostPort was 0 among them.
	NetworkBindings []NetworkBinding `json:"networkBindings,omitempty"`
}

// NetworkBinding is one published port of a container (ECS's
// NetworkBinding).
type NetworkBinding struct {
	BindIP        string `json:"bindIP"`
	ContainerPort int    `json:"containerPort"`
	HostPort      int    `json:"hostPort"`
	Protocol      string `json:"protocol"`
}

// Attempt is one try of a run on one worker.
type Attempt struct {
	Attempt       int               `json:"attempt"`
	Worker        string            `json:"worker"`
	Status        Status            `json:"status"`
	ExitCode      *int              `json:"exitCode"`
	StopCode      string            `json:"stopCode,omitempty"`
	StoppedReason string            `json:"stoppedReason"`
	CreatedAt     time.Time         `json:"createdAt"`
	StartedAt     *time.Time        `json:"startedAt"`
	FinishedAt    *time.Time        `json:"finishedAt"`
	Containers    []ContainerResult `json:"containers,omitempty"`
	// Seq is the sequence number of the last worker event applied.
	Seq int `json:"seq"`
	// NotBefore delays a retry: its job is queued at that time (backoff).
	NotBefore *time.Time `json:"notBefore,omitempty"`
	// QueuedAt is when the attempt's job went to the queue, where that is
	// later than its creation: the first attempt of a run that waited for
	// its dependencies (dependsOn) goes at the run's release.
	QueuedAt *time.Time `json:"queuedAt,omitempty"`
	// Redelivery marks an attempt that runs the job of a lost one, handed
	// to another worker by the queue: the server publishes nothing for it.
	Redelivery bool `json:"redelivery,omitempty"`
	// AfterEnd, set on an attempt that ran after its run had ended, says
	// why it ran (see Run.apply): a worker cut off from NATS for longer
	// than its lease, whose job went to another worker as the next
	// attempt, reported its own attempt's end first. Such an attempt is
	// recorded so that no execution goes unseen, but it changes neither
	// the run's status nor its exit code, is not the run's current
	// attempt (Current) and does not count against
	// retryStrategy.attempts.
	AfterEnd string `json:"afterEnd,omitempty"`
}

// RetryStrategy says how often a run is tried, as AWS Batch's does:
// Attempts is the total number of tries.
type RetryStrategy struct {
	Attempts       int              `json:"attempts,omitempty"`
	EvaluateOnExit []EvaluateOnExit `json:"evaluateOnExit,omitempty"`
	Backoff        *Backoff         `json:"backoff,omitempty"`
}

// ContainerOverride changes one container of a task for one run.
type ContainerOverride struct {
	Name        string     `json:"name"`
	Command     []string   `json:"command,omitempty"`
	Environment []KeyValue `json:"environment,omitempty"`
	CPU         *int       `json:"cpu,omitempty"`
	Memory      *int       `json:"memory,omitempty"`
}

// Overrides mirror ECS RunTask's overrides.
type Overrides struct {
	ContainerOverrides []ContainerOverride `json:"containerOverrides,omitempty"`
}

// RunSpec is everything a worker needs to run an attempt; the server fixes
// it at submission.
type RunSpec struct {
	Task           TaskDefinition `json:"task"`
	Overrides      *Overrides     `json:"overrides,omitempty"`
	TimeoutSeconds int            `json:"timeoutSeconds,omitempty"`
	RetryStrategy  *RetryStrategy `json:"retryStrategy,omitempty"`
	// ActiveDeadlineSeconds bounds the run over all its attempts; Deadline
	// is the time it ends, fixed at submission.
	ActiveDeadlineSeconds int        `json:"activeDeadlineSeconds,omitempty"`
	Deadline              *time.Time `json:"deadline,omitempty"`
	// Constraints are the labels the worker that runs the run must have
	// (constraints.go): the submission's over its task definition's
	// placementConstraints, key by key.
	Constraints Constraints `json:"constraints,omitempty"`
	// Stage is set on the runs of pipeline stages.
	Stage *StageContext `json:"stage,omitempty"`
}

// MaxAttempts is the number of tries the spec allows, at least one.
func (s RunSpec) MaxAttempts() int {
	if s.RetryStrategy == nil || s.RetryStrategy.Attempts < 1 {
		return 1
	}
	return s.RetryStrategy.Attempts
}

// Run is one execution of a task definition, with all its attempts.
type Run struct {
	RunID          string `json:"runId"`
	Status         Status `json:"status"`
	ExitCode       *int   `json:"exitCode"`
	StopCode       string `json:"stopCode"`
	StoppedReason  string `json:"stoppedReason"`
	StatusReason   string `json:"statusReason,omitempty"` // why a run not ended waits
	TaskDefinition string `json:"taskDefinition"`
	Cluster        string `json:"cluster"`
	Worker         string `json:"worker"`
	TargetWorker   string `json:"targetWorker,omitempty"`
	// Priority orders the run among those waiting in its cluster
	// (priority.go): high, normal or low. Its retries and redeliveries
	// keep it.
	Priority       Priority `json:"priority"`
	IdempotencyKey string   `json:"idempotencyKey,omitempty"`
	// Tags are the submission's (tags.go), fixed at submission: a map,
	// the shape that reads simplest in jq and matches how runs are
	// filtered (gantry ps --tag team=data).
	Tags       map[string]string `json:"tags,omitempty"`
	CreatedAt  time.Time         `json:"createdAt"`
	StartedAt  *time.Time        `json:"startedAt"`
	FinishedAt *time.Time        `json:"finishedAt"`
	Attempts   []Attempt         `json:"attempts"`
	Containers []ContainerResult `json:"containers"`
	// DependsOn are the runs this one waits for (rundeps.go): while it
	// waits it is QUEUED, its job unpublished.
	DependsOn []DependencyState `json:"dependsOn,omitempty"`
	// Pool is the pool the run takes a slot of (pool.go), empty for none.
	Pool string `json:"pool,omitempty"`
	// PoolSlotAt is when the run took its slot in Pool: it holds it until
	// it ends, over its retries. Nil while it waits for one.
	PoolSlotAt *time.Time `json:"poolSlotAt,omitempty"`
	// RerunOf is the run this one runs again (gantry rerun, rerun.go),
	// empty for a run submitted otherwise.
	RerunOf string `json:"rerunOf,omitempty"`
	// PoolSlotKept is set on a run stopped while QUEUED after a worker had
	// taken its job (pool.go, SlotKeep): ended, it still holds its slot
	// until that worker reports the attempt's end or is found lost.
	PoolSlotKept *SlotKeep `json:"poolSlotKept,omitempty"`
	// ArrayProperties are an array run's (its size and its children by
	// status) or an array child's (its index), arrayrun.go; ArrayJobID
	// names a child's parent, as AWS Batch's child job ids do.
	ArrayProperties *ArrayProperties `json:"arrayProperties,omitempty"`
	ArrayJobID      string           `json:"arrayJobId,omitempty"`
	// Spec is left out where a run is shown without it: by runs.status,
	// and in the reply to a submission that found the run by its
	// idempotency key (it may be someone else's).
	Spec RunSpec `json:"spec,omitzero"`
}

// Current is the latest attempt, or nil before the first. Attempts that
// ran after the run ended (AfterEnd) are not the run's: the current one is
// the attempt the run ended with.
func (r *Run) Current() *Attempt {
	for i := len(r.Attempts) - 1; i >= 0; i-- {
		if r.Attempts[i].AfterEnd == "" {
			return &r.Attempts[i]
		}
	}
	return nil
}

// Event is a status change of one attempt, reported by the worker running it
// (Source "worker") or made by the server (Source "server"). Worker events of
// an attempt carry increasing Seq numbers so that replaying one changes nothing.
type Event struct {
	V             PayloadVersion    `json:"v"` // wire.go
	RunID         string            `json:"runId"`
	Attempt       int               `json:"attempt"`
	Seq           int               `json:"seq"`
	Status        Status            `json:"status"`
	Source        string            `json:"source,omitempty"`
	Worker        string            `json:"worker,omitempty"`
	Time          time.Time         `json:"time"`
	ExitCode      *int              `json:"exitCode,omitempty"`
	StopCode      string            `json:"stopCode,omitempty"`
	StoppedReason string            `json:"stoppedReason,omitempty"`
	StatusReason  string            `json:"statusReason,omitempty"`
	Containers    []ContainerResult `json:"containers,omitempty"`
	// Redelivered, on a WorkerLost event, says that the lost attempt's job
	// went to another worker, which runs it as the next attempt; on a
	// TerminationNotice event, that the worker shutting down handed the
	// job back to the queue for the next attempt.
	Redelivered bool `json:"redelivered,omitempty"`
	// Pull, on a worker's STARTING event, is how far the pull of one of
	// the task's images has got (StatusReason says it in words).
	Pull *PullProgress `json:"pull,omitempty"`
	// TaskDefinition, Cluster, and on a pipeline stage's run PipelineRunID,
	// Pipeline (its name), Stage and, on a run of an array stage, its
	// ArrayIndex (StageContext's), are on the server's events only: what
	// a reader watching every run (gantry events) shows, without asking
	// the server for each. Pipeline is missing on the events of a stage
	// run queued before gantry kept it.
	TaskDefinition string `json:"taskDefinition,omitempty"`
	Cluster        string `json:"cluster,omitempty"`
	PipelineRunID  string `json:"pipelineRunId,omitempty"`
	Pipeline       string `json:"pipeline,omitempty"`
	Stage          string `json:"stage,omitempty"`
	ArrayIndex     *int   `json:"arrayIndex,omitempty"`
}

// Event sources.
const (
	SourceWorker = "worker"
	SourceServer = "server"
)

// giveUp reports whether ev is a worker's giving up on a run whose
// workers were lost too often (worker.MaxLosses).
func giveUp(ev Event) bool {
	return ev.StopCode == StopWorkerLost && !ev.Redelivered && ev.Status == StatusFailed && ev.Source == SourceWorker
}

// Apply folds a worker event into the run and reports whether anything
// changed. Events of an attempt apply in Seq order; a replayed or older one
// changes nothing, and so does anything after the attempt ended. A run that
// already ended (canceled while queued, say) keeps its status, but its attempt
// records what the worker reported; the events of the attempt after its last,
// which a worker ran although the run had ended, are recorded as an attempt
// of their own, marked AfterEnd (see lateAttempt).
func (r *Run) Apply(ev Event) bool {
	if r.PoolSlotKept == nil {
		return r.apply(ev)
	}
	freed := r.slotFreedBy(ev) // pool.go
	return r.apply(ev) || freed
}

func (r *Run) apply(ev Event) bool {
	if ev.Attempt == len(r.Attempts)+1 && r.Status.Terminal() && len(r.Attempts) > 0 && ev.Source != SourceServer {
		r.Attempts = append(r.Attempts, r.lateAttempt(ev))
	}
	filled := false
	if ev.Attempt > len(r.Attempts) && !r.Status.Terminal() && ev.Source == SourceWorker {
		filled = r.fillLost(ev)
	}
	if ev.Attempt < 1 || ev.Attempt > len(r.Attempts) {
		return filled
	}
	a := &r.Attempts[ev.Attempt-1]
	if last := &r.Attempts[len(r.Attempts)-1]; giveUp(ev) && a.Status.Terminal() && ev.Attempt == len(r.Attempts)-1 &&
		last.Redelivery && last.Status == StatusQueued {
		// The server found the worker lost first and queued its job's
		// redelivery as the next attempt; the worker that took the job
		// gives up on the run (too many lost workers): the redelivery,
		// which no job will run now, ends with it.
		// The event names the lost attempt's worker, which never ran
		// this one.
		ev.Attempt, ev.Worker, a = last.Attempt, "", last
	}
	if ev.Seq <= a.Seq || a.Status.Terminal() {
		return false
	}
	a.Seq = ev.Seq
	a.Status = ev.Status
	if ev.Worker != "" {
		a.Worker = ev.Worker
	}
	t := ev.Time
	if ev.Status == StatusRunning && a.StartedAt == nil {
		a.StartedAt = &t
	}
	if !ev.Status.Terminal() && len(ev.Containers) > 0 {
		a.Containers = ev.Containers // running containers' network bindings
	}
	if ev.Status.Terminal() {
		a.FinishedAt = &t
		a.ExitCode = ev.ExitCode
		a.StopCode = ev.StopCode
		a.StoppedReason = ev.StoppedReason
		a.Containers = ev.Containers
	}
	if ev.Attempt != len(r.Attempts) || r.Status.Terminal() {
		return true
	}
	if handedOn(ev.StopCode) && ev.Redelivered {
		// The queue hands the job to another worker (or this one, back):
		// it runs the next attempt, and nothing needs publishing.
		r.Attempts = append(r.Attempts, Attempt{Attempt: len(r.Attempts) + 1, Status: StatusQueued,
			CreatedAt: t, Redelivery: true})
		r.Status = StatusQueued
		how := "lost with"
		if ev.StopCode == StopTerminationNotice {
			how = "handed back by"
		}
		r.StatusReason = fmt.Sprintf("attempt %d %s worker %s: %s", ev.Attempt, how, orNone(ev.Worker), ev.StoppedReason)
		return true
	}
	r.Status = ev.Status
	r.StatusReason = ""
	if !ev.Status.Terminal() {
		r.StatusReason = ev.StatusReason // "pulling image ...", say
	}
	r.Worker = a.Worker
	if ev.Status == StatusRunning && r.StartedAt == nil {
		r.StartedAt = &t
	}
	if !ev.Status.Terminal() && len(ev.Containers) > 0 {
		r.Containers = ev.Containers
	}
	if ev.Status.Terminal() {
		r.ExitCode = ev.ExitCode
		r.StopCode = ev.StopCode
		r.StoppedReason = ev.StoppedReason
		// An attempt that ended before any container was made has none:
		// the run's containers are [], as the run JSON has them, not null.
		r.Containers = ev.Containers
		if r.Containers == nil {
			r.Containers = []ContainerResult{}
		}
		if r.Retry(t) {
			return true
		}
		r.FinishedAt = &t
	}
	return true
}

// fillLost records as lost the attempts before ev's that the run does not
// know the end of: each worker's report that the attempt before its own
// was lost with its worker never reached the server (that worker was
// killed, or cut off, after it claimed the job and before the report was
// stored). A worker runs an attempt after the run's last only by taking
// over the job from the last attempt's claim (worker.claimDelivery), so
// each missing one was taken for lost; without them, the attempt that
// runs now, and its end, would be dropped as of an attempt the run does
// not have, and the run would wait forever. It reports whether anything
// changed.
func (r *Run) fillLost(ev Event) bool {
	changed := false
	for len(r.Attempts) > 0 && len(r.Attempts) < ev.Attempt && !r.Status.Terminal() {
		last := r.Attempts[len(r.Attempts)-1]
		if last.Status.Terminal() {
			return changed // nothing runs it on: a retry appends the next
		}
		n := len(r.Attempts)
		who := "its worker" // one whose report of the attempt's start never came either
		if last.Worker != "" {
			who = "worker " + last.Worker
		}
		lost := Event{RunID: r.RunID, Attempt: n, Seq: last.Seq + 1, Status: StatusFailed, Source: SourceWorker,
			Worker: last.Worker, Time: ev.Time, StopCode: StopWorkerLost, Redelivered: true,
			StoppedReason: who + " was taken for lost and the job ran on as a later attempt; the report of this attempt's loss did not reach the server"}
		if !r.apply(lost) || len(r.Attempts) == n {
			return changed
		}
		changed = true
	}
	return changed
}

// lateAttempt is the attempt that ev, of the attempt after the last of a
// run that ended, begins. Only a worker whose claim on the run's job found
// the last attempt's worker lost runs that attempt (worker.claimDelivery):
// that worker had stopped renewing its lease, killed or cut off from NATS
// for longer than the lease, and the queue handed the job on. A cut-off
// worker lives on: the end it reported came first and ended the run, and
// the loss the next worker reported came too late to change it. That
// attempt still ran, containers and all: it is recorded, after the end.
// Recording it costs nothing more than any report does (the run is read
// and written for its events anyway), where refusing the cut-off worker's
// end would need its claim read for every end.
func (r *Run) lateAttempt(ev Event) Attempt {
	prev := r.Attempts[len(r.Attempts)-1]
	why := fmt.Sprintf("ran after the run had ended: worker %s's lease on the job of attempt %d ran out (killed, restarted or cut off from NATS) and the queue handed the job to worker %s as attempt %d; attempt %d's end, reported meanwhile, had ended the run, whose status and exit code this attempt does not change",
		orNone(prev.Worker), prev.Attempt, orNone(ev.Worker), ev.Attempt, prev.Attempt)
	if prev.Worker == "" {
		// Its worker never reported (a run canceled while queued).
		why = fmt.Sprintf("ran after the run had ended: the queue delivered its job to worker %s after attempt %d had ended the run, whose status and exit code this attempt does not change",
			orNone(ev.Worker), prev.Attempt)
	}
	return Attempt{Attempt: ev.Attempt, Status: StatusQueued, CreatedAt: ev.Time, AfterEnd: why}
}

// Retry starts a new attempt, QUEUED, if the current one failed in a way
// worth trying again (its evaluateOnExit rules say so), the spec allows
// another try, the run's deadline leaves time for it and, for a stage's
// run, its exit is not one of the stage's skipOnExitCode. The new attempt
// waits for its backoff: its NotBefore is set.
func (r *Run) Retry(now time.Time) bool {
	a := r.Current()
	if a == nil || a.Status != StatusFailed || a.StopCode == StopUserInitiated || a.StopCode == StopWorkerLost ||
		r.Tries() >= r.Spec.MaxAttempts() || !r.Spec.RetryStrategy.ShouldRetry(a) {
		return false
	}
	if sc := r.Spec.Stage; sc != nil {
		// An exit that says "nothing to do" is no failure to try again,
		// as if an EXIT rule for it came first in evaluateOnExit.
		if code, ok := skipExit(sc.SkipOnExitCode, a.Status, a.StopCode, a.ExitCode); ok {
			r.StoppedReason = fmt.Sprintf("%s; not retried: exit code %d is in skipOnExitCode of stage %s",
				orNone(r.StoppedReason), code, sc.Stage)
			return false
		}
	}
	n := r.Tries()
	delay := r.Spec.RetryStrategy.backoff().Delay(n, jitter(r.RunID, n+1))
	at := now.Add(delay)
	if d := r.Spec.Deadline; d != nil && !at.Before(*d) {
		r.StoppedReason = fmt.Sprintf("%s; not retried: activeDeadlineSeconds=%d passes before attempt %d could start",
			orNone(r.StoppedReason), r.Spec.ActiveDeadlineSeconds, a.Attempt+1)
		return false
	}
	r.Attempts = append(r.Attempts, Attempt{Attempt: len(r.Attempts) + 1, Status: StatusQueued, CreatedAt: now, NotBefore: &at})
	r.Status = StatusQueued
	// The time alone read as a past one: the backoff says it is to come.
	r.StatusReason = fmt.Sprintf("retry %d of %d after attempt %d failed (%s): backoff %s, queued after %s", n, r.Spec.MaxAttempts()-1,
		a.Attempt, orNone(a.StopCode), delay.Round(100*time.Millisecond), at.UTC().Format("2006-01-02T15:04:05.0Z07:00"))
	return true
}

// Tries counts the attempts that count against retryStrategy.attempts: all
// but those lost with their worker, which the queue redelivers anyway,
// those their worker stopped as it shut down, and those that ran after the
// run ended.
func (r *Run) Tries() int {
	n := 0
	for _, a := range r.Attempts {
		if !handedOn(a.StopCode) && a.AfterEnd == "" {
			n++
		}
	}
	return n
}

func (s *RetryStrategy) backoff() *Backoff {
	if s == nil {
		return nil
	}
	return s.Backoff
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Cancel ends a run that no worker has started yet. It reports false when
// the run is already past that point, where only its worker can stop it.
func (r *Run) Cancel(now time.Time, reason string) bool {
	if r.Status != StatusQueued {
		return false
	}
	r.Status = StatusCanceled
	r.StopCode = StopUserInitiated
	r.StoppedReason = reason
	r.StatusReason = ""
	r.FinishedAt = &now
	if a := r.Current(); a != nil {
		a.Status = StatusCanceled
		a.StopCode = StopUserInitiated
		a.StoppedReason = reason
		a.FinishedAt = &now
	}
	return true
}

// Job is the queue message that asks a worker to run one attempt.
type Job struct {
	RunID   string `json:"runId"`
	Attempt int    `json:"attempt"`
	Cluster string `json:"cluster"`
	Worker  string `json:"worker,omitempty"`
	// Priority is high or low, or empty for normal: a normal job's
	// message is as before priorities came, on gantry.jobs.<cluster>.
	Priority Priority `json:"priority,omitempty"`
	Spec     RunSpec  `json:"spec"`
}

// SubmitRequest asks for a new run. It mirrors ECS RunTask and AWS Batch
// SubmitJob: TaskDefinition is "family[:revision]" or an inline task
// definition.
type SubmitRequest struct {
	TaskDefinition json.RawMessage `json:"taskDefinition"`
	Cluster        string          `json:"cluster,omitempty"`
	Worker         string          `json:"worker,omitempty"`
	Overrides      *Overrides      `json:"overrides,omitempty"`
	TimeoutSeconds int             `json:"timeoutSeconds,omitempty"`
	// Priority is high, normal (the default, also when empty) or low.
	Priority       Priority       `json:"priority,omitempty"`
	RetryStrategy  *RetryStrategy `json:"retryStrategy,omitempty"`
	IdempotencyKey string         `json:"idempotencyKey,omitempty"`
	// Tags label the run (tags.go): ECS RunTask's list of {key, value}
	// or AWS Batch SubmitJob's object.
	Tags TagList `json:"tags,omitempty"`
	// PropagateTags TASK_DEFINITION gives the run its task definition's
	// tags too, its own winning key by key, as ECS RunTask's does; NONE
	// or empty does not.
	PropagateTags string `json:"propagateTags,omitempty"`
	// DependsOn names runs to wait for, as AWS Batch's dependsOn
	// (rundeps.go): the run is queued once each ended as its condition
	// asks, and fails without running if one cannot.
	DependsOn []RunDependency `json:"dependsOn,omitempty"`
	// Pool names a pool (pool.go) the run takes a slot of from its
	// release to its end: while the pool is full it waits QUEUED. The
	// pool must exist.
	Pool string `json:"pool,omitempty"`
	// Constraints place the run on a worker whose labels satisfy them
	// (constraints.go): ["disk=ssd", "zone!=eu-1"], or {"disk": "ssd"}
	// as Kubernetes' nodeSelector. The task definition's
	// placementConstraints hold too, these replacing them key by key.
	Constraints Constraints `json:"constraints,omitempty"`
	// ActiveDeadlineSeconds bounds the whole run, every attempt and the
	// waits between them (Kubernetes Job's field); 0 means no bound.
	ActiveDeadlineSeconds int `json:"activeDeadlineSeconds,omitempty"`
	// ArrayProperties, AWS Batch's, make an array run of Size children
	// (arrayrun.go), each an ordinary run of the task.
	ArrayProperties *SubmitArrayProperties `json:"arrayProperties,omitempty"`
	// Stage is set by the pipeline scheduler on the runs of stages; a
	// submission from outside may not set it, so the API's schema leaves
	// it out.
	Stage *StageContext `json:"stage,omitempty" schema:"-"`
}

// TaskRef returns the family:revision reference of the request, or the
// inline task definition, exactly one of them non-empty.
func (s SubmitRequest) TaskRef() (ref string, inline *TaskDefinition, err error) {
	return s.taskRef(ParseTaskDefinition)
}

// StoredTaskRef is TaskRef for the run of a stored pipeline's stage: an
// inline definition was checked when the pipeline was applied, perhaps by
// an older gantry with looser rules, and is read as stored (see
// DecodeStoredTaskDefinition). Only the problems a run's overrides bring
// refuse it.
func (s SubmitRequest) StoredTaskRef() (ref string, inline *TaskDefinition, err error) {
	return s.taskRef(DecodeStoredTaskDefinition)
}

func (s SubmitRequest) taskRef(decode func([]byte) (*TaskDefinition, error)) (ref string, inline *TaskDefinition, err error) {
	raw := s.TaskDefinition
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, &FieldError{Path: "taskDefinition", Msg: "required"}
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &ref); err != nil {
			return "", nil, &FieldError{Path: "taskDefinition", Msg: err.Error()}
		}
		if _, _, err := ParseRef(ref); err != nil {
			return "", nil, &FieldError{Path: "taskDefinition", Msg: err.Error()}
		}
		return ref, nil, nil
	}
	td, err := decode(raw)
	var fe *FieldError
	switch {
	case err == nil:
		return "", td, nil
	case !errors.As(err, &fe):
		// No JSON object at all (a number, a list, bad JSON): the field
		// is wrong as a whole, a problem of the request's, not the
		// server's (its code was internal).
		return "", nil, &FieldError{Path: "taskDefinition", Msg: strings.TrimPrefix(err.Error(), "task definition: ")}
	}
	return "", nil, prefixErrors("taskDefinition.", err)
}

// Validate collects the problems of the request's own fields.
func (s SubmitRequest) Validate() error {
	var errs []error
	if s.Cluster != "" && !validName(s.Cluster) {
		errs = append(errs, &FieldError{"cluster", fmt.Sprintf("%q: use letters, digits, '-' and '_'", s.Cluster)})
	}
	if s.Worker != "" && !validName(s.Worker) {
		errs = append(errs, &FieldError{"worker", fmt.Sprintf("%q: use letters, digits, '-' and '_'", s.Worker)})
	}
	if s.TimeoutSeconds < 0 {
		errs = append(errs, &FieldError{"timeoutSeconds", "must not be negative"})
	} else if s.TimeoutSeconds > MaxDurationSeconds {
		errs = append(errs, &FieldError{"timeoutSeconds", tooLong(s.TimeoutSeconds)})
	}
	if err := CheckPriority("priority", s.Priority); err != nil {
		errs = append(errs, err)
	}
	if rs := s.RetryStrategy; rs != nil {
		if err := rs.validate("retryStrategy."); err != nil {
			errs = append(errs, unjoin(err)...)
		}
	}
	if s.ActiveDeadlineSeconds < 0 {
		errs = append(errs, &FieldError{"activeDeadlineSeconds", "must not be negative"})
	} else if s.ActiveDeadlineSeconds > MaxDurationSeconds {
		errs = append(errs, &FieldError{"activeDeadlineSeconds", tooLong(s.ActiveDeadlineSeconds)})
	}
	if err := s.Tags.Validate("tags"); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	if err := CheckPropagateTags("propagateTags", s.PropagateTags); err != nil {
		errs = append(errs, err)
	}
	if err := s.Constraints.Validate("constraints"); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	errs = append(errs, validateRunDependencies(s.DependsOn)...)
	if s.Pool != "" {
		if err := CheckPoolName("pool", s.Pool); err != nil {
			errs = append(errs, err)
		}
	}
	if s.ArrayProperties != nil {
		if err := s.ArrayProperties.validate(); err != nil {
			errs = append(errs, err)
		}
	} else if i := slices.IndexFunc(s.DependsOn, func(d RunDependency) bool { return d.Type == DependencySequential }); i >= 0 {
		errs = append(errs, &FieldError{fmt.Sprintf("dependsOn[%d].type", i),
			`SEQUENTIAL orders the children of an array run: give "arrayProperties": {"size": N} too`})
	}
	if len(s.IdempotencyKey) > 512 {
		errs = append(errs, &FieldError{"idempotencyKey", "longer than 512 bytes"})
	}
	return errors.Join(errs...)
}

// MaxDurationSeconds bounds timeoutSeconds and activeDeadlineSeconds: 50
// years of 365 days. Far beyond any run, it fits an int on 32-bit systems,
// keeps a duration in seconds well inside time.Duration (292 years; 10
// digits, a common "no limit", overflowed it and timed the run out at
// once), and a deadline set before the year 2212 inside the unix
// nanoseconds the store keeps (up to 2262).
const MaxDurationSeconds = 50 * 365 * 24 * 60 * 60

// CheckTimeoutSeconds says why s cannot be the timeoutSeconds of a
// pipeline run, at path (the pipeline file's field, or a request's), or
// returns nil: 0 is no limit, else 1s to 50 years.
func CheckTimeoutSeconds(path string, s int) error {
	switch {
	case s < 0:
		return &FieldError{path, fmt.Sprintf("%d: must be positive; leave it out for no limit", s)}
	case s > MaxDurationSeconds:
		return &FieldError{path, tooLong(s)}
	}
	return nil
}

func tooLong(s int) string {
	return fmt.Sprintf("%d: must be at most %d (50 years); leave it out for no limit", s, MaxDurationSeconds)
}

// prefixErrors puts prefix before the path of every FieldError in err,
// and before the paths its message names under the same field ("contradicts
// placementConstraints[0]" of placementConstraints[1]): a message naming a
// sibling by a path the error's own no longer starts from misleads.
func prefixErrors(prefix string, err error) error {
	var out []error
	for _, e := range unjoin(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, &FieldError{Path: prefix + fe.Path, Msg: prefixRefs(fe.Msg, fe.Path, prefix)})
		} else {
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// prefixRefs puts prefix before each path in msg that starts with the
// first field of path and goes on into it ("placementConstraints[" or
// "placementConstraints." for path placementConstraints[1]), where such a
// path starts: not inside a longer name or path.
func prefixRefs(msg, path, prefix string) string {
	root := path
	if i := strings.IndexAny(path, ".[("); i > 0 {
		root = path[:i]
	}
	if root == "" || !strings.Contains(msg, root) {
		return msg
	}
	var b strings.Builder
	for rest := msg; ; {
		i := strings.Index(rest, root)
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		after := rest[i+len(root):]
		starts := i == 0 || !pathRune(rest[i-1])
		if starts && (strings.HasPrefix(after, "[") || strings.HasPrefix(after, ".")) {
			b.WriteString(rest[:i])
			b.WriteString(prefix)
		} else {
			b.WriteString(rest[:i])
		}
		b.WriteString(root)
		rest = after
	}
}

// pathRune reports whether c may be inside a field path, before one of
// its names: a path does not start after it.
func pathRune(c byte) bool {
	return c == '.' || c == ']' || c == ')' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// WithOverrides returns the task definition with the run's overrides applied.
func (td TaskDefinition) WithOverrides(o *Overrides) (TaskDefinition, error) {
	if o == nil {
		return td, nil
	}
	out := td
	out.ContainerDefinitions = append([]ContainerDefinition(nil), td.ContainerDefinitions...)
	var errs []error
	for i, co := range o.ContainerOverrides {
		if co.Name == "" {
			// No name, as in AWS Batch's containerOverrides: every container.
			if err := applyToAll(&out, co, i); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		idx := -1
		for j := range out.ContainerDefinitions {
			if out.ContainerDefinitions[j].Name == co.Name {
				idx = j
			}
		}
		if idx < 0 {
			errs = append(errs, &FieldError{fmt.Sprintf("overrides.containerOverrides[%d].name", i),
				fmt.Sprintf("no container %q in task definition %s", co.Name, td.Family)})
			continue
		}
		out.ContainerDefinitions[idx].apply(co)
	}
	if err := errors.Join(errs...); err != nil {
		return td, err
	}
	return out, introduced(out.Validate(), td.Validate())
}

// introduced is what of err (the problems of a definition with a run's
// overrides) before (those of the definition itself) does not hold: a
// definition registered before a rule was added stays runnable, and only
// a problem the overrides brought refuses the run.
func introduced(err, before error) error {
	if err == nil || before == nil {
		return err
	}
	had := map[string]bool{}
	for _, e := range unjoin(before) {
		had[e.Error()] = true
	}
	var errs []error
	for _, e := range unjoin(err) {
		if !had[e.Error()] {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// apply sets what the override changes in the container.
func (c *ContainerDefinition) apply(co ContainerOverride) {
	if co.Command != nil {
		c.Command = co.Command
	}
	if len(co.Environment) > 0 {
		c.Environment = mergeEnv(c.Environment, co.Environment)
	}
	if co.CPU != nil {
		c.CPU = *co.CPU
	}
	if co.Memory != nil {
		c.Memory = *co.Memory
	}
}

func mergeEnv(base, over []KeyValue) []KeyValue {
	out := append([]KeyValue(nil), base...)
	for _, kv := range over {
		replaced := false
		for i := range out {
			if out[i].Name == kv.Name {
				out[i].Value, replaced = kv.Value, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
