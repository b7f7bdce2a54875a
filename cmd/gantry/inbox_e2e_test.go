package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// TestSubmitterSeesNoJobs: a submit-only user may subscribe to _INBOX.>,
// for the replies to its own requests. gantry's long-running roles (here
// gantry up's worker and server) receive on inboxes of their own prefix,
// so the jobs a worker fetches (a task's command and environment, with its
// secrets) and the submissions and reports the server takes do not reach
// the submitter.
func TestSubmitterSeesNoJobs(t *testing.T) {
	t.Parallel()
	in := startUpEnv(t, []string{"GANTRY_NATS_USER=op", "GANTRY_NATS_PASSWORD=op-secret"},
		"--user", "op", "--password", "op-secret", "--submit-user", "app", "--submit-password", "app-secret")
	url := strings.TrimPrefix(lastEnv(in.env, "GANTRY_NATS_URL="), "GANTRY_NATS_URL=")
	const secret = "s3cr3t-f0r-the-0perat0r"

	app, err := nats.Connect(url, nats.UserInfo("app", "app-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var mu sync.Mutex
	var seen []string
	if _, err := app.Subscribe("_INBOX.>", func(m *nats.Msg) {
		if bytes.Contains(m.Data, []byte(secret)) {
			mu.Lock()
			seen = append(seen, m.Subject)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := app.Flush(); err != nil {
		t.Fatal(err)
	}

	// The operator's own requests go to a prefix of the test's, so that
	// only gantry's roles are watched.
	op, err := nats.Connect(url, nats.UserInfo("op", "op-secret"), nats.CustomInboxPrefix("_TEST_INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	body := fmt.Sprintf(`{"taskDefinition":%s}`, inlineTaskJSON(in.image, "true "+secret))
	m, err := op.Request("gantry.api.runs.submit", []byte(body), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r jobs.Run
	if err := json.Unmarshal(m.Data, &r); err != nil || r.RunID == "" {
		t.Fatalf("submit: %v %s", err, m.Data)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		m, err := op.Request("gantry.api.runs.get", fmt.Appendf(nil, `{"runId":%q}`, r.RunID), 5*time.Second)
		if err == nil && json.Unmarshal(m.Data, &r) == nil && r.Status.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not ended within 2 minutes: %s", r.RunID, r.Status)
		}
	}
	if r.Status != jobs.StatusSucceeded {
		t.Fatalf("run %s: %s %s", r.RunID, r.Status, r.StoppedReason)
	}
	app.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Fatalf("the submitter's _INBOX.> subscription received the operator's task %d times, on %v", len(seen), seen)
	}
}
