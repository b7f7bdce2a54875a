package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// oldSchemaVersion is the newest schema version gantry 5fb2b37 knows,
// the version of the store in testdata/store-5fb2b37.sql.
const oldSchemaVersion = 20

// openOldStore writes the store gantry 5fb2b37 left (its schema: the
// migrations up to oldSchemaVersion; its rows: the fixture) and opens it
// with this gantry's Open, as an upgrade in place does.
func openOldStore(t *testing.T) (*DB, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gantry.db")
	w, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version <= oldSchemaVersion {
			if err := apply(ctx, w, m); err != nil {
				t.Fatalf("migration %s: %v", m.name, err)
			}
		}
	}
	rows, err := os.ReadFile(filepath.Join("testdata", "store-5fb2b37.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ExecContext(ctx, string(rows)); err != nil {
		t.Fatalf("old rows: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of the old store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, db.r
}

// sameStoredDoc fails t unless got, marshaled, is the document want as the old
// gantry stored it: no field lost, changed or added on the way through
// this gantry's types.
func sameStoredDoc(t *testing.T, what string, want []byte, got any) {
	t.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: stored: %v", what, err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w, g) {
		t.Errorf("%s read by this gantry and written back differs from what gantry 5fb2b37 stored:\n got %s\nwant %s", what, b, want)
	}
}

// TestUpgradeFrom5fb2b37Reads reads every document of a store gantry
// 5fb2b37 wrote: pipelines (parameters, triggers, a schedule, when:,
// dependsOn conditions), runs and pipeline runs come back as they were
// stored, the schedule keeps its last fire, the tag query finds the tagged
// runs and the idempotency keys still name their runs.
func TestUpgradeFrom5fb2b37Reads(t *testing.T) {
	ctx := context.Background()
	db, r := openOldStore(t)

	docs := func(q string) map[string][]byte {
		t.Helper()
		rows, err := r.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string][]byte{}
		for rows.Next() {
			var k string
			var doc []byte
			if err := rows.Scan(&k, &doc); err != nil {
				t.Fatal(err)
			}
			out[k] = doc
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}

	pipelines := docs(`SELECT name, doc FROM pipelines`)
	if len(pipelines) != 3 {
		t.Fatalf("%d pipelines in the fixture; want 3", len(pipelines))
	}
	for name, doc := range pipelines {
		p, err := db.GetPipeline(ctx, name, 0)
		if err != nil {
			t.Fatalf("pipeline %s: %v", name, err)
		}
		sameStoredDoc(t, "pipeline "+name, doc, p)
	}
	list, err := db.ListPipelines(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("ListPipelines: %d, %v; want the 3", len(list), err)
	}
	main, _ := db.GetPipeline(ctx, "up-main", 0)
	if d := main.Parameters; d["day"].Default != "2026-01-01" || d["mode"].Default != "auto" || len(d.RequiredNames()) != 0 {
		t.Errorf("up-main parameters %+v: want the defaults day and mode, none required", d)
	}

	runs := docs(`SELECT run_id, doc FROM runs`)
	if len(runs) != 8 {
		t.Fatalf("%d runs in the fixture; want 8", len(runs))
	}
	for id, doc := range runs {
		run, err := db.GetRun(ctx, id)
		if err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
		sameStoredDoc(t, "run "+id, doc, run)
	}
	prs := docs(`SELECT run_id, doc FROM pipeline_runs`)
	if len(prs) != 2 {
		t.Fatalf("%d pipeline runs in the fixture; want 2", len(prs))
	}
	for id, doc := range prs {
		pr, err := db.GetPipelineRun(ctx, id)
		if err != nil {
			t.Fatalf("pipeline run %s: %v", id, err)
		}
		sameStoredDoc(t, "pipeline run "+id, doc, pr)
	}

	scheds, err := db.ListSchedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 12, 6, 21, 37, 40, 0, time.UTC)
	if len(scheds) != 1 || scheds[0].Name != "up-tick" || !scheds[0].LastFire.Equal(want) {
		t.Errorf("schedules %+v: want up-tick, last fire %s", scheds, want)
	}

	tagged, err := db.ListRuns(ctx, RunFilter{Tags: map[string]string{"env": "upg"}, TagKeys: []string{"kind"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tagged) != 1 || tagged[0].RunID != "01m96mmx9pjrs3qzkaz8m4xrdh" {
		t.Errorf("runs tagged env=upg and kind: %d; want 01m96mmx9pjrs3qzkaz8m4xrdh alone", len(tagged))
	}
	// The schedule's fire key, which keeps a fire from running twice.
	fired, err := db.PipelineRunByKey(ctx, "schedule/up-tick/2026-12-06T21:37:40Z")
	if err != nil || fired.PipelineRunID != "pr-01m96mn250twza4s6f3e1rtq15" {
		t.Errorf("pipeline run of the fire key: %v, %v; want pr-01m96mn250twza4s6f3e1rtq15", fired, err)
	}
}

// TestUpgradeFrom5fb2b37MarksTheStore: once this gantry opened the old
// store, its schema version is newer than gantry 5fb2b37's, which
// therefore refuses it, naming the version, rather than misread the
// pipelines this gantry writes (a triggerRule, arrayOrder, dependsOnPast
// dropped without a word; a required parameter failing every listing).
// Its check is migrate's: the store's newest version above its own.
func TestUpgradeFrom5fb2b37MarksTheStore(t *testing.T) {
	_, r := openOldStore(t)
	var newest int
	if err := r.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	if newest <= oldSchemaVersion {
		t.Fatalf("the upgraded store's schema version is %d, which gantry 5fb2b37 (version %d) opens as its own, "+
			"misreading the pipeline documents this gantry writes", newest, oldSchemaVersion)
	}
	// The versions above the old one mark what it would misread: the
	// pipeline documents (pipeline_features) and array runs (array_runs).
	for _, want := range []string{"pipeline_features", "array_runs"} {
		var n int
		if err := r.QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE version > ? AND name LIKE ?`,
			oldSchemaVersion, "%"+want+"%").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("no migration %s above gantry 5fb2b37's version %d: want the one that marks the store", want, oldSchemaVersion)
		}
	}
}
