package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// setPool sets pool name's slots as the operator.
func (e *apiEnv) setPool(name string, slots int) PoolSetReply {
	e.t.Helper()
	var p PoolSetReply
	e.ok("gantry.api.pools.set", fmt.Sprintf(`{"name":%q,"slots":%d}`, name, slots), &p)
	return p
}

// pool returns pool name as pools.list shows it.
func (e *apiEnv) pool(name string) jobs.Pool {
	e.t.Helper()
	var list PoolListReply
	e.ok("gantry.api.pools.list", `{}`, &list)
	for _, p := range list.Pools {
		if p.Name == name {
			return p
		}
	}
	e.t.Fatalf("pool %s not listed: %+v", name, list.Pools)
	return jobs.Pool{}
}

// inPool submits a run of hello into pool with priority (empty: normal).
func (e *apiEnv) inPool(pool string, priority jobs.Priority) *jobs.Run {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"taskDefinition": "hello", "pool": pool, "priority": priority})
	return e.submitRun(string(body))
}

func waitingForSlot(r *jobs.Run) bool { return r.WaitingForSlot() }

// checkWaits checks that run id waits for a slot, saying reason, with no
// job published.
func (e *apiEnv) checkWaits(id, reason string) {
	e.t.Helper()
	r := e.waitFor(id, "told why it waits", func(r *jobs.Run) bool { return r.StatusReason == reason })
	if !r.WaitingForSlot() || r.PoolSlotAt != nil {
		e.t.Errorf("run %s: %s, slot %v; want waiting for a slot", id, r.Status, r.PoolSlotAt)
	}
	if got := e.jobsOf(id); len(got) != 0 {
		e.t.Errorf("a job of run %s, which waits for a slot, was published: attempts %v", id, got)
	}
}

// TestPoolWaitsAndReleasesInOrder: a run of a full pool waits QUEUED, its
// job unpublished, saying why; each end releases one waiting run, the
// highest priority first, then the oldest; raising the slots releases at
// once; pools.list counts what is in use and waits.
func TestPoolWaitsAndReleasesInOrder(t *testing.T) {
	e := startDepsAPI(t)
	if p := e.setPool("warehouse", 1); !p.Created || p.Slots != 1 {
		t.Fatalf("pools.set: %+v", p)
	}
	a := e.inPool("warehouse", "")
	// No worker runs here: a released run says so, as any other.
	const noWorker = "no live worker in cluster default (no worker is live at all: gantry worker --cluster default starts one)"
	if a.PoolSlotAt == nil || a.StatusReason != noWorker || a.Pool != "warehouse" {
		t.Fatalf("first run: slot %v reason %q pool %q; want a slot at once", a.PoolSlotAt, a.StatusReason, a.Pool)
	}
	e.waitReleased(a.RunID)
	b := e.inPool("warehouse", "")
	c := e.inPool("warehouse", jobs.PriorityHigh)
	d := e.inPool("warehouse", jobs.PriorityLow)
	const full = "waiting for a slot in pool warehouse (1 of 1 in use)"
	if b.StatusReason != full || !b.WaitingForSlot() {
		t.Errorf("submission reply of a waiting run: %s %q", b.Status, b.StatusReason)
	}
	for _, r := range []*jobs.Run{b, c, d} {
		e.checkWaits(r.RunID, full)
	}
	if p := e.pool("warehouse"); p.Slots != 1 || p.InUse != 1 || p.Waiting != 3 {
		t.Errorf("pools.list: %+v", p)
	}

	e.finish(a.RunID)
	e.waitReleased(c.RunID) // high first
	for _, r := range []*jobs.Run{b, d} {
		e.checkWaits(r.RunID, full)
	}
	e.end(c.RunID, jobs.StatusFailed, 3) // however it ends
	e.waitReleased(b.RunID)              // then the oldest
	e.checkWaits(d.RunID, full)

	e.setPool("warehouse", 3) // at once
	got := e.waitReleased(d.RunID)
	if got.StatusReason != noWorker {
		t.Errorf("released: reason %q, want %q", got.StatusReason, noWorker)
	}
	if p := e.pool("warehouse"); p.InUse != 2 || p.Waiting != 0 {
		t.Errorf("pools.list after raising the slots: %+v", p)
	}
}

