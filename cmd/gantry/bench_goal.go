package main

import "fmt"

// A goal is a target of the benchmarks' table (issue 7): its words, and a
// test of a figure against it. Figures are judged only at the scale the
// target is set for: a --quick control plane of 10,000 runs says nothing
// of the rate at 100,000.
type goal struct {
	text string
	minN int // judged only from this N
	test func(r benchResult) bool
}

// mb is a million bytes in MiB: memory is measured in MiB, and targets are
// set in MB, 5% apart.
const mb = 1e6 / (1 << 20)

func atMost(limit float64, unit string) *goal {
	return &goal{text: fmt.Sprintf("≤ %g %s", limit, unit), test: func(r benchResult) bool { return r.Value <= limit }}
}

func ratioAtMost(limit float64, note string) *goal {
	return &goal{text: fmt.Sprintf("ratio ≤ %g%s", limit, note), test: func(r benchResult) bool { return r.Ratio <= limit }}
}

// memoryAtMost is a target in MB for a figure in MiB, given in both.
func memoryAtMost(limitMB float64, minN int, scale string) *goal {
	return &goal{text: fmt.Sprintf("≤ %g MB (%.1f MiB)%s", limitMB, limitMB*mb, scale), minN: minN,
		test: func(r benchResult) bool { return r.Value <= limitMB*mb }}
}

var (
	goalControlPlane = &goal{text: "≥ 10000 runs/s and ≥ 0.3 of raw at 100k runs", minN: 100_000,
		test: func(r benchResult) bool { return r.Value >= 10_000 && r.Ratio >= 0.3 }}
	goalZero       = &goal{text: "0", test: func(r benchResult) bool { return r.Value == 0 }}
	goalContainers = &goal{text: "ratio ≥ 0.9", test: func(r benchResult) bool { return r.Ratio >= 0.9 }}
	goalSingleRun  = ratioAtMost(1.15, " (median)")
	goalLogs       = ratioAtMost(1.2, "")
	goalByteExact  = &goal{text: "1: byte-exact", test: func(r benchResult) bool { return r.Value == 1 }}
	goalHopP50     = atMost(20, "ms")
	goalHopP99     = atMost(100, "ms")
	goalCronP99    = &goal{text: "≤ 200 ms with 10000 schedules", minN: 10_000,
		test: func(r benchResult) bool { return r.Value <= 200 }}
	// Issue 7: "cost per run flat from 10k to 1M". Flat is taken as within
	// a tenth, about what two runs of the same N differ by here.
	goalFlatCost = &goal{text: "ratio ≤ 1.1: flat from 10k to 1M runs", minN: 1_000_000,
		test: func(r benchResult) bool { return r.Ratio <= 1.1 }}
	goalServerMemory = memoryAtMost(300, 1_000_000, " with 1M runs")
	goalWorkerIdle   = memoryAtMost(40, 0, "")
)

// judge fills in a result's ratio, its target's words and whether it meets
// it (nil when it has no target, or when N is below the target's scale).
func (r *benchResult) judge() {
	if r.BaselineValue != 0 {
		r.Ratio = r.Value / r.BaselineValue
	}
	if r.goal == nil {
		return
	}
	r.Target = r.goal.text
	if r.N >= r.goal.minN {
		met := r.goal.test(*r)
		r.Met = &met
	}
}

// metText is the table's word for r.Met.
func (r benchResult) metText() string {
	switch {
	case r.Met == nil:
		return "-"
	case *r.Met:
		return "yes"
	}
	return "no"
}
