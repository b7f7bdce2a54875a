package server

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// rerunTaskDef has a sidecar first, not essential, and tags that a run
// with propagateTags takes.
const rerunTaskDef = `{"family":"rr","tags":[{"key":"owner","value":"td"}],"containerDefinitions":[` +
	`{"name":"sidecar","image":"gantry/none:1","essential":false},` +
	`{"name":"main","image":"gantry/none:1","memory":64,"environment":[{"name":"A","value":"task"}]}]}`

// startRerun starts the API with hello registered.
func startRerun(t *testing.T) *apiEnv {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	return e
}

// rerun asks, as the operator, to rerun with body and returns the reply.
func (e *apiEnv) rerun(body string) RerunReply {
	e.t.Helper()
	m := e.req(e.op, "gantry.api.runs.rerun", body)
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		e.t.Fatalf("runs.rerun %s: error %s: %s", body, code, m.Data)
	}
	if strings.Contains(string(m.Data), `"spec"`) {
		e.t.Errorf("runs.rerun's reply has a spec: %s", m.Data)
	}
	var rep RerunReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// rerunError asks to rerun with body and returns the error reply.
func (e *apiEnv) rerunError(body string) jobs.Error {
	e.t.Helper()
	return apiError(e.t, e.req(e.op, "gantry.api.runs.rerun", body))
}

// runDoc returns run id as runs.get shows it.
func (e *apiEnv) runDoc(id string) *jobs.Run {
	e.t.Helper()
	var r jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &r)
	return &r
}

// fullSubmission submits a run of rr:1 with every field a submission has
// but the inline task definition and the stage.
func (e *apiEnv) fullSubmission(key string) *jobs.Run {
	e.t.Helper()
	e.ok("gantry.api.taskdefs.register", rerunTaskDef, nil)
	e.ok("gantry.api.taskdefs.register", rerunTaskDef, nil) // rr:2, newer than the run's
	e.setPool("warehouse", 5)
	dep := e.submitRun(`{"taskDefinition":"hello","cluster":"nowhere"}`)
	return e.submitRun(fmt.Sprintf(`{"taskDefinition":"rr:1","cluster":"etl","worker":"w1",
		"overrides":{"containerOverrides":[{"name":"main","command":["etl","--day=1"],"environment":[{"name":"A","value":"run"},{"name":"B","value":"run"}],"cpu":512,"memory":256}]},
		"timeoutSeconds":60,"activeDeadlineSeconds":600,"priority":"low",
		"retryStrategy":{"attempts":3,"evaluateOnExit":[{"onExitCode":"2","action":"EXIT"}],"backoff":{"initialSeconds":5}},
		"tags":{"team":"data"},"propagateTags":"TASK_DEFINITION",
		"dependsOn":[{"runId":%q,"condition":"complete"}],"pool":"warehouse","idempotencyKey":%q}`, dep.RunID, key))
}

