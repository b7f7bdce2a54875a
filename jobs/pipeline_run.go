package jobs

import (
	"fmt"
	"strings"
	"time"
)

// Statuses of stages beside those runs share.
const (
	// StatusPending is a stage waiting for its dependencies.
	StatusPending Status = "PENDING"
	// StatusSkipped is a stage whose dependencies ended so that it can never
	// run, or whose runs all exited with one of its skipOnExitCode codes:
	// they found nothing to do.
	StatusSkipped Status = "SKIPPED"
)

// PipelineRunPrefix starts every pipeline run id, so that commands taking
// a run id can tell the two apart.
const PipelineRunPrefix = "pr-"

// IsPipelineRunID reports whether id names a pipeline run.
func IsPipelineRunID(id string) bool { return strings.HasPrefix(id, PipelineRunPrefix) }

// PipelineRun is one execution of a pipeline with the state of each stage.
type PipelineRun struct {
	PipelineRunID string `json:"pipelineRunId"`
	Pipeline      string `json:"pipeline"`
	Version       int    `json:"version"`
	// Status is RUNNING until the run ends SUCCEEDED, FAILED or CANCELED;
	// PENDING before, while the run waits for its turn (a backfill's
	// maxParallel, the pipeline's maxActiveRuns, its previous run's
	// success with dependsOnPast: StatusReason says which).
	Status Status `json:"status"`
	// StatusReason says why a PENDING run waits ("waiting: 2 of 2 active
	// runs of daily-sales (maxActiveRuns)"); empty once it runs, or ends
	// (stopped while it waited).
	StatusReason string `json:"statusReason,omitempty"`
	Parameters   Params `json:"parameters,omitempty"`
	// Trigger says what started the run: manual, schedule, trigger (run
	// now), backfill or pipeline (another pipeline's run, TriggeredBy).
	Trigger string `json:"trigger,omitempty"`
	// TriggeredBy is the upstream pipeline run that started this one.
	TriggeredBy string `json:"triggeredBy,omitempty"`
	// Backfill groups the runs of one backfill; a run of it waits PENDING
	// until fewer than its MaxParallel runs are active.
	Backfill *BackfillGroup `json:"backfill,omitempty"`
	// Priority, when set (gantry pipeline run or backfill --priority),
	// is that of every stage's runs, over what the pipeline file says.
	Priority Priority `json:"priority,omitempty"`
	// Tags, given when the run was started (pipeline run --tag), are every
	// stage's runs' over the pipeline file's (StageTags).
	Tags map[string]string `json:"tags,omitempty"`
	// Constraints, given when the run was started (pipeline run
	// --constraint), hold for every stage's runs besides the pipeline
	// file's (StageConstraints).
	Constraints    Constraints `json:"constraints,omitempty"`
	ScheduledTime  *time.Time  `json:"scheduledTime,omitempty"`
	IdempotencyKey string      `json:"idempotencyKey,omitempty"`
	StoppedReason  string      `json:"stoppedReason,omitempty"`
	// StopRequested is set by a stop: no stage starts after it.
	StopRequested bool `json:"stopRequested,omitempty"`
	// StopCode is Timeout (StopTimeout) for a run stopped because it
	// passed its TimeoutSeconds: it ends FAILED, not CANCELED. Empty
	// otherwise.
	StopCode string `json:"stopCode,omitempty"`
	// TimeoutSeconds bounds the run from its start (or latest retry) to
	// its end (Deadline); 0 means no limit. It is the pipeline file's, or
	// what the run's request (--timeout) gave over it.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// Retries counts the retries of the run (`gantry pipeline retry`):
	// each put its stages that had not succeeded back to PENDING and the
	// run back to RUNNING. RetriedAt is when the latest came or, if the
	// run then waited PENDING for a place (maxActiveRuns), when it got
	// one: its timeout and duration count from then.
	Retries    int          `json:"retries,omitempty"`
	RetriedAt  *time.Time   `json:"retriedAt,omitempty"`
	CreatedAt  time.Time    `json:"createdAt"`
	StartedAt  *time.Time   `json:"startedAt"`
	FinishedAt *time.Time   `json:"finishedAt"`
	Stages     []StageState `json:"stages"`
	// Spec is the pipeline as it was when the run started; later applies do
	// not change a run in progress. It is left out where a run is shown
	// without it: by pipelines.status, the submit role's view.
	Spec Pipeline `json:"spec,omitzero"`
}

