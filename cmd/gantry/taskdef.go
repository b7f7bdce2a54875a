package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

func newTaskdefCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "taskdef",
		Aliases: []string{"taskdefs", "task-definition"},
		Short:   "Register, list, describe and deregister ECS task definitions",
		Long: `taskdef manages the task definition registry. Task definitions are Amazon ECS
JSON, as 'aws ecs register-task-definition --cli-input-json' takes it: each
register stores the next revision of the family. Fields that only mean
something on AWS (executionRoleArn, awslogs, ...) are accepted and reported as
ignored; a field ECS does not have is an error.

Run a registered task with 'gantry run FAMILY[:REV]' (the latest ACTIVE
revision when REV is omitted).`,
		Example: `  gantry taskdef validate taskdefs/*.json
  gantry taskdef register --dry-run samples/taskdefs/hello.json
  gantry taskdef register samples/taskdefs/hello.json
  cat td.json | gantry taskdef register -
  gantry taskdef ls --all
  gantry taskdef describe hello -o json
  gantry taskdef deregister hello:1`,
	}
	c.AddCommand(newTaskdefRegisterCmd(g), newTaskdefValidateCmd(), newTaskdefLsCmd(g), newTaskdefDescribeCmd(g), newTaskdefDeregisterCmd(g))
	hintUnknownNames(c, "task definition", "gantry taskdef ls --all lists them") // runs.go
	return c
}

