package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/gantry-dev/gantry/worker"
)

const testLabel = sampletest.LabelKey

// env is what one integration test works with.
type env struct {
	rt    *Runtime
	cli   *client.Client
	image string
	label string
}

// newEnv returns a Runtime that labels what it creates with the test's name
// and checks, when the test ends, that nothing with that label is left.
func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	cli := sampletest.Docker(t)
	img := sampletest.Image(t)
	label := t.Name()
	opts = append([]Option{
		WithLabels(map[string]string{testLabel: label}),
		WithLogger(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)),
	}, opts...)
	e := &env{rt: New(cli, opts...), cli: cli, image: img, label: label}
	t.Cleanup(func() { e.checkNothingLeft(t) })
	return e
}

func (e *env) checkNothingLeft(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+e.label))
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("list containers: %v", err)
	}
	for _, c := range cs {
		t.Errorf("container %v (%s) left behind", c.Names, c.State)
		e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	ns, err := e.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Errorf("list networks: %v", err)
	}
	for _, n := range ns {
		t.Errorf("network %s left behind", n.Name)
		e.cli.NetworkRemove(ctx, n.ID)
	}
	vs, err := e.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Errorf("list volumes: %v", err)
	}
	for _, v := range vs.Volumes {
		t.Errorf("volume %s left behind", v.Name)
		e.cli.VolumeRemove(ctx, v.Name, true)
	}
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// task returns a one-attempt task of the given containers under a run id
// made from the test's name.
func (e *env) task(t *testing.T, cs ...jobs.ContainerDefinition) *worker.Task {
	var b [3]byte
	rand.Read(b[:])
	name := strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-"))
	for i := range cs {
		if cs[i].Image == "" {
			cs[i].Image = e.image
		}
	}
	return &worker.Task{
		RunID:      fmt.Sprintf("%.40s-%s", name, hex.EncodeToString(b[:])),
		Attempt:    1,
		Def:        jobs.TaskDefinition{Family: "test", ContainerDefinitions: cs},
		PullPolicy: worker.PullNever,
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func exitCode(t *testing.T, c jobs.ContainerResult) int {
	t.Helper()
	if c.ExitCode == nil {
		t.Fatalf("container %s: no exit code (reason %q)", c.Name, c.Reason)
	}
	return *c.ExitCode
}

func mustRun(t *testing.T, ctx context.Context, e *env, task *worker.Task, sink worker.LogSink) *worker.Result {
	t.Helper()
	res, err := e.rt.Run(ctx, task, sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Containers) != len(task.Def.ContainerDefinitions) {
		t.Fatalf("got %d container results, want %d", len(res.Containers), len(task.Def.ContainerDefinitions))
	}
	return res
}

func sh(script string) []string { return []string{"sh", "-c", script} }

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
		t.Errorf("%s: got %q, want %q", what, got, want)
	}
}

func TestRunCapturesOutput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sink := &recordSink{}
	task := e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh(
		"echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo -n last")})
	res := mustRun(t, testCtx(t, time.Minute), e, task, sink)
	c := res.Containers[0]
	if exitCode(t, c) != 0 || c.OOMKilled || c.Name != "main" {
		t.Errorf("got %+v", c)
	}
	equal(t, "stdout", sink.get("main", "stdout"), []string{"out1", "out2", "last"})
	equal(t, "stderr", sink.get("main", "stderr"), []string{"err1", "err2"})
	if st := e.rt.Stats(); st != (Stats{ContainersStarted: 1}) {
		t.Errorf("Stats = %+v, want one container started", st)
	}
}

func TestRunExitCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := mustRun(t, testCtx(t, time.Minute), e, e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("exit 3")}), &recordSink{})
	c := res.Containers[0]
	if exitCode(t, c) != 3 || c.Reason != reasonEssentialExited {
		t.Errorf("got exit %d reason %q, want 3 and %q", exitCode(t, c), c.Reason, reasonEssentialExited)
	}
}

