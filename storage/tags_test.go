package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
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
	// The other tags are looked up by run_tags' primary key, one after
	// the other, in a plan that does not grow with their number: a
	// table each made the plan of 50 take seconds to find.
	many := func(n int, statuses ...jobs.Status) RunFilter {
		f := RunFilter{Tags: map[string]string{}, Statuses: statuses, Limit: 100}
		for i := range n {
			if i%2 == 0 {
				f.Tags[fmt.Sprintf("k%02d", i)] = "v"
			} else {
				f.TagKeys = append(f.TagKeys, fmt.Sprintf("k%02d", i))
			}
		}
		return f
	}
	for _, statuses := range [][]jobs.Status{nil, {jobs.StatusQueued}} {
		rows := regexp.MustCompile(`\d+-ROW VALUES`)
		three, fifty := plan(many(3, statuses...)), plan(many(jobs.MaxTags, statuses...))
		if rows.ReplaceAllString(three, "N-ROW VALUES") != rows.ReplaceAllString(fifty, "N-ROW VALUES") {
			t.Errorf("statuses %v: the plan of 50 tags is not that of 3:\n%s\nand\n%s", statuses, fifty, three)
		}
		if !strings.Contains(fifty, "SEARCH x USING PRIMARY KEY (run_id=? AND key=?)") {
			t.Errorf("statuses %v: 50 tags:\n%s", statuses, fifty)
		}
	}
}

// existsQuery is ListRuns's query before its tags other than the first
// were looked up from one VALUES table: an EXISTS for each, which SQLite
// plans as a join of as many tables. TestRunTagsSameRuns compares the two.
func (f RunFilter) existsQuery() (string, []any) {
	var (
		q    strings.Builder
		args []any
	)
	tags, id := f.tagConds(), "r.run_id"
	if len(tags) > 0 && !activeOnly(f.Statuses) {
		t := tags[0]
		tags = tags[1:]
		q.WriteString(`SELECT r.doc FROM run_tags t CROSS JOIN runs r ON r.run_id = t.run_id WHERE t.key = ?`)
		args = append(args, t.key)
		if !t.any {
			q.WriteString(` AND t.value = ?`)
			args = append(args, t.value)
		}
		id = "t.run_id"
	} else {
		q.WriteString(`SELECT r.doc FROM runs r WHERE 1 = 1`)
	}
	if len(f.Statuses) > 0 {
		q.WriteString(` AND r.status IN (?` + strings.Repeat(`, ?`, len(f.Statuses)-1) + `)`)
		for _, s := range f.Statuses {
			args = append(args, string(s))
		}
	}
	for _, t := range tags {
		q.WriteString(` AND EXISTS (SELECT 1 FROM run_tags x WHERE x.run_id = r.run_id AND x.key = ?`)
		args = append(args, t.key)
		if !t.any {
			q.WriteString(` AND x.value = ?`)
			args = append(args, t.value)
		}
		q.WriteString(`)`)
	}
	if f.Before != "" {
		q.WriteString(` AND ` + id + ` < ?`)
		args = append(args, f.Before)
	}
	q.WriteString(` ORDER BY ` + id + ` DESC`)
	if f.Limit > 0 {
		q.WriteString(` LIMIT ?`)
		args = append(args, f.Limit)
	}
	return q.String(), args
}

