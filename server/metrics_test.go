package server

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gathered is every sample reg gathers, by name and labels as the text
// format writes them (gantry_runs_ended_total{status="FAILED",stop_code="Timeout"});
// a histogram gives its _count and _sum. A collector's error fails the test.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				name, rest, _ := strings.Cut(key, "{")
				if rest != "" {
					rest = "{" + rest
				}
				out[name+"_count"+rest] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+rest] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// checkSamples fails for every sample of want that got does not have.
func checkSamples(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present: %v); want %v", k, g, ok, v)
		}
	}
}

// TestRunMovedCountsStartsAndEndsOnce: a change is counted by what moved
// between the run before and after it, so that the events that come after
// a run ended (an older attempt's, say) count nothing again.
func TestRunMovedCountsStartsAndEndsOnce(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { tt := t0.Add(d); return &tt }
	run := func(st jobs.Status, stopCode string, started, finished *time.Time) *jobs.Run {
		return &jobs.Run{RunID: "r", Status: st, StopCode: stopCode, CreatedAt: t0, StartedAt: started, FinishedAt: finished}
	}
	tests := []struct {
		name          string
		before        jobs.Status
		startedBefore bool
		r             *jobs.Run
		want          map[string]float64
	}{
		{"starts", jobs.StatusStarting, false, run(jobs.StatusRunning, "", at(3*time.Second), nil),
			map[string]float64{"gantry_run_queue_wait_seconds_count": 1, "gantry_run_queue_wait_seconds_sum": 3}},
		{"starts after waiting for its dependsOn: the queue wait is from its release", jobs.StatusStarting, false,
			func() *jobs.Run {
				r := run(jobs.StatusRunning, "", at(10*time.Second), nil)
				r.Attempts = []jobs.Attempt{{Attempt: 1, QueuedAt: at(9 * time.Second)}}
				return r
			}(),
			map[string]float64{"gantry_run_queue_wait_seconds_count": 1, "gantry_run_queue_wait_seconds_sum": 1}},
		{"starts and ends in one batch", jobs.StatusQueued, false, run(jobs.StatusSucceeded, "", at(2*time.Second), at(12*time.Second)),
			map[string]float64{"gantry_run_queue_wait_seconds_count": 1, "gantry_run_queue_wait_seconds_sum": 2,
				`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`: 1,
				"gantry_run_duration_seconds_count":                        1, "gantry_run_duration_seconds_sum": 10}},
		{"ends after it started", jobs.StatusRunning, true, run(jobs.StatusFailed, jobs.StopTimeout, at(time.Second), at(61*time.Second)),
			map[string]float64{`gantry_runs_ended_total{status="FAILED",stop_code="Timeout"}`: 1,
				"gantry_run_duration_seconds_count": 1, "gantry_run_duration_seconds_sum": 60}},
		{"ends without starting: no duration", jobs.StatusQueued, false, run(jobs.StatusCanceled, jobs.StopUserInitiated, nil, at(time.Second)),
			map[string]float64{`gantry_runs_ended_total{status="CANCELED",stop_code="UserInitiated"}`: 1,
				"gantry_run_duration_seconds_count": 0}},
		{"a change after its end counts nothing", jobs.StatusSucceeded, true, run(jobs.StatusSucceeded, "", at(time.Second), at(2*time.Second)),
			map[string]float64{`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`: 0, "gantry_run_duration_seconds_count": 0}},
		{"a retry queued again is no end", jobs.StatusRunning, true, run(jobs.StatusQueued, "", at(time.Second), nil),
			map[string]float64{`gantry_runs_ended_total{status="FAILED",stop_code="EssentialContainerExited"}`: 0,
				"gantry_run_queue_wait_seconds_count": 0}},
		{"an unknown stop code is other", jobs.StatusRunning, true, run(jobs.StatusFailed, "SpotInterruption", at(time.Second), at(2*time.Second)),
			map[string]float64{`gantry_runs_ended_total{status="FAILED",stop_code="other"}`: 1}},
		{"a start reported after the submission's clock: no negative wait", jobs.StatusQueued, false, run(jobs.StatusRunning, "", at(-time.Second), nil),
			map[string]float64{"gantry_run_queue_wait_seconds_count": 1, "gantry_run_queue_wait_seconds_sum": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMetrics()
			reg := prometheus.NewRegistry()
			reg.MustRegister(m.submitted, m.ended.vec, m.queueWait, m.duration)
			m.runMoved(tt.before, tt.startedBefore, tt.r)
			got := gathered(t, reg)
			checkSamples(t, got, tt.want)
			ends := 0.0
			for k, v := range got {
				if strings.HasPrefix(k, "gantry_runs_ended_total{") {
					ends += v
				}
			}
			if want := tt.want[endKey(tt.r)]; ends != want {
				t.Errorf("%v ends counted in all; want %v", ends, want)
			}
		})
	}
}