func TestRunTaskEnv(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t, jobs.ContainerDefinition{
		Name:        "main",
		Command:     sh(`echo "$FOO $GANTRY_RUN_ID $GANTRY_ATTEMPT"`),
		Environment: []jobs.KeyValue{{Name: "FOO", Value: "bar"}, {Name: "GANTRY_ATTEMPT", Value: "spoofed"}},
	})
	task.Env = []jobs.KeyValue{{Name: "GANTRY_RUN_ID", Value: task.RunID}, {Name: "GANTRY_ATTEMPT", Value: "1"}}
	sink := &recordSink{}
	mustRun(t, testCtx(t, time.Minute), e, task, sink)
	equal(t, "stdout", sink.get("main", "stdout"), []string{"bar " + task.RunID + " 1"})
}

func TestRunMissingImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy worker.PullPolicy
		want   string
	}{
		{worker.PullNever, `image "gantry/does-not-exist:v1" is not on this worker's host and the pull policy is never`},
		{worker.PullMissing, `image "gantry/does-not-exist:v1" is not on this worker's host and could not be pulled`},
		{"", `image "gantry/does-not-exist:v1" is not on this worker's host and could not be pulled`},
		{worker.PullAlways, `image "gantry/does-not-exist:v1" is not on this worker's host and could not be pulled`},
	}
	for _, tt := range tests {
		t.Run("policy="+string(tt.policy), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			task := e.task(t, jobs.ContainerDefinition{Name: "main", Image: "gantry/does-not-exist:v1", Command: []string{"true"}})
			task.PullPolicy = tt.policy
			ctx := testCtx(t, 30*time.Second)
			res, err := e.rt.Run(ctx, task, &recordSink{})
			if ctx.Err() != nil {
				t.Fatalf("Run did not return within the test's deadline: %v", err)
			}
			if !errors.Is(err, worker.ErrImageNotFound) {
				t.Fatalf("got %v, %v; want an error wrapping ErrImageNotFound", res, err)
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestRunOOMKilled lets the container run out of memory a second after it
// starts: on a loaded host containerd's shim starts watching the memory
// cgroup just after the start, and a process killed before that leaves the
// daemon no OOM to report (as in the e2e tests' oomLater).
func TestRunOOMKilled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t, jobs.ContainerDefinition{Name: "main", Memory: 16, Command: sh("sleep 1; exec alloc 200")})
	res := mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
	c := res.Containers[0]
	if !c.OOMKilled || !strings.Contains(c.Reason, "memory") {
		t.Errorf("got %+v (exit %v), want OOM killed with a reason about memory", c, exitCode(t, c))
	}
}

// readySink signals ready at a container's first "ready" line. A line
// can come twice when the daemon returns and the container's log was
// rotated (followAgain); the tests that want each line once say so of the
// output recorded, rather than crash every test of the package.
type readySink struct {
	recordSink
	ready chan struct{}
	once  sync.Once
}

func (s *readySink) Line(container, stream string, line []byte) {
	s.recordSink.Line(container, stream, line)
	if string(line) == "ready" {
		s.once.Do(func() { close(s.ready) })
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("echo ready; sleep 300")})
	sink := &readySink{ready: make(chan struct{})}
	ctx, cancel := context.WithCancelCause(testCtx(t, time.Minute))
	cause := errors.New("stopped by the test")
	var listed []ManagedContainer
	var listErr error
	go func() {
		<-sink.ready
		listed, listErr = e.rt.ListManaged(context.Background())
		cancel(cause)
	}()
	start := time.Now()
	res := mustRun(t, ctx, e, task, sink)
	took := time.Since(start)
	c := res.Containers[0]
	t.Logf("cancelled run took %v; result %+v exit %d", took, c, exitCode(t, c))
	if took > 10*time.Second {
		t.Errorf("cancelled run took %v, want under 10s", took)
	}
	if !strings.HasPrefix(c.Reason, "Stopped: ") || !strings.Contains(c.Reason, cause.Error()) {
		t.Errorf("reason %q does not say it was stopped by %q", c.Reason, cause)
	}
	if listErr != nil {
		t.Fatal(listErr)
	}
	found := false
	for _, m := range listed {
		if m.RunID == task.RunID {
			found = m.Attempt == 1 && m.Container == "main" && m.State == "running" && m.Name == "gantry-"+task.RunID+"-1-main"
		}
	}
	if !found {
		t.Errorf("ListManaged did not list the running container: %+v", listed)
	}
}

