package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

// Dynamic shell completion: `gantry completion bash|zsh|fish|powershell`
// (cobra's command) prints the script; the functions here ask the server,
// briefly, for the run ids, task definition families, pipeline, schedule
// and worker names to offer. With no server they offer nothing.

// completers maps a command path (without "gantry ") to what its
// arguments complete to.
func completers(g *globals) map[string]cobra.CompletionFunc {
	runs := g.complete(completeRuns)
	families := g.complete(completeFamilies)
	revisions := g.complete(completeRevisions)
	pipelines := g.complete(completePipelines)
	schedules := g.complete(completeSchedules)
	workers := g.complete(completeWorkers)
	return map[string]cobra.CompletionFunc{
		"describe":           runs,
		"logs":               firstArg(runs),
		"stop":               runs,
		"rerun":              firstArg(g.complete(completeTaskRuns)), // not pr- ids
		"wait":               runs,
		"run":                firstArg(families),
		"taskdef ls":         firstArg(families),
		"taskdef describe":   firstArg(families),
		"taskdef deregister": firstArg(revisions),
		"pipeline describe":  firstArg(pipelines),
		"pipeline run":       firstArg(pipelines),
		"pipeline runs":      firstArg(pipelines),
		"pipeline backfill":  firstArg(pipelines),
		"pipeline delete":    firstArg(pipelines),
		"pipeline retry":     firstArg(g.complete(completeRetryable)),
		"schedule describe":  firstArg(schedules),
		"schedule suspend":   firstArg(schedules),
		"schedule resume":    firstArg(schedules),
		"schedule trigger":   firstArg(schedules),
		"schedule delete":    firstArg(g.complete(completeTaskSchedules)),
		"workers describe":   firstArg(workers),
		"workers drain":      firstArg(workers),
		"workers activate":   firstArg(workers),
		"pool set":           firstArg(g.complete(completePools)),
		"pool delete":        firstArg(g.complete(completePools)),
		"webhook delete":     firstArg(g.complete(completeWebhooks)),
		"webhook test":       firstArg(g.complete(completeWebhooks)),
	}
}

// addCompletions sets the completion of every command's arguments and of
// the flags whose values are known.
func addCompletions(root *cobra.Command, g *globals) {
	byPath := completers(g)
	statuses := []string{"QUEUED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
		if fn, ok := byPath[path]; ok && fn != nil && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = fn
		}
		if f := c.Flags().Lookup("output"); f != nil {
			formats := []string{"table", "json", "yaml"}
			if f.Value.Type() == (wideOutput{}).Type() {
				formats = []string{"table", "wide", "json", "yaml"}
			}
			_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
		}
		if c.Flags().Lookup("status") != nil && path == "ps" {
			_ = c.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statuses, cobra.ShellCompDirectiveNoFileComp))
		}
		if c.Flags().Lookup("family") != nil {
			_ = c.RegisterFlagCompletionFunc("family", g.complete(completeFamilies))
		}
		if path == "schedule create" {
			_ = c.RegisterFlagCompletionFunc("task", g.complete(completeFamilies))
		}
		if path == "run" || path == "rerun" || path == "ps" {
			if c.Flags().Lookup("worker") != nil {
				_ = c.RegisterFlagCompletionFunc("worker", g.complete(completeWorkers))
			}
		}
		if path == "run" || path == "rerun" {
			_ = c.RegisterFlagCompletionFunc("pool", g.complete(completePools))
			_ = c.RegisterFlagCompletionFunc("depends-on", g.complete(completeTaskRuns)) // not pr- ids
		}
		if path == "logs" {
			_ = c.RegisterFlagCompletionFunc("stage", completeLogStages(g))
		}
		if path == "webhook add" {
			_ = c.RegisterFlagCompletionFunc("pipeline", g.complete(completePipelines))
			_ = c.RegisterFlagCompletionFunc("on", cobra.FixedCompletions([]string{"FAILED", "SUCCEEDED", "CANCELED",
				"FAILED,CANCELED", "FAILED,SUCCEEDED,CANCELED"}, cobra.ShellCompDirectiveNoFileComp))
			_ = c.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"runs", "pipelineRuns"}, cobra.ShellCompDirectiveNoFileComp))
		}
		if path == "events" {
			_ = c.RegisterFlagCompletionFunc("run", g.complete(completeRuns))
			_ = c.RegisterFlagCompletionFunc("pipeline", g.complete(completePipelines))
			_ = c.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statuses, cobra.ShellCompDirectiveNoFileComp))
			_ = c.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"runs", "pipelines"}, cobra.ShellCompDirectiveNoFileComp))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	_ = root.RegisterFlagCompletionFunc("context", completeContexts) // context.go
}

// firstArg completes only the first argument.
func firstArg(fn cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return fn(cmd, args, toComplete)
	}
}