// TestRunTagsSameRuns: over random runs and random filters (tags with
// empty and other values, keys alone, a key given both ways or twice,
// statuses ended or not, limits, cursors), ListRuns returns the runs that
// have every tag and key asked for, newest first, the same as the query
// with an EXISTS for each tag; a walk of pages by the cursor returns what
// one listing does. Some runs have 50 tags, and some filters ask for as
// many.
func TestRunTagsSameRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openDB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"team", "env", "cost-centre", "a", "b", "c"}
	values := []string{"", "x", "y"}
	statuses := []jobs.Status{jobs.StatusQueued, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled}
	var all []*jobs.Run // oldest first
	for i := range 200 {
		tags := map[string]string{}
		if i%20 == 0 { // as many tags as a run may have
			for k := range jobs.MaxTags {
				tags[fmt.Sprintf("k%02d", k)] = values[rng.IntN(2)]
			}
		} else {
			for _, k := range keys {
				if rng.IntN(2) == 0 {
					tags[k] = values[rng.IntN(len(values))]
				}
			}
		}
		if len(tags) == 0 {
			tags = nil
		}
		status := statuses[rng.IntN(len(statuses))]
		r := newRun(i, tagged(tags), func(r *jobs.Run) { r.Status = status })
		mustCreate(t, db, r)
		all = append(all, r)
	}
	want := func(f RunFilter) []string {
		out := []string{}
		for _, r := range slices.Backward(all) {
			ok := (len(f.Statuses) == 0 || slices.Contains(f.Statuses, r.Status)) && (f.Before == "" || r.RunID < f.Before)
			for k, v := range f.Tags {
				if got, has := r.Tags[k]; !has || got != v {
					ok = false
				}
			}
			for _, k := range f.TagKeys {
				if _, has := r.Tags[k]; !has {
					ok = false
				}
			}
			if ok && (f.Limit <= 0 || len(out) < f.Limit) {
				out = append(out, r.RunID)
			}
		}
		return out
	}
	randomFilter := func() RunFilter {
		var f RunFilter
		pool := keys
		if rng.IntN(3) == 0 {
			pool = nil
			for k := range jobs.MaxTags {
				pool = append(pool, fmt.Sprintf("k%02d", k))
			}
		}
		// Most values asked for are those of a run of 50 tags, so that
		// filters of many tags find runs too.
		like := all[20*rng.IntN(len(all)/20)].Tags
		for range rng.IntN(len(pool) + 1) {
			k := pool[rng.IntN(len(pool))]
			if rng.IntN(2) == 0 {
				if f.Tags == nil {
					f.Tags = map[string]string{}
				}
				v, ok := like[k]
				if !ok || rng.IntN(20) == 0 {
					v = values[rng.IntN(len(values))]
				}
				f.Tags[k] = v
			} else {
				f.TagKeys = append(f.TagKeys, k) // sometimes twice, or also in Tags
			}
		}
		switch rng.IntN(4) {
		case 0:
			f.Statuses = []jobs.Status{jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning} // runs not ended
		case 1:
			f.Statuses = []jobs.Status{statuses[rng.IntN(len(statuses))], statuses[rng.IntN(len(statuses))]}
		}
		if rng.IntN(2) == 0 {
			f.Limit = 1 + rng.IntN(20)
		}
		if rng.IntN(3) == 0 {
			f.Before = all[rng.IntN(len(all))].RunID
		}
		return f
	}
	for i := range 150 {
		f := randomFilter()
		name := fmt.Sprintf("%d: tags %v keys %v statuses %v before %q limit %d", i, f.Tags, f.TagKeys, f.Statuses, f.Before, f.Limit)
		runs, err := db.ListRuns(ctx, f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := ids(runs)
		if w := want(f); !slices.Equal(got, w) {
			t.Errorf("%s:\n got %v\nwant %v", name, got, w)
			continue
		}
		// The query of an EXISTS per tag takes long to plan with many:
		// compared up to 8 tags.
		if len(f.Tags)+len(f.TagKeys) <= 8 {
			q, args := f.existsQuery()
			old, err := db.queryRuns(ctx, q, args...)
			if err != nil {
				t.Fatalf("%s: the EXISTS query: %v", name, err)
			}
			if !slices.Equal(got, ids(old)) {
				t.Errorf("%s:\n got %v\nwith an EXISTS per tag %v", name, got, ids(old))
			}
		}
		// Pages of 1 to 30 runs, each from the cursor of the last.
		if f.Limit == 0 {
			paged, page := []string{}, f
			page.Limit = 1 + rng.IntN(30)
			for {
				runs, err := db.ListRuns(ctx, page)
				if err != nil {
					t.Fatalf("%s: page before %q: %v", name, page.Before, err)
				}
				paged = append(paged, ids(runs)...)
				if len(runs) < page.Limit {
					break
				}
				page.Before = runs[len(runs)-1].RunID
			}
			if !slices.Equal(paged, got) {
				t.Errorf("%s: pages of %d:\n got %v\nwant %v", name, page.Limit, paged, got)
			}
		}
	}
}
