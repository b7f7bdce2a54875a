package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// RerunRequest asks for a new run made as the run RunID was submitted
// (gantry rerun, gantry.api.runs.rerun): its task definition (the same
// revision, or with Latest the family's latest ACTIVE one), container
// overrides, cluster, target worker, priority, timeouts, retry strategy,
// tags, constraints, dependencies and pool, each field given here replacing
// the run's.
// The zero value of a field keeps the run's (Pool: left out).
type RerunRequest struct {
	RunID string `json:"runId"`
	// Latest takes the family's latest ACTIVE revision instead of the
	// run's own (pinned by default, even if newer revisions exist). A
	// run of an inline task definition has no revisions: refused.
	Latest bool `json:"latest,omitempty"`
	// Cluster moves the rerun to another cluster; the run's target
	// worker, which is in the run's cluster, is then left out unless
	// Worker names one.
	Cluster string `json:"cluster,omitempty"`
	Worker  string `json:"worker,omitempty"`
	// Overrides apply after the run's own, so theirs win: environment
	// merges by name, cpu and memory replace. An override without a name
	// applies to the first essential container (as gantry run's --env
	// without --name), not to every one as in a submission. A command is
	// refused: a rerun runs what its run ran (submit a new run to run
	// something else).
	Overrides      *Overrides `json:"overrides,omitempty"`
	TimeoutSeconds int        `json:"timeoutSeconds,omitempty"`
	// ActiveDeadlineSeconds bounds the rerun from its own submission.
	ActiveDeadlineSeconds int      `json:"activeDeadlineSeconds,omitempty"`
	Priority              Priority `json:"priority,omitempty"`
	// Attempts changes the number of tries of the run's retry strategy,
	// keeping its evaluateOnExit rules and backoff.
	Attempts int `json:"attempts,omitempty"`
	// Tags are added to the run's (its task definition's that it took
	// included), winning key by key; PropagateTags TASK_DEFINITION adds
	// the tags of the revision the rerun runs under both.
	Tags          TagList `json:"tags,omitempty"`
	PropagateTags string  `json:"propagateTags,omitempty"`
	// Constraints replace the run's (its task definition's that it took
	// included) key by key; the others it had hold still.
	Constraints Constraints `json:"constraints,omitempty"`
	// DependsOn replaces the run's dependencies.
	DependsOn []RunDependency `json:"dependsOn,omitempty"`
	// Pool replaces the run's pool; "" takes the rerun out of any (as a
	// submission's "pool": "" is no pool), nil (left out) keeps the run's.
	Pool           *string `json:"pool,omitempty"`
	IdempotencyKey string  `json:"idempotencyKey,omitempty"`
}

// Validate collects the problems of the request's own fields, each
// named as in the request.
func (q RerunRequest) Validate() error {
	var errs []error
	if q.RunID == "" {
		errs = append(errs, &FieldError{"runId", "required"})
	}
	if q.Attempts < 0 || q.Attempts > 10 {
		errs = append(errs, &FieldError{"attempts", fmt.Sprintf("%d: must be between 1 and 10", q.Attempts)})
	}
	if o := q.Overrides; o != nil {
		for i, co := range o.ContainerOverrides {
			if co.Command != nil {
				errs = append(errs, &FieldError{fmt.Sprintf("overrides.containerOverrides[%d].command", i),
					"a rerun runs the command its run ran: submit a new run to run another"})
			}
		}
	}
	own := SubmitRequest{Cluster: q.Cluster, Worker: q.Worker, TimeoutSeconds: q.TimeoutSeconds,
		ActiveDeadlineSeconds: q.ActiveDeadlineSeconds, Priority: q.Priority, Tags: q.Tags,
		PropagateTags: q.PropagateTags, DependsOn: q.DependsOn, IdempotencyKey: q.IdempotencyKey, Constraints: q.Constraints}
	if q.Pool != nil {
		own.Pool = *q.Pool
	}
	if err := own.Validate(); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	return errors.Join(errs...)
}

// pipelineEnv are the variables the pipeline scheduler gives a stage's
// runs that say which pipeline run they belong to (scheduler.StageRequest).
// The rerun of a stage's run belongs to none: it goes without them. It
// keeps GANTRY_SCHEDULED_TIME and the array index and size, which say what
// the run works on: the rerun of a fire's run, or of one child of an
// array, does the same work again.
var pipelineEnv = []string{"GANTRY_PIPELINE", "GANTRY_PIPELINE_RUN_ID", "GANTRY_STAGE", "GANTRY_TRIGGERED_BY"}

