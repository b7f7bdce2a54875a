package jobs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkScheduleNext measures computing a schedule's next fire time, the
// cron engine's inner step.
func BenchmarkScheduleNext(b *testing.B) {
	for _, cron := range []string{"* * * * * *", "0 2 * * *", "@every 10m"} {
		b.Run(cron, func(b *testing.B) {
			s := &Schedule{Cron: cron, Timezone: "Europe/Paris"}
			t := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			for b.Loop() {
				next, err := s.Next(t)
				if err != nil {
					b.Fatal(err)
				}
				t = next
			}
		})
	}
}

// BenchmarkDAGReadiness measures deciding which stages of a pipeline start
// next, for a wide and a deep DAG half done.
func BenchmarkDAGReadiness(b *testing.B) {
	for _, shape := range []struct {
		name  string
		width int
		depth int
	}{{"wide-100x3", 100, 3}, {"deep-1x300", 1, 300}} {
		b.Run(shape.name, func(b *testing.B) {
			var y strings.Builder
			y.WriteString("name: bench\nstages:\n")
			status := map[string]Status{}
			for d := range shape.depth {
				for w := range shape.width {
					name := fmt.Sprintf("s%d_%d", d, w)
					fmt.Fprintf(&y, "  - name: %s\n    taskDefinition: t\n", name)
					if d > 0 {
						fmt.Fprintf(&y, "    dependsOn: [s%d_%d]\n", d-1, w)
					}
					status[name] = StatusPending
					if d < shape.depth/2 {
						status[name] = StatusSucceeded
					}
				}
			}
			p, err := ParsePipeline([]byte(y.String()))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				start, _ := p.Next(status, nil)
				if len(start) == 0 {
					b.Fatal("nothing to start")
				}
			}
		})
	}
}

// BenchmarkRunApply measures folding one worker event into a run.
func BenchmarkRunApply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := newRun(0)
		r.Apply(ev(1, 1, StatusStarting))
		r.Apply(ev(1, 2, StatusRunning))
		r.Apply(ev(1, 3, StatusSucceeded))
	}
}
