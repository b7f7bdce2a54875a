package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/samples"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/gantry-dev/gantry/worker/docker"
)

// TestReportKeepsTheNotes: rewriting BENCHMARKS.md replaces the figures
// and keeps what people wrote from "## Notes" on.
func TestReportKeepsTheNotes(t *testing.T) {
	dir := t.TempDir()
	pts := []scaleSeries{{name: "control-plane", title: "Control plane as N grows", cols: controlPlaneCols,
		rows: []scaleRow{{n: 10, v: []float64{5, 200, 310, 3, 50, 150}}, {n: 100, v: []float64{4, 250, 320, 4, 60, 160}}}}}
	first := []benchResult{{Name: "control-plane", Value: 1, Unit: "runs/s", N: 10}}
	if err := writeReport(dir, first, pts, true); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "BENCHMARKS.md")
	b, _ := os.ReadFile(path)
	notes := "\n## Notes\n\nThe queue was the bottleneck.\n"
	os.WriteFile(path, append(b, notes...), 0o644)
	second := []benchResult{{Name: "control-plane", Value: 2, Unit: "runs/s", N: 10}}
	if err := writeReport(dir, second, pts, true); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	got := string(b)
	if !strings.HasSuffix(got, notes) || strings.Count(got, "## Notes") != 1 {
		t.Fatalf("notes not kept once at the end:\n%s", got)
	}
	if !strings.Contains(got, "| control-plane | 2.0 runs/s") || strings.Contains(got, "| control-plane | 1.0 runs/s") {
		t.Fatalf("figures not replaced:\n%s", got)
	}
	if !strings.Contains(got, "| 100 | 4 | 250 | 320 | 4.0 | 60 |") {
		t.Fatalf("scale table without CPU per run:\n%s", got)
	}
	for _, chart := range []string{"rate", "cost", "cpu"} {
		if _, err := os.Stat(filepath.Join(dir, "BENCHMARKS-control-plane-"+chart+".svg")); err != nil {
			t.Errorf("chart %s: %v", chart, err)
		}
	}
}

// TestReportTablesEachSeries: every series measured gets its own table,
// with its rows in order, and a chart of each column that names one (only
// those).
func TestReportTablesEachSeries(t *testing.T) {
	dir := t.TempDir()
	series := []scaleSeries{
		{name: "memory-server", title: "Server memory as its recorded runs grow",
			cols: []scaleCol{{head: "MiB", format: "%.1f", chart: "rss", title: "memory-server: MiB"}},
			rows: []scaleRow{{n: 1000, v: []float64{40.25}}, {n: 10000, v: []float64{47.5}}}},
		{name: "cron", title: "Cron as schedules grow",
			cols: []scaleCol{{head: "p50 ms", format: "%.1f"}, {head: "p99 ms", format: "%.1f", chart: "p99", title: "cron: p99"}},
			rows: []scaleRow{{n: 500, v: []float64{2, 7.25}}, {n: 2000, v: []float64{3, 9}}}},
		{name: "empty", title: "Not measured"},
	}
	if err := writeReport(dir, nil, series, true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"## Server memory as its recorded runs grow\n\n| N | MiB |\n|---:|---:|\n| 1000 | 40.2 |\n| 10000 | 47.5 |\n\n![MiB by N](BENCHMARKS-memory-server-rss.svg)\n",
		"## Cron as schedules grow\n\n| N | p50 ms | p99 ms |\n|---:|---:|---:|\n| 500 | 2.0 | 7.2 |\n| 2000 | 3.0 | 9.0 |\n\n![p99 ms by N](BENCHMARKS-cron-p99.svg)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report without\n%s\nin\n%s", want, got)
		}
	}
	if strings.Contains(got, "Not measured") {
		t.Errorf("a series without rows has a table:\n%s", got)
	}
	charts, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	for i := range charts {
		charts[i] = filepath.Base(charts[i])
	}
	if want := []string{"BENCHMARKS-cron-p99.svg", "BENCHMARKS-memory-server-rss.svg"}; !slices.Equal(charts, want) {
		t.Errorf("charts %v, want %v", charts, want)
	}
	svg, _ := os.ReadFile(filepath.Join(dir, "BENCHMARKS-cron-p99.svg"))
	if !strings.Contains(string(svg), "cron: p99") || !strings.Contains(string(svg), ">9.9<") || !strings.Contains(string(svg), "N=2000") {
		t.Errorf("cron chart without its title, ticks of tenths (9.9 at the top) or N:\n%s", svg)
	}
}

