package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerclient "github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/samples"
	"github.com/gantry-dev/gantry/worker/docker"
	"github.com/nats-io/nats.go"
)

const benchLabel = "gantry.bench"

// benchDocker connects to Docker and builds the sample image once.
func benchDocker(ctx context.Context, o *benchOpts) (*dockerclient.Client, string, error) {
	cli, err := docker.NewClient()
	if err != nil {
		return nil, "", err
	}
	if _, err := cli.Ping(ctx); err != nil {
		return nil, "", fmt.Errorf("cannot reach the Docker daemon at %s: %w", cli.DaemonHost(), err)
	}
	img, err := samples.BuildImage(ctx, cli, io.Discard)
	if errors.Is(err, samples.ErrNoSource) {
		img, err = builtBefore(ctx, cli, samples.Image, err, o.progress)
	}
	if err != nil {
		cli.Close()
		return nil, "", err
	}
	return cli, img, nil
}

// builtBefore is the samples image away from the gantry source, where it
// cannot be built: image, if an earlier build (make images) left it.
func builtBefore(ctx context.Context, cli *dockerclient.Client, image string, buildErr error, progress io.Writer) (string, error) {
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		return "", fmt.Errorf("the Docker benchmarks need the image %s: run gantry bench (or make images) once from a checkout of github.com/gantry-dev/gantry (%v)", image, buildErr)
	}
	fmt.Fprintf(progress, "bench: no gantry source here to build the samples image from; using the existing %s\n", image)
	return image, nil
}

func adhoc(image string, cmd ...string) *jobs.SubmitRequest {
	td, _ := json.Marshal(jobs.TaskDefinition{Family: "bench", ContainerDefinitions: []jobs.ContainerDefinition{
		{Name: "main", Image: image, Command: cmd}}})
	return &jobs.SubmitRequest{TaskDefinition: td}
}

