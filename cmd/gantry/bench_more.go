package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/storage"
	"github.com/gantry-dev/gantry/worker/docker"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

func benchStageHop(ctx context.Context, o *benchOpts) ([]benchResult, error) {
	stages := 50
	if o.quick {
		stages = 20
	}
	cli, img, err := benchDocker(ctx, o)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	// The runtime's create requests are timed as they leave: Docker's own
	// create event comes only once the daemon has made the container (its
	// file system, its network), which is the daemon's time, not gantry's.
	rec := &createTimes{Client: cli}
	st, err := startBenchStack(ctx, docker.New(rec, docker.WithLabels(map[string]string{benchLabel: nonce})), 4)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	var y strings.Builder
	fmt.Fprintf(&y, "name: bench-stage-hop\nstages:\n")
	for i := range stages {
		fmt.Fprintf(&y, "  - name: s%d\n", i)
		if i > 0 {
			fmt.Fprintf(&y, "    dependsOn: [s%d]\n", i-1)
		}
		fmt.Fprintf(&y, "    taskDefinition: {family: hop, containerDefinitions: [{name: main, image: %q, command: [\"true\"]}]}\n", img)
	}
	if _, _, err := st.client.ApplyPipeline(ctx, []byte(y.String())); err != nil {
		return nil, err
	}
	// The hop is read off the daemon's own events, followed live (its
	// history keeps only the last few hundred): from one stage's container
	// dying to the next stage's container being created.
	evctx, cancelEv := context.WithCancel(ctx)
	defer cancelEv()
	msgs, errs := cli.Events(evctx, events.ListOptions{
		Filters: filters.NewArgs(filters.Arg("type", "container"), filters.Arg("label", benchLabel+"="+nonce),
			filters.Arg("event", "create"), filters.Arg("event", "die")),
	})
	var creates, dies []int64
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for {
			select {
			case m := <-msgs:
				switch m.Action {
				case events.ActionCreate:
					creates = append(creates, m.TimeNano)
				case events.ActionDie:
					dies = append(dies, m.TimeNano)
				}
				if len(creates) == stages && len(dies) == stages {
					return
				}
			case <-errs:
				return
			}
		}
	}()
	pr, err := st.client.RunPipeline(ctx, "bench-stage-hop", nil)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	pr, err = st.client.WatchPipelineRun(wctx, pr.PipelineRunID, nil)
	if err != nil {
		return nil, err
	}
	if pr.Status != jobs.StatusSucceeded {
		return nil, fmt.Errorf("pipeline run %s ended %s", pr.PipelineRunID, pr.Status)
	}
	select {
	case <-collected:
	case <-time.After(10 * time.Second):
	}
	cancelEv()
	<-collected
	slices.Sort(creates)
	slices.Sort(dies)
	if len(creates) != stages || len(dies) != stages {
		return nil, fmt.Errorf("docker reported %d creates and %d dies for %d stages", len(creates), len(dies), stages)
	}
	requests := rec.sorted()
	if len(requests) != stages {
		return nil, fmt.Errorf("the runtime made %d create requests for %d stages", len(requests), stages)
	}
	hops := make([]time.Duration, 0, stages-1)    // die → the next create request
	toEvent := make([]time.Duration, 0, stages-1) // die → Docker's create event
	daemon := make([]time.Duration, 0, stages)    // create request → create event
	for i := 1; i < stages; i++ {
		hops = append(hops, time.Duration(requests[i]-dies[i-1]))
		toEvent = append(toEvent, time.Duration(creates[i]-dies[i-1]))
	}
	for i := range stages {
		daemon = append(daemon, time.Duration(creates[i]-requests[i]))
	}
	if os.Getenv("GANTRY_BENCH_DEBUG") != "" {
		runs, _, _ := st.client.List(ctx, client.ListOptions{All: true, Limit: 1000})
		slices.SortFunc(runs, func(a, b jobs.Run) int { return a.CreatedAt.Compare(b.CreatedAt) })
		for i := 1; i < stages && i < len(runs); i++ {
			fmt.Fprintf(o.progress, "hop %d: die→prevFinished %s, prevFinished→runCreated %s, runCreated→create request %s, create request→event %s\n", i,
				time.Duration(runs[i-1].FinishedAt.UnixNano()-dies[i-1]), runs[i].CreatedAt.Sub(*runs[i-1].FinishedAt),
				time.Duration(requests[i]-runs[i].CreatedAt.UnixNano()), time.Duration(creates[i]-requests[i]))
		}
	}
	return []benchResult{
		{Name: "stage-hop-p50", Value: ms(percentile(hops, 0.5)), Unit: "ms", N: stages, goal: goalHopP50},
		{Name: "stage-hop-p99", Value: ms(percentile(hops, 0.99)), Unit: "ms", N: stages, goal: goalHopP99},
		{Name: "stage-hop-to-create-event-p50", Value: ms(percentile(toEvent, 0.5)), Unit: "ms", N: stages},
		{Name: "stage-hop-docker-create-p50", Value: ms(percentile(daemon, 0.5)), Unit: "ms", N: stages},
	}, nil
}

