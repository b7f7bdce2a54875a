package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/storage"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/workerq"
	gojson "github.com/goccy/go-json"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// benchResult is one line of `gantry bench --json`.
type benchResult struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baselineValue"`
	Ratio         float64 `json:"ratio"`
	N             int     `json:"n"`
	Target        string  `json:"target,omitempty"`
	// Met says whether the figure meets its target; absent when it has
	// none, or when N is below the target's scale (--quick).
	Met *bool `json:"met,omitempty"`

	goal *goal // the target, if any (bench_goal.go)
}

type benchOpts struct {
	quick, asJSON bool
	runs          int // control-plane's N; 0: by --quick
	only          []string
	cpuProfile    string
	memProfile    string
	report        string
	out, progress io.Writer
	// series are the figures by N that benchmarks measured for --report.
	series []scaleSeries
}

// benchmark is one entry of the suite.
type benchmark struct {
	name string
	run  func(ctx context.Context, o *benchOpts) ([]benchResult, error)
}

var benchmarks = []benchmark{
	{"control-plane", benchControlPlane},
	{"containers", benchContainers},
	{"single-run", benchSingleRun},
	{"logs", benchLogs},
	{"stage-hop", benchStageHop},
	{"cron", benchCron},
	{"memory", benchMemory},
}