// endKey is the sample of gantry_runs_ended_total that r's end counts in.
func endKey(r *jobs.Run) string {
	code := r.StopCode
	if stopCodeIndex(code) == len(stopCodes) {
		code = otherStopCode
	}
	return fmt.Sprintf("gantry_runs_ended_total{status=%q,stop_code=%q}", r.Status, code)
}

// TestServerMetrics drives a server (real NATS and store) through the
// paths that count: submissions, a batch of worker events that starts and
// ends a run and its replay, a stop of a queued run; the scrape-time
// gauges read the store and the fleet.
func TestServerMetrics(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	reg := prometheus.NewRegistry()
	s := New(db, q, WithMetrics(reg), WithClock(func() time.Time { return t0 }))

	td, _ := json.Marshal(jobs.TaskDefinition{Family: "m", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "img"}}})
	var ids []string
	for range 3 {
		r, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	// A repeated idempotency key creates no run.
	for range 2 {
		if _, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td, IdempotencyKey: "once"}); err != nil {
			t.Fatal(err)
		}
	}
	checkSamples(t, gathered(t, reg), map[string]float64{"gantry_runs_submitted_total": 4,
		`gantry_runs_active{status="QUEUED"}`: 4, `gantry_runs_active{status="RUNNING"}`: 0})

	zero, one := 0, 1
	ev := func(id string, seq int, st jobs.Status, after time.Duration, exit *int) jobs.Event {
		e := jobs.Event{RunID: id, Attempt: 1, Seq: seq, Status: st, Source: jobs.SourceWorker, Worker: "w1", Time: t0.Add(after), ExitCode: exit}
		if st == jobs.StatusFailed {
			e.StopCode = jobs.StopEssentialExited
		}
		return e
	}
	batch := []jobs.Event{
		ev(ids[0], 1, jobs.StatusStarting, time.Second, nil), ev(ids[0], 2, jobs.StatusRunning, 2*time.Second, nil),
		ev(ids[0], 3, jobs.StatusSucceeded, 7*time.Second, &zero),
		ev(ids[1], 1, jobs.StatusRunning, 4*time.Second, nil),
	}
	s.applyBatch(ctx, &queue.EventBatch{Events: batch})
	s.applyBatch(ctx, &queue.EventBatch{Events: batch}) // a redelivered batch changes nothing
	s.applyBatch(ctx, &queue.EventBatch{Events: []jobs.Event{ev(ids[1], 2, jobs.StatusFailed, 5*time.Second, &one)}})
	if _, err := s.Stop(ctx, ids[2], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stop(ctx, ids[2], ""); err != nil { // stopping it again changes nothing
		t.Fatal(err)
	}
	checkSamples(t, gathered(t, reg), map[string]float64{
		"gantry_runs_submitted_total":                                                   4,
		`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`:                      1,
		`gantry_runs_ended_total{status="FAILED",stop_code="EssentialContainerExited"}`: 1,
		`gantry_runs_ended_total{status="CANCELED",stop_code="UserInitiated"}`:          1,
		`gantry_runs_ended_total{status="FAILED",stop_code="Timeout"}`:                  0,
		"gantry_run_queue_wait_seconds_count":                                           2,
		"gantry_run_queue_wait_seconds_sum":                                             2 + 4,
		"gantry_run_duration_seconds_count":                                             2,
		"gantry_run_duration_seconds_sum":                                               5 + 1,
		"gantry_event_batch_events_count":                                               3,
		"gantry_event_batch_events_sum":                                                 4 + 4 + 1,
		"gantry_event_batch_apply_seconds_count":                                        3,
		"gantry_event_batch_failures_total":                                             0,
		`gantry_runs_active{status="QUEUED"}`:                                           1, // the idempotent one
		`gantry_runs_active{status="STARTING"}`:                                         0,
		`gantry_runs_active{status="RUNNING"}`:                                          0,
		`gantry_pipeline_runs_ended_total{status="SUCCEEDED"}`:                          0,
		`gantry_schedule_fires_total{result="fired"}`:                                   0,
	})
}

