package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The chaos test checks gantry's promise across crashes: a run whose
// submission was acknowledged is never lost, no attempt of it runs twice,
// and it ends exactly once, in the store and on gantry.events.runs.<id>,
// however often `gantry server --embedded-nats` and the workers are killed
// with SIGKILL (seeded random moments, restarted over the same data).
//
// The CI variant is short; `make chaos` runs the long one:
//
//	GANTRY_CHAOS=long        more runs and kills, three seeds
//	GANTRY_CHAOS_SEED=N      one seed (what a failure prints)
//	GANTRY_CHAOS_RUNS=N      runs to submit per seed
//	GANTRY_CHAOS_KILLS=N     SIGKILLs per seed
//	GANTRY_CHAOS_LEASE=D     the job lease (--lease) of server and workers

// chaosConfig is one scenario: how many runs, how many kills, which seed.
type chaosConfig struct {
	seed  uint64
	runs  int
	kills int
	lease time.Duration
}

// chaosConfigs reads the scenarios from the environment: short and long
// are a test's defaults for make test and make chaos (seeds aside).
func chaosConfigs(t *testing.T, short, long chaosConfig) []chaosConfig {
	t.Helper()
	envInt := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a whole number", name, v)
		}
		return n
	}
	// With a lease shorter than a killed server's restart plus the
	// workers' reconnection (~3 s), its workers' jobs are redelivered as
	// if the workers were lost; the CI variant keeps clear of that.
	runs, kills, seeds, lease := short.runs, short.kills, []uint64{1}, short.lease
	if os.Getenv("GANTRY_CHAOS") == "long" {
		runs, kills, seeds, lease = long.runs, long.kills, []uint64{uint64(time.Now().UnixNano()), 2, 3}, long.lease
	}
	if v := os.Getenv("GANTRY_CHAOS_LEASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("GANTRY_CHAOS_LEASE=%q: want a duration such as 3s", v)
		}
		lease = d
	}
	if s := os.Getenv("GANTRY_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("GANTRY_CHAOS_SEED=%q: want a whole number", s)
		}
		seeds = []uint64{n}
	}
	runs, kills = envInt("GANTRY_CHAOS_RUNS", runs), envInt("GANTRY_CHAOS_KILLS", kills)
	var cs []chaosConfig
	for _, s := range seeds {
		cs = append(cs, chaosConfig{seed: s, runs: runs, kills: kills, lease: lease})
	}
	return cs
}

func TestChaosKillNothingLostNothingDoubled(t *testing.T) {
	t.Parallel()
	short := chaosConfig{runs: 80, kills: 4, lease: 8 * time.Second}
	long := chaosConfig{runs: 400, kills: 12, lease: 3 * time.Second}
	for _, cfg := range chaosConfigs(t, short, long) {
		t.Run(fmt.Sprintf("seed=%d", cfg.seed), func(t *testing.T) {
			runChaos(t, cfg)
		})
	}
}

// chaosProc is one role of the cluster under test: each start over the same
// arguments (and so the same data directory and id) is a new incarnation.
type chaosProc struct {
	t    *testing.T
	name string
	args []string

	// natsData is the data directory of a server with embedded NATS:
	// start waits for its DATA/nats.url, natsURL.
	natsData string
	natsURL  string

	mu    sync.Mutex
	cur   *proc
	lives []*syncBuffer // the logs of every incarnation
}

func (c *chaosProc) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.natsData == "" {
		c.cur = startProc(c.t, c.args...)
		c.lives = append(c.lives, c.cur.log)
		return
	}
	// A server restarted on its port can find it taken meanwhile, as the
	// local end of another test's connection: it says so and ends, and
	// is started once more.
	for try := 1; ; try++ {
		os.Remove(filepath.Join(c.natsData, "nats.url")) // a killed life leaves it
		c.cur = startProc(c.t, c.args...)
		c.lives = append(c.lives, c.cur.log)
		var inUse bool
		waitFor(c.t, c.name+"'s DATA/nats.url", func() bool {
			inUse = strings.Contains(c.cur.log.String(), "address already in use")
			b, err := os.ReadFile(filepath.Join(c.natsData, "nats.url"))
			c.natsURL = strings.TrimSpace(string(b))
			return inUse || (err == nil && c.natsURL != "")
		})
		if !inUse {
			return
		}
		c.cur.kill()
		if try == 2 {
			c.t.Fatalf("%s: NATS port %s taken twice:\n%s", c.name, c.args[3], c.cur.log)
		}
	}
}

