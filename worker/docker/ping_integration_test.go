package docker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/gantry-dev/gantry/worker"
)

// TestDaemonGoneMidRun: the Docker daemon goes away (the socket the
// runtime's client talks to is killed) while a task's container runs, and
// does not come back within the runtime's daemon wait. Run returns the
// container as one it lost track of (worker.LostPrefix, no exit code),
// not as a task that failed to start; Ping says the daemon is
// gone, and a Run then fails before creating anything. Once the daemon is
// back, Ping answers again.
func TestDaemonGoneMidRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sampletest.Cleanup(t, e.cli, e.label) // the container, left running by the daemon, before newEnv's check
	p := sampletest.StartDaemonProxy(t, e.cli)
	rt := proxyRuntime(t, e, p, WithDaemonWait(2*time.Second))
	ctx := testCtx(t, 2*time.Minute)
	if err := rt.Ping(ctx); err != nil {
		t.Fatalf("ping through the proxy: %v", err)
	}
	res, _ := runMidway(ctx, t, rt, e, sh("echo ready; sleep 600"), p.Kill)
	if c := res.Containers[0]; c.ExitCode != nil || !strings.HasPrefix(c.Reason, worker.LostPrefix) {
		t.Fatalf("container %+v, want no exit code and a reason starting %q", c, worker.LostPrefix)
	}
	if err := rt.Ping(ctx); err == nil {
		t.Fatal("Ping answers with the daemon gone")
	}
	if _, err := rt.Run(ctx, e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("echo never")}), &recordSink{}); err == nil {
		t.Fatal("Run succeeded with the daemon gone")
	}

	p.Start(t)
	if err := rt.Ping(ctx); err != nil {
		t.Fatalf("ping once the daemon is back: %v", err)
	}
}

// TestWaitBrokenWhileContainerRuns: the runtime's wait for a container
// breaks while the daemon stays (a proxy closes that connection alone), and
// the container runs on. The wait is set up again: Run returns the
// container's own exit code and all its output, not the exit code 0 of a
// running container's state.
func TestWaitBrokenWhileContainerRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := sampletest.StartDaemonProxy(t, e.cli)
	res, sink := runThroughProxy(t, e, proxyRuntime(t, e, p), sh("echo ready; sleep 2; echo after; exit 3"), func() {
		if n := p.BreakWaits(); n != 1 {
			t.Errorf("broke %d waits, want the container's one", n)
		}
	})
	c := res.Containers[0]
	if c.ExitCode == nil || *c.ExitCode != 3 {
		t.Fatalf("container %+v, want exit code 3", c)
	}
	if got := sink.output("main", "stdout"); got != "ready\nafter\n" {
		t.Fatalf("output %q, want ready and after", got)
	}
}

// TestDaemonBackMidRun: the Docker daemon goes away while a task's
// container runs (its socket and every connection through it killed: the
// wait, the output, the exit events) and answers again two seconds later,
// the container running all along, as across a restart with live-restore.
// The attempt goes on: Run returns the container's own exit code, and its
// output has every line once, on both streams, those written while the
// daemon was away too, and "tick", written over and over, as many times as
// it was.
func TestDaemonBackMidRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := sampletest.StartDaemonProxy(t, e.cli)
	res, sink := runThroughProxy(t, e, proxyRuntime(t, e, p),
		sh("echo ready; echo warn >&2; printf tick; echo; sleep 1; echo tick; echo during >&2; sleep 3; echo tick; echo after; exit 3"),
		awayFor(t, p, 2*time.Second))
	c := res.Containers[0]
	if c.ExitCode == nil || *c.ExitCode != 3 || c.Reason != reasonEssentialExited {
		t.Fatalf("container %+v, want exit code 3 and reason %q", c, reasonEssentialExited)
	}
	stdout, stderr := sink.output("main", "stdout"), sink.output("main", "stderr")
	if stdout != "ready\ntick\ntick\ntick\nafter\n" || stderr != "warn\nduring\n" {
		t.Fatalf("stdout %q and stderr %q, want each line once", stdout, stderr)
	}
}

// TestDaemonBackMidRunUnreadableLog: as TestDaemonBackMidRun, with a
// container whose log the daemon cannot read (the "none" log driver): its
// output is attached to again once the daemon answers, so the lines it
// writes from then on are kept; the one written while the daemon was
// away is lost.
func TestDaemonBackMidRunUnreadableLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := sampletest.StartDaemonProxy(t, e.cli)
	rt := proxyRuntimeOf(t, e, p, func(c Client) Client { return unreadableLogs{c} })
	res, sink := runThroughProxy(t, e, rt, sh("echo ready; sleep 1; echo during; sleep 6; echo after; exit 3"), awayFor(t, p, 2*time.Second))
	c := res.Containers[0]
	if c.ExitCode == nil || *c.ExitCode != 3 || c.Reason != reasonEssentialExited {
		t.Fatalf("container %+v, want exit code 3 and reason %q", c, reasonEssentialExited)
	}
	if got := sink.output("main", "stdout"); got != "ready\nafter\n" {
		t.Fatalf("output %q, want ready and after", got)
	}
}

