package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// storedDrain reads the drain setting recorded for worker id, as the
// worker reads it at its start.
func storedDrain(t *testing.T, e *apiEnv, id string) bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drain := false
	if err := e.queue().WatchDrain(ctx, id, func(d bool) { drain = d }); err != nil {
		t.Fatal(err)
	}
	return drain
}

// TestDrainAndActivateSayWhatTheWorkerDoes: workers.drain and
// workers.activate record the setting and reply what the worker does.
// A worker that stops (SIGTERM, in its grace period) beats DRAINING and
// takes no run again: activate replied ACTIVE. A worker that is not live
// (a host down for maintenance) could not be drained before it came back:
// the setting is recorded, for its next start, and the reply says so.
func TestDrainAndActivateSayWhatTheWorkerDoes(t *testing.T) {
	e := startAPI(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, w := range []jobs.WorkerInfo{
		{ID: "live", Cluster: "default", State: jobs.WorkerActive},
		{ID: "stopping", Cluster: "default", State: jobs.WorkerDraining, Stopping: true},
	} {
		w.StartedAt, w.LastHeartbeat = now, now
		if err := e.queue().Beat(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		verb, id string
		want     jobs.WorkerState // the reply's state
		stopping bool
		notLive  bool
		stored   bool // the drain setting recorded
	}{
		{"drain", "live", jobs.WorkerDraining, false, false, true},
		{"activate", "live", jobs.WorkerActive, false, false, false},
		{"drain", "stopping", jobs.WorkerDraining, true, false, true},
		{"activate", "stopping", jobs.WorkerDraining, true, false, false},
		{"drain", "down-for-maintenance", jobs.WorkerDraining, false, true, true},
		{"activate", "down-for-maintenance", jobs.WorkerActive, false, true, false},
	} {
		t.Run(c.verb+" "+c.id, func(t *testing.T) {
			var got jobs.WorkerInfo
			e.ok("gantry.api.workers."+c.verb, fmt.Sprintf(`{"id":%q}`, c.id), &got)
			if got.ID != c.id || got.State != c.want || got.Stopping != c.stopping || got.NotLive != c.notLive {
				t.Errorf("reply %s %s stopping=%v notLive=%v; want %s %s stopping=%v notLive=%v",
					got.ID, got.State, got.Stopping, got.NotLive, c.id, c.want, c.stopping, c.notLive)
			}
			if d := storedDrain(t, e, c.id); d != c.stored {
				t.Errorf("drain recorded: %v, want %v", d, c.stored)
			}
		})
	}
	// workers.get still says a worker that is not live is not.
	if got := apiError(t, e.req(e.op, "gantry.api.workers.get", `{"id":"down-for-maintenance"}`)); got.Code != jobs.CodeNotFound {
		t.Errorf("workers.get of a worker that is not live: %s %s", got.Code, got.Message)
	}
}

// FuzzWorkerID: drain and activate now record a key for any id they
// accept, live or not; an id accepted is one a KV key may be (no empty
// token: no leading, trailing or doubled dot), and nothing panics.
func FuzzWorkerID(f *testing.F) {
	for _, s := range []string{`{"id":"w1"}`, `{"id":"host-a.example/1=x_y"}`, `{"id":""}`, `{"id":"a*"}`, `{"id":"a..b"}`,
		`{"id":".a"}`, `{}`, ``, `[]`, `{"id":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := workerID(data)
		if err != nil {
			return
		}
		if !workerIDRe.MatchString(id) || strings.HasPrefix(id, ".") || strings.HasSuffix(id, ".") || strings.Contains(id, "..") {
			t.Errorf("workerID(%q) accepted %q, which is no KV key", data, id)
		}
	})
}