// StagesInOrder returns the run's stages in DAG order (Pipeline.Order: a
// stage after those it depends on, ties in the file's order). A run
// without its spec (pipelines.status, which lists them so already) keeps
// the order it has.
func (pr *PipelineRun) StagesInOrder() []StageState {
	if len(pr.Spec.Stages) == 0 {
		return pr.Stages
	}
	out := make([]StageState, 0, len(pr.Stages))
	added := make(map[string]bool, len(pr.Stages))
	for _, name := range pr.Spec.Order() {
		if st := pr.StageState(name); st != nil && !added[name] {
			out = append(out, *st)
			added[name] = true
		}
	}
	for _, st := range pr.Stages { // none, unless the spec is not a DAG
		if !added[st.Name] {
			out = append(out, st)
		}
	}
	return out
}

// Deadline is when the run times out, and false when it cannot: it has no
// TimeoutSeconds, is not RUNNING (a PENDING run waiting for its turn has
// not started its clock), or is being stopped already. The
// clock starts when the run starts RUNNING, and again at each retry: a
// retry is a new chance to finish, as its duration counts from it.
func (pr *PipelineRun) Deadline() (time.Time, bool) {
	if pr.TimeoutSeconds <= 0 || pr.Status != StatusRunning || pr.StopRequested || pr.StartedAt == nil {
		return time.Time{}, false
	}
	from := *pr.StartedAt
	if pr.RetriedAt != nil && pr.RetriedAt.After(from) {
		from = *pr.RetriedAt
	}
	return from.Add(time.Duration(pr.TimeoutSeconds) * time.Second), true
}

// TimedOut reports whether the run's deadline has passed at now.
func (pr *PipelineRun) TimedOut(now time.Time) bool {
	d, ok := pr.Deadline()
	return ok && !now.Before(d)
}

// TimeoutReason is the stoppedReason of a run that timed out: how long it
// had, and from what.
func (pr *PipelineRun) TimeoutReason() string {
	d := time.Duration(pr.TimeoutSeconds) * time.Second
	if pr.Retries > 0 {
		return fmt.Sprintf("pipeline run timed out %s after retry %d (timeoutSeconds %d)", d, pr.Retries, pr.TimeoutSeconds)
	}
	return fmt.Sprintf("pipeline run timed out after %s (timeoutSeconds %d)", d, pr.TimeoutSeconds)
}

// BackfillGroup is the backfill a pipeline run belongs to.
type BackfillGroup struct {
	ID string `json:"id"`
	// MaxParallel bounds the group's active runs; 0 means no bound.
	MaxParallel int `json:"maxParallel,omitempty"`
}

