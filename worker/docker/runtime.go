package docker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

// Bounds on calls made with contexts of the runtime's own, so that a
// cancelled run still sets up, stops and cleans up, but a stuck daemon
// cannot hold it forever.
const (
	setupTimeout   = 2 * time.Minute
	cleanupTimeout = 2 * time.Minute
	// stopGrace is added to a container's stop timeout for the stop call.
	stopGrace = 30 * time.Second
	// logDrain is how long the output of an exited container may take to
	// arrive before its attach stream is closed.
	logDrain = 30 * time.Second
)

// Runtime runs tasks as Docker containers. It implements worker.Runtime and
// is safe for concurrent use: it keeps no state between runs.
type Runtime struct {
	cli                Client
	log                zerolog.Logger
	allowedHostPaths   []string
	stopTimeoutDefault time.Duration
	daemonWait         time.Duration // rewait.go
	labels             map[string]string
	exits              exitWatch
	images             presentImages // image.go
	ecs                ecsConfig     // ecs_options.go

	started, startFailures atomic.Uint64 // Stats
}

// Stats are what a Runtime counted since it was made: what `gantry worker
// --metrics` exports beside the worker's own. Counters only grow.
type Stats struct {
	// ContainersStarted counts the containers the daemon started.
	ContainersStarted uint64
	// ContainerStartFailures counts the containers the daemon refused to
	// create or to start (the attempt fails with TaskFailedToStart).
	ContainerStartFailures uint64
}

// Stats returns the runtime's counts.
func (r *Runtime) Stats() Stats {
	return Stats{ContainersStarted: r.started.Load(), ContainerStartFailures: r.startFailures.Load()}
}

var _ worker.Runtime = (*Runtime)(nil)

// New returns a Runtime that drives the Docker daemon through cli.
func New(cli Client, opts ...Option) *Runtime {
	r := &Runtime{cli: cli, log: zerolog.Nop(), stopTimeoutDefault: DefaultStopTimeout, daemonWait: DefaultDaemonWait}
	for _, o := range opts {
		o(r)
	}
	return r
}

// taskRun is one attempt in progress: what was created (for cleanup) and
// the containers' states. Only Run's goroutine touches it.
type taskRun struct {
	task   *worker.Task
	prefix string // gantry-<run>-<attempt>
	log    zerolog.Logger

	hostPaths map[string]string // task volume → resolved host path
	scratch   map[string]string // task volume → Docker volume name

	network, networkID string
	volumes            []string
	containers         []*ctr // in definition order
	created            []*ctr
}

// Run runs one attempt of a task as worker.Runtime describes: images first
// (ctx bounds pulls; an image this runtime found before is not inspected
// again, and if it went since, create says so and it is made present then),
// then network, volumes and containers, created with a context of its own
// so that a cancel cannot leave half of them unrecorded (the sources of
// volumesFrom and links before the containers naming them, as ECS does,
// and the others at once); containers start as dependsOn and links allow
// (deps.go), those with nothing left to wait for at once, and the task
// ends when an essential container exits or ctx is done. Everything
// created is removed before Run returns.
func (r *Runtime) Run(ctx context.Context, t *worker.Task, logs worker.LogSink) (*worker.Result, error) {
	if len(t.Def.ContainerDefinitions) == 0 {
		return nil, errors.New("task definition has no containers")
	}
	tr := &taskRun{
		task:    t,
		prefix:  fmt.Sprintf("gantry-%s-%d", t.RunID, t.Attempt),
		log:     r.log.With().Str("run", t.RunID).Int("attempt", t.Attempt).Logger(),
		scratch: map[string]string{},
	}
	var err error
	if tr.hostPaths, err = r.hostPaths(&t.Def); err != nil {
		return nil, err
	}
	setup(t, worker.SetupImages)
	if err := r.ensureImages(ctx, t); err != nil && ctx.Err() == nil {
		return nil, err
	}
	if ctx.Err() != nil {
		// Cancelled while pulling: nothing exists yet, and the run ends as
		// a stopped one, not as one that could not start.
		for _, d := range t.Def.ContainerDefinitions {
			tr.containers = append(tr.containers, &ctr{def: d, reason: "Stopped before start: " + context.Cause(ctx).Error()})
		}
		return tr.result(), nil
	}

	defer r.cleanup(ctx, tr)
	setup(t, worker.SetupCreating)
	setupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupTimeout)
	defer cancel()
	if err := r.createNetwork(setupCtx, tr); err != nil {
		return nil, err
	}
	if err := r.createVolumes(setupCtx, tr); err != nil {
		return nil, err
	}
	for _, d := range t.Def.ContainerDefinitions {
		tr.containers = append(tr.containers, &ctr{def: d, name: tr.prefix + "-" + d.Name, logsDone: make(chan struct{})})
	}
	for _, wave := range createWaves(tr.containers) {
		if err := r.createWave(ctx, setupCtx, tr, wave); err != nil {
			return nil, err
		}
	}
	return r.runContainers(ctx, setupCtx, tr, logs)
}

