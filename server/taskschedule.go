package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
)

// ScheduleCreateRequest schedules a single task definition. It is stored
// as a one-stage pipeline of kind task named Name (the family by
// default), its stage named after the family: one home for the schedule,
// and `schedule ls/suspend/resume/trigger` and `pipeline backfill/runs`
// work on it as on any scheduled pipeline. Creating it again updates it
// (a new version).
type ScheduleCreateRequest struct {
	Name string `json:"name,omitempty"`
	// TaskDefinition is family[:revision]; without a revision each fire
	// runs the latest ACTIVE one.
	TaskDefinition string              `json:"taskDefinition"`
	Schedule       jobs.Schedule       `json:"schedule"`
	Cluster        string              `json:"cluster,omitempty"`
	Overrides      *jobs.Overrides     `json:"overrides,omitempty"`
	RetryStrategy  *jobs.RetryStrategy `json:"retryStrategy,omitempty"`
	TimeoutSeconds int                 `json:"timeoutSeconds,omitempty"`
	// Priority of the runs it starts: high, normal (the default) or low.
	Priority jobs.Priority `json:"priority,omitempty"`
	// Constraints place the runs it starts on workers whose labels
	// satisfy them, over the task definition's placementConstraints key
	// by key, as a submission's: kept as its one stage's constraints.
	Constraints jobs.Constraints `json:"constraints,omitempty"`
}

// TaskSchedulePipeline is the pipeline that holds a task schedule.
func TaskSchedulePipeline(req *ScheduleCreateRequest) (*jobs.Pipeline, error) {
	if req.TaskDefinition == "" {
		return nil, jobs.Invalid("taskDefinition: required (family[:revision])")
	}
	family, _, _ := cutRevision(req.TaskDefinition)
	name := req.Name
	if name == "" {
		name = family
	}
	ref, _ := json.Marshal(req.TaskDefinition)
	sched := req.Schedule
	p := &jobs.Pipeline{Name: name, Kind: jobs.KindTask, Schedule: &sched, Stages: []jobs.Stage{{
		Name: family, TaskDefinition: ref, Cluster: req.Cluster, Overrides: req.Overrides,
		RetryStrategy: req.RetryStrategy, TimeoutSeconds: req.TimeoutSeconds, Priority: req.Priority,
		Constraints: req.Constraints}}}
	if err := p.Validate(); err != nil {
		return nil, taskScheduleErrors(req, family, err)
	}
	return p, nil
}

// taskScheduleErrors names the problems of a task schedule's pipeline by
// the request's fields, not by the pipeline the request is stored as: its
// one stage's fields are the request's own (taskDefinition, cluster,
// overrides...), and a bad family, which is also the stage's name and the
// default schedule name, is said once, by taskDefinition.
func taskScheduleErrors(req *ScheduleCreateRequest, stage string, err error) error {
	var out []error
	for _, e := range flatten(err) {
		var fe *jobs.FieldError
		if !errors.As(e, &fe) {
			out = append(out, e)
			continue
		}
		path := fe.Path
		if path == "stages[0].name" || path == "name" && req.Name == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(path, "stages[0]("+stage+")."); ok {
			path = rest
		} else if rest, ok := strings.CutPrefix(path, "stages[0]."); ok {
			path = rest
		}
		// A message may name another of the stage's fields too
		// (contradicts stages[0](x).constraints[0]).
		msg := strings.ReplaceAll(fe.Msg, "stages[0]("+stage+").", "")
		out = append(out, &jobs.FieldError{Path: path, Msg: msg})
	}
	return errors.Join(out...)
}

// flatten lists the errors joined in err, however deeply.
func flatten(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}

func cutRevision(ref string) (family, rev string, ok bool) {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] == ':' {
			return ref[:i], ref[i+1:], true
		}
	}
	return ref, "", false
}

func (s *Server) apiScheduleCreate(ctx context.Context, data []byte) (any, error) {
	var req ScheduleCreateRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	p, err := TaskSchedulePipeline(&req)
	if err != nil {
		return nil, err
	}
	// Checked here rather than as a pipeline's stages are, to name the
	// request's field.
	if _, err := s.resolveTaskDef(ctx, req.TaskDefinition); err != nil {
		return nil, jobs.Invalid("taskDefinition: " + err.Error())
	}
	if old, err := s.db.GetPipeline(ctx, p.Name, 0); err == nil && old.Kind != jobs.KindTask {
		return nil, jobs.Invalid(fmt.Sprintf("name: pipeline %s exists; a task schedule cannot replace it (choose another name)", p.Name))
	} else if err != nil && !errors.Is(err, jobs.ErrNotFound) {
		return nil, err
	}
	stored, changed, err := s.db.PutPipeline(ctx, p, s.cfg.now())
	if err != nil {
		return nil, err
	}
	s.pipes.cron.Wake()
	return PipelineApplyReply{Pipeline: *stored, Changed: changed}, nil
}

// scheduleTarget says what a schedule runs: a pipeline (its name) or, for
// a task schedule, its task definition.
func scheduleTarget(p *jobs.Pipeline) (kind, target string) {
	if p.Kind == jobs.KindTask && len(p.Stages) == 1 {
		var ref string
		if json.Unmarshal(p.Stages[0].TaskDefinition, &ref) == nil {
			return jobs.KindTask, ref
		}
	}
	return jobs.KindPipeline, p.Name
}
