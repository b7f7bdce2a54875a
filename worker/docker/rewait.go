package docker

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/rs/zerolog"
)

// DefaultDaemonWait is how long a running container's wait, broken by the
// Docker daemon going away, waits for the daemon to answer again before
// the container is taken for lost.
const DefaultDaemonWait = 2 * time.Minute

// inspectTimeout bounds one ask for the state of a container whose wait
// broke.
const inspectTimeout = 10 * time.Second

// daemonPoll is how often a daemon that went away is asked again for the
// state of a container whose wait broke.
const daemonPoll = time.Second

// WithDaemonWait sets how long a running container whose wait broke waits
// for the Docker daemon to answer again (DefaultDaemonWait otherwise); 0
// takes it for lost at once.
func WithDaemonWait(d time.Duration) Option {
	return func(r *Runtime) {
		if d >= 0 {
			r.daemonWait = d
		}
	}
}

// rewait is called when c's wait broke (cause): the daemon restarted, or
// the connection to it did. A daemon that keeps containers running across
// its restarts (live-restore) would otherwise have the attempt end as lost
// while its container runs on. rewait asks the daemon for c's state until
// it answers, for up to the runtime's daemon wait, and reports whether c
// still runs: then its wait is set up again, and its output, if that
// stream broke too, is followed again from the daemon's log where it
// broke off (a log driver that cannot be read loses what came meanwhile,
// and says so). It gives up on a container asked to stop while the daemon
// does not answer, and on one that exited or is gone: finish then reads
// its end from its state.
func (r *Runtime) rewait(waitCtx context.Context, wg *sync.WaitGroup, tr *taskRun, c *ctr, cause error, stdout, stderr *lineWriter) bool {
	log := tr.log.With().Str("container", c.def.Name).Logger()
	// A wait that breaks again soon after it was set up again is part of
	// the same outage, and shares its time: one that keeps breaking while
	// the daemon says the container runs ends as lost, not in a loop.
	now := time.Now()
	if c.rewaitAt.IsZero() || now.Sub(c.rewaitAt) > r.daemonWait {
		c.outageFrom = now
	} else if d := daemonPoll - now.Sub(c.rewaitAt); d > 0 {
		time.Sleep(d)
	}
	deadline := c.outageFrom.Add(r.daemonWait)
	warned := false
	for {
		ictx, cancel := context.WithTimeout(waitCtx, inspectTimeout)
		info, err := r.cli.ContainerInspect(ictx, c.id)
		cancel()
		switch {
		case err == nil && info.State != nil:
			if hasExited(info.State) || !time.Now().Before(deadline) {
				return false
			}
			return r.waitAgain(waitCtx, wg, tr, c, info.State.Status, stdout, stderr)
		case cerrdefs.IsNotFound(err):
			return false
		}
		if c.stopping.Load() || !time.Now().Before(deadline) || waitCtx.Err() != nil {
			return false
		}
		if !warned {
			log.Warn().Err(cause).AnErr("inspect", err).Str("for", r.daemonWait.String()).Msg("the wait for the container broke; waiting for the Docker daemon to answer again")
			warned = true
		}
		t := time.NewTimer(daemonPoll)
		select {
		case <-t.C:
		case <-waitCtx.Done():
			t.Stop()
			return false
		}
	}
}

// waitAgain sets up c's wait again, and the reading of its output if that
// ended, for a container the daemon says runs. A container asked to stop
// meanwhile, whose stop the absent daemon may have refused, is stopped
// again.
func (r *Runtime) waitAgain(waitCtx context.Context, wg *sync.WaitGroup, tr *taskRun, c *ctr, status container.ContainerState, stdout, stderr *lineWriter) bool {
	log := tr.log.With().Str("container", c.def.Name).Logger()
	c.rewaitAt = time.Now()
	// NotRunning answers at once for a container that exited since the
	// inspect, and for one not started yet, whose start is under way.
	cond := container.WaitConditionNotRunning
	if status == container.StateCreated {
		cond = container.WaitConditionNextExit
	}
	c.waitC, c.waitErrC = r.cli.ContainerWait(waitCtx, c.id, cond)
	select {
	case <-c.logsDone:
		out, closeOut, err := r.followAgain(waitCtx, log, c, stdout, stderr)
		if err != nil {
			log.Error().Err(err).Msg("follow the container's output again; its output from here on is lost")
			break
		}
		c.closeOutput() // the stream that broke: its connection goes too
		c.closeOutput = closeOut
		r.copyOutput(wg, tr, c, out, stdout, stderr)
	default: // the output stream held
	}
	if c.stopping.Load() {
		r.stop(waitCtx, wg, tr, c)
	}
	log.Info().Msg("the Docker daemon answers again and the container runs: waiting for it again")
	return true
}

