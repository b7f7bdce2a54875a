package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
)

// TestScheduleLsLastFireIsLastRun: schedule ls's LAST FIRE is when the
// schedule last ran (lastRun), "-" before it ran, however far its last
// time handled (lastFire: skipped, missed, suspended) went.
func TestScheduleLsLastFireIsLastRun(t *testing.T) {
	handled := time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC)
	ran := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		lastRun *time.Time
		want    string
	}{
		{"never ran", nil, "-"},
		{"ran", &ran, "2026-01-01T02:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			err := writeSchedules(&b, []client.ScheduleInfo{{Name: "sales", Kind: "pipeline", Target: "sales",
				Schedule: jobs.Schedule{Cron: "0 * * * *"}, Suspended: true, LastFire: &handled, LastRun: tc.lastRun}})
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("schedule ls:\n%s", b.String())
			}
			head, row := strings.Split(lines[0], "\t"), strings.Split(lines[1], "\t")
			if len(head) != len(row) || head[6] != "LAST FIRE" || row[6] != tc.want {
				t.Fatalf("schedule ls:\n%s\nwant LAST FIRE %s", b.String(), tc.want)
			}
		})
	}
}
