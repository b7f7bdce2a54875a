package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// scrape GETs http://addr/metrics and returns its samples by name and
// labels as the text format writes them
// (gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("scrape: bad line %q", line)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape: %v", err)
	}
	return samples
}

// TestMetricsOfARun: `gantry up --metrics` serves the Go and process
// metrics and gantry's own, and one run that prints a line moves each
// counter of its way once: submitted, started, ended SUCCEEDED, its queue
// wait and duration observed, its container and its line counted by the
// worker.
func TestMetricsOfARun(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--metrics", "127.0.0.1:0")
	addr := logAddr(t, in.log, "metrics ready")
	before := scrape(t, addr)
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "gantry_runs_submitted_total",
		`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`, `gantry_runs_active{status="QUEUED"}`,
		"gantry_worker_slots", `gantry_worker_info{cluster="default",version="dev",worker="w` + in.label[len(in.label)-5:] + `"}`} {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s before any run", name)
		}
	}
	if before["gantry_runs_submitted_total"] != 0 || before["gantry_worker_slots"] != 4 {
		t.Errorf("before any run: %v submitted, %v slots", before["gantry_runs_submitted_total"], before["gantry_worker_slots"])
	}

	id := in.runDetached("echo", "hello")
	in.waitStatus(id, jobs.StatusSucceeded)
	// The run is SUCCEEDED in the store a moment before the counters
	// move, and the worker gives its slot back after its report.
	var got map[string]float64
	waitFor(t, "the run's end in the metrics", func() bool {
		got = scrape(t, addr)
		return got[`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`] == 1 &&
			got["gantry_event_batch_events_count"] >= 1 && got["gantry_worker_slots_used"] == 0
	})
	for name, want := range map[string]float64{
		"gantry_runs_submitted_total":                                                   1,
		`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`:                      1,
		`gantry_runs_ended_total{status="FAILED",stop_code="EssentialContainerExited"}`: 0,
		"gantry_run_queue_wait_seconds_count":                                           1,
		"gantry_run_duration_seconds_count":                                             1,
		`gantry_runs_active{status="QUEUED"}`:                                           0,
		`gantry_runs_active{status="STARTING"}`:                                         0,
		`gantry_runs_active{status="RUNNING"}`:                                          0,
		"gantry_event_batch_failures_total":                                             0,
		`gantry_fleet_workers{cluster="default",state="ACTIVE"}`:                        1,
		`gantry_fleet_slots{cluster="default"}`:                                         4,
		"gantry_worker_jobs_taken_total":                                                1,
		"gantry_worker_tasks_started_total":                                             1,
		"gantry_worker_tasks_running":                                                   0,
		`gantry_worker_attempts_ended_total{status="SUCCEEDED"}`:                        1,
		"gantry_worker_containers_started_total":                                        1,
		"gantry_worker_container_start_failures_total":                                  0,
		"gantry_worker_log_lines_total":                                                 1,
		"gantry_worker_log_bytes_total":                                                 float64(len("hello")),
		`gantry_worker_jobs_handed_back_total{reason="shutdown"}`:                       0,
		`gantry_worker_jobs_handed_back_total{reason="taken_over"}`:                     0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present: %v); want %v", name, v, ok, want)
		}
	}
	if n := got["gantry_event_batch_events_sum"]; n < 2 { // STARTING, RUNNING and the end, in one report or more
		t.Errorf("gantry_event_batch_events_sum = %v; want the run's events, at least 2", n)
	}
	for name, v := range got {
		if strings.Contains(name, id) {
			t.Errorf("a metric names the run: %s %v", name, v)
		}
	}
}

// TestMetricsAddressInUseNamesTheFlag: each role refuses a --metrics
// address in use at once, naming the flag, before it starts anything.
func TestMetricsAddressInUseNamesTheFlag(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	addr := busy.Addr().String()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GANTRY_") {
			env = append(env, kv)
		}
	}
	for _, args := range [][]string{
		{"up", "--data", t.TempDir(), "--nats-port", "0", "--metrics", addr},
		{"server", "--data", t.TempDir(), "--nats", "nats://127.0.0.1:1", "--metrics", addr},
		{"worker", "--nats", "nats://127.0.0.1:1", "--metrics", addr},
	} {
		_, errOut, code := runBin(t, env, args...)
		if want := "gantry: --metrics " + addr + ": the address is in use; pick another\n"; code != exitGantryError || errOut != want {
			t.Errorf("gantry %s: exit %d, stderr %q; want %d, %q", args[0], code, errOut, exitGantryError, want)
		}
	}
	// GANTRY_METRICS_ADDR is the flag's default.
	_, errOut, code := runBin(t, append(env, "GANTRY_METRICS_ADDR="+addr), "worker", "--nats", "nats://127.0.0.1:1")
	if code != exitGantryError || !strings.Contains(errOut, "--metrics "+addr+": the address is in use") {
		t.Errorf("worker with GANTRY_METRICS_ADDR: exit %d, stderr %q", code, errOut)
	}
	if _, err := (&metricsFlag{addr: "9180"}).listen(); err == nil || !strings.HasPrefix(err.Error(), "--metrics 9180: ") {
		t.Errorf("--metrics 9180: %v; want an error naming the flag", err)
	}
}

