package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
		RetryStrategy: req.RetryStrategy, TimeoutSeconds: req.TimeoutSeconds}}}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
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
	if err := s.checkStageTaskDefs(ctx, p); err != nil {
		return nil, err
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
