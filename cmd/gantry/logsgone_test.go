package main

import (
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue"
)

// TestLogsGone: why gantry logs shows a run no line, when it can tell:
// the stream's max age passed, the run ended before the stream was made
// (a store restored onto a new data directory: its lines are in the old
// JetStream), or before the oldest line of a stream that dropped some;
// otherwise nothing (a run that wrote nothing).
func TestLogsGone(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, c := range []struct {
		name     string
		finished time.Time
		l        queue.LogLimits
		want     string
	}{
		{"wrote nothing", ago(time.Minute), queue.LogLimits{MaxAge: 720 * time.Hour, Created: ago(time.Hour)}, ""},
		{"older than the max age", ago(31 * 24 * time.Hour), queue.LogLimits{MaxAge: 720 * time.Hour, Created: ago(40 * 24 * time.Hour)},
			"run r1 ended 31d ago, and logs are kept 30d (the GANTRY_LOGS stream's max age): its logs, if it wrote any, are no longer kept"},
		{"restored", ago(2 * time.Hour), queue.LogLimits{MaxAge: 720 * time.Hour, Created: ago(time.Hour)},
			"run r1 ended 2h0m ago, before the GANTRY_LOGS stream was made (1h0m ago): its logs, if it wrote any, are in the JetStream it ran with, not this one (a store restored onto a new data directory?)"},
		{"restored, no age limit", ago(2 * time.Hour), queue.LogLimits{Created: ago(time.Hour), Oldest: ago(30 * time.Minute)},
			"run r1 ended 2h0m ago, before the GANTRY_LOGS stream was made (1h0m ago)"},
		{"ended before the oldest line, none dropped", ago(2 * time.Hour), queue.LogLimits{Created: ago(3 * time.Hour), Oldest: ago(time.Hour)}, ""},
		{"no creation time", ago(2 * time.Hour), queue.LogLimits{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := logsGone("r1", c.finished, c.l, now)
			if c.want == "" && got != "" || c.want != "" && (len(got) < len(c.want) || got[:len(c.want)] != c.want) {
				t.Errorf("got %q\nwant %q", got, c.want)
			}
		})
	}
}
