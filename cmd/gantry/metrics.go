package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/worker/docker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// metricsFlag is --metrics, the address of the Prometheus endpoint of up,
// server and worker.
type metricsFlag struct{ addr string }

func (f *metricsFlag) add(c *cobra.Command) {
	c.Flags().StringVar(&f.addr, "metrics", os.Getenv("GANTRY_METRICS_ADDR"),
		"address to serve Prometheus metrics on, at /metrics, e.g. 127.0.0.1:9180 (off when empty; port 0 picks a free one, logged at start: metrics ready addr=...; env GANTRY_METRICS_ADDR)")
}

// metricsEndpoint is the bound --metrics address and the registry it
// serves: a registry of our own, not Prometheus's global one, so that
// nothing else registers into it unseen (and tests run side by side).
type metricsEndpoint struct {
	ln  net.Listener
	reg *prometheus.Registry
}

// listen binds --metrics before any role starts, so that an address in use
// fails the command at once, naming the flag; nil when --metrics is off.
func (f *metricsFlag) listen() (*metricsEndpoint, error) {
	if f.addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("--metrics %s: the address is in use; pick another", f.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", f.addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &metricsEndpoint{ln: ln, reg: reg}, nil
}

// registerer is where the roles register their metrics; nil when
// --metrics is off.
func (e *metricsEndpoint) registerer() prometheus.Registerer {
	if e == nil {
		return nil
	}
	return e.reg
}

// close releases the address of an endpoint whose role never ran (the
// command failed before); after serve it changes nothing.
func (e *metricsEndpoint) close() {
	if e != nil {
		e.ln.Close()
	}
}

// serve serves GET /metrics until ctx is done. A collector that fails
// (the store did not answer in time, say) leaves its metrics out of that
// scrape, logged, and the rest is served.
func (e *metricsEndpoint) serve(ctx context.Context, log zerolog.Logger) error {
	h := promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{ErrorLog: promLog{log}, ErrorHandling: promhttp.ContinueOnError,
		Registry: e.reg, Timeout: 30 * time.Second})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: httpIdleTimeout}
	// Serve returns as soon as Shutdown begins; serve returns once the
	// scrapes in flight have ended (or been cut after 5 s: the server's
	// collectors give up after 3), so that none reads from a store or a
	// connection its caller closes next.
	shut := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shut)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	})
	defer stop()
	log.Info().Str("addr", e.ln.Addr().String()).Msg("metrics ready at /metrics")
	if err := srv.Serve(e.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("--metrics: %w", err)
	}
	<-shut
	return nil
}

// role is a role for serveAll that serves the endpoint until life is done,
// or nil when --metrics is off. life is not the role's own context: the
// metrics of a server or a worker stopping (a worker's --grace) are worth
// a scrape until it has stopped.
func (e *metricsEndpoint) role(life context.Context, log zerolog.Logger) func(context.Context) error {
	if e == nil {
		return nil
	}
	return func(context.Context) error { return e.serve(life, log) }
}