// StageState is how far one stage of a pipeline run got.
type StageState struct {
	Name       string     `json:"name"`
	Status     Status     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	StartedAt  *time.Time `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
	Runs       []StageRun `json:"runs"`
	// Try counts the stage's tries from 1: a retry of the pipeline run
	// that puts the stage back to PENDING starts its next. 0 (left out)
	// is the first.
	Try int `json:"try,omitempty"`
	// EarlierTries are how the stage's earlier tries ended, oldest first,
	// their runs included: a retry keeps them.
	EarlierTries []StageTry `json:"earlierTries,omitempty"`
	// ArraySize is the size of a stage whose arraySize reads an upstream
	// output (ArraySize.From), as decided when this try started: stored
	// before any child is submitted, so that a server restarting
	// mid-fan-out submits the same children. Nil for other stages and
	// before the decision.
	ArraySize *int `json:"arraySize,omitempty"`
	// WhenHeld says that the stage's when (Stage.When) held when this try
	// started: stored, for a when reading an upstream output, before any
	// run is submitted, so that a server restarting then starts the same
	// runs whatever the output says by then. A when that does not hold
	// ends the stage SKIPPED, its reason saying why.
	WhenHeld bool `json:"whenHeld,omitempty"`
}

// StageTry is one earlier try of a stage, as it ended.
type StageTry struct {
	Try        int        `json:"try"`
	Status     Status     `json:"status"`
	Reason     string     `json:"reason,omitempty"`
	StartedAt  *time.Time `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
	Runs       []StageRun `json:"runs"`
	// ArraySize is the try's decided size (StageState.ArraySize).
	ArraySize *int `json:"arraySize,omitempty"`
}

// StageRun is one run of a stage: the only one, or one child of an array.
type StageRun struct {
	RunID      string `json:"runId"`
	ArrayIndex *int   `json:"arrayIndex,omitempty"`
	Status     Status `json:"status"`
	Attempts   int    `json:"attempts"`
	ExitCode   *int   `json:"exitCode"`
	// StoppedReason is the run's own, once it has ended (the stage's
	// Reason counts its runs: "1 of 3 runs failed").
	StoppedReason string `json:"stoppedReason,omitempty"`
	// StatusReason is the run's own while it has not ended: why it waits
	// QUEUED ("no worker in cluster default has labels gpu=t4", a pool's
	// slot, a retry's backoff) or what it does STARTING (pulling its
	// image). The server reads it from the run whenever it answers with
	// the pipeline run (pipelines.get, .runs, .status): it is not stored
	// in the pipeline run, whose stage runs do not change as often as
	// their reasons do.
	StatusReason string `json:"statusReason,omitempty"`
	// Skipped says that the run, though FAILED, exited with one of its
	// stage's skipOnExitCode codes: it found nothing to do.
	Skipped bool `json:"skipped,omitempty"`
}

// StageState returns the state of the named stage, or nil.
func (pr *PipelineRun) StageState(name string) *StageState {
	for i := range pr.Stages {
		if pr.Stages[i].Name == name {
			return &pr.Stages[i]
		}
	}
	return nil
}

// StageStatuses maps stage names to their status.
func (pr *PipelineRun) StageStatuses() map[string]Status {
	m := make(map[string]Status, len(pr.Stages))
	for _, s := range pr.Stages {
		m[s.Name] = s.Status
	}
	return m
}

// Runless holds the stages that ended without their runs, each with how
// many of its runs had been submitted: those skipped or canceled before
// they started, and those that FAILED as they started (their size or
// when could not be decided, or a run could not be submitted: the start
// then stopped those it had submitted, some children, none, whichever
// child was refused). Next reads it for N_TO_N dependencies, which need
// children of their upstream stage that ran: a stage that failed at its
// third child has no more of them than one that failed at its first.
func (pr *PipelineRun) Runless() map[string]int {
	var m map[string]int
	for _, s := range pr.Stages {
		if !StageEnded(s.Status) {
			continue
		}
		if n, known := pr.stageSize(&s); len(s.Runs) == 0 || known && len(s.Runs) < n {
			if m == nil {
				m = map[string]int{}
			}
			m[s.Name] = len(s.Runs)
		}
	}
	return m
}

// stageSize is how many runs the stage st of pr has once started: its
// fixed arraySize, the size its try decided (known false before that),
// or 1 for a stage that is no array.
func (pr *PipelineRun) stageSize(st *StageState) (n int, known bool) {
	spec := pr.Spec.Stage(st.Name)
	switch {
	case spec == nil:
		return 0, false
	case spec.ArraySize.Dynamic():
		if st.ArraySize == nil {
			return 0, false
		}
		return *st.ArraySize, true
	case spec.ArraySize.Array():
		return spec.ArraySize.N, true
	}
	return 1, true
}

