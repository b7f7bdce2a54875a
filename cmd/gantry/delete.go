package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gantry-dev/gantry/client"
	"github.com/spf13/cobra"
)

func newPipelineDeleteCmd(g *globals) *cobra.Command {
	var (
		force bool
		out   output
	)
	c := &cobra.Command{
		Use:     "delete NAME [--force]",
		Aliases: []string{"rm"},
		Short:   "Delete a pipeline, every version and its schedule; its past runs stay readable",
		Long: `delete removes a pipeline: all its versions and its schedule, which stops
firing at once.

A pipeline with active (PENDING or RUNNING) pipeline runs is not deleted: the
error names them. Stop them with 'gantry stop PIPELINE_RUN_ID', or give
--force to stop them and delete. A pipeline whose runs start another
pipeline (that pipeline's triggers name it) is not deleted, force or not,
until those triggers or pipelines are gone.

The pipeline runs it made stay recorded: 'gantry describe PIPELINE_RUN_ID'
still shows each one with its stages, runs and attempts, and 'gantry logs
RUN' their logs. 'gantry pipeline runs NAME' needs the pipeline, so note the
ids you want before deleting it. Applying a pipeline of the same name later
starts again at version 1.`,
		Example: `  gantry pipeline runs daily-sales             # the ids of its runs, to describe them later
  gantry pipeline delete daily-sales
  gantry pipeline delete daily-sales --force   # stop its active runs, then delete
  gantry describe pr-01jf3...                  # a run of the deleted pipeline`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*client.Deleted, error) {
				return c.DeletePipeline(ctx, args[0], force)
			}, func(w io.Writer, d *client.Deleted) error {
				for _, id := range d.Stopped {
					fmt.Fprintf(w, "pipeline run %s stopped\n", id)
				}
				_, err := fmt.Fprintf(w, "pipeline %s deleted\n", d.Name)
				return err
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "stop the pipeline's active runs, then delete it")
	addOutputFlag(c, &out)
	return c
}

func newScheduleDeleteCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a task schedule (made by 'schedule create'); the runs it started go on",
		Long: `delete removes a schedule made by 'gantry schedule create': it stops firing
at once. Runs it already started go on to their end (stop them with 'gantry
stop PIPELINE_RUN_ID'), and every run it made stays recorded: 'gantry
describe PIPELINE_RUN_ID' still shows it.

The schedule of a pipeline is part of the pipeline's file, and is not
deleted apart from it: remove schedule: from the file and 'gantry pipeline
apply' it, 'gantry schedule suspend' it, or 'gantry pipeline delete' the
pipeline.`,
		Example: `  gantry schedule ls
  gantry schedule delete cleanup`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*client.Deleted, error) {
				return c.DeleteSchedule(ctx, args[0])
			}, func(w io.Writer, d *client.Deleted) error {
				_, err := fmt.Fprintf(w, "schedule %s deleted\n", d.Name)
				for _, id := range d.Running {
					fmt.Fprintf(w, "pipeline run %s goes on\n", id)
				}
				return err
			})
		},
	}
	addOutputFlag(c, &out)
	return c
}