// stop ends the current incarnation with SIGTERM.
func (c *chaosProc) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur.stop()
}

func (c *chaosProc) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur.kill()
}

// logs returns the tail of each incarnation's log.
func (c *chaosProc) logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for i, l := range c.lives {
		lines := strings.Split(l.String(), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		fmt.Fprintf(&b, "--- %s, life %d (last lines) ---\n%s\n", c.name, i+1, strings.Join(lines, "\n"))
	}
	return b.String()
}

// chaosContainer is what Docker's events say of one container.
type chaosContainer struct {
	run          string
	attempt      int
	creates      int
	starts       int
	start, death time.Time
}

// chaosSubmission is one run the test asked for.
type chaosSubmission struct {
	key   string
	fails bool // exits 3, with two attempts allowed
	runID string
}

func runChaos(t *testing.T, cfg chaosConfig) {
	t.Logf("chaos seed %d: %d runs, %d kills, lease %s (GANTRY_CHAOS_SEED=%d reruns it)", cfg.seed, cfg.runs, cfg.kills, cfg.lease, cfg.seed)
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6a6e7472))
	cli := sampletest.Docker(t)
	image := sampletest.Image(t)
	label := fmt.Sprintf("e2e-chaos%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)

	watch := watchChaosContainers(t, cli, label)

	cl := startChaosCluster(t, cfg, label)
	procs, nc, c := cl.procs, cl.nc, cl.c

	// Two pipeline runs, started before the chaos, cross it: each stage's
	// end is applied, and the next stage started, by whichever server
	// incarnation is up.
	pipeline := fmt.Sprintf(`
name: chaos-%[1]s
stages:
  - name: extract
    arraySize: 3
    taskDefinition: {family: chaos-extract, containerDefinitions: [{name: main, image: %[2]s, command: [sh, -c, 'echo extract; sleep 1']}]}
  - name: transform
    dependsOn: [extract]
    taskDefinition: {family: chaos-transform, containerDefinitions: [{name: main, image: %[2]s, command: [sh, -c, 'echo transform; sleep 1']}]}
  - name: load
    dependsOn: [transform]
    arraySize: 2
    taskDefinition: {family: chaos-load, containerDefinitions: [{name: main, image: %[2]s, command: [sh, -c, 'echo load; sleep 0.5']}]}
`, label, image)
	ctx := context.Background()
	if _, _, err := c.ApplyPipeline(ctx, []byte(pipeline)); err != nil {
		t.Fatalf("apply pipeline: %v", err)
	}
	began := time.Now()
	var pipelineRuns []string
	for range 2 {
		pr, err := c.RunPipeline(ctx, "chaos-"+label, nil)
		if err != nil {
			t.Fatalf("run pipeline: %v", err)
		}
		pipelineRuns = append(pipelineRuns, pr.PipelineRunID)
	}

	// The submitter: every run has an idempotency key, and a submission
	// that got no answer (the server was down or died) is sent again with
	// the same key until one comes. A run counts as acknowledged once its
	// id came back.
	subs := make([]chaosSubmission, cfg.runs)
	for i := range subs {
		subs[i] = chaosSubmission{key: fmt.Sprintf("%s-%d", label, i), fails: i%10 == 9}
	}
	sleeps := make([]int, cfg.runs)
	for i := range sleeps {
		sleeps[i] = rng.IntN(8) // tenths of a second
	}
	pause := rand.New(rand.NewPCG(cfg.seed, 1)) // the submitter's own: rng is the chaos loop's
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i := range subs {
			s := &subs[i]
			script := fmt.Sprintf("echo $GANTRY_RUN_ID $GANTRY_ATTEMPT; sleep 0.%d", sleeps[i])
			req := &jobs.SubmitRequest{IdempotencyKey: s.key, RetryStrategy: &jobs.RetryStrategy{Attempts: 1}}
			if s.fails {
				script += "; exit 3"
				req.RetryStrategy = &jobs.RetryStrategy{Attempts: 2, Backoff: &jobs.Backoff{InitialSeconds: 0.2}}
			}
			req.TaskDefinition = json.RawMessage(fmt.Sprintf(`{"family":"chaos","containerDefinitions":[{"name":"main","image":%q,"command":["sh","-c",%q]}]}`,
				image, script))
			for try := 0; ; try++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := c.Submit(ctx, req)
				cancel()
				if err == nil {
					s.runID = r.RunID
					break
				}
				if try == 600 {
					t.Errorf("submit %s: no answer after %d tries: %v", s.key, try, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			if i%4 == 3 {
				time.Sleep(time.Duration(pause.IntN(150)) * time.Millisecond)
			}
		}
	}()

	chaosKills(t, rng, procs, cfg.kills)
	<-submitted
	t.Logf("chaos over, %d runs submitted, after %s", cfg.runs, time.Since(began).Round(time.Millisecond))
	if t.Failed() {
		return
	}

	// Everything must end: the runs asked for and the pipelines' stages.
	waitChaosRunsEnded(t, c)
	prs := map[string]*jobs.PipelineRun{}
	waitFor(t, "the pipeline runs to end", func() bool {
		for _, id := range pipelineRuns {
			pr, err := c.GetPipelineRun(context.Background(), id)
			if err != nil || !pr.Status.Terminal() {
				return false
			}
			prs[id] = pr
		}
		return true
	})
	containers := watch.finish(t, cli)
	t.Logf("everything ended after %s", time.Since(began).Round(time.Millisecond))

	stored := chaosStoredRuns(t, c)

	checkChaosRuns(t, subs, prs, stored)
	checkChaosContainers(t, stored, containers)
	checkChaosEvents(t, nc, stored)
	// Workers first: without the server's NATS they would wait for it to
	// say goodbye.
	for _, p := range slices.Backward(procs) {
		p.stop()
	}
}

// countedAttempts is how many of a run's attempts count against its
// retryStrategy.attempts: a lost worker's and a handed-back job's do not,
// nor one that ran after the run ended (jobs.Attempt.AfterEnd).
func countedAttempts(r *jobs.Run) (counted, lost int) {
	for _, a := range r.Attempts {
		if a.AfterEnd != "" {
			continue
		}
		if a.StopCode == jobs.StopWorkerLost || a.StopCode == jobs.StopTerminationNotice {
			lost++
		} else {
			counted++
		}
	}
	return counted, lost
}

// checkChaosRuns: every acknowledged submission has its run, one per key,
// ended as its script says with its attempts counted as the README says;
// every pipeline run succeeded with each stage's runs; no other run exists.
func checkChaosRuns(t *testing.T, subs []chaosSubmission, prs map[string]*jobs.PipelineRun, stored map[string]*jobs.Run) {
	t.Helper()
	byKey := map[string][]string{}
	for id, r := range stored {
		if r.IdempotencyKey != "" {
			byKey[r.IdempotencyKey] = append(byKey[r.IdempotencyKey], id)
		}
	}
	expected := map[string]bool{}
	for _, s := range subs {
		if s.runID == "" {
			t.Errorf("submission %s was never acknowledged", s.key)
			continue
		}
		expected[s.runID] = true
		if ids := byKey[s.key]; len(ids) != 1 || ids[0] != s.runID {
			t.Errorf("submission %s (acknowledged as run %s) has runs %v in the store, want exactly it", s.key, s.runID, ids)
		}
		r := stored[s.runID]
		if r == nil {
			t.Errorf("run %s (submission %s) was acknowledged but is not in the store", s.runID, s.key)
			continue
		}
		counted, lost := countedAttempts(r)
		switch {
		case !s.fails && (r.Status != jobs.StatusSucceeded || counted != 1):
			t.Errorf("run %s: %s with %d counted attempts (%d lost), want SUCCEEDED with 1: %s", r.RunID, r.Status, counted, lost, attemptsString(r))
		case s.fails && (r.Status != jobs.StatusFailed || counted != 2 || r.ExitCode == nil || *r.ExitCode != 3):
			t.Errorf("run %s: %s with %d counted attempts (%d lost), want FAILED exit 3 after 2: %s", r.RunID, r.Status, counted, lost, attemptsString(r))
		}
		checkAttempts(t, r)
	}
	for id, pr := range prs {
		if pr.Status != jobs.StatusSucceeded {
			t.Errorf("pipeline run %s: %s, want SUCCEEDED: %+v", id, pr.Status, pr.Stages)
		}
		sizes := map[string]int{"extract": 3, "transform": 1, "load": 2}
		for _, st := range pr.Stages {
			if st.Status != jobs.StatusSucceeded || len(st.Runs) != sizes[st.Name] {
				t.Errorf("pipeline run %s stage %s: %s with %d runs, want SUCCEEDED with %d", id, st.Name, st.Status, len(st.Runs), sizes[st.Name])
			}
			for _, sr := range st.Runs {
				expected[sr.RunID] = true
				r := stored[sr.RunID]
				if r == nil {
					t.Errorf("pipeline run %s stage %s: run %s is not in the store", id, st.Name, sr.RunID)
					continue
				}
				if counted, lost := countedAttempts(r); r.Status != jobs.StatusSucceeded || counted != 1 {
					t.Errorf("stage %s run %s: %s with %d counted attempts (%d lost), want SUCCEEDED with 1: %s",
						st.Name, r.RunID, r.Status, counted, lost, attemptsString(r))
				}
				checkAttempts(t, r)
			}
		}
		if len(pr.Stages) != 3 {
			t.Errorf("pipeline run %s has %d stages, want 3", id, len(pr.Stages))
		}
	}
	var afterEnd []string
	for _, r := range stored {
		for _, a := range r.Attempts {
			if a.AfterEnd != "" {
				afterEnd = append(afterEnd, fmt.Sprintf("run %s attempt %d on %s", r.RunID, a.Attempt, a.Worker))
			}
		}
	}
	if len(afterEnd) > 0 {
		slices.Sort(afterEnd)
		t.Logf("%d attempts ran after their run's end (a worker cut off past its lease reported its end first): %v", len(afterEnd), afterEnd)
	}
	for id, r := range stored {
		if !expected[id] {
			t.Errorf("run %s (key %q, stage %v) is in the store but nobody asked for it", id, r.IdempotencyKey, r.Spec.Stage)
		}
	}
}

// checkAttempts: attempts are numbered 1, 2, ... and every one ended; the
// run ended as its last attempt before any that ran after its end (a cut-off
// worker's end came before the report of its loss), and at most 5 were lost.
func checkAttempts(t *testing.T, r *jobs.Run) {
	t.Helper()
	for i, a := range r.Attempts {
		if a.Attempt != i+1 || !a.Status.Terminal() {
			t.Errorf("run %s attempt #%d: number %d, %s: %s", r.RunID, i+1, a.Attempt, a.Status, attemptsString(r))
		}
	}
	if cur := r.Current(); cur == nil || cur.Status != r.Status {
		t.Errorf("run %s is %s but its last attempt is not: %s", r.RunID, r.Status, attemptsString(r))
	}
	if _, lost := countedAttempts(r); lost > 5 {
		t.Errorf("run %s: %d attempts lost, more than the 5 after which it fails", r.RunID, lost)
	}
}

func attemptsString(r *jobs.Run) string {
	var b strings.Builder
	for _, a := range r.Attempts {
		code := "-"
		if a.ExitCode != nil {
			code = fmt.Sprint(*a.ExitCode)
		}
		after := ""
		if a.AfterEnd != "" {
			after = " after the end"
		}
		fmt.Fprintf(&b, "[#%d%s %s on %s exit %s %s %q] ", a.Attempt, after, a.Status, a.Worker, code, a.StopCode, a.StoppedReason)
	}
	return b.String()
}

// checkChaosContainers: no attempt had two containers; every attempt that
// ran to an exit code had its container; no container ran for an attempt
// the store does not know; and two attempts of a run overlapped only when
// the earlier one's worker was lost (the README's admitted case: its
// container goes on until the worker's next start stops it) or cut off
// for longer than its lease, the later attempt recorded after the run's
// end.
func checkChaosContainers(t *testing.T, stored map[string]*jobs.Run, containers map[string]*chaosContainer) {
	t.Helper()
	type key struct {
		run     string
		attempt int
	}
	per := map[key][]*chaosContainer{}
	byRun := map[string][]*chaosContainer{}
	for _, c := range containers {
		if c.creates == 0 {
			continue // created before the watch began: not ours
		}
		per[key{c.run, c.attempt}] = append(per[key{c.run, c.attempt}], c)
		byRun[c.run] = append(byRun[c.run], c)
	}
	for k, cs := range per {
		starts := 0
		for _, c := range cs {
			starts += c.starts
		}
		if len(cs) > 1 || starts > 1 {
			t.Errorf("run %s attempt %d: %d containers created, %d started; an attempt runs once", k.run, k.attempt, len(cs), starts)
		}
		r := stored[k.run]
		if r == nil {
			t.Errorf("container of run %s attempt %d, which the store does not have", k.run, k.attempt)
		} else if k.attempt < 1 || k.attempt > len(r.Attempts) {
			t.Errorf("container of run %s attempt %d (%s–%s), which the store does not have: %s %s", k.run, k.attempt,
				cs[0].start.Format("15:04:05.000"), cs[0].death.Format("15:04:05.000"), r.Status, attemptsString(r))
		}
	}
	for _, r := range stored {
		for _, a := range r.Attempts {
			if a.ExitCode == nil || a.StopCode == jobs.StopWorkerLost || a.StopCode == jobs.StopTerminationNotice {
				continue
			}
			started := 0
			for _, c := range per[key{r.RunID, a.Attempt}] {
				started += c.starts
			}
			if started != 1 {
				t.Errorf("run %s attempt %d ended with exit code %d but Docker saw %d containers of it start", r.RunID, a.Attempt, *a.ExitCode, started)
			}
		}
		cs := byRun[r.RunID]
		sort.Slice(cs, func(i, j int) bool { return cs[i].start.Before(cs[j].start) })
		for i := 0; i+1 < len(cs); i++ {
			prev, next := cs[i], cs[i+1]
			if prev.death.IsZero() || prev.death.After(next.start) {
				// The earlier attempt is the one the promise is about,
				// whichever container started first: a worker taken for
				// lost (its heartbeats late under load) may start its
				// attempt's container only after the next attempt's.
				early, late := prev, next
				if late.attempt < early.attempt {
					early, late = late, early
				}
				lost := early.attempt >= 1 && early.attempt <= len(r.Attempts) && r.Attempts[early.attempt-1].StopCode == jobs.StopWorkerLost
				// An attempt after the run's end ran because the queue took
				// the earlier one's worker for lost (its lease ran out),
				// though that worker's end came first.
				afterEnd := late.attempt >= 1 && late.attempt <= len(r.Attempts) && r.Attempts[late.attempt-1].AfterEnd != ""
				if !lost && !afterEnd {
					t.Errorf("run %s: attempt %d's container (%s–%s) overlaps attempt %d's (%s–%s), and attempt %d was not lost: %s",
						r.RunID, early.attempt, early.start.Format("15:04:05.000"), early.death.Format("15:04:05.000"),
						late.attempt, late.start.Format("15:04:05.000"), late.death.Format("15:04:05.000"), early.attempt, attemptsString(r))
				}
			}
		}
	}
}

// checkChaosEvents: on gantry.events.runs.<id>, the server announced each
// run's end once, as the store has it, and nothing after it.
func checkChaosEvents(t *testing.T, nc *nats.Conn, stored map[string]*jobs.Run) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A report the server applied but had not acknowledged when it was
	// killed comes again after the ack wait (30 s), and only then is the
	// end it stored announced (server.announceRedelivered): wait until the
	// server has acknowledged every report.
	waitFor(t, "the server to acknowledge every report", func() bool {
		c, err := js.Consumer(ctx, queue.StreamReports, "server")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	cons, err := js.OrderedConsumer(ctx, queue.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"gantry.events.runs.>"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pending := info.NumPending
	ends := map[string][]jobs.Event{}
	after := map[string][]jobs.Status{}
	for pending > 0 {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			pending--
			var ev jobs.Event
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatalf("event on %s: %v", m.Subject(), err)
			}
			if ev.Source != jobs.SourceServer {
				continue
			}
			if len(ends[ev.RunID]) > 0 && !ev.Status.Terminal() {
				after[ev.RunID] = append(after[ev.RunID], ev.Status)
			}
			if ev.Status.Terminal() {
				ends[ev.RunID] = append(ends[ev.RunID], ev)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatal(err)
		}
		if n == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	var missing []string
	for id, r := range stored {
		evs := ends[id]
		switch {
		case len(evs) == 0:
			missing = append(missing, id)
		case len(evs) > 1:
			var ss []string
			for _, ev := range evs {
				ss = append(ss, fmt.Sprintf("%s (attempt %d)", ev.Status, ev.Attempt))
			}
			t.Errorf("run %s: the server announced its end %d times: %s", id, len(evs), strings.Join(ss, ", "))
		case evs[0].Status != r.Status || evs[0].Attempt != r.Current().Attempt:
			t.Errorf("run %s: announced %s at attempt %d, stored %s at attempt %d", id, evs[0].Status, evs[0].Attempt, r.Status, r.Current().Attempt)
		}
		if a := after[id]; len(a) > 0 {
			t.Errorf("run %s: announced %v after its end", id, a)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d runs ended in the store with no end announced on gantry.events.runs.<id>: %v",
			len(missing), len(stored), missing)
	}
}

// chaosWatch follows Docker's events of the test's containers: they tell
// every container created, started and dead, with its gantry.run and
// gantry.attempt labels, killed worker or not.
type chaosWatch struct {
	label string
	stop  context.CancelFunc
	done  sync.WaitGroup

	mu         sync.Mutex
	containers map[string]*chaosContainer
}

func watchChaosContainers(t *testing.T, cli *dockerclient.Client, label string) *chaosWatch {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	w := &chaosWatch{label: label, stop: stop, containers: map[string]*chaosContainer{}}
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("label", sampletest.LabelKey+"="+label))})
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		for {
			select {
			case m := <-msgs:
				attempt, _ := strconv.Atoi(m.Actor.Attributes["gantry.attempt"])
				at := time.Unix(0, m.TimeNano)
				w.mu.Lock()
				c := w.containers[m.Actor.ID]
				if c == nil {
					c = &chaosContainer{run: m.Actor.Attributes["gantry.run"], attempt: attempt}
					w.containers[m.Actor.ID] = c
				}
				switch m.Action {
				case events.ActionCreate:
					c.creates++
				case events.ActionStart:
					c.starts++
					c.start = at
				case events.ActionDie:
					c.death = at
				}
				w.mu.Unlock()
			case err := <-errs:
				if ctx.Err() == nil {
					t.Errorf("docker events: %v", err)
				}
				return
			}
		}
	}()
	return w
}