// followAgain opens c's output again, its stream having broken: the
// daemon's log of c from its start, read on from where each writer's
// stream broke off (resumeAt), so that the output goes on with no line
// twice and none missed. The log is checked as the copy reads it (relog),
// not here: that reads it as far as the writers delivered, which takes as
// long as the log is, or longer for a log rotated to less than that.
//
// A log that does not hold what the writers delivered, its start rotated
// away, is searched for where the streams broke off (readAgain, locate).
// Where that cannot be told, it is followed from the moment the stream
// ended instead: that moment is the worker's clock, and the daemon times
// a line when its logger reads it, which on a busy host can be after the
// stream delivered it, or before a line on its way in the stream that
// broke: such a line can then come twice, or be missed, and a warning
// says so. A log the daemon cannot read (the "none" log driver, or another
// with Docker's dual logging off) leaves c's output from now on, attached
// to again: what c wrote in between is lost, and a warning says so.
func (r *Runtime) followAgain(ctx context.Context, log zerolog.Logger, c *ctr, stdout, stderr *lineWriter) (io.Reader, func(), error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}
	rc, err := r.cli.ContainerLogs(ctx, c.id, opts)
	if err == nil {
		l := &relog{rc: rc}
		l.check = func() (io.Reader, error) { return r.readAgain(ctx, log, l, c, stdout, stderr) }
		return l, l.Close, nil
	}
	if !cerrdefs.IsNotImplemented(err) {
		return nil, nil, err
	}
	att, aerr := r.cli.ContainerAttach(ctx, c.id, attachOutput)
	if aerr != nil {
		return nil, nil, fmt.Errorf("%w; attach: %w", err, aerr)
	}
	log.Warn().Err(err).Msg("the container's log cannot be read, so its output is attached to again: what it wrote while the Docker daemon was away is lost")
	return att.Reader, att.Close, nil
}

// locateSlack is how long after the output broke the log read to find
// where it broke off goes on (readAgain): a line the stream delivered is
// timed by the daemon before the stream ended, give or take the time the
// two took to read it.
const locateSlack = time.Second

// readAgain readies the log of c, followed again (l), to be read on from
// where the writers' streams broke off (relog's check). A log that does
// not hold the output delivered, its start rotated away, is read to its
// end to find where in it the streams broke off (locate), and followed
// again from there; failing that, from the moment the output ended
// (followAgain).
func (r *Runtime) readAgain(ctx context.Context, log zerolog.Logger, l *relog, c *ctr, stdout, stderr *lineWriter) (io.Reader, error) {
	tty := c.def.PseudoTerminal
	if out, whole := resumeAt(l.rc, tty, stdout, stderr); whole {
		return out, nil
	}
	follow := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}
	// What is left of the log up to just after the output broke: the
	// daemon times a line when its logger reads it, on this host's clock.
	// What the container wrote since is left out, so that the last bytes
	// delivered are not found again in it.
	until := c.outputEnded.Add(locateSlack)
	upTo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Until: fmt.Sprintf("%d.%09d", until.Unix(), until.Nanosecond())}
	var marks [2]mark
	located := false
	if rest, err := r.cli.ContainerLogs(ctx, c.id, upTo); err == nil {
		marks, located = locate(rest, tty, stdout, stderr)
		rest.Close()
	}
	if l.isClosed() { // the container ended, or its attempt
		return nil, io.EOF
	}
	if located {
		out, err := l.reopen(func() (io.ReadCloser, error) { return r.cli.ContainerLogs(ctx, c.id, follow) })
		if err == io.EOF {
			return nil, err
		}
		if err == nil {
			if out, ok := readOnFrom(out, tty, marks[0], marks[1]); ok {
				log.Info().Msg("the container's log no longer holds all the output delivered (its start was rotated away); it is followed again from where the output broke off, found in what is left of it")
				return out, nil
			}
		}
	}
	log.Warn().Msg("the container's log does not hold the output delivered (its start was rotated away), nor could where the output broke off be found in what is left of it, so it is followed from when the output broke: a line around that moment may come twice or be missed")
	follow.Since = fmt.Sprintf("%d.%09d", c.outputEnded.Unix(), c.outputEnded.Nanosecond())
	out, err := l.reopen(func() (io.ReadCloser, error) { return r.cli.ContainerLogs(ctx, c.id, follow) })
	if err != nil && err != io.EOF {
		log.Error().Err(err).Msg("follow the container's output again; its output from here on is lost")
	}
	return out, err
}

// relog is a container's log followed again (followAgain). Its first Read
// checks the log (check), and it reads on from what check returns: the
// log, or another one check opened in its place (reopen). Close, from
// another goroutine, closes the log open, ending a Read.
type relog struct {
	check func() (io.Reader, error)
	out   io.Reader
	err   error // check's

	mu     sync.Mutex
	rc     io.ReadCloser
	closed bool
}

func (l *relog) Read(p []byte) (int, error) {
	if l.out == nil && l.err == nil {
		l.out, l.err = l.check()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.out.Read(p)
}

// reopen closes the log and opens another in its place, unless l was
// closed meanwhile.
func (l *relog) reopen(open func() (io.ReadCloser, error)) (io.Reader, error) {
	if l.isClosed() {
		return nil, io.EOF
	}
	rc, err := open()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rc.Close()
	l.rc = rc
	if l.closed {
		rc.Close()
		return nil, io.EOF
	}
	return rc, nil
}

func (l *relog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.rc.Close()
}

func (l *relog) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}