// TestPipelineLastEndMetrics: each pipeline's latest end by status comes
// from the store at the scrape, so a restarted server reports it too.
func TestPipelineLastEndMetrics(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	reg := prometheus.NewRegistry()
	New(db, q, WithMetrics(reg))
	p, err := jobs.ParsePipeline([]byte("name: daily\nstages: [{name: a, taskDefinition: t}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	if _, _, err := db.PutPipeline(ctx, p, t0); err != nil {
		t.Fatal(err)
	}
	if _, ok := gathered(t, reg)[`gantry_pipeline_last_end_timestamp_seconds{pipeline="daily",status="SUCCEEDED"}`]; ok {
		t.Fatal("a pipeline no run of which ended has a last end")
	}
	for i, st := range []jobs.Status{jobs.StatusFailed, jobs.StatusSucceeded, jobs.StatusSucceeded} {
		id := fmt.Sprint("pr-", i)
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: "daily", Version: 1, Status: jobs.StatusRunning, CreatedAt: t0}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
		end := t0.Add(time.Duration(i+1) * time.Hour)
		if _, err := db.UpdatePipelineRun(ctx, id, func(pr *jobs.PipelineRun) bool { pr.Status, pr.FinishedAt = st, &end; return true }); err != nil {
			t.Fatal(err)
		}
	}
	// A second server over the same store, as after a restart.
	reg2 := prometheus.NewRegistry()
	New(db, q, WithMetrics(reg2))
	for _, r := range []*prometheus.Registry{reg, reg2} {
		checkSamples(t, gathered(t, r), map[string]float64{
			`gantry_pipeline_last_end_timestamp_seconds{pipeline="daily",status="FAILED"}`:    float64(t0.Add(time.Hour).Unix()),
			`gantry_pipeline_last_end_timestamp_seconds{pipeline="daily",status="SUCCEEDED"}`: float64(t0.Add(3 * time.Hour).Unix()),
		})
		if _, ok := gathered(t, r)[`gantry_pipeline_last_end_timestamp_seconds{pipeline="daily",status="CANCELED"}`]; ok {
			t.Error("CANCELED has a last end; no run was canceled")
		}
	}
}

