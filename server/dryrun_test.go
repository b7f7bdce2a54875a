package server

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go/micro"
)

// storeDump is every row of every table of e's store, sorted: two dumps
// are equal when nothing was written between them.
func (e *apiEnv) storeDump() string {
	e.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "gantry.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		e.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	var out []string
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					vals[i] = string(b)
				}
			}
			lines = append(lines, fmt.Sprintf("%s: %v", table, vals))
		}
		rows.Close()
		slices.Sort(lines)
		out = append(out, lines...)
	}
	return strings.Join(out, "\n")
}

// rows counts the rows of table in a storeDump.
func rows(dump, table string) int {
	n := 0
	for _, line := range strings.Split(dump, "\n") {
		if strings.HasPrefix(line, table+": ") {
			n++
		}
	}
	return n
}

// applyReq sends a pipelines.apply request and returns its reply, or its
// error.
func (e *apiEnv) applyReq(src string, dryRun bool) (PipelineApplyReply, *jobs.Error) {
	e.t.Helper()
	body, _ := json.Marshal(PipelineApplyRequest{Data: []byte(src), DryRun: dryRun})
	m := e.req(e.op, "gantry.api.pipelines.apply", string(body))
	if m.Header.Get(micro.ErrorCodeHeader) != "" {
		err := apiError(e.t, m)
		return PipelineApplyReply{}, &err
	}
	var reply PipelineApplyReply
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		e.t.Fatal(err)
	}
	return reply, nil
}

