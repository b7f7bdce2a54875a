package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestExitCodeOfAnInterrupt: a command that ends because a signal canceled
// its context (Ctrl-C on gantry logs -f or gantry wait) exits 130, as a
// shell reports a program Ctrl-C ended, not 125 with "context canceled";
// the same error without a signal is gantry failing, and an exit code a
// command chose stands.
func TestExitCodeOfAnInterrupt(t *testing.T) {
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := fmt.Errorf("follow logs of 01jf3: %w", context.Canceled)
	signal := errors.New("interrupt signal received") // what signal.NotifyContext gives as its cause
	signaled, cancelSignaled := context.WithCancelCause(context.Background())
	cancelSignaled(signal)
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"no error", interrupted, nil, 0},
		{"interrupted", interrupted, canceled, exitInterrupted},
		{"canceled without a signal", context.Background(), canceled, exitGantryError},
		{"another error after a signal", interrupted, errors.New("nats: no servers available"), exitGantryError},
		{"interrupted, the signal as the cause", signaled, &stoppedWaiting{cause: signal}, exitInterrupted},
		{"a command's own code", interrupted, &exitError{code: 3, err: canceled}, 3},
	} {
		if got := exitCode(c.ctx, c.err, io.Discard); got != c.want {
			t.Errorf("%s: exit %d, want %d", c.name, got, c.want)
		}
	}
}

// TestStoppedWaitingReadsForEverySignal: gantry wait ended by a signal
// says which in a sentence that reads for each ("terminated signal
// received: stopped waiting" did not), and exits 130.
func TestStoppedWaitingReadsForEverySignal(t *testing.T) {
	for cause, want := range map[string]string{ // signal.NotifyContext's causes
		"interrupt signal received":  "gantry: stopped waiting (interrupt); the runs go on\n",
		"terminated signal received": "gantry: stopped waiting (terminated); the runs go on\n",
	} {
		ctx, stop := context.WithCancelCause(context.Background())
		stop(errors.New(cause))
		var errb bytes.Buffer
		if code := exitCode(ctx, &stoppedWaiting{cause: context.Cause(ctx)}, &errb); code != exitInterrupted || errb.String() != want {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", cause, code, errb.String(), exitInterrupted, want)
		}
	}
}

// TestRunExitSaysWhatTheTaskCannot: an attached run (or gantry wait) that
// ended non-zero for a reason its own output does not show, a container
// killed for its memory or an end gantry brought about, says so on stderr
// beside the task's exit code; a task that exited by itself says nothing
// more, its output told it.
func TestRunExitSaysWhatTheTaskCannot(t *testing.T) {
	code := func(n int) *int { return &n }
	mem := func(n int) *int { return &n }
	spec := jobs.RunSpec{
		Task: jobs.TaskDefinition{Family: "hog", ContainerDefinitions: []jobs.ContainerDefinition{
			{Name: "main", Image: "gantry/samples:latest"},
		}},
		Overrides: &jobs.Overrides{ContainerOverrides: []jobs.ContainerOverride{{Name: "main", Memory: mem(8)}}},
	}
	for _, c := range []struct {
		name     string
		run      jobs.Run
		wantCode int
		wantErr  string
	}{
		{"killed for memory, the limit known", jobs.Run{RunID: "r1", Status: jobs.StatusFailed, ExitCode: code(137),
			StopCode: jobs.StopEssentialExited, Spec: spec,
			Containers: []jobs.ContainerResult{{Name: "main", ExitCode: code(137), OOMKilled: true, Reason: "OutOfMemoryError: container killed due to memory usage"}}},
			137, "gantry: run r1: container main was killed for using more than its 8 MiB (OutOfMemoryError: container killed due to memory usage; exit 137)\n"},
		{"killed for memory, no spec", jobs.Run{RunID: "r2", Status: jobs.StatusFailed, ExitCode: code(137),
			StopCode:   jobs.StopEssentialExited,
			Containers: []jobs.ContainerResult{{Name: "main", ExitCode: code(137), OOMKilled: true}}},
			137, "gantry: run r2: container main was killed for using more than its memory limit (-; exit 137)\n"},
		{"stopped by gantry stop elsewhere", jobs.Run{RunID: "r3", Status: jobs.StatusCanceled, ExitCode: code(143),
			StopCode: jobs.StopUserInitiated, StoppedReason: "Stopped by user"},
			143, "gantry: run r3 CANCELED (UserInitiated): Stopped by user\n"},
		{"its worker lost", jobs.Run{RunID: "r4", Status: jobs.StatusFailed, ExitCode: code(137),
			StopCode: jobs.StopWorkerLost, StoppedReason: "worker w1 was lost with this run; giving up after 3 lost workers"},
			137, "gantry: run r4 FAILED (WorkerLost): worker w1 was lost with this run; giving up after 3 lost workers\n"},
		{"timed out", jobs.Run{RunID: "r5", Status: jobs.StatusFailed, ExitCode: code(143),
			StopCode: jobs.StopTimeout, StoppedReason: "Task timed out: 1s"},
			exitTimeout, "gantry: run r5: Task timed out: 1s\n"},
		{"the task exited by itself", jobs.Run{RunID: "r6", Status: jobs.StatusFailed, ExitCode: code(3),
			StopCode: jobs.StopEssentialExited, StoppedReason: "Essential container in task exited",
			Containers: []jobs.ContainerResult{{Name: "main", ExitCode: code(3)}}},
			3, ""},
		{"succeeded", jobs.Run{RunID: "r7", Status: jobs.StatusSucceeded, ExitCode: code(0)}, 0, ""},
		// A task that traps SIGTERM and exits 0 when stopped: the run did
		// not succeed, and a script must not go on as if it had.
		{"stopped, the task exiting 0", jobs.Run{RunID: "r8", Status: jobs.StatusCanceled, ExitCode: code(0),
			StopCode: jobs.StopUserInitiated, StoppedReason: "Stopped by user"},
			exitGantryError, "gantry: run r8 CANCELED (UserInitiated): Stopped by user; its task exited 0, but a run that did not succeed exits 125\n"},
		{"stopped while queued", jobs.Run{RunID: "r9", Status: jobs.StatusCanceled,
			StopCode: jobs.StopUserInitiated, StoppedReason: "enough"},
			exitGantryError, "gantry: run r9 CANCELED: enough\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var errb bytes.Buffer
			if got := exitCode(context.Background(), runExit(&c.run), &errb); got != c.wantCode || errb.String() != c.wantErr {
				t.Errorf("exit %d, stderr %q; want %d, %q", got, errb.String(), c.wantCode, c.wantErr)
			}
		})
	}
}
