package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
)

// RerunReply answers runs.rerun: the new run, without its spec (it is
// the rerun run's, which may be another user's; runs.get has it), and
// what the caller should know of how it differs from the run. runs.rerun
// is the operator's (queue/embedded.SubmitPermissions says why).
type RerunReply struct {
	jobs.Run
	// Warnings say what the rerun does not carry over (a stage's
	// pipeline run) or could have taken (a newer revision).
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) apiRerun(ctx context.Context, data []byte) (any, error) {
	var req jobs.RerunRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	r, warnings, err := s.Rerun(ctx, &req)
	if err != nil {
		return nil, err
	}
	rep := &RerunReply{Run: *r, Warnings: warnings}
	rep.Spec = jobs.RunSpec{}
	return rep, nil
}

// Rerun submits a new run as the run req names was submitted (see
// jobs.RerunRequest), whatever the state of that run, and records where
// it came from (rerunOf). A run of a pipeline's stage is rerun as a plain
// run, outside its pipeline run, unless it reads its upstream stages'
// files, which it would not have: refused, pointing at gantry pipeline
// retry.
//
// It is one submission (createRun): the run is stored, then its job
// published. A crash between the two leaves it for republish at the next
// start; a request sent again after a lost reply makes a second rerun
// unless it carries an idempotencyKey, as a submission does.
func (s *Server) Rerun(ctx context.Context, req *jobs.RerunRequest) (*jobs.Run, []string, error) {
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(req.IdempotencyKey, stageKeyPrefix) {
		return nil, nil, jobs.Invalid(fmt.Sprintf("idempotencyKey %q: keys starting %q are gantry's own, for the runs of pipeline stages", req.IdempotencyKey, stageKeyPrefix))
	}
	r, err := s.db.GetRun(ctx, req.RunID)
	if err != nil {
		return nil, nil, s.explainPruned(err, req.RunID) // history.go
	}
	var warnings []string
	if sc := r.Spec.Stage; sc != nil {
		if len(sc.Upstream) > 0 {
			return nil, nil, &jobs.Error{Code: jobs.CodeFailedPrecond, Message: fmt.Sprintf(
				"run %s is a run of stage %s of pipeline run %s, which reads the files of its upstream stages (%s): "+
					"outside its pipeline run it would have none. Run the stage again in its pipeline run: gantry pipeline retry %s",
				r.RunID, sc.Stage, sc.PipelineRunID, strings.Join(sc.Upstream, ", "), sc.PipelineRunID)}
		}
		warnings = append(warnings, fmt.Sprintf("run %s is a run of stage %s of pipeline run %s: the rerun is a plain run, "+
			"outside that pipeline run (its end changes nothing there, its /gantry/out files are not kept); "+
			"to run the stage again in its pipeline run: gantry pipeline retry %s", r.RunID, sc.Stage, sc.PipelineRunID, sc.PipelineRunID))
	}
	td, note, err := s.rerunTaskDef(ctx, r, req.Latest)
	if err != nil {
		return nil, nil, err
	}
	if note != "" {
		warnings = append(warnings, note)
	}
	if err := req.CheckContainers(&td); err != nil {
		return nil, nil, err
	}
	if r.ArrayParent() {
		r = s.arrayAsSubmitted(ctx, r) // arrays.go
	}
	sub := req.Submission(r, &td)
	if err := sub.Validate(); err != nil {
		return nil, nil, err
	}
	// A key that found a run made before answers with that run, as a
	// submission's does (the reply has no spec either way).
	run, created, err := s.createRun(ctx, sub, td, r.RunID)
	if err != nil {
		return nil, nil, err
	}
	if created {
		s.cfg.log.Info().Str("run", run.RunID).Str("rerunOf", r.RunID).Msg("rerun")
	}
	return run, warnings, nil
}

// rerunTaskDef is the task definition the rerun of r runs: r's own, as it
// ran (a stage's with its parameters substituted), if its revision may
// still start runs; with latest, the family's latest ACTIVE revision
// (substituted with the stage's pipeline run's parameters). An inline
// definition, which has no revisions, is r's own. note names a newer
// revision than the one pinned.
func (s *Server) rerunTaskDef(ctx context.Context, r *jobs.Run, latest bool) (td jobs.TaskDefinition, note string, err error) {
	own := r.Spec.Task
	if own.Revision == 0 {
		if latest {
			return td, "", jobs.Invalid(fmt.Sprintf("latest: run %s ran an inline task definition (family %s), which has no revisions; rerun it without --latest",
				r.RunID, own.Family))
		}
		return own, "", nil
	}
	if latest {
		reg, err := s.TaskDef(ctx, own.Family)
		if err != nil {
			return td, "", fmt.Errorf("latest: %w", err)
		}
		td = reg.TaskDefinition
		if sc := r.Spec.Stage; sc != nil {
			pr, err := s.db.GetPipelineRun(ctx, sc.PipelineRunID)
			if err != nil {
				return td, "", fmt.Errorf("latest: the parameters of stage %s's pipeline run, for %s: %w", sc.Stage, td.Ref(), err)
			}
			td = jobs.SubstituteRefs(td, pr.Parameters)
		}
		return td, "", nil
	}
	reg, err := s.TaskDef(ctx, own.Ref())
	if err != nil {
		return td, "", fmt.Errorf("run %s's task definition: %w", r.RunID, err)
	}
	if err := reg.CheckRunnable(); err != nil {
		return td, "", fmt.Errorf("%w (run %s's revision; latest, gantry rerun --latest, runs the family's latest ACTIVE one)", err, r.RunID)
	}
	if newest, err := s.TaskDef(ctx, own.Family); err == nil && newest.Revision > own.Revision {
		note = fmt.Sprintf("the rerun runs %s, as run %s did; %s is the family's latest ACTIVE revision (--latest runs it)",
			own.Ref(), r.RunID, newest.Ref())
	}
	return own, note, nil
}