// finish waits until no container of the test runs (a killed worker's
// leftovers are stopped by its next incarnation), then for the last
// events, and returns the containers seen.
func (w *chaosWatch) finish(t *testing.T, cli *dockerclient.Client) map[string]*chaosContainer {
	t.Helper()
	waitFor(t, "no container of the test to run", func() bool {
		list, err := cli.ContainerList(context.Background(), container.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", sampletest.LabelKey+"="+w.label))})
		return err == nil && len(list) == 0
	})
	time.Sleep(time.Second) // the last die events
	w.stop()
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.containers
}

// chaosCluster is gantry server --embedded-nats and two workers, each a
// process the test kills and restarts, and a client of the server.
type chaosCluster struct {
	url   string
	procs []*chaosProc
	nc    *nats.Conn
	c     *client.Client
}

func startChaosCluster(t *testing.T, cfg chaosConfig, label string) *chaosCluster {
	t.Helper()
	// The server picks its port the first time (--nats-port 0) and keeps
	// it across restarts, which the workers and the client reconnect to.
	data := t.TempDir()
	server := &chaosProc{t: t, name: "server", natsData: data, args: []string{"server", "--embedded-nats", "--nats-port", "0",
		"--data", data, "--lease", cfg.lease.String()}}
	server.start()
	url := server.natsURL
	server.args[3] = natsPort(t, url)
	workerArgs := func(id string) []string {
		return []string{"worker", "--nats", url, "--id", id, "--lease", cfg.lease.String(), "--grace", "5s", "--slots", "4",
			"--container-label", sampletest.LabelKey + "=" + label}
	}
	procs := []*chaosProc{server,
		{t: t, name: "worker a", args: workerArgs(label + "-a")},
		{t: t, name: "worker b", args: workerArgs(label + "-b")}}
	for _, p := range procs[1:] {
		p.start()
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Log(p.logs())
			}
		}
	})

	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server and two workers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ws, err := c.Workers(ctx, "")
		if err != nil || len(ws) != 2 {
			return false
		}
		// The API's endpoints go live one by one, runs.list last: its
		// answer says the whole API is up (pools.set may not be before).
		_, _, err = c.List(ctx, client.ListOptions{Limit: 1})
		return err == nil
	})
	return &chaosCluster{url: url, procs: procs, nc: nc, c: c}
}

