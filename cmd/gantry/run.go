package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

type runFlags struct {
	image, file, cluster, worker, name string
	env                                []string
	timeout                            time.Duration
	deadline                           time.Duration
	attempts, memory, cpu              int
	detach                             bool
	idempotencyKey                     string
	priority                           string
	tags                               []string
	propagateTags                      bool
	dependsOn                          []string
	pool                               string
	constraints                        []string
	arraySize                          string
	arrayOrder                         string
}

func newRunCmd(g *globals) *cobra.Command {
	var (
		f   runFlags
		out output // detach_output.go
	)
	c := &cobra.Command{
		Use:   "run FAMILY[:REV] | --file TASKDEF.json | --image IMAGE [-- CMD ARGS...]",
		Short: "Run a task and stream its logs, or print its run id with -d",
		Long: `run submits a run and, unless -d is given, streams its output (stdout to
stdout, stderr to stderr) until it ends, then exits with the task's exit code:
that of its first essential container to fail (leaving out those gantry
stopped because another one ended), 0 on success, 124 when it timed out, 125
when gantry itself failed (the image was missing, say) or the run did not
succeed with no code or 0 to give (stopped, its task trapped SIGTERM and
exited 0). When the task's code does not tell why it ended, a line on stderr
does: a container killed for using more than its memory (137), the run
stopped by gantry stop or Ctrl-C (143 after SIGTERM, 137 after SIGKILL), its
worker lost.

--depends-on RUN[:CONDITION] (repeatable, at most 20) makes the run wait,
QUEUED, until each run named ended as its condition asks: success (the
default), failure, or complete (however it ended). A run it depends on
that ended otherwise fails this one without running it, FAILED with a
stopped reason naming that run (exit 125 when attached). Attached, gantry
run says what the run waits for on stderr, then streams it as usual.

--array-size N (2 to 10000) makes an array run, as AWS Batch's submit-job
--array-properties size=N: one parent run, which runs no container, and N
child runs PARENT-0 to PARENT-(N-1), each an ordinary run of the task with
the same flags (overrides, timeout, attempts, tags, cluster, priority,
dependencies, pool) that sees its index as GANTRY_ARRAY_INDEX and
AWS_BATCH_JOB_ARRAY_INDEX, and the size as GANTRY_ARRAY_SIZE. The parent's
status is its children's: QUEUED until one starts, RUNNING while any runs,
SUCCEEDED when all succeeded, FAILED when all ended and any did not (its
exit code the first failed child's), CANCELED when stopped. -d prints the
parent's id; attached, gantry run waits for the parent to end and exits as
gantry wait of it would (Ctrl-C stops every child). gantry ps --array
PARENT lists the children, gantry logs PARENT-I shows one child's output.
--array-order sequential runs the children one after another, as AWS
Batch's dependsOn type SEQUENTIAL: child I+1 waits, QUEUED, for child I to
succeed; one that fails fails those after it without running them.

--pool NAME makes the run take a slot of the pool NAME (gantry pool): while
all its slots are held the run waits, QUEUED, saying so ("waiting for a
slot in pool warehouse (2 of 2 in use)"); it holds its slot until it ends,
over its retries. A pool that does not exist is refused. --pool '' (as
--pool "$POOL" with POOL unset) is no pool, as leaving --pool out and as
"pool": "" in the submit JSON.

--constraint K=V (repeatable, at most 16) runs the task only on a worker
started with --label K=V; --constraint K!=V on one whose label K is not V
(or that has no label K); --constraint K on one with label K of any value
(Kubernetes' Exists, Nomad's is_set); --constraint '!K' on one without
label K (quote it from the shell). A task definition's ECS placementConstraints of
type memberOf, "attribute:K == V" or "attribute:K != V", count as
constraints too, --constraint replacing them key by key. A worker whose
labels do not satisfy them hands the job back for another; while no live
worker has the labels, the run waits QUEUED, and gantry describe says
which ones are missing ("no worker in cluster default has labels
disk=ssd"). A run pinned with --worker to a live worker whose labels do
not meet them is refused, naming its labels.

The server's warnings about the submission, if any (a field it does not
read, as a newer gantry's sent to an older server), are printed on
stderr, each as "gantry: note: ...".

Ctrl-C while attached stops the run (as docker run does); a second Ctrl-C
detaches and leaves it to finish stopping.`,
		Example: `  gantry run --image gantry/samples:latest -- sh -c 'echo hello; echo oops >&2; exit 3'
  gantry run -d --image gantry/samples:latest -- sleep 5
  gantry run --file samples/taskdefs/hello.json --env NAME=world
  gantry run --image gantry/samples:latest --timeout 10s --attempts 3 -- sh -c 'exit 1'
  gantry run -d --tag team=data --tag cost-centre=cc-42 etl-sales   # then: gantry ps --all --tag team=data
  a=$(gantry run -d extract)
  b=$(gantry run -d --depends-on "$a" transform)
  gantry run --depends-on "$b" load
  gantry run -d --depends-on "$b:failure" notify
  gantry run -d --array-size 100 etl-shard    # 100 child runs, each with its AWS_BATCH_JOB_ARRAY_INDEX
  gantry run --array-size 5 --array-order sequential migrate   # child 1 after child 0 succeeded, ...
  gantry run -d --pool warehouse load-sales   # at most as many at once as the pool has slots
  gantry run -d --constraint disk=ssd --constraint zone!=eu-1 etl-sales   # on a worker started with --label disk=ssd
  gantry run -d --constraint gpu --constraint '!spot' train   # on a worker with some label gpu and no label spot`,
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := f.request(cmd, args)
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
			if err := overrideContainer(cmd.Context(), c, req); err != nil {
				return imageHint(err, f, args)
			}
			r, warnings, err := c.SubmitWithWarnings(cmd.Context(), req)
			if err != nil {
				return imageHint(dependsOnFlagErrors(err, f.dependsOn), f, args)
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "gantry: note:", w)
			}
			if f.detach {
				return out.writeID(cmd.OutOrStdout(), r.RunID, r)
			}
			if r.ArrayParent() {
				return attachArray(cmd.Context(), c, r, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return attach(cmd.Context(), c, r.RunID, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.image, "image", "", "run this image as a one-container task")
	fl.StringVar(&f.file, "file", "", "run the ECS task definition in this JSON file (- for stdin)")
	fl.StringVar(&f.name, "name", "", "container name with --image (default main); with FAMILY[:REV] or --file, the container that --env, --cpu, --memory and a command override (default: the first essential one)")
	fl.StringVar(&f.cluster, "cluster", "", "cluster to run in (default \"default\")")
	fl.StringVar(&f.worker, "worker", "", "run on this worker only (refused if it is live in another cluster, or with labels the constraints rule out)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable K=V in the task's first essential container, or the one --name names (repeatable)")
	durationVar(fl, &f.timeout, "timeout", 0, "stop an attempt that runs longer than this (e.g. 90s, 10m), counted from when its container starts: pulling the image does not count")
	durationVar(fl, &f.deadline, "deadline", 0, "fail the run if it has not ended this long after submission, over all attempts, waits and image pulls included (activeDeadlineSeconds)")
	fl.IntVar(&f.attempts, "attempts", 0, "total tries, 1 to 10 (retries on failure)")
	fl.IntVar(&f.memory, "memory", 0, "memory limit in MiB (an override with FAMILY or --file)")
	fl.IntVar(&f.cpu, "cpu", 0, "CPU units, 1024 = one CPU (an override with FAMILY or --file)")
	fl.StringVar(&f.idempotencyKey, "idempotency-key", "", "submitting twice with the same key creates one run")
	fl.StringVar(&f.priority, "priority", "", "high, normal (default) or low: a worker with room takes high runs first, low ones last")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag the run K=V (K= for an empty value), to find it with gantry ps --tag (repeatable, up to 50)")
	fl.BoolVar(&f.propagateTags, "propagate-tags", false, "give the run its task definition's tags too, --tag winning (ECS RunTask's propagateTags TASK_DEFINITION)")
	fl.StringArrayVar(&f.dependsOn, "depends-on", nil, "wait for this run to end first: RUN[:success|failure|complete], success by default (repeatable)")
	fl.StringVar(&f.pool, "pool", "", "take a slot of this pool (gantry pool ls): while it is full the run waits, QUEUED; empty is no pool")
	fl.StringArrayVar(&f.constraints, "constraint", nil, "run only on a worker with label K=V (gantry worker --label), K!=V on one without it, K on one with label K of any value, !K on one without label K (repeatable, up to 16)")
	fl.StringVar(&f.arraySize, "array-size", "", "make an array run of N child runs, 2 to 10000, each seeing its index as AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch's --array-properties size=N)")
	fl.StringVar(&f.arrayOrder, "array-order", "parallel", "with --array-size: parallel (all at once, as workers have room) or sequential (child I+1 after child I succeeded)")
	fl.BoolVarP(&f.detach, "detach", "d", false, "print the run id and return at once")
	addDetachOutputFlag(c, &out)
	return c
}

// request builds the submission from flags and arguments.
func (f *runFlags) request(cmd *cobra.Command, args []string) (*jobs.SubmitRequest, error) {
	dash := cmd.ArgsLenAtDash()
	req := &jobs.SubmitRequest{Cluster: f.cluster, Worker: f.worker, IdempotencyKey: f.idempotencyKey}
	if err := checkCountFlags(cmd, f.attempts, f.cpu, f.memory); err != nil {
		return nil, err
	}
	var container string
	var command []string
	switch {
	case f.image != "" && f.file != "":
		return nil, errors.New("give --image or --file, not both")
	case f.image != "":
		if dash > 0 {
			return nil, fmt.Errorf("unexpected argument %q before --: with --image the command follows --", args[0])
		}
		if dash < 0 && len(args) > 0 {
			return nil, fmt.Errorf("unexpected argument %q: with --image the command follows --, as in gantry run --image IMG -- CMD", args[0])
		}
		command = args
		name := f.name
		if name == "" {
			name = "main"
		}
		td := jobs.TaskDefinition{Family: "adhoc", ContainerDefinitions: []jobs.ContainerDefinition{{
			Name: name, Image: f.image, Command: command, Memory: f.memory, CPU: f.cpu}}}
		if err := td.Validate(); err != nil {
			return nil, err
		}
		container = name
		command = nil
		req.TaskDefinition, _ = json.Marshal(td)
	case f.file != "":
		data, err := readFile(cmd, f.file)
		if err != nil {
			return nil, fileFlagError(f.file, err)
		}
		td, warnings, err := jobs.DecodeTaskDefinition(data)
		if err != nil {
			return nil, fileRefused(cmd, f.file, err, "not run")
		}
		for _, w := range warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), "gantry: warning:", w)
		}
		req.TaskDefinition, _ = json.Marshal(td)
		container = firstEssential(td)
		if f.name != "" {
			var names []string
			for _, cd := range td.ContainerDefinitions {
				names = append(names, cd.Name)
			}
			if !slices.Contains(names, f.name) {
				return nil, fmt.Errorf("--name %q: %s has no such container; its containers: %s", f.name, f.file, strings.Join(names, ", "))
			}
			container = f.name
		}
		if extra := args[:argsBefore(dash, len(args))]; len(extra) > 0 {
			return nil, fmt.Errorf("unexpected argument %q: with --file the command follows --, as in gantry run --file %s -- CMD", extra[0], f.file)
		}
		if dash >= 0 {
			command = args[dash:]
		}
	default:
		if len(args) == 0 {
			return nil, errors.New("what to run? give FAMILY[:REV], --file TASKDEF.json or --image IMAGE (see 'gantry run --help')")
		}
		if dash == 0 {
			return nil, errors.New("what to run? give FAMILY[:REV] before --, as in gantry run FAMILY -- CMD")
		}
		if _, _, err := jobs.ParseRef(args[0]); err != nil {
			if looksLikeImage(args[0]) {
				// docker run's habit: gantry run IMAGE CMD.
				return nil, fmt.Errorf("%q is not a task definition (FAMILY[:REV], as gantry taskdef register names it); to run an image: gantry run --image %s -- CMD", args[0], args[0])
			}
			return nil, err
		}
		if extra := args[1:argsBefore(dash, len(args))]; len(extra) > 0 {
			return nil, fmt.Errorf("unexpected argument %q: the command follows --, as in gantry run %s -- CMD (or, to run the image %s, gantry run --image %s -- CMD)", extra[0], args[0], args[0], args[0])
		}
		req.TaskDefinition, _ = json.Marshal(args[0])
		if dash >= 0 {
			command = args[dash:]
		}
		container = f.name // empty: the first essential one
	}
	var env []jobs.KeyValue
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want K=V", kv)
		}
		env = append(env, jobs.KeyValue{Name: k, Value: v})
	}
	var cpu, memory *int
	if f.image == "" && cmd.Flags().Changed("cpu") {
		cpu = &f.cpu
	}
	if f.image == "" && cmd.Flags().Changed("memory") {
		memory = &f.memory
	}
	if len(env) > 0 || len(command) > 0 || cpu != nil || memory != nil {
		// For FAMILY[:REV] without --name, container is empty until
		// overrideContainer has looked the task definition up.
		req.Overrides = &jobs.Overrides{ContainerOverrides: []jobs.ContainerOverride{{Name: container, Command: command,
			Environment: env, CPU: cpu, Memory: memory}}}
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
		req.RetryStrategy = &jobs.RetryStrategy{Attempts: f.attempts}
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
	if req.Constraints, err = constraintFlags(f.constraints); err != nil {
		return nil, err
	}
	if f.pool != "" {
		if err := jobs.CheckPoolName("--pool", f.pool); err != nil {
			return nil, err
		}
		req.Pool = f.pool
	}
	if cmd.Flags().Changed("array-size") {
		n, err := jobs.ParseArraySize(f.arraySize)
		if err != nil {
			return nil, fmt.Errorf("--array-size %w", err)
		}
		req.ArrayProperties = &jobs.SubmitArrayProperties{Size: json.RawMessage(strconv.Itoa(n))}
	}
	switch f.arrayOrder {
	case "", "parallel": // "" as --pool "": a variable left unset
	case jobs.ArrayOrderSequential:
		if req.ArrayProperties == nil {
			return nil, errors.New("--array-order sequential: orders the children of an array run: give --array-size N too")
		}
		req.DependsOn = append(req.DependsOn, jobs.RunDependency{Type: jobs.DependencySequential})
	default:
		return nil, fmt.Errorf("--array-order %q: want parallel or sequential", f.arrayOrder)
	}
	return req, dependsOnFlagErrors(req.Validate(), f.dependsOn)
}

