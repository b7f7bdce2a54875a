package scheduler

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/rs/zerolog"
)

// cronFake keeps one schedule's state, its active runs and what fired.
type cronFake struct {
	p         *jobs.Pipeline
	suspended bool
	last      time.Time
	active    []jobs.PipelineRun
	fired     map[time.Time]int // fires per scheduled time
	order     []time.Time       // runs created, in order
	stopped   []string
	// failRecordAt, when positive, makes that SetLastFire call (counted
	// from 1) fail, as a crash right after a fire would leave it.
	failRecordAt, records int
}

func (f *cronFake) Schedules(context.Context) ([]Entry, error) {
	return []Entry{{Pipeline: f.p, Suspended: f.suspended, LastFire: f.last}}, nil
}

func (f *cronFake) SetLastFire(_ context.Context, _ string, t time.Time) error {
	f.records++
	if f.records == f.failRecordAt {
		return errors.New("crash")
	}
	if t.After(f.last) {
		f.last = t
	}
	return nil
}

func (f *cronFake) ActiveRuns(context.Context, string) ([]jobs.PipelineRun, error) {
	return f.active, nil
}

// Fire is idempotent per time, as the server's is (the store's key).
func (f *cronFake) Fire(_ context.Context, _ string, t time.Time) (*jobs.PipelineRun, error) {
	f.fired[t]++
	id := "pr-" + t.UTC().Format(time.RFC3339)
	if f.fired[t] == 1 {
		f.order = append(f.order, t)
		f.active = append(f.active, jobs.PipelineRun{PipelineRunID: id, ScheduledTime: &t, Status: jobs.StatusRunning})
	}
	return &jobs.PipelineRun{PipelineRunID: id}, nil
}

func (f *cronFake) StopPipelineRun(_ context.Context, id, _ string) error {
	f.stopped = append(f.stopped, id)
	var keep []jobs.PipelineRun
	for _, r := range f.active {
		if r.PipelineRunID != id {
			keep = append(keep, r)
		}
	}
	f.active = keep
	return nil
}

// clock is the injected time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(s jobs.Schedule, created time.Time) (*cronFake, *clock, *Cron) {
	f := &cronFake{p: &jobs.Pipeline{Name: "p", Schedule: &s, CreatedAt: created}, fired: map[time.Time]int{}}
	c := &clock{t: created}
	return f, c, NewCron(f, f, WithClock(c.now))
}

func tick(t *testing.T, cr *Cron) time.Time {
	t.Helper()
	next, err := cr.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return next
}

var t0 = time.Date(2026, 1, 10, 0, 0, 30, 0, time.UTC)

func TestCronFiresOncePerTime(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "*/5 * * * *"}, t0)
	next := tick(t, cr)
	if want := time.Date(2026, 1, 10, 0, 5, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("next %s, want %s", next, want)
	}
	c.t = next.Add(200 * time.Millisecond)
	tick(t, cr)
	tick(t, cr)
	if len(f.fired) != 1 || f.fired[next] != 1 {
		t.Fatalf("fired %v", f.fired)
	}
	// A restarted server (a new Cron over the same store) at the same time
	// fires nothing again.
	cr2 := NewCron(f, f, WithClock(c.now))
	tick(t, cr2)
	if f.fired[next] != 1 {
		t.Fatalf("fired again after restart: %v", f.fired)
	}
	// A crash between Fire and recording it: the fire repeats, which Fire
	// absorbs (same time, same run).
	f.last = t0
	tick(t, cr2)
	if len(f.active) != 1 {
		t.Fatalf("active runs %d after a repeated fire", len(f.active))
	}
}

func TestCronForbidSkipsWhileActive(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "@every 10m", ConcurrencyPolicy: jobs.ConcurrencyForbid}, t0)
	c.t = t0.Add(10 * time.Minute)
	tick(t, cr)
	c.t = t0.Add(20 * time.Minute)
	tick(t, cr)
	if len(f.fired) != 1 {
		t.Fatalf("Forbid fired %d times while a run was active", len(f.fired))
	}
	f.active = nil // the run ended
	c.t = t0.Add(30 * time.Minute)
	tick(t, cr)
	if len(f.fired) != 2 {
		t.Fatalf("Forbid did not fire once the run ended: %v", f.fired)
	}
}

