package docker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/gantry-dev/gantry/worker"
)

// BenchmarkRunIndependentContainers runs, against the real daemon, tasks of
// 1 and 4 containers with no dependency between them, each running true,
// and reports the medians of two times: from Run's call until every
// container has started (the task's Started callback: images, network,
// creates and starts) and of the whole Run (with the exits and the
// cleanup). The medians, rather than ns/op's mean, keep a slow daemon
// call on a shared machine from weighing; run with, for example,
//
//	go test -run '^$' -bench RunIndependentContainers -benchtime 15x ./worker/docker/
func BenchmarkRunIndependentContainers(b *testing.B) {
	cli := sampletest.Docker(b)
	img := sampletest.Image(b)
	for _, n := range []int{1, 4} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			label := b.Name()
			sampletest.Cleanup(b, cli, label)
			rt := New(cli, WithLabels(map[string]string{testLabel: label}),
				WithLogger(zerolog.New(zerolog.NewTestWriter(b)).Level(zerolog.WarnLevel)))
			var toStarted, toEnd []time.Duration
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
				toEnd = append(toEnd, end.Sub(begin))
			}
			b.ReportMetric(median(toStarted), "ms-to-started")
			b.ReportMetric(median(toEnd), "ms-run")
		})
	}
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
