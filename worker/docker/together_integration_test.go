package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

// holdWait bounds how long holdingClient holds a call: long enough for a
// loaded daemon to create or start the other container, short enough that
// a runtime that never does fails the test quickly.
const holdWait = 30 * time.Second

// holdingClient holds the create or the start of one container of a task
// (held) until the daemon has created, or is running, another (other),
// asking the daemon itself. A runtime that creates or starts containers
// one at a time, and held first, never sends the other's call while the
// held one is in flight: the hold ends after holdWait with an error, and
// the task fails. One that sends both calls at once passes.
type holdingClient struct {
	Client
	step         string // "create" or "start"
	held, other  string // container names in the task definition
	prefix       string // gantry-<run>-<attempt>-
	holdsEntered chan struct{}
}

func (h *holdingClient) ContainerCreate(ctx context.Context, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig, p *ocispec.Platform, name string) (container.CreateResponse, error) {
	if h.step == "create" && name == h.prefix+h.held {
		close(h.holdsEntered)
		if err := h.await(ctx, func(info container.InspectResponse) bool { return true }); err != nil {
			return container.CreateResponse{}, err
		}
	}
	return h.Client.ContainerCreate(ctx, cfg, hc, nc, p, name)
}

func (h *holdingClient) ContainerStart(ctx context.Context, id string, opts container.StartOptions) error {
	if h.step == "start" {
		info, err := h.Client.ContainerInspect(ctx, id)
		if err != nil {
			return err
		}
		if info.Config.Labels[LabelContainer] == h.held {
			close(h.holdsEntered)
			err := h.await(ctx, func(info container.InspectResponse) bool { return info.State != nil && info.State.Running })
			if err != nil {
				return err
			}
		}
	}
	return h.Client.ContainerStart(ctx, id, opts)
}

// await polls the daemon until the other container is there and ok says
// it has gone far enough.
func (h *holdingClient) await(ctx context.Context, ok func(container.InspectResponse) bool) error {
	ctx, cancel := context.WithTimeout(ctx, holdWait)
	defer cancel()
	for {
		info, err := h.Client.ContainerInspect(ctx, h.prefix+h.other)
		if err == nil && ok(info) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("held the %s of %s, and %s was not %sed meanwhile (%w)", h.step, h.held, h.other, strings.TrimSuffix(h.step, "e"), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRunCreatesAndStartsIndependentContainersTogether: two containers
// with no dependency between them are created at once, then started at
// once, as ECS starts them.
//
// Watching the containers alone cannot tell: docker start returns once the
// container's process runs, so a runtime starting a, then b, also has both
// running together, and a handshake between them (each waiting to see the
// other's file on a shared volume) passes either way; the times Docker
// reports only say how long each call took. So the test holds a's call in
// the client the runtime calls (holdingClient) until the daemon has b:
// created, for the create, or running, for the start. Starting a first
// and b only once a's start returned, as gantry did, the hold never ends
// and the run fails, deterministically and without timing anything;
// calling both at once, it passes. a comes first in the definition, so
// that one-at-a-time in definition order is the order that fails. The
// containers then also make the handshake, each wait bounded in time, to
// show they run together: a (not essential) touches its file, waits for
// b's and says so; b touches its own, waits for a's, says so and waits
// for a to have said so before it exits and ends the task.
func TestRunCreatesAndStartsIndependentContainersTogether(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"create", "start"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			mount := []jobs.MountPoint{{SourceVolume: "shared", ContainerPath: "/shared"}}
			// await waits up to 30 s for a file on the shared volume.
			await := func(f string) string {
				return fmt.Sprintf(`n=0; while [ ! -f /shared/%[1]s ]; do
	n=$((n+1)); if [ $n -gt 600 ]; then echo "no /shared/%[1]s after 30s" >&2; exit 1; fi
	sleep 0.05
done`, f)
			}
			task := e.task(t,
				jobs.ContainerDefinition{Name: "a", Essential: no(), MountPoints: mount,
					Command: sh("touch /shared/a; " + await("b") + "; echo saw b; touch /shared/a-said")},
				jobs.ContainerDefinition{Name: "b", MountPoints: mount,
					Command: sh("touch /shared/b; " + await("a") + "; echo saw a; " + await("a-said"))},
			)
			task.Def.Volumes = []jobs.Volume{{Name: "shared"}}
			h := &holdingClient{Client: e.rt.cli, step: step, held: "a", other: "b",
				prefix: fmt.Sprintf("gantry-%s-%d-", task.RunID, task.Attempt), holdsEntered: make(chan struct{})}
			e.rt.cli = h
			sink := &recordSink{}
			res, err := e.rt.Run(testCtx(t, 2*time.Minute), task, sink)
			select {
			case <-h.holdsEntered:
			default:
				t.Fatalf("the %s of a was never held", step)
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			a, b := res.Containers[0], res.Containers[1]
			// a may be stopped as b ends the task, after it said it saw b.
			if a.ExitCode != nil && *a.ExitCode == 1 || exitCode(t, b) != 0 {
				t.Errorf("a: %+v, stderr %q; b: %+v, stderr %q", a, sink.get("a", "stderr"), b, sink.get("b", "stderr"))
			}
			equal(t, "a's output", sink.get("a", "stdout"), []string{"saw b"})
			equal(t, "b's output", sink.get("b", "stdout"), []string{"saw a"})
		})
	}
}

// cancelOnStart cancels the run as the start of one container is sent.
type cancelOnStart struct {
	Client
	name   string
	cancel func()
}

func (c *cancelOnStart) ContainerStart(ctx context.Context, id string, opts container.StartOptions) error {
	info, err := c.Client.ContainerInspect(ctx, id)
	if err == nil && info.Config.Labels[LabelContainer] == c.name {
		c.cancel()
	}
	return c.Client.ContainerStart(ctx, id, opts)
}

// TestRunCancelledWhileAWaveStarts: a run cancelled while the first wave
// (a and b) starts ends as a stopped run: a, whose start was in flight,
// starts and is stopped; b, beside it, was either started and stopped or
// not started, as the goroutines happened to run; c, which waits for a's
// START, never starts; everything is removed (newEnv checks). The run
// does not fail as one that could not start. This guards the cancel path
// of the waves; the old one-at-a-time code passes it too.
func TestRunCancelledWhileAWaveStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t,
		jobs.ContainerDefinition{Name: "a", Command: sh("sleep 300")},
		jobs.ContainerDefinition{Name: "b", Command: sh("sleep 300")},
		jobs.ContainerDefinition{Name: "c", Command: sh("sleep 300"),
			DependsOn: []jobs.ContainerDep{{ContainerName: "a", Condition: jobs.DepStart}}},
	)
	ctx, cancel := context.WithCancelCause(testCtx(t, time.Minute))
	cause := errors.New("stopped by the test")
	e.rt.cli = &cancelOnStart{Client: e.rt.cli, name: "a", cancel: func() { cancel(cause) }}
	res := mustRun(t, ctx, e, task, &recordSink{})
	a, b, c := res.Containers[0], res.Containers[1], res.Containers[2]
	if a.Reason != "Stopped: "+cause.Error()+"; "+killedAsStarted {
		t.Errorf("a: %+v, want stopped by %q, killed as it started", a, cause)
	}
	switch b.Reason {
	case "Stopped: " + cause.Error(), "Stopped: " + cause.Error() + "; " + killedAsStarted, "Stopped before start: " + cause.Error():
	default:
		t.Errorf("b: %+v, want stopped (killed as it started or not), or stopped before start, by %q", b, cause)
	}
	if c.Reason != "Stopped before start: "+cause.Error() || c.ExitCode != nil {
		t.Errorf("c: %+v, want stopped before start by %q", c, cause)
	}
}

