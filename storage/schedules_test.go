package storage

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestScheduleLastRun: a schedule's last run is kept apart from its last
// fire, never moves backwards, so recording a fire again changes nothing,
// and survives a reopen.
func TestScheduleLastRun(t *testing.T) {
	ctx := context.Background()
	db, path := openDB(t)
	p := testPipeline(t, "name: p\nschedule: {cron: '@hourly'}\nstages: [{name: a, taskDefinition: t}]\n")
	if _, _, err := db.PutPipeline(ctx, p, t0); err != nil {
		t.Fatal(err)
	}
	if ss, _ := db.ListSchedules(ctx); len(ss) != 1 || !ss[0].LastRun.IsZero() {
		t.Fatalf("schedule before a fire: %+v", ss)
	}
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
		if err := db.SetScheduleLastRun(ctx, "p", at); err != nil {
			t.Fatalf("SetScheduleLastRun %s: %v", at, err)
		}
	}
	// Times handled later without a run move the last fire only.
	if err := db.SetScheduleLastFire(ctx, "p", t0.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want := func(db *DB, when string) {
		t.Helper()
		ss, err := db.ListSchedules(ctx)
		if err != nil || len(ss) != 1 {
			t.Fatalf("%s: schedules %+v, %v", when, ss, err)
		}
		if !ss[0].LastRun.Equal(t0.Add(2*time.Hour)) || !ss[0].LastFire.Equal(t0.Add(5*time.Hour)) {
			t.Fatalf("%s: lastRun %s lastFire %s; want %s and %s", when, ss[0].LastRun, ss[0].LastFire,
				t0.Add(2*time.Hour), t0.Add(5*time.Hour))
		}
	}
	want(db, "set")
	db.Close()
	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	want(db2, "reopened")
	// No such schedule: nothing to record, no row made.
	if err := db2.SetScheduleLastRun(ctx, "nope", t0); err != nil {
		t.Fatal(err)
	}
	if ss, _ := db2.ListSchedules(ctx); len(ss) != 1 {
		t.Fatalf("schedules after recording an unknown one: %+v", ss)
	}
}

// TestScheduleLastRunMigration: migration 0017 takes a schedule's last run
// from its kept fires (trigger schedule) of the pipeline since its first
// version, not from its backfills, triggers or a deleted pipeline's runs.
func TestScheduleLastRunMigration(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	p := testPipeline(t, "name: p\nschedule: {cron: '@hourly'}\nstages: [{name: a, taskDefinition: t}]\n")
	q := testPipeline(t, "name: q\nschedule: {cron: '@hourly'}\nstages: [{name: a, taskDefinition: t}]\n")
	for _, pl := range []*jobs.Pipeline{p, q} {
		if _, _, err := db.PutPipeline(ctx, pl, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	at := func(h int) *time.Time { t := t0.Add(time.Duration(h) * time.Hour); return &t }
	for i, r := range []struct {
		trigger   string
		scheduled *time.Time
		created   time.Time
	}{
		{"schedule", at(2), t0.Add(2 * time.Hour)},
		{"schedule", at(3), t0.Add(3 * time.Hour)},
		{"backfill", at(4), t0.Add(4 * time.Hour)},
		{"trigger", at(5), t0.Add(5 * time.Hour)},
		{"manual", nil, t0.Add(6 * time.Hour)},
		{"schedule", at(9), t0}, // the deleted p's, before this one's first version
	} {
		pr := &jobs.PipelineRun{PipelineRunID: "pr-" + string(rune('a'+i)), Pipeline: "p", Version: 1, Status: jobs.StatusSucceeded,
			CreatedAt: r.created, Trigger: r.trigger, ScheduledTime: r.scheduled, Spec: *p,
			Stages: []jobs.StageState{{Name: "a", Status: jobs.StatusSucceeded}}}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			t.Fatal(err)
		}
	}
	// Undo migration 0017, then apply it again over the stored runs.
	for _, stmt := range []string{`ALTER TABLE schedules DROP COLUMN last_run`, `DELETE FROM schema_migrations WHERE version = 17`} {
		if _, err := db.w.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := migrate(ctx, db.w); err != nil {
		t.Fatal(err)
	}
	ss, err := db.ListSchedules(ctx)
	if err != nil || len(ss) != 2 {
		t.Fatalf("schedules %+v, %v", ss, err)
	}
	if !ss[0].LastRun.Equal(*at(3)) || !ss[1].LastRun.IsZero() {
		t.Fatalf("last runs after the migration: p %s, q %s; want %s and none", ss[0].LastRun, ss[1].LastRun, *at(3))
	}
}
