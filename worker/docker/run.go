package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

// Container reasons, in the words ECS uses.
const (
	reasonEssentialExited = "Essential container exited"
	reasonOOM             = "OutOfMemoryError: container killed due to memory usage"
)

// errNotStarted marks a container of a wave that advance did not start
// because the task was cancelled first.
var errNotStarted = errors.New("not started")

// exit is a container's end as its wait goroutine saw it.
type exit struct {
	c      *ctr
	status int64
	err    error
	early  bool // from the die event, before the daemon tore the container down
}

// runContainers starts the created containers as their dependsOn allows,
// all those ready together, each with its output attached and its exit
// awaited before it starts, and watches them until every started container
// has exited: the first essential one to exit, a failed start, a dependency
// that can never be met or ctx stops all the others, each after the
// containers that depend on it (shutdown.go).
func (r *Runtime) runContainers(ctx, setupCtx context.Context, tr *taskRun, logs worker.LogSink) (*worker.Result, error) {
	// Waits outlive ctx: a cancelled task is stopped, then awaited.
	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()

	var wg sync.WaitGroup // the attach, wait and stop goroutines
	defer wg.Wait()
	exited := make(chan exit, len(tr.containers))

	var startErr error
	running := 0
	stopping := false
	dp := newDeps(tr)
	var sd shutdown // shutdown.go
	var held *time.Timer
	defer func() {
		if held != nil {
			held.Stop()
		}
	}()
	// stopReady stops the containers that shutdown no longer holds back.
	stopReady := func() {
		stop, causes := sd.ready(tr.containers, time.Now())
		for i, c := range stop {
			c.reason = worker.StoppedPrefix + causes[i]
			if c.startedStopped {
				c.reason += "; " + killedAsStarted
			}
			r.stop(ctx, &wg, tr, c)
		}
	}
	// stopAll stops every running container, dependents before what they
	// depend on, as ECS does.
	stopAll := func(cause string) {
		stopping = true
		dp.abandon("Stopped before start: " + cause)
		now := time.Now()
		for _, c := range tr.containers {
			if c.started && !c.exited && !c.stopping.Load() {
				sd.add(c, cause, r.stopTimeout(c.def), now)
			}
		}
		stopReady()
		if sd.waiting() && held == nil {
			held = time.NewTimer(time.Until(sd.deadline))
		}
	}
	// advance starts every container whose dependencies are met (deps.go),
	// a wave at a time, until none is; a dependency that can never be met
	// stops the task. The containers of a wave start at once, as ECS starts
	// containers with no dependency between them; this goroutine alone then
	// records, in definition order, how each start went.
	advance := func() {
		for !stopping && startErr == nil && ctx.Err() == nil {
			wave, unmet := dp.ready(time.Now())
			if unmet != "" {
				stopAll(unmet)
				return
			}
			if len(wave) == 0 {
				return
			}
			errs := make([]error, len(wave))
			startedAt := make([]time.Time, len(wave))
			late := make([]bool, len(wave))
			// A container that waited on others starts long after setup.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(setupCtx), setupTimeout)
			inParallel(len(wave), func(i int) {
				if ctx.Err() != nil {
					// Cancelled before its turn: it stays pending, and
					// stopAll says it was stopped before it started.
					errs[i] = errNotStarted
					return
				}
				errs[i] = r.startContainer(ctx, sctx, waitCtx, wave[i])
				startedAt[i] = time.Now()
				late[i] = ctx.Err() != nil
			})
			cancel()
			for i, c := range wave {
				switch err := errs[i]; {
				case errors.Is(err, errNotStarted):
				case err != nil:
					r.startFailures.Add(1)
					c.reason = "CannotStartContainerError: " + err.Error()
					if startErr == nil {
						startErr = fmt.Errorf("start container %s: %w", c.def.Name, err)
					}
					dp.gone[c] = true
				default:
					c.started, c.startedAt, c.startedStopped = true, startedAt[i], late[i]
					r.started.Add(1)
					running++
					r.watch(waitCtx, &wg, tr, c, logs, exited)
				}
			}
		}
	}
	setup(tr.task, worker.SetupStarting)
	advance()

	// Containers that started as ctx ended ran all the same: the worker
	// records that they started, and how they ended.
	if startErr == nil && running > 0 && tr.task.Started != nil {
		var cs []jobs.ContainerResult
		for _, c := range tr.containers {
			if c.started {
				cs = append(cs, jobs.ContainerResult{Name: c.def.Name, NetworkBindings: c.result.NetworkBindings})
			}
		}
		tr.task.Started(cs)
	}

	switch {
	case startErr != nil:
		stopAll(startErr.Error())
	case ctx.Err() != nil:
		stopAll(context.Cause(ctx).Error())
	}

	done := ctx.Done()
	poll := time.NewTicker(healthPoll)
	defer poll.Stop()
	for running > 0 {
		var tick, late <-chan time.Time
		if !stopping && dp.waiting() {
			tick = poll.C
		}
		if sd.waiting() && held != nil {
			late = held.C
		}
		select {
		case e := <-exited:
			running--
			e.c.exited = true
			r.finish(tr, e)
			if e.c.def.IsEssential() && !stopping {
				if e.c.result.Reason == "" {
					e.c.result.Reason = reasonEssentialExited
				}
				stopAll(fmt.Sprintf("essential container %s exited", e.c.def.Name))
			} else if sd.waiting() {
				stopReady()
			}
			advance()
			if startErr != nil && !stopping {
				stopAll(startErr.Error())
			}
		case <-tick:
			r.checkHealth(ctx, dp)
			advance()
			if startErr != nil && !stopping {
				stopAll(startErr.Error())
			}
		case <-late:
			// The dependents that held these back did not stop in time.
			stopReady()
		case <-done:
			done = nil
			stopAll(context.Cause(ctx).Error())
		}
	}
	dp.abandon("Not started: no container left running to meet its dependencies")
	if startErr != nil {
		for _, c := range tr.containers {
			if c.started {
				return nil, fmt.Errorf("%w (%w)", startErr, worker.ErrSomeStarted)
			}
		}
		return nil, startErr
	}
	res := tr.result()
	if tr.task.Finished != nil {
		tr.task.Finished(res)
	}
	return res, nil
}

