package client

import (
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
)

// TestDecodeStreamEvent: run and pipeline run events are told apart by
// their JSON; workers' pull progress and anything else is left out.
func TestDecodeStreamEvent(t *testing.T) {
	worker := nats.Header{}
	worker.Set(queue.SourceHeader, jobs.SourceWorker)
	for _, c := range []struct {
		name     string
		data     string
		h        nats.Header
		ok       bool
		run, pip bool
	}{
		{"run", `{"v":1,"runId":"01a","status":"QUEUED","source":"server","taskDefinition":"etl:3","cluster":"default"}`, nil, true, true, false},
		{"stage run", `{"runId":"01a","status":"RUNNING","source":"server","pipelineRunId":"pr-1","stage":"extract"}`, nil, true, true, false},
		{"pipeline run", `{"v":1,"pipelineRunId":"pr-1","pipeline":"daily","status":"RUNNING","stages":{"a":"PENDING"}}`, nil, true, false, true},
		{"worker by header", `{"runId":"01a","status":"STARTING","source":"worker"}`, worker, false, false, false},
		{"worker by JSON", `{"runId":"01a","status":"STARTING","source":"worker"}`, nil, false, false, false},
		{"no status", `{"runId":"01a"}`, nil, false, false, false},
		{"neither", `{"hello":1}`, nil, false, false, false},
		{"not JSON", `hello`, nil, false, false, false},
	} {
		ev, ok := DecodeStreamEvent([]byte(c.data), c.h)
		if ok != c.ok || ok && ((ev.Run != nil) != c.run || (ev.Pipeline != nil) != c.pip || string(ev.JSON) != c.data) {
			t.Errorf("%s: %+v, %v", c.name, ev, ok)
		}
	}
}

// FuzzDecodeStreamEvent: any message gives an event of one kind with a
// status, or none, never a panic.
func FuzzDecodeStreamEvent(f *testing.F) {
	for _, s := range []string{`{"runId":"01a","status":"QUEUED","source":"server"}`,
		`{"pipelineRunId":"pr-1","pipeline":"d","status":"RUNNING","stages":{"a":"PENDING"}}`,
		`{"runId":"01a","pipelineRunId":"pr-1","status":"X"}`, `{"runId":1}`, `{"v":"x","runId":"a","status":"Q"}`, `null`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, ok := DecodeStreamEvent(data, nil)
		if !ok {
			return
		}
		if (ev.Run == nil) == (ev.Pipeline == nil) {
			t.Fatalf("%q: both kinds or none: %+v", data, ev)
		}
		if ev.Run != nil && ev.Run.Status == "" || ev.Pipeline != nil && ev.Pipeline.Status == "" {
			t.Fatalf("%q: an event without a status", data)
		}
		_ = ev.Time()
	})
}
