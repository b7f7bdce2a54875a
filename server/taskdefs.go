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
		if !errors.Is(err, jobs.ErrNotFound) {
			return nil, err
		}
		if _, lerr := s.db.LatestTaskDef(ctx, family); errors.Is(lerr, jobs.ErrNotFound) {
			return nil, &unregisteredFamilyError{family: family, near: s.nearestFamily(ctx, family)}
		}
		if rev != 0 {
			if have := s.revisionsOf(ctx, family); have != "" {
				return nil, &missingRevisionError{err: err, have: have}
			}
		}
		return nil, err
	}
	return td, nil
}

// unregisteredFamilyError is the error of a ref whose family was never
// registered (helo, helo:2), where "has no ACTIVE revision" would say it
// exists with every revision deregistered: "task definition family helo
// is not registered; did you mean hello? gantry taskdef ls lists them".
// It is jobs.ErrNotFound.
type unregisteredFamilyError struct {
	family string
	near   string // nearestFamily, or ""
	// register, of a run's ref, adds how to register one.
	register bool
}

func (e *unregisteredFamilyError) Error() string {
	msg := "task definition family " + e.family + " is not registered;"
	if e.near != "" {
		msg += " did you mean " + e.near + "?"
	}
	msg += " gantry taskdef ls lists them"
	if e.register {
		msg += "; register it with `gantry taskdef register FILE`"
	}
	return msg
}

func (e *unregisteredFamilyError) Unwrap() error { return jobs.ErrNotFound }

// missingRevisionError is the error of a revision a family does not have
// (hello:9): it says which it has, "task definition hello:9: not found;
// hello has revisions 1-3 (latest 3)", and is jobs.ErrNotFound.
type missingRevisionError struct {
	err  error  // the store's, jobs.ErrNotFound
	have string // revisionsOf
}

func (e *missingRevisionError) Error() string { return e.err.Error() + "; " + e.have }
func (e *missingRevisionError) Unwrap() error { return e.err }

// revisionsOf says which revisions family has ("hello has revisions 1-3
// (latest 3)", "(latest ACTIVE 2)" when the last was deregistered, "hello
// has revision 1 only"), or ""
// for a family never registered or when the store cannot tell. Revisions
// are never deleted: a family has every one from 1 to its latest.
func (s *Server) revisionsOf(ctx context.Context, family string) string {
	last, err := s.db.LatestTaskDef(ctx, family)
	if err != nil {
		return ""
	}
	if last.Revision == 1 {
		if last.Status != jobs.TaskDefActive {
			return family + " has revision 1 only (INACTIVE)"
		}
		return family + " has revision 1 only"
	}
	have := fmt.Sprintf("%s has revisions 1-%d", family, last.Revision)
	switch active, err := s.db.GetTaskDef(ctx, family, 0); {
	case err == nil && active.Revision == last.Revision:
		return fmt.Sprintf("%s (latest %d)", have, last.Revision)
	case err == nil:
		return fmt.Sprintf("%s (latest ACTIVE %d)", have, active.Revision)
	case errors.Is(err, jobs.ErrNotFound):
		return have + " (none ACTIVE)"
	}
	return have
}

// resolveTaskDef returns the task definition a run of ref uses: the
// revision named, or the latest ACTIVE one; INACTIVE revisions are refused.
func (s *Server) resolveTaskDef(ctx context.Context, ref string) (jobs.TaskDefinition, error) {
	td, err := s.TaskDef(ctx, ref)
	if err != nil {
		if mr := (*missingRevisionError)(nil); errors.As(err, &mr) {
			return jobs.TaskDefinition{}, err // the family is there: no register hint
		}
		if uf := (*unregisteredFamilyError)(nil); errors.As(err, &uf) {
			with := *uf
			with.register = true
			return jobs.TaskDefinition{}, &with
		}
		if near := s.nearestFamilyOf(ctx, ref, err); near != "" {
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

// nearestFamilyOf is nearestFamily of the family of a ref not found
// (err), or "".
func (s *Server) nearestFamilyOf(ctx context.Context, ref string, err error) string {
	family, _, perr := jobs.ParseRef(ref)
	if perr != nil || !errors.Is(err, jobs.ErrNotFound) {
		return ""
	}
	return s.nearestFamily(ctx, family)
}

// nearestFamily is the other family with an ACTIVE revision that family
// most likely meant to name ("hello" for "helo"), or "".
func (s *Server) nearestFamily(ctx context.Context, family string) string {
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