// TestRerunCopiesEverySubmittedField: a rerun is its run again: every
// field the submission set is the same in the new run, the revision
// pinned though the family has a newer one (a warning names it), and
// only what makes it a new run differs: id, times, attempts, key and
// rerunOf.
func TestRerunCopiesEverySubmittedField(t *testing.T) {
	e := startRerun(t)
	orig := e.fullSubmission("orig")
	rep := e.rerun(fmt.Sprintf(`{"runId":%q}`, orig.RunID))
	if rep.RerunOf != orig.RunID || rep.RunID == orig.RunID || rep.TaskDefinition != "rr:1" {
		t.Errorf("reply: run %s rerunOf %q task %s; want a new run of rr:1, rerunOf %s", rep.RunID, rep.RerunOf, rep.TaskDefinition, orig.RunID)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "rr:2 is the family's latest ACTIVE revision") {
		t.Errorf("warnings %q, want one naming rr:2", rep.Warnings)
	}
	o, got := e.runDoc(orig.RunID), e.runDoc(rep.RunID)
	if got.RerunOf != orig.RunID || got.IdempotencyKey != "" {
		t.Errorf("stored: rerunOf %q key %q, want %s and none", got.RerunOf, got.IdempotencyKey, orig.RunID)
	}
	if got.Spec.Deadline == nil || got.Spec.Deadline.Before(*o.Spec.Deadline) {
		t.Errorf("deadline %v, want 600s after the rerun's submission, not before the run's %v", got.Spec.Deadline, o.Spec.Deadline)
	}
	if got.Tags["owner"] != "td" || got.Tags["team"] != "data" || got.Spec.Overrides == nil || got.Pool != "warehouse" {
		t.Fatalf("the rerun lacks the run's tags, overrides or pool: %+v", got)
	}
	// All the rest is the run's.
	same := *got
	same.RunID, same.CreatedAt, same.Attempts, same.IdempotencyKey, same.RerunOf = o.RunID, o.CreatedAt, o.Attempts, o.IdempotencyKey, o.RerunOf
	same.Spec.Deadline = o.Spec.Deadline
	a, _ := json.Marshal(same)
	b, _ := json.Marshal(o)
	if string(a) != string(b) {
		t.Errorf("the rerun differs from its run beyond id, times, attempts, key and rerunOf:\nrerun %s\n  run %s", a, b)
	}
	// describe's data, runs.list, shows it too.
	var list ListReply
	e.ok("gantry.api.runs.list", `{"all":true,"limit":1}`, &list)
	if len(list.Runs) != 1 || list.Runs[0].RerunOf != orig.RunID {
		t.Errorf("runs.list: %+v", list.Runs)
	}
}

// TestRerunRequestWins: the request's fields replace the run's, its
// overrides apply after the run's (a nameless one to the first essential
// container), --attempts keeps the run's retry rules, and a repeated
// idempotencyKey finds the rerun it made.
func TestRerunRequestWins(t *testing.T) {
	e := startRerun(t)
	orig := e.fullSubmission("orig")
	e.setPool("gpu", 1)
	dep := e.submitRun(`{"taskDefinition":"hello"}`)
	body := fmt.Sprintf(`{"runId":%q,"cluster":"gpu","priority":"high","timeoutSeconds":5,"activeDeadlineSeconds":50,"attempts":5,
		"tags":{"team":"ml","new":"1"},"dependsOn":[{"runId":%q,"condition":"failure"}],"pool":"gpu","idempotencyKey":"again",
		"overrides":{"containerOverrides":[{"environment":[{"name":"B","value":"rerun"}],"memory":1024}]}}`, orig.RunID, dep.RunID)
	rep := e.rerun(body)
	got := e.runDoc(rep.RunID)
	if got.Cluster != "gpu" || got.TargetWorker != "" || got.Priority != jobs.PriorityHigh || got.Pool != "gpu" ||
		got.Spec.TimeoutSeconds != 5 || got.Spec.ActiveDeadlineSeconds != 50 || got.IdempotencyKey != "again" {
		t.Errorf("rerun: cluster %s worker %q priority %s pool %s timeout %d deadline %d key %q",
			got.Cluster, got.TargetWorker, got.Priority, got.Pool, got.Spec.TimeoutSeconds, got.Spec.ActiveDeadlineSeconds, got.IdempotencyKey)
	}
	if rs := got.Spec.RetryStrategy; rs.Attempts != 5 || len(rs.EvaluateOnExit) != 1 || rs.Backoff == nil {
		t.Errorf("retry strategy %+v: want 5 attempts with the run's rules", rs)
	}
	if want := map[string]string{"team": "ml", "new": "1", "owner": "td"}; !reflect.DeepEqual(got.Tags, want) {
		t.Errorf("tags %v, want %v", got.Tags, want)
	}
	if len(got.DependsOn) != 1 || got.DependsOn[0].RunID != dep.RunID || got.DependsOn[0].Condition != jobs.CondFailure {
		t.Errorf("dependsOn %+v, want only %s:failure", got.DependsOn, dep.RunID)
	}
	td, err := got.Spec.Task.WithOverrides(got.Spec.Overrides)
	if err != nil {
		t.Fatal(err)
	}
	main, sidecar := td.ContainerDefinitions[1], td.ContainerDefinitions[0]
	if fmt.Sprint(main.Environment) != "[{A run} {B rerun}]" || main.Memory != 1024 || main.CPU != 512 ||
		fmt.Sprint(main.Command) != "[etl --day=1]" || len(sidecar.Environment) != 0 || sidecar.Memory != 0 {
		t.Errorf("containers with the rerun's overrides: main %+v, sidecar %+v", main, sidecar)
	}
	if again := e.rerun(body); again.RunID != rep.RunID {
		t.Errorf("the same idempotencyKey made a second rerun %s (first %s)", again.RunID, rep.RunID)
	}
	// A client that lost the reply to a server that went down asks the
	// restarted server again: the key, kept in the store, finds the run.
	e.stop()
	e.startServer()
	if again := e.rerun(body); again.RunID != rep.RunID || again.RerunOf != orig.RunID {
		t.Errorf("after a restart the same idempotencyKey made %s (first %s)", again.RunID, rep.RunID)
	}
}

