package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// The overlap chaos test checks gantry's no-overlap promises across
// crashes, as the README makes them: a pool's slots bound its runs across
// the fleet, a Forbid schedule skips a fire while its pipeline has a run
// active, and maxActiveRuns bounds a pipeline's runs RUNNING. The server
// and the workers are killed with SIGKILL at seeded moments (the harness
// and the variables of chaos_e2e_test.go), and Docker's container start
// and die events say what ran when.
//
// What the README admits, and the check allows, is exactly a lost
// worker's container going on after gantry recorded its attempt
// WorkerLost: once the run (for a pool) or the pipeline run (for
// Forbid and maxActiveRuns) it belonged to has ended, that container no
// longer holds a place, until the worker's next start stops it. Before
// that end it holds its run's place as any container does.

func TestChaosKillNoOverlap(t *testing.T) {
	t.Parallel()
	short := chaosConfig{runs: 12, kills: 4, lease: 8 * time.Second}
	long := chaosConfig{runs: 80, kills: 12, lease: 3 * time.Second}
	for _, cfg := range chaosConfigs(t, short, long) {
		t.Run(fmt.Sprintf("seed=%d", cfg.seed), func(t *testing.T) {
			runChaosOverlap(t, cfg)
		})
	}
}

// chaosPoolRun is one run the test submitted with gantry run --pool.
type chaosPoolRun struct {
	key, pool, runID string
}