// checkCountFlags checks --attempts, --cpu and --memory as given, naming
// the flag: the submission's own checks name the fields they fill
// (retryStrategy.attempts, containerDefinitions[0].memory: "2 MiB is below
// Docker's minimum"), which the user did not write, and took --attempts 0
// for no retry strategy at all.
func checkCountFlags(cmd *cobra.Command, attempts, cpu, memory int) error {
	fl := cmd.Flags()
	if fl.Changed("attempts") && (attempts < 1 || attempts > 10) {
		return fmt.Errorf("--attempts %d: must be between 1 and 10", attempts)
	}
	if fl.Changed("cpu") && cpu < 0 {
		return fmt.Errorf("--cpu %d: must not be negative (CPU units, 1024 = one CPU)", cpu)
	}
	if fl.Changed("memory") && memory < 0 {
		return fmt.Errorf("--memory %d: must not be negative (MiB)", memory)
	}
	if fl.Changed("memory") && memory > 0 && memory < jobs.MinMemoryMiB {
		return fmt.Errorf("--memory %d: below Docker's minimum of %d MiB", memory, jobs.MinMemoryMiB)
	}
	return nil
}

// dependsOnFlags reads --depends-on RUN[:CONDITION] flags.
func dependsOnFlags(flags []string) ([]jobs.RunDependency, error) {
	var deps []jobs.RunDependency
	for _, s := range flags {
		d, err := jobs.ParseRunDependency(s)
		if err != nil {
			return nil, fmt.Errorf("--depends-on %w", err)
		}
		if j := slices.IndexFunc(deps, func(e jobs.RunDependency) bool { return e.RunID == d.RunID }); j >= 0 {
			return nil, fmt.Errorf("--depends-on %q: run %s given twice (also --depends-on %q)", s, d.RunID, flags[j])
		}
		deps = append(deps, d)
	}
	return deps, nil
}