// TestRerunRevisions: a run's revision is pinned; latest takes the
// family's latest ACTIVE one; a deregistered revision is refused, saying
// latest would run; an inline definition is rerun as it was, and has no
// latest.
func TestRerunRevisions(t *testing.T) {
	e := startRerun(t)
	orig := e.fullSubmission("orig")
	if r := e.rerun(fmt.Sprintf(`{"runId":%q,"latest":true}`, orig.RunID)); r.TaskDefinition != "rr:2" || len(r.Warnings) != 0 {
		t.Errorf("latest: %s, warnings %q; want rr:2 and none", r.TaskDefinition, r.Warnings)
	}
	e.ok("gantry.api.taskdefs.deregister", `{"taskDefinition":"rr:1"}`, nil)
	er := e.rerunError(fmt.Sprintf(`{"runId":%q}`, orig.RunID))
	if er.Code != jobs.CodeFailedPrecond || !strings.Contains(er.Message, "task definition rr:1 is INACTIVE") ||
		!strings.Contains(er.Message, "--latest") {
		t.Errorf("deregistered revision: %s %s", er.Code, er.Message)
	}
	inline := e.submitRun(`{"taskDefinition":{"family":"adhoc","containerDefinitions":[{"name":"main","image":"gantry/none:1","command":["sh","-c","exit 3"]}]}}`)
	r := e.rerun(fmt.Sprintf(`{"runId":%q}`, inline.RunID))
	if got := e.runDoc(r.RunID); got.TaskDefinition != "adhoc" || !reflect.DeepEqual(got.Spec.Task, e.runDoc(inline.RunID).Spec.Task) {
		t.Errorf("inline rerun: %s %+v", got.TaskDefinition, got.Spec.Task)
	}
	er = e.rerunError(fmt.Sprintf(`{"runId":%q,"latest":true}`, inline.RunID))
	if er.Code != jobs.CodeInvalidArgument || !strings.Contains(er.Message, "inline task definition (family adhoc)") {
		t.Errorf("latest of an inline run: %s %s", er.Code, er.Message)
	}
}

