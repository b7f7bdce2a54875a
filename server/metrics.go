package server

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/prometheus/client_golang/prometheus"
)

// WithMetrics registers the server's Prometheus metrics (README, "Metrics")
// with reg. Without it the server counts all the same, a few atomic adds
// per run, but nothing reads the counts.
func WithMetrics(reg prometheus.Registerer) Option { return func(c *config) { c.metrics = reg } }

// scrapeTimeout bounds what a scrape asks of the store and of NATS: a
// scrape that waits longer reports an error for those metrics instead.
const scrapeTimeout = 3 * time.Second

// metrics are the server's counters and histograms. Those updated for
// every run (submitted, ended, queue wait, duration) are resolved once
// here: an update is an atomic add or a histogram's observation, with no
// lock and no allocation; the labelled vectors are for rare events.
type metrics struct {
	submitted prometheus.Counter
	ended     *endCounters
	queueWait prometheus.Histogram
	duration  prometheus.Histogram

	batchEvents   prometheus.Histogram
	batchSeconds  prometheus.Histogram
	batchFailures prometheus.Counter

	pipelinesEnded *prometheus.CounterVec
	fires          *prometheus.CounterVec
	// Deleted past --run-retention (history.go).
	runsDeleted, pipelineRunsDeleted prometheus.Counter
	// Webhook deliveries' tries by hook and result (webhooks.go).
	webhookDeliveries *prometheus.CounterVec
}

// terminalStatuses and stopCodes are the values of gantry_runs_ended_total's
// labels.
var (
	terminalStatuses = [...]jobs.Status{jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}
	stopCodes        = [...]string{"", jobs.StopEssentialExited, jobs.StopUserInitiated, jobs.StopTimeout,
		jobs.StopFailedToStart, jobs.StopWorkerLost, jobs.StopTerminationNotice}
)

// otherStopCode stands for a stop code not in stopCodes (one a newer
// worker reports), which keeps the label's values bounded.
const otherStopCode = "other"

// endCounters are gantry_runs_ended_total's counters by status and stop
// code (terminalIndex, stopCodeIndex), each looked up in the vector once:
// after that an end costs an atomic load and an atomic add. The usual
// pairs are made at start, so that their series are there, at 0, before
// the first such end (a rate over a series that appears at 1 misses that
// 1); the others (SUCCEEDED with a stop code, say) only if they happen.
type endCounters struct {
	vec   *prometheus.CounterVec
	cells [len(terminalStatuses)][len(stopCodes) + 1]atomic.Pointer[counterCell]
}

type counterCell struct{ prometheus.Counter }

// usualEnds are the pairs of status and stop code made at start.
var usualEnds = []struct {
	status   jobs.Status
	stopCode string
}{
	{jobs.StatusSucceeded, ""},
	{jobs.StatusFailed, jobs.StopEssentialExited}, {jobs.StatusFailed, jobs.StopTimeout},
	{jobs.StatusFailed, jobs.StopFailedToStart}, {jobs.StatusFailed, jobs.StopWorkerLost},
	{jobs.StatusCanceled, jobs.StopUserInitiated},
}

func newEndCounters() *endCounters {
	e := &endCounters{vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantry_runs_ended_total",
		Help: "Runs that ended, by status and stopCode (empty for SUCCEEDED; other for a stop code this server does not know)."},
		[]string{"status", "stop_code"})}
	for _, u := range usualEnds {
		e.counter(terminalIndex(u.status), stopCodeIndex(u.stopCode))
	}
	return e
}

// counter is the counter of the status and stop code at those indexes.
func (e *endCounters) counter(status, stopCode int) prometheus.Counter {
	cell := &e.cells[status][stopCode]
	if c := cell.Load(); c != nil {
		return c.Counter
	}
	code := otherStopCode
	if stopCode < len(stopCodes) {
		code = stopCodes[stopCode]
	}
	// Two first ends at once store the same child: the vector has one
	// per pair of labels.
	c := &counterCell{e.vec.WithLabelValues(string(terminalStatuses[status]), code)}
	cell.Store(c)
	return c.Counter
}

// Buckets of the run histograms: queue waits from tens of milliseconds (an
// idle fleet) to hours (a backlog), durations of batch jobs from a second
// to a day.
var (
	queueWaitBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600}
	durationBuckets  = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 43200, 86400}
	batchBuckets     = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500}
	applyBuckets     = prometheus.ExponentialBuckets(0.0005, 2.5, 12) // 0.5 ms to ~12 s
)