// dependsOnFlagErrors names the --depends-on flags in err's lines that
// name the request's dependsOn fields, which the user did not write:
// "dependsOn[0].runId: run nosuch: not found" becomes
// "--depends-on "nosuch": no such run (gantry ps --all lists runs)".
// flags are the --depends-on flags in the order they filled dependsOn.
// An API error keeps its code; err is returned as it is if no line
// changed.
func dependsOnFlagErrors(err error, flags []string) error {
	if err == nil {
		return nil
	}
	msg := strings.Join(mapErrorLines(err, func(l string) string { return dependsOnFlagLine(l, flags) }), "\n")
	if msg == err.Error() {
		return err
	}
	if ae, ok := errors.AsType[*jobs.Error](err); ok {
		return &jobs.Error{Code: ae.Code, Message: msg}
	}
	return errors.New(msg)
}

// dependsOnFlagLine is one line of dependsOnFlagErrors.
func dependsOnFlagLine(l string, flags []string) string {
	if rest, ok := strings.CutPrefix(l, "dependsOn: "); ok {
		return "--depends-on: " + rest
	}
	rest, ok := strings.CutPrefix(l, "dependsOn[")
	if !ok {
		return l
	}
	idx, rest, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(idx)
	if !ok || err != nil || i < 0 || i >= len(flags) {
		return l
	}
	_, msg, ok := strings.Cut(rest, ": ") // after .runId or .condition
	if !ok {
		return l
	}
	d, _ := jobs.ParseRunDependency(flags[i])
	if after, ok := strings.CutPrefix(msg, "run "+d.RunID+": not found"); ok {
		msg = "no such run (gantry ps --all lists runs)" + after
	}
	return fmt.Sprintf("--depends-on %q: %s", flags[i], msg)
}