func newBenchCmd() *cobra.Command {
	o := &benchOpts{}
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure gantry against the raw substrate (JetStream, the Docker API) on this machine",
		Long: `bench runs each benchmark and its baseline in the same process, on the same
machine, and prints gantry's figure, the baseline's and their ratio (gantry's
figure / the baseline's). Machines are noisy: compare ratios, not figures.
MET says whether a figure meets its target, judged only at the scale the
target is set for ("-" for the control plane's rate, cron's lateness and the
server's memory under --quick); --json gives it as "met". Memory is measured
in MiB against targets in MB, and the target says both.

  control-plane  runs submitted by 128 clients at once → queued → taken by a
                 worker whose runtime ends at once (benchInstantRuntime, used
                 only here) → SUCCEEDED;
                 baseline: publish, pull and ack the same number of messages;
                 control-plane-vs-messages: against a program that sends each
                 run's NATS messages (request, job, statuses, claim, acks)
                 and does nothing else; control-plane-cpu: the process's CPU
                 time per run against that program's, steadier than runs/s
                 on a busy machine
  containers     trivial containers through gantry vs the Docker API directly,
                 in rounds taken in turn
  single-run     an attached run of a trivial container vs create/start/wait/remove
  logs           a container's output followed through gantry, printed as
                 gantry logs -f prints it, vs the Docker API; the median of
                 pairs taken in turn; one line in a hundred is not UTF-8
                 (Latin-1), and logs-byte-exact compares checksums
  stage-hop      a pipeline of sequential trivial stages: from one stage's
                 container dying (Docker's die event) to gantry's create request
                 for the next; the daemon's own create time is shown beside it
  cron           the schedule engine with thousands of schedules due each second
                 (in-memory store, recording firer): lateness, missed, doubled
  memory         resident memory of a server over many recorded runs (memory-server:
                 runs older than a week, so its embedded NATS holds nothing of
                 them; memory-server-week: the same runs ended within the week,
                 their status events and claims still in NATS; -busy: the most
                 that server takes while 50,000 runs are submitted to it as
                 fast as it takes them),
                 and of a worker idle and with eight running tasks; the full
                 suite waits 2 minutes for the week's messages to leave the
                 streams' duplicate window, as a week's runs would have

--report DIR writes BENCHMARKS.md there: every figure, and tables and SVG
charts of how some grow with N, for which it runs them at other sizes too:
the control plane at 10k, 100k and 1M runs (and control-plane-cpu-growth,
its CPU a run at 1M against 10k: the target's "cost per run flat"; and
control-plane-cpu-growth-vs-messages, the same for its CPU a run over the
messages-only program's, which takes out what the NATS server's own cost
a message gains with the subjects it keeps); the
server's memory over a
hundredth and a tenth of its recorded runs, and with a hundredth and a
tenth of them ended within the week (idle and busy); cron with 1,000, 3,000 and
30,000 schedules; logs of 1 and 10 MiB (smaller under --quick).

Docker benchmarks build the local image gantry/samples first, which needs Go
and the gantry source (run from a checkout); elsewhere they use a
gantry/samples:latest built before (make images) and say so.`,
		Example: `  gantry bench --quick
  gantry bench --only control-plane --json
  gantry bench --only control-plane --runs 1000000 --cpuprofile cp.prof
  gantry bench --report docs/bench     # Markdown and SVG charts`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			o.out, o.progress = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if o.runs < 0 {
				return jobs.Invalid(fmt.Sprintf("--runs %d: give a positive number of runs", o.runs))
			}
			// The in-process server runs as `gantry up` does; the baselines
			// share the process, and so the setting.
			tuneServerGC(cmd.Context())
			if o.cpuProfile != "" {
				f, err := os.Create(o.cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			for _, name := range o.only {
				if !slices.ContainsFunc(benchmarks, func(b benchmark) bool { return b.name == name }) {
					return fmt.Errorf("--only %q: no such benchmark", name)
				}
			}
			if !o.asJSON {
				fmt.Fprintf(o.out, "%-28s %14s %14s %8s %4s  %s\n", "NAME", "GANTRY", "BASELINE", "RATIO", "MET", "TARGET")
			}
			var all []benchResult
			var failed []string
			defer func() {
				if len(failed) > 0 && err == nil {
					err = fmt.Errorf("benchmarks failed: %s", strings.Join(failed, ", "))
				}
			}()
			for _, b := range benchmarks {
				if len(o.only) > 0 && !slices.Contains(o.only, b.name) {
					continue
				}
				fmt.Fprintf(o.progress, "bench: %s ...\n", b.name)
				results, err := b.run(cmd.Context(), o)
				if err != nil {
					// The others still run: one broken benchmark should not
					// hide every other figure.
					fmt.Fprintf(o.progress, "bench: %s failed: %v\n", b.name, err)
					failed = append(failed, b.name)
					continue
				}
				for i := range results {
					results[i].judge()
					o.print(results[i])
				}
				all = append(all, results...)
			}
			if o.report == "" {
				return nil
			}
			if len(o.only) == 0 || slices.Contains(o.only, "control-plane") {
				s, err := benchScale(cmd.Context(), o)
				if err != nil {
					return fmt.Errorf("bench control-plane scaling: %w", err)
				}
				o.series = append([]scaleSeries{s}, o.series...)
				if g, ok := costGrowth(s); ok {
					o.print(g)
					all = append(all, g)
				}
				if g, ok := ownCostGrowth(s); ok {
					o.print(g)
					all = append(all, g)
				}
			}
			if err := writeReport(o.report, all, o.series, o.quick); err != nil {
				return err
			}
			fmt.Fprintf(o.progress, "bench: report written to %s\n", filepath.Join(o.report, "BENCHMARKS.md"))
			return nil
		},
	}
	c.Flags().BoolVar(&o.quick, "quick", false, "smaller sizes: the whole suite in a few minutes")
	c.Flags().BoolVar(&o.asJSON, "json", false, "one JSON object per result")
	c.Flags().StringSliceVar(&o.only, "only", nil, "run only these benchmarks")
	c.Flags().IntVar(&o.runs, "runs", 0, "runs of the control-plane benchmark (default 100000, 10000 with --quick)")
	c.Flags().StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	c.Flags().StringVar(&o.memProfile, "memprofile", "", "write a memory profile to this file when the control plane's runs have ended, before its server stops: what they allocated (-sample_index=alloc_space) and what it holds (inuse_space)")
	c.Flags().StringVar(&o.report, "report", "", "write BENCHMARKS.md into this directory, with tables and SVG charts of how the control plane, the server's memory, cron's lateness and logs grow with N (which adds runs of them at other sizes)")
	return c
}

func (o *benchOpts) print(r benchResult) {
	if o.asJSON {
		json.NewEncoder(o.out).Encode(r)
		return
	}
	base, ratio := "-", "-"
	if r.BaselineValue != 0 {
		base, ratio = fmt.Sprintf("%.1f %s", r.BaselineValue, r.Unit), fmt.Sprintf("%.2f", r.Ratio)
	}
	fmt.Fprintf(o.out, "%-28s %14s %14s %8s %4s  %s\n", r.Name, fmt.Sprintf("%.1f %s", r.Value, r.Unit), base, ratio, r.metText(), r.Target)
}

// benchInstantRuntime is a worker.Runtime used only by `gantry bench`: it
// ends every task at once with exit code 0, so that what is measured is the
// control plane alone.
type benchInstantRuntime struct{}

