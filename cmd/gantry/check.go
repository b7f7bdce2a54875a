package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

// exitProblems is the exit code of a check (validate, --dry-run) that
// found problems in what it checked; 125 stays gantry's own failure to
// check.
const exitProblems = 1

// checks tells, file by file, what validate and --dry-run found: each
// problem on its own line of stderr after its file's name, as compilers
// do, and the outcome of the files without on stdout.
type checks struct {
	stdout, stderr io.Writer
	files          int
	bad            int // files with problems
	problems       int
	unread         int // files that could not be read
}

// fileName is how a file is named in what checks print.
func fileName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// found lists err's problems, a line each, as file's.
func (c *checks) found(name string, err error) {
	c.bad++
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			c.problems++
			fmt.Fprintf(c.stderr, "%s: %s\n", fileName(name), line)
		}
	}
}

// unreadable tells that a file could not be read, on a line of its own
// as a problem is: the files after it are checked all the same.
func (c *checks) unreadable(name string, err error) {
	c.unread++
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // "open NAME: " would name the file twice
	}
	fmt.Fprintf(c.stderr, "%s: cannot read: %v\n", fileName(name), err)
}

// ok tells of a file without problems.
func (c *checks) ok(name, format string, args ...any) {
	fmt.Fprintf(c.stdout, "%s: %s\n", fileName(name), fmt.Sprintf(format, args...))
}

// warn tells of what a file has that is accepted but ignored.
func (c *checks) warn(name string, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(c.stderr, "%s: warning: %s\n", fileName(name), w)
	}
}

// result is the command's error: nil when every file was fine, exit 1
// naming how many problems were found, 125 when a file could not be read
// (the check is not done), after the problems of the others.
func (c *checks) result() error {
	s := "s"
	if c.problems == 1 {
		s = ""
	}
	if c.unread > 0 {
		err := fmt.Errorf("could not read %d of %d files", c.unread, c.files)
		if c.files == 1 {
			err = errors.New("could not read the file")
		}
		if c.problems > 0 {
			err = fmt.Errorf("%w; %d problem%s in %d of the %d others", err, c.problems, s, c.bad, c.files-c.unread)
		}
		return &exitError{code: exitGantryError, err: err}
	}
	if c.problems == 0 {
		return nil
	}
	return &exitError{code: exitProblems, err: fmt.Errorf("%d problem%s in %d of %d files", c.problems, s, c.bad, c.files)}
}

// validateFiles reads each file named (- is stdin, once) and hands it to
// check; a file that cannot be read is told as such, and the others are
// checked all the same.
func validateFiles(cmd *cobra.Command, names []string, check func(c *checks, name string, data []byte)) error {
	if err := stdinOnce(names); err != nil {
		return err
	}
	c := &checks{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), files: len(names)}
	for _, name := range names {
		data, err := readFile(cmd, name)
		if err != nil {
			c.unreadable(name, err)
			continue
		}
		check(c, name, data)
	}
	return c.result()
}

// stdinOnce refuses - given more than once: stdin reads once.
func stdinOnce(names []string) error {
	n := 0
	for _, name := range names {
		if name == "-" {
			if n++; n > 1 {
				return errors.New("- (stdin) is given more than once")
			}
		}
	}
	return nil
}

// readFiles reads the files named (- is stdin, once), before anything is
// checked: a file that cannot be read is gantry's failure to check (125).
func readFiles(cmd *cobra.Command, names []string) ([][]byte, error) {
	if err := stdinOnce(names); err != nil {
		return nil, err
	}
	var out [][]byte
	for _, name := range names {
		data, err := readFile(cmd, name)
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}

func newPipelineValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE|-...",
		Short: "Check pipeline files offline, without a server: every problem of each, with its path",
		Long: `validate checks pipeline files as apply does before it asks the server, with
the same parser and rules, without NATS or a server: for a CI job that has
neither. Every problem of every file is listed on stderr, a line each, after
the file's name:

  pipelines/sales.yaml: stages[1](transform).dependsOn[0]: no stage "extrat"

What only the server knows is not checked: that task definitions are
registered, that pools exist, that triggers name pipelines and close no
cycle. 'gantry pipeline apply --dry-run' checks those too.

A file that cannot be read is told on a line of its own
(pipelines/gone.yaml: cannot read: no such file or directory); the other
files are checked all the same.

Exit status: 0 every file is valid, 1 problems were found, 125 gantry could
not check (a file that cannot be read, after the others' problems).`,
		Example: `  gantry pipeline validate pipelines/*.yaml
  cat sales.yaml | gantry pipeline validate -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return validateFiles(cmd, args, func(c *checks, name string, data []byte) {
				p, err := jobs.ParsePipeline(data) // what apply and the server parse with
				if err != nil {
					c.found(name, err)
					return
				}
				c.ok(name, "pipeline %s: valid, %s", p.Name, plural(len(p.Stages), "stage"))
			})
		},
	}
}

func newTaskdefValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE|-...",
		Short: "Check task definition files offline, without a server: every problem of each, with its path",
		Long: `validate checks ECS task definition files as register does, with the same
parser and rules, without NATS or a server: for a CI job that has neither.
Every problem of every file is listed on stderr, a line each, after the
file's name, and so are the fields accepted but ignored (warnings, which are
no problems):

  taskdefs/etl.json: containerDefinitions[0].memmory: unknown field; did you mean "memory"?