// TestPoolPausedUnknownAndInvalid: a pool of 0 slots starts nothing
// until raised; a submission into a pool that does not exist is refused
// naming it; bad requests name each field.
func TestPoolPausedUnknownAndInvalid(t *testing.T) {
	e := startDepsAPI(t)
	er := apiError(t, e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"hello","pool":"nope"}`))
	if er.Code != jobs.CodeNotFound || !strings.Contains(er.Message, `pool: no pool "nope"`) {
		t.Errorf("unknown pool: %s %q", er.Code, er.Message)
	}
	er = apiError(t, e.req(e.op, "gantry.api.pools.set", `{"name":"bad name","slots":-1}`))
	if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, `name: "bad name"`) || !strings.Contains(er.Message, "slots: -1: want 0") {
		t.Errorf("bad pools.set: %s %q", er.Code, er.Message)
	}
	er = apiError(t, e.req(e.op, "gantry.api.pools.set", `{"name":"p"}`))
	if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, "slots: required") {
		t.Errorf("pools.set without slots: %s %q", er.Code, er.Message)
	}

	e.setPool("paused", 0)
	// An empty pool is no pool, as the field left out (gantry run --pool
	// ''): the run takes no slot of any; blank is refused.
	var free jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","pool":""}`, &free)
	if free.Pool != "" || free.PoolState() != jobs.PoolNone || strings.Contains(free.StatusReason, "pool") {
		t.Errorf(`"pool": "": pool %q (state %d), %q; want no pool`, free.Pool, free.PoolState(), free.StatusReason)
	}
	er = apiError(t, e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"hello","pool":" "}`))
	if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, `pool: " ": a pool name`) {
		t.Errorf(`"pool": " ": %s %q`, er.Code, er.Message)
	}
	r := e.inPool("paused", "")
	e.checkWaits(r.RunID, "waiting for a slot in pool paused (paused: 0 slots; 0 runs still hold one)")
	if p := e.setPool("paused", 1); p.Created || p.InUse != 1 || p.Waiting != 0 {
		t.Errorf("raised: %+v", p)
	}
	e.waitReleased(r.RunID)
}

// TestPoolDelete: a pool that runs hold or wait for is not deleted, the
// error naming them; forced, the waiting ones fail saying why, the one
// holding a slot runs on; submissions into it are refused after.
func TestPoolDelete(t *testing.T) {
	e := startDepsAPI(t)
	e.setPool("p", 1)
	a, b := e.inPool("p", ""), e.inPool("p", "")
	dep := e.submitRun(`{"taskDefinition":"hello"}`)
	body, _ := json.Marshal(map[string]any{"taskDefinition": "hello", "pool": "p", "dependsOn": []map[string]string{{"runId": dep.RunID}}})
	c := e.submitRun(string(body)) // waits for dep first
	if c.StatusReason != fmt.Sprintf("waiting for run %s (QUEUED) to succeed", dep.RunID) {
		t.Errorf("a run with dependsOn and a pool: reason %q", c.StatusReason)
	}
	er := apiError(t, e.req(e.op, "gantry.api.pools.delete", `{"name":"p"}`))
	want := fmt.Sprintf("pool p has 1 run holding a slot (%s) and 2 runs waiting for one (%s, %s)", a.RunID, b.RunID, c.RunID)
	if er.Code != jobs.CodeFailedPrecond || !strings.Contains(er.Message, want) {
		t.Errorf("delete: %s %q, want failed_precondition %q", er.Code, er.Message, want)
	}
	var rep PoolDeleteReply
	e.ok("gantry.api.pools.delete", `{"name":"p","force":true}`, &rep)
	if !rep.Deleted || !slices.Equal(rep.Running, []string{a.RunID}) || !slices.Equal(rep.Failed, []string{b.RunID, c.RunID}) {
		t.Errorf("forced delete: %+v", rep)
	}
	for _, id := range []string{b.RunID, c.RunID} {
		checkDependentFailed(t, e.waitFor(id, "ended", ended), "pool p was deleted while this run waited for a slot in it")
	}
	if r := e.waitFor(a.RunID, "queued", released); r.Status != jobs.StatusQueued {
		t.Errorf("the run holding a slot: %s", r.Status)
	}
	er = apiError(t, e.req(e.op, "gantry.api.pools.delete", `{"name":"p"}`))
	if er.Code != jobs.CodeNotFound {
		t.Errorf("second delete: %s %q", er.Code, er.Message)
	}
	er = apiError(t, e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"hello","pool":"p"}`))
	if er.Code != jobs.CodeNotFound {
		t.Errorf("submit into the deleted pool: %s %q", er.Code, er.Message)
	}
}

// TestPoolDependsOnThenSlot: a run with dependsOn and a pool waits for
// its dependency, then for a slot.
func TestPoolDependsOnThenSlot(t *testing.T) {
	e := startDepsAPI(t)
	e.setPool("p", 1)
	holder := e.inPool("p", "")
	dep := e.submitRun(`{"taskDefinition":"hello"}`)
	body, _ := json.Marshal(map[string]any{"taskDefinition": "hello", "pool": "p", "dependsOn": []map[string]string{{"runId": dep.RunID}}})
	r := e.submitRun(string(body))
	if p := e.pool("p"); p.Waiting != 0 {
		t.Errorf("a run still waiting for its dependency counts as waiting for a slot: %+v", p)
	}
	e.finish(dep.RunID)
	e.checkWaits(r.RunID, "waiting for a slot in pool p (1 of 1 in use)")
	e.finish(holder.RunID)
	e.waitReleased(r.RunID)
}