func TestCronReplaceStopsOldRun(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "@every 10m", ConcurrencyPolicy: jobs.ConcurrencyReplace}, t0)
	c.t = t0.Add(10 * time.Minute)
	tick(t, cr)
	first := f.active[0].PipelineRunID
	c.t = t0.Add(20 * time.Minute)
	tick(t, cr)
	if len(f.stopped) != 1 || f.stopped[0] != first || len(f.active) != 1 || len(f.fired) != 2 {
		t.Fatalf("stopped %v active %v fired %v", f.stopped, f.active, f.fired)
	}
}

func TestCronAllowOverlaps(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "@every 10m"}, t0)
	for i := 1; i <= 3; i++ {
		c.t = t0.Add(time.Duration(i) * 10 * time.Minute)
		tick(t, cr)
	}
	if len(f.active) != 3 {
		t.Fatalf("Allow: %d active runs, want 3", len(f.active))
	}
}

func TestCronMisfireAfterDowntime(t *testing.T) {
	tests := []struct {
		name     string
		s        jobs.Schedule
		downtime time.Duration
		fires    int
	}{
		{"skip drops fires missed while down", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireSkip}, 5*time.Hour + 10*time.Minute, 0},
		{"runOnce runs one catch-up, not five", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunOnce}, 5*time.Hour + 10*time.Minute, 1},
		{"runAll runs every one of the five", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll}, 5*time.Hour + 10*time.Minute, 5},
		{"runAll runs the missed ones before one on time", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll}, 3*time.Hour + 10*time.Second, 3},
		{"runAll runs one late fire", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll, StartingDeadlineSeconds: 600}, 90 * time.Minute, 1},
		{"a fire within startingDeadlineSeconds runs late", jobs.Schedule{Cron: "0 * * * *", StartingDeadlineSeconds: 3600}, 90 * time.Minute, 1},
		{"a fire beyond startingDeadlineSeconds is missed", jobs.Schedule{Cron: "0 * * * *", StartingDeadlineSeconds: 600}, 90 * time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c, cr := setup(tt.s, t0)
			c.t = t0.Add(tt.downtime)
			tick(t, cr)
			if len(f.fired) != tt.fires {
				t.Fatalf("fired %v, want %d fires", f.fired, tt.fires)
			}
			if want := c.t.Truncate(time.Hour); !f.last.Equal(want) {
				t.Fatalf("last fire recorded %s, want %s", f.last, want)
			}
			// Nothing more until the next hour.
			tick(t, cr)
			if len(f.fired) != tt.fires {
				t.Fatalf("second tick fired: %v", f.fired)
			}
		})
	}
}

func TestCronSuspendLetsTimesPass(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "@every 10m"}, t0)
	f.suspended = true
	c.t = t0.Add(35 * time.Minute)
	tick(t, cr)
	f.suspended = false
	tick(t, cr)
	if len(f.fired) != 0 {
		t.Fatalf("fired while or right after suspended: %v", f.fired)
	}
	c.t = t0.Add(40 * time.Minute)
	tick(t, cr)
	if len(f.fired) != 1 {
		t.Fatalf("did not fire after resume: %v", f.fired)
	}
}