// createTimes is the Docker client of the stage-hop benchmark: it records
// when each create request leaves.
type createTimes struct {
	docker.Client
	mu    sync.Mutex
	times []int64 // unix nanoseconds
}

func (c *createTimes) ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig,
	networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error) {
	c.mu.Lock()
	c.times = append(c.times, time.Now().UnixNano())
	c.mu.Unlock()
	return c.Client.ContainerCreate(ctx, config, hostConfig, networkingConfig, platform, containerName)
}

func (c *createTimes) sorted() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(slices.Values(c.times))
}

// Cron: the schedule engine (scheduler.Cron) with every schedule due each
// second, over an in-memory store and a firer that records the time of
// each fire. It measures the engine's lateness, not the runs it starts.
type benchCronStore struct {
	mu      sync.Mutex
	entries []scheduler.Entry
	last    map[string]time.Time
}

func (s *benchCronStore) Schedules(context.Context) ([]scheduler.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.entries)
	for i := range out {
		out[i].LastFire = s.last[out[i].Pipeline.Name]
	}
	return out, nil
}

func (s *benchCronStore) SetLastFire(_ context.Context, name string, t time.Time) error {
	s.mu.Lock()
	s.last[name] = t
	s.mu.Unlock()
	return nil
}

func (s *benchCronStore) ActiveRuns(context.Context, string) ([]jobs.PipelineRun, error) {
	return nil, nil
}

type benchFire struct {
	pipeline  string
	scheduled time.Time
	at        time.Time
}

type benchFirer struct {
	mu    sync.Mutex
	fires []benchFire
}

func (f *benchFirer) Fire(_ context.Context, p string, scheduled time.Time) (*jobs.PipelineRun, error) {
	now := time.Now()
	f.mu.Lock()
	f.fires = append(f.fires, benchFire{p, scheduled, now})
	f.mu.Unlock()
	return &jobs.PipelineRun{PipelineRunID: "pr-bench"}, nil
}

func (f *benchFirer) StopPipelineRun(context.Context, string, string) error { return nil }

func benchCron(ctx context.Context, o *benchOpts) ([]benchResult, error) {
	n, window := 10_000, 10*time.Second
	// For --report, the engine with fewer schedules and with more than the
	// target's too.
	sizes := []int{1_000, 3_000, n, 30_000}
	if o.quick {
		n, window = 2_000, 5*time.Second
		sizes = []int{500, 1_000, n}
	}
	res := cronAt(ctx, n, window)
	if o.report == "" {
		return res, nil
	}
	s := scaleSeries{name: "cron", title: "Cron as schedules grow (each due every second)", cols: []scaleCol{
		{head: "lateness p50 ms", format: "%.1f"},
		{head: "lateness p99 ms", format: "%.1f", chart: "p99", title: "cron: ms late at p99 by schedules (N)"},
		{head: "missed fires", format: "%.0f"},
		{head: "doubled fires", format: "%.0f"},
	}}
	for _, m := range sizes {
		r := res
		if m != n {
			fmt.Fprintf(o.progress, "bench: cron scaling: %d schedules ...\n", m)
			r = cronAt(ctx, m, window)
		}
		s.rows = append(s.rows, scaleRow{n: m, v: []float64{named(r, "cron-lateness-p50").Value, named(r, "cron-lateness-p99").Value,
			named(r, "cron-missed").Value, named(r, "cron-doubled").Value}})
	}
	o.series = append(o.series, s)
	return res, nil
}

