package main

import "testing"

// TestGCLimit: the soft memory limit is 192 MiB for a small live heap and
// twice the live heap past half of that, never below what is live.
func TestGCLimit(t *testing.T) {
	for live, want := range map[uint64]int64{
		0:         192 << 20,
		64 << 20:  192 << 20,
		96 << 20:  192 << 20,
		120 << 20: 240 << 20,
		3 << 30:   6 << 30,
		1 << 62:   2 << 50,
	} {
		if got := gcLimit(live); got != want {
			t.Errorf("gcLimit(%d) = %d, want %d", live, got, want)
		}
	}
}
