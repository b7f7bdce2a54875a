package docker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

// removals is a Docker client that only removes, and records how: which
// containers are gone, how many removes overlapped, and every removal
// that came too early.
type removals struct {
	Client  // nil: cleanup calls nothing else
	created []*ctr

	mu           sync.Mutex
	gone         []string            // container ids, as each remove returned
	before       map[string][]string // container id → the ids that must be gone first
	running      int
	most         int
	network      bool
	volumes      []string
	early        []string
	errs, absent map[string]bool // container ids whose remove fails, or finds nothing
}

func (f *removals) ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error {
	f.mu.Lock()
	for _, first := range f.before[id] {
		if !slices.Contains(f.gone, first) {
			f.early = append(f.early, "container "+id+" before "+first)
		}
	}
	if !opts.Force || !opts.RemoveVolumes {
		f.early = append(f.early, "container "+id+" removed without Force and RemoveVolumes")
	}
	f.running++
	f.most = max(f.most, f.running)
	f.mu.Unlock()
	// Fake time: the sleep ends once every goroutine of the bubble waits,
	// so the removes cleanup made at once are all running by then.
	time.Sleep(50 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	f.gone = append(f.gone, id)
	switch {
	case f.errs[id]:
		return errors.New("daemon says no")
	case f.absent[id]:
		return cerrdefs.ErrNotFound
	}
	return nil
}

func (f *removals) NetworkRemove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allGone("network " + id)
	f.network = id == "net-id"
	return nil
}

func (f *removals) VolumeRemove(ctx context.Context, id string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allGone("volume " + id)
	f.volumes = append(f.volumes, id)
	return nil
}

// allGone reports a removal of what containers may still use (the task's
// network and volumes) that came before all of them were gone.
func (f *removals) allGone(what string) {
	for _, c := range f.created {
		if !slices.Contains(f.gone, c.id) {
			f.early = append(f.early, what+" before container "+c.id)
		}
	}
}

// TestCleanupRemovesEverythingInOrder: cleanup removes every container it
// created, the independent ones at once, a container that takes volumes
// from another before that one, and the network and volumes only once
// every container is gone; a failed remove is logged with its container,
// one that finds nothing is not.
func TestCleanupRemovesEverythingInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		def := func(name string, from ...string) *ctr {
			d := jobs.ContainerDefinition{Name: name}
			for _, s := range from {
				d.VolumesFrom = append(d.VolumesFrom, jobs.VolumeFrom{SourceContainer: s})
			}
			return &ctr{def: d, id: "id-" + name}
		}
		// data's volumes go to app, app's to report; a, b and c take none.
		data, app, report := def("data"), def("app", "data"), def("report", "app")
		created := []*ctr{data, def("a"), app, def("b"), def("c"), report}
		f := &removals{
			created: created,
			before:  map[string][]string{"id-data": {"id-app"}, "id-app": {"id-report"}},
			errs:    map[string]bool{"id-b": true},
			absent:  map[string]bool{"id-c": true},
		}
		var logged strings.Builder
		tr := &taskRun{task: &worker.Task{}, log: zerolog.New(&logged), created: created,
			network: "gantry-net", networkID: "net-id", volumes: []string{"vol-1", "vol-2"}}
		New(f).cleanup(context.Background(), tr)

		var ids []string
		for _, c := range created {
			ids = append(ids, c.id)
		}
		gone := slices.Sorted(slices.Values(f.gone))
		slices.Sort(ids)
		equal(t, "containers removed", gone, ids)
		if !f.network || !slices.Equal(f.volumes, tr.volumes) {
			t.Errorf("network removed %v, volumes %v; want net-id and %v", f.network, f.volumes, tr.volumes)
		}
		for _, e := range f.early {
			t.Errorf("removed too early: %s", e)
		}
		// data, a, b and c are the first creation wave: they go together.
		if f.most != 4 {
			t.Errorf("at most %d removes at once, want 4 (data, a, b, c)", f.most)
		}
		if out := logged.String(); strings.Count(out, `"remove container"`) != 1 ||
			!strings.Contains(out, `"container":"b"`) || !strings.Contains(out, "daemon says no") {
			t.Errorf("logged %s; want the one failed remove, b's", out)
		}
	})
}
