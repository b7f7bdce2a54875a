package main

import (
	"strings"
	"testing"
	"time"
)

// TestWorkerFlagsAreCheckedBeforeConnecting: gantry worker and gantry up
// refuse bad worker flags, naming the flag, before they connect anywhere
// (no NATS server listens here).
func TestWorkerFlagsAreCheckedBeforeConnecting(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"worker", "--docker-wait", "-1s"}, "--docker-wait -1s: must not be negative"},
		{[]string{"up", "--docker-wait", "-2m"}, "--docker-wait -2m0s: must not be negative"},
		{[]string{"worker", "--slots", "0"}, "--slots 0: must be at least 1"},
		{[]string{"worker", "--pull", "sometimes"}, `--pull "sometimes": want missing, always or never`},
	} {
		err := offline(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestGCLimit: the soft memory limit is 192 MiB for a small live heap,
// five eighths over the least recent reading of the live heap past that,
// and never less than a quarter over the latest reading.
func TestGCLimit(t *testing.T) {
	for _, tt := range []struct {
		least, latest uint64
		want          int64
	}{
		{0, 0, 192 << 20},
		{64 << 20, 64 << 20, 192 << 20},
		{112 << 20, 112 << 20, 192 << 20},
		{128 << 20, 128 << 20, 208 << 20},
		{160 << 20, 160 << 20, 260 << 20},
		{160 << 20, 240 << 20, 300 << 20}, // a busy collection's floating garbage
		{160 << 20, 400 << 20, 500 << 20}, // a heap that grew: a quarter over it
		{8 << 30, 8 << 30, 13 << 30},
		{1 << 62, 1 << 62, 13 << 47},
	} {
		if got := gcLimit(tt.least, tt.latest); got != tt.want {
			t.Errorf("gcLimit(%d, %d) = %d, want %d", tt.least, tt.latest, got, tt.want)
		}
	}
}

// TestLiveReadings: the limit follows the least of the last five readings,
// so a burst's floating garbage does not raise it, and it comes up with a
// heap that stays large once the smaller readings have left the window.
func TestLiveReadings(t *testing.T) {
	const mib = 1 << 20
	var r liveReadings
	for i, tt := range []struct {
		live uint64
		want int64
	}{
		{240 * mib, 390 * mib},
		{300 * mib, 390 * mib}, // 1.625 × 240 (the least) > 1.25 × 300
		{320 * mib, 400 * mib}, // a quarter over the latest
		{256 * mib, 390 * mib},
		{256 * mib, 390 * mib},
		{256 * mib, 416 * mib}, // 240 has left the window: 1.625 × 256
		{256 * mib, 416 * mib},
		{256 * mib, 416 * mib},
		{256 * mib, 416 * mib},
	} {
		if got := r.limit(tt.live); got != tt.want {
			t.Errorf("reading %d (%d MiB): limit %d MiB, want %d MiB", i+1, tt.live/mib, got/mib, tt.want/mib)
		}
	}
}

func TestParseTimeFlag(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v    string
		end  bool
		want time.Time
	}{
		{"2026-11-01", false, time.Date(2026, 11, 1, 0, 0, 0, 0, paris)},
		// --to a date takes in the whole day: a daily 02:00 of the 7th is in.
		{"2026-11-07", true, time.Date(2026, 11, 8, 0, 0, 0, 0, paris).Add(-time.Nanosecond)},
		{"2026-11-07T02:00", true, time.Date(2026, 11, 7, 2, 0, 0, 0, paris)},
		{"2026-11-07T02:00:00Z", true, time.Date(2026, 11, 7, 2, 0, 0, 0, time.UTC)},
	} {
		got, err := parseTimeFlag("--to", c.v, paris, c.end)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%q (end %v) = %s, %v; want %s", c.v, c.end, got, err, c.want)
		}
	}
	_, err = parseTimeFlag("--to", "07/11/2026", paris, true)
	if err == nil || err.Error() != `--to "07/11/2026": want an RFC 3339 time or YYYY-MM-DD` {
		t.Fatalf("bad time: %v", err)
	}
}