A file that cannot be read is told on a line of its own
(pipelines/gone.yaml: cannot read: no such file or directory); the other
files are checked all the same.

Exit status: 0 every file is valid, 1 problems were found, 125 gantry could
not check (a file that cannot be read, after the others' problems).`,
		Example: `  gantry taskdef validate taskdefs/*.json
  aws ecs describe-task-definition --task-definition etl | gantry taskdef validate -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return validateFiles(cmd, args, func(c *checks, name string, data []byte) {
				td, warnings, err := jobs.DecodeTaskDefinition(data) // what the server registers with
				c.warn(name, warnings)
				if err != nil {
					c.found(name, err)
					return
				}
				c.ok(name, "task definition %s: valid, %s", td.Family, plural(len(td.ContainerDefinitions), "container"))
			})
		},
	}
}

// dryRunPipelines asks the server what applying each file would do,
// storing nothing. A file that does not decode is not sent (apply sends
// it no more); the server lists the others' problems, those of the file
// and those only it sees, as apply's.
func dryRunPipelines(cmd *cobra.Command, g *globals, args []string) error {
	files, err := readFiles(cmd, args)
	if err != nil {
		return err
	}
	c := &checks{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), files: len(args)}
	// Files that do not decode are not sent, but are told in the order
	// given, among those the server checks.
	decodeErrs := make([]error, len(files))
	sent := 0
	for i, data := range files {
		if _, decodeErrs[i] = jobs.DecodePipeline(data); decodeErrs[i] == nil {
			sent++
		}
	}
	if sent == 0 {
		for i, err := range decodeErrs {
			c.found(args[i], err)
		}
		return c.result()
	}
	nc, cl, err := g.connect(cmd.Context())
	if err != nil {
		// The check is not done (125), but what the files show by
		// themselves is told, as apply tells it.
		for i, derr := range decodeErrs {
			if derr == nil {
				_, derr = jobs.ParsePipeline(files[i])
			}
			if derr != nil {
				c.found(args[i], derr)
			}
		}
		return err
	}
	defer nc.Close()
	for i := range files {
		if decodeErrs[i] != nil {
			c.found(args[i], decodeErrs[i])
			continue
		}
		res, err := cl.DryRunPipeline(cmd.Context(), files[i])
		if errors.Is(err, client.ErrInvalidArgument) {
			c.found(args[i], err)
			continue
		}
		if err != nil {
			for j := i + 1; j < len(files); j++ { // what is known of the rest
				if decodeErrs[j] != nil {
					c.found(args[j], decodeErrs[j])
				}
			}
			return fmt.Errorf("%s: %w", fileName(args[i]), err)
		}
		p := res.Pipeline
		switch {
		case !res.Changed:
			c.ok(args[i], "pipeline %s: unchanged (version %d)", p.Name, p.Version)
		case p.Version == 1:
			c.ok(args[i], "pipeline %s: new, would be version 1 (%s)", p.Name, plural(len(p.Stages), "stage"))
		default:
			c.ok(args[i], "pipeline %s: would be version %d (now %d):", p.Name, p.Version, p.Version-1)
			for _, ch := range res.Changes {
				fmt.Fprintf(c.stdout, "  %s\n", ch)
			}
		}
	}
	return c.result()
}

// dryRunTaskDef asks the server which revision registering the file
// would make, storing nothing.
func dryRunTaskDef(ctx context.Context, cmd *cobra.Command, g *globals, out output, name string) error {
	data, err := readFile(cmd, name)
	if err != nil {
		return err
	}
	c := &checks{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), files: 1}
	if _, _, err := jobs.DecodeTaskDefinition(data); err != nil {
		// The server would answer the same; no need to reach it.
		c.found(name, err)
		return c.result()
	}
	nc, cl, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	res, err := cl.DryRunTaskDef(ctx, data)
	if errors.Is(err, client.ErrInvalidArgument) {
		c.found(name, err)
		return c.result()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", fileName(name), err)
	}
	c.warn(name, res.Warnings)
	return out.write(cmd.OutOrStdout(), res, func(w io.Writer) error {
		if res.IdenticalTo != "" {
			_, err := fmt.Fprintf(w, "would register %s, identical to %s\n", res.TaskDefinition.Ref(), res.IdenticalTo)
			return err
		}
		_, err := fmt.Fprintf(w, "would register %s\n", res.TaskDefinition.Ref())
		return err
	})
}

// fileRefused tells why a task definition file was refused (by register,
// or run --file): each problem on a line of its own after the file's
// name, as validate and pipeline apply list them, then the error that
// ends the command, saying what was not done.
func fileRefused(cmd *cobra.Command, name string, err error, notDone string) error {
	c := &checks{stderr: cmd.ErrOrStderr()}
	c.found(name, err)
	return fmt.Errorf("%s: refused (%s): %s", fileName(name), plural(c.problems, "problem"), notDone)
}

// plural is n and word, with an s unless n is 1 ("1 stage", "3 stages").
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
