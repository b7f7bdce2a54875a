package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// TestRunPrintsSubmitWarnings: the warnings of runs.submit's reply (each
// names a field the server did not read) are printed on stderr as notes,
// stdout keeping only the run id. The server here is a stand-in that
// answers runs.submit as a newer or older gantry might: gantry run sends
// only fields its own server reads (server.TestSubmitWarnsOfFieldsNotRead
// has a real one's warnings).
func TestRunPrintsSubmitWarnings(t *testing.T) {
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	svc, err := micro.AddService(nc, micro.Config{Name: "gantry", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	got := make(chan jobs.SubmitRequest, 1)
	err = svc.AddGroup("gantry.api").AddEndpoint("runs_submit", micro.HandlerFunc(func(r micro.Request) {
		var req jobs.SubmitRequest
		json.Unmarshal(r.Data(), &req)
		got <- req
		r.Respond([]byte(`{"runId":"01m96run","status":"QUEUED","warnings":["timeout: not read; use \"timeoutSeconds\": 60","clustr: not read; did you mean \"cluster\"?"]}`))
	}), micro.WithEndpointSubject("runs.submit"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil { // the endpoint's subscription reaches NATS before the request
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runWith(context.Background(), []string{"run", "-d", "--nats", ns.ClientURL(), "--image", "img", "--", "true"},
		strings.NewReader(""), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if req := <-got; !strings.Contains(string(req.TaskDefinition), `"img"`) {
		t.Errorf("submitted %s", req.TaskDefinition)
	}
	if out.String() != "01m96run\n" {
		t.Errorf("stdout %q, want the run id alone", out.String())
	}
	want := "gantry: note: timeout: not read; use \"timeoutSeconds\": 60\ngantry: note: clustr: not read; did you mean \"cluster\"?\n"
	if errb.String() != want {
		t.Errorf("stderr\n%s\nwant\n%s", errb.String(), want)
	}
}