// unreadableLogs is a Docker client that can read no container's log, as
// with the "none" log driver.
type unreadableLogs struct{ Client }

func (unreadableLogs) ContainerLogs(context.Context, string, container.LogsOptions) (io.ReadCloser, error) {
	return nil, fmt.Errorf("configured logging driver does not support reading: %w", cerrdefs.ErrNotImplemented)
}

// TestDaemonBackMidRunRotatedLog: as TestDaemonBackMidRun, with the
// container's log rotated meanwhile (a client that drops its first lines)
// so that what is left of it begins as the output did, "tick" written a
// hundred times: its start cannot tell it from a whole log, but it holds
// less than the output delivered. Where the output broke off is found in
// what is left of the log, and the output goes on from there: each line
// once.
func TestDaemonBackMidRunRotatedLog(t *testing.T) {
	t.Parallel()
	logs := rotatedLogs{drop: 10, sinceReads: new(atomic.Int32)}
	sink := runRotated(t, logs)
	if got, want := sink.output("main", "stdout"), strings.Repeat("tick\n", 100)+"ready\nduring\nafter\n"; got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	if n := logs.sinceReads.Load(); n != 0 {
		t.Fatalf("the log was read %d times from a moment, want none: the place the output broke off was not found", n)
	}
}

// TestDaemonBackMidRunRotatedLogNotLocated: as
// TestDaemonBackMidRunRotatedLog, but where the output broke off cannot
// be found in what is left of the log (here the daemon refuses to read
// it up to a moment): the log is followed from when the output broke, and
// the lines written since come, none lost.
func TestDaemonBackMidRunRotatedLogNotLocated(t *testing.T) {
	t.Parallel()
	logs := rotatedLogs{drop: 10, refuseUntil: true, sinceReads: new(atomic.Int32)}
	sink := runRotated(t, logs)
	if n := logs.sinceReads.Load(); n != 1 {
		t.Errorf("the log was read %d times from a moment, want once", n)
	}
	count := map[string]int{}
	got := sink.get("main", "stdout")
	for _, l := range got {
		count[l]++
	}
	if count["tick"] < 100 || count["during"] != 1 || count["after"] != 1 {
		t.Fatalf("stdout %q: want a hundred ticks or more, then during and after once", got)
	}
}

// runRotated runs a container that writes "tick" a hundred times, then
// "ready", and more while the daemon is away, through rotated, a client
// whose container logs read from the start have lost their first lines,
// and returns what it wrote.
func runRotated(t *testing.T, rotated rotatedLogs) *readySink {
	t.Helper()
	e := newEnv(t)
	p := sampletest.StartDaemonProxy(t, e.cli)
	rt := proxyRuntimeOf(t, e, p, func(c Client) Client { rotated.Client = c; return rotated })
	res, sink := runThroughProxy(t, e, rt,
		sh("for i in $(seq 100); do echo tick; done; echo ready; sleep 1; echo during; sleep 3; echo after; exit 3"),
		awayFor(t, p, 2*time.Second))
	if c := res.Containers[0]; c.ExitCode == nil || *c.ExitCode != 3 {
		t.Fatalf("container %+v, want exit code 3", c)
	}
	return sink
}

// rotatedLogs is a Docker client whose container logs, read from the
// start, have lost their first drop lines, as if rotated away. With
// refuseUntil it refuses to read a log up to a moment; sinceReads counts
// the logs read from a moment.
type rotatedLogs struct {
	Client
	drop        int
	refuseUntil bool
	sinceReads  *atomic.Int32
}

func (c rotatedLogs) ContainerLogs(ctx context.Context, id string, opts container.LogsOptions) (io.ReadCloser, error) {
	if c.refuseUntil && opts.Until != "" {
		return nil, errors.New("the test refuses to read a log up to a moment")
	}
	if opts.Since != "" {
		c.sinceReads.Add(1)
	}
	rc, err := c.Client.ContainerLogs(ctx, id, opts)
	if err != nil || opts.Since != "" {
		return rc, err
	}
	for range c.drop {
		var h [8]byte
		if _, err := io.ReadFull(rc, h[:]); err != nil {
			rc.Close()
			return nil, err
		}
		if _, err := io.CopyN(io.Discard, rc, int64(binary.BigEndian.Uint32(h[4:]))); err != nil {
			rc.Close()
			return nil, err
		}
	}
	return rc, nil
}

