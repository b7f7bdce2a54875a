package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// The --report of `gantry bench`: BENCHMARKS-style Markdown of every result
// and SVG charts of how figures grow with N: the control plane's with the
// runs, the server's memory with the runs it has recorded, cron's lateness
// with the schedules, logs with the output's MiB.

// scaleSeries is one benchmark measured at growing N: a table in the
// report, and a chart of each column that names one.
type scaleSeries struct {
	name  string // the charts are BENCHMARKS-<name>-<chart>.svg
	title string // the report's heading for it
	cols  []scaleCol
	rows  []scaleRow
}

// scaleCol is one figure of a series.
type scaleCol struct {
	head   string // in the table, and the chart's alt text
	format string // of the figure in the table
	chart  string // the chart's file suffix; "" for no chart
	title  string // the chart's title
}

// scaleRow is a series' figures at one N, in the order of its columns.
type scaleRow struct {
	n int
	v []float64
}

// controlPlaneCols are the control plane's figures by N.
var controlPlaneCols = []scaleCol{
	{head: "runs/s", format: "%.0f", chart: "rate", title: "control plane: runs/s by N"},
	{head: "µs per run", format: "%.0f", chart: "cost", title: "control plane: µs of wall time per run by N"},
	{head: "CPU µs per run", format: "%.0f", chart: "cpu", title: "control plane: µs of CPU time per run by N"},
	{head: "p99 ms", format: "%.1f"},
	{head: "raw JetStream msgs/s", format: "%.0f"},
	{head: "messages-only CPU µs per run", format: "%.0f"},
}

// benchScale runs the control-plane benchmark at growing N.
func benchScale(ctx context.Context, o *benchOpts) (scaleSeries, error) {
	s := scaleSeries{name: "control-plane", title: "Control plane as N grows", cols: controlPlaneCols}
	ns := []int{10_000, 100_000, 1_000_000}
	if o.quick {
		ns = []int{2_000, 5_000, 10_000}
	}
	for _, n := range ns {
		fmt.Fprintf(o.progress, "bench: control-plane scaling: N=%d ...\n", n)
		res, err := controlPlaneAndMessages(ctx, o, n)
		if err != nil {
			return s, err
		}
		s.rows = append(s.rows, controlPlaneRow(n, res))
	}
	return s, nil
}

// controlPlaneRow picks a row of controlPlaneCols from the control plane's
// results.
func controlPlaneRow(n int, res []benchResult) scaleRow {
	cp := named(res, "control-plane")
	cpu := named(res, "control-plane-cpu")
	return scaleRow{n: n, v: []float64{cp.Value, 1e6 / cp.Value,
		cpu.Value, named(res, "control-plane-p99").Value, cp.BaselineValue, cpu.BaselineValue}}
}

// costGrowth is the control plane's CPU a run at the series' largest N
// against its smallest, judged against "cost per run flat"; false when the
// series has fewer than two rows.
func costGrowth(s scaleSeries) (benchResult, bool) {
	if len(s.rows) < 2 {
		return benchResult{}, false
	}
	first, last := s.rows[0], s.rows[len(s.rows)-1]
	r := benchResult{Name: "control-plane-cpu-growth", Value: last.v[colCPU], Unit: "µs/run",
		Baseline: fmt.Sprintf("the same at %d runs", first.n), BaselineValue: first.v[colCPU], N: last.n, goal: goalFlatCost}
	r.judge()
	return r, true
}

// The columns of controlPlaneCols that costGrowth and ownCostGrowth read.
const (
	colCPU         = 2
	colMessagesCPU = 5
)

// ownCostGrowth is costGrowth with the substrate's own growth taken out:
// the control plane's CPU a run over the messages-only program's (the
// same runs' NATS messages alone, on the same server, at the same N), at
// the largest N against the smallest. The NATS server's cost a message
// grows with the subjects it keeps (a run's event subject and claim key,
// for their week), and so does that program's; this figure is near 1
// when gantry's own part of a run costs as much at 1M as at 10k. It has
// no target; false when the series has fewer than two rows or lacks the
// program's figures.
func ownCostGrowth(s scaleSeries) (benchResult, bool) {
	if len(s.rows) < 2 {
		return benchResult{}, false
	}
	first, last := s.rows[0], s.rows[len(s.rows)-1]
	if len(first.v) <= colMessagesCPU || len(last.v) <= colMessagesCPU || first.v[colMessagesCPU] <= 0 || last.v[colMessagesCPU] <= 0 {
		return benchResult{}, false
	}
	r := benchResult{Name: "control-plane-cpu-growth-vs-messages", Value: last.v[colCPU] / last.v[colMessagesCPU],
		Unit: "× messages-only CPU", Baseline: fmt.Sprintf("the same at %d runs", first.n),
		BaselineValue: first.v[colCPU] / first.v[colMessagesCPU], N: last.n}
	r.judge()
	return r, true
}

// named is the result of that name in res (a zero one if there is none).
func named(res []benchResult, name string) benchResult {
	if i := slices.IndexFunc(res, func(r benchResult) bool { return r.Name == name }); i >= 0 {
		return res[i]
	}
	return benchResult{}
}

// notesHeading starts the part of BENCHMARKS.md that people write and
// `gantry bench --report` keeps.
const notesHeading = "## Notes"