func TestRunManyLines(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 100000
	sink := &recordSink{}
	start := time.Now()
	mustRun(t, testCtx(t, 2*time.Minute), e, e.task(t, jobs.ContainerDefinition{Name: "main", Command: []string{"lines", fmt.Sprint(n)}}), sink)
	t.Logf("%d lines in %v", n, time.Since(start))
	got := sink.get("main", "stdout")
	if len(got) != n {
		t.Fatalf("got %d lines, want %d", len(got), n)
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %06d ", i+1); !strings.HasPrefix(l, want) || len(l) != 64 {
			t.Fatalf("line %d: got %q, want %q... of 64 bytes", i, l, want)
		}
	}
}

func TestRunBigLine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 1 << 20
	sink := &recordSink{}
	mustRun(t, testCtx(t, time.Minute), e, e.task(t, jobs.ContainerDefinition{Name: "main", Command: []string{"bigline", fmt.Sprint(n)}}), sink)
	got := sink.get("main", "stdout")
	if len(got) != 1 || len(got[0]) != n || strings.Trim(got[0], "x") != "" {
		lens := []int{}
		for _, l := range got {
			lens = append(lens, len(l))
		}
		t.Fatalf("got lines of %v bytes, want one of %d 'x'", lens, n)
	}
}

func TestRunHostVolume(t *testing.T) {
	t.Parallel()
	allowed := t.TempDir()
	e := newEnv(t, WithAllowedHostPaths(allowed))
	task := e.task(t, jobs.ContainerDefinition{
		Name:        "main",
		Command:     sh("echo hello > /data/out.txt"),
		MountPoints: []jobs.MountPoint{{SourceVolume: "data", ContainerPath: "/data"}},
	})
	task.Def.Volumes = []jobs.Volume{{Name: "data", Host: &jobs.HostVolume{SourcePath: filepath.Join(allowed, "sub")}}}
	res := mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
	if exitCode(t, res.Containers[0]) != 0 {
		t.Fatalf("got %+v", res.Containers[0])
	}
	b, err := os.ReadFile(filepath.Join(allowed, "sub", "out.txt"))
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("read file written by the container: %q, %v", b, err)
	}
}

func TestRunHostVolumeRefused(t *testing.T) {
	t.Parallel()
	allowed := t.TempDir()
	e := newEnv(t, WithAllowedHostPaths(allowed))
	outside := filepath.Join(allowed, "..", "elsewhere")
	task := e.task(t, jobs.ContainerDefinition{
		Name:        "main",
		Command:     []string{"true"},
		MountPoints: []jobs.MountPoint{{SourceVolume: "data", ContainerPath: "/data"}},
	})
	task.Def.Volumes = []jobs.Volume{{Name: "data", Host: &jobs.HostVolume{SourcePath: outside}}}
	res, err := e.rt.Run(testCtx(t, time.Minute), task, &recordSink{})
	if err == nil {
		t.Fatalf("got %+v, want an error", res)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), outside) || !strings.Contains(err.Error(), "--allow-host-path") {
		t.Errorf("error %q does not name the path and the --allow-host-path flag", err)
	}
}