// attachOutput attaches to a container's output streams, from the
// moment of the attach on.
var attachOutput = container.AttachOptions{Stream: true, Stdout: true, Stderr: true}

// startContainer attaches to c's output and sets up the wait for its exit,
// both before it starts so that no line and no exit is missed. It sets
// only c's own fields, so that the containers of a wave start at once.
// When ctx ends before the start is asked for, c stays unstarted
// (errNotStarted): a container stopped as it starts may not have set up
// its signal handlers yet, and its exit code would say nothing true.
func (r *Runtime) startContainer(ctx, setupCtx, waitCtx context.Context, c *ctr) error {
	att, err := r.cli.ContainerAttach(setupCtx, c.id, attachOutput)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	// ContainerWait returns once the daemon has registered the wait.
	c.waitC, c.waitErrC = r.cli.ContainerWait(waitCtx, c.id, container.WaitConditionNextExit)
	c.died = r.watchExit(c.id)
	if ctx.Err() != nil {
		r.unwatchExit(c.id)
		att.Close()
		return errNotStarted
	}
	if err := r.cli.ContainerStart(setupCtx, c.id, container.StartOptions{}); err != nil {
		r.unwatchExit(c.id)
		att.Close()
		return startError(c, err)
	}
	c.attach, c.closeOutput = att, att.Close
	if len(c.def.PortMappings) > 0 {
		info, err := r.cli.ContainerInspect(setupCtx, c.id)
		if err != nil {
			// The container runs; only the report of its ports is lost.
			r.log.Warn().Err(err).Str("container", c.def.Name).Msg("inspect published ports")
		} else {
			c.result.NetworkBindings = networkBindings(info)
		}
	}
	return nil
}