func (benchInstantRuntime) Run(_ context.Context, t *worker.Task, _ worker.LogSink) (*worker.Result, error) {
	if t.Started != nil {
		t.Started(nil)
	}
	zero := 0
	return &worker.Result{Containers: []jobs.ContainerResult{{Name: t.Def.ContainerDefinitions[0].Name, ExitCode: &zero}}}, nil
}

// benchStack is an in-process gantry: embedded NATS, server and one worker.
type benchStack struct {
	dir    string
	ns     interface{ Shutdown() }
	nc     *nats.Conn
	client *client.Client
	url    string
	stop   func()
}

func startBenchStack(ctx context.Context, rt worker.Runtime, slots int) (*benchStack, error) {
	dir, err := os.MkdirTemp("", "gantry-bench")
	if err != nil {
		return nil, err
	}
	ns, err := embedded.Start(embedded.Options{StoreDir: filepath.Join(dir, "js")})
	if err != nil {
		return nil, err
	}
	st := &benchStack{dir: dir, ns: ns, url: ns.ClientURL()}
	// As `gantry up` runs them: the server and the worker share one
	// in-process connection; clients (the harness) connect over TCP.
	inner, err := queue.Dial(ctx, queue.ConnOptions{URL: ns.ClientURL(), Name: "bench-roles", InProcess: ns})
	if err != nil {
		return nil, err
	}
	nc, err := queue.Dial(ctx, queue.ConnOptions{URL: ns.ClientURL(), Name: "bench"})
	if err != nil {
		inner.Close()
		return nil, err
	}
	st.nc = nc
	q, err := queue.New(inner)
	if err != nil {
		return nil, err
	}
	if err := q.EnsureStreams(ctx); err != nil {
		return nil, err
	}
	db, err := storage.Open(ctx, filepath.Join(dir, "gantry.db"))
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	srv := server.New(db, q, server.WithLogger(zerolog.Nop()))
	wg.Go(func() { srv.Run(runCtx) })
	cons, err := q.Jobs(ctx, "default", "bench")
	if err != nil {
		cancel()
		return nil, err
	}
	w := worker.New("bench", "default", workerq.Source{C: cons}, rt, workerq.Reporter{Q: q}, worker.WithSlots(slots),
		worker.WithGracePeriod(time.Second), worker.WithStager(workerStager(q), ""),
		// As in production: heartbeats (or the server's sweep takes its runs
		// for lost) and claims.
		worker.WithPresence(q, 5*time.Second), worker.WithClaims(workerq.Claims{Q: q}))
	wg.Go(func() { w.Run(runCtx) })
	st.client, _ = client.New(nc)
	st.stop = func() {
		if os.Getenv("GANTRY_BENCH_DEBUG") != "" {
			benchQueueStats(ctx, q, ns)
		}
		cancel()
		wg.Wait()
		db.Close()
		nc.Close()
		inner.Close()
		ns.Shutdown()
		os.RemoveAll(dir)
	}
	for range 100 { // until the API answers
		if _, _, err := st.client.List(ctx, client.ListOptions{Limit: 1}); err == nil {
			return st, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	st.stop()
	return nil, fmt.Errorf("in-process server did not answer")
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(math.Min(float64(len(s)-1), math.Ceil(p*float64(len(s)))-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func benchControlPlane(ctx context.Context, o *benchOpts) ([]benchResult, error) {
	n := 100_000
	switch {
	case o.runs > 0:
		n = o.runs
	case o.quick:
		n = 10_000
	}
	return controlPlaneAndMessages(ctx, o, n)
}

// controlPlaneAndMessages is controlPlane with the baseline of the
// messages-only program run after it, with the same n.
func controlPlaneAndMessages(ctx context.Context, o *benchOpts, n int) ([]benchResult, error) {
	// Each phase's goroutines carry its label in a CPU profile:
	// go tool pprof -tagfocus phase=gantry.
	var res []benchResult
	var err error
	pprof.Do(ctx, pprof.Labels("phase", "gantry"), func(ctx context.Context) {
		res, err = controlPlane(ctx, o, n)
	})
	if err != nil {
		return nil, err
	}
	// The same runs against a baseline that sends a run's NATS messages and
	// does nothing else (bench_steps.go): what gantry's own work costs.
	fmt.Fprintf(o.progress, "bench: control-plane: the baseline of a run's messages alone ...\n")
	var (
		steps    float64
		stepsCPU time.Duration
	)
	pprof.Do(ctx, pprof.Labels("phase", "messages"), func(ctx context.Context) {
		steps, stepsCPU, err = rawRunSteps(ctx, n, controlPlaneJobSize())
	})
	if err != nil {
		return nil, fmt.Errorf("baseline of a run's messages: %w", err)
	}
	for i := range res {
		if res[i].Name == "control-plane-cpu" {
			res[i].Baseline, res[i].BaselineValue = "raw NATS: a run's messages, no gantry", us(stepsCPU)
		}
	}
	return append(res, benchResult{Name: "control-plane-vs-messages", Value: res[0].Value, Unit: "runs/s",
		Baseline: "raw NATS: a run's messages, no gantry", BaselineValue: steps, N: n}), nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// benchSubmitters is how many clients submit runs at once in the control
// plane's benchmark, and in its messages-only baseline: each waits for
// its submit's reply, which comes once the run is stored and its job
// queued. 64 left a fifth of two cores idle, the rate bound by the
// replies' latency rather than by the CPU; 128 keep it busy, at twice
// the latency, which control-plane-p50 and -p99 show.
const benchSubmitters = 128

func controlPlane(ctx context.Context, o *benchOpts, n int) ([]benchResult, error) {
	req := &jobs.SubmitRequest{TaskDefinition: benchTaskDef()}

	// Baseline: the same number of job-sized messages through raw JetStream.
	var raw float64
	var err error
	pprof.Do(ctx, pprof.Labels("phase", "raw"), func(ctx context.Context) {
		raw, err = rawJetStream(ctx, n, controlPlaneJobSize())
	})
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	st, err := startBenchStack(ctx, benchInstantRuntime{}, 256)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	// Times are kept as offsets from base: a map of time.Time holds a
	// pointer per entry, which the garbage collector would scan a million
	// times over at N = 1M and charge to gantry.
	base := time.Now()
	var (
		mu        sync.Mutex
		submitted = make(map[runKey]time.Duration, n) // runs whose end is not seen yet
		ended     = make(map[runKey]time.Duration, n) // runs seen ending
		latencies = make([]time.Duration, 0, n)
		again     int // terminal events of runs already seen ending
		done      atomic.Int64
		finished  = make(chan struct{})
	)
	sub, err := st.nc.Subscribe("gantry.events.runs.*", func(m *nats.Msg) {
		if !queue.FromServer(m.Header) {
			return // the worker's reports: the server's status changes say the same
		}
		var ev struct { // what the harness needs, decoded fast: it shares the CPU
			RunID         string      `json:"runId"`
			Attempt       int         `json:"attempt"`
			Status        jobs.Status `json:"status"`
			StopCode      string      `json:"stopCode"`
			StoppedReason string      `json:"stoppedReason"`
		}
		if gojson.Unmarshal(m.Data, &ev) != nil || !ev.Status.Terminal() {
			return
		}
		now := time.Since(base)
		mu.Lock()
		defer mu.Unlock()
		if _, seen := ended[keyOf(ev.RunID)]; seen {
			again++
			if os.Getenv("GANTRY_BENCH_DEBUG") != "" {
				fmt.Fprintf(o.progress, "bench: run %s ended again: attempt %d %s %s %s\n", ev.RunID, ev.Attempt, ev.Status, ev.StopCode, ev.StoppedReason)
			}
			return
		}
		ended[keyOf(ev.RunID)] = now
		if t, ok := submitted[keyOf(ev.RunID)]; ok {
			latencies = append(latencies, now-t)
			delete(submitted, keyOf(ev.RunID))
		}
		if done.Add(1) == int64(n) {
			close(finished)
		}
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	start, cpu0 := time.Now(), cpuTime()
	var submitErr atomic.Value
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range benchSubmitters {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				t := time.Since(base)
				r, err := st.client.Submit(ctx, req)
				if err != nil {
					submitErr.Store(err)
					return
				}
				mu.Lock()
				if end, ok := ended[keyOf(r.RunID)]; ok { // it ended before its submit returned
					latencies = append(latencies, end-t)
				} else {
					submitted[keyOf(r.RunID)] = t
				}
				mu.Unlock()
			}
		})
	}
	progressDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-tick.C:
				fmt.Fprintf(o.progress, "bench: control-plane: %d/%d runs done\n", done.Load(), n)
			}
		}
	}()
	wg.Wait()
	fmt.Fprintf(o.progress, "bench: control-plane: %d submitted in %s (%d done)\n", n, time.Since(start).Round(time.Millisecond), done.Load())
	if err, _ := submitErr.Load().(error); err != nil {
		close(progressDone)
		return nil, err
	}
	select {
	case <-finished:
	case <-time.After(10 * time.Minute):
		close(progressDone)
		return nil, fmt.Errorf("only %d of %d runs ended within 10 minutes", done.Load(), n)
	case <-ctx.Done():
		close(progressDone)
		return nil, ctx.Err()
	}
	close(progressDone)
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	if o.memProfile != "" {
		runtime.GC() // so that inuse_space is what the stack holds now
		if err := writeAllocsProfile(o.memProfile); err != nil {
			return nil, err
		}
	}
	rate := float64(n) / elapsed.Seconds()
	mu.Lock()
	p50, p99 := percentile(latencies, 0.5), percentile(latencies, 0.99)
	repeated := again
	mu.Unlock()
	return []benchResult{
		{Name: "control-plane", Value: rate, Unit: "runs/s", Baseline: "raw JetStream publish+pull+ack", BaselineValue: raw, N: n,
			goal: goalControlPlane},
		{Name: "control-plane-p50", Value: ms(p50), Unit: "ms", N: n},
		{Name: "control-plane-p99", Value: ms(p99), Unit: "ms", N: n},
		// CPU time of the whole process (server, worker, NATS, harness) per
		// run: steadier than runs/s where other tenants steal time.
		{Name: "control-plane-cpu", Value: us(cpu / time.Duration(n)), Unit: "µs/run", N: n},
		{Name: "control-plane-repeated-ends", Value: float64(repeated), Unit: "events", N: n, goal: goalZero},
	}, nil
}

// rawJetStream publishes n messages of size bytes to a work-queue stream on
// a fresh embedded server, pulls and acks them, and returns messages/s.
func rawJetStream(ctx context.Context, n, size int) (float64, error) {
	ns, stop, err := freshServer("gantry-bench-raw")
	if err != nil {
		return 0, err
	}
	defer stop()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage})
	if err != nil {
		return 0, err
	}
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return 0, err
	}
	payload := []byte(strings.Repeat("x", size))
	start := time.Now()
	got := make(chan struct{})
	var count atomic.Int64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		m.Ack()
		if count.Add(1) == int64(n) {
			close(got)
		}
	})
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	for i := range n {
		// A busy machine acknowledges slowly: wait for room rather than fail.
		if _, err := js.PublishAsync(fmt.Sprintf("raw.%d", i%16), payload, jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, err
		}
	}
	<-js.PublishAsyncComplete()
	select {
	case <-got:
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("raw consumer got %d of %d", count.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// benchQueueStats prints, for GANTRY_BENCH_DEBUG, how many messages each
// stream took and how many the server moved: what a run costs the queue.
func benchQueueStats(ctx context.Context, q *queue.Queue, ns *natsserver.Server) {
	for name := range q.JetStream().StreamNames(ctx).Name() {
		s, err := q.JetStream().Stream(ctx, name)
		if err != nil {
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: stream %-28s stored %8d  held %8d  subjects %8d\n", name, info.State.LastSeq, info.State.Msgs, info.State.NumSubjects)
	}
	if v, err := ns.Varz(nil); err == nil {
		fmt.Fprintf(os.Stderr, "bench: nats server in %d msgs, out %d msgs\n", v.InMsgs, v.OutMsgs)
	}
}

// runKey is a run id as the harness keeps it: 16 bytes without pointers,
// so that a million of them add nothing to what the collector scans (the
// harness shares the process, and the collector, with the server).
type runKey [16]byte

func keyOf(runID string) runKey {
	if id, err := ulid.ParseStrict(runID); err == nil {
		return runKey(id)
	}
	h := fnv.New128a() // not a ULID: not gantry's, but keep it apart
	h.Write([]byte(runID))
	var k runKey
	copy(k[:], h.Sum(nil))
	return k
}

// benchTaskDef is the control-plane benchmark's inline task definition.
func benchTaskDef() json.RawMessage {
	td := jobs.TaskDefinition{Family: "bench", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "none"}}}
	data, _ := json.Marshal(td)
	return data
}

// controlPlaneJobSize is about the size of the benchmark's job message.
// A function, so that commands other than bench encode nothing at start.
func controlPlaneJobSize() int { return len(benchTaskDef()) + 120 }

// freshServer starts an embedded NATS server with its own temporary store,
// for a baseline; stop shuts it down and removes the store.
func freshServer(prefix string) (ns *natsserver.Server, stop func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	ns, err = embedded.Start(embedded.Options{StoreDir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return ns, func() { ns.Shutdown(); os.RemoveAll(dir) }, nil
}

// writeAllocsProfile writes what the process allocated so far, by site.
func writeAllocsProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