// cancelOnAttach cancels the run as the output of a container is attached,
// just before its start would be asked for.
type cancelOnAttach struct {
	Client
	cancel func()
}

func (c *cancelOnAttach) ContainerAttach(ctx context.Context, id string, opts container.AttachOptions) (types.HijackedResponse, error) {
	c.cancel()
	return c.Client.ContainerAttach(ctx, id, opts)
}

// TestRunCancelledAsItStarts: a run stopped while its container starts is
// killed at once, whatever its stop timeout. A SIGTERM sent then reaches a
// process that has not set up its handlers yet and, as PID 1, the kernel
// drops it: the task ran on to its end and, exiting 0 (or trapping
// SIGTERM to exit 0, as here), was recorded CANCELED with exit code 0.
func TestRunCancelledAsItStarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t, jobs.ContainerDefinition{Name: "main", StopTimeout: 60,
		Command: sh("trap 'exit 0' TERM; sleep 2; echo finished")})
	started := false
	task.Started = func([]jobs.ContainerResult) { started = true }
	ctx, cancel := context.WithCancelCause(testCtx(t, time.Minute))
	cause := errors.New("Stopped by user")
	e.rt.cli = &cancelOnStart{Client: e.rt.cli, name: "main", cancel: func() { cancel(cause) }}
	sink := &recordSink{}
	res := mustRun(t, ctx, e, task, sink)
	c := res.Containers[0]
	if want := worker.StoppedPrefix + cause.Error() + "; " + killedAsStarted; c.ExitCode == nil || *c.ExitCode != 137 || c.Reason != want {
		t.Errorf("main: exit %v, reason %q; want 137, %q", ptrString(c.ExitCode), c.Reason, want)
	}
	if !started {
		t.Error("Started not called for a task whose container started")
	}
}

func ptrString(p *int) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// TestRunCancelledBeforeTheStart: a run whose ctx ends (its deadline, say)
// after its container was created but before its start was asked for does
// not start it: a container stopped as it starts may not have set up its
// signal handlers yet (the samples' box, a Go program, then exits 2), and
// that exit code would say nothing true. The runtime tells the worker each
// setup step, and never that the task started.
func TestRunCancelledBeforeTheStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("echo alert; sleep 60")})
	var steps []worker.SetupStep
	task.Setup = func(s worker.SetupStep) { steps = append(steps, s) }
	task.Started = func([]jobs.ContainerResult) { t.Error("Started called for a task none of whose containers started") }
	ctx, cancel := context.WithCancelCause(testCtx(t, time.Minute))
	cause := errors.New("run went past activeDeadlineSeconds=2")
	e.rt.cli = &cancelOnAttach{Client: e.rt.cli, cancel: func() { cancel(cause) }}
	sink := &recordSink{}
	res := mustRun(t, ctx, e, task, sink)
	if c := res.Containers[0]; c.ExitCode != nil || c.Reason != "Stopped before start: "+cause.Error() {
		t.Errorf("main: %+v, want no exit code and stopped before start by %q", c, cause)
	}
	if want := []worker.SetupStep{worker.SetupImages, worker.SetupCreating, worker.SetupStarting}; !slices.Equal(steps, want) {
		t.Errorf("setup steps %v, want %v", steps, want)
	}
}
