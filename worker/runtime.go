package worker

import (
	"context"
	"errors"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
)

// Runtime runs the containers of one attempt of a task. The Docker
// implementation lives in worker/docker; tests use small fakes.
//
// Run is called once per attempt. It pulls or finds the images (as
// Task.PullPolicy says), creates the containers with the labels gantry.run,
// gantry.attempt and gantry.container, starts them, hands every line they
// print to logs, waits until the task ends (every essential container has
// exited) and removes everything it created, with a context of its own so
// that removal happens even when ctx is done.
//
// Cancelling ctx stops the task: each container gets SIGTERM, then SIGKILL
// after its stopTimeout, a container once those that depend on it have
// exited (as ECS reverses dependsOn); Run then returns the result as usual, with
// context.Cause(ctx) as the stopped reason. An error return means the task
// could not run at all (image missing, create refused): the error says why
// in words fit for a user, and nothing is left behind.
//
// Run is safe to call from several goroutines for different attempts.
type Runtime interface {
	Run(ctx context.Context, t *Task, logs LogSink) (*Result, error)
}

// PullPolicy says when the runtime pulls an image.
type PullPolicy string

// Pull policies, as Kubernetes names them.
const (
	PullMissing PullPolicy = "missing"
	PullAlways  PullPolicy = "always"
	PullNever   PullPolicy = "never"
)

// Task is one attempt as the runtime sees it.
type Task struct {
	RunID   string
	Attempt int
	// Def has the run's overrides applied already.
	Def        jobs.TaskDefinition
	PullPolicy PullPolicy
	// Env is added to every container's environment (GANTRY_RUN_ID, ...).
	Env []jobs.KeyValue
	// AckSubject is the ack subject of the job delivery the attempt runs
	// under, "" if unknown. The runtime keeps it with the attempt's
	// containers and gives it back in Leftover.AckSubject, so that the
	// worker restarted after a crash can hand back the job of an attempt
	// its earlier life left running.
	AckSubject string
	// Binds are host directories mounted into every container (a pipeline
	// stage's /gantry/in and /gantry/out); the worker made them, so no
	// allowed-host-path check applies.
	Binds []Bind
	// Started, when set, is called once, when the task's first containers
	// have started, with those containers: their names and where their
	// portMappings were published (NetworkBindings); no exit codes yet.
	// It is called even when ctx ended while they started: they ran. The
	// attempt's timeout counts from this call. Containers that start
	// later (dependsOn) are reported at the end.
	Started func(running []jobs.ContainerResult)
	// Setup, when set, is called from Run's goroutine as the runtime
	// begins each step before the task's containers run, so that a
	// deadline or a stop that comes then can say what it interrupted.
	Setup func(SetupStep)
	// Pulling, when set, is called as an image pull goes on, with the
	// progress so far, and once with Done when the image is in; calls
	// come from Run's goroutine, as often as the daemon reports.
	Pulling func(jobs.PullProgress)
	// Finished, when set, is called once with the result when every
	// container has exited and all their output has gone to the log sink,
	// before the runtime removes them: the worker reports the end without
	// waiting for the removal. It is not called when Run returns an error.
	Finished func(*Result)
}

// SetupStep is a step a Runtime takes before the task's containers run.
type SetupStep int

// The setup steps, in the order a Runtime takes them.
const (
	SetupImages   SetupStep = iota + 1 // finding the images, pulling those missing
	SetupCreating                      // creating the network, volumes and containers
	SetupStarting                      // starting the first containers
)

// String says what the attempt is doing, to end "before its container
// started (...)".
func (s SetupStep) String() string {
	switch s {
	case SetupImages:
		return "getting its image"
	case SetupCreating:
		return "creating it"
	case SetupStarting:
		return "starting it"
	}
	return "preparing it"
}

// Result is how an attempt's containers ended, in the order of the task
// definition. Containers never started have a nil ExitCode and a Reason.
// Containers the runtime stopped because the task was ending (another
// ended, a timeout, a stop) have a Reason starting with StoppedPrefix.
// Containers that started but whose end the runtime could not learn (its
// daemon went away) have a nil ExitCode and a Reason starting with
// LostPrefix.
type Result struct {
	Containers []jobs.ContainerResult
}

// ErrSomeStarted is wrapped by Runtime.Run when a task failed to start
// after some of its containers had started: it did not "not run".
var ErrSomeStarted = errors.New("some of the task's containers had started")

// StoppedPrefix begins the Reason of a container the runtime stopped.
const StoppedPrefix = "Stopped: "

// LostPrefix begins the Reason of a container the runtime lost track of.
const LostPrefix = "Lost track of the container: "

func stoppedByRuntime(c *jobs.ContainerResult) bool {
	return strings.HasPrefix(c.Reason, StoppedPrefix)
}

func lostTrack(c *jobs.ContainerResult) bool {
	return c.ExitCode == nil && strings.HasPrefix(c.Reason, LostPrefix)
}

// Pinger is implemented by a Runtime that can tell whether it answers
// (worker/docker pings the Docker daemon). With it, a worker whose runtime
// stops answering hands back the jobs it could not start, instead of
// failing them, and takes no job until a ping succeeds again.
type Pinger interface {
	// Ping returns nil when the runtime answers, an error saying why not
	// otherwise. It honours ctx and is safe to call at any time.
	Ping(ctx context.Context) error
}

// LogSink receives the output of the task's containers, one whole line at a
// time without its newline. A line too long to hold comes as pieces, then
// the line's end: Piece for each but the last, Line (or End) for that. The
// bytes are only valid during the call. Calls for one container and stream
// come in order; implementations must be safe for concurrent use.
type LogSink interface {
	Line(container, stream string, line []byte)
	// Piece is part of a line whose rest follows, cut between characters.
	Piece(container, stream string, piece []byte)
	// End is a stream's last line, which its container ended without a
	// newline; nothing of that stream follows it.
	End(container, stream string, line []byte)
}

// ErrImageNotFound is wrapped by Runtime.Run when an image is neither
// present nor pullable.
var ErrImageNotFound = errors.New("worker: image not found")
