package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestGoalsJudgeFigures: each target is tested at its own scale, in its
// own units: 293 MiB is over 300 MB, and a quick run's rate is not judged
// against a target set at 100k runs.
func TestGoalsJudgeFigures(t *testing.T) {
	yes, no := "yes", "no"
	for _, c := range []struct {
		r    benchResult
		want string
	}{
		{benchResult{Name: "control-plane", Value: 12000, BaselineValue: 30000, N: 100_000, goal: goalControlPlane}, yes},
		{benchResult{Name: "control-plane", Value: 12000, BaselineValue: 50000, N: 100_000, goal: goalControlPlane}, no},
		{benchResult{Name: "control-plane", Value: 5313, BaselineValue: 46956, N: 100_000, goal: goalControlPlane}, no},
		{benchResult{Name: "control-plane", Value: 20000, BaselineValue: 30000, N: 10_000, goal: goalControlPlane}, "-"},
		{benchResult{Name: "containers", Value: 1.7, BaselineValue: 1.7, N: 200, goal: goalContainers}, yes},
		{benchResult{Name: "containers", Value: 1.5, BaselineValue: 1.7, N: 200, goal: goalContainers}, no},
		{benchResult{Name: "single-run", Value: 900, BaselineValue: 800, N: 20, goal: goalSingleRun}, yes},
		{benchResult{Name: "single-run", Value: 930, BaselineValue: 800, N: 20, goal: goalSingleRun}, no},
		{benchResult{Name: "logs", Value: 5551, BaselineValue: 5097, N: 100, goal: goalLogs}, yes},
		{benchResult{Name: "logs-byte-exact", Value: 0, N: 100, goal: goalByteExact}, no},
		{benchResult{Name: "stage-hop-p99", Value: 100, N: 50, goal: goalHopP99}, yes},
		{benchResult{Name: "stage-hop-p50", Value: 20.1, N: 50, goal: goalHopP50}, no},
		{benchResult{Name: "cron-lateness-p99", Value: 46, N: 10_000, goal: goalCronP99}, yes},
		{benchResult{Name: "cron-lateness-p99", Value: 46, N: 1000, goal: goalCronP99}, "-"},
		{benchResult{Name: "cron-missed", Value: 1, N: 100_000, goal: goalZero}, no},
		{benchResult{Name: "memory-server-week-busy", Value: 293.3, N: 1_000_000, goal: goalServerMemory}, no},
		{benchResult{Name: "memory-server-week-busy", Value: 286.0, N: 1_000_000, goal: goalServerMemory}, yes},
		{benchResult{Name: "memory-server", Value: 48.5, N: 100_000, goal: goalServerMemory}, "-"},
		{benchResult{Name: "memory-worker-idle", Value: 38.2, goal: goalWorkerIdle}, no},
		{benchResult{Name: "control-plane-p50", Value: 30}, "-"},
		{benchResult{Name: "control-plane-cpu-growth", Value: 456, BaselineValue: 357, N: 1_000_000, goal: goalFlatCost}, no},
		{benchResult{Name: "control-plane-cpu-growth", Value: 380, BaselineValue: 357, N: 1_000_000, goal: goalFlatCost}, yes},
		{benchResult{Name: "control-plane-cpu-growth", Value: 456, BaselineValue: 357, N: 10_000, goal: goalFlatCost}, "-"},
	} {
		r := c.r
		r.judge()
		if got := r.metText(); got != c.want {
			t.Errorf("%s %.1f (ratio %.2f, n %d) against %q: met %s, want %s", r.Name, r.Value, r.Ratio, r.N, r.Target, got, c.want)
		}
	}
}

// TestBenchLinesSayWhetherMet: the table and --json say whether a figure
// meets its target, and give the target in the figure's own unit.
func TestBenchLinesSayWhetherMet(t *testing.T) {
	r := benchResult{Name: "memory-server-week-busy", Value: 293.3, Unit: "MiB", N: 1_000_000, goal: goalServerMemory}
	r.judge()
	var table, js bytes.Buffer
	(&benchOpts{out: &table}).print(r)
	(&benchOpts{out: &js, asJSON: true}).print(r)
	if got := table.String(); !strings.Contains(got, " no  ≤ 300 MB (286.1 MiB) with 1M runs") {
		t.Errorf("table line: %q", got)
	}
	var got map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["met"] != false || got["target"] != "≤ 300 MB (286.1 MiB) with 1M runs" {
		t.Errorf("json: %s", js.String())
	}
	quick := benchResult{Name: "control-plane", Value: 5000, Unit: "runs/s", BaselineValue: 30000, N: 10_000, goal: goalControlPlane}
	quick.judge()
	js.Reset()
	(&benchOpts{out: &js, asJSON: true}).print(quick)
	if strings.Contains(js.String(), `"met"`) {
		t.Errorf("a quick run's rate judged against the 100k target: %s", js.String())
	}
}
