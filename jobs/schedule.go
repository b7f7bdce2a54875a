package jobs

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule fires a pipeline on a cron expression, as a Kubernetes CronJob
// does.
type Schedule struct {
	// Cron has 5 fields, or 6 with seconds first, or a descriptor
	// (@hourly, @daily, @every 10m).
	Cron string `json:"cron"`
	// Timezone is an IANA zone name; UTC by default.
	Timezone string `json:"timezone,omitempty"`
	// ConcurrencyPolicy is Allow (default), Forbid or Replace.
	ConcurrencyPolicy string `json:"concurrencyPolicy,omitempty"`
	// StartingDeadlineSeconds: a fire later than this after its time is a
	// misfire, handled as Misfire says; 0 means the default of 60 s
	// (scheduler.DefaultTolerance).
	StartingDeadlineSeconds int `json:"startingDeadlineSeconds,omitempty"`
	// Misfire says what to do with a misfire, a fire later than
	// StartingDeadlineSeconds (a server down or busy at its time): skip
	// (default), runOnce (one catch-up run for the latest missed time) or
	// runAll (a run for every missed time, oldest first, as Airflow's
	// catchup=True: the times passed while no server ran or while the
	// schedule was suspended too, at most scheduler.MaxCatchUp at once).
	Misfire string `json:"misfire,omitempty"`
	Suspend bool   `json:"suspend,omitempty"`
	// DateParameter names a parameter of the pipeline that each run with
	// a scheduled time (a fire, a misfire's catch-up, a backfill's run,
	// schedule trigger's) gets as that time's date in the schedule's zone
	// (YYYY-MM-DD), moved by DateOffsetDays, over its default: the day a
	// daily ETL works on, as Airflow's ds. Runs without a scheduled time
	// (pipeline run, triggers) keep their parameters as given.
	DateParameter string `json:"dateParameter,omitempty"`
	// DateOffsetDays moves DateParameter's date by whole days: -1 gives
	// a run fired at 02:00 the day before, as Airflow's ds of a daily
	// schedule (the start of its data interval).
	DateOffsetDays int `json:"dateOffsetDays,omitempty"`
}

// MaxDateOffsetDays bounds Schedule.DateOffsetDays either way: a year
// and a day, room for a leap year.
const MaxDateOffsetDays = 366

// ScheduledDate is the value of DateParameter for a run scheduled at t:
// t's date in the schedule's zone, DateOffsetDays later.
func (s *Schedule) ScheduledDate(t time.Time) string {
	loc, err := s.Location()
	if err != nil {
		loc = time.UTC
	}
	// Noon of t's day, so that moving it by days never lands on another
	// date for a clock change.
	l := t.In(loc)
	noon := time.Date(l.Year(), l.Month(), l.Day(), 12, 0, 0, 0, loc)
	return noon.AddDate(0, 0, s.DateOffsetDays).Format(time.DateOnly)
}

// Concurrency and misfire policies.
const (
	ConcurrencyAllow   = "Allow"
	ConcurrencyForbid  = "Forbid"
	ConcurrencyReplace = "Replace"
	MisfireSkip        = "skip"
	MisfireRunOnce     = "runOnce"
	MisfireRunAll      = "runAll"
)

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parsed cron expressions and loaded time zones, kept: the cron engine asks
// every schedule for its next time on every tick, and parsing and loading
// (which reads the zone database) cost far more than the answer.
var (
	specs     sync.Map // expression → cron.Schedule
	locations sync.Map // zone name → *time.Location
)

func parseCron(expr string) (cron.Schedule, error) {
	if s, ok := specs.Load(expr); ok {
		return s.(cron.Schedule), nil
	}
	s, err := parseSpec(expr)
	if err != nil {
		return nil, err
	}
	specs.Store(expr, s)
	return s, nil
}

// parseSpec is the cron library's Parse, less a panic: the library slices
// a leading TZ= or CRON_TZ= up to the first space, and one with no space
// after it ("TZ=UTC") panicked the server that validated it.
func parseSpec(expr string) (cron.Schedule, error) {
	if (strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=")) && !strings.Contains(expr, " ") {
		return nil, errors.New("a time zone and no fields")
	}
	return cronParser.Parse(expr)
}

