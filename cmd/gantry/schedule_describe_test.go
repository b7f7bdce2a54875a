package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
)

// TestScheduleDescribeNextFires: schedule describe lists the next fire
// times from the server's next fire on, in the schedule's zone (a daily
// 02:00 in Paris fires at 03:00 the day clocks spring forward), an @every
// schedule's counted from its own next fire, and none while suspended.
func TestScheduleDescribeNextFires(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	next := time.Date(2026, 3, 27, 2, 0, 0, 0, paris)
	every := time.Date(2026, 3, 27, 10, 23, 17, 0, time.UTC)
	for _, tc := range []struct {
		name string
		s    client.ScheduleInfo
		want []string
	}{
		{"cron across DST", client.ScheduleInfo{Name: "sales", Schedule: jobs.Schedule{Cron: "0 2 * * *", Timezone: "Europe/Paris"}, NextFire: &next},
			[]string{"2026-03-27T02:00:00+01:00", "2026-03-28T02:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-31T02:00:00+02:00"}},
		{"every", client.ScheduleInfo{Name: "poll", Schedule: jobs.Schedule{Cron: "@every 1h"}, NextFire: &every},
			[]string{"2026-03-27T10:23:17Z", "2026-03-27T11:23:17Z", "2026-03-27T12:23:17Z", "2026-03-27T13:23:17Z", "2026-03-27T14:23:17Z"}},
		{"suspended", client.ScheduleInfo{Name: "off", Schedule: jobs.Schedule{Cron: "@hourly"}, NextFire: &every, Suspended: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := describeSchedule(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range d.NextFires {
				got = append(got, f.Format(time.RFC3339))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("next fires\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

// TestScheduleDescribeTable: the table names each setting, the defaults
// as such, and how to resume a suspended schedule.
func TestScheduleDescribeTable(t *testing.T) {
	old := localZone
	localZone = time.UTC
	t.Cleanup(func() { localZone = old })
	now := time.Date(2026, 3, 27, 9, 0, 0, 0, time.UTC)
	ran := now.Add(-time.Hour)
	next := now.Add(30 * time.Minute)
	d, err := describeSchedule(client.ScheduleInfo{Name: "cleanup", Kind: jobs.KindTask, Target: "cleanup:3",
		Schedule: jobs.Schedule{Cron: "*/30 * * * *", ConcurrencyPolicy: "Forbid"}, LastRun: &ran, NextFire: &next})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeScheduleDescription(&b, d, now)
	for _, want := range []string{
		"Schedule:\tcleanup\n", "Runs:\ttask cleanup:3\n", "Cron:\t*/30 * * * *\n", "Time zone:\tUTC\n",
		"Concurrency policy:\tForbid\n", "Starting deadline:\t60s (the default)\n", "Misfire:\tskip\n",
		"Suspended:\tfalse\n", "Last run:\t2026-03-27T08:00:00Z (1h0m ago)\n",
		"Next fires:\t2026-03-27T09:30:00Z (in 30m0s)\n", "\t2026-03-27T10:00:00Z (in 1h0m)\n",
		"Its runs:\tgantry pipeline runs cleanup\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("schedule describe:\n%s\nwant %q", b.String(), want)
		}
	}
	if strings.Contains(b.String(), "Date parameter") {
		t.Errorf("a schedule without dateParameter shows one:\n%s", b.String())
	}
	for _, tc := range []struct {
		offset int
		want   string
	}{
		{0, "Date parameter:\tday (each fire's date in UTC)\n"},
		{-1, "Date parameter:\tday (each fire's date in UTC, the day before)\n"},
		{-7, "Date parameter:\tday (each fire's date in UTC, 7 days before)\n"},
		{2, "Date parameter:\tday (each fire's date in UTC, 2 days after)\n"},
	} {
		d.Schedule.DateParameter, d.Schedule.DateOffsetDays = "day", tc.offset
		b.Reset()
		writeScheduleDescription(&b, d, now)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("dateOffsetDays %d:\n%s\nwant %q", tc.offset, b.String(), tc.want)
		}
	}
	d.Suspended, d.NextFires = true, nil
	b.Reset()
	writeScheduleDescription(&b, d, now)
	if !strings.Contains(b.String(), "Suspended:\ttrue (gantry schedule resume cleanup fires it again") || !strings.Contains(b.String(), "Next fires:\t-\n") {
		t.Errorf("suspended:\n%s", b.String())
	}
}
