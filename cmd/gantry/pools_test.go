package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

// TestPoolCommandsCheckTheirFlags: gantry pool set and delete, and gantry
// run --pool, refuse bad names and slots before connecting, naming the
// flag or argument.
func TestPoolCommandsCheckTheirFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pool", "set", "warehouse"}, "--slots: required (0 pauses the pool)"},
		{[]string{"pool", "set", "warehouse", "--slots", "-1"}, "--slots: -1: want 0 (paused: nothing new starts) to 1000000"},
		{[]string{"pool", "set", "ware house", "--slots", "2"}, `NAME: "ware house": a pool name is letters, digits, '-' and '_'`},
		{[]string{"pool", "delete", "ware/house"}, `NAME: "ware/house": a pool name`},
		{[]string{"run", "--pool", "ware house", "--image", "busybox", "--", "true"}, `--pool: "ware house": a pool name`},
		{[]string{"pool", "set"}, "accepts 1 arg(s), received 0; usage: gantry pool set NAME --slots N"},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		// No NATS listens here: flags that passed would fail to connect.
		root.SetArgs(append(c.args, "--nats", "nats://127.0.0.1:1"))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestRunEmptyPoolIsNoPool: gantry run with an empty --pool (--pool "$POOL"
// with POOL unset) submits no pool, as leaving --pool out does and as the
// submit JSON's "pool": "" is: the run takes no slot of any pool. A blank
// name is refused naming the flag.
func TestRunEmptyPoolIsNoPool(t *testing.T) {
	for _, c := range []struct {
		pool, want, err string
	}{
		{"", "", ""},
		{"warehouse", "warehouse", ""},
		{" ", "", `--pool: " ": a pool name`},
	} {
		f := runFlags{image: "busybox", pool: c.pool}
		req, err := f.request(&cobra.Command{}, nil)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("--pool %q: %v; want %q", c.pool, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("--pool %q: %v", c.pool, err)
		}
		data, _ := json.Marshal(req)
		var sent jobs.SubmitRequest
		if err := json.Unmarshal(data, &sent); err != nil || sent.Pool != c.want || sent.Validate() != nil {
			t.Errorf("--pool %q: sent %s; want pool %q", c.pool, data, c.want)
		}
		if c.pool == "" && strings.Contains(string(data), `"pool"`) {
			t.Errorf("--pool '': sent %s; want no pool field, as without --pool", data)
		}
	}
	var empty jobs.SubmitRequest
	if err := json.Unmarshal([]byte(`{"taskDefinition":"hello","pool":""}`), &empty); err != nil || empty.Pool != "" || empty.Validate() != nil {
		t.Errorf(`submit JSON "pool": "": %+v %v; want valid, no pool`, empty, empty.Validate())
	}
}

// TestPoolText: describe's Pool line says where a run stands in its pool,
// a stopped run that keeps its slot saying whose containers it waits for.
func TestPoolText(t *testing.T) {
	old := localZone
	localZone = time.UTC
	t.Cleanup(func() { localZone = old })
	at := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	queued := jobs.Run{Status: jobs.StatusQueued, Pool: "warehouse"}
	holding := queued
	holding.PoolSlotAt = &at
	kept := holding
	kept.Status = jobs.StatusCanceled
	kept.PoolSlotKept = &jobs.SlotKeep{Attempt: 1, Worker: "w1", Since: at}
	freed := kept
	freed.PoolSlotKept = nil
	for _, c := range []struct {
		r    jobs.Run
		want string
	}{
		{queued, "warehouse (waiting for a slot)"},
		{holding, "warehouse (holds a slot since 2026-01-01T02:00:00Z)"},
		{kept, "warehouse (ended, still holds its slot: worker w1 took attempt 1 and has not reported its containers gone)"},
		{freed, "warehouse"},
	} {
		if got := poolText(&c.r); got != c.want {
			t.Errorf("%s run: %q, want %q", c.r.Status, got, c.want)
		}
	}
}
