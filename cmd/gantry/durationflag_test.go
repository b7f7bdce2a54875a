package main

import (
	"context"
	"strings"
	"testing"
)

// TestDurationFlagsTakeDays: the flags a user gives lengths of days
// (--since 2d, --run-retention 30d, --deadline 1d12h, --timeout 1w) take
// days and weeks; garbage is refused naming the flag and what it takes,
// before connecting.
func TestDurationFlagsTakeDays(t *testing.T) {
	nats := []string{"--nats", "nats://127.0.0.1:1"}
	for _, args := range [][]string{
		{"ps", "--since", "2d"},
		{"ps", "--since", "1d12h"},
		{"events", "--since", "2d"},
		{"events", "--since", "1w", "--until", "1d"},
		{"logs", "--since", "2d", "r1"},
		{"wait", "--timeout", "1d", "r1"},
		{"run", "--deadline", "1d12h", "--timeout", "2d", "-d", "--image", "busybox"},
	} {
		_, stderr, _ := gantryCmd(context.Background(), append(args, nats...)...)
		if strings.Contains(stderr, "invalid") || !strings.Contains(stderr, "127.0.0.1:1") {
			t.Errorf("gantry %s: stderr %q, want the flags taken and NATS not reached", strings.Join(args, " "), stderr)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "--since", "2 days"},
			`gantry: invalid argument "2 days" for "--since" flag: want a duration such as 90s, 10m, 1h30m, 2d (days of 24h) or 1w`},
		{[]string{"run", "--deadline", "1d-2h", "--image", "busybox"},
			`gantry: invalid argument "1d-2h" for "--deadline" flag: want a duration such as 90s, 10m, 1h30m, 2d (days of 24h) or 1w`},
		{[]string{"events", "--since", "2days"},
			`gantry: invalid --since "2days": want a duration back from now (10m, 1h30m, 2d) or an RFC 3339 time (2026-01-02T15:04:05Z)`},
		{[]string{"logs", "--since", "1x", "r1"},
			`gantry: invalid --since "1x": want a duration back from now (10m, 1h30m, 2d) or an RFC 3339 time (2026-01-02T15:04:05Z)`},
	} {
		_, stderr, code := gantryCmd(context.Background(), append(c.args, nats...)...)
		if !strings.HasPrefix(stderr, c.want) || code != exitGantryError {
			t.Errorf("gantry %s: exit %d, stderr %q; want %d, %q", strings.Join(c.args, " "), code, stderr, exitGantryError, c.want)
		}
	}
}