func newMetrics() *metrics {
	m := &metrics{
		submitted: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_runs_submitted_total",
			Help: "Runs created, by the API, gantry.submit, pipelines and schedules (a repeated idempotencyKey creates none)."}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_run_queue_wait_seconds",
			Help:    "Time from a run's submission (or, for one that waited for its dependsOn, its release to the queue) to its first RUNNING (its containers started), observed when it starts.",
			Buckets: queueWaitBuckets}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_run_duration_seconds",
			Help:    "Time from a run's first RUNNING to its end, retries included, observed when it ends; runs that never started are not observed.",
			Buckets: durationBuckets}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_event_batch_events",
			Help:    "Worker events in each batch the server applied to the store (its count is the batches applied).",
			Buckets: batchBuckets}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "gantry_event_batch_apply_seconds",
			Help:    "Time to apply a batch of worker events: the store's transaction, the status publications, the retries it queued and the pipelines it advanced.",
			Buckets: applyBuckets}),
		batchFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_event_batch_failures_total",
			Help: "Batches of worker events the store refused; each comes back after the ack wait."}),
		pipelinesEnded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantry_pipeline_runs_ended_total",
			Help: "Pipeline runs that ended, by status."}, []string{"status"}),
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantry_schedule_fires_total",
			Help: "Fire times of schedules, by result: fired, skipped_late (misfire: skip), skipped_concurrent (concurrencyPolicy Forbid), suspended, missed (passed over while no server ran, or by misfire: runAll past its cap)."},
			[]string{"result"}),
		runsDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_runs_deleted_total",
			Help: "Runs (stage runs included) deleted from the store because they ended more than --run-retention ago."}),
		pipelineRunsDeleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "gantry_pipeline_runs_deleted_total",
			Help: "Pipeline runs deleted from the store because they ended more than --run-retention ago."}),
		webhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gantry_webhook_deliveries_total",
			Help: "Tries of webhook deliveries, by hook and result: delivered (answered 2xx), retry (to be tried again), failed (given up after the retries)."},
			[]string{"hook", "result"}),
	}
	m.ended = newEndCounters()
	for _, st := range terminalStatuses {
		m.pipelinesEnded.WithLabelValues(string(st))
	}
	for _, o := range []scheduler.Outcome{scheduler.Fired, scheduler.SkippedLate, scheduler.SkippedConcurrent, scheduler.Suspended, scheduler.Missed} {
		m.fires.WithLabelValues(string(o))
	}
	return m
}

// webhookKnown makes a hook's delivery counters exist at 0, at its add
// and at each start, so that the first failure after a restart is an
// increase that rate() and increase() see, not a series that appears.
func (m *metrics) webhookKnown(hook string) {
	for _, result := range []string{"delivered", "retry", "failed"} {
		m.webhookDeliveries.WithLabelValues(hook, result)
	}
}

// register registers the metrics, and those read on scrape from s, with reg.
func (m *metrics) register(reg prometheus.Registerer, s *Server) {
	reg.MustRegister(m.submitted, m.ended.vec, m.queueWait, m.duration, m.batchEvents, m.batchSeconds, m.batchFailures,
		m.pipelinesEnded, m.fires, m.runsDeleted, m.pipelineRunsDeleted, m.webhookDeliveries, &stateCollector{s: s, seen: map[string]bool{}})
}

// terminalIndex is st's index in terminalStatuses, -1 if it is not there.
func terminalIndex(st jobs.Status) int {
	switch st {
	case jobs.StatusSucceeded:
		return 0
	case jobs.StatusFailed:
		return 1
	case jobs.StatusCanceled:
		return 2
	}
	return -1
}

// stopCodeIndex is code's index in stopCodes, len(stopCodes) (other) if
// it is not there.
func stopCodeIndex(code string) int {
	for i, c := range stopCodes {
		if c == code {
			return i
		}
	}
	return len(stopCodes)
}

// runMoved records what changed in r, whose status was before and which
// had started before or not: its start (the queue wait) and its end (by
// status and stop code, and its duration). Each call is for one stored
// change, so a start or an end is seen once.
func (m *metrics) runMoved(before jobs.Status, startedBefore bool, r *jobs.Run) {
	if !startedBefore && r.StartedAt != nil {
		queued := r.CreatedAt
		if len(r.Attempts) > 0 && r.Attempts[0].QueuedAt != nil {
			queued = *r.Attempts[0].QueuedAt // released after its dependsOn: the wait for them is not the queue's
		}
		m.queueWait.Observe(max(r.StartedAt.Sub(queued).Seconds(), 0))
	}
	if before.Terminal() {
		return
	}
	i := terminalIndex(r.Status)
	if i < 0 {
		return
	}
	m.ended.counter(i, stopCodeIndex(r.StopCode)).Inc()
	if r.StartedAt != nil && r.FinishedAt != nil {
		m.duration.Observe(max(r.FinishedAt.Sub(*r.StartedAt).Seconds(), 0))
	}
}