// StageContext tells a stage's run where it belongs; the worker uses it to
// stage /gantry/in and /gantry/out.
type StageContext struct {
	PipelineRunID string `json:"pipelineRunId"`
	// Pipeline names the pipeline, for gantry events and webhooks;
	// runs queued before gantry kept it have none.
	Pipeline   string   `json:"pipeline,omitempty"`
	Stage      string   `json:"stage"`
	ArrayIndex *int     `json:"arrayIndex,omitempty"`
	Upstream   []string `json:"upstream,omitempty"`
	// UpstreamRuns are the runs of each upstream stage, whose /gantry/out
	// files the worker stages into /gantry/in/<stage>/.
	UpstreamRuns map[string][]string `json:"upstreamRuns,omitempty"`
	// SkipOnExitCode is the stage's: an attempt whose essential
	// container exits with one of these codes is not retried, whatever
	// the retry strategy says (Run.Retry).
	SkipOnExitCode []int `json:"skipOnExitCode,omitempty"`
	// Parameters are the pipeline run's, for the server to substitute
	// into a registered task definition's commands (SubstituteRefs) when
	// it submits the stage's run. They travel no further: the run keeps
	// the definition as substituted.
	Parameters Params `json:"-"`
}

// StageOutputsFile in a stage's /gantry/out holds KEY=VALUE lines that its
// downstream stages see as <STAGE>_<KEY> (EnvName). The runs of an array
// stage may each write one: their lines are joined in the runs' order.
const StageOutputsFile = "outputs.env"

// EnvName is the environment variable a downstream stage sees for key of
// stage: upper case, other characters as '_' ("transform", "total" →
// TRANSFORM_TOTAL).
func EnvName(stage, key string) string {
	b := []byte(strings.ToUpper(stage + "_" + key))
	for i, c := range b {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// PipelineEvent is published on gantry.events.pipelines.<id> whenever a
// pipeline run or one of its stages changes.
type PipelineEvent struct {
	V             PayloadVersion `json:"v"` // wire.go
	PipelineRunID string         `json:"pipelineRunId"`
	Pipeline      string         `json:"pipeline"`
	Status        Status         `json:"status"`
	// StatusReason says why a PENDING run waits (maxActiveRuns, a
	// backfill's --max-parallel), as the run's statusReason.
	StatusReason string            `json:"statusReason,omitempty"`
	Stages       map[string]Status `json:"stages"`
	Time         time.Time         `json:"time"`
}

// applyToAll applies an override without a container name: its environment
// goes to every container; a command only where there is one container.
func applyToAll(td *TaskDefinition, co ContainerOverride, i int) error {
	if co.Command != nil && len(td.ContainerDefinitions) != 1 {
		return &FieldError{fmt.Sprintf("overrides.containerOverrides[%d].name", i),
			"required with a command when the task has several containers"}
	}
	for j := range td.ContainerDefinitions {
		td.ContainerDefinitions[j].apply(co)
	}
	return nil
}

// MaxActiveWaitReason is the statusReason of a pipeline run waiting
// because active runs of its pipeline are RUNNING, max being the
// pipeline's maxActiveRuns.
func MaxActiveWaitReason(pipeline string, active, max int) string {
	return fmt.Sprintf("waiting: %d of %d active runs of %s (maxActiveRuns)", active, max, pipeline)
}

// BackfillWaitReason is the statusReason of a backfilled run waiting
// because active runs of its backfill are RUNNING, max being the
// backfill's maxParallel.
func BackfillWaitReason(group string, active, max int) string {
	return fmt.Sprintf("waiting: %d of %d active runs of backfill %s (--max-parallel)", active, max, group)
}