// tagFlags reads gantry run's --tag K=V flags, each problem naming the
// flag.
func tagFlags(flags []string) (jobs.TagList, error) {
	if len(flags) > jobs.MaxTags {
		return nil, fmt.Errorf("--tag: %d tags: at most %d", len(flags), jobs.MaxTags)
	}
	var tags jobs.TagList
	for _, s := range flags {
		k, v, _, err := jobs.ParseTag(s, false)
		if err != nil {
			return nil, fmt.Errorf("--tag %w", err)
		}
		if j := slices.IndexFunc(tags, func(t jobs.Tag) bool { return t.Key == k }); j >= 0 {
			return nil, fmt.Errorf("--tag %q: key %q given twice (also --tag %q)", s, k, flags[j])
		}
		tags = append(tags, jobs.Tag{Key: k, Value: v})
	}
	return tags, nil
}

// constraintFlags reads --constraint K=V, K!=V, K and !K flags, each problem
// naming the flag and its value; all of them, as validation does.
func constraintFlags(flags []string) (jobs.Constraints, error) {
	if len(flags) > jobs.MaxConstraints {
		return nil, fmt.Errorf("--constraint: %d constraints: at most %d", len(flags), jobs.MaxConstraints)
	}
	var (
		cs   jobs.Constraints
		from []string // the flag of each of cs
		errs []error
	)
	for _, s := range flags {
		c, err := jobs.ParseConstraint(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--constraint %w%s", err, oneFlagEach("--constraint", s, func(p string) bool {
				_, err := jobs.ParseConstraint(p)
				return err == nil
			})))
			continue
		}
		for j, o := range cs {
			name := fmt.Sprintf("--constraint %q", from[j])
			if msg := c.Conflict(o, name); msg != "" {
				// The flag shows the constraint already: not
				// `--constraint "gpu" (gpu)`.
				msg = strings.Replace(msg, fmt.Sprintf("%s (%s)", name, o), name, 1)
				errs = append(errs, fmt.Errorf("--constraint %q: %s", s, msg))
				break
			}
		}
		cs, from = append(cs, c), append(from, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cs, nil
}