// TestPipelineWaitingMetric: gantry_pipeline_runs_waiting counts each
// pipeline's PENDING runs, 0 for one with none; the runs of a pipeline
// deleted before the one of its name applied since are not its.
func TestPipelineWaitingMetric(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	reg := prometheus.NewRegistry()
	New(db, q, WithMetrics(reg))
	t0 := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	put := func(src string, at time.Time) {
		t.Helper()
		p, err := jobs.ParsePipeline([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.PutPipeline(ctx, p, at); err != nil {
			t.Fatal(err)
		}
	}
	create := func(id, pipeline string, st jobs.Status, at time.Time) {
		t.Helper()
		pr := &jobs.PipelineRun{PipelineRunID: id, Pipeline: pipeline, Version: 1, Status: st, CreatedAt: at}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	put("name: sales\nmaxActiveRuns: 1\nstages: [{name: a, taskDefinition: t}]\n", t0)
	put("name: idle\nstages: [{name: a, taskDefinition: t}]\n", t0)
	put("name: again\nstages: [{name: a, taskDefinition: t}]\n", t0)
	create("pr-1", "sales", jobs.StatusRunning, t0.Add(time.Minute))
	create("pr-2", "sales", jobs.StatusPending, t0.Add(2*time.Minute))
	create("pr-3", "sales", jobs.StatusPending, t0.Add(3*time.Minute))
	create("pr-4", "again", jobs.StatusPending, t0.Add(time.Minute))
	if err := db.DeletePipeline(ctx, "again", nil); err != nil {
		t.Fatal(err)
	}
	put("name: again\nstages: [{name: a, taskDefinition: t}]\n", t0.Add(time.Hour))
	checkSamples(t, gathered(t, reg), map[string]float64{
		`gantry_pipeline_runs_waiting{pipeline="sales"}`: 2,
		`gantry_pipeline_runs_waiting{pipeline="idle"}`:  0,
		`gantry_pipeline_runs_waiting{pipeline="again"}`: 0,
	})
}

// TestFleetMetricsSumHeartbeats: the fleet gauges sum the live workers'
// heartbeats by cluster; only ACTIVE workers offer slots; a cluster seen
// once stays, with zeros.
func TestFleetMetricsSumHeartbeats(t *testing.T) {
	w := func(cluster string, st jobs.WorkerState, runtimeErr string, slots, used int) jobs.WorkerInfo {
		return jobs.WorkerInfo{ID: fmt.Sprint(cluster, slots, used), Cluster: cluster, State: st, RuntimeError: runtimeErr,
			Capacity: jobs.Resources{Slots: slots}, InUse: jobs.Resources{Slots: used}}
	}
	c := &stateCollector{seen: map[string]bool{}}
	got := c.fleet([]jobs.WorkerInfo{
		w("etl", jobs.WorkerActive, "", 4, 1), w("default", jobs.WorkerActive, "", 2, 2), w("etl", jobs.WorkerActive, "", 8, 0),
		w("etl", jobs.WorkerDraining, "", 4, 4), w("etl", jobs.WorkerActive, "docker down", 4, 0),
	})
	want := []clusterFleet{
		{name: "default", workers: map[string]int{"ACTIVE": 1}, slots: 2, free: 0},
		{name: "etl", workers: map[string]int{"ACTIVE": 2, "DRAINING": 1, "UNAVAILABLE": 1}, slots: 12, free: 11},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fleetOf = %+v; want %+v", got, want)
	}
	// The etl workers are gone: etl reports zeros, not nothing, so that an
	// alert on gantry_fleet_workers{state="ACTIVE"} == 0 fires.
	got = c.fleet([]jobs.WorkerInfo{w("default", jobs.WorkerActive, "", 2, 0)})
	want = []clusterFleet{
		{name: "default", workers: map[string]int{"ACTIVE": 1}, slots: 2, free: 2},
		{name: "etl", workers: map[string]int{}, slots: 0, free: 0},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after etl's workers left: fleetOf = %+v; want %+v", got, want)
	}
}

// TestUnusualEndsCountedFromMany: the counter of a pair of status and stop
// code not made at start is made at its first end; ends from many
// goroutines at once all count.
func TestUnusualEndsCountedFromMany(t *testing.T) {
	m := newMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.ended.vec)
	now := time.Now()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			m.runMoved(jobs.StatusRunning, true, &jobs.Run{Status: jobs.StatusFailed, StopCode: jobs.StopTerminationNotice, StartedAt: &now, FinishedAt: &now})
			m.runMoved(jobs.StatusRunning, true, &jobs.Run{Status: jobs.StatusFailed, StopCode: "Preempted", StartedAt: &now, FinishedAt: &now})
		})
	}
	wg.Wait()
	checkSamples(t, gathered(t, reg), map[string]float64{
		`gantry_runs_ended_total{status="FAILED",stop_code="TerminationNotice"}`: 50,
		`gantry_runs_ended_total{status="FAILED",stop_code="other"}`:             50,
	})
}