func newTaskdefRegisterCmd(g *globals) *cobra.Command {
	var (
		out    output
		dryRun bool
	)
	c := &cobra.Command{
		Use:   "register FILE|-",
		Short: "Register a task definition from a JSON file (- for stdin); prints family:revision",
		Long: `register stores an ECS task definition as the next revision of its family and
prints it (family:revision). Every register makes a new revision, as on ECS,
even of a definition equal to the latest.

--dry-run asks the server to check it as register does and to say which
revision it would be, and whether it equals the family's latest, storing
nothing: "would register etl:4, identical to etl:3". Its problems are listed
on stderr, a line each; it exits 0 when the definition would register, 1
when problems were found, 125 when gantry could not check.
'gantry taskdef validate' checks files without a server.`,
		Example: `  gantry taskdef register samples/taskdefs/hello.json
  gantry taskdef register --dry-run samples/taskdefs/hello.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dryRun {
				return dryRunTaskDef(cmd.Context(), cmd, g, out, args[0]) // check.go
			}
			data, err := readFile(cmd, args[0])
			if err != nil {
				return err
			}
			nc, c, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer nc.Close()
			td, warnings, err := c.RegisterTaskDef(cmd.Context(), data)
			if errors.Is(err, client.ErrInvalidArgument) {
				return fileRefused(cmd, args[0], err, "not registered")
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "gantry: warning:", w)
			}
			return out.write(cmd.OutOrStdout(), td, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, td.Ref())
				return err
			})
		},
	}
	c.Flags().BoolVar(&dryRun, "dry-run", false, "check the definition as register does and say which revision it would be, storing nothing (exit 1 on problems)")
	addOutputFlag(c, &out)
	return c
}

func newTaskdefLsCmd(g *globals) *cobra.Command {
	var (
		all, inactive bool
		out           output
	)
	c := &cobra.Command{
		Use:     "ls [FAMILY]",
		Aliases: []string{"list"},
		Short:   "List ACTIVE task definition revisions (--all for INACTIVE ones too)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.TaskDefListOptions{}
			if len(args) == 1 {
				o.Family = args[0]
			}
			switch {
			case all:
				o.Status = "ALL"
			case inactive:
				o.Status = jobs.TaskDefInactive
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]jobs.RegisteredTaskDefinition, error) {
				return c.ListTaskDefs(ctx, o)
			}, func(w io.Writer, list []jobs.RegisteredTaskDefinition) error { return taskdefsTable(w, list, clock()) })
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "include INACTIVE (deregistered) revisions")
	c.Flags().BoolVar(&inactive, "inactive", false, "only INACTIVE revisions")
	addOutputFlag(c, &out)
	return c
}

// taskdefsTable is the table of `gantry taskdef ls`.
func taskdefsTable(w io.Writer, list []jobs.RegisteredTaskDefinition, now time.Time) error {
	fmt.Fprintln(w, "TASK DEFINITION\tSTATUS\tCONTAINERS\tCPU\tMEMORY\tREGISTERED")
	for _, td := range list {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", td.Ref(), td.Status, containerNames(&td.TaskDefinition),
			orDash(td.CPU), orDash(td.Memory), ago(td.RegisteredAt, now))
	}
	return nil
}

func containerNames(td *jobs.TaskDefinition) string {
	names := make([]string, 0, len(td.ContainerDefinitions))
	for _, c := range td.ContainerDefinitions {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

func newTaskdefDescribeCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "describe FAMILY[:REV]",
		Short: "Show a task definition revision (the latest ACTIVE one without REV)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := jobs.ParseRef(args[0]); err != nil {
				return err
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.RegisteredTaskDefinition, error) {
				return c.DescribeTaskDef(ctx, args[0])
			}, describeTaskDefTable)
		},
	}
	addOutputFlag(c, &out)
	return c
}

func describeTaskDefTable(w io.Writer, td *jobs.RegisteredTaskDefinition) error {
	fmt.Fprintf(w, "Task definition:\t%s\n", td.Ref())
	fmt.Fprintf(w, "Status:\t%s\n", td.Status)
	fmt.Fprintf(w, "Registered:\t%s\n", td.RegisteredAt.In(localZone).Format(time.RFC3339))
	if td.DeregisteredAt != nil {
		fmt.Fprintf(w, "Deregistered:\t%s\n", td.DeregisteredAt.In(localZone).Format(time.RFC3339))
	}
	fmt.Fprintf(w, "CPU:\t%s\n", orDash(td.CPU))
	fmt.Fprintf(w, "Memory:\t%s\n", orDash(td.Memory))
	for _, v := range td.Volumes {
		kind := "scratch"
		switch {
		case v.Host != nil && v.Host.SourcePath != "":
			kind = "host " + v.Host.SourcePath
		case v.DockerVolumeConfiguration != nil:
			kind = "docker volume, scope " + orDash(v.DockerVolumeConfiguration.Scope)
		}
		fmt.Fprintf(w, "Volume %s:\t%s\n", v.Name, kind)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CONTAINER\tIMAGE\tESSENTIAL\tCPU\tMEMORY\tDEPENDS ON\tCOMMAND")
	for _, c := range td.ContainerDefinitions {
		var deps []string
		for _, d := range c.DependsOn {
			deps = append(deps, d.ContainerName+":"+d.Condition)
		}
		mem := "-"
		if c.Memory > 0 {
			mem = fmt.Sprintf("%d MiB", c.Memory)
		} else if c.MemoryReservation > 0 {
			mem = fmt.Sprintf("~%d MiB", c.MemoryReservation)
		}
		cpu := "-"
		if c.CPU > 0 {
			cpu = fmt.Sprint(c.CPU)
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\t%s\t%s\n", c.Name, c.Image, c.IsEssential(), cpu, mem,
			orDash(strings.Join(deps, ",")), orDash(strings.Join(append(append([]string(nil), c.EntryPoint...), c.Command...), " ")))
	}
	return nil
}

func newTaskdefDeregisterCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "deregister FAMILY:REV",
		Short: "Mark a revision INACTIVE: no new runs; runs already submitted go on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, rev, err := jobs.ParseRef(args[0]); err != nil {
				return err
			} else if rev == 0 {
				return fmt.Errorf("%q: deregister needs FAMILY:REV", args[0])
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.RegisteredTaskDefinition, error) {
				return c.DeregisterTaskDef(ctx, args[0])
			}, func(w io.Writer, td *jobs.RegisteredTaskDefinition) error {
				_, err := fmt.Fprintf(w, "%s\t%s\n", td.Ref(), td.Status)
				return err
			})
		},
	}
	addOutputFlag(c, &out)
	return c
}

// overrideContainer names the container of a run's override when the
// command line could not: for FAMILY[:REV] it is the first essential
// container of the revision the server will run.
func overrideContainer(ctx context.Context, c *client.Client, req *jobs.SubmitRequest) error {
	if req.Overrides == nil || len(req.Overrides.ContainerOverrides) != 1 || req.Overrides.ContainerOverrides[0].Name != "" {
		return nil
	}
	var ref string
	if err := json.Unmarshal(req.TaskDefinition, &ref); err != nil {
		return fmt.Errorf("--env, --cpu, --memory and a command need a container: give --name")
	}
	td, err := c.DescribeTaskDef(ctx, ref)
	if err != nil {
		return err
	}
	req.Overrides.ContainerOverrides[0].Name = firstEssential(&td.TaskDefinition)
	return nil
}