// oneFlagEach is a hint for a value that reads as several joined by
// commas ("disk=ssd,zone=eu-1"), each of which ok accepts: the flag takes
// one, and is repeated for more.
func oneFlagEach(flag, s string, ok func(string) bool) string {
	parts := strings.Split(s, ",")
	if len(parts) < 2 {
		return ""
	}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !ok(p) {
			return ""
		}
		if strings.HasPrefix(p, "!") {
			p = "'" + p + "'" // for the shell
		}
		parts[i] = flag + " " + p
	}
	return fmt.Sprintf(" (one per flag: %s)", strings.Join(parts, " "))
}

// seconds is a duration flag in whole seconds, 0 when not given: at least
// 1s, and at most jobs.MaxDurationSeconds, which the server holds to.
func seconds(flag string, d time.Duration) (int, error) {
	if d < 0 || (d > 0 && d < time.Second) {
		return 0, fmt.Errorf("%s %s: must be at least 1s", flag, d)
	}
	s := int(d.Round(time.Second) / time.Second)
	if s > jobs.MaxDurationSeconds {
		return 0, fmt.Errorf("%s %s: must be at most %s (50 years); leave it out for no limit", flag, d,
			time.Duration(jobs.MaxDurationSeconds)*time.Second)
	}
	return s, nil
}

