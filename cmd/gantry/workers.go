package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/spf13/cobra"
)

func newWorkersCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "workers",
		Short: "List, describe, drain and activate the live workers",
		Long: `workers shows the worker agents that sent a heartbeat in the last 15
seconds: their cluster, host, labels, capacity (CPU units, memory MiB,
slots), what is in use, the runs they run, and their state (ACTIVE or
DRAINING; a worker told to stop is DRAINING through its --grace). A
worker that dies disappears from the list on its own. drain lets a worker
finish what it runs and take nothing new; activate lets a drained one take
work again. Both are kept across the worker's restarts, and may be given
for a worker that is not live (a host down for maintenance): it starts in
that state when it next starts with that id.`,
	}
	c.AddCommand(newWorkersLsCmd(g), newWorkersDescribeCmd(g), newWorkersDrainCmd(g, true), newWorkersDrainCmd(g, false))
	return c
}

func newWorkersLsCmd(g *globals) *cobra.Command {
	var (
		cluster string
		out     output
	)
	c := &cobra.Command{
		Use:     "ls",
		Short:   "List the live workers",
		Example: "  gantry workers ls\n  gantry workers ls --cluster etl -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]jobs.WorkerInfo, error) {
				return c.Workers(ctx, cluster)
			}, func(w io.Writer, ws []jobs.WorkerInfo) error { return workersTable(w, ws, clock()) })
		},
	}
	c.Flags().StringVar(&cluster, "cluster", "", "only the workers of this cluster")
	addOutputFlag(c, &out)
	return c
}

// workersTable is the table of `gantry workers ls`.
func workersTable(w io.Writer, ws []jobs.WorkerInfo, now time.Time) error {
	fmt.Fprintln(w, "ID\tCLUSTER\tHOST\tSTATE\tCPU\tMEMORY\tSLOTS\tRUNS\tHEARTBEAT\tLABELS")
	for _, x := range ws {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%s\t%s\n", x.ID, x.Cluster, orDash(x.Host), x.State,
			used(x.InUse.CPU, x.Capacity.CPU), used(x.InUse.Memory, x.Capacity.Memory),
			x.InUse.Slots, x.Capacity.Slots, len(x.Runs), ago(x.LastHeartbeat, now), orDash(labelText(x.Labels)))
	}
	return nil
}

func newWorkersDescribeCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "describe ID",
		Short: "Show a live worker",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.WorkerInfo, error) {
				return c.Worker(ctx, args[0])
			}, describeWorker)
		},
	}
	addOutputFlag(c, &out)
	return c
}

func describeWorker(w io.Writer, x *jobs.WorkerInfo) error {
	now := clock()
	fmt.Fprintf(w, "Worker:\t%s\n", x.ID)
	fmt.Fprintf(w, "Cluster:\t%s\n", x.Cluster)
	fmt.Fprintf(w, "Host:\t%s\n", orDash(x.Host))
	if x.Stopping {
		fmt.Fprintf(w, "State:\t%s (stopping: finishing its runs within its --grace, it takes none again)\n", x.State)
	} else {
		fmt.Fprintf(w, "State:\t%s\n", x.State)
	}
	if x.RuntimeError != "" {
		fmt.Fprintf(w, "Runtime:\tunreachable, taking no runs: %s\n", x.RuntimeError)
	}
	fmt.Fprintf(w, "Labels:\t%s\n", orDash(labelText(x.Labels)))
	fmt.Fprintf(w, "CPU units:\t%s\n", used(x.InUse.CPU, x.Capacity.CPU))
	fmt.Fprintf(w, "Memory MiB:\t%s\n", used(x.InUse.Memory, x.Capacity.Memory))
	fmt.Fprintf(w, "Slots:\t%d/%d\n", x.InUse.Slots, x.Capacity.Slots)
	fmt.Fprintf(w, "Started:\t%s\n", when(x.StartedAt, now))
	fmt.Fprintf(w, "Last heartbeat:\t%s\n", when(x.LastHeartbeat, now))
	fmt.Fprintf(w, "Runs:\t%s\n", orDash(strings.Join(x.Runs, ", ")))
	return nil
}

func newWorkersDrainCmd(g *globals, drain bool) *cobra.Command {
	use, short := "drain ID", "Let a worker finish what it runs and take nothing new (it stays DRAINING across restarts)"
	long := `drain tells a worker to finish what it runs and take nothing new. The
setting is kept across the worker's restarts until gantry workers activate
ID. A worker that is not live (no heartbeat in the last 15 seconds: a host
down for maintenance) may be drained too: it starts DRAINING when it next
starts with that id.`
	if !drain {
		use, short = "activate ID", "Let a drained worker take work again"
		long = `activate lets a drained worker take work again. For a worker that is not
live it is recorded: the worker starts ACTIVE when it next starts with that
id. A worker that is stopping (SIGTERM, within its --grace) stays DRAINING
until it stops: it takes no run again before it restarts, ACTIVE.`
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			set := c.DrainWorker
			if !drain {
				set = c.ActivateWorker
			}
			x, err := set(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", x.ID, x.State)
			if note := drainNote(x, drain); note != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), note)
			}
			return nil
		},
	}
}

// drainNote says what a drain or activate of a worker that is not live,
// or that is stopping, did: the reply's state is not the live worker's
// new one.
func drainNote(x *jobs.WorkerInfo, drain bool) string {
	next, undo := "ACTIVE", ""
	if drain {
		next, undo = "DRAINING", " (gantry workers activate "+x.ID+" undoes it)"
	}
	switch {
	case x.NotLive:
		return fmt.Sprintf("gantry: worker %s is not live (no heartbeat in the last %s; gantry workers ls lists the live ones): recorded, it starts %s when it next starts with this id%s",
			x.ID, queue.PresenceTTL, next, undo)
	case x.Stopping:
		return fmt.Sprintf("gantry: worker %s is stopping (SIGTERM, finishing its runs within its --grace) and takes no run again before it stops: recorded, it starts %s when it next starts%s",
			x.ID, next, undo)
	}
	return ""
}

// used shows "in use/capacity", with "-" for an unbounded capacity.
func used(inUse, capacity int) string {
	if capacity <= 0 {
		return fmt.Sprintf("%d/-", inUse)
	}
	return fmt.Sprintf("%d/%d", inUse, capacity)
}

func labelText(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}
