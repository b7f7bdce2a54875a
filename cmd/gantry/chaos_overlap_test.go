package main

import (
	"strings"
	"testing"
	"time"
)

// TestChaosOverlapsSweep: the overlap chaos test's check finds what it
// must and admits exactly a WorkerLost container after its unit ended.
func TestChaosOverlapsSweep(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name       string
		limit      int
		spans      []chaosSpan
		violations int
		peak       int
		admitted   int
	}{
		{"one after the other", 1, []chaosSpan{
			{unit: "a", start: at(0), end: at(1)},
			{unit: "b", start: at(1), end: at(2)}, // a death and a start at once: the death first
		}, 0, 1, 0},
		{"two runs at once in a pool of 1", 1, []chaosSpan{
			{unit: "a", start: at(0), end: at(2)},
			{unit: "b", start: at(1), end: at(3)},
		}, 1, 2, 0},
		{"two in a pool of 2, a third beside them", 2, []chaosSpan{
			{unit: "a", start: at(0), end: at(3)},
			{unit: "b", start: at(1), end: at(3)},
			{unit: "c", start: at(2), end: at(4)},
		}, 1, 3, 0},
		{"two containers of one unit hold one place", 1, []chaosSpan{
			{unit: "a", start: at(0), end: at(2)},
			{unit: "a", start: at(1), end: at(3)},
			{unit: "b", start: at(3), end: at(4)},
		}, 0, 1, 0},
		{"a lost container after its run ended is admitted", 1, []chaosSpan{
			{unit: "a", start: at(0), end: at(5), lostAfter: at(2)},
			{unit: "a", start: at(1), end: at(2)},
			{unit: "b", start: at(3), end: at(4)},
		}, 0, 1, 1},
		{"a lost container before its run ended is not", 1, []chaosSpan{
			{unit: "a", start: at(0), end: at(5), lostAfter: at(4)},
			{unit: "b", start: at(3), end: at(6)},
		}, 1, 2, 1},
		{"a container never seen dying holds its place for ever", 1, []chaosSpan{
			{unit: "a", start: at(0)},
			{unit: "b", start: at(3), end: at(4)},
		}, 1, 2, 0},
		{"a container that was not lost is never admitted", 1, []chaosSpan{
			{unit: "a", start: at(0), end: at(5)},
			{unit: "b", start: at(3), end: at(4)},
		}, 1, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := chaosOverlaps(tc.spans, tc.limit)
			if len(o.violations) != tc.violations || o.peak != tc.peak || o.admitted != tc.admitted {
				t.Errorf("got %d violations, peak %d, %d admitted; want %d, %d, %d: %s",
					len(o.violations), o.peak, o.admitted, tc.violations, tc.peak, tc.admitted, strings.Join(o.violations, " | "))
			}
		})
	}
	o := chaosOverlaps([]chaosSpan{
		{unit: "a", what: "run a attempt 1", start: at(0), end: at(2)},
		{unit: "b", what: "run b attempt 1", start: at(1), end: at(3)},
	}, 1)
	want := "at 00:00:01.000 2 hold places at once, at most 1 may: a: run a attempt 1 00:00:00.000–00:00:02.000; b: run b attempt 1 00:00:01.000–00:00:03.000"
	if len(o.violations) != 1 || o.violations[0] != want {
		t.Errorf("violations %q, want [%q]", o.violations, want)
	}
}
