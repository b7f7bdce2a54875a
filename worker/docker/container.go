package docker

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

// Labels set on everything the runtime creates.
const (
	LabelRun       = "gantry.run"
	LabelAttempt   = "gantry.attempt"
	LabelContainer = "gantry.container"
	// LabelStaged marks an attempt whose end the worker completes after
	// its containers exit (a pipeline stage's /gantry/out goes to the
	// object store): found exited after a restart, it did not end.
	LabelStaged = "gantry.staged"
	// LabelAckSubject holds the ack subject of the job delivery the
	// attempt runs under (worker.Task.AckSubject): the worker restarted
	// after a crash hands back with it the job of an attempt it stops.
	// Only containers carry it.
	LabelAckSubject = "gantry.ack-subject"
)

// Defaults applied to every container.
const (
	pidsLimit = 4096
	// The kernel takes CPU shares from 2 to 262144; ECS's agent passes a
	// container cpu outside that range as the nearest bound, and so do we.
	minShares = 2
	maxShares = 262144
)

// ctr is one container of a task run and what the runtime knows of it.
type ctr struct {
	def  jobs.ContainerDefinition
	name string // Docker's name: gantry-<run>-<attempt>-<container>
	id   string

	attach types.HijackedResponse
	// closeOutput closes the output stream being read (the attach, or the
	// log followed once the daemon came back: rewait.go); outputEnded is
	// when the last one read ended.
	closeOutput func()
	outputEnded time.Time
	// rewaitAt is when the wait was last set up again, outageFrom when the
	// outage it was part of began (rewait.go).
	rewaitAt, outageFrom time.Time
	waitC                <-chan container.WaitResponse
	waitErrC             <-chan error
	died                 <-chan int // the exit code, from the daemon's die event
	logsDone             chan struct{}

	started   bool
	startedAt time.Time // when the runtime started it (deps.go)
	// startedStopped: the task was stopped while its start was under way
	// (stopTimeoutOf).
	startedStopped bool
	exited         bool
	// stopping: asked to stop (stop), its reason set; read by the wait's
	// goroutine too (rewait.go).
	stopping atomic.Bool
	reason   string
	result   jobs.ContainerResult
}

func (r *Runtime) objectLabels(t *worker.Task) map[string]string {
	l := make(map[string]string, len(r.labels)+3)
	for k, v := range r.labels {
		l[k] = v
	}
	l[LabelRun] = t.RunID
	l[LabelAttempt] = strconv.Itoa(t.Attempt)
	if len(t.Binds) > 0 {
		l[LabelStaged] = "true"
	}
	return l
}

// stopTimeout is how long c has between SIGTERM and SIGKILL.
func (r *Runtime) stopTimeout(c jobs.ContainerDefinition) time.Duration {
	if c.StopTimeout > 0 {
		return time.Duration(c.StopTimeout) * time.Second
	}
	return r.stopTimeoutDefault
}

// createContainer creates c and sets c.id once Docker has it; the caller
// records it in tr (createWave). It touches nothing of tr's but to read it,
// so that the containers of a wave are created at once.
func (r *Runtime) createContainer(ctx context.Context, tr *taskRun, c *ctr) error {
	d := c.def
	for _, mp := range d.MountPoints {
		if _, ok := tr.hostPaths[mp.SourceVolume]; ok {
			continue
		}
		if _, ok := tr.scratch[mp.SourceVolume]; !ok {
			return fmt.Errorf("container %s: mount point %s: no volume %q in the task definition", d.Name, mp.ContainerPath, mp.SourceVolume)
		}
	}
	env := make([]string, 0, len(d.Environment)+len(tr.task.Env))
	for _, kv := range d.Environment {
		env = append(env, kv.Name+"="+kv.Value)
	}
	// Task variables come last so that GANTRY_RUN_ID and the like win.
	for _, kv := range tr.task.Env {
		env = append(env, kv.Name+"="+kv.Value)
	}
	labels := r.objectLabels(tr.task)
	labels[LabelContainer] = d.Name
	if tr.task.AckSubject != "" {
		labels[LabelAckSubject] = tr.task.AckSubject
	}
	stopSecs := int(r.stopTimeout(d) / time.Second)

	cfg := &container.Config{
		Image:        d.Image,
		Cmd:          d.Command,
		Entrypoint:   d.EntryPoint,
		Env:          env,
		WorkingDir:   d.WorkingDirectory,
		User:         d.User,
		Labels:       labels,
		AttachStdout: true,
		AttachStderr: true,
		StopTimeout:  &stopSecs,
	}
	binds, mounts := tr.mounts(d)
	limit := int64(pidsLimit)
	hc := &container.HostConfig{
		Binds:       binds,
		Mounts:      mounts,
		SecurityOpt: []string{"no-new-privileges"},
		CapDrop:     []string{"NET_RAW"},
		Resources:   container.Resources{PidsLimit: &limit},
	}
	if tr.network != "" {
		hc.NetworkMode = container.NetworkMode(tr.network)
	}
	if d.Memory > 0 {
		hc.Memory = int64(d.Memory) << 20
		// No swap beyond the limit: the hard limit is the container's memory,
		// as in ECS without maxSwap.
		hc.MemorySwap = hc.Memory
	}
	if d.MemoryReservation > 0 {
		hc.MemoryReservation = int64(d.MemoryReservation) << 20
	}
	if d.CPU > 0 {
		hc.CPUShares = int64(min(max(d.CPU, minShares), maxShares))
	}

	if err := r.applyECS(tr, c, cfg, hc); err != nil { // ecs_container.go
		return fmt.Errorf("container %s: %w", d.Name, err)
	}
	resp, err := r.cli.ContainerCreate(ctx, cfg, hc, tr.endpoints(d.Name), nil, c.name)
	// The task's images were all found or pulled before the containers are
	// created (ensureImages), so an image missing now was removed since:
	// whether this runtime still remembered it (it skipped the inspect) or
	// a container created beside this one forgot it first.
	if err != nil && cerrdefs.IsNotFound(err) {
		r.images.forget(d.Image)
		return fmt.Errorf("create container %s: %w: %w", d.Name, errImageGone, err)
	}
	if err != nil {
		return fmt.Errorf("create container %s: %w", d.Name, err)
	}
	c.id = resp.ID
	for _, w := range resp.Warnings {
		tr.log.Warn().Str("container", d.Name).Msg(w)
	}
	return nil
}
