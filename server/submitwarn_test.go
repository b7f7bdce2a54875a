package server

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
)

// TestSubmitWarnsOfFieldsNotRead: runs.submit over NATS makes the run of
// a submission with fields it does not read (AWS Batch's timeout, array
// and dependsOn's jobId, a misspelt field) and names each in warnings,
// with what to use instead; a submission without such fields has none,
// and a durable one's reply on Gantry-Reply-To has them too.
func TestSubmitWarnsOfFieldsNotRead(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)

	type reply struct {
		jobs.Run
		Warnings []string `json:"warnings"`
	}
	var first reply
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","timeoutSeconds":30}`, &first)
	if first.RunID == "" || first.Warnings != nil {
		t.Fatalf("a submission of known fields: run %q, warnings %q", first.RunID, first.Warnings)
	}
	if m := e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"hello"}`); strings.Contains(string(m.Data), "warnings") {
		t.Errorf("a reply without warnings has the field: %s", m.Data)
	}

	body := `{"taskDefinition":"hello","timeout":{"attemptDurationSeconds":60},"count":10,` +
		`"dependsOn":[{"jobId":"` + first.RunID + `"}],"clustr":"etl","overrides":{"containerOverrides":[{"name":"main","vcpus":2}]}}`
	want := []string{
		`clustr: not read; did you mean "cluster"?`,
		`count: not read; use "arrayProperties": {"size": N} (AWS Batch's array job): N child runs of the task, each seeing GANTRY_ARRAY_INDEX and AWS_BATCH_JOB_ARRAY_INDEX`,
		`dependsOn[0].jobId: not read; use "runId"`,
		`overrides.containerOverrides[0].vcpus: not read; use "cpu" (1024 units per vCPU)`,
		`timeout: not read; use "timeoutSeconds": 60 (AWS Batch's timeout.attemptDurationSeconds: each attempt's bound, from its container's start)`,
	}
	// dependsOn[0] has no runId: refused as before, the unread field
	// no excuse.
	if got := apiError(t, e.req(e.sub, "gantry.api.runs.submit", body)); got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, "dependsOn[0].runId") {
		t.Fatalf("dependsOn without runId: %+v", got)
	}
	body = strings.Replace(body, `"dependsOn":[{"jobId":"`+first.RunID+`"}]`, `"dependsOn":[{"runId":"`+first.RunID+`","jobId":"`+first.RunID+`"}]`, 1)
	m := e.req(e.sub, "gantry.api.runs.submit", body) // the submit role's
	var got reply
	if err := json.Unmarshal(m.Data, &got); err != nil || got.RunID == "" {
		t.Fatalf("submit with fields not read: %s", m.Data)
	}
	if !slices.Equal(got.Warnings, want) {
		t.Errorf("warnings\n%q\nwant\n%q", got.Warnings, want)
	}
	if got.Status != jobs.StatusQueued || got.Spec.TimeoutSeconds != 0 || len(got.DependsOn) != 1 {
		t.Errorf("the run: status %s, timeout %d, dependsOn %v; want the fields read, as before", got.Status, got.Spec.TimeoutSeconds, got.DependsOn)
	}

	// The same key again finds the run, and still says what was not read.
	keyed := `{"taskDefinition":"hello","idempotencyKey":"k1","count":2}`
	var again [2]reply
	e.ok("gantry.api.runs.submit", keyed, &again[0])
	e.ok("gantry.api.runs.submit", keyed, &again[1])
	if again[0].RunID != again[1].RunID || len(again[1].Warnings) != 1 {
		t.Errorf("a key's second submission: run %s (first %s), warnings %q", again[1].RunID, again[0].RunID, again[1].Warnings)
	}

	// Malformed requests are refused as before.
	for _, bad := range []string{`{"taskDefinition":"hello"} x`, `{"taskDefinition":"hello","timeoutSeconds":"60"}`, `{"timeout":`} {
		if got := apiError(t, e.req(e.op, "gantry.api.runs.submit", bad)); !strings.HasPrefix(got.Message, "malformed request: ") {
			t.Errorf("%s: %+v", bad, got)
		}
	}

	// A durable submission's reply.
	inbox := e.sub.NewInbox()
	replies, err := e.sub.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	js, err := e.sub.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	pub := nats.NewMsg(queue.SubmitSubject)
	pub.Data = []byte(`{"taskDefinition":"hello","timeout":{"attemptDurationSeconds":5}}`)
	pub.Header.Set(queue.ReplyToHeader, inbox)
	if _, err := js.PublishMsg(pub); err != nil {
		t.Fatal(err)
	}
	dm, err := replies.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("durable reply: %v", err)
	}
	var durable reply
	if err := json.Unmarshal(dm.Data, &durable); err != nil || durable.RunID == "" ||
		!slices.Equal(durable.Warnings, []string{`timeout: not read; use "timeoutSeconds": 5 (AWS Batch's timeout.attemptDurationSeconds: each attempt's bound, from its container's start)`}) {
		t.Errorf("durable reply: %s", dm.Data)
	}
}