// TestCronReportsOutcomes: every fire time handled is reported once, with
// what became of it (the server's gantry_schedule_fires_total).
func TestCronReportsOutcomes(t *testing.T) {
	tests := []struct {
		name  string
		s     jobs.Schedule
		setup func(f *cronFake)
		at    []time.Duration // ticks, after t0
		want  map[Outcome]int
	}{
		{"on time", jobs.Schedule{Cron: "@every 10m"}, nil,
			[]time.Duration{10 * time.Minute, 10 * time.Minute, 20 * time.Minute}, map[Outcome]int{Fired: 2}},
		{"forbid", jobs.Schedule{Cron: "@every 10m", ConcurrencyPolicy: jobs.ConcurrencyForbid}, nil,
			[]time.Duration{10 * time.Minute, 20 * time.Minute}, map[Outcome]int{Fired: 1, SkippedConcurrent: 1}},
		{"misfire skip after downtime", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireSkip}, nil,
			[]time.Duration{5*time.Hour + 10*time.Minute}, map[Outcome]int{Missed: 4, SkippedLate: 1}},
		{"misfire runOnce after downtime", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunOnce}, nil,
			[]time.Duration{5*time.Hour + 10*time.Minute}, map[Outcome]int{Missed: 4, Fired: 1}},
		{"misfire runAll after downtime", jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll}, nil,
			[]time.Duration{5*time.Hour + 10*time.Minute, 5*time.Hour + 20*time.Minute}, map[Outcome]int{Fired: 5}},
		{"misfire runAll beyond MaxCatchUp", jobs.Schedule{Cron: "@every 1m", Misfire: jobs.MisfireRunAll}, nil,
			[]time.Duration{(MaxCatchUp + 250) * time.Minute}, map[Outcome]int{Fired: MaxCatchUp, Missed: 250}},
		{"suspended runAll keeps its times for the resume", jobs.Schedule{Cron: "@every 10m", Misfire: jobs.MisfireRunAll}, func(f *cronFake) { f.suspended = true },
			[]time.Duration{35 * time.Minute, 35 * time.Minute}, map[Outcome]int{}},
		{"suspended", jobs.Schedule{Cron: "@every 10m"}, func(f *cronFake) { f.suspended = true },
			[]time.Duration{35 * time.Minute, 35 * time.Minute}, map[Outcome]int{Suspended: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &cronFake{p: &jobs.Pipeline{Name: "p", Schedule: &tt.s, CreatedAt: t0}, fired: map[time.Time]int{}}
			if tt.setup != nil {
				tt.setup(f)
			}
			c := &clock{t: t0}
			got := map[Outcome]int{}
			cr := NewCron(f, f, WithClock(c.now), WithOutcomes(func(o Outcome, n int) { got[o] += n }))
			for _, d := range tt.at {
				c.t = t0.Add(d)
				tick(t, cr)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("outcomes %v; want %v", got, tt.want)
			}
		})
	}
}

func TestCronTimeZoneAcrossDST(t *testing.T) {
	// 02:30 every day in New York. On 2026-03-08 02:30 does not exist (the
	// clocks jump from 02:00 to 03:00): it fires at 03:00, as cron does; on
	// 2026-11-01 01:00-02:00 happens twice but 02:30 once.
	ny, _ := time.LoadLocation("America/New_York")
	start := time.Date(2026, 3, 6, 12, 0, 0, 0, ny)
	f, c, cr := setup(jobs.Schedule{Cron: "30 2 * * *", Timezone: "America/New_York"}, start)
	var fires []time.Time
	for c.t.Before(time.Date(2026, 3, 11, 0, 0, 0, 0, ny)) {
		next := tick(t, cr)
		c.t = next.Add(time.Second)
		tick(t, cr)
		fires = append(fires, next)
	}
	for _, fire := range fires {
		local := fire.In(ny)
		if local.Day() == 8 && (local.Hour() != 3 || local.Minute() != 0) || local.Day() != 8 && local.Minute() != 30 {
			t.Errorf("fire at %s", local)
		}
	}
	if len(f.fired) != len(fires) {
		t.Fatalf("fired %d, ticks %d", len(f.fired), len(fires))
	}
	// Days 7..10: one fire each, none doubled around the change.
	days := map[int]int{}
	for _, fire := range fires {
		days[fire.In(ny).Day()]++
	}
	for d := 7; d <= 10; d++ {
		if days[d] != 1 {
			t.Errorf("day %d fired %d times", d, days[d])
		}
	}
	// Fall back (2026-11-01): 01:30 happens twice in wall time, fires once;
	// an hourly schedule still fires in both 01:00 hours.
	fall := time.Date(2026, 10, 31, 12, 0, 0, 0, ny)
	daily := jobs.Schedule{Cron: "30 1 * * *", Timezone: "America/New_York"}
	a, _ := daily.Next(fall)
	b, _ := daily.Next(a)
	if b.Sub(a) < 23*time.Hour {
		t.Fatalf("01:30 fired twice on the fall-back night: %s and %s", a.In(ny), b.In(ny))
	}
	hourly := jobs.Schedule{Cron: "0 * * * *", Timezone: "America/New_York"}
	h1, _ := hourly.Next(time.Date(2026, 11, 1, 0, 30, 0, 0, ny))
	h2, _ := hourly.Next(h1)
	if h2.Sub(h1) != time.Hour {
		t.Fatalf("hourly across fall-back: %s then %s", h1, h2)
	}
}