// cronAt runs the engine with n schedules, every one due each second, for
// window: its p99 and p50 lateness, and the fires it missed and doubled.
func cronAt(ctx context.Context, n int, window time.Duration) []benchResult {
	created := time.Now().Truncate(time.Second).Add(time.Second)
	store := &benchCronStore{last: map[string]time.Time{}}
	for i := range n {
		store.entries = append(store.entries, scheduler.Entry{Pipeline: &jobs.Pipeline{
			Name: fmt.Sprintf("s%05d", i), CreatedAt: created,
			Schedule: &jobs.Schedule{Cron: "* * * * * *"}}})
	}
	firer := &benchFirer{}
	c := scheduler.NewCron(store, firer)
	cctx, cancel := context.WithTimeout(ctx, time.Until(created)+window+500*time.Millisecond)
	defer cancel()
	c.Run(cctx)
	end := created.Add(window)
	seen := map[string]int{}
	var late []time.Duration
	doubled := 0
	for _, f := range firer.fires {
		if f.scheduled.After(end) {
			continue
		}
		key := f.pipeline + f.scheduled.String()
		if seen[key]++; seen[key] > 1 {
			doubled++
		}
		late = append(late, f.at.Sub(f.scheduled))
	}
	want := n * int(window/time.Second)
	missed := max(0, want-(len(late)-doubled))
	return []benchResult{
		{Name: "cron-lateness-p99", Value: ms(percentile(late, 0.99)), Unit: "ms", Baseline: "the scheduled times", N: n, goal: goalCronP99},
		{Name: "cron-lateness-p50", Value: ms(percentile(late, 0.5)), Unit: "ms", N: n},
		{Name: "cron-missed", Value: float64(missed), Unit: "fires", N: want, goal: goalZero},
		{Name: "cron-doubled", Value: float64(doubled), Unit: "fires", N: want, goal: goalZero},
	}
}