// setup tells t's worker which step Run has reached.
func setup(t *worker.Task, step worker.SetupStep) {
	if t.Setup != nil {
		t.Setup(step)
	}
}

// createWave creates the containers of one wave at once, then records in
// tr, in the wave's order, each that Docker has, so that cleanup removes
// it. A container whose image went since the runtime last found it is
// created again once the image is back, one at a time: the pull, if any,
// reports its progress from Run's goroutine, and a second container of
// the same image finds it present. It returns the first error in the
// wave's order.
func (r *Runtime) createWave(ctx, setupCtx context.Context, tr *taskRun, wave []*ctr) error {
	errs := make([]error, len(wave))
	inParallel(len(wave), func(i int) {
		errs[i] = r.createContainer(setupCtx, tr, wave[i])
	})
	for i, c := range wave {
		if errors.Is(errs[i], errImageGone) {
			if errs[i] = r.ensureImage(ctx, c.def.Image, pullPolicy(tr.task), tr.task.Pulling); errs[i] == nil {
				errs[i] = r.createContainer(setupCtx, tr, c)
			}
		}
		if c.id != "" {
			tr.created = append(tr.created, c)
		}
	}
	var first error
	for _, err := range errs {
		if err != nil {
			r.startFailures.Add(1)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// result reports every container in definition order.
func (tr *taskRun) result() *worker.Result {
	res := &worker.Result{Containers: make([]jobs.ContainerResult, 0, len(tr.containers))}
	for _, c := range tr.containers {
		if c.started {
			res.Containers = append(res.Containers, c.result)
			continue
		}
		reason := c.reason
		if reason == "" {
			reason = "Not started"
		}
		res.Containers = append(res.Containers, jobs.ContainerResult{Name: c.def.Name, Reason: reason})
	}
	return res
}

// maxParallel bounds the daemon calls a task makes at once to create or to
// start its containers. ECS takes at most 10 containers in a task, so a
// task within ECS's limits is never held back; gantry does not refuse
// larger ones, and the bound keeps one of them from sending the daemon a
// burst of calls, each holding a connection and a goroutine here.
const maxParallel = 10

// inParallel calls f(0), …, f(n-1), at most maxParallel at a time, and
// returns once all have returned. Each call must touch only what its index
// names: the caller reads the results after inParallel returns.
func inParallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// createWaves splits createOrder(cs) into waves that may each be created
// at once: a container is in the wave after the latest of the containers
// it takes volumes from or links to, so that Docker has those when it
// creates it, and every container of the first wave names none. A source
// that createOrder puts after the container (a cycle, broken where it
// closes) is not waited for, and Docker's error names it as before.
func createWaves(cs []*ctr) [][]*ctr {
	order := createOrder(cs)
	byName := make(map[string]*ctr, len(cs))
	for _, c := range cs {
		byName[c.def.Name] = c
	}
	wave := make(map[*ctr]int, len(cs))
	var waves [][]*ctr
	for _, c := range order {
		w := 0
		after := func(name string) {
			// Only the containers placed already have a wave.
			if s, ok := byName[name]; ok && s != c {
				if sw, placed := wave[s]; placed {
					w = max(w, sw+1)
				}
			}
		}
		for _, vf := range c.def.VolumesFrom {
			after(vf.SourceContainer)
		}
		for _, name := range c.def.LinkTargets() {
			after(name)
		}
		wave[c] = w
		if w == len(waves) {
			waves = append(waves, nil)
		}
		waves[w] = append(waves[w], c)
	}
	return waves
}

// createOrder is the order to create cs in: definition order, except that
// the containers whose volumes a container takes (volumesFrom) or that it
// links to come before it, as ECS creates them. Validation refuses cycles;
// should one get here, it is broken where it closes, and Docker's error
// names the container missing.
func createOrder(cs []*ctr) []*ctr {
	byName := make(map[string]*ctr, len(cs))
	for _, c := range cs {
		byName[c.def.Name] = c
	}
	out := make([]*ctr, 0, len(cs))
	placed := make(map[*ctr]bool, len(cs))
	visiting := map[*ctr]bool{}
	var place func(c *ctr)
	place = func(c *ctr) {
		if placed[c] || visiting[c] {
			return
		}
		visiting[c] = true
		for _, vf := range c.def.VolumesFrom {
			if s := byName[vf.SourceContainer]; s != nil {
				place(s)
			}
		}
		for _, name := range c.def.LinkTargets() {
			if s := byName[name]; s != nil {
				place(s)
			}
		}
		delete(visiting, c)
		placed[c] = true
		out = append(out, c)
	}
	for _, c := range cs {
		place(c)
	}
	return out
}