func TestFireTimes(t *testing.T) {
	s := &jobs.Schedule{Cron: "0 2 * * *", Timezone: "Europe/Paris"}
	paris, _ := time.LoadLocation("Europe/Paris")
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, paris)
	times, err := FireTimes(s, from, from, from.AddDate(0, 0, 7), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(times) != 7 || times[0].In(paris).Hour() != 2 {
		t.Fatalf("times %v", times)
	}
}

// TestFireTimesOfAnEverySchedule: a backfill's fire times of an @every
// schedule are those the live schedule fires, counted from its creation or
// last fire, not from --from: a backfill from midnight of an hourly one got
// 00:59:59, 01:59:59... (Next of midnight less a nanosecond), times the
// schedule never fires, so that backfilling a span it had fired made
// second runs beside its own.
func TestFireTimesOfAnEverySchedule(t *testing.T) {
	created := time.Date(2026, 11, 2, 10, 23, 17, 400_000_000, time.UTC)
	s := jobs.Schedule{Cron: "@every 1h", Timezone: "Europe/Paris"}
	f, c, cr := setup(s, created)
	end := created.Add(5 * time.Hour)
	for c.t = created; c.t.Before(end); c.t = c.t.Add(30 * time.Second) {
		tick(t, cr)
	}
	end = c.t.Add(-30 * time.Second) // the last tick
	var live []time.Time
	for at := range f.fired {
		live = append(live, at)
	}
	slices.SortFunc(live, time.Time.Compare)
	if len(live) != 4 || !live[0].Equal(time.Date(2026, 11, 2, 11, 23, 17, 0, time.UTC)) {
		t.Fatalf("live fires %v", live)
	}
	for _, tc := range []struct {
		name     string
		base     time.Time
		from, to time.Time
		want     []time.Time
	}{
		{"the span the schedule fired", f.last, created, end, live},
		{"from its creation", created, created, end, live},
		{"before its creation", f.last, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC),
			[]time.Time{time.Date(2026, 11, 1, 0, 23, 17, 0, time.UTC), time.Date(2026, 11, 1, 1, 23, 17, 0, time.UTC),
				time.Date(2026, 11, 1, 2, 23, 17, 0, time.UTC)}},
		{"from a fire time, to one", created, live[1], live[2], live[1:3]},
		{"between two fires", created, live[1].Add(time.Second), live[2].Add(-time.Second), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FireTimes(&s, tc.base, tc.from, tc.to, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tc.want, time.Time.Equal) {
				t.Errorf("FireTimes %s..%s: %v, want %v", tc.from, tc.to, got, tc.want)
			}
		})
	}
}

// TestNextFireOfAnEverySchedule: a fire of an @every schedule handled
// late (at the tick after it) returned now + delay for the next fire, not
// the fire's time + delay, and Run slept past that one too.
func TestNextFireOfAnEverySchedule(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "@every 1h"}, t0)
	c.t = t0.Add(time.Hour + 20*time.Second)
	if next, want := tick(t, cr), t0.Add(2*time.Hour); len(f.fired) != 1 || !next.Equal(want) {
		t.Errorf("fired %v, next %s, want %s", f.fired, next, want)
	}
	c.t = t0.Add(time.Hour + 20*time.Minute)
	if next, _ := NextFire(f.p.Schedule, Entry{Pipeline: f.p, LastFire: f.last}.Base(), c.t); !next.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("NextFire %s", next)
	}
}

