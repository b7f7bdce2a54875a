package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/samples"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// TestReportKeepsTheNotes: rewriting BENCHMARKS.md replaces the figures
// and keeps what people wrote from "## Notes" on.
func TestReportKeepsTheNotes(t *testing.T) {
	dir := t.TempDir()
	pts := []scalePoint{{n: 10, rate: 5, perRun: 200, cpu: 310, p99: 3, rawRate: 50}, {n: 100, rate: 4, perRun: 250, cpu: 320, p99: 4, rawRate: 60}}
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

// TestControlPlaneFigures: a small control-plane run gives every figure,
// and the scale table takes each by its name.
func TestControlPlaneFigures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := &benchOpts{out: io.Discard, progress: io.Discard}
	res, err := controlPlane(ctx, o, 300)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]benchResult{}
	for _, r := range res {
		byName[r.Name] = r
	}
	for _, name := range []string{"control-plane", "control-plane-p50", "control-plane-p99", "control-plane-cpu"} {
		if r, ok := byName[name]; !ok || r.Value <= 0 || r.N != 300 {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := byName["control-plane-repeated-ends"]; r.Value != 0 {
		t.Errorf("repeated ends: %v", r.Value)
	}
	p := scalePointOf(300, res)
	if p.rate != byName["control-plane"].Value || p.p99 != byName["control-plane-p99"].Value ||
		p.cpu != byName["control-plane-cpu"].Value || p.rawRate <= 0 {
		t.Fatalf("scale point %+v from %+v", p, res)
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