// benchMemory measures the resident memory of real gantry processes: a
// server over a store with many recorded runs, idle and busy, and a worker
// idle and with eight running tasks.
func benchMemory(ctx context.Context, o *benchOpts) ([]benchResult, error) {
	runs := 1_000_000
	if o.quick {
		runs = 100_000
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gantry-bench-mem")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	base := time.Now().Add(-time.Duration(runs) * time.Second)
	// For --report, the same at a hundredth and a tenth of the runs, each
	// in stores of its own, filled first: see memoryPart.
	var parts []memoryPart
	if o.report != "" {
		for _, n := range []int{runs / 100, runs / 10} {
			part, err := fillMemoryPart(ctx, o, self, dir, base, n)
			if err != nil {
				return nil, err
			}
			parts = append(parts, part)
		}
	}
	if err := fillStore(ctx, filepath.Join(dir, "gantry.db"), base, runs, o); err != nil {
		return nil, err
	}
	// The same runs as if they had all ended within the last week: the
	// embedded NATS server still holds each one's status events and claim
	// (kept 7 days), and indexes every run's subjects in memory. Stored
	// apart, for the second server, and first: see weekServer.
	weekStore := filepath.Join(dir, "week")
	if err := fillRetained(ctx, weekStore, base, runs, o); err != nil {
		return nil, err
	}
	filled := time.Now()
	port, err := benchFreePort()
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	server, serverRSS, err := startMemoryServer(ctx, self, dir, port)
	if err != nil {
		return nil, err
	}
	defer func() { server.Process.Signal(os.Interrupt); server.Wait() }()

	cli, img, err := benchDocker(ctx, o)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	wk := exec.CommandContext(ctx, self, "worker", "--nats", url, "--id", "bench-mem-"+nonce, "--slots", "8",
		"--container-label", benchLabel+"="+nonce, "--log-level", "warn", "--grace", "1s")
	if err := wk.Start(); err != nil {
		return nil, err
	}
	defer func() { wk.Process.Signal(os.Interrupt); wk.Wait() }()
	time.Sleep(3 * time.Second) // settle: the worker's start-up work is done
	idle, err := rssMiB(wk.Process.Pid)
	if err != nil {
		return nil, err
	}
	var ids []string
	for range 8 {
		out, err := exec.CommandContext(ctx, self, "run", "-d", "--nats", url, "--image", img, "--", "sleep", "60").Output()
		if err != nil {
			return nil, fmt.Errorf("submit: %w", err)
		}
		ids = append(ids, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out, _ := exec.CommandContext(ctx, self, "ps", "--status", "RUNNING", "-o", "json", "--nats", url).Output()
		var rs []jobs.Run
		if json.Unmarshal(out, &rs) == nil && len(rs) == 8 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	busy, err := rssMiB(wk.Process.Pid)
	if err != nil {
		return nil, err
	}
	exec.CommandContext(ctx, self, append([]string{"stop", "--nats", url}, ids...)...).Run()
	// Both go before the second server starts on the same store; their
	// deferred stops, for the early returns, then find them gone.
	wk.Process.Signal(os.Interrupt)
	wk.Wait()
	server.Process.Signal(os.Interrupt)
	server.Wait()

	week, err := weekServer(ctx, o, self, dir, weekStore, filled, port)
	if err != nil {
		return nil, err
	}
	if o.report != "" {
		var recorded, inWeek []scaleRow
		for _, part := range parts {
			fmt.Fprintf(o.progress, "bench: memory: the week's server with %d runs ...\n", part.n)
			w, err := weekServer(ctx, o, self, part.dir, filepath.Join(part.dir, "week"), part.filled, port)
			if err != nil {
				return nil, err
			}
			recorded = append(recorded, scaleRow{n: part.n, v: []float64{part.rss}})
			inWeek = append(inWeek, scaleRow{n: part.n, v: []float64{w.idle, w.busy}})
		}
		o.series = append(o.series, scaleSeries{name: "memory-server", title: "Server memory as its recorded runs grow",
			cols: []scaleCol{{head: "MiB", format: "%.1f", chart: "rss", title: "memory-server: resident MiB by recorded runs (N)"}},
			rows: append(recorded, scaleRow{n: runs, v: []float64{serverRSS}})})
		o.series = append(o.series, scaleSeries{name: "memory-server-week",
			title: "Server memory as its runs ended within the week grow",
			cols: []scaleCol{
				{head: "MiB at rest", format: "%.1f", chart: "rss", title: "memory-server-week: resident MiB by runs within the week (N)"},
				{head: fmt.Sprintf("MiB at most through %d submissions", weekLoad), format: "%.1f", chart: "busy",
					title: "memory-server-week-busy: most resident MiB by runs within the week (N)"},
			},
			rows: append(inWeek, scaleRow{n: runs, v: []float64{week.idle, week.busy}})})
	}
	return []benchResult{
		{Name: "memory-server", Value: serverRSS, Unit: "MiB", N: runs, goal: goalServerMemory},
		{Name: "memory-server-week", Value: week.idle, Unit: "MiB", N: runs, goal: goalServerMemory},
		{Name: "memory-server-week-busy", Value: week.busy, Unit: "MiB", N: runs, goal: goalServerMemory},
		{Name: "memory-worker-idle", Value: idle, Unit: "MiB", goal: goalWorkerIdle},
		{Name: "memory-worker-8-tasks", Value: busy, Unit: "MiB", N: 8},
	}, nil
}

// weekRSS is what weekServer measured, in MiB.
type weekRSS struct{ idle, busy float64 }

// weekLoad is how many runs weekServer submits to the week's server.
const weekLoad = 50_000

// weekServer moves the week's JetStream store (filled at filled) under
// dir, starts a server over it and measures its resident memory: idle, and
// the most it reaches (sampled every 100 ms) while it takes weekLoad
// submissions as fast as it can (no worker takes their jobs).
//
// A week's runs reach JetStream over the week; the benchmark stores them
// in a minute. A NATS server that starts within a stream's duplicate
// window (2 minutes) of its messages reads them all to rebuild the window,
// and keeps each block's subject index it read for 2 minutes more: about
// 150 MB of a million runs that a server a week into its runs does not
// hold. So the full suite starts the week's server once the duplicate
// window of the fill has passed. --quick (100k runs, a tenth of it) does
// not wait.
func weekServer(ctx context.Context, o *benchOpts, self, dir, weekStore string, filled time.Time, port int) (weekRSS, error) {
	js := filepath.Join(dir, "jetstream")
	if err := os.RemoveAll(js); err != nil {
		return weekRSS{}, err
	}
	if err := os.Rename(weekStore, js); err != nil {
		return weekRSS{}, err
	}
	if wait := time.Until(filled.Add(queue.EventsDuplicateWindow + 10*time.Second)); wait > 0 && !o.quick {
		fmt.Fprintf(o.progress, "bench: memory: %s until the week's messages are past the duplicate window\n", wait.Round(time.Second))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return weekRSS{}, ctx.Err()
		}
	}
	server, idle, err := startMemoryServer(ctx, self, dir, port)
	if err != nil {
		return weekRSS{}, err
	}
	defer func() { server.Process.Signal(os.Interrupt); server.Wait() }()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		return weekRSS{}, err
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		return weekRSS{}, err
	}
	req := &jobs.SubmitRequest{TaskDefinition: benchTaskDef()}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range 64 {
		g.Go(func() error {
			for next.Add(1) <= weekLoad {
				if _, err := c.Submit(gctx, req); err != nil {
					return fmt.Errorf("submit to the week's server: %w", err)
				}
			}
			return nil
		})
	}
	submitted := make(chan error, 1)
	go func() { submitted <- g.Wait() }()
	var (
		busy    float64
		readErr error
	)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		var err error
		select {
		case err = <-submitted:
			done = true
		case <-tick.C:
		}
		rss, rerr := rssMiB(server.Process.Pid)
		busy, readErr = max(busy, rss), cmp.Or(readErr, rerr)
		if err != nil {
			return weekRSS{}, err
		}
	}
	return weekRSS{idle: idle, busy: busy}, readErr
}