// TestRerunErrors: what a user gets for a run that is not there (never
// was, or deleted), a bad request, a command, gantry's own keys.
func TestRerunErrors(t *testing.T) {
	e := startRerun(t)
	// With an override of its own: the error names the request's.
	r := e.submitRun(`{"taskDefinition":"hello","overrides":{"containerOverrides":[{"name":"main","environment":[{"name":"X","value":"1"}]}]}}`)
	gone := e.submitRun(`{"taskDefinition":"hello"}`)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "gantry.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM runs WHERE run_id = ?`, gone.RunID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body, code string
		want       []string
	}{
		{`{"runId":"01jzzzzzzzzzzzzzzzzzzzzzzz"}`, jobs.CodeNotFound, []string{"run 01jzzzzzzzzzzzzzzzzzzzzzzz: not found"}},
		{fmt.Sprintf(`{"runId":%q}`, gone.RunID), jobs.CodeNotFound, []string{"run " + gone.RunID + ": not found"}},
		{`{}`, jobs.CodeInvalidArgument, []string{"runId: required"}},
		{fmt.Sprintf(`{"runId":%q,"overrides":{"containerOverrides":[{"name":"main","command":["env"]}]},"priority":"urgent","attempts":11}`, r.RunID),
			jobs.CodeInvalidArgument, []string{"overrides.containerOverrides[0].command: a rerun runs the command its run ran", "priority", "attempts: 11"}},
		{fmt.Sprintf(`{"runId":%q,"idempotencyKey":"pipeline/pr-x/extract"}`, r.RunID), jobs.CodeInvalidArgument, []string{"gantry's own"}},
		{fmt.Sprintf(`{"runId":%q,"overrides":{"containerOverrides":[{"name":"nosuch","environment":[{"name":"A","value":"1"}]}]}}`, r.RunID),
			jobs.CodeInvalidArgument, []string{`overrides.containerOverrides[0].name: no container "nosuch" in task definition hello:1; its containers: main`}},
		{fmt.Sprintf(`{"runId":%q,"pool":"nosuch"}`, r.RunID), jobs.CodeNotFound, []string{"nosuch"}},
		{fmt.Sprintf(`{"runId":%q,"dependsOn":[{"runId":"01jzzzzzzzzzzzzzzzzzzzzzzz"}]}`, r.RunID), jobs.CodeNotFound, []string{"dependsOn[0].runId"}},
	} {
		er := e.rerunError(tc.body)
		if er.Code != tc.code {
			t.Errorf("%s: %s %s, want %s", tc.body, er.Code, er.Message, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(er.Message, w) {
				t.Errorf("%s: %q lacks %q", tc.body, er.Message, w)
			}
		}
	}
}

