package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Entry is one schedule as the store holds it: the pipeline carrying it and
// what the store records beside.
type Entry struct {
	Pipeline  *jobs.Pipeline
	Suspended bool
	// LastFire is the latest scheduled time handled (fired, skipped or
	// missed); zero before the first.
	LastFire time.Time
	// LastRun is the scheduled time of the latest fire that stored or
	// found a pipeline run (the Firer records it); zero before the first.
	// Cron does not read it: fire times count from LastFire.
	LastRun time.Time
}

// ScheduleStore lists schedules and records how far each got.
type ScheduleStore interface {
	Schedules(ctx context.Context) ([]Entry, error)
	SetLastFire(ctx context.Context, name string, t time.Time) error
	// ActiveRuns returns the pipeline runs of a pipeline that have not ended.
	ActiveRuns(ctx context.Context, pipeline string) ([]jobs.PipelineRun, error)
}

// Firer starts and stops pipeline runs. Fire must be idempotent for a
// (pipeline, scheduled time): firing again returns the run fired before.
type Firer interface {
	Fire(ctx context.Context, pipeline string, scheduled time.Time) (*jobs.PipelineRun, error)
	StopPipelineRun(ctx context.Context, id, reason string) error
}

// Outcome is what became of a schedule's fire time.
type Outcome string

// The outcomes of fire times, as Cron reports them (WithOutcomes).
const (
	// Fired: a pipeline run was created for it (or, after a crash, found
	// created); a misfire caught up by misfire=runOnce or runAll counts
	// here too.
	Fired Outcome = "fired"
	// SkippedLate: it was handled later than its startingDeadlineSeconds
	// (or DefaultTolerance) allowed and misfire=skip dropped it.
	SkippedLate Outcome = "skipped_late"
	// SkippedConcurrent: concurrencyPolicy Forbid and a run of the
	// pipeline was active.
	SkippedConcurrent Outcome = "skipped_concurrent"
	// Suspended: the schedule was suspended.
	Suspended Outcome = "suspended"
	// Missed: a later fire time of the schedule was due too (no server
	// ran in between), and only the latest is handled; or misfire=runAll
	// passed it over beyond MaxCatchUp.
	Missed Outcome = "missed"
)

// WithOutcomes makes Cron call fn with the outcome of the fire times it
// handles, n of them at once (several only for Missed and Suspended). fn is
// called from Tick's goroutine and must not block.
func WithOutcomes(fn func(o Outcome, n int)) Option {
	return func(c *config) { c.outcome = fn }
}

// DefaultTolerance is how late a fire may start when its schedule sets no
// startingDeadlineSeconds before it counts as missed.
const DefaultTolerance = time.Minute

// Cron fires schedules. Tick does the work for the time its clock says;
// Run calls it whenever a fire is due.
type Cron struct {
	store ScheduleStore
	firer Firer
	cfg   config
	wake  chan struct{}
}

// NewCron returns a Cron over a store and a firer.
func NewCron(store ScheduleStore, firer Firer, opts ...Option) *Cron {
	return &Cron{store: store, firer: firer, cfg: newConfig(opts), wake: make(chan struct{}, 1)}
}