func TestRunSharedScratchVolume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mount := []jobs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/scratch"}}
	no := false
	task := e.task(t,
		jobs.ContainerDefinition{Name: "writer", Essential: &no, MountPoints: mount,
			Command: sh("echo shared > /scratch/f.tmp && mv /scratch/f.tmp /scratch/f")},
		jobs.ContainerDefinition{Name: "reader", MountPoints: mount,
			Command: sh("while [ ! -f /scratch/f ]; do sleep 0.05; done; cat /scratch/f")},
	)
	task.Def.Volumes = []jobs.Volume{{Name: "scratch"}}
	sink := &recordSink{}
	res := mustRun(t, testCtx(t, time.Minute), e, task, sink)
	for _, c := range res.Containers {
		if exitCode(t, c) != 0 {
			t.Errorf("got %+v", c)
		}
	}
	equal(t, "reader stdout", sink.get("reader", "stdout"), []string{"shared"})
}

func TestRunEssentialExitStopsOthers(t *testing.T) {
	t.Parallel()
	// The sidecar must stop on SIGTERM: were it left for the stop timeout
	// to kill, the run would outlast the test's minute.
	e := newEnv(t, WithDefaultStopTimeout(10*time.Minute))
	no := false
	task := e.task(t,
		jobs.ContainerDefinition{Name: "sidecar", Essential: &no, Command: []string{"sleep", "300"}},
		jobs.ContainerDefinition{Name: "main", Command: sh("sleep 0.5; exit 4")},
	)
	res := mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
	side, main := res.Containers[0], res.Containers[1]
	if exitCode(t, main) != 4 || main.Reason != reasonEssentialExited {
		t.Errorf("main: got %+v", main)
	}
	if want := "Stopped: essential container main exited"; side.Reason != want {
		t.Errorf("sidecar reason %q, want %q", side.Reason, want)
	}
	exitCode(t, side)
}

// Failures halfway through setup leave nothing behind (checked by newEnv).
func TestRunSetupFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		second jobs.ContainerDefinition
		want   string
		stats  Stats // the runtime's counts after
	}{
		{"create", jobs.ContainerDefinition{Name: "second", Command: []string{"true"}, WorkingDirectory: "relative"}, "create container second",
			Stats{ContainerStartFailures: 1}},
		{"start", jobs.ContainerDefinition{Name: "second", Command: []string{"/no/such/program"}}, "start container second",
			Stats{ContainersStarted: 1, ContainerStartFailures: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, WithDefaultStopTimeout(20*time.Second))
			no := false
			task := e.task(t,
				jobs.ContainerDefinition{Name: "first", Essential: &no, Command: []string{"sleep", "300"},
					MountPoints: []jobs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/scratch"}}},
				tt.second)
			task.Def.Volumes = []jobs.Volume{{Name: "scratch"}}
			start := time.Now()
			res, err := e.rt.Run(testCtx(t, time.Minute), task, &recordSink{})
			t.Logf("error after %v: %v", time.Since(start), err)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %+v, %v; want an error saying %q", res, err, tt.want)
			}
			if st := e.rt.Stats(); st != tt.stats {
				t.Errorf("Stats = %+v, want %+v", st, tt.stats)
			}
		})
	}
}

// TestRunImageRemovedSinceItsLastUse: the runtime remembers images it found
// and skips their inspect, so an image removed between two tasks is found
// out at create. The second task then fails as one whose image was never
// there, and once the image is back a third runs.
func TestRunImageRemovedSinceItsLastUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, time.Minute)
	var b [4]byte
	rand.Read(b[:])
	ref := "gantry-test/removed:" + hex.EncodeToString(b[:])
	tag := func() {
		t.Helper()
		if err := e.cli.ImageTag(ctx, e.image, ref); err != nil {
			t.Fatalf("tag %s: %v", ref, err)
		}
	}
	untag := func() {
		t.Helper()
		if _, err := e.cli.ImageRemove(context.Background(), ref, image.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Fatalf("untag %s: %v", ref, err)
		}
	}
	tag()
	t.Cleanup(untag)
	run := func() (*worker.Result, error) {
		task := e.task(t, jobs.ContainerDefinition{Name: "main", Image: ref, Command: []string{"true"}})
		return e.rt.Run(ctx, task, &recordSink{})
	}
	if res, err := run(); err != nil || exitCode(t, res.Containers[0]) != 0 {
		t.Fatalf("first run: %v, %v", res, err)
	}
	if !e.rt.images.has(ref) {
		t.Fatalf("%s is not remembered after a run", ref)
	}
	untag()
	_, err := run()
	want := fmt.Sprintf("image %q is not on this worker's host and the pull policy is never", ref)
	if !errors.Is(err, worker.ErrImageNotFound) || !strings.Contains(err.Error(), want) {
		t.Fatalf("after the image was removed: got %v, want ErrImageNotFound saying %q", err, want)
	}
	tag()
	if res, err := run(); err != nil || exitCode(t, res.Containers[0]) != 0 {
		t.Fatalf("after the image came back: %v, %v", res, err)
	}
}