// TestBenchRejectsNegativeRuns: a bad --runs is refused before anything
// starts, with a message that says what to give.
func TestBenchRejectsNegativeRuns(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"bench", "--only", "control-plane", "--runs", "-5"})
	err := root.ExecuteContext(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--runs -5: give a positive number of runs") {
		t.Fatalf("got %v", err)
	}
}

// TestMessagesBaselineEnds: the baseline of a run's messages alone runs
// its runs to their end and gives a rate.
func TestMessagesBaselineEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rate, _, err := rawRunSteps(ctx, 200, controlPlaneJobSize())
	if err != nil || rate <= 0 {
		t.Fatalf("rate %v, err %v", rate, err)
	}
}

// TestControlPlaneFigures: a small control-plane run, with its
// messages-only baseline, gives every figure, and the scale table takes
// each by its name.
func TestControlPlaneFigures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := &benchOpts{out: io.Discard, progress: io.Discard}
	res, err := controlPlaneAndMessages(ctx, o, 300)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]benchResult{}
	for _, r := range res {
		byName[r.Name] = r
	}
	for _, name := range []string{"control-plane", "control-plane-p50", "control-plane-p99", "control-plane-cpu", "control-plane-vs-messages"} {
		if r, ok := byName[name]; !ok || r.Value <= 0 || r.N != 300 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := byName["control-plane-repeated-ends"]; r.Value != 0 {
		t.Errorf("repeated ends: %v", r.Value)
	}
	row := controlPlaneRow(300, res)
	if row.n != 300 || row.v[0] != byName["control-plane"].Value || row.v[3] != byName["control-plane-p99"].Value ||
		row.v[2] != byName["control-plane-cpu"].Value || row.v[4] <= 0 || row.v[1] != 1e6/row.v[0] ||
		row.v[5] <= 0 || row.v[5] != byName["control-plane-cpu"].BaselineValue {
		t.Fatalf("scale row %+v from %+v", row, res)
	}
}

// Away from the source, the Docker benchmarks use a samples image built
// before, and say so; without one, the error says how to get it.
func TestBenchImageAwayFromTheSource(t *testing.T) {
	cli := sampletest.Docker(t)
	img := sampletest.Image(t)
	ctx := t.Context()
	var progress strings.Builder
	got, err := builtBefore(ctx, cli, img, samples.ErrNoSource, &progress)
	if err != nil || got != img || !strings.Contains(progress.String(), "using the existing "+img) {
		t.Fatalf("builtBefore(%s) = %q, %v; progress %q", img, got, err, progress.String())
	}
	_, err = builtBefore(ctx, cli, "gantry-test/no-such-image:none", samples.ErrNoSource, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "need the image gantry-test/no-such-image:none: run gantry bench (or make images) once from a checkout") ||
		!strings.Contains(err.Error(), "cannot find the github.com/gantry-dev/gantry module") {
		t.Fatalf("without the image: %v", err)
	}
}

// TestCronAtFigures: the cron benchmark at one size (as --report runs it
// at several) gives its four figures, sized by the schedules and their
// fires, and fires none twice.
func TestCronAtFigures(t *testing.T) {
	res := cronAt(t.Context(), 200, 2*time.Second)
	names := []string{"cron-lateness-p99", "cron-lateness-p50", "cron-missed", "cron-doubled"}
	ns := []int{200, 200, 400, 400}
	if len(res) != len(names) {
		t.Fatalf("%d results: %+v", len(res), res)
	}
	for i, r := range res {
		if r.Name != names[i] || r.N != ns[i] {
			t.Errorf("result %d: %s with N %d, want %s with N %d", i, r.Name, r.N, names[i], ns[i])
		}
	}
	if p99, p50 := res[0].Value, res[1].Value; p99 <= 0 || p50 > p99 {
		t.Errorf("lateness p50 %v ms, p99 %v ms", p50, p99)
	}
	if missed := res[2].Value; missed >= 400 {
		t.Errorf("nothing fired: %v of 400 missed", missed)
	}
	if doubled := res[3].Value; doubled != 0 {
		t.Errorf("%v fires doubled", doubled)
	}
}