// Submission is the submission of the rerun of r that q asks for, to run
// td: r's own task definition or the revision q.Latest chose. Its
// TaskDefinition is left empty (the caller has td) and so is Stage: a
// rerun is a plain run, outside any pipeline run.
func (q RerunRequest) Submission(r *Run, td *TaskDefinition) *SubmitRequest {
	s := r.Spec
	sub := &SubmitRequest{
		Cluster:               r.Cluster,
		Worker:                r.TargetWorker,
		Overrides:             rerunOverrides(s.Overrides, s.Stage != nil, q.Overrides, td),
		TimeoutSeconds:        s.TimeoutSeconds,
		ActiveDeadlineSeconds: s.ActiveDeadlineSeconds,
		Priority:              r.Priority.Level(),
		Tags:                  TagsOf(mergeTags(TagsOf(r.Tags), q.Tags)),
		PropagateTags:         q.PropagateTags,
		Pool:                  r.Pool,
		Constraints:           MergeConstraints(s.Constraints, q.Constraints),
		IdempotencyKey:        q.IdempotencyKey,
	}
	for _, d := range r.DependsOn {
		sub.DependsOn = append(sub.DependsOn, RunDependency{RunID: d.RunID, Condition: d.Condition})
	}
	if rs := s.RetryStrategy; rs != nil || q.Attempts > 0 {
		var c RetryStrategy
		if rs != nil {
			c = *rs
		}
		if q.Attempts > 0 {
			c.Attempts = q.Attempts
		}
		sub.RetryStrategy = &c
	}
	if q.Cluster != "" {
		sub.Cluster, sub.Worker = q.Cluster, ""
	}
	if q.Worker != "" {
		sub.Worker = q.Worker
	}
	if q.TimeoutSeconds > 0 {
		sub.TimeoutSeconds = q.TimeoutSeconds
	}
	if q.ActiveDeadlineSeconds > 0 {
		sub.ActiveDeadlineSeconds = q.ActiveDeadlineSeconds
	}
	if q.Priority != "" {
		sub.Priority = q.Priority.Level()
	}
	if len(q.DependsOn) > 0 {
		sub.DependsOn = q.DependsOn
	}
	if q.Pool != nil {
		sub.Pool = *q.Pool
	}
	if r.ArrayParent() {
		// The whole array again; a child's rerun is a plain run whose
		// overrides keep its index (AWS_BATCH_JOB_ARRAY_INDEX).
		sub.ArrayProperties = &SubmitArrayProperties{Size: json.RawMessage(strconv.Itoa(r.ArrayProperties.Size))}
		if r.ArrayProperties.Order == ArrayOrderSequential {
			sub.DependsOn = append(sub.DependsOn, RunDependency{Type: DependencySequential})
		}
	}
	return sub
}

// rerunOverrides are a run's overrides (a stage's run's without the
// variables of its pipeline run) followed by the rerun's, whose
// nameless ones name td's first essential container. Nothing is shared
// with the run's.
func rerunOverrides(run *Overrides, stage bool, more *Overrides, td *TaskDefinition) *Overrides {
	var out []ContainerOverride
	if run != nil {
		for _, co := range run.ContainerOverrides {
			co.Command = slices.Clone(co.Command)
			co.Environment = slices.Clone(co.Environment)
			if stage {
				co.Environment = slices.DeleteFunc(co.Environment, func(kv KeyValue) bool {
					return slices.Contains(pipelineEnv, kv.Name)
				})
				if co.Command == nil && len(co.Environment) == 0 && co.CPU == nil && co.Memory == nil {
					continue // the scheduler's, with nothing left
				}
			}
			out = append(out, co)
		}
	}
	if more != nil {
		for _, co := range more.ContainerOverrides {
			if co.Name == "" {
				co.Name = firstEssentialName(td)
			}
			co.Environment = slices.Clone(co.Environment)
			out = append(out, co)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &Overrides{ContainerOverrides: out}
}

func firstEssentialName(td *TaskDefinition) string {
	for _, c := range td.ContainerDefinitions {
		if c.IsEssential() {
			return c.Name
		}
	}
	return ""
}

// CheckContainers says which of the request's overrides name a container
// td does not have, each by its path in the request.
func (q RerunRequest) CheckContainers(td *TaskDefinition) error {
	if q.Overrides == nil {
		return nil
	}
	var names []string
	for _, c := range td.ContainerDefinitions {
		names = append(names, c.Name)
	}
	var errs []error
	for i, co := range q.Overrides.ContainerOverrides {
		if co.Name != "" && !slices.Contains(names, co.Name) {
			errs = append(errs, &FieldError{fmt.Sprintf("overrides.containerOverrides[%d].name", i),
				fmt.Sprintf("no container %q in task definition %s; its containers: %s", co.Name, td.Ref(), strings.Join(names, ", "))})
		}
	}
	return errors.Join(errs...)
}
