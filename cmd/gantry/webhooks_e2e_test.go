package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestWebhookCLI: gantry webhook add with a secret file, test (the
// answer printed, exit 1 when not 2xx), a run that fails POSTed signed to
// the receiver, ls showing the delivery, delete.
func TestWebhookCLI(t *testing.T) {
	t.Parallel()
	type post struct {
		event, sig string
		body       []byte
	}
	posts := make(chan post, 10)
	var answer atomic.Int32
	answer.Store(http.StatusOK)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		posts <- post{r.Header.Get("X-Gantry-Event-Id"), r.Header.Get("X-Gantry-Signature"), body}
		if strings.HasPrefix(r.Header.Get("X-Gantry-Event-Id"), "test/") {
			w.WriteHeader(int(answer.Load()))
		}
		io.WriteString(w, "thanks\n")
	}))
	t.Cleanup(rc.Close)
	secret := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secret, []byte("k3y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startUp(t)
	if out, errOut, code := in.gantry("webhook", "add", "ops", "--url", rc.URL, "--secret-file", secret); code != 0 ||
		!strings.Contains(out, "FAILED") || !strings.Contains(out, "signed") {
		t.Fatalf("webhook add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, _, code := in.gantry("webhook", "test", "ops"); code != 0 || out != "POST "+rc.URL+": 200 (delivered)\nthanks\n" {
		t.Errorf("webhook test: exit %d, %q", code, out)
	}
	<-posts
	answer.Store(http.StatusTeapot)
	if out, _, code := in.gantry("webhook", "test", "ops"); code != 1 || out != "POST "+rc.URL+": 418 I'm a teapot (not delivered: only a 2xx answer delivers)\nthanks\n" {
		t.Errorf("webhook test of a 418: exit %d, %q", code, out)
	}
	<-posts

	id := in.detached("run", "-d", "--image", in.image, "--", "sh", "-c", "exit 3")
	var got post
	select {
	case got = <-posts:
	case <-time.After(30 * time.Second):
		t.Fatalf("no POST within 30s of run %s", id)
	}
	m := hmac.New(sha256.New, []byte("k3y"))
	m.Write(got.body)
	var ev jobs.WebhookEvent
	if err := json.Unmarshal(got.body, &ev); err != nil || ev.ID != id || ev.Status != jobs.StatusFailed || ev.ExitCode == nil || *ev.ExitCode != 3 ||
		got.event != "run/"+id || got.sig != "sha256="+hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("POST: event %s signature %s (%v)\n%s", got.event, got.sig, err, got.body)
	}
	var hooks []jobs.WebhookInfo
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _, _ := in.gantry("webhook", "ls", "-o", "json")
		if err := json.Unmarshal([]byte(out), &hooks); err == nil && len(hooks) == 1 && hooks[0].Delivered == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook ls -o json: no delivery recorded in 10s:\n%s", out)
		}
	}
	if ls, _, _ := in.gantry("webhook", "ls"); !strings.Contains(ls, "PENDING") || !strings.Contains(ls, "200 ") {
		t.Errorf("webhook ls:\n%s", ls)
	}
	// A --pipeline naming no pipeline is kept, with a note: a typo would
	// otherwise never be told.
	if _, errOut, code := in.gantry("webhook", "add", "typo", "--url", rc.URL, "--pipeline", "daily-slaes"); code != 0 ||
		errOut != "gantry: note: no pipeline daily-slaes (gantry pipeline ls lists them): webhook typo hears of its runs once one is applied\n" {
		t.Errorf("webhook add --pipeline daily-slaes: exit %d, stderr %q", code, errOut)
	}
	if out, errOut, code := in.gantry("webhook", "delete", "ops"); code != 0 || out != "webhook ops deleted (0 pending deliveries dropped)\n" {
		t.Errorf("webhook delete: exit %d, %q %q", code, out, errOut)
	}
}