// startMemoryServer starts a server with embedded NATS over dir, uses it
// as a user would (lists the newest and the failed runs) and returns it
// with its resident memory in MiB.
func startMemoryServer(ctx context.Context, self, dir string, port int) (*exec.Cmd, float64, error) {
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	server := exec.CommandContext(ctx, self, "server", "--embedded-nats", "--nats-port", strconv.Itoa(port), "--data", dir, "--log-level", "warn")
	if os.Getenv("GANTRY_BENCH_DEBUG") != "" { // the server's collector at work
		server.Stderr = os.Stderr
		server.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	}
	if err := server.Start(); err != nil {
		return nil, 0, err
	}
	rss, err := func() (float64, error) {
		if err := waitAnswer(ctx, self, append(os.Environ(), "GANTRY_NATS_URL="+url)); err != nil {
			return 0, err
		}
		for range 20 {
			exec.CommandContext(ctx, self, "ps", "--all", "--nats", url).Run()
			exec.CommandContext(ctx, self, "ps", "--status", "FAILED", "--nats", url).Run()
		}
		return rssMiB(server.Process.Pid)
	}()
	if err != nil {
		server.Process.Signal(os.Interrupt)
		server.Wait()
		return nil, 0, err
	}
	return server, rss, nil
}

// fillRetained leaves in the JetStream store under storeDir what n runs
// that ended within the week leave there, as fillStore recorded them: each
// run's QUEUED and final status on its event subject and its worker's
// claim. The store must not be in use.
func fillRetained(ctx context.Context, storeDir string, base time.Time, n int, o *benchOpts) error {
	ns, err := embedded.Start(embedded.Options{StoreDir: storeDir})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := queue.Dial(ctx, queue.ConnOptions{URL: ns.ClientURL(), Name: "bench-memory-fill", InProcess: ns})
	if err != nil {
		return err
	}
	defer nc.Close()
	q, err := queue.New(nc)
	if err != nil {
		return err
	}
	if err := q.EnsureStreams(ctx); err != nil {
		return err
	}
	ids := make(chan int, 1024)
	errc := make(chan error, 1)
	fillCtx, stop := context.WithCancel(ctx)
	defer stop()
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		stop() // the loop that feeds ids must not wait for workers that are gone
	}
	var wg sync.WaitGroup
	for range 128 {
		wg.Go(func() {
			for i := range ids {
				id, t, end, code := recordedRun(base, i)
				for _, ev := range []*jobs.Event{
					{RunID: id, Attempt: 1, Status: jobs.StatusQueued, Source: jobs.SourceServer, Time: t},
					{RunID: id, Attempt: 1, Status: end, Source: jobs.SourceServer, Worker: "w1", Time: t, ExitCode: &code},
				} {
					if err := publishStalled(fillCtx, q, ev); err != nil {
						fail(err)
						return
					}
				}
				claim := fmt.Appendf(nil, `{"attempt":1,"worker":"w1","time":%q,"job":1,"seq":%d}`, t.UTC().Format(time.RFC3339Nano), i+1)
				if _, err := q.PutClaim(ctx, id, claim, 0); err != nil {
					fail(err)
					return
				}
			}
		})
	}