// Validate collects every problem of the schedule.
func (s *Schedule) Validate() error {
	var errs []error
	if s.Cron == "" {
		errs = append(errs, &FieldError{"cron", "required"})
	} else if msg := eventBridgeCron(s.Cron); msg != "" {
		errs = append(errs, &FieldError{"cron", msg})
	} else if spec, err := parseSpec(s.Cron); err != nil {
		for _, p := range cronProblems(s.Cron, err) {
			errs = append(errs, &FieldError{"cron", p})
		}
	} else if d, ok := everyDuration(s.Cron); ok && d < time.Second {
		// The cron library makes any shorter delay, negative ones too, a
		// second: "@every -5m" fired every second.
		errs = append(errs, &FieldError{"cron", fmt.Sprintf("%q: the delay must be at least 1s", s.Cron)})
	} else if steps := cronSteps(s.Cron); len(steps) > 0 {
		for _, p := range steps {
			errs = append(errs, &FieldError{"cron", fmt.Sprintf("%q: %s", s.Cron, p)})
		}
	} else if spec.Next(neverFiresFrom).IsZero() {
		// The library looks five years ahead: a date that does not
		// exist (February 30) never fires, which would pass in silence.
		errs = append(errs, &FieldError{"cron", fmt.Sprintf("%q never fires: no date matches it", s.Cron)})
	}
	if strings.Contains(s.Cron, "TZ=") {
		errs = append(errs, &FieldError{"cron", "set the zone with timezone, not TZ= in the expression"})
	}
	if _, err := s.Location(); err != nil {
		errs = append(errs, &FieldError{"timezone", err.Error()})
	}
	switch s.ConcurrencyPolicy {
	case "", ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		errs = append(errs, &FieldError{"concurrencyPolicy", fmt.Sprintf("%q: want Allow, Forbid or Replace", s.ConcurrencyPolicy)})
	}
	switch s.Misfire {
	case "", MisfireSkip, MisfireRunOnce:
	case MisfireRunAll:
		// Each run of a catch-up would skip or stop the one fired just
		// before it: all but one would be lost.
		if p := s.ConcurrencyPolicy; p == ConcurrencyForbid || p == ConcurrencyReplace {
			errs = append(errs, &FieldError{"misfire", fmt.Sprintf("runAll: concurrencyPolicy %s would skip or stop all but one run of a catch-up; "+
				"use concurrencyPolicy Allow (a pipeline's maxActiveRuns: 1 runs them one at a time), or misfire runOnce", p)})
		}
	default:
		errs = append(errs, &FieldError{"misfire", fmt.Sprintf("%q: want skip, runOnce or runAll", s.Misfire)})
	}
	if s.DateOffsetDays < -MaxDateOffsetDays || s.DateOffsetDays > MaxDateOffsetDays {
		errs = append(errs, &FieldError{"dateOffsetDays", fmt.Sprintf("%d: want -%d to %d days", s.DateOffsetDays, MaxDateOffsetDays, MaxDateOffsetDays)})
	}
	if s.DateOffsetDays != 0 && s.DateParameter == "" {
		errs = append(errs, &FieldError{"dateOffsetDays", "moves the date of dateParameter, which is not set: " +
			"add dateParameter: NAME (a parameter the pipeline declares), or remove dateOffsetDays"})
	}
	if s.StartingDeadlineSeconds < 0 {
		errs = append(errs, &FieldError{"startingDeadlineSeconds", "must not be negative"})
	} else if s.StartingDeadlineSeconds > MaxDurationSeconds {
		errs = append(errs, &FieldError{"startingDeadlineSeconds", tooLong(s.StartingDeadlineSeconds)})
	}
	return errors.Join(errs...)
}

// neverFiresFrom starts the search for a schedule's first fire time in
// Validate: any five years hold every date that exists, February 29 too.
var neverFiresFrom = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// everyDuration returns the delay of an "@every DURATION" expression.
func everyDuration(expr string) (time.Duration, bool) {
	rest, ok := strings.CutPrefix(expr, "@every ")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(rest))
	return d, err == nil
}

// Every returns the delay of an "@every" schedule, as the cron engine
// applies it (whole seconds), and whether the schedule is one. Such a
// schedule's fire times follow from where it started (its first fire is
// Next of its creation), not from the clock's wall time.
func (s *Schedule) Every() (time.Duration, bool) {
	spec, err := parseCron(s.Cron)
	if err != nil {
		return 0, false
	}
	c, ok := spec.(cron.ConstantDelaySchedule)
	return c.Delay, ok && c.Delay > 0
}

