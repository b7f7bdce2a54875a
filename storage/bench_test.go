package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// BenchmarkApplyEvents applies batches of 500 worker events, as the server
// does, and reports events per second. runs=500 spreads each batch over 500
// runs (one load and one write per event); runs=50 puts ten events of each
// run in a batch.
func BenchmarkApplyEvents(b *testing.B) {
	const batchSize = 500
	for _, nRuns := range []int{500, 50} {
		b.Run(fmt.Sprintf("runs=%d", nRuns), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background()) // as the server's are: they can end
			defer cancel()
			db, _ := openDB(b)
			runs := make([]*jobs.Run, nRuns)
			for i := range runs {
				runs[i] = newRun(i)
				mustCreate(b, db, runs[i])
			}
			perRun := batchSize / nRuns
			seq := 0
			batch := make([]jobs.Event, 0, batchSize)
			b.ResetTimer()
			for b.Loop() {
				batch = batch[:0]
				for k := range perRun {
					for _, r := range runs {
						// Alternate non-terminal statuses so every event applies.
						s := jobs.StatusStarting
						if (seq+k)%2 == 1 {
							s = jobs.StatusRunning
						}
						batch = append(batch, ev(r, 1, seq+k+1, s))
					}
				}
				seq += perRun
				changed, err := db.ApplyEvents(ctx, batch)
				if err != nil {
					b.Fatal(err)
				}
				if len(changed) != nRuns {
					b.Fatalf("changed %d runs; want %d", len(changed), nRuns)
				}
			}
			b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkApplyEventsSmall applies batches of a few events, as a lightly
// loaded server does: the cost per call, not per event, dominates.
func BenchmarkApplyEventsSmall(b *testing.B) {
	const batchSize = 4
	ctx, cancel := context.WithCancel(context.Background()) // as the server's are: they can end
	defer cancel()
	db, _ := openDB(b)
	runs := make([]*jobs.Run, batchSize)
	for i := range runs {
		runs[i] = newRun(i)
		mustCreate(b, db, runs[i])
	}
	seq := 0
	batch := make([]jobs.Event, 0, batchSize)
	for b.Loop() {
		seq++
		s := jobs.StatusStarting
		if seq%2 == 1 {
			s = jobs.StatusRunning
		}
		batch = batch[:0]
		for _, r := range runs {
			batch = append(batch, ev(r, 1, seq, s))
		}
		if _, err := db.ApplyEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateRun creates runs from concurrent callers, whose inserts
// the committer groups into shared transactions.
func BenchmarkCreateRun(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background()) // as the server's are: they can end
	defer cancel()
	db, _ := openDB(b)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := db.CreateRun(ctx, newRun(int(next.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMarkPublished marks runs published from concurrent callers.
func BenchmarkMarkPublished(b *testing.B) {
	const nRuns = 1000
	ctx, cancel := context.WithCancel(context.Background()) // as the server's are: they can end
	defer cancel()
	db, _ := openDB(b)
	for i := range nRuns {
		mustCreate(b, db, newRun(i))
	}
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := int(next.Add(1))
			if err := db.MarkPublished(ctx, newRun(n%nRuns).RunID, n/nRuns+1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpdateRun reads, changes and writes back one run per call.
func BenchmarkUpdateRun(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background()) // as the server's are: they can end
	defer cancel()
	db, _ := openDB(b)
	r := newRun(1)
	mustCreate(b, db, r)
	i := 0
	for b.Loop() {
		i++
		if _, err := db.UpdateRun(ctx, r.RunID, func(r *jobs.Run) bool { r.Cluster = fmt.Sprint("c", i%2); return true }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCountActiveRuns counts the runs not ended, as a metrics scrape
// does, among a million runs recorded, of which active are not ended;
// CountRuns, which counts them all, is beside it for scale.
func BenchmarkCountActiveRuns(b *testing.B) {
	const recorded = 1_000_000
	ctx := context.Background()
	db, _ := openDB(b)
	// Rows written straight in: a million CreateRun calls would take
	// minutes, and only the status column and its index matter here.
	if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO runs (run_id, status, created_at, doc)
		SELECT printf('01BENCH%012d', i), CASE WHEN i % 3 = 0 THEN 'SUCCEEDED' WHEN i % 3 = 1 THEN 'FAILED' ELSE 'CANCELED' END, i, x'7b7d' FROM n`,
		recorded); err != nil {
		b.Fatal(err)
	}
	for _, active := range []int{1000, 100_000} {
		if _, err := db.w.ExecContext(ctx, `UPDATE runs SET status = CASE WHEN rowid % 3 = 0 THEN 'QUEUED' WHEN rowid % 3 = 1 THEN 'STARTING' ELSE 'RUNNING' END
			WHERE rowid <= ?`, active); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("active=%d", active), func(b *testing.B) {
			for b.Loop() {
				n, err := db.CountActiveRuns(ctx)
				if err != nil || n.Queued+n.Starting+n.Running != active {
					b.Fatalf("CountActiveRuns = %+v, %v; want %d in all", n, err, active)
				}
			}
		})
	}
	b.Run("CountRuns", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.CountRuns(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLastPipelineEnds reads each pipeline's latest end by status, as
// a metrics scrape does, with a million pipeline runs of 100 pipelines.
func BenchmarkLastPipelineEnds(b *testing.B) {
	const recorded, pipelines = 1_000_000, 100
	ctx := context.Background()
	db, _ := openDB(b)
	if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO pipelines (name, version, created_at, doc) SELECT printf('p%03d', i), 1, 0, x'7b7d' FROM n`, pipelines); err != nil {
		b.Fatal(err)
	}
	if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO pipeline_runs (run_id, pipeline, version, status, created_at, finished_at, doc)
		SELECT printf('pr-%012d', i), printf('p%03d', i % ?), 1,
			CASE WHEN i % 7 = 0 THEN 'FAILED' WHEN i % 11 = 0 THEN 'CANCELED' ELSE 'SUCCEEDED' END, i, i + 1, x'7b7d' FROM n`,
		recorded, pipelines); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ends, err := db.LastPipelineEnds(ctx)
		if err != nil || len(ends) != 3*pipelines {
			b.Fatalf("LastPipelineEnds = %d ends, %v; want %d", len(ends), err, 3*pipelines)
		}
	}
}

// BenchmarkPruneHistory deletes runs past a retention, as the server's
// sweep does, among a million runs recorded that are not due (ended
// since: their ids are above the bound, and the sweep must not read
// them). Each iteration prunes 10,000 runs that ended long ago, in
// transactions of DefaultPruneBatch; it reports runs deleted per second
// and the longest batch, which is how long the sweep may hold the
// store's one writer at a time.
func BenchmarkPruneHistory(b *testing.B) {
	const recorded, due = 1_000_000, 10_000
	ctx := context.Background()
	db, _ := openDB(b)
	if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO runs (run_id, status, created_at, doc)
		SELECT printf('01KEPT%012d', i), 'SUCCEEDED', i, x'7b7d' FROM n`, recorded); err != nil {
		b.Fatal(err)
	}
	// The due runs have a run's whole document, as the sweep decodes it.
	r := newRun(0, func(r *jobs.Run) {
		end := t0.Add(time.Minute)
		r.Status, r.FinishedAt, r.Attempts[0].Status = jobs.StatusSucceeded, &end, jobs.StatusSucceeded
	})
	doc, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	cutoff := t0.Add(24 * time.Hour)
	var longest time.Duration
	deleted := 0
	for b.Loop() {
		b.StopTimer()
		if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
			INSERT INTO runs (run_id, status, created_at, doc) SELECT printf('01DUE%012d', i), 'SUCCEEDED', i, ? FROM n`, due, doc); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		last := time.Now()
		n, err := db.PruneHistory(ctx, Prune{EndedBefore: cutoff, RunsBelow: "01E", PipelineRunsBelow: "pr-01E",
			Committed: func(PruneCount) {
				longest = max(longest, time.Since(last))
				last = time.Now()
			}})
		if err != nil || n.Runs != due {
			b.Fatalf("PruneHistory = %+v, %v; want %d runs", n, err, due)
		}
		deleted += n.Runs
	}
	b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "runs/s")
	b.ReportMetric(float64(longest.Microseconds())/1000, "ms/longest-batch")
}

// BenchmarkCreateRunTagged is BenchmarkCreateRun with three tags on every
// run: a row of run_tags each, in the run's transaction.
func BenchmarkCreateRunTagged(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, _ := openDB(b)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := newRun(int(next.Add(1)))
			r.Tags = map[string]string{"team": "data", "project": "sales", "cost-centre": "cc-42"}
			if _, _, err := db.CreateRun(ctx, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkOldestQueued finds the oldest queued run of each cluster and
// priority, as a metrics scrape does, with a million runs recorded of
// which 100,000 wait, in 10 clusters and 3 priorities: its cost should
// follow the 30 groups, not the runs waiting.
func BenchmarkOldestQueued(b *testing.B) {
	const recorded, queued, clusters = 1_000_000, 100_000, 10
	ctx := context.Background()
	db, _ := openDB(b)
	if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO runs (run_id, status, cluster, created_at, priority, queued_at, doc)
		SELECT printf('01RUN%012d', i), CASE WHEN i < ? THEN 'QUEUED' ELSE 'SUCCEEDED' END,
			printf('c%02d', i % ?), i, CASE i % 3 WHEN 0 THEN 'high' WHEN 1 THEN 'normal' ELSE 'low' END, i, x'7b7d' FROM n`,
		recorded, queued, clusters); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ws, err := db.OldestQueued(ctx)
		if err != nil || len(ws) != 3*clusters {
			b.Fatalf("OldestQueued = %d groups, %v; want %d", len(ws), err, 3*clusters)
		}
	}
}

// BenchmarkPromoteNoneWaiting is what the end of every pipeline run now
// costs when none of its pipeline's runs waits (maxActiveRuns unused): one
// look in the status index on a reader, among 10,000 ended runs of the
// pipeline and 100 RUNNING ones, no write transaction.
func BenchmarkPromoteNoneWaiting(b *testing.B) {
	ctx := context.Background()
	db, _ := openDB(b)
	p := &jobs.Pipeline{Name: "p", Stages: []jobs.Stage{{Name: "a", TaskDefinition: json.RawMessage(`"t"`)}}}
	if _, _, err := db.PutPipeline(ctx, p, t0); err != nil {
		b.Fatal(err)
	}
	for i := range 10100 {
		s := jobs.StatusSucceeded
		if i >= 10000 {
			s = jobs.StatusRunning
		}
		pr := &jobs.PipelineRun{PipelineRunID: fmt.Sprintf("pr-%06d", i), Pipeline: "p", Version: 1, Status: s,
			CreatedAt: t0.Add(time.Duration(i) * time.Second), Spec: *p, Stages: []jobs.StageState{{Name: "a", Status: s}}}
		if _, _, err := db.CreatePipelineRun(ctx, pr); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := db.PromotePipelineRuns(ctx, "p", func(*PipelineRunQueue) []*jobs.PipelineRun {
			b.Fatal("decide called with no run waiting")
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutboxRunUnmatched is the webhook cost of an end no hook hears
// of (a SUCCEEDED run, a hook on failures): the common end of a store
// with hooks. It writes nothing, so it needs no transaction.
func BenchmarkOutboxRunUnmatched(b *testing.B) {
	set := &hookSet{hooks: []storedHook{{id: 1, Webhook: jobs.Webhook{Name: "ops", On: []jobs.Status{jobs.StatusFailed}}},
		{id: 2, Webhook: jobs.Webhook{Name: "data", On: []jobs.Status{jobs.StatusFailed, jobs.StatusSucceeded},
			Families: []string{"load"}}}}}
	r := newRun(1, func(r *jobs.Run) {
		exit, at := 0, t0.Add(time.Minute)
		r.Status, r.ExitCode, r.StartedAt, r.FinishedAt = jobs.StatusSucceeded, &exit, &t0, &at
		r.StoppedReason = "Essential container in task exited"
		r.Tags = map[string]string{"team": "data"}
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if wrote, err := outboxRun(ctx, nil, set, r, jobs.StatusRunning); err != nil || wrote {
			b.Fatal(wrote, err)
		}
	}
}

// BenchmarkListRunsTags lists a page of 100 runs filtered by 0, 1, 10 and
// 50 tags (half key and value, half key alone, as ps --tag and --tag-key),
// among 10,000 runs with three tags each, of which every tenth has 47 more
// (k0..k46) and is the one the filters select. all is ps --all (every
// status: read from the first tag's index); active is ps's default (runs
// not ended, a tenth of them: read from the status index).
func BenchmarkListRunsTags(b *testing.B) {
	const recorded = 10_000
	ctx := context.Background()
	db, _ := openDB(b)
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO runs (run_id, status, created_at, doc)
		SELECT printf('01RUN%06d', i), CASE WHEN i % 10 = 3 OR i % 100 = 0 THEN 'QUEUED' ELSE 'SUCCEEDED' END, i, x'7b7d' FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO run_tags (run_id, key, value)
		SELECT printf('01RUN%06d', i), 'team', 't' || (i % 5) FROM n UNION ALL
		SELECT printf('01RUN%06d', i), 'env', 'e' || (i % 3) FROM n UNION ALL
		SELECT printf('01RUN%06d', i), 'shard', 's' || (i % 100) FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?),
			k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j + 1 < 47)
		INSERT INTO run_tags (run_id, key, value)
		SELECT printf('01RUN%06d', i), 'k' || j, 'v' FROM n, k WHERE i % 10 = 0`,
	} {
		if _, err := db.w.ExecContext(ctx, q, recorded); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range []int{0, 1, 10, 50} {
		f := RunFilter{Limit: 100}
		for i := range n {
			switch {
			case i == n-1 && n == 50:
				f.Tags["team"] = "t0" // the 48th to 50th are the runs' other tags
			case i == n-2 && n == 50:
				f.TagKeys = append(f.TagKeys, "env")
			case i == n-3 && n == 50:
				f.TagKeys = append(f.TagKeys, "shard")
			case i%2 == 0:
				if f.Tags == nil {
					f.Tags = map[string]string{}
				}
				f.Tags[fmt.Sprintf("k%d", i)] = "v"
			default:
				f.TagKeys = append(f.TagKeys, fmt.Sprintf("k%d", i))
			}
		}
		for _, sel := range []struct {
			name     string
			statuses []jobs.Status
			want     int
		}{
			{"all", nil, 100},
			{"active", []jobs.Status{jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning}, 100},
		} {
			f := f
			f.Statuses = sel.statuses
			want := sel.want
			if n > 0 && sel.statuses != nil {
				want = recorded / 100 // the tenth of the tagged runs not ended
			}
			b.Run(fmt.Sprintf("filters=%d/%s", n, sel.name), func(b *testing.B) {
				for b.Loop() {
					runs, err := db.ListRuns(ctx, f)
					if err != nil || len(runs) != want {
						b.Fatalf("ListRuns = %d runs, %v; want %d", len(runs), err, want)
					}
				}
			})
		}
	}
}