// alongside runs role and serves the endpoint until role returns; without
// an endpoint it runs role alone. The endpoint failing ends role (its
// context is canceled) and is the error returned.
func (e *metricsEndpoint) alongside(ctx context.Context, log zerolog.Logger, role func(context.Context) error) error {
	if e == nil {
		return role(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() {
		err := e.serve(life, log)
		if err != nil {
			cancel(err)
		}
		served <- err
	}()
	err := role(ctx)
	endLife()
	if serr := <-served; serr != nil {
		return serr
	}
	return err
}

// promLog passes promhttp's errors to the log.
type promLog struct{ log zerolog.Logger }

func (l promLog) Println(v ...any) { l.log.Warn().Msg(fmt.Sprint(v...)) }

// workerCollector exports a worker's counts and its runtime's (worker.Stats,
// docker.Stats) at each scrape: the worker counts with atomics of its own,
// and knows nothing of Prometheus.
type workerCollector struct {
	id, cluster string
	w           *worker.Worker
	rt          *docker.Runtime
}

var (
	workerInfoDesc = prometheus.NewDesc("gantry_worker_info",
		"Always 1: the worker's id, cluster and gantry version.", []string{"worker", "cluster", "version"}, nil)
	workerSlotsDesc = prometheus.NewDesc("gantry_worker_slots",
		"Runs the worker runs at once (--slots).", nil, nil)
	workerSlotsUsedDesc = prometheus.NewDesc("gantry_worker_slots_used",
		"Slots held by attempts here, from the job's taking (image pulls included) to the attempt's report.", nil, nil)
	workerTasksRunningDesc = prometheus.NewDesc("gantry_worker_tasks_running",
		"Attempts whose containers run here now.", nil, nil)
	workerJobsTakenDesc = prometheus.NewDesc("gantry_worker_jobs_taken_total",
		"Job deliveries the worker took from the queue, those it handed back at once included.", nil, nil)
	workerTasksStartedDesc = prometheus.NewDesc("gantry_worker_tasks_started_total",
		"Attempts whose first containers started here.", nil, nil)
	workerAttemptsEndedDesc = prometheus.NewDesc("gantry_worker_attempts_ended_total",
		"Attempts the worker reported ended, by status (SUCCEEDED, FAILED, CANCELED); those handed back are not counted here.",
		[]string{"status"}, nil)
	workerHandedBackDesc = prometheus.NewDesc("gantry_worker_jobs_handed_back_total",
		"Jobs the worker gave back to the queue, by reason: shutdown (--grace ran out), runtime_unavailable (Docker did not answer), "+
			"busy (no room then), too_large (more CPU or memory than the worker has), claim_failed, unmatched (its constraints ask for labels the worker does not have), "+
			"taken_over (taken for lost while it set up the attempt, whose next one runs elsewhere; its containers did not start).",
		[]string{"reason"}, nil)
	workerLogLinesDesc = prometheus.NewDesc("gantry_worker_log_lines_total",
		"Lines of container output the worker shipped to NATS.", nil, nil)
	workerLogBytesDesc = prometheus.NewDesc("gantry_worker_log_bytes_total",
		"Bytes of container output the worker shipped to NATS, without the lines' newlines.", nil, nil)
	workerContainersStartedDesc = prometheus.NewDesc("gantry_worker_containers_started_total",
		"Containers the Docker daemon started for the worker.", nil, nil)
	workerStartFailuresDesc = prometheus.NewDesc("gantry_worker_container_start_failures_total",
		"Containers the Docker daemon refused to create or to start (the attempt fails with TaskFailedToStart).", nil, nil)
)

func (c workerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{workerInfoDesc, workerSlotsDesc, workerSlotsUsedDesc, workerTasksRunningDesc,
		workerJobsTakenDesc, workerTasksStartedDesc, workerAttemptsEndedDesc, workerHandedBackDesc, workerLogLinesDesc,
		workerLogBytesDesc, workerContainersStartedDesc, workerStartFailuresDesc} {
		ch <- d
	}
}

func (c workerCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.w.Stats()
	var rs docker.Stats
	if c.rt != nil {
		rs = c.rt.Stats()
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(workerInfoDesc, 1, c.id, c.cluster, version)
	gauge(workerSlotsDesc, float64(st.Slots))
	gauge(workerSlotsUsedDesc, float64(st.SlotsInUse))
	gauge(workerTasksRunningDesc, float64(st.TasksRunning))
	counter(workerJobsTakenDesc, st.JobsTaken)
	counter(workerTasksStartedDesc, st.TasksStarted)
	counter(workerAttemptsEndedDesc, st.AttemptsEnded.Succeeded, string(jobs.StatusSucceeded))
	counter(workerAttemptsEndedDesc, st.AttemptsEnded.Failed, string(jobs.StatusFailed))
	counter(workerAttemptsEndedDesc, st.AttemptsEnded.Canceled, string(jobs.StatusCanceled))
	counter(workerHandedBackDesc, st.HandedBack.Shutdown, "shutdown")
	counter(workerHandedBackDesc, st.HandedBack.RuntimeDown, "runtime_unavailable")
	counter(workerHandedBackDesc, st.HandedBack.Busy, "busy")
	counter(workerHandedBackDesc, st.HandedBack.TooLarge, "too_large")
	counter(workerHandedBackDesc, st.HandedBack.ClaimFailed, "claim_failed")
	counter(workerHandedBackDesc, st.HandedBack.Unmatched, "unmatched")
	counter(workerHandedBackDesc, st.HandedBack.TakenOver, "taken_over")
	counter(workerLogLinesDesc, st.LogLines)
	counter(workerLogBytesDesc, st.LogBytes)
	counter(workerContainersStartedDesc, rs.ContainersStarted)
	counter(workerStartFailuresDesc, rs.ContainerStartFailures)
}
