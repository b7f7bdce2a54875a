package storage

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

func tagged(tags map[string]string) func(*jobs.Run) {
	return func(r *jobs.Run) { r.Tags = tags }
}

// TestRunTags: a run's tags are stored with it and read back; runs are
// listed by tag (key and value, or key alone, several ANDed), with
// statuses, limits and the cursor, newest first.
func TestRunTags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	ended := func(r *jobs.Run) { r.Status = jobs.StatusSucceeded }
	mustCreate(t, db, newRun(1, tagged(map[string]string{"team": "data", "env": "prod"}), ended))
	mustCreate(t, db, newRun(2, tagged(map[string]string{"team": "web"}), ended))
	mustCreate(t, db, newRun(3))
	mustCreate(t, db, newRun(4, tagged(map[string]string{"team": "data", "cost-centre": ""})))
	mustCreate(t, db, newRun(5, tagged(map[string]string{"team": "data", "env": "dev"}), ended))

	if got := mustGet(t, db, "01RUN000004").Tags; len(got) != 2 || got["team"] != "data" || got["cost-centre"] != "" {
		t.Errorf("tags read back: %v", got)
	}
	if got := mustGet(t, db, "01RUN000003").Tags; got != nil {
		t.Errorf("a run without tags reads %v", got)
	}
	active := []jobs.Status{jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning}
	for _, tt := range []struct {
		name string
		f    RunFilter
		want []string
	}{
		{"key and value", RunFilter{Tags: map[string]string{"team": "data"}}, []string{"5", "4", "1"}},
		{"two tags", RunFilter{Tags: map[string]string{"team": "data", "env": "prod"}}, []string{"1"}},
		{"key alone", RunFilter{TagKeys: []string{"env"}}, []string{"5", "1"}},
		{"key and a tag", RunFilter{Tags: map[string]string{"team": "data"}, TagKeys: []string{"cost-centre"}}, []string{"4"}},
		{"empty value", RunFilter{Tags: map[string]string{"cost-centre": ""}}, []string{"4"}},
		{"no such value", RunFilter{Tags: map[string]string{"team": "ops"}}, nil},
		{"values are case-sensitive", RunFilter{Tags: map[string]string{"team": "Data"}}, nil},
		{"not ended", RunFilter{Tags: map[string]string{"team": "data"}, Statuses: active}, []string{"4"}},
		{"ended", RunFilter{Tags: map[string]string{"team": "data"}, Statuses: []jobs.Status{jobs.StatusSucceeded}}, []string{"5", "1"}},
		{"limit", RunFilter{Tags: map[string]string{"team": "data"}, Limit: 2}, []string{"5", "4"}},
		{"cursor", RunFilter{Tags: map[string]string{"team": "data"}, Before: "01RUN000004"}, []string{"1"}},
		{"key alone, cursor and status", RunFilter{TagKeys: []string{"team"}, Before: "01RUN000005", Statuses: []jobs.Status{jobs.StatusSucceeded}}, []string{"2", "1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := db.ListRuns(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, id := range ids(runs) {
				got = append(got, strings.TrimLeft(strings.TrimPrefix(id, "01RUN"), "0"))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ListRuns(%+v) = %v, want %v", tt.f, got, tt.want)
			}
		})
	}
}

// TestRunTagsQueryPlan: a page of the runs with a tag is read from the
// tag index in run id order, without sorting every run that has the tag;
// the runs not ended come from the status index, as without tags.
func TestRunTagsQueryPlan(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	plan := func(f RunFilter) string {
		t.Helper()
		// ListRuns's query, as it builds it.
		q, args := f.query()
		rows, err := db.r.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			b.WriteString(detail + "\n")
		}
		return b.String()
	}
	p := plan(RunFilter{Tags: map[string]string{"team": "data"}, Before: "01RUN9", Limit: 100})
	if !strings.Contains(p, "run_tags_key_value") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("a tag's page:\n%s", p)
	}
	p = plan(RunFilter{Tags: map[string]string{"team": "data"}, Statuses: []jobs.Status{jobs.StatusQueued}, Limit: 100})
	if !strings.Contains(p, "runs_status") {
		t.Errorf("a tag's runs not ended:\n%s", p)
	}
}
