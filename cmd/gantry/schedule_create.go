package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

// newScheduleCreateCmd schedules a single task definition. The schedule is
// stored as a one-stage pipeline of kind task (one home for it), so `gantry
// schedule ls/suspend/resume/trigger` and `gantry pipeline runs/backfill`
// work on it as on any scheduled pipeline.
func newScheduleCreateCmd(g *globals) *cobra.Command {
	var (
		task, cluster, priority string
		sched                   jobs.Schedule
		timeout                 time.Duration
		attempts                int
		envs, cons              []string
		startingDeadline        time.Duration
	)
	c := &cobra.Command{
		Use:   "create [NAME] --task FAMILY[:REV] --cron EXPR",
		Short: "Schedule a single task definition (named after its family unless NAME is given)",
		Long: `create schedules runs of one task definition on a cron expression, as a
pipeline's schedule does: 5 fields, an optional seconds field first, or
@hourly, @daily, @every 10m; --timezone is an IANA zone (DST handled). An
EventBridge expression is refused saying what to write: cron(0 2 * * ? *) is
"0 2 * * ?" here (no year field), rate(5 minutes) is "@every 5m". Without
a revision each fire runs the family's latest ACTIVE revision. Each run sees
GANTRY_SCHEDULED_TIME.

The schedule is kept as a one-stage pipeline of kind task named NAME: list it
with 'gantry schedule ls', run it now with 'gantry schedule trigger NAME', see
its runs with 'gantry pipeline runs NAME' and backfill it with 'gantry pipeline
backfill NAME'. Creating it again updates it. A pipeline of that name that is
not a task schedule is never replaced.

--constraint (repeatable: K=V, K!=V, K for a label K of any value, !K for
no label K) places every run it makes on workers with those labels, as
gantry run --constraint does, over the task definition's placementConstraints
key by key; 'gantry pipeline describe NAME' shows them.`,
		Example: `  gantry schedule create --task cleanup --cron "@hourly"
  gantry schedule create nightly-report --task report:3 --cron "0 2 * * *" --timezone Europe/Paris \
      --concurrency-policy Forbid --misfire runOnce
  gantry schedule create --task backup --cron "@daily" --constraint disk=ssd --constraint '!spot'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts := client.TaskSchedule{TaskDefinition: task, Schedule: sched, Cluster: cluster,
				Overrides: envOverrides(envs)}
			if len(args) == 1 {
				ts.Name = args[0]
			}
			// As gantry run's: under a second (500ms) would have been
			// truncated to 0, no limit, and a negative one named the
			// stored pipeline's fields rather than the flag.
			// Every flag's problem at once, as the server's problems
			// with the schedule itself are told together.
			var problems []string
			check := func(err error) {
				if err != nil {
					problems = append(problems, oneLine(err))
				}
			}
			var err error
			ts.TimeoutSeconds, err = seconds("--timeout", timeout)
			check(err)
			ts.Schedule.StartingDeadlineSeconds, err = seconds("--starting-deadline", startingDeadline)
			check(err)
			ts.Priority, err = priorityFlag(priority)
			check(err)
			if cmd.Flags().Changed("attempts") && (attempts < 1 || attempts > 10) {
				check(fmt.Errorf("--attempts %d: must be between 1 and 10", attempts))
			}
			if attempts > 0 {
				ts.RetryStrategy = &jobs.RetryStrategy{Attempts: attempts}
			}
			for _, kv := range envs {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					check(fmt.Errorf("--env %q: want K=V", kv))
				}
			}
			ts.Constraints, err = constraintFlags(cons) // run.go
			check(err)
			if err := sched.Validate(); err != nil {
				// The schedule's own problems (--cron, --timezone, ...)
				// before connecting, named by flag as the server's are.
				lines := strings.Split(err.Error(), "\n")
				for i, l := range lines {
					lines[i] = "schedule." + l
				}
				problems = append(problems, scheduleFlagErrors(errors.New(strings.Join(lines, "\n"))))
			}
			if len(problems) > 0 {
				return errors.New(strings.Join(problems, "; "))
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			p, changed, err := c.CreateTaskSchedule(cmd.Context(), ts)
			if err != nil {
				return fmt.Errorf("%s", scheduleFlagErrors(err))
			}
			verb := "created"
			if !changed {
				verb = "unchanged"
			} else if p.Version > 1 {
				verb = "updated"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "schedule %s (task %s) version %d %s\n", p.Name, task, p.Version, verb)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "", "task definition to run: family[:revision] (required)")
	f.StringVar(&sched.Cron, "cron", "", "cron expression or descriptor (required)")
	f.StringVar(&sched.Timezone, "timezone", "", "IANA time zone of the expression (default UTC)")
	f.StringVar(&sched.ConcurrencyPolicy, "concurrency-policy", "", "Allow (default), Forbid or Replace")
	durationVar(f, &startingDeadline, "starting-deadline", 0, "a fire later than this after its time is missed (0: one minute)")
	f.StringVar(&sched.Misfire, "misfire", "", "what to do with a fire later than --starting-deadline (a server that was down or busy): skip it (default), runOnce (one catch-up run for the latest missed time) or runAll (a run for every missed time, oldest first, those passed while suspended too; at most 1000 at once; needs --concurrency-policy Allow)")
	f.BoolVar(&sched.Suspend, "suspend", false, "create it suspended")
	f.StringVar(&cluster, "cluster", "", "cluster to run in")
	durationVar(f, &timeout, "timeout", 0, "stop each attempt of a run that runs longer than this, counted from when its container starts (timeoutSeconds)")
	f.IntVar(&attempts, "attempts", 0, "total tries of each run (retryStrategy.attempts)")
	f.StringArrayVarP(&envs, "env", "e", nil, "set K=V in every container (repeatable)")
	f.StringVar(&priority, "priority", "", "high, normal (default) or low: of the runs it starts (a worker with room takes high runs first, low ones last)")
	f.StringArrayVar(&cons, "constraint", nil, "run only on workers with label K=V, K!=V, K (any value) or !K (none) (repeatable, up to 16)")
	c.MarkFlagRequired("task")
	c.MarkFlagRequired("cron")
	return c
}

// scheduleFlags names the flags that set a schedule create request's
// fields.
var scheduleFlags = []struct{ field, flag string }{
	{"taskDefinition", "--task"},
	{"cluster", "--cluster"},
	{"name", "NAME"},
	{"schedule.cron", "--cron"},
	{"schedule.timezone", "--timezone"},
	{"schedule.concurrencyPolicy", "--concurrency-policy"},
	{"schedule.misfire", "--misfire"},
	{"schedule.startingDeadlineSeconds", "--starting-deadline"},
	{"priority", "--priority"},
}

// scheduleFlagErrors puts the server's problems with a task schedule on one
// line, each naming the flag that set its field rather than the field.
func scheduleFlagErrors(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		if c := constraintFlagLine(l); c != l { // pipeline.go
			lines[i] = c
			continue
		}
		for _, f := range scheduleFlags {
			if rest, ok := strings.CutPrefix(l, f.field+": "); ok {
				lines[i] = f.flag + ": " + rest
				break
			}
		}
	}
	return strings.Join(lines, "; ")
}

// envOverrides makes K=V flags an override of every container's
// environment.
func envOverrides(envs []string) *jobs.Overrides {
	if len(envs) == 0 {
		return nil
	}
	var kvs []jobs.KeyValue
	for _, kv := range envs {
		k, v, _ := strings.Cut(kv, "=")
		kvs = append(kvs, jobs.KeyValue{Name: k, Value: v})
	}
	return &jobs.Overrides{ContainerOverrides: []jobs.ContainerOverride{{Environment: kvs}}}
}

// scheduleRuns says what a schedule runs, for `schedule ls`.
func scheduleRuns(s client.ScheduleInfo) string {
	if s.Kind == jobs.KindTask {
		return "task " + s.Target
	}
	return "pipeline " + orDash(s.Target)
}