func runChaosOverlap(t *testing.T, cfg chaosConfig) {
	t.Logf("overlap chaos seed %d: %d pooled runs, %d kills, lease %s (GANTRY_CHAOS_SEED=%d reruns it)", cfg.seed, cfg.runs, cfg.kills, cfg.lease, cfg.seed)
	rng := rand.New(rand.NewPCG(cfg.seed, 0x6f766572)) // the kills' own: seed 1 kills the server, b, a, the server
	cli := sampletest.Docker(t)
	image := sampletest.Image(t)
	label := fmt.Sprintf("e2e-overlap%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)
	watch := watchChaosContainers(t, cli, label)
	cl := startChaosCluster(t, cfg, label)
	c := cl.c
	ctx := context.Background()

	pools := map[string]int{"one": 1, "two": 2}
	for name, slots := range pools {
		if _, _, err := c.SetPool(ctx, name, slots); err != nil {
			t.Fatalf("pool set %s: %v", name, err)
		}
	}
	// maxActiveRuns: 1, its stages in both pools; and a schedule that fires
	// every 2 s a run of 1.5 s in the pool of 2: with its start and its
	// waits for a slot, it is still active at the next fire, which Forbid
	// skips, as often as not.
	maxName, forbidName := "chaos-max-"+label, "chaos-forbid-"+label
	for _, file := range []string{fmt.Sprintf(`
name: %[1]s
maxActiveRuns: 1
stages:
  - name: fan
    arraySize: 2
    pool: two
    taskDefinition: {family: overlap-fan, containerDefinitions: [{name: main, image: %[2]s, command: [sh, -c, 'sleep 0.5']}]}
  - name: one
    dependsOn: [fan]
    pool: one
    taskDefinition: {family: overlap-one, containerDefinitions: [{name: main, image: %[2]s, command: [sh, -c, 'sleep 0.3']}]}
`, maxName, image), fmt.Sprintf(`
name: %[1]s
schedule: {cron: "@every 2s", concurrencyPolicy: Forbid}
stages:
  - name: only
    pool: two
    taskDefinition: {family: overlap-forbid, containerDefinitions: [{name: main, image: %[2]s, command: [sh, -c, 'sleep 1.5']}]}
`, forbidName, image)} {
		if _, _, err := c.ApplyPipeline(ctx, []byte(file)); err != nil {
			t.Fatalf("apply pipeline: %v\n%s", err, file)
		}
	}
	began := time.Now()

	// The submitter: gantry run -d --pool, its idempotency key sent again
	// until an answer comes; every fourth submission also runs the
	// maxActiveRuns pipeline (with no key: a run asked for twice, its
	// first answer lost, is one more run to bound).
	subs := make([]chaosPoolRun, cfg.runs)
	sleeps := make([]int, cfg.runs)
	pause := rand.New(rand.NewPCG(cfg.seed, 2)) // the submitter's own
	for i := range subs {
		subs[i] = chaosPoolRun{key: fmt.Sprintf("%s-%d", label, i), pool: []string{"one", "two"}[i%2]}
		sleeps[i] = 2 + pause.IntN(8) // tenths of a second
	}
	var mu sync.Mutex
	var asked int // runs of the maxActiveRuns pipeline asked for
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i := range subs {
			s := &subs[i]
			for try := 0; ; try++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				out, err := exec.CommandContext(ctx, gantryBin, "run", "-d", "--nats", cl.url, "--pool", s.pool,
					"--idempotency-key", s.key, "--image", image, "--", "sh", "-c", fmt.Sprintf("sleep 0.%d", sleeps[i])).Output()
				cancel()
				if err == nil {
					s.runID = strings.TrimSpace(string(out))
					break
				}
				if try == 300 {
					t.Errorf("gantry run --pool %s --idempotency-key %s: no run after %d tries: %v", s.pool, s.key, try, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			if i%4 == 0 {
				for try := 0; ; try++ {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := c.RunPipeline(ctx, maxName, nil)
					cancel()
					if err == nil {
						break
					}
					if try == 300 {
						t.Errorf("pipeline run %s: no answer after %d tries: %v", maxName, try, err)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				mu.Lock()
				asked++
				mu.Unlock()
			}
			time.Sleep(time.Duration(pause.IntN(400)) * time.Millisecond)
		}
	}()

	chaosKills(t, rng, cl.procs, cfg.kills)
	<-submitted
	t.Logf("chaos over after %s", time.Since(began).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	// Enough fires to check Forbid by (its runs wait for slots of the
	// pool, and a killed server fires none), then no more. Under load a
	// run waits long for its slot: in one CI run the first Forbid run,
	// behind the pooled runs and the kills, took 78 s.
	waitForWithin(t, 4*time.Minute, "the Forbid schedule to start 3 runs", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		list, err := c.PipelineRuns(ctx, forbidName, 1000)
		return err == nil && len(list) >= 3
	})
	waitFor(t, "the Forbid schedule to be suspended", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.SuspendSchedule(ctx, forbidName, true) == nil
	})

	// Everything must end: no run waits for a slot or a place for ever.
	prs := map[string]*jobs.PipelineRun{} // every pipeline run, by id
	deadline := time.Now().Add(4 * time.Minute)
	for {
		var left []string
		for _, name := range []string{maxName, forbidName} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			list, err := c.PipelineRuns(ctx, name, 1000)
			cancel()
			if err != nil {
				left = append(left, fmt.Sprintf("%s: %v", name, err))
			}
			for i := range list {
				prs[list[i].PipelineRunID] = &list[i]
				if !list[i].Status.Terminal() {
					left = append(left, fmt.Sprintf("%s %s (%s)", list[i].PipelineRunID, list[i].Status, list[i].StatusReason))
				}
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pipeline runs not ended 4 minutes after the chaos:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
	waitChaosRunsEnded(t, c)
	// The pools give every slot back: none held, none waited for.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ps, err := c.Pools(ctx)
		cancel()
		var busy []string
		for _, p := range ps {
			if p.InUse != 0 || p.Waiting != 0 {
				busy = append(busy, fmt.Sprintf("pool %s: %d in use, %d waiting", p.Name, p.InUse, p.Waiting))
			}
		}
		if err == nil && len(busy) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pools not free 4 minutes after the chaos (err %v): %s", err, strings.Join(busy, "; "))
		}
		time.Sleep(250 * time.Millisecond)
	}
	containers := watch.finish(t, cli)
	t.Logf("everything ended after %s", time.Since(began).Round(time.Millisecond))
	stored := chaosStoredRuns(t, c)

	// Every run succeeded, its attempts as the other chaos test wants them.
	for _, s := range subs {
		if r := stored[s.runID]; r == nil || r.Pool != s.pool {
			t.Errorf("gantry run --pool %s --idempotency-key %s answered run %q, which the store does not have in that pool", s.pool, s.key, s.runID)
		}
	}
	for _, r := range stored {
		if counted, lost := countedAttempts(r); r.Status != jobs.StatusSucceeded || counted != 1 {
			t.Errorf("run %s: %s with %d counted attempts (%d lost), want SUCCEEDED with 1: %s", r.RunID, r.Status, counted, lost, attemptsString(r))
		}
		checkAttempts(t, r)
	}
	fires := 0 // of the Forbid schedule
	for id, pr := range prs {
		if pr.Status != jobs.StatusSucceeded {
			t.Errorf("pipeline run %s of %s: %s, want SUCCEEDED", id, pr.Pipeline, pr.Status)
		}
		if pr.Pipeline == forbidName {
			fires++
		}
	}
	mu.Lock()
	if n := len(prs) - fires; n < asked {
		t.Errorf("%s has %d runs, %d were asked for", maxName, n, asked)
	}
	mu.Unlock()
	checkChaosContainers(t, stored, containers)

	// The promises, from Docker's events.
	groups := []struct {
		name  string
		limit int
		unit  func(r *jobs.Run) (unit string, end *time.Time)
	}{
		{"pool one", 1, chaosPoolUnit("one")},
		{"pool two", 2, chaosPoolUnit("two")},
		{"Forbid schedule " + forbidName, 1, chaosPipelineUnit(forbidName, prs)},
		{"maxActiveRuns of " + maxName, 1, chaosPipelineUnit(maxName, prs)},
	}
	for _, g := range groups {
		var spans []chaosSpan
		for _, c := range containers {
			r := stored[c.run]
			if c.creates == 0 || c.starts == 0 || r == nil {
				continue // not ours, never ran, or told by checkChaosContainers
			}
			unit, end := g.unit(r)
			if unit == "" {
				continue
			}
			s := chaosSpan{unit: unit, start: c.start, end: c.death,
				what: fmt.Sprintf("run %s attempt %d", r.RunID, c.attempt)}
			if c.attempt >= 1 && c.attempt <= len(r.Attempts) && r.Attempts[c.attempt-1].StopCode == jobs.StopWorkerLost && end != nil {
				s.lostAfter = *end
				s.what += " (WorkerLost)"
			}
			spans = append(spans, s)
		}
		o := chaosOverlaps(spans, g.limit)
		t.Logf("%s: %d containers, at most %d of %d places held at once; %d lost workers' containers ran on after their place was given up (admitted)",
			g.name, len(spans), o.peak, g.limit, o.admitted)
		for _, v := range o.violations {
			t.Errorf("%s: %s", g.name, v)
		}
	}
	for _, p := range slices.Backward(cl.procs) {
		p.stop()
	}
}

// chaosPoolUnit: a run of the pool holds one place until it ends.
func chaosPoolUnit(pool string) func(r *jobs.Run) (string, *time.Time) {
	return func(r *jobs.Run) (string, *time.Time) {
		if r.Pool != pool {
			return "", nil
		}
		return r.RunID, r.FinishedAt
	}
}

// chaosPipelineUnit: a stage's run holds the place of its pipeline run,
// which ends after all its stages.
func chaosPipelineUnit(pipeline string, prs map[string]*jobs.PipelineRun) func(r *jobs.Run) (string, *time.Time) {
	return func(r *jobs.Run) (string, *time.Time) {
		if r.Spec.Stage == nil {
			return "", nil
		}
		pr := prs[r.Spec.Stage.PipelineRunID]
		if pr == nil || pr.Pipeline != pipeline {
			return "", nil
		}
		return pr.PipelineRunID, pr.FinishedAt
	}
}

// chaosSpan is a container's life as it holds a place of its unit (a run
// in a pool, a pipeline run) in a bounded group.
type chaosSpan struct {
	unit       string
	what       string    // the container, for messages
	start, end time.Time // end zero: never seen dying
	// lostAfter, when set, is when the README lets the container run on
	// without a place: its attempt was recorded WorkerLost and its unit
	// ended then.
	lostAfter time.Time
}

type chaosOverlap struct {
	violations []string
	peak       int // the most units holding places at once
	admitted   int // spans cut at lostAfter
}

// chaosOverlaps sweeps the spans in time and tells each moment more than
// limit units held places at once, with the spans that did.
func chaosOverlaps(spans []chaosSpan, limit int) chaosOverlap {
	var o chaosOverlap
	never := time.Unix(1<<40, 0)
	type point struct {
		at    time.Time
		start bool
		span  int
	}
	var points []point
	for i := range spans {
		s := &spans[i]
		end := s.end
		if end.IsZero() {
			end = never
		}
		if !s.lostAfter.IsZero() && s.start.Before(s.lostAfter) && end.After(s.lostAfter) {
			end = s.lostAfter
			o.admitted++
		}
		points = append(points, point{s.start, true, i}, point{end, false, i})
	}
	// A death and a start at the same moment: the death first.
	sort.SliceStable(points, func(i, j int) bool {
		if !points[i].at.Equal(points[j].at) {
			return points[i].at.Before(points[j].at)
		}
		return !points[i].start && points[j].start
	})
	live := map[string][]int{} // unit -> its spans running
	for _, p := range points {
		u := spans[p.span].unit
		if !p.start {
			live[u] = slices.DeleteFunc(live[u], func(i int) bool { return i == p.span })
			if len(live[u]) == 0 {
				delete(live, u)
			}
			continue
		}
		live[u] = append(live[u], p.span)
		o.peak = max(o.peak, len(live))
		if len(live) <= limit {
			continue
		}
		var held []string
		for unit, is := range live {
			for _, i := range is {
				s := spans[i]
				end := "still running"
				if !s.end.IsZero() {
					end = s.end.Format("15:04:05.000")
				}
				held = append(held, fmt.Sprintf("%s: %s %s–%s", unit, s.what, s.start.Format("15:04:05.000"), end))
			}
		}
		sort.Strings(held)
		o.violations = append(o.violations, fmt.Sprintf("at %s %d hold places at once, at most %d may: %s",
			p.at.Format("15:04:05.000"), len(live), limit, strings.Join(held, "; ")))
	}
	return o
}