// batchApplied records a batch of n events applied in d.
func (m *metrics) batchApplied(n int, d time.Duration) {
	m.batchEvents.Observe(float64(n))
	m.batchSeconds.Observe(d.Seconds())
}

// pipelineEnded records the end of a pipeline run.
func (m *metrics) pipelineEnded(st jobs.Status) {
	m.pipelinesEnded.WithLabelValues(string(st)).Inc()
}

// fired records the outcome of n fire times of a schedule.
func (m *metrics) fired(o scheduler.Outcome, n int) {
	m.fires.WithLabelValues(string(o)).Add(float64(n))
}

// pruned records the runs and pipeline runs a prune deleted.
func (m *metrics) pruned(runs, pipelineRuns int) {
	m.runsDeleted.Add(float64(runs))
	m.pipelineRunsDeleted.Add(float64(pipelineRuns))
}

// stateCollector reports, at each scrape, how many runs are not ended (from
// the store's status index: its cost follows their number, not that of all
// runs recorded), how long the oldest queued run of each cluster and
// priority has waited (a few seeks per cluster with queued runs), when
// each pipeline's latest runs ended (a seek per pipeline and status), how
// many of each pipeline's runs wait PENDING (its name, and the PENDING
// runs from the status index), each
// pool's slots, slots in use and runs waiting (a seek per pool and count) and
// the fleet as its heartbeats tell it (read at most once a second, as
// placement reads it).
type stateCollector struct {
	s *Server
	// seen holds every cluster a heartbeat has named since the server
	// started: a cluster whose last worker is gone reports 0 workers and
	// slots, not nothing, so that an alert on "no ACTIVE worker" fires.
	mu   sync.Mutex
	seen map[string]bool
}

var (
	activeRunsDesc = prometheus.NewDesc("gantry_runs_active",
		"Runs not ended, by status (QUEUED, STARTING, RUNNING), as the store holds them at the scrape.", []string{"status"}, nil)
	queueOldestDesc = prometheus.NewDesc("gantry_run_queue_oldest_seconds",
		"How long the oldest QUEUED run (not yet taken by a worker) of the cluster and priority has waited, from when its current attempt was queued (a run that waited for its dependencies: from its release; a retry: from the end of its backoff, 0 until then), as the store holds them at the scrape; absent when none is queued.",
		[]string{"cluster", "priority"}, nil)
	fleetWorkersDesc = prometheus.NewDesc("gantry_fleet_workers",
		"Live workers (heartbeats), by cluster and state: ACTIVE, DRAINING (drained, or stopping through its --grace), or UNAVAILABLE (active but its container runtime does not answer); 0 for a cluster seen since the server started whose workers are gone.",
		[]string{"cluster", "state"}, nil)
	fleetSlotsDesc = prometheus.NewDesc("gantry_fleet_slots",
		"Slots (runs at once) of the cluster's ACTIVE workers.", []string{"cluster"}, nil)
	fleetFreeDesc = prometheus.NewDesc("gantry_fleet_slots_free",
		"Slots free on the cluster's ACTIVE workers, as their last heartbeats say.", []string{"cluster"}, nil)
	poolSlotsDesc = prometheus.NewDesc("gantry_pool_slots",
		"Slots of the pool (how many of its runs may run at once; 0: paused), from the store at the scrape.", []string{"pool"}, nil)
	poolInUseDesc = prometheus.NewDesc("gantry_pool_slots_in_use",
		"Slots of the pool held by runs not ended, or stopped while a worker had just taken them and not yet known to run no container (it may exceed gantry_pool_slots after the slots were lowered).", []string{"pool"}, nil)
	poolWaitingDesc = prometheus.NewDesc("gantry_pool_runs_waiting",
		"Runs QUEUED waiting for a slot of the pool, their jobs not yet in the queue (not those still waiting for their dependsOn).", []string{"pool"}, nil)
	pipelineWaitingDesc = prometheus.NewDesc("gantry_pipeline_runs_waiting",
		"Runs of the pipeline waiting PENDING (for a place: its maxActiveRuns, a backfill's --max-parallel; or for the previous run to succeed: dependsOnPast), from the store at the scrape; 0 when none waits.",
		[]string{"pipeline"}, nil)
	pipelineLastEndDesc = prometheus.NewDesc("gantry_pipeline_last_end_timestamp_seconds",
		"When the pipeline's latest run that ended with this status (SUCCEEDED, FAILED, CANCELED) ended, in Unix seconds, from the store; absent for a status none of its runs ended with.",
		[]string{"pipeline", "status"}, nil)
)

