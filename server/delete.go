package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
)

// Deleting pipelines and schedules. A delete removes every version of the
// pipeline and its schedule's state in one transaction (storage), so the
// cron stops firing it at once; the pipeline runs it made stay, each with
// the spec it ran, readable by id (pipelines.get, `gantry describe`).
//
// Crash safety: the delete is one transaction. A forced delete stops the
// active runs after it; a crash in between leaves them running to their
// end, as runs of a pipeline that no longer exists, which nothing else
// starts (the cron and triggers read the pipeline, which is gone).

// PipelineDeleteRequest names a pipeline to delete.
type PipelineDeleteRequest struct {
	Name string `json:"name"`
	// Force stops the pipeline's active runs (PENDING or RUNNING) and
	// deletes it; without it a pipeline with active runs is not deleted.
	Force bool `json:"force,omitempty"`
}

// ScheduleDeleteRequest names a schedule to delete.
type ScheduleDeleteRequest struct {
	Name string `json:"name"`
}

// DeleteReply says what a delete did.
type DeleteReply struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	// Stopped are the pipeline runs a forced pipeline delete stopped.
	Stopped []string `json:"stopped,omitempty"`
	// Running are the pipeline runs a deleted schedule had started, which
	// go on to their end.
	Running []string `json:"running,omitempty"`
}

func failedPrecondition(msg string) error {
	return &jobs.Error{Code: jobs.CodeFailedPrecond, Message: msg}
}

func (s *Server) apiPipelineDelete(ctx context.Context, data []byte) (any, error) {
	var req PipelineDeleteRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, jobs.Invalid("name: required")
	}
	active, err := s.deletePipeline(ctx, req.Name, func(active []string) error {
		if len(active) > 0 && !req.Force {
			return failedPrecondition(fmt.Sprintf("pipeline %s has %s: stop them first (gantry stop ID), or delete with force to stop them",
				req.Name, runList(active)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	reply := DeleteReply{Name: req.Name, Deleted: true}
	var errs []error
	for _, id := range active {
		if _, err := s.pipes.dag.Stop(ctx, id, "pipeline "+req.Name+" deleted"); err != nil {
			errs = append(errs, fmt.Errorf("stop pipeline run %s: %w", id, err))
			continue
		}
		reply.Stopped = append(reply.Stopped, id)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pipeline %s deleted, but: %w", req.Name, err)
	}
	return reply, nil
}

// apiScheduleDelete deletes a task schedule (`gantry schedule create`),
// which is a pipeline of kind task: the runs it started go on. The
// schedule of a pipeline lives in the pipeline's file, its one home: it
// is not deleted apart from it.
func (s *Server) apiScheduleDelete(ctx context.Context, data []byte) (any, error) {
	var req ScheduleDeleteRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.Name == "" {
		return nil, jobs.Invalid("name: required")
	}
	p, err := s.db.GetPipeline(ctx, req.Name, 0)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, jobs.NotFound(fmt.Sprintf("schedule %s: not found", req.Name))
	}
	if err != nil {
		return nil, err
	}
	if p.Schedule == nil {
		return nil, jobs.NotFound(fmt.Sprintf("schedule %s: not found (pipeline %s has no schedule)", req.Name, req.Name))
	}
	if p.Kind != jobs.KindTask {
		return nil, failedPrecondition(fmt.Sprintf("schedule %s is part of pipeline %s: remove schedule from the pipeline's file and apply it, "+
			"suspend the schedule, or delete the pipeline", req.Name, req.Name))
	}
	running, err := s.deletePipeline(ctx, req.Name, nil)
	if err != nil {
		return nil, err
	}
	return DeleteReply{Name: req.Name, Deleted: true, Running: running}, nil
}

// deletePipeline deletes a pipeline unless other pipelines' triggers name
// it or check refuses its active runs, and returns those runs.
func (s *Server) deletePipeline(ctx context.Context, name string, check func(active []string) error) ([]string, error) {
	ps, err := s.db.ListPipelines(ctx)
	if err != nil {
		return nil, err
	}
	var triggered []string
	for _, p := range ps {
		for _, t := range p.Triggers {
			if t.Pipeline == name && p.Name != name {
				triggered = append(triggered, p.Name)
				break
			}
		}
	}
	if len(triggered) > 0 {
		return nil, failedPrecondition(fmt.Sprintf("pipeline %s: the triggers of %s start on its runs: remove those triggers, or delete those pipelines, first",
			name, strings.Join(triggered, ", ")))
	}
	var active []string
	s.pipes.gate.Lock() // pipelines.go: no run is created meanwhile
	err = s.db.DeletePipeline(ctx, name, func(ids []string) error {
		active = ids
		if check != nil {
			return check(ids)
		}
		return nil
	})
	s.pipes.gate.Unlock()
	if err != nil {
		return nil, err
	}
	s.pipes.cron.Wake()
	s.cfg.log.Info().Str("pipeline", name).Int("activeRuns", len(active)).Msg("pipeline deleted")
	return active, nil
}

// runList names a few pipeline runs: "an active pipeline run (pr-a)",
// "7 active pipeline runs (pr-a, pr-b, pr-c and 4 more)".
func runList(ids []string) string {
	const most = 3
	shown := strings.Join(ids[:min(len(ids), most)], ", ")
	if len(ids) > most {
		shown += fmt.Sprintf(" and %d more", len(ids)-most)
	}
	if len(ids) == 1 {
		return "an active pipeline run (" + shown + ")"
	}
	return fmt.Sprintf("%d active pipeline runs (%s)", len(ids), shown)
}