// complete connects as the command would (flags, environment, context)
// and calls list; it gives up after two seconds.
func (g *globals) complete(list func(context.Context, *client.Client) ([]cobra.Completion, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if err := g.applyContext(cmd.Flags()); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		g.conn.Timeout = time.Second
		nc, c, err := g.connect(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer nc.Close()
		items, err := list(ctx, c)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, it := range items {
			if strings.HasPrefix(it, toComplete) && !contains(args, it) {
				out = append(out, it)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// completeRuns offers the latest runs, with their task and status as the
// description zsh and fish show.
func completeRuns(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	out, err := completeTaskRuns(ctx, c)
	if err != nil {
		return nil, err
	}
	if prs, err := c.PipelineRuns(ctx, "", 20); err == nil {
		for _, pr := range prs {
			out = append(out, cobra.CompletionWithDesc(pr.PipelineRunID, fmt.Sprintf("pipeline %s %s", pr.Pipeline, pr.Status)))
		}
	}
	return out, nil
}

// completeRetryable offers the latest pipeline runs that ended FAILED or
// CANCELED, which pipeline retry takes.
func completeRetryable(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	prs, err := c.PipelineRuns(ctx, "", 50)
	if err != nil {
		return nil, err
	}
	var out []cobra.Completion
	for _, pr := range prs {
		if pr.Status == jobs.StatusFailed || pr.Status == jobs.StatusCanceled {
			out = append(out, cobra.CompletionWithDesc(pr.PipelineRunID, fmt.Sprintf("pipeline %s %s", pr.Pipeline, pr.Status)))
		}
	}
	return out, nil
}

// completeTaskRuns is completeRuns without the pipeline runs, for the
// commands that take a run only.
func completeTaskRuns(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	runs, _, err := c.List(ctx, client.ListOptions{All: true, Limit: 50})
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(runs))
	for _, r := range runs {
		out = append(out, cobra.CompletionWithDesc(r.RunID, fmt.Sprintf("%s %s", r.TaskDefinition, r.Status)))
	}
	return out, nil
}

func completeFamilies(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	list, err := c.ListTaskDefs(ctx, client.TaskDefListOptions{})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []cobra.Completion
	for _, td := range list {
		if !seen[td.Family] {
			seen[td.Family] = true
			out = append(out, td.Family)
		}
	}
	return out, nil
}

func completeRevisions(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	list, err := c.ListTaskDefs(ctx, client.TaskDefListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(list))
	for _, td := range list {
		out = append(out, td.Ref())
	}
	return out, nil
}

func completePipelines(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	ps, err := c.ListPipelines(ctx)
	return names(ps, err, func(p jobs.Pipeline) string { return p.Name })
}

func completeWebhooks(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	hs, err := c.Webhooks(ctx)
	return names(hs, err, func(h jobs.WebhookInfo) string { return h.Name })
}

func completePools(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	ps, err := c.Pools(ctx)
	return names(ps, err, func(p jobs.Pool) string { return p.Name })
}

// names completes to the name of each of list, as a listing call returned
// it with err.
func names[T any](list []T, err error, name func(T) string) ([]cobra.Completion, error) {
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(list))
	for _, v := range list {
		out = append(out, name(v))
	}
	return out, nil
}

func completeSchedules(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	ss, err := c.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out, nil
}

// completeTaskSchedules offers the schedules `schedule delete` takes: those
// of single task definitions.
func completeTaskSchedules(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	ss, err := c.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	var out []cobra.Completion
	for _, s := range ss {
		if s.Kind == jobs.KindTask {
			out = append(out, cobra.CompletionWithDesc(s.Name, "task "+s.Target))
		}
	}
	return out, nil
}

func completeWorkers(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
	ws, err := c.Workers(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make([]cobra.Completion, 0, len(ws))
	for _, w := range ws {
		out = append(out, cobra.CompletionWithDesc(w.ID, w.Cluster+" "+string(w.State)))
	}
	return out, nil
}

// psFilter are the filter flags of `gantry ps`.
type psFilter struct {
	family, cluster, worker string
	since                   time.Duration
	tags                    []string
}

func (f *psFilter) add(c *cobra.Command) {
	c.Flags().StringVar(&f.family, "family", "", "only runs of this task definition family (or family:revision)")
	c.Flags().StringVar(&f.cluster, "cluster", "", "only runs in this cluster")
	c.Flags().StringVar(&f.worker, "worker", "", "only runs placed on this worker")
	durationVar(c.Flags(), &f.since, "since", 0, "only runs created within this long (e.g. 1h, 2d, 1w)")
	c.Flags().StringArrayVar(&f.tags, "tag", nil, "only runs tagged K=V (K= for an empty value), or with a tag K whatever its value (repeatable: runs with all of them)")
}

// apply sets the filters in o; a bad --tag is an error naming it.
func (f *psFilter) apply(o *client.ListOptions) error {
	o.TaskDefinition, o.Cluster, o.Worker = f.family, f.cluster, f.worker
	if f.since > 0 {
		t := clock().Add(-f.since)
		o.CreatedAfter = &t
	}
	if err := tagFilters(o, f.tags); err != nil {
		return fmt.Errorf("--tag %w", err)
	}
	return nil
}

// tagFilters adds the tag filters of gantry ps --tag and of /api/runs's
// tag= to o: K=V keeps runs with that tag, K those with a tag K. The
// error names the value at fault.
func tagFilters(o *client.ListOptions, vals []string) error {
	for _, s := range vals {
		k, v, has, err := jobs.ParseTag(s, true)
		if err != nil {
			return err
		}
		if !has {
			o.TagKeys = append(o.TagKeys, k)
			continue
		}
		if old, dup := o.Tags[k]; dup && old != v {
			return fmt.Errorf("%q: key %q is given the value %q too: no run has both", s, k, old)
		}
		if o.Tags == nil {
			o.Tags = map[string]string{}
		}
		o.Tags[k] = v
	}
	return nil
}

// completeLogStages offers the stages of the pipeline run gantry logs was
// given (pipelines.status, which a submit-only user may read), those
// already given to --stage left out.
func completeLogStages(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 || !jobs.IsPipelineRunID(args[0]) {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		given, _ := cmd.Flags().GetStringArray("stage")
		return g.complete(func(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
			pr, err := pipelineRunStatus(ctx, c, args[0])
			if err != nil {
				return nil, err
			}
			var out []cobra.Completion
			for _, st := range pr.Stages {
				if !contains(given, st.Name) {
					out = append(out, cobra.CompletionWithDesc(st.Name, string(st.Status)))
				}
			}
			return out, nil
		})(cmd, args, toComplete)
	}
}
