package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	// DryRun says that nothing was stored: TaskDefinition is the
	// revision a register would make.
	DryRun bool `json:"dryRun,omitempty"`
	// IdenticalTo, of a dry run, names the family's latest revision
	// (family:revision) when the definition equals it: a register would
	// store it again as the next revision all the same, as ECS does.
	IdenticalTo string `json:"identicalTo,omitempty"`
}

// registerRequest documents taskdefs.register's request: the ECS task
// definition, and beside its fields dryRun.
type registerRequest struct {
	jobs.TaskDefinition
	// DryRun checks the definition as a register does, refusing what it
	// refuses, and says which revision it would be, storing nothing.
	DryRun bool `json:"dryRun,omitempty"`
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
		if near := s.nearestFamily(ctx, ref, err); near != "" {
			return jobs.TaskDefinition{}, fmt.Errorf("%w (did you mean %s? or register it with `gantry taskdef register FILE`)", err, near)
		}
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
	dry, data, err := takeDryRun(data)
	if err != nil {
		return nil, err
	}
	if dry {
		return s.dryRunTaskDef(ctx, data)
	}
	return s.RegisterTaskDef(ctx, data)
}

// takeDryRun takes a top-level "dryRun" out of a register request: ECS
// task definitions have no such field. A request without one comes back
// as it is, and so does one that is not a JSON object, for the decoder
// to say where it is wrong.
func takeDryRun(data []byte) (bool, []byte, error) {
	if !bytes.Contains(data, []byte(`"dryRun"`)) {
		return false, data, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return false, data, nil
	}
	raw, ok := obj["dryRun"]
	if !ok {
		return false, data, nil
	}
	var dry bool
	if err := json.Unmarshal(raw, &dry); err != nil {
		return false, nil, jobs.Invalid(fmt.Sprintf("dryRun: want true or false, got %s", raw))
	}
	delete(obj, "dryRun")
	rest, err := json.Marshal(obj)
	if err != nil {
		return false, nil, jobs.Invalid(fmt.Sprintf("task definition: %v", err))
	}
	return dry, rest, nil
}

// dryRunTaskDef checks a task definition as RegisterTaskDef does and
// says which revision it would be, and whether it equals the family's
// latest; it stores nothing.
func (s *Server) dryRunTaskDef(ctx context.Context, data []byte) (*RegisterReply, error) {
	td, warn, err := jobs.DecodeTaskDefinition(data)
	if err != nil {
		return nil, err
	}
	td.Revision = 0
	reply := &RegisterReply{Warnings: warn, DryRun: true}
	next := jobs.RegisteredTaskDefinition{TaskDefinition: *td, Status: jobs.TaskDefActive, RegisteredAt: s.cfg.now().UTC()}
	next.Revision = 1
	latest, err := s.db.LatestTaskDef(ctx, td.Family)
	switch {
	case errors.Is(err, jobs.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		next.Revision = latest.Revision + 1
		if sameTaskDef(latest.TaskDefinition, *td) {
			reply.IdenticalTo = latest.Ref()
		}
	}
	reply.TaskDefinition = next
	return reply, nil
}

// sameTaskDef reports whether two definitions are stored alike, their
// revisions aside.
func sameTaskDef(a, b jobs.TaskDefinition) bool {
	a.Revision, b.Revision = 0, 0
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
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

// nearestFamily is the family with an ACTIVE revision that a ref not
// found (err) most likely meant to name ("hello" for "helo"), or "".
func (s *Server) nearestFamily(ctx context.Context, ref string, err error) string {
	family, _, perr := jobs.ParseRef(ref)
	if perr != nil || !errors.Is(err, jobs.ErrNotFound) {
		return ""
	}
	list, lerr := s.db.ListTaskDefs(ctx, storage.TaskDefFilter{})
	if lerr != nil {
		return ""
	}
	var families []string
	for _, td := range list {
		if td.Family != family && (len(families) == 0 || families[len(families)-1] != td.Family) {
			families = append(families, td.Family)
		}
	}
	return jobs.Nearest(family, families)
}
