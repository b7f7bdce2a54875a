package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestUnreadSubmitFields(t *testing.T) {
	for _, c := range []struct {
		name, req string
		want      []string
	}{
		{"known fields", `{"taskDefinition":"hello","cluster":"etl","timeoutSeconds":60,"overrides":{"containerOverrides":[{"name":"main","cpu":256}]},` +
			`"retryStrategy":{"attempts":2,"evaluateOnExit":[{"onExitCode":"1","action":"RETRY"}],"backoff":{"initialSeconds":1}},` +
			`"dependsOn":[{"runId":"01x","condition":"failure"}],"tags":{"a":"b"},"constraints":{"disk":"ssd"},"pool":"p","priority":"high"}`, nil},
		{"case is encoding/json's", `{"TaskDefinition":"hello","CLUSTER":"etl","TimeoutSeconds":1}`, nil},
		{"inline task definition is its own", `{"taskDefinition":{"family":"x","bogus":1}}`, nil},
		{"batch timeout", `{"taskDefinition":"hello","timeout":{"attemptDurationSeconds":60}}`,
			[]string{`timeout: not read; use "timeoutSeconds": 60 (AWS Batch's timeout.attemptDurationSeconds: each attempt's bound, from its container's start)`}},
		{"other timeout", `{"timeout":"1m"}`, []string{`timeout: not read; use "timeoutSeconds" (seconds, each attempt from its container's start)`}},
		{"batch array is read", `{"arrayProperties":{"size":10}}`, nil},
		{"batch array's other fields", `{"arrayProperties":{"size":10,"index":2}}`, []string{`arrayProperties.index: not read: no such field of a submission (docs/nats-api.md lists them)`}},
		{"ecs count", `{"count":3}`, []string{`count: not read; use "arrayProperties": {"size": N} (AWS Batch's array job): N child runs of the task, each seeing GANTRY_ARRAY_INDEX and AWS_BATCH_JOB_ARRAY_INDEX`}},
		{"batch dependsOn", `{"dependsOn":[{"runId":"01a"},{"jobId":"01b","type":"N_TO_N"}]}`, []string{
			`dependsOn[1].jobId: not read; use "runId"`}}, // type is read: SEQUENTIAL orders an array, others are refused
		{"misspelt", `{"timeoutSecond":5,"retryStrategy":{"attempt":3},"overrides":{"containerOverrides":[{"name":"m","enviroment":[]}]}}`, []string{
			`overrides.containerOverrides[0].enviroment: not read; did you mean "environment"?`,
			`retryStrategy.attempt: not read; did you mean "attempts"?`,
			`timeoutSecond: not read; did you mean "timeoutSeconds"?`}},
		{"nothing near", `{"zzzzzzzzzzzz":1}`, []string{`zzzzzzzzzzzz: not read: no such field of a submission (docs/nats-api.md lists them)`}},
		{"stage, gantry's own, is not suggested", `{"stag":1}`, []string{`stag: not read; did you mean "tags"?`}},
		{"malformed", `{"timeout":`, nil},
		{"not an object", `[1,2]`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := UnreadSubmitFields([]byte(c.req)); !slices.Equal(got, c.want) {
				t.Errorf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestUnreadSubmitFieldsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"taskDefinition":"x"`)
	for i := range 50 {
		fmt.Fprintf(&b, `,"x%d":1`, i)
	}
	b.WriteString("}")
	got := UnreadSubmitFields([]byte(b.String()))
	if len(got) != maxUnreadFields+1 || got[maxUnreadFields] != "and 30 more fields not read" {
		t.Fatalf("%d warnings, the last %q", len(got), got[len(got)-1])
	}
}

// FuzzUnreadSubmitFields: any input gives warnings without panicking, and
// they agree with encoding/json's DisallowUnknownFields, which the
// server's fast path decodes with: a request it decodes has no warnings,
// one it refuses for an unknown field has some.
func FuzzUnreadSubmitFields(f *testing.F) {
	for _, s := range []string{`{"taskDefinition":"hello","timeout":{"attemptDurationSeconds":60}}`,
		`{"dependsOn":[{"jobId":"a"}],"overrides":{"containerOverrides":[{"vcpus":1}]}}`,
		`{"arrayProperties":{"size":2},"Cluster":"x","retryStrategy":{"backoff":{"x":1}}}`, `[]`, `null`, `{"tags":[{"key":"a"}]}`,
		`{"poolſ":"x","Key":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		warnings := UnreadSubmitFields(data)
		if len(warnings) > maxUnreadFields+1 {
			t.Fatalf("%d warnings", len(warnings))
		}
		for _, w := range warnings {
			if !strings.Contains(w, "not read") {
				t.Fatalf("warning %q", w)
			}
		}
		var req SubmitRequest
		if json.Unmarshal(data, &req) != nil {
			return // refused as malformed: the warnings do not matter
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err := dec.Decode(&SubmitRequest{})
		switch {
		case err == nil && len(warnings) > 0:
			t.Fatalf("decoded strictly, yet warnings %q", warnings)
		case err != nil && strings.Contains(err.Error(), "unknown field") && len(warnings) == 0:
			t.Fatalf("strict decode: %v; no warnings", err)
		}
	})
}
