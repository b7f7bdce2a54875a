package main

import "testing"

// TestGCLimit: the soft memory limit is 1 GiB for a small live heap and
// twice the live heap past half of that, never below what is live.
func TestGCLimit(t *testing.T) {
	for live, want := range map[uint64]int64{
		0:         1 << 30,
		100 << 20: 1 << 30,
		512 << 20: 1 << 30,
		3 << 30:   6 << 30,
		1 << 62:   2 << 50,
	} {
		if got := gcLimit(live); got != want {
			t.Errorf("gcLimit(%d) = %d, want %d", live, got, want)
		}
	}
}