// chaosKills kills the cluster's processes at seeded moments while runs
// are submitted and run. A killed server is started again at once (a port
// of its own, so the workers find it where it was); a killed worker after
// up to 1.5 s, longer than nothing and shorter than its lease, so that its
// jobs are sometimes redelivered before it is back and sometimes not.
func chaosKills(t *testing.T, rng *rand.Rand, procs []*chaosProc, kills int) {
	t.Helper()
	var killLog []string
	for k := 0; k < kills; k++ {
		time.Sleep(time.Duration(1500+rng.IntN(3500)) * time.Millisecond)
		victim := procs[rng.IntN(len(procs))]
		down := time.Duration(rng.IntN(1500)) * time.Millisecond
		killLog = append(killLog, fmt.Sprintf("%s at %s for %s", victim.name, time.Now().Format("15:04:05.000"), down))
		victim.kill()
		time.Sleep(down)
		victim.start()
	}
	t.Logf("kills: %s", strings.Join(killLog, "; "))
}

// waitChaosRunsEnded waits up to 4 minutes for no run to be active.
func waitChaosRunsEnded(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		left, _, err := c.List(ctx, client.ListOptions{Limit: 1000})
		cancel()
		if err == nil && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var ids []string
			for _, r := range left {
				ids = append(ids, fmt.Sprintf("%s %s (%s)", r.RunID, r.Status, r.StatusReason))
			}
			t.Fatalf("runs not ended 4 minutes after the chaos (err %v): %d\n%s", err, len(left), strings.Join(ids, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// chaosStoredRuns returns every run in the store, by id, each read whole
// (List may leave attempts out).
func chaosStoredRuns(t *testing.T, c *client.Client) map[string]*jobs.Run {
	t.Helper()
	ctx := context.Background()
	stored := map[string]*jobs.Run{}
	before := ""
	for {
		page, next, err := c.List(ctx, client.ListOptions{All: true, Limit: 1000, Before: before})
		if err != nil {
			t.Fatalf("list runs: %v", err)
		}
		for i := range page {
			r := page[i]
			stored[r.RunID] = &r
		}
		if next == "" {
			break
		}
		before = next
	}
	for id := range stored {
		r, err := c.Get(ctx, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		stored[id] = r
	}
	return stored
}
