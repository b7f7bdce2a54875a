package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportKeepsTheNotes: rewriting BENCHMARKS.md replaces the figures
// and keeps what people wrote from "## Notes" on.
func TestReportKeepsTheNotes(t *testing.T) {
	dir := t.TempDir()
	pts := []scalePoint{{n: 10, rate: 5, perRun: 200, p99: 3, rawRate: 50}, {n: 100, rate: 4, perRun: 250, p99: 4, rawRate: 60}}
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