func writeReport(dir string, results []benchResult, series []scaleSeries, quick bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Gantry benchmarks\n\n")
	fmt.Fprintf(&b, "Measured %s on %d CPUs (%s/%s), commit %s, with `gantry bench%s --report`.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, commit(), map[bool]string{true: " --quick"}[quick])
	fmt.Fprintf(&b, "Every ratio is gantry's figure over a baseline measured in the same run on the same machine:\n")
	fmt.Fprintf(&b, "machines are shared and noisy, so compare ratios, not figures.\n\n")
	fmt.Fprintf(&b, "## How to run them\n\n")
	fmt.Fprintf(&b, "    make bench             # the full suite (11 to 20 minutes on 2 cores); rewrites this file\n")
	fmt.Fprintf(&b, "    make bench-quick       # smaller sizes, a few minutes\n")
	fmt.Fprintf(&b, "    bin/gantry bench --only control-plane,logs --json\n")
	fmt.Fprintf(&b, "    bin/gantry bench --only control-plane --runs 1000000 --cpuprofile cp.prof\n")
	fmt.Fprintf(&b, "    go tool pprof -tagfocus phase=gantry bin/gantry cp.prof   # gantry's part, without the baselines\n")
	fmt.Fprintf(&b, "    make microbench        # go test -bench of the hot paths (event application, log batching, cron, DAG)\n\n")
	fmt.Fprintf(&b, "`gantry bench --help` says what each benchmark measures and against what.\n\n## Latest figures\n\n")
	fmt.Fprintf(&b, "| name | gantry | baseline | ratio | n | met | target |\n|---|---:|---:|---:|---:|---|---|\n")
	for _, r := range results {
		base, ratio := "-", "-"
		if r.BaselineValue != 0 {
			base = fmt.Sprintf("%.1f %s (%s)", r.BaselineValue, r.Unit, r.Baseline)
			ratio = fmt.Sprintf("%.2f", r.Ratio) // judged in bench.go
		}
		fmt.Fprintf(&b, "| %s | %.1f %s | %s | %s | %d | %s | %s |\n", r.Name, r.Value, r.Unit, base, ratio, r.N, r.metText(), r.Target)
	}
	for _, sr := range series {
		if len(sr.rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n| N |", sr.title)
		for _, c := range sr.cols {
			fmt.Fprintf(&b, " %s |", c.head)
		}
		fmt.Fprintf(&b, "\n|---:|%s\n", strings.Repeat("---:|", len(sr.cols)))
		for _, row := range sr.rows {
			fmt.Fprintf(&b, "| %d |", row.n)
			for i, c := range sr.cols {
				fmt.Fprintf(&b, " "+c.format+" |", row.v[i])
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
		for i, c := range sr.cols {
			if c.chart == "" {
				continue
			}
			file := fmt.Sprintf("BENCHMARKS-%s-%s.svg", sr.name, c.chart)
			fmt.Fprintf(&b, "![%s by N](%s)\n", c.head, file)
			if err := writeChart(filepath.Join(dir, file), c.title, sr.rows, i); err != nil {
				return err
			}
		}
	}
	path := filepath.Join(dir, "BENCHMARKS.md")
	// What people wrote below the figures (from notesHeading on) stays.
	if old, err := os.ReadFile(path); err == nil {
		if i := strings.Index(string(old), "\n"+notesHeading); i >= 0 {
			b.WriteString(string(old[i:]))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func commit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	// Built without VCS stamps (go run, -buildvcs=false): ask git.
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		return strings.TrimSpace(string(out))
	}
	return "unknown"
}

// writeChart draws a line chart of the col-th figure of rows by N, N on a
// log scale.
func writeChart(path, title string, rows []scaleRow, col int) error {
	y := func(r scaleRow) float64 { return r.v[col] }
	const w, h, left, bottom, top, right = 560.0, 320.0, 70.0, 40.0, 40.0, 20.0
	maxY := 0.0
	for _, r := range rows {
		maxY = math.Max(maxY, y(r))
	}
	if maxY == 0 {
		maxY = 1
	}
	minN, maxN := math.Log10(float64(rows[0].n)), math.Log10(float64(rows[len(rows)-1].n))
	if maxN == minN {
		maxN = minN + 1
	}
	px := func(n int) float64 { return left + (math.Log10(float64(n))-minN)/(maxN-minN)*(w-left-right) }
	py := func(v float64) float64 { return h - bottom - v/(maxY*1.1)*(h-bottom-top) }
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="20" font-size="14">%s</text>`+"\n", left, title)
	fmt.Fprintf(&s, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`, left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&s, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, h-bottom)
	tick := "%.0f"
	if maxY*1.1 < 20 {
		tick = "%.1f" // small figures, such as milliseconds of lateness
	}
	for i := 0; i <= 4; i++ {
		v := maxY * 1.1 * float64(i) / 4
		fmt.Fprintf(&s, `<text x="%.0f" y="%.0f" text-anchor="end">`+tick+`</text><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#ddd"/>`+"\n",
			left-6, py(v)+4, v, left, py(v), w-right, py(v))
	}
	var line strings.Builder
	for i, r := range rows {
		if i > 0 {
			line.WriteString(" ")
		}
		fmt.Fprintf(&line, "%.1f,%.1f", px(r.n), py(y(r)))
		fmt.Fprintf(&s, `<circle cx="%.1f" cy="%.1f" r="4" fill="#1f77b4"/><text x="%.1f" y="%.0f" text-anchor="middle">N=%d</text>`+"\n",
			px(r.n), py(y(r)), px(r.n), h-bottom+18, r.n)
	}
	fmt.Fprintf(&s, `<polyline points="%s" fill="none" stroke="#1f77b4" stroke-width="2"/>`+"\n</svg>\n", line.String())
	return os.WriteFile(path, []byte(s.String()), 0o644)
}