// TestRerunBySubmitter: the submit role may not rerun (NATS refuses
// runs.rerun, as it refuses runs.get): a rerun would run another user's
// spec again, its environment included, for the submitter to read its
// logs. No run is made; the operator may rerun the run.
func TestRerunBySubmitter(t *testing.T) {
	e := startRerun(t)
	const secret = "DB-PASSW0RD-of-the-0perat0r"
	op := e.submitRun(`{"taskDefinition":{"family":"etl","containerDefinitions":[{"name":"main","image":"gantry/none:1"}]},` +
		`"overrides":{"containerOverrides":[{"name":"main","command":["etl"],"environment":[{"name":"PW","value":"` + secret + `"}]}]}}`)
	e.fail(op.RunID)
	e.waitFor(op.RunID, "FAILED", func(r *jobs.Run) bool { return r.Status == jobs.StatusFailed })
	body := fmt.Sprintf(`{"runId":%q,"overrides":{"containerOverrides":[{"environment":[{"name":"BASH_ENV","value":"$(env >&2)"}]}]}}`, op.RunID)
	if m, err := e.sub.Request("gantry.api.runs.rerun", []byte(body), 300*time.Millisecond); err == nil {
		t.Fatalf("the submitter's rerun was answered: %s", m.Data)
	}
	select {
	case err := <-e.subErrs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "gantry.api.runs.rerun") {
			t.Fatalf("async error %v, want a permissions violation on gantry.api.runs.rerun", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no permissions violation reported")
	}
	var list struct{ Runs []jobs.Run }
	e.ok("gantry.api.runs.list", `{"all":true}`, &list)
	if len(list.Runs) != 1 {
		t.Fatalf("%d runs after the refused rerun, want the operator's only", len(list.Runs))
	}
	if rep := e.rerun(fmt.Sprintf(`{"runId":%q}`, op.RunID)); e.runDoc(rep.RunID).RerunOf != op.RunID {
		t.Errorf("the operator's rerun: %+v", rep)
	}
}

// TestRerunOfStageRuns: a stage's run without upstream stages reruns as
// a plain run, outside its pipeline run, which it leaves as it was; it
// keeps GANTRY_SCHEDULED_TIME and loses the variables of its pipeline
// run. One that reads upstream files is refused, pointing at pipeline
// retry.
func TestRerunOfStageRuns(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply(etlYAML)
	failed := e.failedETL()
	id := failed.PipelineRunID
	extract, transform := failed.StageState("extract").Runs[0].RunID, failed.StageState("transform").Runs[0].RunID

	er := e.rerunError(fmt.Sprintf(`{"runId":%q}`, transform))
	if er.Code != jobs.CodeFailedPrecond || !strings.Contains(er.Message, "upstream stages (extract)") ||
		!strings.Contains(er.Message, "gantry pipeline retry "+id) {
		t.Errorf("rerun of transform: %s %s", er.Code, er.Message)
	}
	rep := e.rerun(fmt.Sprintf(`{"runId":%q}`, extract))
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "outside that pipeline run") ||
		!strings.Contains(rep.Warnings[0], "gantry pipeline retry "+id) {
		t.Errorf("warnings %q", rep.Warnings)
	}
	got := e.runDoc(rep.RunID)
	if got.Spec.Stage != nil || got.RerunOf != extract {
		t.Errorf("the rerun of extract: stage %+v, rerunOf %q", got.Spec.Stage, got.RerunOf)
	}
	if env := fmt.Sprint(got.Spec.Overrides); strings.Contains(env, "GANTRY_PIPELINE") || strings.Contains(env, "GANTRY_STAGE") {
		t.Errorf("the rerun keeps its pipeline run's variables: %s", env)
	}
	e.finish(rep.RunID)
	e.waitFor(rep.RunID, "SUCCEEDED", func(r *jobs.Run) bool { return r.Status == jobs.StatusSucceeded })
	if after := e.getRun(id); after.Status != jobs.StatusFailed || after.StageState("extract").Runs[0].RunID != extract ||
		len(after.StageState("extract").Runs) != 1 {
		t.Errorf("the pipeline run changed: %s, extract %+v", after.Status, after.StageState("extract").Runs)
	}

	// A fire's run: the rerun does the work of the same time.
	e.apply(pipelineYAML)
	var bf []jobs.PipelineRun
	e.ok("gantry.api.pipelines.backfill", `{"name":"nightly","from":"2026-01-01T02:00:00Z","to":"2026-01-01T02:00:00Z"}`, &bf)
	if len(bf) != 1 {
		t.Fatalf("backfill: %d runs", len(bf))
	}
	fire := e.stageRunning(bf[0].PipelineRunID, "only")
	rep = e.rerun(fmt.Sprintf(`{"runId":%q,"latest":true}`, fire))
	env := fmt.Sprint(e.runDoc(rep.RunID).Spec.Overrides)
	if !strings.Contains(env, "{GANTRY_SCHEDULED_TIME 2026-01-01T02:00:00Z}") || strings.Contains(env, bf[0].PipelineRunID) {
		t.Errorf("the rerun of a fire's run: %s", env)
	}
}

// TestRerunOutOfADeletedPool: the rerun of a run whose pool was deleted
// since is refused naming the pool; "pool": "" reruns it in no pool.
func TestRerunOutOfADeletedPool(t *testing.T) {
	e := startRerun(t)
	e.setPool("gone", 1)
	r := e.submitRun(`{"taskDefinition":"hello","pool":"gone"}`)
	e.fail(r.RunID)
	e.waitFor(r.RunID, "FAILED", func(r *jobs.Run) bool { return r.Status == jobs.StatusFailed })
	e.ok("gantry.api.pools.delete", `{"name":"gone"}`, nil)

	if er := e.rerunError(fmt.Sprintf(`{"runId":%q}`, r.RunID)); er.Code != jobs.CodeNotFound || !strings.Contains(er.Message, `pool "gone"`) {
		t.Errorf("rerun in the deleted pool: %s %s", er.Code, er.Message)
	}
	rep := e.rerun(fmt.Sprintf(`{"runId":%q,"pool":""}`, r.RunID))
	if got := e.runDoc(rep.RunID); got.Pool != "" || got.RerunOf != r.RunID {
		t.Errorf("rerun in no pool: pool %q, rerunOf %q", got.Pool, got.RerunOf)
	}
}