// Location is the schedule's time zone.
func (s *Schedule) Location() (*time.Location, error) {
	if s.Timezone == "" {
		return time.UTC, nil
	}
	if loc, ok := locations.Load(s.Timezone); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err == nil {
		locations.Store(s.Timezone, loc)
	}
	if err != nil {
		if near := nearestZone(s.Timezone); near != "" {
			return nil, fmt.Errorf("%q: not an IANA time zone; did you mean %q?", s.Timezone, near)
		}
		return nil, fmt.Errorf("%q: not an IANA time zone (like Europe/Paris)", s.Timezone)
	}
	return loc, nil
}

// Next returns the first fire time strictly after t, in the schedule's
// zone, or the zero time if the expression never fires.
func (s *Schedule) Next(t time.Time) (time.Time, error) {
	spec, err := parseCron(s.Cron)
	if err != nil {
		return time.Time{}, fmt.Errorf("cron %q: %w", s.Cron, err)
	}
	loc, err := s.Location()
	if err != nil {
		return time.Time{}, err
	}
	t = t.In(loc)
	n := onTheClock(spec, spec.Next(t))
	// When clocks fall back, an hour of wall time happens twice and cron
	// would fire a daily 01:30 in both. Fire it once: a time whose wall
	// clock repeats the previous fire's is skipped, unless the schedule
	// fires more than hourly there (an hourly job runs in both hours).
	if !n.IsZero() && sameWall(n, t) {
		if after := onTheClock(spec, spec.Next(n)); after.Sub(n) > time.Hour {
			n = after
		}
	}
	if gap, ok := skippedFire(spec, t, n); ok {
		return gap, nil
	}
	return n, nil
}

// skippedFire reports whether clocks spring forward between t and next
// over a wall time the schedule fires at, and if so returns the instant
// of the change: a daily 02:30 runs at 03:00 on the day 02:30 does not
// exist, as cron does, instead of waiting a day (or a week). Schedules
// that also fire within the hour after the change (hourly ones) skip the
// missing hour, as they run twice in the hour repeated when clocks fall
// back.
func skippedFire(spec cron.Schedule, t, next time.Time) (time.Time, bool) {
	for cur, i := t, 0; i < 16; i++ {
		_, end := cur.ZoneBounds()
		if end.IsZero() || (!next.IsZero() && !end.Before(next)) {
			return time.Time{}, false
		}
		_, before := cur.Zone()
		_, after := end.Zone()
		if after > before {
			// In the offset before the change, the wall times of the
			// gap are the instants [end, end+after-before).
			fixed := time.FixedZone("", before)
			m := spec.Next(end.Add(-time.Second).In(fixed))
			if !m.IsZero() && m.Before(end.Add(time.Duration(after-before)*time.Second)) {
				if n := onTheClock(spec, spec.Next(end.Add(-time.Second).In(t.Location()))); n.IsZero() || !n.Before(end.Add(time.Hour)) {
					return end.In(t.Location()), true
				}
			}
		}
		cur = end
	}
	return time.Time{}, false
}

// onTheClock is n, or if the cron library's n is not a wall time of the
// schedule, its first fire that is. The library moves a time by a whole
// hour when it lands in a change of clocks; where the change is half an
// hour (Lord Howe Island) that made a time the schedule never names, and a
// daily 01:45 fired at 01:45 and again at 02:45 on the day clocks sprang
// forward. (Fires in the gap itself are skippedFire's.)
func onTheClock(spec cron.Schedule, n time.Time) time.Time {
	s, ok := spec.(*cron.SpecSchedule)
	for i := 0; ok && i < 4 && !n.IsZero() && !wallMatches(s, n); i++ {
		n = spec.Next(n)
	}
	return n
}

// wallMatches reports whether t's wall clock time is one s names (the
// day fields are left to the library: a change of clocks does not move a
// time across days there).
func wallMatches(s *cron.SpecSchedule, t time.Time) bool {
	return s.Second&(1<<uint(t.Second())) != 0 && s.Minute&(1<<uint(t.Minute())) != 0 && s.Hour&(1<<uint(t.Hour())) != 0
}

func sameWall(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd && a.Hour() == b.Hour() && a.Minute() == b.Minute() && a.Second() == b.Second() && !a.Equal(b)
}

// Policy is the concurrency policy with its default.
func (s *Schedule) Policy() string {
	if s.ConcurrencyPolicy == "" {
		return ConcurrencyAllow
	}
	return s.ConcurrencyPolicy
}