// watch copies c's output into logs and reports on exited once c has
// exited and all its output has been delivered. A wait that breaks while
// c runs (the daemon restarting with live-restore) is set up again once
// the daemon answers (rewait.go).
func (r *Runtime) watch(waitCtx context.Context, wg *sync.WaitGroup, tr *taskRun, c *ctr, logs worker.LogSink, exited chan<- exit) {
	stdout := &lineWriter{sink: logs, container: c.def.Name, stream: "stdout"}
	stderr := &lineWriter{sink: logs, container: c.def.Name, stream: "stderr"}
	r.copyOutput(wg, tr, c, c.attach.Reader, stdout, stderr)
	wg.Go(func() {
		e := exit{c: c, status: -1}
	wait:
		for {
			select {
			case resp := <-c.waitC:
				e.status = resp.StatusCode
				if resp.Error != nil && resp.Error.Message != "" {
					e.err = fmt.Errorf("wait: %s", resp.Error.Message)
				}
			case err := <-c.waitErrC:
				e.err = fmt.Errorf("wait: %w", err)
				if r.rewait(waitCtx, wg, tr, c, e.err, stdout, stderr) {
					e.err = nil
					continue wait
				}
			case code := <-c.died:
				e.status, e.early = int64(code), true
				// The wait's answer follows, and the client's goroutine
				// blocks until it is taken: take it (or the wait's end when
				// runContainers cancels it).
				go func() {
					select {
					case <-c.waitC:
					case <-c.waitErrC:
					}
				}()
			}
			break
		}
		r.unwatchExit(c.id)
		// The stream ends when the container's output is closed, normally
		// just after the exit; bound the wait in case the daemon keeps it.
		if e.err == nil {
			t := time.NewTimer(logDrain)
			select {
			case <-c.logsDone:
			case <-t.C:
				tr.log.Warn().Str("container", c.def.Name).Msg("output stream still open after exit; closing it")
			}
			t.Stop()
		}
		c.closeOutput()
		<-c.logsDone
		exited <- e
	})
}

// copyOutput copies the output stream of c from out into its line
// writers, then closes c.logsDone (a new one for each stream) and notes
// when the stream ended.
func (r *Runtime) copyOutput(wg *sync.WaitGroup, tr *taskRun, c *ctr, out io.Reader, stdout, stderr *lineWriter) {
	done := make(chan struct{})
	c.logsDone = done
	wg.Go(func() {
		defer close(done)
		var err error
		if c.def.PseudoTerminal {
			// A terminal's output is one stream, not multiplexed, and
			// ends its lines with \r\n.
			stdout.tty = true
			_, err = io.Copy(stdout, out)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, out)
		}
		stdout.Flush()
		stderr.Flush()
		c.outputEnded = time.Now()
		if err != nil {
			tr.log.Debug().Err(err).Str("container", c.def.Name).Msg("output stream ended")
		}
	})
}

