package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newDataStager returns a queue, a stager over its data bucket (retention
// an hour) and a directory holding a stage's output of the given files.
func newDataStager(t *testing.T, files ...string) (*Queue, *Stager, string) {
	t.Helper()
	q := newQueue(t)
	s := NewStager(q.JetStream(), time.Hour, 1)
	if err := s.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range files {
		os.WriteFile(filepath.Join(dir, f), []byte(f+"\n"), 0o644)
	}
	return q, s, dir
}

func TestDeletePipelineRunsLeavesNothingOfThem(t *testing.T) {
	q, s, dir := newDataStager(t, "a.csv", "b.csv")
	ctx := context.Background()
	for _, pr := range []string{"pr-1", "pr-2", "pr-10"} {
		if err := s.Put(ctx, pr, "extract", "run-"+pr, 1, dir); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeletePipelineRuns(ctx, []string{"pr-1", "pr-2"})
	if err != nil || n != 6 {
		t.Fatalf("deleted %d objects, %v; want 6 (2 files and a manifest per run)", n, err)
	}
	// pr-10 shares pr-1's first characters and keeps its files.
	obs, _ := s.bucket(ctx)
	infos, _ := obs.List(ctx)
	for _, i := range infos {
		if !strings.HasPrefix(i.Name, "pr-10/") {
			t.Errorf("left behind: %s", i.Name)
		}
	}
	if len(infos) != 3 {
		t.Fatalf("%d objects left, want pr-10's 3", len(infos))
	}
	// No delete markers either: the stream holds pr-10's messages only
	// (a meta and a chunk per object).
	st, _ := q.JetStream().Stream(ctx, "OBJ_"+DataBucket)
	info, _ := st.Info(ctx)
	if info.State.Msgs != 6 {
		t.Fatalf("stream holds %d messages, want 6", info.State.Msgs)
	}
	if n, err := s.DeletePipelineRuns(ctx, []string{"pr-1"}); err != nil || n != 0 {
		t.Fatalf("again: %d %v", n, err)
	}
	// The server's retention sets the bucket's TTL; a worker's stager
	// opening the bucket later does not change it.
	if _, err := NewStager(q.JetStream(), 0, 1).bucket(ctx); err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(ctx); info.Config.MaxAge != time.Hour+DataBucketSlack {
		t.Fatalf("bucket TTL %s", info.Config.MaxAge)
	}
}

// TestDeletePipelineRunsBesideAnotherDeletion: two deletions at once (two
// sweeps, or a sweep and the bucket's TTL) both end, and leave nothing.
// Listing the bucket with ObjectStore.List hung when an object went while
// it listed, and stopped the server's data retention for good.
func TestDeletePipelineRunsBesideAnotherDeletion(t *testing.T) {
	q, s, dir := newDataStager(t, "a.csv")
	ctx := context.Background()
	var ids []string
	for i := range 200 {
		id := fmt.Sprintf("pr-%d", i)
		ids = append(ids, id)
		if err := s.Put(ctx, id, "extract", "run-"+id, 1, dir); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 2)
	for _, step := range []int{5, 7} {
		go func() {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for i := 0; i < len(ids); i += step {
				if _, err := s.DeletePipelineRuns(dctx, ids[i:min(i+step, len(ids))]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, _ := q.JetStream().Stream(ctx, "OBJ_"+DataBucket)
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("the bucket holds %d messages, %v; want none", info.State.Msgs, err)
	}
}