// TestMetricScrapeAfterStop: a scrape that comes as the server stops,
// its store and its NATS connection closed, does not panic: the metrics
// read from them are errors of that scrape, the counters are served.
func TestMetricScrapeAfterStop(t *testing.T) {
	nc, q, db := testStack(t)
	reg := prometheus.NewRegistry()
	New(db, q, WithMetrics(reg))
	db.Close()
	nc.Close()
	families, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "gantry_runs_active") {
		t.Errorf("gather after stop: %v; want the active runs' error", err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	if !slices.Contains(names, "gantry_runs_submitted_total") || slices.Contains(names, "gantry_runs_active") {
		t.Errorf("gathered after stop: %v", names)
	}
}

// TestRunQueueOldestMetric: gantry_run_queue_oldest_seconds is how long
// the oldest QUEUED run of each cluster and priority has waited, at the
// scrape's time; absent for a cluster and priority with none queued; a
// retry waits from the end of its backoff, 0 until then.
func TestRunQueueOldestMetric(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	t0 := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	var (
		mu  sync.Mutex
		now = t0
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	at := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = t0.Add(d) }
	reg := prometheus.NewRegistry()
	s := New(db, q, WithMetrics(reg), WithClock(clock))
	oldest := func() map[string]float64 {
		t.Helper()
		out := map[string]float64{}
		for k, v := range gathered(t, reg) {
			if strings.HasPrefix(k, "gantry_run_queue_oldest_seconds{") {
				out[k] = v
			}
		}
		return out
	}
	key := func(cluster string, p jobs.Priority) string {
		return fmt.Sprintf("gantry_run_queue_oldest_seconds{cluster=%q,priority=%q}", cluster, p)
	}
	if got := oldest(); len(got) != 0 {
		t.Fatalf("with no run queued: %v; want none", got)
	}
	td, _ := json.Marshal(jobs.TaskDefinition{Family: "m", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "img"}}})
	submit := func(cluster string, p jobs.Priority, rs *jobs.RetryStrategy) string {
		t.Helper()
		r, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td, Cluster: cluster, Priority: p, RetryStrategy: rs})
		if err != nil {
			t.Fatal(err)
		}
		return r.RunID
	}
	lowA := submit("", jobs.PriorityLow, nil) // the default cluster
	at(10 * time.Second)
	submit("", jobs.PriorityLow, nil)
	normal := submit("", "", nil)
	at(25 * time.Second)
	etl := submit("etl", jobs.PriorityHigh, &jobs.RetryStrategy{Attempts: 2})
	at(time.Minute)
	want := map[string]float64{
		key("default", jobs.PriorityLow):    60,
		key("default", jobs.PriorityNormal): 50,
		key("etl", jobs.PriorityHigh):       35,
	}
	if got := oldest(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("gauges %v; want %v", got, want)
	}

	ev := func(id string, seq int, st jobs.Status) jobs.Event {
		e := jobs.Event{RunID: id, Attempt: 1, Seq: seq, Status: st, Source: jobs.SourceWorker, Worker: "w1", Time: clock()}
		if st == jobs.StatusFailed {
			one := 1
			e.StopCode, e.ExitCode = jobs.StopEssentialExited, &one
		}
		return e
	}
	// The oldest low run taken, the other is the oldest; the normal one
	// taken, there is no normal run queued; the etl run failed, its retry
	// waits for its backoff: 0.
	s.applyBatch(ctx, &queue.EventBatch{Events: []jobs.Event{
		ev(lowA, 1, jobs.StatusStarting), ev(normal, 1, jobs.StatusRunning), ev(etl, 1, jobs.StatusFailed)}})
	want = map[string]float64{
		key("default", jobs.PriorityLow): 50,
		key("etl", jobs.PriorityHigh):    0,
	}
	if got := oldest(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after two runs were taken and one failed: gauges %v; want %v", got, want)
	}
	r, err := db.GetRun(ctx, etl)
	if err != nil || r.Status != jobs.StatusQueued || r.Current().NotBefore == nil {
		t.Fatalf("the etl run is not waiting for a retry: %+v, %v", r, err)
	}
	at(time.Hour)
	want = map[string]float64{
		key("default", jobs.PriorityLow): time.Hour.Seconds() - 10,
		key("etl", jobs.PriorityHigh):    t0.Add(time.Hour).Sub(*r.Current().NotBefore).Seconds(),
	}
	if got := oldest(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("an hour on: gauges %v; want %v", got, want)
	}
}

