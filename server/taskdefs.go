package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
)

// RegisterReply answers gantry.api.taskdefs.register, whose request is the
// ECS task definition itself (what register-task-definition takes).
type RegisterReply struct {
	TaskDefinition jobs.RegisteredTaskDefinition `json:"taskDefinition"`
	// Warnings name what was accepted but ignored (AWS-only fields).
	Warnings []string `json:"warnings,omitempty"`
}

// TaskDefRequest names a task definition: "family" (its latest ACTIVE
// revision) or "family:revision".
type TaskDefRequest struct {
	TaskDefinition string `json:"taskDefinition"`
}

// TaskDefReply carries one task definition revision.
type TaskDefReply struct {
	TaskDefinition jobs.RegisteredTaskDefinition `json:"taskDefinition"`
}

// TaskDefListRequest filters gantry.api.taskdefs.list: by default the
// ACTIVE revisions of every family.
type TaskDefListRequest struct {
	Family string `json:"family,omitempty"`
	// Status is ACTIVE (the default), INACTIVE or ALL.
	Status string `json:"status,omitempty"`
}

// TaskDefListReply lists revisions by family and revision.
type TaskDefListReply struct {
	TaskDefinitions []jobs.RegisteredTaskDefinition `json:"taskDefinitions"`
}

// RegisterTaskDef validates an ECS task definition and stores it as the
// next revision of its family.
func (s *Server) RegisterTaskDef(ctx context.Context, data []byte) (*RegisterReply, error) {
	td, warn, err := jobs.DecodeTaskDefinition(data)
	if err != nil {
		return nil, err
	}
	td.Revision = 0
	reg, err := s.db.RegisterTaskDef(ctx, *td, s.cfg.now().UTC())
	if err != nil {
		return nil, err
	}
	s.cfg.log.Info().Str("taskDefinition", reg.Ref()).Msg("task definition registered")
	return &RegisterReply{TaskDefinition: *reg, Warnings: warn}, nil
}

// TaskDef returns the revision ref names; without a revision, the latest
// ACTIVE one.
func (s *Server) TaskDef(ctx context.Context, ref string) (*jobs.RegisteredTaskDefinition, error) {
	family, rev, err := jobs.ParseRef(ref)
	if err != nil {
		return nil, jobs.Invalid(err.Error())
	}
	td, err := s.db.GetTaskDef(ctx, family, rev)
	if err != nil {
		return nil, err
	}
	return td, nil
}

// resolveTaskDef returns the task definition a run of ref uses: the
// revision named, or the latest ACTIVE one; INACTIVE revisions are refused.
func (s *Server) resolveTaskDef(ctx context.Context, ref string) (jobs.TaskDefinition, error) {
	td, err := s.TaskDef(ctx, ref)
	if err != nil {
		return jobs.TaskDefinition{}, fmt.Errorf("%w (register it with `gantry taskdef register FILE`)", err)
	}
	if err := td.CheckRunnable(); err != nil {
		return jobs.TaskDefinition{}, err
	}
	return td.TaskDefinition, nil
}

func (s *Server) apiRegisterTaskDef(ctx context.Context, data []byte) (any, error) {
	if len(data) == 0 {
		return nil, jobs.Invalid("empty request: want an ECS task definition")
	}
	return s.RegisterTaskDef(ctx, data)
}

func (s *Server) apiDescribeTaskDef(ctx context.Context, data []byte) (any, error) {
	var req TaskDefRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.TaskDefinition == "" {
		return nil, jobs.Invalid("taskDefinition: required (family or family:revision)")
	}
	td, err := s.TaskDef(ctx, req.TaskDefinition)
	if err != nil {
		return nil, err
	}
	return TaskDefReply{TaskDefinition: *td}, nil
}

func (s *Server) apiListTaskDefs(ctx context.Context, data []byte) (any, error) {
	var req TaskDefListRequest
	if len(data) > 0 {
		if err := decode(data, &req); err != nil {
			return nil, err
		}
	}
	status := strings.ToUpper(req.Status)
	switch status {
	case "", jobs.TaskDefActive, jobs.TaskDefInactive, "ALL":
	default:
		return nil, jobs.Invalid(fmt.Sprintf("status %q: want ACTIVE, INACTIVE or ALL", req.Status))
	}
	list, err := s.db.ListTaskDefs(ctx, storage.TaskDefFilter{Family: req.Family, Status: status})
	if err != nil {
		return nil, err
	}
	return TaskDefListReply{TaskDefinitions: list}, nil
}

func (s *Server) apiDeregisterTaskDef(ctx context.Context, data []byte) (any, error) {
	var req TaskDefRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	family, rev, err := jobs.ParseRef(req.TaskDefinition)
	if err != nil {
		return nil, jobs.Invalid(err.Error())
	}
	if rev == 0 {
		return nil, jobs.Invalid(fmt.Sprintf("taskDefinition %q: deregister needs family:revision", req.TaskDefinition))
	}
	td, err := s.db.DeregisterTaskDef(ctx, family, rev, s.cfg.now().UTC())
	if err != nil {
		return nil, err
	}
	s.cfg.log.Info().Str("taskDefinition", td.Ref()).Msg("task definition deregistered")
	return TaskDefReply{TaskDefinition: *td}, nil
}
