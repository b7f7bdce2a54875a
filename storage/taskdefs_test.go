package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

func TestTaskDefRevisions(t *testing.T) {
	db, path := openDB(t)
	ctx := context.Background()
	td := jobs.TaskDefinition{Family: "etl", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "busybox"}}}
	for want := 1; want <= 3; want++ {
		reg, err := db.RegisterTaskDef(ctx, td, t0.Add(time.Duration(want)*time.Second))
		if err != nil || reg.Revision != want || reg.Status != jobs.TaskDefActive {
			t.Fatalf("register %d: %+v, %v", want, reg, err)
		}
	}
	if _, err := db.RegisterTaskDef(ctx, jobs.TaskDefinition{Family: "other", ContainerDefinitions: td.ContainerDefinitions}, t0); err != nil {
		t.Fatal(err)
	}
	latest, err := db.GetTaskDef(ctx, "etl", 0)
	if err != nil || latest.Revision != 3 || !latest.RegisteredAt.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("latest: %+v, %v", latest, err)
	}
	dereg, err := db.DeregisterTaskDef(ctx, "etl", 3, t0.Add(time.Minute))
	if err != nil || dereg.Status != jobs.TaskDefInactive || dereg.DeregisteredAt == nil {
		t.Fatalf("deregister: %+v, %v", dereg, err)
	}
	if again, err := db.DeregisterTaskDef(ctx, "etl", 3, t0.Add(time.Hour)); err != nil || !again.DeregisteredAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("deregistering twice changed it: %+v, %v", again, err)
	}
	if latest, _ := db.GetTaskDef(ctx, "etl", 0); latest.Revision != 2 {
		t.Errorf("latest ACTIVE after deregistering 3: %d", latest.Revision)
	}
	// Revisions are never reused.
	if reg, _ := db.RegisterTaskDef(ctx, td, t0); reg.Revision != 4 {
		t.Errorf("next revision %d, want 4", reg.Revision)
	}
	if _, err := db.GetTaskDef(ctx, "etl", 9); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("missing revision: %v", err)
	}
	if _, err := db.DeregisterTaskDef(ctx, "nope", 1, t0); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("deregister missing: %v", err)
	}
	for _, tt := range []struct {
		f    TaskDefFilter
		want int
	}{{TaskDefFilter{}, 4}, {TaskDefFilter{Status: "ALL"}, 5}, {TaskDefFilter{Family: "etl", Status: jobs.TaskDefInactive}, 1},
		{TaskDefFilter{Family: "other"}, 1}} {
		list, err := db.ListTaskDefs(ctx, tt.f)
		if err != nil || len(list) != tt.want {
			t.Errorf("list %+v: %d, %v; want %d", tt.f, len(list), err, tt.want)
		}
	}
	// The registry survives a reopen.
	db.Close()
	db2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got, err := db2.GetTaskDef(ctx, "etl", 4); err != nil || got.ContainerDefinitions[0].Image != "busybox" {
		t.Errorf("after reopen: %+v, %v", got, err)
	}
}

// TestLatestTaskDefWhateverItsStatus: the revision the next register
// follows, INACTIVE or not.
func TestLatestTaskDefWhateverItsStatus(t *testing.T) {
	db, _ := openDB(t)
	ctx := context.Background()
	if _, err := db.LatestTaskDef(ctx, "etl"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("a family never registered: %v", err)
	}
	td := jobs.TaskDefinition{Family: "etl", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "busybox"}}}
	for range 2 {
		if _, err := db.RegisterTaskDef(ctx, td, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.DeregisterTaskDef(ctx, "etl", 2, t0); err != nil {
		t.Fatal(err)
	}
	latest, err := db.LatestTaskDef(ctx, "etl")
	if err != nil || latest.Revision != 2 || latest.Status != jobs.TaskDefInactive {
		t.Fatalf("latest: %+v, %v", latest, err)
	}
}