// TestPoolMetrics: the pool gauges read each pool's slots, the slots its
// runs hold and the runs waiting for one, from the store at the scrape.
func TestPoolMetrics(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	reg := prometheus.NewRegistry()
	s := New(db, q, WithMetrics(reg))
	for _, body := range []string{`{"name":"warehouse","slots":1}`, `{"name":"idle","slots":0}`} {
		if _, err := s.apiPoolSet(ctx, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	td, _ := json.Marshal(jobs.TaskDefinition{Family: "m", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "img"}}})
	for range 3 {
		if _, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td, Pool: "warehouse"}); err != nil {
			t.Fatal(err)
		}
	}
	checkSamples(t, gathered(t, reg), map[string]float64{
		`gantry_pool_slots{pool="warehouse"}`:        1,
		`gantry_pool_slots_in_use{pool="warehouse"}`: 1,
		`gantry_pool_runs_waiting{pool="warehouse"}`: 2,
		`gantry_pool_slots{pool="idle"}`:             0,
		`gantry_pool_slots_in_use{pool="idle"}`:      0,
		`gantry_pool_runs_waiting{pool="idle"}`:      0,
	})
}

// TestWebhookMetricsStartAtZero: a hook's delivery counters exist at 0
// from its add, and again from the start of the next server, so that its
// first failure after a restart is seen by increase(); a delete removes
// them.
func TestWebhookMetricsStartAtZero(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	reg := prometheus.NewRegistry()
	s := New(db, q, WithMetrics(reg))
	if _, err := s.apiWebhookAdd(ctx, []byte(`{"name":"ops","url":"http://127.0.0.1:9/"}`)); err != nil {
		t.Fatal(err)
	}
	zero := map[string]float64{
		`gantry_webhook_deliveries_total{hook="ops",result="delivered"}`: 0,
		`gantry_webhook_deliveries_total{hook="ops",result="retry"}`:     0,
		`gantry_webhook_deliveries_total{hook="ops",result="failed"}`:    0,
	}
	checkSamples(t, gathered(t, reg), zero)

	// The next server (a restart) knows the hook from the store once its
	// sender starts.
	reg2 := prometheus.NewRegistry()
	s2 := New(db, q, WithMetrics(reg2))
	sendCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s2.sendWebhooks(sendCtx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := gathered(t, reg2)[`gantry_webhook_deliveries_total{hook="ops",result="failed"}`]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted server's metrics lack the hook's counters after 10s")
		}
	}
	checkSamples(t, gathered(t, reg2), zero)
	if _, err := s2.apiWebhookDelete(ctx, []byte(`{"name":"ops"}`)); err != nil {
		t.Fatal(err)
	}
	for k := range gathered(t, reg2) {
		if strings.Contains(k, `hook="ops"`) {
			t.Errorf("%s after the hook's delete", k)
		}
	}
}