// argsBefore is how many arguments come before -- (all of them without).
func argsBefore(dash, n int) int {
	if dash < 0 {
		return n
	}
	return dash
}

func firstEssential(td *jobs.TaskDefinition) string {
	for _, c := range td.ContainerDefinitions {
		if c.IsEssential() {
			return c.Name
		}
	}
	return ""
}

func readFile(cmd *cobra.Command, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(cmd.InOrStdin())
	}
	return os.ReadFile(name)
}

// fileFlagError names the --file flag in the error of reading its file,
// which said only "open nosuch.json: no such file or directory".
func fileFlagError(name string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		err = pe.Err
	}
	return fmt.Errorf("--file %s: %w", name, err)
}

// stopSendWait bounds how long a second Ctrl-C waits for the first one's
// stop request to be answered before it detaches.
const stopSendWait = 5 * time.Second

// attach streams a run's logs until it ends and turns its outcome into the
// process's exit code. The first Ctrl-C stops the run, the second detaches.
func attach(ctx context.Context, c *client.Client, runID string, stdout, stderr io.Writer) error {
	ctx, done := attachSignals(ctx, c, runID, stderr)
	defer done()
	stopPulls := watchPulls(ctx, c, runID, stderr) // pullprogress.go
	pr := newLinePrinter(stdout, stderr, false)
	err := c.Logs(ctx, runID, client.LogOptions{Follow: true}, newDropWatch(ctx, c, pr, stderr).batch) // logs.go
	stopPulls()
	if ctx.Err() != nil {
		return &exitError{code: exitGantryError}
	}
	if err != nil {
		return err
	}
	r, err := c.Get(ctx, runID)
	if err != nil {
		return err
	}
	return runExit(r)
}

// attachArray waits for an array run to end, as gantry wait does, and
// exits as gantry wait of it would. Its children's output is theirs to
// read (gantry logs PARENT-I): interleaved, N logs would read as none. The
// first Ctrl-C stops the array, the second detaches.
func attachArray(ctx context.Context, c *client.Client, r *jobs.Run, stdout, stderr io.Writer) error {
	ctx, done := attachSignals(ctx, c, r.RunID, stderr)
	defer done()
	n := r.ArrayProperties.Size
	fmt.Fprintf(stderr, "gantry: array run %s: %d child runs, %s to %s (gantry ps --array %s lists them, gantry logs %s shows one)\n",
		r.RunID, n, jobs.ArrayChildID(r.RunID, 0), jobs.ArrayChildID(r.RunID, n-1), r.RunID, jobs.ArrayChildID(r.RunID, 0))
	err := waitEnds(ctx, c, []string{r.RunID}, 0, func(e *endedRun) error { // wait.go
		_, err := fmt.Fprintf(stdout, "%s\t%s\t%s\n", e.id, e.status(), e.run.ArrayProperties.ArraySummaryText())
		return err
	})
	if ctx.Err() != nil {
		return &exitError{code: exitGantryError}
	}
	return err
}

// attachSignals gives an attached run's context: the first Ctrl-C (or
// SIGTERM) stops the run, the second cancels the context (detaches). done
// stops listening.
func attachSignals(ctx context.Context, c *client.Client, runID string, stderr io.Writer) (context.Context, func()) {
	ctx = context.WithoutCancel(ctx) // signals are handled here
	ctx, detach := context.WithCancel(ctx)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go handleSignals(sigs, stderr, runID, func() error {
		_, err := c.Stop(context.WithoutCancel(ctx), runID, "Stopped by user (Ctrl-C)")
		return err
	}, detach, stopSendWait)
	return ctx, func() { signal.Stop(sigs); detach() }
}

// handleSignals stops the run at the first signal and detaches at the
// second. Detaching ends the process, so it waits for the first signal's
// stop request to be answered: a quick second Ctrl-C (or timeout(1), which
// signals the process and then its group) would otherwise end the process
// before the request left it, and the run would go on. A server that does
// not answer holds the detach back no longer than wait.
func handleSignals(sigs <-chan os.Signal, stderr io.Writer, runID string, stop func() error, detach func(), wait time.Duration) {
	var stopped chan error // the stop request's answer
	for range sigs {
		if stopped == nil {
			stopped = make(chan error, 1)
			fmt.Fprintf(stderr, "gantry: stopping run %s (Ctrl-C again to detach)\n", runID)
			go func() { stopped <- stop() }()
			continue
		}
		select {
		case err := <-stopped:
			if err != nil {
				fmt.Fprintf(stderr, "gantry: detached; the run was not stopped: %v\n", err)
			} else {
				fmt.Fprintf(stderr, "gantry: detached; the run goes on stopping: gantry describe %s\n", runID)
			}
		case <-time.After(wait):
			fmt.Fprintf(stderr, "gantry: detached; the stop request was not answered within %s: gantry stop %s\n", wait, runID)
		}
		detach()
		return
	}
}