// TestLastDueAfterALongDowntime: an every-second schedule days after its
// last fire has more fire times since than the scan walks; the latest
// missed time is still the one found, so that runOnce fires it and only it.
func TestLastDueAfterALongDowntime(t *testing.T) {
	s := &jobs.Schedule{Cron: "* * * * * *"}
	now := time.Date(2026, 1, 12, 8, 0, 0, 500_000_000, time.UTC)
	for _, down := range []time.Duration{time.Minute, 3 * 24 * time.Hour, 400 * 24 * time.Hour} {
		due, missed, err := lastDue(s, now.Add(-down), now)
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Truncate(time.Second); !due.Equal(want) {
			t.Errorf("down %v: latest due %s, want %s", down, due, want)
		}
		// Past the scan, the count is a lower bound.
		if want := int(down/time.Second) - 1; missed != want && (want < maxScan || missed < maxScan) {
			t.Errorf("down %v: %d missed, want %d", down, missed, want)
		}
	}
	// Every second on Thursdays to Saturdays, a Sunday after 30 days
	// down: the latest is Saturday's last second.
	sunday := time.Date(2026, 1, 11, 8, 40, 0, 0, time.UTC)
	if due, _, err := lastDue(&jobs.Schedule{Cron: "* * * * * 4-6"}, sunday.Add(-30*24*time.Hour), sunday); err != nil ||
		!due.Equal(time.Date(2026, 1, 10, 23, 59, 59, 0, time.UTC)) {
		t.Errorf("Thursdays to Saturdays: latest due %s (%v), want Saturday 23:59:59", due, err)
	}
	// A sparse schedule is walked as before.
	due, missed, err := lastDue(&jobs.Schedule{Cron: "0 2 * * *"}, now.Add(-72*time.Hour), now)
	if err != nil || !due.Equal(time.Date(2026, 1, 12, 2, 0, 0, 0, time.UTC)) || missed != 2 {
		t.Fatalf("daily: %s, %d missed, %v", due, missed, err)
	}
}

// catchUpTimes are the hourly fire times after t0 up to n hours later.
func catchUpTimes(n int) []time.Time {
	var out []time.Time
	for h := 1; h <= n; h++ {
		out = append(out, t0.Truncate(time.Hour).Add(time.Duration(h)*time.Hour))
	}
	return out
}

// TestCronRunAllFiresEveryMissedTimeOldestFirst: misfire runAll after a
// downtime creates one run per missed time, in time order, and a new
// Cron over the same store (a restart) fires none of them again.
func TestCronRunAllFiresEveryMissedTimeOldestFirst(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll}, t0)
	c.t = t0.Add(6*time.Hour + 5*time.Minute)
	next := tick(t, cr)
	want := catchUpTimes(6)
	if !slices.Equal(f.order, want) {
		t.Fatalf("runs %v, want %v", f.order, want)
	}
	if !f.last.Equal(want[5]) {
		t.Fatalf("last fire %s, want %s", f.last, want[5])
	}
	if w := want[5].Add(time.Hour); !next.Equal(w) {
		t.Fatalf("next %s, want %s", next, w)
	}
	tick(t, NewCron(f, f, WithClock(c.now)))
	for tm, n := range f.fired {
		if n != 1 {
			t.Errorf("%s fired %d times", tm, n)
		}
	}
}

// TestCronRunAllAcrossACrash: a crash between a catch-up's fire and its
// record (here the record of the third time fails) leaves the times
// after it to the next start, which fires the third again (the same run)
// and goes on: every missed time gets exactly one run, in order.
func TestCronRunAllAcrossACrash(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll}, t0)
	f.failRecordAt = 3
	c.t = t0.Add(5*time.Hour + 5*time.Minute)
	if _, err := cr.Tick(context.Background()); err == nil {
		t.Fatal("the failed record was not reported")
	}
	if want := catchUpTimes(3); !slices.Equal(f.order, want) {
		t.Fatalf("before the crash: runs %v, want %v", f.order, want)
	}
	if want := catchUpTimes(2)[1]; !f.last.Equal(want) {
		t.Fatalf("last fire %s, want %s (the third not recorded)", f.last, want)
	}
	tick(t, NewCron(f, f, WithClock(c.now)))
	if want := catchUpTimes(5); !slices.Equal(f.order, want) {
		t.Fatalf("after the restart: runs %v, want %v", f.order, want)
	}
	if len(f.active) != 5 {
		t.Fatalf("%d runs, want 5: one per missed time", len(f.active))
	}
}