// TestMetricsOfServerAndWorkerApart: `gantry server --metrics` and
// `gantry worker --metrics`, two processes, each serve their own metrics
// and only those: the server's runs and fleet on one endpoint, the
// worker's jobs and containers on the other, after one run through them.
func TestMetricsOfServerAndWorkerApart(t *testing.T) {
	t.Parallel()
	cli := sampletest.Docker(t)
	image := sampletest.Image(t)
	label := fmt.Sprintf("e2e-metrics%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)
	server, url := startEmbeddedServer(t, t.TempDir(), "--metrics", "127.0.0.1:0")
	serverAddr := logAddr(t, server.log, "metrics ready")
	in := &instance{t: t, env: append(os.Environ(), "GANTRY_NATS_URL="+url), image: image}
	waitFor(t, "the server", func() bool { _, _, code := in.gantry("ps"); return code == 0 })
	worker := startProc(t, "worker", "--nats", url, "--id", label, "--cluster", "etl", "--grace", "5s",
		"--container-label", sampletest.LabelKey+"="+label, "--metrics", "127.0.0.1:0")
	workerAddr := logAddr(t, worker.log, "metrics ready")
	waitFor(t, "the worker", func() bool { return len(in.workers()) == 1 })

	out, errOut, code := in.gantry("run", "-d", "--cluster", "etl", "--image", image, "--", "echo", "apart")
	if code != 0 {
		t.Fatalf("run -d: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if r := in.waitStatus(id, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled); r.Status != jobs.StatusSucceeded {
		t.Fatalf("run %s: %s", id, r.Status)
	}
	// The store has the end a moment before the server's counters move,
	// and the worker gives its slot back after its report.
	var srv, wrk map[string]float64
	waitFor(t, "the run in the server's metrics", func() bool {
		srv = scrape(t, serverAddr)
		return srv[`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`] == 1 &&
			srv[`gantry_fleet_workers{cluster="etl",state="ACTIVE"}`] == 1
	})
	waitFor(t, "the run in the worker's metrics", func() bool {
		wrk = scrape(t, workerAddr)
		return wrk[`gantry_worker_attempts_ended_total{status="SUCCEEDED"}`] == 1 && wrk["gantry_worker_slots_used"] == 0
	})
	for name, want := range map[string]float64{
		"gantry_runs_submitted_total":                                                   1,
		`gantry_runs_ended_total{status="SUCCEEDED",stop_code=""}`:                      1,
		`gantry_runs_ended_total{status="FAILED",stop_code="EssentialContainerExited"}`: 0,
		"gantry_run_queue_wait_seconds_count":                                           1,
		"gantry_run_duration_seconds_count":                                             1,
		`gantry_runs_active{status="RUNNING"}`:                                          0,
		`gantry_fleet_workers{cluster="etl",state="ACTIVE"}`:                            1,
		`gantry_fleet_slots{cluster="etl"}`:                                             4,
	} {
		if v, ok := srv[name]; !ok || v != want {
			t.Errorf("server: %s = %v (present: %v); want %v", name, v, ok, want)
		}
	}
	for name, want := range map[string]float64{
		`gantry_worker_info{cluster="etl",version="dev",worker="` + label + `"}`: 1,
		"gantry_worker_slots":                          4,
		"gantry_worker_jobs_taken_total":               1,
		"gantry_worker_tasks_started_total":            1,
		"gantry_worker_containers_started_total":       1,
		"gantry_worker_container_start_failures_total": 0,
		"gantry_worker_log_lines_total":                1,
		"gantry_worker_log_bytes_total":                float64(len("apart")),
	} {
		if v, ok := wrk[name]; !ok || v != want {
			t.Errorf("worker: %s = %v (present: %v); want %v", name, v, ok, want)
		}
	}
	// Each endpoint has the Go and process metrics, and its own role's
	// metrics only.
	for _, ep := range []struct {
		role       string
		got        map[string]float64
		own, other string
	}{{"server", srv, "gantry_runs_", "gantry_worker_"}, {"worker", wrk, "gantry_worker_", "gantry_runs_"}} {
		for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
			if _, ok := ep.got[name]; !ok {
				t.Errorf("%s: no %s", ep.role, name)
			}
		}
		if v, ok := ep.got[`promhttp_metric_handler_errors_total{cause="gathering"}`]; !ok || v != 0 {
			t.Errorf("%s: promhttp_metric_handler_errors_total{cause=\"gathering\"} = %v (present: %v); want 0", ep.role, v, ok)
		}
		for name := range ep.got {
			if strings.HasPrefix(name, ep.other) || (ep.role == "worker" && strings.HasPrefix(name, "gantry_") && !strings.HasPrefix(name, ep.own)) {
				t.Errorf("%s serves %s", ep.role, name)
			}
		}
	}
}