// TestDaemonBackMidRunRotatingLog: as TestDaemonBackMidRun, with a
// container whose json-file log the daemon rotates for real (max-size
// 1k, two files), so that by the time the daemon is back its start is
// long gone: where the output broke off is found in what is left of the
// log, and the output goes on from there, each line once.
func TestDaemonBackMidRunRotatingLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := sampletest.StartDaemonProxy(t, e.cli)
	logs := rotatedLogs{sinceReads: new(atomic.Int32)}
	rt := proxyRuntimeOf(t, e, p, func(c Client) Client { logs.Client = rotatingLogs{c}; return logs })
	res, sink := runThroughProxy(t, e, rt,
		sh("for i in $(seq 60); do echo line $i of the output before the break; done; echo ready; sleep 1; echo during; sleep 3; echo after; exit 3"),
		awayFor(t, p, 2*time.Second))
	if c := res.Containers[0]; c.ExitCode == nil || *c.ExitCode != 3 {
		t.Fatalf("container %+v, want exit code 3", c)
	}
	var want strings.Builder
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&want, "line %d of the output before the break\n", i)
	}
	want.WriteString("ready\nduring\nafter\n")
	if got := sink.output("main", "stdout"); got != want.String() {
		t.Fatalf("stdout %q, want %q", got, want.String())
	}
	// The daemon stays (the proxy alone goes away), and the container
	// writes nothing between the readings of its log: no rotation between
	// them makes the place found fail its check.
	if n := logs.sinceReads.Load(); n != 0 {
		t.Fatalf("the log was read %d times from a moment, want none: the place the output broke off was not found", n)
	}
}

// rotatingLogs is a Docker client whose containers' json-file logs the
// daemon rotates at 1 KiB, keeping two files.
type rotatingLogs struct{ Client }

func (c rotatingLogs) ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error) {
	hostConfig.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1k", "max-file": "2"}}
	return c.Client.ContainerCreate(ctx, config, hostConfig, networkingConfig, platform, containerName)
}

// TestStopWhileDaemonAway: a task stopped while the Docker daemon is away,
// its container's wait broken, is not held for the daemon wait (here 10
// minutes, beyond the test's time): the runtime gives up on the container,
// whose stop the daemon could not take, and Run returns it as lost.
func TestStopWhileDaemonAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sampletest.Cleanup(t, e.cli, e.label) // the container, left running by the daemon, before newEnv's check
	p := sampletest.StartDaemonProxy(t, e.cli)
	rt := proxyRuntime(t, e, p, WithDaemonWait(10*time.Minute))
	ctx, cancel := context.WithCancel(testCtx(t, 2*time.Minute))
	defer cancel()
	res, _ := runMidway(ctx, t, rt, e, sh("echo ready; sleep 600"), func() {
		p.Kill()
		time.Sleep(1500 * time.Millisecond) // the wait has broken, and the runtime waits for the daemon
		cancel()
	})
	if c := res.Containers[0]; c.ExitCode != nil || !strings.HasPrefix(c.Reason, worker.LostPrefix) {
		t.Fatalf("container %+v, want no exit code and a reason starting %q", c, worker.LostPrefix)
	}
}

// TestStopWhileDaemonAwayThenBack: a task stopped while the Docker daemon
// is away, which answers again before the runtime gives up on it: the
// stop, which the absent daemon refused, is sent again once the daemon
// says the container runs, and the container ends stopped, with its own
// exit code, instead of running on.
func TestStopWhileDaemonAwayThenBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sampletest.Cleanup(t, e.cli, e.label)
	p := sampletest.StartDaemonProxy(t, e.cli)
	refused := &logWatch{want: `"message":"remove container"`, seen: make(chan struct{})}
	rt := proxyRuntime(t, e, p, WithDaemonWait(10*time.Minute),
		WithLogger(zerolog.New(io.MultiWriter(zerolog.NewTestWriter(t), refused)).Level(zerolog.InfoLevel)))
	ctx, cancel := context.WithCancel(testCtx(t, 2*time.Minute))
	defer cancel()
	res, _ := runMidway(ctx, t, rt, e, sh("trap 'exit 143' TERM; echo ready; sleep 600 & wait"), func() {
		p.Kill()
		// Midway between two of the runtime's asks for the container's
		// state (daemonPoll apart), the stop is refused, and so is the
		// removal by force that follows; the next ask finds the daemon
		// back.
		time.Sleep(1500 * time.Millisecond)
		cancel()
		select {
		case <-refused.seen:
		case <-time.After(time.Minute):
			t.Fatal("the stop was not refused")
		}
		p.Start(t)
	})
	if c := res.Containers[0]; exitCode(t, c) != 143 || !strings.HasPrefix(c.Reason, worker.StoppedPrefix) {
		t.Fatalf("container %+v, want exit code 143 and a reason starting %q", c, worker.StoppedPrefix)
	}
	checkNoneLeft(t, e)
}