// TestRunLeavesNoWaitBehind: a container whose exit the die event tells
// first leaves no goroutine of the Docker client waiting to hand over the
// wait's answer. Not parallel, so that no other test's waits are counted.
func TestRunLeavesNoWaitBehind(t *testing.T) {
	e := newEnv(t)
	no := false
	for range 3 {
		task := e.task(t,
			jobs.ContainerDefinition{Name: "early", Essential: &no, Command: []string{"true"}},
			jobs.ContainerDefinition{Name: "main", Command: sh("sleep 1")},
		)
		mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
	}
	waits := func() int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return strings.Count(string(buf), "(*Client).ContainerWait")
	}
	for end := time.Now().Add(30 * time.Second); waits() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d goroutines of ContainerWait left after the runs ended", waits())
		}
	}
}

// TestLeftoverCreatedContainerIsUnfinished: an attempt with a container
// created and never started (its worker stopped between the two) did not
// end: Leftovers says so, and the worker leaves its job to be redelivered
// instead of reporting a failure of an essential container.
func TestLeftoverCreatedContainerIsUnfinished(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, time.Minute)
	task := e.task(t)
	created, err := e.cli.ContainerCreate(ctx, &container.Config{Image: e.image, Cmd: []string{"true"},
		Labels: map[string]string{testLabel: e.label, LabelRun: task.RunID, LabelAttempt: "1", LabelContainer: "main"}},
		nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	found, err := e.rt.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || !found[0].Running || found[0].RunID != task.RunID || found[0].Containers[0].ExitCode != nil {
		t.Fatalf("leftovers %+v, want one unfinished attempt", found)
	}
	if err := e.rt.RemoveLeftover(ctx, found[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.ContainerInspect(ctx, created.ID); !cerrdefs.IsNotFound(err) {
		t.Fatalf("container still there: %v", err)
	}
}

// TestLeftoverKeepsTheAckSubject: the containers of an attempt keep the
// ack subject of its job delivery, which Leftovers gives back, so that the
// worker restarted after a crash can hand the job back.
func TestLeftoverKeepsTheAckSubject(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(testCtx(t, time.Minute))
	defer cancel()
	task := e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("sleep 300")})
	task.AckSubject = "$JS.ACK.GANTRY_JOBS.cluster_default.1.42.7.1712345678901234567.0"
	var found []worker.Leftover
	var lerr error
	task.Started = func([]jobs.ContainerResult) {
		found, lerr = e.rt.Leftovers(ctx)
		cancel()
	}
	if _, err := e.rt.Run(ctx, task, &recordSink{}); err != nil {
		t.Fatal(err)
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(found) != 1 || !found[0].Running || found[0].AckSubject != task.AckSubject {
		t.Fatalf("leftovers %+v, want the running attempt with ack subject %q", found, task.AckSubject)
	}
}

// TestLeftoverStagedAttempt: an attempt of a pipeline stage (the worker
// binds its stage directories) is labelled so, and found exited after a
// restart it is told apart: its outputs were never stored.
func TestLeftoverStagedAttempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t, time.Minute)
	task := e.task(t)
	task.Binds = []worker.Bind{{HostPath: t.TempDir(), ContainerPath: "/gantry/out"}}
	labels := e.rt.objectLabels(task)
	labels[testLabel], labels[LabelContainer] = e.label, "main"
	created, err := e.cli.ContainerCreate(ctx, &container.Config{Image: e.image, Cmd: []string{"true"}, Labels: labels}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := e.cli.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatal(err)
	}
	found, err := e.rt.Leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || !found[0].Staged || found[0].Running || found[0].Containers[0].ExitCode == nil {
		t.Fatalf("leftovers %+v, want one exited staged attempt", found)
	}
	if err := e.rt.RemoveLeftover(ctx, found[0]); err != nil {
		t.Fatal(err)
	}
}