// TestLogsPairsAgree: the logs benchmark's pair (as --report runs it at
// each size) follows the same container output through the Docker API and
// through gantry, on the real daemon and embedded NATS, and finds them
// byte for byte the same.
func TestLogsPairsAgree(t *testing.T) {
	cli := sampletest.Docker(t)
	img := sampletest.Image(t)
	sampletest.Cleanup(t, cli, "bench-logs-pairs")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	st, err := startBenchStack(ctx, docker.New(cli, docker.WithLabels(sampletest.Labels("bench-logs-pairs"))), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.stop()
	took, base, exact, err := logsPairs{cli: cli, img: img, st: st, progress: io.Discard}.run(ctx, 1, 1)
	if err != nil || !exact || took <= 0 || base <= 0 {
		t.Fatalf("1 MiB: gantry %v ms, Docker API %v ms, byte-exact %v, err %v", took, base, exact, err)
	}
}

// TestCostGrowthComparesTheEnds: the growth of the control plane's CPU a
// run is its largest N's against its smallest N's, whatever lies between,
// and is only judged with 1M runs.
func TestCostGrowthComparesTheEnds(t *testing.T) {
	s := scaleSeries{cols: controlPlaneCols, rows: []scaleRow{
		{n: 10_000, v: []float64{5325, 188, 357, 72, 41639, 150}},
		{n: 100_000, v: []float64{4804, 208, 500, 112, 62119, 200}},
		{n: 1_000_000, v: []float64{4198, 238, 456, 152, 52986, 240}},
	}}
	g, ok := costGrowth(s)
	if !ok {
		t.Fatal("no growth from three rows")
	}
	if g.Value != 456 || g.BaselineValue != 357 || g.N != 1_000_000 || g.metText() != "no" || g.Baseline != "the same at 10000 runs" {
		t.Errorf("growth %+v (met %s)", g, g.metText())
	}
	if _, ok := costGrowth(scaleSeries{cols: controlPlaneCols, rows: s.rows[:1]}); ok {
		t.Error("growth from a single row")
	}
	quick := scaleSeries{cols: controlPlaneCols, rows: []scaleRow{{n: 2000, v: []float64{1, 1, 300, 1, 1, 100}}, {n: 10_000, v: []float64{1, 1, 400, 1, 1, 100}}}}
	if g, _ := costGrowth(quick); g.metText() != "-" {
		t.Errorf("a quick series judged: %s", g.metText())
	}
}

// TestOwnCostGrowthTakesOutTheMessages: the growth of the control
// plane's CPU a run over the messages-only program's compares the ratio
// of the two at the largest N with the ratio at the smallest, and has no
// target.
func TestOwnCostGrowthTakesOutTheMessages(t *testing.T) {
	s := scaleSeries{cols: controlPlaneCols, rows: []scaleRow{
		{n: 10_000, v: []float64{7955, 126, 225, 40, 89920, 100}},
		{n: 100_000, v: []float64{6739, 148, 271, 60, 90537, 128}},
		{n: 1_000_000, v: []float64{4843, 206, 450, 121, 80125, 200}},
	}}
	g, ok := ownCostGrowth(s)
	if !ok {
		t.Fatal("no growth from three rows")
	}
	if g.Name != "control-plane-cpu-growth-vs-messages" || g.Value != 2.25 || g.BaselineValue != 2.25 || g.Ratio != 1 ||
		g.N != 1_000_000 || g.Baseline != "the same at 10000 runs" || g.metText() != "-" || g.Target != "" {
		t.Errorf("growth %+v (met %s)", g, g.metText())
	}
	if _, ok := ownCostGrowth(scaleSeries{cols: controlPlaneCols, rows: s.rows[:1]}); ok {
		t.Error("growth from a single row")
	}
	s.rows[0].v[5] = 0 // the program's figure missing
	if _, ok := ownCostGrowth(s); ok {
		t.Error("growth without the messages-only program's figure")
	}
}