// logWatch is a log writer that closes seen at the first line holding
// want.
type logWatch struct {
	want string
	seen chan struct{}
	once sync.Once
}

func (w *logWatch) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte(w.want)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(b), nil
}

// proxyRuntime is a runtime whose Docker client talks through the proxy p.
func proxyRuntime(t *testing.T, e *env, p *sampletest.DaemonProxy, opts ...Option) *Runtime {
	t.Helper()
	return proxyRuntimeOf(t, e, p, func(c Client) Client { return c }, opts...)
}

// proxyRuntimeOf is proxyRuntime with the Docker client wrapped by wrap.
func proxyRuntimeOf(t *testing.T, e *env, p *sampletest.DaemonProxy, wrap func(Client) Client, opts ...Option) *Runtime {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+p.Path()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	opts = append([]Option{WithLabels(map[string]string{testLabel: e.label}),
		WithLogger(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))}, opts...)
	return New(wrap(cli), opts...)
}

// runMidway runs a task of one container with command on rt under ctx, calls mid
// once the container has written "ready", and returns what Run returned,
// failing the test on an error.
func runMidway(ctx context.Context, t *testing.T, rt *Runtime, e *env, command []string, mid func()) (*worker.Result, *readySink) {
	t.Helper()
	sink := &readySink{ready: make(chan struct{})}
	type ended struct {
		res *worker.Result
		err error
	}
	done := make(chan ended, 1)
	go func() {
		res, err := rt.Run(ctx, e.task(t, jobs.ContainerDefinition{Name: "main", Command: command}), sink)
		done <- ended{res, err}
	}()
	select {
	case <-sink.ready:
	case <-ctx.Done():
		t.Fatal("the container never said it was ready")
	}
	mid()
	var got ended
	select {
	case got = <-done:
	case <-time.After(2 * time.Minute): // not ctx, which mid may end
		t.Fatal("Run did not return")
	}
	if got.err != nil {
		t.Fatalf("Run: %v, want the result of a task that ran", got.err)
	}
	return got.res, sink
}

// runThroughProxy runs a task of one container with command on rt, a
// runtime through a daemon proxy (runMidway), and checks that Run left
// none of its containers.
func runThroughProxy(t *testing.T, e *env, rt *Runtime, command []string, mid func()) (*worker.Result, *readySink) {
	t.Helper()
	res, sink := runMidway(testCtx(t, 2*time.Minute), t, rt, e, command, mid)
	checkNoneLeft(t, e)
	return res, sink
}

// awayFor returns a mid for runMidway: the daemon behind p goes away for
// d, and comes back.
func awayFor(t *testing.T, p *sampletest.DaemonProxy, d time.Duration) func() {
	return func() {
		p.Kill()
		time.Sleep(d)
		p.Start(t)
	}
}

// checkNoneLeft fails the test if a container of e's label is left.
func checkNoneLeft(t *testing.T, e *env) {
	t.Helper()
	left, err := e.cli.ContainerList(testCtx(t, time.Minute), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", testLabel+"="+e.label))})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%d containers of the task left after Run, want none: %+v", len(left), left)
	}
}

// breakingWaits is a Docker client whose every wait breaks at once, the
// daemon answering all else.
type breakingWaits struct{ Client }

func (breakingWaits) ContainerWait(context.Context, string, container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	errC := make(chan error, 1)
	errC <- errors.New("the test breaks every wait")
	return nil, errC
}

// TestWaitThatKeepsBreakingIsLost: a container's wait that breaks each
// time it is set up again, while the daemon says the container runs, ends
// once the runtime's daemon wait has passed: the container lost and
// removed, its reason saying the daemon's state of it, not a loop and not
// the exit code 0 of a running container's state.
func TestWaitThatKeepsBreakingIsLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rt := New(breakingWaits{e.cli}, WithLabels(map[string]string{testLabel: e.label}), WithDaemonWait(3*time.Second),
		WithLogger(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)))
	ctx := testCtx(t, time.Minute)
	res, err := rt.Run(ctx, e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("sleep 600")}), &recordSink{})
	if err != nil {
		t.Fatalf("Run: %v, want the result of a task that ran", err)
	}
	c := res.Containers[0]
	if c.ExitCode != nil || !strings.HasPrefix(c.Reason, worker.LostPrefix) || !strings.Contains(c.Reason, "the daemon says the container is running") {
		t.Fatalf("container %+v, want no exit code and a reason starting %q that says it runs", c, worker.LostPrefix)
	}
	checkNoneLeft(t, e)
}