// TestStartFailureAfterAContainerStarted: a task whose second container
// cannot start, the first one running, says so (worker.ErrSomeStarted):
// the worker must not take it for a task that never ran. One whose first
// container cannot start does not.
func TestStartFailureAfterAContainerStarted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t,
		jobs.ContainerDefinition{Name: "a", Command: sh("sleep 300")},
		jobs.ContainerDefinition{Name: "b", Command: []string{"/no/such/program"},
			DependsOn: []jobs.ContainerDep{{ContainerName: "a", Condition: jobs.DepStart}}})
	_, err := e.rt.Run(testCtx(t, time.Minute), task, &recordSink{})
	if err == nil || !errors.Is(err, worker.ErrSomeStarted) {
		t.Fatalf("Run: %v, want a start error wrapping worker.ErrSomeStarted", err)
	}
	first := e.task(t, jobs.ContainerDefinition{Name: "b", Command: []string{"/no/such/program"}})
	if _, err := e.rt.Run(testCtx(t, time.Minute), first, &recordSink{}); err == nil || errors.Is(err, worker.ErrSomeStarted) {
		t.Fatalf("Run of a task whose only container cannot start: %v, want a start error alone", err)
	}
}

// TestRunCommandNotInImage: a command the image does not have fails the
// start with a reason naming the command and the image, not the OCI
// runtime's chain of errors.
func TestRunCommandNotInImage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		command []string
		want    string
	}{
		{[]string{"python3", "-c", "print(1)"}, `start container main: command "python3" not found in image ` + sampletest.Image(t) + `: no such program in the image's $PATH; check the container's command and entryPoint`},
		{[]string{"/bin/bash", "-c", "true"}, `start container main: command "/bin/bash" not found in image ` + sampletest.Image(t) + `: no such file; check`},
	}
	for _, tt := range tests {
		t.Run(tt.command[0], func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			_, err := e.rt.Run(testCtx(t, time.Minute), e.task(t, jobs.ContainerDefinition{Name: "main", Command: tt.command}), &recordSink{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestRunMisspeltImageNamesTheNearOne: an image that is neither on the
// host nor pullable, whose name is a letter or two from one that is
// there, says which: a misspelt name, not the registry, is what to fix.
func TestRunMisspeltImageNamesTheNearOne(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The sample image, its repository misspelt (gantry/samples -> gantry/sampels).
	repo, tag, _ := strings.Cut(e.image, ":")
	misspelt := strings.Replace(repo, "samples", "sampels", 1) + ":" + tag
	for _, policy := range []worker.PullPolicy{worker.PullNever, worker.PullMissing} {
		task := e.task(t, jobs.ContainerDefinition{Name: "main", Image: misspelt, Command: []string{"true"}})
		task.PullPolicy = policy
		_, err := e.rt.Run(testCtx(t, 30*time.Second), task, &recordSink{})
		want := fmt.Sprintf("; did you mean %q, an image on this host?", e.image)
		if !errors.Is(err, worker.ErrImageNotFound) || !strings.HasSuffix(fmt.Sprint(err), want) {
			t.Errorf("policy %s: %v; want an image not found ending %q", policy, err, want)
		}
	}
}
