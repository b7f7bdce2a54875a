package server

import (
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkRunMetrics is what the metrics add to the event application:
// per run that moved (runMoved: a start, an end, or both in one batch, as
// for a short run) and per batch of 500 such runs with the batch's own
// observations, the size BenchmarkApplyEvents (storage) applies in one
// call. Run it beside that benchmark to compare: the metrics' share is
// their ns/op here over its.
func BenchmarkRunMetrics(b *testing.B) {
	t0 := time.Now()
	started, finished := t0.Add(time.Second), t0.Add(3*time.Second)
	running := &jobs.Run{Status: jobs.StatusRunning, CreatedAt: t0, StartedAt: &started}
	ended := &jobs.Run{Status: jobs.StatusSucceeded, CreatedAt: t0, StartedAt: &started, FinishedAt: &finished}
	failed := &jobs.Run{Status: jobs.StatusFailed, StopCode: jobs.StopEssentialExited, CreatedAt: t0, StartedAt: &started, FinishedAt: &finished}
	newM := func() *metrics {
		m := newMetrics()
		m.register(prometheus.NewRegistry(), nil)
		return m
	}
	b.Run("start", func(b *testing.B) {
		m := newM()
		b.ReportAllocs()
		for b.Loop() {
			m.runMoved(jobs.StatusStarting, false, running)
		}
	})
	b.Run("end", func(b *testing.B) {
		m := newM()
		b.ReportAllocs()
		for b.Loop() {
			m.runMoved(jobs.StatusRunning, true, failed)
		}
	})
	b.Run("start+end", func(b *testing.B) {
		m := newM()
		b.ReportAllocs()
		for b.Loop() {
			m.runMoved(jobs.StatusQueued, false, ended)
		}
	})
	b.Run("batch=500", func(b *testing.B) {
		m := newM()
		b.ReportAllocs()
		for b.Loop() {
			for range 500 {
				m.runMoved(jobs.StatusQueued, false, ended)
			}
			m.batchApplied(500, time.Millisecond)
		}
	})
	b.Run("parallel start+end", func(b *testing.B) {
		m := newM()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.runMoved(jobs.StatusQueued, false, ended)
			}
		})
	})
}
