package docker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/gantry-dev/gantry/worker"
)

// BenchmarkRunIndependentContainers runs, against the real daemon, tasks of
// 1 and 4 containers with no dependency between them, each running true,
// and reports the medians of five times: from Run's call until every
// container has started (the task's Started callback: images, network,
// creates and starts), from then until Run returns (the exits and the
// cleanup), of the cleanup alone (from its first container remove until
// Run returns), of its container removes (until the network's remove
// begins) and of the whole Run. The medians, rather than ns/op's
// mean, keep a slow daemon call on a shared machine from weighing; run
// with, for example,
//
//	go test -run '^$' -bench RunIndependentContainers -benchtime 15x ./worker/docker/
func BenchmarkRunIndependentContainers(b *testing.B) {
	cli := sampletest.Docker(b)
	img := sampletest.Image(b)
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			label := b.Name()
			sampletest.Cleanup(b, cli, label)
			timer := &removeTimer{Client: cli}
			rt := New(timer, WithLabels(map[string]string{testLabel: label}),
				WithLogger(zerolog.New(zerolog.NewTestWriter(b)).Level(zerolog.WarnLevel)))
			var toStarted, afterStarted, cleanup, removes, toEnd []time.Duration
			run := 0
			for b.Loop() {
				run++
				var cs []jobs.ContainerDefinition
				for i := range n {
					cs = append(cs, jobs.ContainerDefinition{Name: fmt.Sprintf("c%d", i), Image: img, Command: []string{"true"}})
				}
				var started time.Time
				task := &worker.Task{
					RunID:      fmt.Sprintf("bench-c%d-%d-%d", n, time.Now().UnixNano(), run),
					Attempt:    1,
					Def:        jobs.TaskDefinition{Family: "bench", ContainerDefinitions: cs},
					PullPolicy: worker.PullNever,
					Started:    func([]jobs.ContainerResult) { started = time.Now() },
				}
				timer.reset()
				begin := time.Now()
				res, err := rt.Run(b.Context(), task, &recordSink{})
				end := time.Now()
				if err != nil {
					b.Fatalf("Run: %v", err)
				}
				for _, c := range res.Containers {
					if c.ExitCode == nil {
						b.Fatalf("container %s did not run: %+v", c.Name, c)
					}
				}
				if started.IsZero() {
					b.Fatalf("Started was not called: %+v", res.Containers)
				}
				toStarted = append(toStarted, started.Sub(begin))
				afterStarted = append(afterStarted, end.Sub(started))
				all, containers := timer.times(end)
				cleanup = append(cleanup, all)
				removes = append(removes, containers)
				toEnd = append(toEnd, end.Sub(begin))
			}
			b.ReportMetric(median(toStarted), "ms-to-started")
			b.ReportMetric(median(afterStarted), "ms-after-started")
			b.ReportMetric(median(cleanup), "ms-cleanup")
			b.ReportMetric(median(removes), "ms-container-removes")
			b.ReportMetric(median(toEnd), "ms-run")
		})
	}
}

// removeTimer is the benchmark's daemon client: it notes when a run's
// cleanup began, with its first container remove, and when its network
// remove began, once every container was gone.
type removeTimer struct {
	Client
	mu         sync.Mutex
	first, net time.Time
}

func (c *removeTimer) ContainerRemove(ctx context.Context, id string, opts container.RemoveOptions) error {
	c.mu.Lock()
	if c.first.IsZero() {
		c.first = time.Now()
	}
	c.mu.Unlock()
	return c.Client.ContainerRemove(ctx, id, opts)
}

func (c *removeTimer) NetworkRemove(ctx context.Context, id string) error {
	c.mu.Lock()
	c.net = time.Now()
	c.mu.Unlock()
	return c.Client.NetworkRemove(ctx, id)
}

func (c *removeTimer) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.first, c.net = time.Time{}, time.Time{}
}

// times returns how long the cleanup took, until end, and its
// container removes alone (all of it for a task without a network).
func (c *removeTimer) times(end time.Time) (cleanup, containers time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.net.IsZero() {
		return end.Sub(c.first), end.Sub(c.first)
	}
	return end.Sub(c.first), c.net.Sub(c.first)
}

// median returns the median of ds in milliseconds.
func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	m := ds[len(ds)/2]
	if len(ds)%2 == 0 {
		m = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
	}
	return float64(m) / float64(time.Millisecond)
}