feed:
	for i := range n {
		if i%100_000 == 0 && i > 0 {
			fmt.Fprintf(o.progress, "bench: memory: %d/%d runs' events and claims stored\n", i, n)
		}
		select {
		case ids <- i:
		case <-fillCtx.Done():
			break feed
		}
	}
	close(ids)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	select {
	case <-q.JetStream().PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("store the runs' events and claims: %w", err)
	default:
		return nil
	}
}

// publishStalled publishes ev without waiting for its acknowledgement,
// but waits for those outstanding when the client has too many (a busy
// machine acknowledges slowly), and tries again.
func publishStalled(ctx context.Context, q *queue.Queue, ev *jobs.Event) error {
	for {
		_, err := q.PublishEventAsync(ev)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		select {
		case <-q.JetStream().PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// recordedRun is the i-th of the memory benchmark's runs: its id, its
// time (i seconds after base), how it ended and its exit code.
func recordedRun(base time.Time, i int) (id string, at time.Time, end jobs.Status, code int) {
	end, code = jobs.StatusSucceeded, i%7
	if code != 0 {
		end = jobs.StatusFailed
	}
	return fmt.Sprintf("01bench%019d", i), base.Add(time.Duration(i) * time.Second), end, code
}

// memoryPart is the memory benchmark at a smaller N, for --report: its own
// store of n recorded runs, over which a server was measured, and its own
// week's JetStream store (filled at filled) for weekServer. It is filled
// before the whole benchmark's stores, so that its week is past the
// duplicate window when it is measured, after the whole benchmark's; and
// kept apart, so that neither server finds the other's submissions.
type memoryPart struct {
	n      int
	dir    string
	rss    float64 // MiB, a server over the recorded runs
	filled time.Time
}

func fillMemoryPart(ctx context.Context, o *benchOpts, self, dir string, base time.Time, n int) (memoryPart, error) {
	part := memoryPart{n: n, dir: filepath.Join(dir, fmt.Sprintf("part-%d", n))}
	if err := os.MkdirAll(part.dir, 0o755); err != nil {
		return part, err
	}
	if err := fillStore(ctx, filepath.Join(part.dir, "gantry.db"), base, n, o); err != nil {
		return part, err
	}
	rss, err := memoryServerOnce(ctx, self, part.dir)
	if err != nil {
		return part, err
	}
	fmt.Fprintf(o.progress, "bench: memory: a server over %d runs: %.1f MiB\n", n, rss)
	part.rss = rss
	if err := fillRetained(ctx, filepath.Join(part.dir, "week"), base, n, o); err != nil {
		return part, err
	}
	part.filled = time.Now()
	return part, nil
}

// memoryServerOnce starts a server over the store in dir, as
// startMemoryServer does, and stops it: its resident size, in MiB.
func memoryServerOnce(ctx context.Context, self, dir string) (float64, error) {
	port, err := benchFreePort()
	if err != nil {
		return 0, err
	}
	server, rss, err := startMemoryServer(ctx, self, dir, port)
	if err != nil {
		return 0, err
	}
	server.Process.Signal(os.Interrupt)
	return rss, server.Wait()
}

// fillStore records n finished runs straight into a new store.
func fillStore(ctx context.Context, path string, base time.Time, n int, o *benchOpts) error {
	db, err := storage.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	td := jobs.TaskDefinition{Family: "bench", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "gantry/samples:latest", Command: []string{"true"}}}}
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	sem := make(chan struct{}, 512)
	for i := range n {
		if i%100_000 == 0 && i > 0 {
			fmt.Fprintf(o.progress, "bench: memory: %d/%d runs recorded\n", i, n)
		}
		id, t, status, code := recordedRun(base, i)
		zero := 0
		r := &jobs.Run{RunID: id, Status: status, ExitCode: &code, TaskDefinition: "bench",
			Cluster: "default", Worker: "w1", CreatedAt: t, StartedAt: &t, FinishedAt: &t,
			Attempts:   []jobs.Attempt{{Attempt: 1, Worker: "w1", Status: status, ExitCode: &code, CreatedAt: t, StartedAt: &t, FinishedAt: &t}},
			Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &zero}}, Spec: jobs.RunSpec{Task: td}}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, _, err := db.CreateRun(ctx, r); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func rssMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}

func waitAnswer(ctx context.Context, self string, env []string) error {
	for range 200 {
		cmd := exec.CommandContext(ctx, self, "ps")
		cmd.Env = env
		if cmd.Run() == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the benchmark's server did not answer")
}

func benchFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