// TestCronRunAllStopsWithItsContext: a server stopping in the middle of
// a catch-up fires no more; its next start fires the rest, none twice.
func TestCronRunAllStopsWithItsContext(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll}, t0)
	ctx, cancel := context.WithCancel(context.Background())
	stopAfter := &stoppingFirer{cronFake: f, after: 2, cancel: cancel}
	cr = NewCron(f, stopAfter, WithClock(c.now))
	c.t = t0.Add(4*time.Hour + 5*time.Minute)
	if _, err := cr.Tick(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if want := catchUpTimes(2); !slices.Equal(f.order, want) {
		t.Fatalf("runs %v, want %v", f.order, want)
	}
	tick(t, NewCron(f, f, WithClock(c.now)))
	if want := catchUpTimes(4); !slices.Equal(f.order, want) {
		t.Fatalf("after the restart: runs %v, want %v", f.order, want)
	}
	for tm, n := range f.fired {
		if n != 1 {
			t.Errorf("%s fired %d times", tm, n)
		}
	}
}

// stoppingFirer cancels the tick's context after its after-th fire.
type stoppingFirer struct {
	*cronFake
	after  int
	cancel context.CancelFunc
}

func (s *stoppingFirer) Fire(ctx context.Context, name string, t time.Time) (*jobs.PipelineRun, error) {
	pr, err := s.cronFake.Fire(ctx, name, t)
	if len(s.order) == s.after {
		s.cancel()
	}
	return pr, err
}

// TestCronRunAllCap: past MaxCatchUp missed times, the oldest MaxCatchUp
// run and the later ones are passed over, not fired at the next tick.
func TestCronRunAllCap(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "@every 1m", Misfire: jobs.MisfireRunAll}, t0)
	c.t = t0.Add((MaxCatchUp+250)*time.Minute + 10*time.Second)
	tick(t, cr)
	if len(f.order) != MaxCatchUp {
		t.Fatalf("%d runs, want %d", len(f.order), MaxCatchUp)
	}
	if first, want := f.order[0], t0.Add(time.Minute); !first.Equal(want) {
		t.Fatalf("first run %s, want the oldest time %s", first, want)
	}
	if latest, want := f.order[MaxCatchUp-1], t0.Add(MaxCatchUp*time.Minute); !latest.Equal(want) {
		t.Fatalf("last run %s, want %s", latest, want)
	}
	if want := t0.Add((MaxCatchUp + 250) * time.Minute); !f.last.Equal(want) {
		t.Fatalf("last fire %s, want %s: the times past the cap passed over", f.last, want)
	}
	tick(t, cr)
	if len(f.order) != MaxCatchUp {
		t.Fatalf("the next tick fired %d more", len(f.order)-MaxCatchUp)
	}
}

// TestCronRunAllCatchesUpASuspension: the times a suspended runAll
// schedule passes run when it is resumed, as Airflow's catchup does for
// a paused DAG.
func TestCronRunAllCatchesUpASuspension(t *testing.T) {
	f, c, cr := setup(jobs.Schedule{Cron: "0 * * * *", Misfire: jobs.MisfireRunAll}, t0)
	f.suspended = true
	for h := 1; h <= 3; h++ {
		c.t = t0.Add(time.Duration(h) * time.Hour)
		tick(t, cr)
	}
	if len(f.order) != 0 {
		t.Fatalf("fired while suspended: %v", f.order)
	}
	f.suspended = false
	c.t = t0.Add(3*time.Hour + 30*time.Minute)
	tick(t, cr)
	if want := catchUpTimes(3); !slices.Equal(f.order, want) {
		t.Fatalf("runs %v, want %v", f.order, want)
	}
}

// TestCronSuspendedMissesNothing: a suspended schedule whose times passed
// while no server ran is not logged as having missed them (its times pass
// as the suspension says); an active one is.
func TestCronSuspendedMissesNothing(t *testing.T) {
	for _, suspended := range []bool{true, false} {
		var buf bytes.Buffer
		f := &cronFake{p: &jobs.Pipeline{Name: "p", Schedule: &jobs.Schedule{Cron: "0 * * * *"}, CreatedAt: t0},
			fired: map[time.Time]int{}, suspended: suspended}
		c := &clock{t: t0.Add(5*time.Hour + 10*time.Minute)}
		tick(t, NewCron(f, f, WithClock(c.now), WithLogger(zerolog.New(&buf))))
		if got := strings.Contains(buf.String(), "missed fire times"); got == suspended {
			t.Errorf("suspended %v: logged %q; want the missed fire times logged only when not suspended", suspended, buf.String())
		}
	}
}
