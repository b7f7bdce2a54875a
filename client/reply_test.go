package client

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/server"
	json "github.com/goccy/go-json"
)

// submitReply is the reply of runs.submit for a one-container task.
func submitReply(tb testing.TB) []byte {
	tb.Helper()
	var td jobs.TaskDefinition
	if err := json.Unmarshal([]byte(`{"family":"bench","containerDefinitions":[{"name":"main","image":"gantry/samples:latest","command":["etl","extract"],"essential":true,"memory":128,"environment":[{"name":"STAGE","value":"extract"}]}]}`), &td); err != nil {
		tb.Fatal(err)
	}
	data, err := json.Marshal(&jobs.Run{RunID: "run-01JEXAMPLE0000000000000000", Status: "QUEUED", TaskDefinition: "bench:1",
		Cluster: "default", CreatedAt: time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC), Spec: jobs.RunSpec{Task: td}})
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func TestDecodeReply(t *testing.T) {
	t.Run("run", func(t *testing.T) {
		var r jobs.Run
		apiErr, err := decodeReply(submitReply(t), &r)
		if apiErr != nil || err != nil || r.RunID != "run-01JEXAMPLE0000000000000000" || len(r.Spec.Task.ContainerDefinitions) != 1 {
			t.Fatalf("got %+v, %v, %v", r, apiErr, err)
		}
	})
	t.Run("api error", func(t *testing.T) {
		var r jobs.Run
		apiErr, err := decodeReply([]byte(`{"error":{"code":"not_found","message":"run x does not exist"}}`), &r)
		if err != nil || apiErr == nil || apiErr.Code != jobs.CodeNotFound || apiErr.Message != "run x does not exist" {
			t.Fatalf("got %v, %v; want the not_found error", apiErr, err)
		}
	})
	// A run whose text holds "error" goes through the probe and still
	// decodes as a run.
	t.Run("run that mentions error", func(t *testing.T) {
		var r jobs.Run
		apiErr, err := decodeReply([]byte(`{"runId":"r1","status":"FAILED","stoppedReason":"error","containers":[]}`), &r)
		if apiErr != nil || err != nil || r.RunID != "r1" || r.StoppedReason != "error" {
			t.Fatalf("got %+v, %v, %v", r, apiErr, err)
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		var r jobs.Run
		apiErr, err := decodeReply([]byte(`<html>`), &r)
		if apiErr != nil || err == nil {
			t.Fatalf("got %v, %v; want a decode error", apiErr, err)
		}
	})
}

// FuzzDecodeReply: whatever the reply, decodeReply does not panic and
// never returns both an API error and a decode error; and whatever the code
// and message, it finds the error of a reply encoded as the server encodes
// its errors (server.ErrorReply).
func FuzzDecodeReply(f *testing.F) {
	f.Add(submitReply(f), "not_found", "run x does not exist")
	f.Add([]byte(`{"error":{"code":"invalid","message":"bad"}}`), "", "")
	f.Add([]byte(`{"error":null}`), "invalid", `say "error"`)
	f.Add([]byte(`{"runId":"error"}`), `\u0065`, `"`)
	f.Add([]byte(`[]`), "x", "")
	f.Fuzz(func(t *testing.T, data []byte, code, message string) {
		var r jobs.Run
		apiErr, err := decodeReply(data, &r)
		if apiErr != nil && err != nil {
			t.Fatalf("both an API error %v and a decode error %v", apiErr, err)
		}
		if !utf8.ValidString(code) || !utf8.ValidString(message) {
			return // the encoder replaces what is not UTF-8
		}
		reply, err := json.Marshal(server.ErrorReply{Error: jobs.Error{Code: code, Message: message}})
		if err != nil {
			t.Fatal(err)
		}
		apiErr, err = decodeReply(reply, &r)
		if err != nil || apiErr == nil || apiErr.Code != code || apiErr.Message != message {
			t.Fatalf("%s: got %+v, %v; want code %q, message %q", reply, apiErr, err, code, message)
		}
	})
}

// BenchmarkDecodeReply is the client's decoding of each reply to a submit;
// the control-plane benchmark's clients make one a run.
func BenchmarkDecodeReply(b *testing.B) {
	data := submitReply(b)
	if bytes.Contains(data, errorKey) {
		b.Fatal("the sample reply mentions error: it measures the slow path")
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var r jobs.Run
		if apiErr, err := decodeReply(data, &r); apiErr != nil || err != nil {
			b.Fatal(apiErr, err)
		}
	}
}
