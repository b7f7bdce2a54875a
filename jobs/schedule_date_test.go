package jobs

import (
	"strings"
	"testing"
	"time"
)

func TestScheduledDate(t *testing.T) {
	paris := "Europe/Paris"
	for _, tt := range []struct {
		name   string
		zone   string
		offset int
		at     string
		want   string
	}{
		{"UTC by default", "", 0, "2026-12-03T01:00:00Z", "2026-12-03"},
		{"the zone's date, not UTC's", paris, 0, "2026-12-02T23:30:00Z", "2026-12-03"},
		{"the day before, as Airflow's ds", paris, -1, "2026-12-03T01:00:00Z", "2026-12-02"},
		{"across a year", paris, -1, "2026-01-01T01:00:00Z", "2025-12-31"},
		{"across a leap day", "UTC", -1, "2028-03-01T02:00:00Z", "2028-02-29"},
		// 02:30 on 29 March 2026 does not exist in Paris: the fire is at
		// 03:00 local, still the 29th.
		{"on the spring change", paris, 0, "2026-03-29T01:00:00Z", "2026-03-29"},
		{"the day before the autumn change", paris, -1, "2026-10-25T23:30:00Z", "2026-10-25"},
		{"forward", "UTC", 7, "2026-12-31T00:00:00Z", "2027-01-07"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			at, err := time.Parse(time.RFC3339, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			s := &Schedule{Cron: "@daily", Timezone: tt.zone, DateParameter: "day", DateOffsetDays: tt.offset}
			if got := s.ScheduledDate(at); got != tt.want {
				t.Errorf("ScheduledDate(%s) in %q%+d days = %s, want %s", tt.at, tt.zone, tt.offset, got, tt.want)
			}
		})
	}
}

func TestScheduledParams(t *testing.T) {
	p, err := ParsePipeline([]byte("name: p\nparameters: {day: '2026-01-01', rows: '10'}\n" +
		"schedule: {cron: '0 2 * * *', timezone: Europe/Paris, dateParameter: day, dateOffsetDays: -1}\n" +
		"stages: [{name: a, taskDefinition: t}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	given := Params{"day": "2026-01-01", "rows": "10"}
	got := p.ScheduledParams(given, time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC))
	if got["day"] != "2026-12-02" || got["rows"] != "10" || len(got) != 2 {
		t.Errorf("ScheduledParams = %v, want day 2026-12-02 and rows 10", got)
	}
	if given["day"] != "2026-01-01" {
		t.Errorf("ScheduledParams changed the params given: %v", given)
	}
	p.Schedule.DateParameter = ""
	if got := p.ScheduledParams(given, time.Now()); got["day"] != "2026-01-01" {
		t.Errorf("without dateParameter: %v, want the params as given", got)
	}
}

func TestScheduleDateParameterIsChecked(t *testing.T) {
	for _, tt := range []struct {
		schedule string
		want     []string
	}{
		{"{cron: '@daily', dateParameter: dy}",
			[]string{`schedule.dateParameter: "dy": the pipeline declares no such parameter (it declares day, rows)`}},
		{"{cron: '@daily', dateOffsetDays: -1}",
			[]string{"schedule.dateOffsetDays: moves the date of dateParameter, which is not set"}},
		{"{cron: '@daily', dateParameter: day, dateOffsetDays: 367}",
			[]string{"schedule.dateOffsetDays: 367: want -366 to 366 days"}},
		{"{cron: '@daily', dateParameter: dy, dateOffsetDays: -400}",
			[]string{"schedule.dateOffsetDays: -400: want -366 to 366 days", `schedule.dateParameter: "dy"`}},
	} {
		_, err := ParsePipeline([]byte("name: p\nparameters: {day: x, rows: '1'}\nschedule: " + tt.schedule +
			"\nstages: [{name: a, taskDefinition: t}]\n"))
		if err == nil {
			t.Errorf("%s: accepted", tt.schedule)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tt.schedule, err, w)
			}
		}
	}
	if _, err := ParsePipeline([]byte("name: p\nparameters: {day: x}\nschedule: {cron: '@daily', dateParameter: day, dateOffsetDays: -366}\nstages: [{name: a, taskDefinition: t}]\n")); err != nil {
		t.Errorf("a declared dateParameter, 366 days back: %v", err)
	}
}

func TestValidateMisfire(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
		want string // "" for valid
	}{
		{"skip", Schedule{Cron: "@hourly", Misfire: MisfireSkip}, ""},
		{"runOnce with Forbid", Schedule{Cron: "@hourly", Misfire: MisfireRunOnce, ConcurrencyPolicy: ConcurrencyForbid}, ""},
		{"runAll", Schedule{Cron: "@hourly", Misfire: MisfireRunAll}, ""},
		{"runAll with Allow", Schedule{Cron: "@hourly", Misfire: MisfireRunAll, ConcurrencyPolicy: ConcurrencyAllow}, ""},
		{"unknown names the allowed values", Schedule{Cron: "@hourly", Misfire: "catchup"},
			`misfire: "catchup": want skip, runOnce or runAll`},
		{"runAll with Forbid", Schedule{Cron: "@hourly", Misfire: MisfireRunAll, ConcurrencyPolicy: ConcurrencyForbid},
			"misfire: runAll: concurrencyPolicy Forbid would skip or stop all but one run of a catch-up; use concurrencyPolicy Allow (a pipeline's maxActiveRuns: 1 runs them"},
		{"runAll with Replace", Schedule{Cron: "@hourly", Misfire: MisfireRunAll, ConcurrencyPolicy: ConcurrencyReplace},
			"misfire: runAll: concurrencyPolicy Replace would"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