// runExit maps a finished run to the exit code of `gantry run`.
func runExit(r *jobs.Run) error {
	switch {
	case r.Status == jobs.StatusSucceeded:
		return nil
	case r.StopCode == jobs.StopTimeout:
		return &exitError{code: exitTimeout, err: fmt.Errorf("run %s: %s", r.RunID, r.StoppedReason)}
	case r.ExitCode != nil && *r.ExitCode != 0:
		return &exitError{code: *r.ExitCode, err: stopCause(r)}
	case r.ExitCode != nil:
		// A run that did not succeed never exits 0, so that "gantry wait
		// && next" does not go on after a gantry stop that the task
		// answered by exiting cleanly (trapping SIGTERM).
		return &exitError{code: exitGantryError, err: fmt.Errorf("run %s %s (%s): %s; its task exited 0, but a run that did not succeed exits 125",
			r.RunID, r.Status, orDash(r.StopCode), orDash(r.StoppedReason))}
	}
	return &exitError{code: exitGantryError, err: fmt.Errorf("run %s %s: %s", r.RunID, r.Status, orDash(r.StoppedReason))}
}

// stopCause says why a run that exited non-zero ended when its exit code
// alone does not: a container killed for its memory (137, with nothing on
// its stderr), or an end gantry brought about (a gantry stop from
// elsewhere, a lost or shut-down worker: 143 or 137 from the task). It is
// nil when the task's essential container exited by itself: the task's
// own output tells that.
func stopCause(r *jobs.Run) error {
	for _, c := range r.Containers {
		if !c.OOMKilled {
			continue
		}
		limit := "its memory limit"
		if td, err := r.Spec.Task.WithOverrides(r.Spec.Overrides); err == nil {
			for _, d := range td.ContainerDefinitions {
				if d.Name == c.Name && d.Memory > 0 {
					limit = fmt.Sprintf("its %d MiB", d.Memory)
				}
			}
		}
		return fmt.Errorf("run %s: container %s was killed for using more than %s (%s; exit %s)",
			r.RunID, c.Name, limit, orDash(c.Reason), exitText(c.ExitCode))
	}
	if r.StopCode == "" || r.StopCode == jobs.StopEssentialExited {
		return nil
	}
	return fmt.Errorf("run %s %s (%s): %s", r.RunID, r.Status, r.StopCode, orDash(r.StoppedReason))
}

// priorityFlag reads a --priority flag; empty is left to the server's
// default (or, for a pipeline, the file's).
func priorityFlag(s string) (jobs.Priority, error) {
	p, err := jobs.ParsePriority(s)
	if err != nil {
		return "", fmt.Errorf("--priority %w", err)
	}
	return p, nil
}

// looksLikeImage reports whether ref, which is no task definition
// reference, reads as an image's: a registry or repository path, a tag
// that is not a revision, a digest.
func looksLikeImage(ref string) bool {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return false
	}
	_, tag, ok := strings.Cut(ref, ":")
	if _, err := strconv.Atoi(tag); ok && err != nil {
		return true
	}
	return strings.ContainsAny(ref, "/.@")
}

// imageHint adds to the not-found error of gantry run FAMILY, a family
// without a revision that is not registered, how to run an image of that
// name: a docker run user's gantry run ubuntu -- CMD.
func imageHint(err error, f runFlags, args []string) error {
	if f.image != "" || f.file != "" || len(args) == 0 || strings.Contains(args[0], ":") || !errors.Is(err, client.ErrNotFound) ||
		!strings.HasPrefix(err.Error(), "task definition family "+args[0]+" ") {
		return err // not about the family (a --depends-on run, a --pool)
	}
	return fmt.Errorf("%w; to run the image %s instead: gantry run --image %s -- CMD", err, args[0], args[0])
}
