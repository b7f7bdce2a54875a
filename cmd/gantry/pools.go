package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

func newPoolCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "pool",
		Short: "Bound how many runs of a kind run at once, across every worker (set, ls, delete)",
		Long: `A pool is a name and a number of slots: at most that many runs submitted
into the pool (gantry run --pool NAME, the submit JSON's "pool", a pipeline
stage's pool:) run at once, whatever host, pipeline or backfill they come
from, as Airflow's pools. A worker's --slots bounds one host; a pool bounds
what hits one database or API across the fleet.

A run takes a slot when its job goes to the queue and holds it until it
ends, however it ends; its retries keep it. While the pool is full the run
stays QUEUED, its job not yet in the queue, and says so:
"waiting for a slot in pool warehouse (2 of 2 in use)". When a slot frees,
the waiting run of highest priority goes first, then the oldest. A run with
--depends-on waits for its dependencies first, then for a slot.

Only operators may set and delete pools; submitting into a pool that does
not exist is refused.`,
		Example: `  gantry pool set warehouse --slots 2
  gantry run -d --pool warehouse load-sales
  gantry pool ls
  gantry pool set warehouse --slots 0      # pause: nothing new starts
  gantry pool delete warehouse`,
	}
	c.AddCommand(newPoolSetCmd(g), newPoolLsCmd(g), newPoolDeleteCmd(g))
	return c
}

func newPoolSetCmd(g *globals) *cobra.Command {
	var (
		slots int
		out   output
	)
	c := &cobra.Command{
		Use:   "set NAME --slots N",
		Short: "Create a pool, or change its slots (0 pauses it)",
		Long: `set creates the pool NAME with N slots, or changes the slots of an existing
one. More slots release waiting runs at once. Fewer slots stop nothing
that runs: runs holding a slot keep it to their end, and no run waiting
starts until fewer than N hold one. --slots 0 pauses the pool: nothing new
starts until its slots are raised.`,
		Example: `  gantry pool set warehouse --slots 2
  gantry pool set warehouse --slots 0   # pause
  gantry pool set warehouse --slots 4   # resume, wider`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := poolSetFlags(cmd, args[0], slots); err != nil {
				return err
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.Pool, error) {
				p, created, err := c.SetPool(ctx, args[0], slots)
				if err == nil && created {
					fmt.Fprintf(cmd.ErrOrStderr(), "pool %s created\n", p.Name)
				}
				return p, err
			}, func(w io.Writer, p *jobs.Pool) error { return poolsTable(w, []jobs.Pool{*p}) })
		},
	}
	c.Flags().IntVar(&slots, "slots", 0, "how many runs of the pool may run at once (required; 0 pauses it)")
	addOutputFlag(c, &out)
	return c
}

// poolSetFlags checks pool set's arguments before connecting.
func poolSetFlags(cmd *cobra.Command, name string, slots int) error {
	var errs []error
	if err := jobs.CheckPoolName("NAME", name); err != nil {
		errs = append(errs, err)
	}
	switch {
	case !cmd.Flags().Changed("slots"):
		errs = append(errs, errors.New("--slots: required (0 pauses the pool)"))
	case jobs.CheckPoolSlots("--slots", slots) != nil:
		errs = append(errs, jobs.CheckPoolSlots("--slots", slots))
	}
	return errors.Join(errs...)
}

func newPoolLsCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the pools: slots, slots in use, runs waiting",
		Long: `ls lists every pool: its slots, how many runs hold one (IN USE: it may
exceed SLOTS after the slots were lowered) and how many wait for one
(WAITING; runs still waiting for their --depends-on are not counted).
'gantry ps' shows each waiting run's reason.`,
		Example: "  gantry pool ls\n  gantry pool ls -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]jobs.Pool, error) {
				return c.Pools(ctx)
			}, poolsTable)
		},
	}
	addOutputFlag(c, &out)
	return c
}

// poolsTable is the table of `gantry pool ls`.
func poolsTable(w io.Writer, pools []jobs.Pool) error {
	fmt.Fprintln(w, "NAME\tSLOTS\tIN USE\tWAITING")
	for _, p := range pools {
		slots := fmt.Sprint(p.Slots)
		if p.Slots == 0 {
			slots = "0 (paused)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", p.Name, slots, p.InUse, p.Waiting)
	}
	return nil
}

func newPoolDeleteCmd(g *globals) *cobra.Command {
	var (
		force bool
		out   output
	)
	c := &cobra.Command{
		Use:     "delete NAME [--force]",
		Aliases: []string{"rm"},
		Short:   "Delete a pool",
		Long: `delete removes a pool. A pool that runs hold a slot of or wait for is not
deleted: the error names them. Wait for them, stop them ('gantry stop RUN'),
or give --force: the runs waiting for a slot (or for their --depends-on,
then a slot) fail without running, saying the pool was deleted, and those
holding a slot run on to their end. Submitting into the pool is refused
from then on; pipelines whose stages name it fail those stages.`,
		Example: `  gantry pool delete warehouse
  gantry pool delete warehouse --force   # fail the runs waiting for it`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := jobs.CheckPoolName("NAME", args[0]); err != nil {
				return err
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*client.PoolDeleted, error) {
				return c.DeletePool(ctx, args[0], force)
			}, func(w io.Writer, d *client.PoolDeleted) error {
				for _, id := range d.Failed {
					fmt.Fprintf(w, "run %s failed: it waited for the pool\n", id)
				}
				for _, id := range d.Running {
					fmt.Fprintf(w, "run %s holds a slot: it runs on\n", id)
				}
				_, err := fmt.Fprintf(w, "pool %s deleted\n", d.Name)
				return err
			})
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "delete even if runs hold or wait for a slot: those waiting fail")
	addOutputFlag(c, &out)
	return c
}