// waitRuns counts the runs that end, by the server's events.
func waitRuns(nc *nats.Conn) (wait func(n int, timeout time.Duration) error, stop func()) {
	var count atomic.Int64
	wake := make(chan struct{}, 1)
	sub, _ := nc.Subscribe("gantry.events.runs.*", func(m *nats.Msg) {
		if !queue.FromServer(m.Header) {
			return
		}
		var ev jobs.Event
		if json.Unmarshal(m.Data, &ev) == nil && ev.Status.Terminal() {
			count.Add(1)
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	return func(n int, timeout time.Duration) error {
			deadline := time.After(timeout)
			for count.Load() < int64(n) {
				select {
				case <-wake:
				case <-deadline:
					return fmt.Errorf("%d of %d runs ended in %s", count.Load(), n, timeout)
				}
			}
			return nil
		}, func() {
			sub.Unsubscribe()
		}
}

func benchContainers(ctx context.Context, o *benchOpts) ([]benchResult, error) {
	m, k, rounds := 200, 4, 4
	if o.quick {
		m, rounds = 40, 2
	}
	cli, img, err := benchDocker(ctx, o)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	st, err := startBenchStack(ctx, docker.New(cli, docker.WithLabels(map[string]string{benchLabel: "1"})), k)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	wait, stop := waitRuns(st.nc)
	defer stop()

	// The daemon's speed drifts from one minute to the next: the baseline
	// and gantry take turns, a share of the containers each round, and each
	// rate is its containers over its total time.
	var baseTook, took time.Duration
	ended := 0
	for round := range rounds {
		n := m/rounds + min(1, max(0, m%rounds-round)) // spread the remainder
		// Baseline: k goroutines create, start, wait and remove n containers.
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for range k {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					if err := dockerRunOnce(ctx, cli, img, nil, "true"); err != nil {
						firstErr.Store(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			return nil, err
		}
		baseTook += time.Since(start)

		// Gantry: the same number submitted at once, k slots.
		start = time.Now()
		for range n {
			if _, err := st.client.Submit(ctx, adhoc(img, "true")); err != nil {
				return nil, err
			}
		}
		ended += n
		if err := wait(ended, 10*time.Minute); err != nil {
			return nil, err
		}
		took += time.Since(start)
		fmt.Fprintf(o.progress, "bench: containers: round %d of %d: %d containers so far, %s through the Docker API, %s through gantry\n",
			round+1, rounds, ended, baseTook.Round(time.Millisecond), took.Round(time.Millisecond))
	}
	rate, base := float64(m)/took.Seconds(), float64(m)/baseTook.Seconds()
	return []benchResult{{Name: "containers", Value: rate, Unit: "containers/s", Baseline: "Docker API create+start+wait+remove",
		BaselineValue: base, N: m, goal: goalContainers}}, nil
}

// dockerRunOnce runs one container to its end through the Docker API, as
// `docker run --rm` does, copying its output to out when out is not nil.
func dockerRunOnce(ctx context.Context, cli *dockerclient.Client, img string, out io.Writer, cmd ...string) error {
	created, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: cmd, Labels: map[string]string{benchLabel: "1"},
		AttachStdout: out != nil, AttachStderr: out != nil}, nil, nil, nil, "")
	if err != nil {
		return err
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, container.RemoveOptions{Force: true})
	var copied chan error
	if out != nil {
		att, err := cli.ContainerAttach(ctx, created.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
		if err != nil {
			return err
		}
		defer att.Close()
		copied = make(chan error, 1)
		go func() { _, err := stdcopy.StdCopy(out, io.Discard, att.Reader); copied <- err }()
	}
	waitC, errC := cli.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return err
	}
	select {
	case <-waitC:
	case err := <-errC:
		return err
	}
	if copied != nil {
		return <-copied
	}
	return nil
}

func benchSingleRun(ctx context.Context, o *benchOpts) ([]benchResult, error) {
	n := 20
	if o.quick {
		n = 7
	}
	cli, img, err := benchDocker(ctx, o)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	st, err := startBenchStack(ctx, docker.New(cli, docker.WithLabels(map[string]string{benchLabel: "1"})), 4)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	// The baseline is `docker run --rm` where the docker CLI is installed,
	// the same calls through the API otherwise.
	baseline, baseName := func() error { return dockerRunOnce(ctx, cli, img, io.Discard, "true") }, "Docker API create+attach+start+wait+remove"
	if path, err := exec.LookPath("docker"); err == nil {
		baseline, baseName = func() error {
			return exec.CommandContext(ctx, path, "run", "--rm", "--label", benchLabel+"=1", img, "true").Run()
		}, "docker run --rm"
	}
	gantry := func() error {
		cmd := exec.CommandContext(ctx, self, "run", "--image", img, "--", "true")
		cmd.Env = append(os.Environ(), "GANTRY_NATS_URL="+st.url)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("gantry run: %v: %s", err, errb.String())
		}
		return nil
	}
	var g, b []time.Duration
	for i := range n + 1 { // the first of each warms caches and is dropped
		for _, f := range []struct {
			fn  func() error
			out *[]time.Duration
		}{{baseline, &b}, {gantry, &g}} {
			t := time.Now()
			if err := f.fn(); err != nil {
				return nil, err
			}
			if i > 0 {
				*f.out = append(*f.out, time.Since(t))
			}
		}
	}
	return []benchResult{{Name: "single-run", Value: ms(percentile(g, 0.5)), Unit: "ms", Baseline: baseName,
		BaselineValue: ms(percentile(b, 0.5)), N: n, goal: goalSingleRun}}, nil
}

func benchLogs(ctx context.Context, o *benchOpts) ([]benchResult, error) {
	mib, pairs := 100, 3
	if o.quick {
		mib, pairs = 20, 1
	}
	cli, img, err := benchDocker(ctx, o)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	st, err := startBenchStack(ctx, docker.New(cli, docker.WithLabels(map[string]string{benchLabel: "1"})), 4)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	lp := logsPairs{cli: cli, img: img, st: st, progress: o.progress}
	took, base, exact, err := lp.run(ctx, mib, pairs)
	if err != nil {
		return nil, err
	}
	res := []benchResult{{Name: "logs", Value: took, Unit: "ms", Baseline: "Docker API attach",
		BaselineValue: base, N: mib, goal: goalLogs}}
	exactV := 0.0
	if exact {
		exactV = 1
	}
	res = append(res, benchResult{Name: "logs-byte-exact", Value: exactV, Unit: "bool", N: mib, goal: goalByteExact})
	if !exact {
		return res, fmt.Errorf("logs: what gantry delivered differs from the container's output")
	}
	if o.report != "" {
		// Smaller outputs too, for the report: what a run's start and end
		// cost against its lines.
		s := scaleSeries{name: "logs", title: "Logs as the output grows (MiB)", cols: []scaleCol{
			{head: "gantry ms", format: "%.0f"},
			{head: "Docker API ms", format: "%.0f"},
			{head: "ratio", format: "%.2f", chart: "ratio", title: "logs: gantry's time over the Docker API's by MiB (N)"},
		}}
		for _, m := range []int{mib / 100, mib / 10} {
			m = max(m, 1)
			fmt.Fprintf(o.progress, "bench: logs scaling: %d MiB ...\n", m)
			took, base, exact, err := lp.run(ctx, m, pairs)
			if err != nil {
				return nil, err
			}
			if !exact {
				return res, fmt.Errorf("logs: %d MiB: what gantry delivered differs from the container's output", m)
			}
			s.rows = append(s.rows, scaleRow{n: m, v: []float64{took, base, took / base}})
		}
		s.rows = append(s.rows, scaleRow{n: mib, v: []float64{took, base, took / base}})
		o.series = append(o.series, s)
	}
	return res, nil
}

// logsPairs follows a container's output through gantry and through the
// Docker API, in turns.
type logsPairs struct {
	cli      *dockerclient.Client
	img      string
	st       *benchStack
	progress io.Writer
}

// run takes pairs turns of a container writing mib MiB of lines: the
// median milliseconds until gantry's follower, and the Docker API's, have
// all of it, and whether gantry's was byte-exact each time.
func (lp logsPairs) run(ctx context.Context, mib, pairs int) (took, base float64, exact bool, err error) {
	const width = 100 // bytes a line without its newline
	// One line in a hundred ends in a byte that is not UTF-8 (Latin-1's
	// "é"), as legacy tools' output does: byte-exact must hold for those
	// too, which the logs carry apart (LogLine's raw).
	const latin1Every = 100
	cmd := []string{"lines", strconv.Itoa(mib << 20 / (width + 1)), strconv.Itoa(width), strconv.Itoa(latin1Every)}
	// The daemon's speed drifts from one minute to the next: baseline and
	// gantry take turns, and each figure is the median of its runs.
	var bases, tooks []time.Duration
	exact = true
	for range pairs {
		// Baseline: follow the container's output through the Docker API.
		baseSum := sha256.New()
		start := time.Now()
		if err := dockerRunOnce(ctx, lp.cli, lp.img, baseSum, cmd...); err != nil {
			return 0, 0, false, err
		}
		bases = append(bases, time.Since(start))

		start = time.Now()
		r, err := lp.st.client.Submit(ctx, adhoc(lp.img, cmd...))
		if err != nil {
			return 0, 0, false, err
		}
		// What gantry logs -f prints, as it prints it (its line printer).
		sum := sha256.New()
		pr := newLinePrinter(sum, io.Discard, false)
		if err := lp.st.client.Logs(ctx, r.RunID, client.LogOptions{Follow: true}, pr.batch); err != nil {
			return 0, 0, false, err
		}
		if err := pr.flush(); err != nil {
			return 0, 0, false, err
		}
		tooks = append(tooks, time.Since(start))
		exact = exact && slices.Equal(sum.Sum(nil), baseSum.Sum(nil))
		fmt.Fprintf(lp.progress, "bench: logs: Docker API %s, gantry %s\n", bases[len(bases)-1].Round(time.Millisecond), tooks[len(tooks)-1].Round(time.Millisecond))
	}
	return ms(percentile(tooks, 0.5)), ms(percentile(bases, 0.5)), exact, nil
}
