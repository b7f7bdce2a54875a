package main

import "testing"

// TestGCLimit: the soft memory limit is 192 MiB for a small live heap,
// twice the least recent reading of the live heap past half of that, and
// never less than a quarter over the latest reading.
func TestGCLimit(t *testing.T) {
	for _, tt := range []struct {
		least, latest uint64
		want          int64
	}{
		{0, 0, 192 << 20},
		{64 << 20, 64 << 20, 192 << 20},
		{96 << 20, 96 << 20, 192 << 20},
		{120 << 20, 120 << 20, 240 << 20},
		{150 << 20, 220 << 20, 300 << 20}, // a busy collection's floating garbage
		{150 << 20, 400 << 20, 500 << 20}, // a heap that grew: a quarter over it
		{3 << 30, 3 << 30, 6 << 30},
		{1 << 62, 1 << 62, 2 << 50},
	} {
		if got := gcLimit(tt.least, tt.latest); got != tt.want {
			t.Errorf("gcLimit(%d, %d) = %d, want %d", tt.least, tt.latest, got, tt.want)
		}
	}
}