// finish records how c ended, from its state: the wait's status code misses
// the OOM kill.
func (r *Runtime) finish(tr *taskRun, e exit) {
	c := e.c
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	c.result.Name = c.def.Name
	c.result.Reason = c.reason
	code := int(e.status)
	if e.early && code != 137 {
		// The die event said it all. Inspecting now would wait for the
		// daemon to finish tearing the container down, which holds its
		// lock; only a SIGKILL needs the state, to tell an OOM kill.
		c.result.ExitCode = &code
		return
	}
	info, err := r.cli.ContainerInspect(ctx, c.id)
	switch {
	case err == nil && info.State != nil && e.err != nil && !hasExited(info.State):
		// The wait broke and could not be set up again (rewait.go), but
		// the daemon answers, and the container has not ended: its
		// state's exit code (0) says nothing of how it will end. cleanup
		// removes it, so that no other attempt runs beside it.
		c.result.Reason = worker.LostPrefix + e.err.Error() + " (the daemon says the container is " + info.State.Status + ")"
		tr.log.Error().Err(e.err).Str("container", c.def.Name).Str("state", info.State.Status).Msg("wait for container")
		return
	case err == nil && info.State != nil:
		if !e.early {
			code = info.State.ExitCode
		}
		c.result.OOMKilled = info.State.OOMKilled
		// Docker 20.10 can lose the OOM flag when the exit is handled after
		// the OOM event; its event log keeps the truth.
		if code == 137 && !c.result.OOMKilled && !c.stopping.Load() && info.HostConfig != nil && info.HostConfig.Memory > 0 {
			seen, watching := r.oomSeen(ctx, c.id, oomEventWait)
			switch {
			case seen:
				c.result.OOMKilled = true
			case watching:
				c.result.OOMKilled = r.oomFlag(c.id)
			default:
				c.result.OOMKilled = r.oomEvent(ctx, c.id, info.State.StartedAt)
			}
		}
	case err != nil && e.err == nil:
		tr.log.Warn().Err(err).Str("container", c.def.Name).Msg("inspect exited container; its OOM kill may go unseen")
	case e.err != nil:
		// Neither the wait nor the state says how it ended.
		c.result.Reason = worker.LostPrefix + e.err.Error()
		tr.log.Error().Err(e.err).Str("container", c.def.Name).Msg("wait for container")
		return
	}
	c.result.ExitCode = &code
	if c.result.OOMKilled {
		c.result.Reason = reasonOOM
	}
	tr.log.Debug().Str("container", c.def.Name).Int("exitCode", code).Bool("oomKilled", c.result.OOMKilled).Msg("container exited")
}

// hasExited tells whether s is the state of a container that has ended,
// whose exit code says how: not one created and not started yet, whose
// exit code is 0 too.
func hasExited(s *container.State) bool {
	return s.Status == container.StateExited || s.Status == container.StateDead
}

// killedAsStarted ends the reason of a container stopped as it started.
const killedAsStarted = "killed at once: the stop came while it was starting, before it could handle SIGTERM"

// stopTimeoutOf is how long c is given between SIGTERM and SIGKILL: its
// stop timeout, or none for a container whose start was under way when the
// task was stopped, which stop sends SIGKILL alone. That one's process, PID
// 1 of its namespace, may not have set up its signal handlers yet, and the
// kernel drops a signal PID 1 does not handle: the SIGTERM would be lost,
// and the task would run on until it ended by itself or its stop timeout
// passed (one that exited 0 was then recorded CANCELED with exit code 0, as
// if it had trapped SIGTERM).
func (r *Runtime) stopTimeoutOf(c *ctr) time.Duration {
	if c.startedStopped {
		return 0
	}
	return r.stopTimeout(c.def)
}

// stop sends c SIGTERM, then SIGKILL after its stop timeout (stopTimeoutOf).
// Should the daemon refuse, c is removed by force so that its wait returns.
func (r *Runtime) stop(ctx context.Context, wg *sync.WaitGroup, tr *taskRun, c *ctr) {
	c.stopping.Store(true)
	timeout := r.stopTimeoutOf(c)
	secs := int(timeout / time.Second)
	wg.Go(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+stopGrace)
		defer cancel()
		var err error
		if c.startedStopped {
			// Not SIGTERM then SIGKILL (a stop with no timeout): a
			// handler set up by then would race the SIGKILL.
			err = r.cli.ContainerKill(sctx, c.id, "KILL")
		} else {
			err = r.cli.ContainerStop(sctx, c.id, container.StopOptions{Timeout: &secs})
		}
		// A kill of a container that has exited meanwhile is a conflict.
		if err == nil || cerrdefs.IsNotFound(err) || cerrdefs.IsNotModified(err) || c.startedStopped && cerrdefs.IsConflict(err) {
			return
		}
		tr.log.Error().Err(err).Str("container", c.def.Name).Msg("stop container; removing it by force")
		if err := r.cli.ContainerRemove(sctx, c.id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			tr.log.Error().Err(err).Str("container", c.def.Name).Msg("remove container")
		}
	})
}