// TestPipelineDryRunStoresNothing: a dry run says what an apply would do
// (a new pipeline, the next version with what changed, unchanged) and
// changes nothing: not one row of the store (versions, schedules and
// their suspend flag, runs), no waiting run promoted by a raised
// maxActiveRuns, no event. The real apply of the same file then does
// what the dry run said.
func TestPipelineDryRunStoresNothing(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const v1 = "name: sales\nmaxActiveRuns: 1\nschedule: {cron: '0 2 * * *', suspend: true}\nstages: [{name: only, taskDefinition: hello}]\n"

	before := e.storeDump()
	reply, err := e.applyReq(v1, true)
	if err != nil || !reply.DryRun || !reply.Changed || reply.Pipeline.Version != 1 || len(reply.Changes) != 0 {
		t.Fatalf("dry run of a new pipeline: %+v, %v", reply, err)
	}
	if after := e.storeDump(); after != before {
		t.Fatalf("the dry run of a new pipeline wrote to the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	var scheds []ScheduleInfo
	if e.ok("gantry.api.schedules.list", "{}", &scheds); len(scheds) != 0 {
		t.Fatalf("the dry run made a schedule: %+v", scheds)
	}
	e.apply(v1)

	// Two runs: one RUNNING, one waiting for maxActiveRuns.
	e.runPipeline("sales", "")
	waiting := e.runPipeline("sales", "")
	checkWaiting(t, waiting, "waiting: 1 of 1 active runs of sales (maxActiveRuns)")

	// Unchanged.
	before = e.storeDump()
	if reply, err = e.applyReq(v1, true); err != nil || reply.Changed || reply.Pipeline.Version != 1 || !reply.DryRun {
		t.Fatalf("dry run of the same file: %+v, %v", reply, err)
	}

	// The next version: its bound raised (an apply would start the
	// waiting run), its schedule resumed and moved.
	sub, serr := e.op.SubscribeSync("gantry.events.>")
	if serr != nil {
		t.Fatal(serr)
	}
	defer sub.Unsubscribe()
	e.op.Flush()
	v2 := strings.NewReplacer("maxActiveRuns: 1", "maxActiveRuns: 2", "'0 2 * * *', suspend: true", "'0 3 * * *'").Replace(v1)
	reply, err = e.applyReq(v2, true)
	want := []string{`schedule.cron: "0 2 * * *" -> "0 3 * * *"`, "schedule.suspend: removed (was true)", "maxActiveRuns: 1 -> 2"}
	if err != nil || !reply.Changed || reply.Pipeline.Version != 2 || !slices.Equal(reply.Changes, want) {
		t.Fatalf("dry run of a change: %+v, %v; want version 2 with changes %q", reply, err, want)
	}
	// The server's events and its reply come on one connection, in
	// order: one the dry run published would be here already.
	if n, _, _ := sub.Pending(); n != 0 {
		m, _ := sub.NextMsg(0)
		t.Fatalf("the dry run published %d events, the first on %s: %s", n, m.Subject, m.Data)
	}
	if after := e.storeDump(); after != before {
		t.Fatalf("the dry run of a change wrote to the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	checkWaiting(t, e.getRun(waiting.PipelineRunID), "waiting: 1 of 1 active runs of sales (maxActiveRuns)")
	if e.ok("gantry.api.schedules.list", "{}", &scheds); len(scheds) != 1 || !scheds[0].Suspended || scheds[0].Schedule.Cron != "0 2 * * *" {
		t.Fatalf("the dry run changed the schedule: %+v", scheds)
	}

	// The apply does what the dry run said, and what it did not.
	applied, err := e.applyReq(v2, false)
	if err != nil || !applied.Changed || applied.Pipeline.Version != reply.Pipeline.Version || applied.DryRun || applied.Changes != nil {
		t.Fatalf("apply after the dry run: %+v, %v", applied, err)
	}
	if pr := e.getRun(waiting.PipelineRunID); pr.Status != jobs.StatusRunning {
		t.Fatalf("the apply did not start the waiting run: %s %q", pr.Status, pr.StatusReason)
	}
	if _, err := sub.NextMsg(10e9); err != nil {
		t.Fatalf("no event of the apply's promotion: %v", err)
	}
	if e.ok("gantry.api.schedules.list", "{}", &scheds); len(scheds) != 1 || scheds[0].Suspended {
		t.Fatalf("the apply did not resume the schedule: %+v", scheds)
	}
}

// TestPipelineDryRunRefusesWhatApplyRefuses: a dry run answers a file an
// apply refuses with the apply's very error, every problem at once: the
// file's own, unknown task definitions and pools, triggers naming no
// pipeline or closing a cycle.
func TestPipelineDryRunRefusesWhatApplyRefuses(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.apply("name: sales\nstages: [{name: only, taskDefinition: hello}]\n")
	e.apply("name: report\ntriggers: [{pipeline: sales}]\nstages: [{name: only, taskDefinition: hello}]\n")
	for _, c := range []struct{ src, want string }{
		{"name: bad\nschedule: {cron: 'every day'}\nstages: [{name: a, taskDefinition: hello}, {name: b, taskDefinition: hello, dependsOn: [c]}]\n",
			"schedule.cron"},
		{"name: refs\nstages: [{name: a, taskDefinition: nosuch}, {name: b, taskDefinition: hello, pool: ghost}]\n",
			"stages[0](a).taskDefinition: task definition family nosuch is not registered;"},
		{"name: refs\nstages: [{name: a, taskDefinition: nosuch}, {name: b, taskDefinition: hello, pool: ghost}]\n",
			`stages[1](b).pool: no pool "ghost"`},
		{"name: sales\ntriggers: [{pipeline: report}]\nstages: [{name: a, taskDefinition: hello}]\n", "trigger cycle: sales -> report -> sales"},
		{"name: x\ntriggers: [{pipeline: ghost}]\nstages: [{name: a, taskDefinition: hello}]\n", `triggers[0].pipeline: no pipeline "ghost"`},
		{"name: x\nstages: [{name: a, taskDefinition: hello, arraySize: 2, bogus: 1}]\n", "bogus"},
		{"name: [not yaml\n", "pipeline: yaml: line 1"},
	} {
		before := e.storeDump()
		_, dry := e.applyReq(c.src, true)
		if dry == nil || dry.Code != jobs.CodeInvalidArgument || !strings.Contains(dry.Message, c.want) {
			t.Errorf("dry run of %q: %+v, want invalid_argument with %q", c.src, dry, c.want)
			continue
		}
		if after := e.storeDump(); after != before {
			t.Errorf("the refused dry run of %q wrote to the store", c.src)
		}
		if _, real := e.applyReq(c.src, false); real == nil || *real != *dry {
			t.Errorf("%q: the apply's error %+v, the dry run's %+v", c.src, real, dry)
		}
	}
}

// TestTaskDefDryRun: a register's dry run says which revision it would
// be and whether the family's latest is the same, refuses what a
// register refuses with its error, and stores nothing: the register
// after it gets the revision it said.
func TestTaskDefDryRun(t *testing.T) {
	e := startAll(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	dryRun := func(body string) (RegisterReply, *jobs.Error) {
		m := e.req(e.op, "gantry.api.taskdefs.register", body)
		if m.Header.Get(micro.ErrorCodeHeader) != "" {
			err := apiError(t, m)
			return RegisterReply{}, &err
		}
		var reply RegisterReply
		if err := json.Unmarshal(m.Data, &reply); err != nil {
			t.Fatal(err)
		}
		return reply, nil
	}
	withDryRun := func(td string) string { return strings.Replace(td, "{", `{"dryRun":true,`, 1) }
	other := strings.Replace(helloTaskDef, `"memory":64`, `"memory":128`, 1)
	aws := strings.Replace(helloTaskDef, `"family"`, `"executionRoleArn":"arn:aws:iam::1:role/x","family"`, 1)

	before := e.storeDump()
	for _, c := range []struct {
		name, body, ref, identical string
		warn                       bool
	}{
		{"the same", withDryRun(helloTaskDef), "hello:2", "hello:1", false},
		{"another", withDryRun(other), "hello:2", "", false},
		{"a new family", withDryRun(strings.Replace(helloTaskDef, `"hello"`, `"fresh"`, 1)), "fresh:1", "", false},
		{"as describe-task-definition writes it", `{"dryRun":true,"taskDefinition":` + helloTaskDef + `}`, "hello:2", "hello:1", false},
		// Fields ignored are not stored: the same as hello:1.
		{"with AWS-only fields", withDryRun(aws), "hello:2", "hello:1", true},
	} {
		reply, err := dryRun(c.body)
		if err != nil || !reply.DryRun || reply.TaskDefinition.Ref() != c.ref || reply.IdenticalTo != c.identical ||
			reply.TaskDefinition.Status != jobs.TaskDefActive || (len(reply.Warnings) > 0) != c.warn {
			t.Errorf("%s: %+v, %v; want %s identical to %q", c.name, reply, err, c.ref, c.identical)
		}
	}
	// dryRun false is a register.
	if reply, err := dryRun(strings.Replace(helloTaskDef, "{", `{"dryRun":false,`, 1)); err != nil || reply.DryRun || reply.TaskDefinition.Ref() != "hello:2" {
		t.Fatalf("dryRun false: %+v, %v", reply, err)
	}
	after := e.storeDump()
	if rows(after, "taskdefs") != rows(before, "taskdefs")+1 {
		t.Fatalf("the dry runs stored task definitions:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	bad := `{"family":"hello","containerDefinitions":[{"name":"main","image":"i","memmory":64}]}`
	before = e.storeDump()
	for _, c := range []struct{ body, want string }{
		{withDryRun(bad), `containerDefinitions[0].memmory: unknown field; did you mean "memory"?`},
		{withDryRun(`{"family":"","containerDefinitions":[]}`), "family"},
		{`{"dryRun":"yes","family":"hello","containerDefinitions":[{"name":"main","image":"i"}]}`, `dryRun: want true or false, got "yes"`},
	} {
		_, err := dryRun(c.body)
		if err == nil || err.Code != jobs.CodeInvalidArgument || !strings.Contains(err.Message, c.want) {
			t.Errorf("dry run of %s: %+v, want invalid_argument with %q", c.body, err, c.want)
		}
	}
	if after := e.storeDump(); after != before {
		t.Fatalf("refused dry runs wrote to the store")
	}
	if _, real := dryRun(bad); real == nil {
		t.Fatal("the register of a bad definition succeeded")
	} else if _, dry := dryRun(withDryRun(bad)); *dry != *real {
		t.Errorf("the register's error %+v, the dry run's %+v", real, dry)
	}
	var reg RegisterReply
	if e.ok("gantry.api.taskdefs.register", other, &reg); reg.TaskDefinition.Ref() != "hello:3" {
		t.Fatalf("the register after the dry runs made %s, want hello:3", reg.TaskDefinition.Ref())
	}
}

// FuzzTakeDryRun: whatever the register request, taking its dryRun out
// leaves the rest of it as the decoder would read it without the field:
// the same definition or the same refusal. A request that does not name
// dryRun is not touched.
func FuzzTakeDryRun(f *testing.F) {
	f.Add([]byte(helloTaskDef), true)
	f.Add([]byte(`{"taskDefinition":`+helloTaskDef+`,"tags":[{"key":"a","value":"b"}]}`), false)
	f.Add([]byte(`{"family":"x","containerDefinitions":[{"name":"m","image":"i","memmory":1}]}`), true)
	f.Add([]byte(`{"family":1}`), true)
	f.Add([]byte(`[1,2]`), false)
	f.Add([]byte(`{"dryRun":"yes"}`), false)
	f.Fuzz(func(t *testing.T, data []byte, dry bool) {
		if !json.Valid(data) {
			return // refused before the handler (checked)
		}
		if !strings.Contains(string(data), `"dryRun"`) {
			got, rest, err := takeDryRun(data)
			if got || err != nil || string(rest) != string(data) {
				t.Fatalf("a request without dryRun: %v %q %v", got, rest, err)
			}
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil || obj == nil {
			return
		}
		if _, ok := obj["dryRun"]; ok {
			return
		}
		obj["dryRun"], _ = json.Marshal(dry)
		with, _ := json.Marshal(obj)
		got, rest, err := takeDryRun(with)
		if err != nil || got != dry {
			t.Fatalf("dryRun %v of %s: %v, %v", dry, with, got, err)
		}
		td1, _, err1 := jobs.DecodeTaskDefinition(data)
		td2, _, err2 := jobs.DecodeTaskDefinition(rest)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && !sameTaskDef(*td1, *td2)) {
			t.Fatalf("without dryRun %s decodes as %+v, %v; as sent %+v, %v", rest, td2, err2, td1, err1)
		}
	})
}
