package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

// rerunFlags are gantry rerun's: gantry run's that change a submission
// without changing what runs.
type rerunFlags struct {
	latest, detach          bool
	cluster, worker, name   string
	env, tags, dependsOn    []string
	constraints             []string
	timeout, deadline       time.Duration
	attempts, memory, cpu   int
	priority, pool, idemKey string
	propagateTags           bool
}

func newRerunCmd(g *globals) *cobra.Command {
	var (
		f   rerunFlags
		out output // detach_output.go
	)
	c := &cobra.Command{
		Use:   "rerun RUN",
		Short: "Run again what a run ran, as a new run; stream its logs, or print its id with -d",
		Long: `rerun submits a new run with what RUN was submitted with: the same task
definition revision (pinned, even if the family has newer revisions: --latest
takes the family's latest ACTIVE one; an inline definition, --image or --file,
is rerun as it was), its container overrides (command, environment, cpu,
memory), cluster, target worker, priority, timeout, deadline, retry strategy,
tags (those it took from its task definition included), constraints on
worker labels (its task definition's included), dependencies (--depends-on)
and pool. The flags change the rerun only: --env adds or replaces variables,
--tag adds or replaces tags, --constraint replaces the run's constraints on
its key (--constraint disk=hdd over the run's disk=ssd; its others hold),
--depends-on replaces the run's dependencies. A command cannot be changed: submit a new run with gantry
run for that. RUN may be in any state, running or ended.

The new run records where it came from: gantry describe shows "Rerun of: RUN"
and its JSON has rerunOf. As gantry run, rerun streams the new run's output
until it ends and exits with its task's exit code (-d prints its id instead).

A run of a pipeline's stage is rerun as a plain run, outside its pipeline run:
its end changes nothing there and its /gantry/out files are not kept. It keeps
GANTRY_SCHEDULED_TIME (a fire's run does the work of that time again) and an
array child's GANTRY_ARRAY_INDEX, and goes without GANTRY_PIPELINE,
GANTRY_PIPELINE_RUN_ID, GANTRY_STAGE and GANTRY_TRIGGERED_BY. The run of a
stage that reads its upstream stages' files is refused: retry it in its
pipeline run with gantry pipeline retry. Cron runs of a task schedule are
stage runs of one-stage pipelines: they rerun as plain runs.

Reruns are the operator's: a submit-only user (gantry up --submit-user) may
not read other users' runs' specs, and so may not run them again either; it
submits its run again with gantry run.`,
		Example: `  gantry rerun 01jf3...                      # the same again, attached; exits with its code
  gantry rerun -d 01jf3...                   # print the new run's id
  gantry rerun --env LOG_LEVEL=debug --timeout 30m 01jf3...
  gantry rerun --latest --priority high 01jf3...   # the family's latest revision, first in the queue
  gantry describe "$(gantry rerun -d 01jf3...)"    # Rerun of: 01jf3...`,
		Args: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash >= 0 && dash < len(args) {
				// As gantry run takes it: say why it is not taken here.
				return errors.New("a rerun runs RUN's own command: a command after -- cannot change it; for another command, submit a new run with gantry run")
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd, args[0])
			if err != nil {
				return err
			}
			if err := out.detachedOnly(f.detach); err != nil {
				return err
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			r, warnings, err := c.Rerun(cmd.Context(), req)
			if err != nil {
				return dependsOnFlagErrors(err, f.dependsOn) // run.go
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "gantry: note:", w)
			}
			if f.detach {
				return out.writeID(cmd.OutOrStdout(), r.RunID, r)
			}
			if r.ArrayParent() { // the rerun of an array run: run.go
				return attachArray(cmd.Context(), c, r, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return attach(cmd.Context(), c, r.RunID, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := c.Flags()
	fl.BoolVar(&f.latest, "latest", false, "run the family's latest ACTIVE revision, not the run's own")
	fl.StringVar(&f.cluster, "cluster", "", "rerun in this cluster (the run's target worker is then dropped, unless --worker)")
	fl.StringVar(&f.worker, "worker", "", "rerun on this worker only")
	fl.StringVar(&f.name, "name", "", "the container that --env, --cpu and --memory change (default: the first essential one)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable K=V, over the run's (repeatable)")
	durationVar(fl, &f.timeout, "timeout", 0, "stop an attempt that runs longer than this from when its container starts, instead of the run's timeout")
	durationVar(fl, &f.deadline, "deadline", 0, "fail the rerun if it has not ended this long after submission, instead of the run's")
	fl.IntVar(&f.attempts, "attempts", 0, "total tries, 1 to 10, instead of the run's (its retry rules are kept)")
	fl.IntVar(&f.memory, "memory", 0, "memory limit in MiB")
	fl.IntVar(&f.cpu, "cpu", 0, "CPU units, 1024 = one CPU")
	fl.StringVar(&f.priority, "priority", "", "high, normal or low, instead of the run's")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag the rerun K=V, over the run's tags (repeatable)")
	fl.BoolVar(&f.propagateTags, "propagate-tags", false, "give the rerun its task definition revision's tags too, the run's and --tag winning")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "run only on a worker with label K=V, K!=V on one without it, K with any value, !K with no label K, replacing the run's constraints on K (repeatable)")
	fl.StringArrayVar(&f.dependsOn, "depends-on", nil, "wait for this run to end first: RUN[:success|failure|complete]; replaces the run's dependencies (repeatable)")
	fl.StringVar(&f.pool, "pool", "", "take a slot of this pool instead of the run's ('': of none)")
	fl.StringVar(&f.idemKey, "idempotency-key", "", "rerunning twice with the same key creates one run")
	fl.BoolVarP(&f.detach, "detach", "d", false, "print the new run's id and return at once")
	addDetachOutputFlag(c, &out)
	hintUnknownRuns(c) // runs.go
	return c
}

// request builds the rerun request from the flags, each problem naming
// its flag, before any connection.
func (f *rerunFlags) request(cmd *cobra.Command, run string) (*jobs.RerunRequest, error) {
	if jobs.IsPipelineRunID(run) {
		return nil, fmt.Errorf("%s is a pipeline run: run its failed stages again with gantry pipeline retry %s, or start a new run with gantry pipeline run NAME", run, run)
	}
	if strings.TrimSpace(run) == "" {
		return nil, errors.New("which run? give its id (gantry ps --all lists them)")
	}
	req := &jobs.RerunRequest{RunID: run, Latest: f.latest, Cluster: f.cluster, Worker: f.worker,
		IdempotencyKey: f.idemKey}
	if cmd.Flags().Changed("pool") {
		req.Pool = &f.pool // '' takes the rerun out of the run's pool
	}
	if err := checkCountFlags(cmd, f.attempts, f.cpu, f.memory); err != nil {
		return nil, err
	}
	co := jobs.ContainerOverride{Name: f.name}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want K=V", kv)
		}
		co.Environment = append(co.Environment, jobs.KeyValue{Name: k, Value: v})
	}
	if cmd.Flags().Changed("cpu") {
		co.CPU = &f.cpu
	}
	if cmd.Flags().Changed("memory") {
		co.Memory = &f.memory
	}
	if len(co.Environment) > 0 || co.CPU != nil || co.Memory != nil {
		req.Overrides = &jobs.Overrides{ContainerOverrides: []jobs.ContainerOverride{co}}
	} else if f.name != "" {
		return nil, errors.New("--name names the container that --env, --cpu or --memory change: give one of them")
	}
	var err error
	if req.Priority, err = priorityFlag(f.priority); err != nil {
		return nil, err
	}
	if req.TimeoutSeconds, err = seconds("--timeout", f.timeout); err != nil {
		return nil, err
	}
	if req.ActiveDeadlineSeconds, err = seconds("--deadline", f.deadline); err != nil {
		return nil, err
	}
	if cmd.Flags().Changed("attempts") {
		req.Attempts = f.attempts
	}
	if req.Tags, err = tagFlags(f.tags); err != nil {
		return nil, err
	}
	if f.propagateTags {
		req.PropagateTags = jobs.PropagateTaskDefinition
	}
	if req.DependsOn, err = dependsOnFlags(f.dependsOn); err != nil {
		return nil, err
	}
	if req.Constraints, err = constraintFlags(f.constraints); err != nil { // run.go
		return nil, err
	}
	if f.pool != "" {
		if err := jobs.CheckPoolName("--pool", f.pool); err != nil {
			return nil, err
		}
	}
	return req, dependsOnFlagErrors(req.Validate(), f.dependsOn) // run.go
}