// Wake makes Run look at the schedules now (after an apply or a resume).
func (c *Cron) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run ticks until ctx is done: at every due fire, on Wake, and at least
// every maxSleep in case the clock jumped.
func (c *Cron) Run(ctx context.Context) {
	const maxSleep = 30 * time.Second
	for {
		next, err := c.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			c.cfg.log.Error().Err(err).Msg("cron tick")
		}
		sleep := maxSleep
		if !next.IsZero() {
			sleep = min(max(next.Sub(c.cfg.now()), 10*time.Millisecond), maxSleep)
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// Tick handles every schedule at the clock's time and returns the earliest
// next fire time (zero if none). For each schedule, only the latest due
// fire time counts: one on time (within startingDeadlineSeconds, or
// DefaultTolerance) fires; one later than that is a misfire, which
// misfire=runOnce fires once and skip drops. Earlier due times are missed.
// Suspended schedules let their fire times pass. misfire=runAll instead
// fires every due time, oldest first (catchUp), when any is late or
// several are due, and keeps a suspended schedule's times for its resume. Forbid skips a fire while
// a run of the pipeline is active; Replace stops the active runs first.
// The last fire time is recorded after the fire, so a crash in between
// fires the same time again, which Fire makes a no-op.
func (c *Cron) Tick(ctx context.Context) (time.Time, error) {
	entries, err := c.store.Schedules(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := c.cfg.now()
	var next time.Time
	var errs []error
	for _, e := range entries {
		n, err := c.tickOne(ctx, e, now)
		if err != nil {
			errs = append(errs, err)
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next, errors.Join(errs...)
}

func (c *Cron) tickOne(ctx context.Context, e Entry, now time.Time) (time.Time, error) {
	p, s := e.Pipeline, e.Pipeline.Schedule
	if s == nil {
		return time.Time{}, nil
	}
	log := c.cfg.log.With().Str("schedule", p.Name).Logger()
	base := e.Base()
	due, missed, err := lastDue(s, base, now)
	if err != nil {
		return time.Time{}, err
	}
	// Not s.Next(now): an @every schedule's next fire counts from base. A
	// fire handled late (the tick after it, up to Run's 30s sleep) made
	// now + delay the next, and Run slept past the fire that late again.
	next, _ := NextFire(s, base, now)
	if due.IsZero() {
		first, _ := s.Next(base)
		return first, nil
	}
	tolerance := DefaultTolerance
	if s.StartingDeadlineSeconds > 0 {
		tolerance = time.Duration(min(s.StartingDeadlineSeconds, jobs.MaxDurationSeconds)) * time.Second
	}
	if s.Misfire == jobs.MisfireRunAll {
		if e.Suspended {
			// The times pass unrecorded: the resume catches them up.
			return next, nil
		}
		if missed > 0 || now.Sub(due) > tolerance {
			return next, c.catchUp(ctx, e, base, now)
		}
	}
	record := func() error { return c.store.SetLastFire(ctx, p.Name, due) }
	if e.Suspended {
		// Its times pass as the suspension says, whether a server ran
		// or not: nothing was missed.
		c.cfg.outcome(Suspended, missed+1)
		return next, record()
	}
	if missed > 0 {
		log.Warn().Int("missed", missed).Time("latest", due).Msg("schedule missed fire times while no server ran")
		c.cfg.outcome(Missed, missed)
	}
	if late := now.Sub(due); late > tolerance {
		if s.Misfire != jobs.MisfireRunOnce {
			log.Warn().Time("scheduled", due).Dur("late", late).Msg("misfire: skipped (misfire: skip)")
			c.cfg.outcome(SkippedLate, 1)
			return next, record()
		}
		log.Info().Time("scheduled", due).Dur("late", late).Msg("misfire: one catch-up run (misfire: runOnce)")
	}
	active, err := c.store.ActiveRuns(ctx, p.Name)
	if err != nil {
		return next, err
	}
	var others []jobs.PipelineRun
	for _, r := range active {
		// A run of this very time is ours from before a crash.
		if r.ScheduledTime == nil || !r.ScheduledTime.Equal(due) {
			others = append(others, r)
		}
	}
	switch s.Policy() {
	case jobs.ConcurrencyForbid:
		if len(others) > 0 {
			log.Info().Time("scheduled", due).Str("active", others[0].PipelineRunID).Msg("skipped: concurrencyPolicy Forbid and a run is active")
			c.cfg.outcome(SkippedConcurrent, 1)
			return next, record()
		}
	case jobs.ConcurrencyReplace:
		for _, r := range others {
			if err := c.firer.StopPipelineRun(ctx, r.PipelineRunID, "replaced by the run scheduled at "+due.UTC().Format(time.RFC3339)); err != nil {
				return next, err
			}
		}
	}
	pr, err := c.firer.Fire(ctx, p.Name, due)
	if err != nil {
		return next, err
	}
	log.Info().Time("scheduled", due).Str("pipelineRun", pr.PipelineRunID).Msg("fired")
	c.cfg.outcome(Fired, 1)
	return next, record()
}

// MaxCatchUp bounds the runs one catch-up (misfire: runAll) fires: as
// many as one backfill creates (server.MaxBackfill).
const MaxCatchUp = 1000

// catchUp fires every time of e's schedule due after base up to now,
// oldest first, at most MaxCatchUp of them, as misfire: runAll says. Each
// time is recorded as the last fire once its run is stored, before the
// next is fired: a crash in between fires from the first time not
// recorded, and a time fired but not recorded is fired again, which Fire
// makes a no-op. No time is fired twice and none is passed over.
//
// Past MaxCatchUp, the later times are passed over (Missed), so that a
// catch-up after a long downtime does not flood the queue; the log says
// which, and how to backfill them. The concurrency policy is Allow
// (Validate refuses the others with runAll): the runs wait PENDING for
// the pipeline's maxActiveRuns, and start oldest first.
func (c *Cron) catchUp(ctx context.Context, e Entry, base, now time.Time) error {
	p, s := e.Pipeline, e.Pipeline.Schedule
	log := c.cfg.log.With().Str("schedule", p.Name).Logger()
	times, rest, latest, err := dueTimes(s, base, now, MaxCatchUp)
	if err != nil || len(times) == 0 {
		return err
	}
	log.Info().Int("runs", len(times)).Time("from", times[0]).Time("to", times[len(times)-1]).Msg("misfire: a run for every missed time (misfire: runAll)")
	for _, t := range times {
		if err := ctx.Err(); err != nil {
			return err // a stopping server: the next start goes on from t
		}
		pr, err := c.firer.Fire(ctx, p.Name, t)
		if err != nil {
			return err
		}
		log.Debug().Time("scheduled", t).Str("pipelineRun", pr.PipelineRunID).Msg("fired (catch-up)")
		c.cfg.outcome(Fired, 1)
		if err := c.store.SetLastFire(ctx, p.Name, t); err != nil {
			return err
		}
	}
	if rest == 0 {
		return nil
	}
	after := times[len(times)-1]
	first, err := s.Next(after)
	if err != nil {
		return err
	}
	log.Warn().Int("fired", len(times)).Int("passedOver", rest).Time("from", first).Time("to", latest).
		Msgf("misfire: runAll fires at most %d times at once, the oldest first; the %d later ones were not run: "+
			"gantry pipeline backfill %s --from %s --to %s runs them", MaxCatchUp, rest, p.Name,
			first.UTC().Format(time.RFC3339), latest.UTC().Format(time.RFC3339))
	c.cfg.outcome(Missed, rest)
	return c.store.SetLastFire(ctx, p.Name, latest)
}

// dueTimes returns the fire times t of s with base < t <= now, oldest
// first, at most limit of them; rest counts those due after them (at
// least, past maxScan), the latest of which is latest.
func dueTimes(s *jobs.Schedule, base, now time.Time, limit int) (times []time.Time, rest int, latest time.Time, err error) {
	t := base
	for len(times) < limit {
		n, err := s.Next(t)
		if err != nil {
			return nil, 0, time.Time{}, err
		}
		if n.IsZero() || n.After(now) {
			return times, 0, time.Time{}, nil
		}
		times, t = append(times, n), n
	}
	latest, missed, err := lastDue(s, t, now)
	if err != nil || latest.IsZero() {
		return times, 0, time.Time{}, err
	}
	return times, missed + 1, latest, nil
}

// maxScan bounds the fire times walked between two ticks (an @every 1s
// schedule after a long downtime).
const maxScan = 100000

// lastDue returns the latest fire time t with base < t <= now and how many
// earlier ones it passed over (at least, past maxScan), or a zero time if
// none is due.
func lastDue(s *jobs.Schedule, base, now time.Time) (due time.Time, missed int, err error) {
	due, missed, full, err := scanDue(s, base, now)
	if !full || err != nil {
		return due, missed, err
	}
	// Too many fire times since base to walk (an every-second schedule
	// after days without a server). Taking the scan's last for the latest
	// would fire an old time as the catch-up. Search instead for a start
	// between the scan's end (fire times after it, too many) and now (none
	// after it) from which the scan reaches now.
	lo, hi := due, now
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2)
		d, m, f, err := scanDue(s, mid, now)
		switch {
		case err != nil:
			return time.Time{}, 0, err
		case d.IsZero():
			hi = mid
		case f:
			lo = mid
		default:
			return d, missed + 1 + m, nil
		}
	}
	d, m, _, err := scanDue(s, lo, now)
	if err != nil || d.IsZero() {
		return due, missed, err
	}
	return d, missed + 1 + m, nil
}

// scanDue walks the fire times after base up to now, at most maxScan of
// them; full says it stopped there.
func scanDue(s *jobs.Schedule, base, now time.Time) (due time.Time, missed int, full bool, err error) {
	t := base
	for i := 0; i < maxScan; i++ {
		n, err := s.Next(t)
		if err != nil {
			return time.Time{}, 0, false, err
		}
		if n.IsZero() || n.After(now) {
			return due, missed, false, nil
		}
		if !due.IsZero() {
			missed++
		}
		due, t = n, n
	}
	return due, missed, true, nil
}

// Base is where the entry's fire times count from, as Tick counts them:
// its last fire, or before the first its pipeline's creation.
func (e Entry) Base() time.Time {
	if e.LastFire.IsZero() {
		return e.Pipeline.CreatedAt
	}
	return e.LastFire
}

// FireTimes returns the fire times of s in [from, to], at most limit: the
// times the live schedule, counting from base (Entry.Base), fired or would
// have fired, so that a backfill's runs are the schedule's own (the same
// run ids). For cron expressions they are the clock's; an @every schedule
// fires at base + k·delay.
func FireTimes(s *jobs.Schedule, base, from, to time.Time, limit int) ([]time.Time, error) {
	var out []time.Time
	t := from.Add(-time.Nanosecond)
	for len(out) < limit {
		n, err := NextFire(s, base, t)
		if err != nil {
			return nil, err
		}
		if n.IsZero() || n.After(to) {
			break
		}
		out = append(out, n)
		t = n
	}
	return out, nil
}

// NextFire is the first fire time of s strictly after t, for a schedule
// counting from base (Entry.Base). An @every schedule's live fires are base (to the
// second, as the cron engine takes it) plus whole delays: s.Next(t) would
// count from t instead, and a backfill from midnight of an hourly @every
// got 00:59:59, 01:59:59... (Next of midnight less a nanosecond).
func NextFire(s *jobs.Schedule, base, t time.Time) (time.Time, error) {
	d, ok := s.Every()
	if !ok {
		return s.Next(t)
	}
	b := base.Truncate(time.Second)
	diff := t.Sub(b)
	k := diff / d
	if diff < 0 && diff%d != 0 {
		k-- // floor, not toward zero
	}
	loc, err := s.Location()
	if err != nil {
		return time.Time{}, err
	}
	return b.Add((k + 1) * d).In(loc), nil
}