// TestPoolReleasedAtStart: a run holding the only slot ends while the
// server is down (its end stored, the release not made): at start the
// next waiting run takes the slot, and only one does.
func TestPoolReleasedAtStart(t *testing.T) {
	e := startDepsAPI(t)
	e.setPool("p", 1)
	a, b, c := e.inPool("p", ""), e.inPool("p", ""), e.inPool("p", "")
	e.waitReleased(a.RunID)
	e.stop()

	db := e.openStore()
	succeedStored(t, db, a.RunID)
	db.Close()

	e.startServer()
	e.waitReleased(b.RunID)
	e.checkWaits(c.RunID, "waiting for a slot in pool p (1 of 1 in use)")
	if p := e.pool("p"); p.InUse != 1 || p.Waiting != 1 {
		t.Errorf("after the start: %+v", p)
	}
}

// TestPoolOfAPipelineStage: each child of an array stage naming a pool
// takes a slot of its own; a stage naming a pool that does not exist
// fails, its reason naming the pool.
func TestPoolOfAPipelineStage(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.setPool("warehouse", 1)
	e.apply("name: load\nstages: [{name: load, taskDefinition: hello, arraySize: 3, pool: warehouse}]\n")
	var pr jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"load"}`, &pr)
	got := e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool { return len(pr.StageState("load").Runs) == 3 })
	var holding, waiting int
	for _, sr := range got.StageState("load").Runs {
		r := e.waitFor(sr.RunID, "in its pool", func(r *jobs.Run) bool { return r.PoolSlotAt != nil || r.StatusReason != "" })
		switch {
		case r.Pool != "warehouse":
			t.Errorf("stage run %s: pool %q", r.RunID, r.Pool)
		case r.PoolSlotAt != nil:
			holding++
		case r.StatusReason == "waiting for a slot in pool warehouse (1 of 1 in use)":
			waiting++
		}
	}
	if holding != 1 || waiting != 2 {
		t.Errorf("array children: %d holding a slot, %d waiting; want 1 and 2", holding, waiting)
	}

	// A stage naming a pool that does not exist is refused at apply...
	body, _ := json.Marshal(map[string][]byte{"data": []byte("name: orphan\nstages: [{name: load, taskDefinition: hello, pool: nope}]\n")})
	if er := apiError(t, e.req(e.op, "gantry.api.pipelines.apply", string(body))); er.Code != jobs.CodeInvalidArgument ||
		!strings.Contains(er.Message, `stages[0](load).pool: no pool "nope" (gantry pool set nope --slots N creates it`) {
		t.Errorf("apply with an unknown pool: %s %q", er.Code, er.Message)
	}
	// ... and one deleted since fails the stage, naming it.
	e.setPool("nope", 1)
	e.apply("name: orphan\nstages: [{name: load, taskDefinition: hello, pool: nope}]\n")
	e.ok("gantry.api.pools.delete", `{"name":"nope"}`, nil)
	e.ok("gantry.api.pipelines.run", `{"name":"orphan"}`, &pr)
	failed := e.waitRun(pr.PipelineRunID, func(pr *jobs.PipelineRun) bool { return pr.Status.Terminal() })
	if st := failed.StageState("load"); st.Status != jobs.StatusFailed || !strings.Contains(st.Reason, `pool: no pool "nope"`) {
		t.Errorf("stage naming a deleted pool: %s %q", st.Status, st.Reason)
	}
}

// TestPoolReleasedRunSaysWhyNoWorkerTakesIt: a run that takes a slot is
// told at once why no worker could take it, as a submission without a
// pool is and as a run released by its dependsOn is, at submission and
// at a later release; not only at the sweep's next full look, minutes on.
func TestPoolReleasedRunSaysWhyNoWorkerTakesIt(t *testing.T) {
	e := startDepsAPI(t)
	e.setPool("p", 1)
	const nowhere = "no live worker in cluster nowhere (no worker is live at all: gantry worker --cluster nowhere starts one)"
	a := e.submitRun(`{"taskDefinition":"hello","pool":"p","cluster":"nowhere"}`)
	if a.PoolSlotAt == nil || a.StatusReason != nowhere {
		t.Errorf("released at its submission: slot %v, reason %q; want %q", a.PoolSlotAt, a.StatusReason, nowhere)
	}
	b := e.submitRun(`{"taskDefinition":"hello","pool":"p","cluster":"nowhere"}`)
	e.checkWaits(b.RunID, "waiting for a slot in pool p (1 of 1 in use)")
	e.finish(a.RunID)
	// Its job is on cluster nowhere's queue, which jobsOf does not read.
	if got := e.waitFor(b.RunID, "released", func(r *jobs.Run) bool { return r.PoolSlotAt != nil }); got.StatusReason != nowhere {
		t.Errorf("released at the end of the run before it: reason %q; want %q", got.StatusReason, nowhere)
	}
}