// stateUnavailable is the fleet state of an ACTIVE worker whose runtime
// does not answer.
const stateUnavailable = "UNAVAILABLE"

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- activeRunsDesc
	ch <- queueOldestDesc
	ch <- fleetWorkersDesc
	ch <- fleetSlotsDesc
	ch <- fleetFreeDesc
	ch <- pipelineLastEndDesc
	ch <- pipelineWaitingDesc
	ch <- poolSlotsDesc
	ch <- poolInUseDesc
	ch <- poolWaitingDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if n, err := c.s.db.CountActiveRuns(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(activeRunsDesc, err)
	} else {
		for _, v := range []struct {
			st jobs.Status
			n  int
		}{{jobs.StatusQueued, n.Queued}, {jobs.StatusStarting, n.Starting}, {jobs.StatusRunning, n.Running}} {
			ch <- prometheus.MustNewConstMetric(activeRunsDesc, prometheus.GaugeValue, float64(v.n), string(v.st))
		}
	}
	if waits, err := c.s.db.OldestQueued(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(queueOldestDesc, err)
	} else {
		now := c.s.cfg.now()
		for _, w := range waits {
			ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue,
				max(now.Sub(w.Since).Seconds(), 0), w.Cluster, string(w.Priority))
		}
	}
	if ends, err := c.s.db.LastPipelineEnds(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(pipelineLastEndDesc, err)
	} else {
		for _, e := range ends {
			ch <- prometheus.MustNewConstMetric(pipelineLastEndDesc, prometheus.GaugeValue,
				float64(e.At.UnixNano())/1e9, e.Pipeline, string(e.Status))
		}
	}
	if waiting, err := c.s.db.PipelineRunsWaiting(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(pipelineWaitingDesc, err)
	} else {
		for _, w := range waiting {
			ch <- prometheus.MustNewConstMetric(pipelineWaitingDesc, prometheus.GaugeValue, float64(w.Waiting), w.Pipeline)
		}
	}
	if pools, err := c.s.db.ListPools(ctx); err != nil { // a seek per pool and count
		ch <- prometheus.NewInvalidMetric(poolSlotsDesc, err)
	} else {
		for _, p := range pools {
			ch <- prometheus.MustNewConstMetric(poolSlotsDesc, prometheus.GaugeValue, float64(p.Slots), p.Name)
			ch <- prometheus.MustNewConstMetric(poolInUseDesc, prometheus.GaugeValue, float64(p.InUse), p.Name)
			ch <- prometheus.MustNewConstMetric(poolWaitingDesc, prometheus.GaugeValue, float64(p.Waiting), p.Name)
		}
	}
	workers, err := c.s.liveWorkers(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(fleetWorkersDesc, err)
		return
	}
	for _, cl := range c.fleet(workers) {
		for _, st := range []string{string(jobs.WorkerActive), string(jobs.WorkerDraining), stateUnavailable} {
			ch <- prometheus.MustNewConstMetric(fleetWorkersDesc, prometheus.GaugeValue, float64(cl.workers[st]), cl.name, st)
		}
		ch <- prometheus.MustNewConstMetric(fleetSlotsDesc, prometheus.GaugeValue, float64(cl.slots), cl.name)
		ch <- prometheus.MustNewConstMetric(fleetFreeDesc, prometheus.GaugeValue, float64(cl.free), cl.name)
	}
}

// fleet is fleetOf the workers, with every cluster seen before too.
func (c *stateCollector) fleet(workers []jobs.WorkerInfo) []clusterFleet {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range workers {
		c.seen[workers[i].Cluster] = true
	}
	return fleetOf(workers, c.seen)
}

// clusterFleet is what the fleet metrics say of one cluster.
type clusterFleet struct {
	name        string
	workers     map[string]int // by state
	slots, free int            // of ACTIVE workers
}

// fleetOf sums the workers' heartbeats by cluster, in cluster order; the
// clusters of known that no worker names have zeros.
func fleetOf(workers []jobs.WorkerInfo, known map[string]bool) []clusterFleet {
	byName := map[string]*clusterFleet{}
	for name := range known {
		byName[name] = &clusterFleet{name: name, workers: map[string]int{}}
	}
	for i := range workers {
		w := &workers[i]
		cl := byName[w.Cluster]
		if cl == nil {
			cl = &clusterFleet{name: w.Cluster, workers: map[string]int{}}
			byName[w.Cluster] = cl
		}
		switch {
		case w.State == jobs.WorkerDraining:
			cl.workers[string(jobs.WorkerDraining)]++
		case w.RuntimeError != "":
			cl.workers[stateUnavailable]++
		default:
			cl.workers[string(jobs.WorkerActive)]++
			cl.slots += w.Capacity.Slots
			cl.free += max(w.Free().Slots, 0)
		}
	}
	out := make([]clusterFleet, 0, len(byName))
	for _, cl := range byName {
		out = append(out, *cl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
