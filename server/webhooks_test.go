package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/oklog/ulid/v2"
)

// receiver is an HTTP endpoint on loopback that records the POSTs it gets
// and answers each with the next status of its script (the last one
// ever after).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	script []int
	got    []received
	more   chan struct{}
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	rc := &receiver{script: script, more: make(chan struct{}, 1)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{r.Header.Clone(), body})
		status := rc.script[min(len(rc.got), len(rc.script))-1]
		rc.mu.Unlock()
		if r.Method != http.MethodPost {
			status = http.StatusMethodNotAllowed
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d\n", status)
		// A wake-up: wait reads got afresh after each, so one pending
		// is enough, and a receiver nobody waits on never blocks.
		select {
		case rc.more <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// wait waits until the receiver got n POSTs, and returns them.
func (rc *receiver) wait(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		rc.mu.Lock()
		got := append([]received(nil), rc.got...)
		rc.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-rc.more:
		case <-deadline:
			t.Fatalf("the receiver got %d POSTs within 10s, want %d", len(got), n)
		}
	}
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

func (e *apiEnv) addHook(body string) jobs.Webhook {
	e.t.Helper()
	var h jobs.Webhook
	e.ok("gantry.api.webhooks.add", body, &h)
	return h
}

// hook returns hook name as webhooks.list shows it.
func (e *apiEnv) hook(name string) jobs.WebhookInfo {
	e.t.Helper()
	var list WebhookListReply
	e.ok("gantry.api.webhooks.list", `{}`, &list)
	for _, h := range list.Webhooks {
		if h.Name == name {
			return h
		}
	}
	e.t.Fatalf("webhook %s not listed: %+v", name, list.Webhooks)
	return jobs.WebhookInfo{}
}

// waitHook polls hook name until ok holds.
func (e *apiEnv) waitHook(name, what string, ok func(jobs.WebhookInfo) bool) jobs.WebhookInfo {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		h := e.hook(name)
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("webhook %s is not %s after 10s: %+v last %+v", name, what, h, h.Last)
		}
	}
}

// endRun reports run id RUNNING then status, as its worker would.
func (e *apiEnv) endRun(id string, status jobs.Status, exit int) {
	e.t.Helper()
	q := e.queue()
	now := time.Now().UTC()
	for i, ev := range []*jobs.Event{
		{RunID: id, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Source: jobs.SourceWorker, Worker: "w1", Time: now},
		{RunID: id, Attempt: 1, Seq: 2, Status: status, Source: jobs.SourceWorker, Worker: "w1", Time: now.Add(time.Second),
			ExitCode: &exit, StopCode: jobs.StopEssentialExited, StoppedReason: "Essential container in task exited"},
	} {
		if err := q.Report(context.Background(), ev); err != nil {
			e.t.Fatalf("report event %d: %v", i, err)
		}
	}
	e.waitFor(id, "ended", ended)
}

// TestWebhookDeliversSignedFailure: a FAILED run's end is POSTed to the
// hook that hears of failures, signed with its secret, with the headers
// and body the README documents; a run that succeeds is not; the hook's
// listing shows the delivery.
func TestWebhookDeliversSignedFailure(t *testing.T) {
	e := startDepsAPI(t)
	rc := newReceiver(t, http.StatusNoContent)
	h := e.addHook(fmt.Sprintf(`{"name":"ops","url":%q,"secret":"s3cret","tags":{"team":"data"}}`, rc.URL))
	if len(h.On) != 1 || h.On[0] != jobs.StatusFailed || !h.Signed {
		t.Fatalf("added %+v: want on FAILED by default, signed", h)
	}
	ok := e.submitRun(`{"taskDefinition":"hello","tags":{"team":"data"}}`)
	untagged := e.submitRun(`{"taskDefinition":"hello"}`)
	failed := e.submitRun(`{"taskDefinition":"hello","tags":{"team":"data"}}`)
	e.endRun(ok.RunID, jobs.StatusSucceeded, 0)
	e.endRun(untagged.RunID, jobs.StatusFailed, 1)
	e.endRun(failed.RunID, jobs.StatusFailed, 3)

	got := rc.wait(t, 1)[0]
	for k, want := range map[string]string{
		"Content-Type":       "application/json",
		"User-Agent":         "gantry/" + Version,
		"X-Gantry-Event-Id":  "run/" + failed.RunID,
		"X-Gantry-Signature": Signature("s3cret", got.body),
	} {
		if v := got.header.Get(k); v != want {
			t.Errorf("header %s: %q, want %q", k, v, want)
		}
	}
	if !strings.HasPrefix(got.header.Get("X-Gantry-Signature"), "sha256=") || len(got.header.Get("X-Gantry-Signature")) != 7+64 {
		t.Errorf("signature %q", got.header.Get("X-Gantry-Signature"))
	}
	var ev map[string]any
	if err := json.Unmarshal(got.body, &ev); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"eventId": "run/" + failed.RunID, "kind": "run", "id": failed.RunID, "status": "FAILED",
		"stopCode": jobs.StopEssentialExited, "exitCode": 3.0, "taskDefinition": "hello:1"} {
		if ev[k] != want {
			t.Errorf("body %s: %v, want %v\n%s", k, ev[k], want, got.body)
		}
	}
	if ev["startedAt"] == nil || ev["stoppedAt"] == nil || !strings.Contains(fmt.Sprint(ev["summary"]), "FAILED, exit code 3") ||
		fmt.Sprint(ev["tags"]) != "map[team:data]" {
		t.Errorf("body: %s", got.body)
	}
	info := e.waitHook("ops", "delivered", func(h jobs.WebhookInfo) bool { return h.Delivered == 1 })
	if info.Pending != 0 || info.Failed != 0 || info.Last == nil || info.Last.Status != http.StatusNoContent || info.Last.Error != "" {
		t.Errorf("listed %+v last %+v", info, info.Last)
	}
	if n := rc.count(); n != 1 {
		t.Errorf("the receiver got %d POSTs, want 1 (the tagged failure only)", n)
	}
}

// TestWebhookRetriesThenGivesUp: a 500 is tried again after the backoff,
// with the same event id and body, until a 200; a receiver that never
// answers 2xx is given up once the delivery is older than the give-up
// age, counted failed, its error shown.
func TestWebhookRetriesThenGivesUp(t *testing.T) {
	e := startAPI(t)
	e.stop()
	e.opts = []Option{WithSweepInterval(time.Hour), WithWebhookRetry(20*time.Millisecond, 40*time.Millisecond, 300*time.Millisecond)}
	e.startServer()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	flaky := newReceiver(t, 500, 500, 200)
	down := newReceiver(t, 503)
	e.addHook(fmt.Sprintf(`{"name":"flaky","url":%q}`, flaky.URL))
	e.addHook(fmt.Sprintf(`{"name":"down","url":%q,"on":["failed"]}`, down.URL))
	r := e.submitRun(`{"taskDefinition":"hello"}`)
	e.endRun(r.RunID, jobs.StatusFailed, 1)

	got := flaky.wait(t, 3)
	for i, g := range got {
		if g.header.Get("X-Gantry-Event-Id") != "run/"+r.RunID || string(g.body) != string(got[0].body) {
			t.Errorf("try %d: event %s, body %s; want the first try's", i+1, g.header.Get("X-Gantry-Event-Id"), g.body)
		}
		if g.header.Get("X-Gantry-Signature") != "" {
			t.Errorf("try %d signed without a secret", i+1)
		}
	}
	info := e.waitHook("flaky", "delivered", func(h jobs.WebhookInfo) bool { return h.Delivered == 1 })
	if info.Pending != 0 || info.Last == nil || info.Last.Status != 200 {
		t.Errorf("flaky: %+v last %+v", info, info.Last)
	}
	info = e.waitHook("down", "given up", func(h jobs.WebhookInfo) bool { return h.Failed == 1 })
	if info.Pending != 0 || info.Delivered != 0 || info.Last == nil || info.Last.Status != 503 ||
		info.Last.Error != "HTTP 503 Service Unavailable: answer 503" {
		t.Errorf("down: %+v last %+v", info, info.Last)
	}
	if n := down.count(); n < 2 {
		t.Errorf("down got %d tries, want retries before giving up", n)
	}
}

// TestWebhookDeliveredAfterCrash: an end stored while no server sends
// (the server died right after storing it) is delivered by the next one.
func TestWebhookDeliveredAfterCrash(t *testing.T) {
	e := startDepsAPI(t)
	rc := newReceiver(t, 200)
	e.addHook(fmt.Sprintf(`{"name":"ops","url":%q,"on":["SUCCEEDED"]}`, rc.URL))
	r := e.submitRun(`{"taskDefinition":"hello"}`)
	e.stop()
	db := e.openStore()
	succeedStored(t, db, r.RunID) // the end and its delivery, in one transaction
	db.Close()
	if n := rc.count(); n != 0 {
		t.Fatalf("%d POSTs while no server ran", n)
	}
	e.startServer()
	got := rc.wait(t, 1)
	if id := got[0].header.Get("X-Gantry-Event-Id"); id != "run/"+r.RunID {
		t.Errorf("event %s, want run/%s", id, r.RunID)
	}
	e.waitHook("ops", "delivered", func(h jobs.WebhookInfo) bool { return h.Delivered == 1 && h.Pending == 0 })
}

// TestWebhookAPIRefusals: each bad field is named; unknown hooks are
// not_found; a name is taken once; webhooks.test shows the answer, good
// or bad; a delete drops what was pending.
func TestWebhookAPIRefusals(t *testing.T) {
	e := startDepsAPI(t)
	m := e.req(e.op, "gantry.api.webhooks.add", `{"name":"","url":"ftp://x","on":["RUNNING"],"kind":"stages","families":["etl:3"]}`)
	got := apiError(t, m)
	for _, w := range []string{"name: empty", `url: "ftp://x": scheme "ftp": want http or https`,
		`on[0]: "RUNNING": not an end status`, `kind: "stages": want runs or pipelineRuns`, "families[0]"} {
		if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, w) {
			t.Errorf("add: %s %q lacks %q", got.Code, got.Message, w)
		}
	}
	for _, ep := range []string{"delete", "test"} {
		if got := apiError(t, e.req(e.op, "gantry.api.webhooks."+ep, `{"name":"nope"}`)); got.Code != jobs.CodeNotFound ||
			!strings.Contains(got.Message, "webhook nope: not found") {
			t.Errorf("%s of an unknown hook: %+v", ep, got)
		}
	}
	bad := newReceiver(t, 500)
	if h := e.addHook(fmt.Sprintf(`{"name":"prs","url":%q,"kind":"Pipelines"}`, bad.URL)); h.Kind != jobs.WebhookOnlyPipelineRuns {
		t.Errorf("kind Pipelines stored as %q, want pipelineRuns", h.Kind)
	}
	e.ok("gantry.api.webhooks.delete", `{"name":"prs"}`, nil)
	e.addHook(fmt.Sprintf(`{"name":"ops","url":%q,"secret":"k"}`, bad.URL))
	if got := apiError(t, e.req(e.op, "gantry.api.webhooks.add", fmt.Sprintf(`{"name":"ops","url":%q}`, bad.URL))); got.Code != jobs.CodeAlreadyExists {
		t.Errorf("ops added twice: %+v", got)
	}
	var tr WebhookTestReply
	e.ok("gantry.api.webhooks.test", `{"name":"ops"}`, &tr)
	if tr.Delivered || tr.Status != 500 || tr.Error != "HTTP 500 Internal Server Error: answer 500" || tr.Body != "answer 500\n" ||
		!strings.HasPrefix(tr.EventID, "test/") {
		t.Errorf("test: %+v", tr)
	}
	sent := bad.wait(t, 1)[0]
	if sent.header.Get("X-Gantry-Signature") != Signature("k", sent.body) || !strings.Contains(string(sent.body), `"status":"FAILED"`) {
		t.Errorf("test event: %s %s", sent.header, sent.body)
	}
	if h := e.hook("ops"); h.Last != nil || h.Delivered != 0 {
		t.Errorf("webhooks.test was recorded: %+v", h)
	}
	// A hook whose receiver is gone: the answer says so.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	e.addHook(fmt.Sprintf(`{"name":"gone","url":%q}`, gone.URL))
	tr = WebhookTestReply{}
	e.ok("gantry.api.webhooks.test", `{"name":"gone"}`, &tr)
	// Briefly, as gantry webhook ls cuts it: the address is the hook's.
	if tr.Delivered || tr.Status != 0 || tr.Error != "dial: connect: connection refused" {
		t.Errorf("test of a closed port: %+v", tr)
	}

	// A pending delivery goes with its hook.
	r := e.submitRun(`{"taskDefinition":"hello"}`)
	e.endRun(r.RunID, jobs.StatusFailed, 1)
	e.waitHook("gone", "trying", func(h jobs.WebhookInfo) bool { return h.Last != nil && h.Pending == 1 })
	var del WebhookDeleteReply
	e.ok("gantry.api.webhooks.delete", `{"name":"gone"}`, &del)
	if !del.Deleted || del.Dropped != 1 {
		t.Errorf("delete: %+v, want 1 dropped", del)
	}
}

// TestWebhookURLPasswordNotShown: a password in a hook's URL is sent (as
// basic auth) but never shown again: the add's reply, webhooks.list and
// webhooks.test read xxxxx in its place.
func TestWebhookURLPasswordNotShown(t *testing.T) {
	e := startDepsAPI(t)
	var auth []string
	var mu sync.Mutex
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		mu.Lock()
		auth = append(auth, u+":"+p)
		mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	withPw := strings.Replace(rc.URL, "http://", "http://ops:hunter2@", 1)
	shown := strings.Replace(rc.URL, "http://", "http://ops:xxxxx@", 1) + "/x?a=1"
	if h := e.addHook(fmt.Sprintf(`{"name":"ops","url":%q}`, withPw+"/x?a=1")); h.URL != shown {
		t.Errorf("add replied url %q, want %q", h.URL, shown)
	}
	if h := e.hook("ops"); h.URL != shown {
		t.Errorf("listed url %q, want %q", h.URL, shown)
	}
	var tr WebhookTestReply
	e.ok("gantry.api.webhooks.test", `{"name":"ops"}`, &tr)
	if tr.URL != shown || !tr.Delivered {
		t.Errorf("test: %+v, want url %q, delivered", tr, shown)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(auth) != 1 || auth[0] != "ops:hunter2" {
		t.Errorf("the receiver saw basic auth %q, want ops:hunter2", auth)
	}
}

// TestWebhookDownReceiverHoldsNoOneUp: a receiver that stops answering
// holds at most webhookPerHook POSTs: another hook's deliveries go on
// meanwhile. Once it answers (503), its hook backs off as a whole: its
// other deliveries wait out the delay instead of each being POSTed.
func TestWebhookDownReceiverHoldsNoOneUp(t *testing.T) {
	e := startAPI(t)
	e.stop()
	e.opts = []Option{WithSweepInterval(time.Hour), WithWebhookRetry(time.Hour, time.Hour, 24*time.Hour)}
	e.startServer()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	release := make(chan struct{})
	var (
		mu   sync.Mutex
		hung int
	)
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hung++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(stuck.Close)
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	up := newReceiver(t, 200)
	// "a-stuck" sorts first: its rows come before up's in each end's.
	e.addHook(fmt.Sprintf(`{"name":"a-stuck","url":%q}`, stuck.URL))
	e.addHook(fmt.Sprintf(`{"name":"up","url":%q}`, up.URL))
	const n = webhookConcurrency + 2
	for range n {
		r := e.submitRun(`{"taskDefinition":"hello"}`)
		e.endRun(r.RunID, jobs.StatusFailed, 1)
	}
	up.wait(t, n) // fails within 10s if the stuck receiver holds every POST
	mu.Lock()
	if hung > webhookPerHook {
		t.Errorf("the stuck receiver holds %d POSTs, want at most %d", hung, webhookPerHook)
	}
	mu.Unlock()

	// Answered 503, its hook backs off an hour: none of its n deliveries
	// is POSTed again meanwhile, however many were due.
	close(release)
	released = true
	info := e.waitHook("a-stuck", "failed", func(h jobs.WebhookInfo) bool { return h.Last != nil && h.Last.Status == 503 })
	for range n {
		r := e.submitRun(`{"taskDefinition":"hello"}`)
		e.endRun(r.RunID, jobs.StatusFailed, 1)
	}
	up.wait(t, 2*n) // the sender went past the stuck hook's due deliveries
	mu.Lock()
	defer mu.Unlock()
	if hung > webhookPerHook {
		t.Errorf("the stuck receiver got %d POSTs, want %d at most: its hook backs off as a whole (%+v)", hung, webhookPerHook, info)
	}
}

// TestWebhookBackoffSurvivesRestart: a hook whose try failed backs off
// as a whole, and a server started again waits out the same delay before
// it tries the hook's other deliveries, then tries them one at a time.
// Before, the backoff was in memory only: every restart POSTed each
// failing hook's due deliveries (up to webhookPerHook) at once.
func TestWebhookBackoffSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	down := newReceiver(t, http.StatusServiceUnavailable)
	h := jobs.Webhook{Name: "down", URL: down.URL, On: []jobs.Status{jobs.StatusSucceeded}, CreatedAt: now}
	h.Normalize()
	if err := db.AddWebhook(ctx, &h); err != nil {
		t.Fatal(err)
	}
	end := func() { // a run's end, and its delivery to the hook
		t.Helper()
		r := &jobs.Run{RunID: strings.ToLower(ulid.Make().String()), Status: jobs.StatusQueued, TaskDefinition: "hello:1",
			Cluster: "default", CreatedAt: now, Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}}}
		if _, _, err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		succeedStored(t, db, r.RunID)
	}
	const delay = 30 * time.Second // under idleWait: the wait a round returns is the backoff's
	opts := []Option{WithClock(clock), WithWebhookRetry(delay, time.Hour, 24*time.Hour)}
	// round runs one round of a sender and waits for the tries it started.
	round := func(s *Server, sd *sender) (started int, wait time.Duration) {
		t.Helper()
		var wg sync.WaitGroup
		wait = s.startDueWebhooks(ctx, sd, &wg)
		started = len(sd.inFlight)
		wg.Wait()
		for range started {
			sd.ended(<-sd.done, s.cfg.webhookRetry)
		}
		return started, wait
	}

	end()
	first := New(db, q, opts...)
	sd := first.newSender(ctx)
	if n, _ := round(first, sd); n != 1 || down.count() != 1 {
		t.Fatalf("first round: %d tries, %d POSTs; want 1", n, down.count())
	}
	end() // due at once, but its hook backs off
	if n, wait := round(first, sd); n != 0 || wait != delay {
		t.Fatalf("the same server: %d tries, next in %s; want none before %s", n, wait, delay)
	}

	// A server started again (the first one gone) waits as the first
	// would have.
	again := New(db, q, opts...)
	sd = again.newSender(ctx)
	if n, wait := round(again, sd); n != 0 || wait != delay || down.count() != 1 {
		t.Fatalf("after a restart: %d tries (%d POSTs), next in %s; want none before %s", n, down.count(), wait, delay)
	}
	mu.Lock()
	now = now.Add(delay)
	mu.Unlock()
	if n, _ := round(again, sd); n != 1 || down.count() != 2 {
		t.Fatalf("once the delay passed: %d tries (%d POSTs); want 1", n, down.count())
	}
	// Delivered, the hook is tried at once after a restart.
	down.mu.Lock()
	down.script = []int{http.StatusOK}
	down.mu.Unlock()
	mu.Lock()
	now = now.Add(2 * delay)
	mu.Unlock()
	if n, _ := round(again, sd); n != 1 {
		t.Fatalf("after the second delay: %d tries, want 1", n)
	}
	end()
	sd = New(db, q, opts...).newSender(ctx)
	if len(sd.hooks) != 0 {
		t.Fatalf("a hook delivered to backs off after a restart: %+v", sd.hooks[db.WebhookIDs()[0]])
	}
}

// A receiver that answers webhooks.test 2xx again has its hook's
// deliveries tried at once, not after the backoff of its failures, and
// a restarted server does not back it off either.
func TestWebhookTestEndsBackoff(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	now := time.Now().UTC()
	clock := func() time.Time { return now } // never moves: no backoff runs out
	down := newReceiver(t, http.StatusServiceUnavailable)
	h := jobs.Webhook{Name: "down", URL: down.URL, On: []jobs.Status{jobs.StatusSucceeded}, CreatedAt: now}
	h.Normalize()
	if err := db.AddWebhook(ctx, &h); err != nil {
		t.Fatal(err)
	}
	end := func() {
		t.Helper()
		r := &jobs.Run{RunID: strings.ToLower(ulid.Make().String()), Status: jobs.StatusQueued, TaskDefinition: "hello:1",
			Cluster: "default", CreatedAt: now, Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}}}
		if _, _, err := db.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		succeedStored(t, db, r.RunID)
	}
	s := New(db, q, WithClock(clock), WithWebhookRetry(time.Hour, time.Hour, 24*time.Hour))
	sd := s.newSender(ctx)
	round := func() int {
		t.Helper()
		var wg sync.WaitGroup
		s.startDueWebhooks(ctx, sd, &wg)
		started := len(sd.inFlight)
		wg.Wait()
		for range started {
			sd.ended(<-sd.done, s.cfg.webhookRetry)
		}
		return started
	}
	end()
	end()
	if n := round(); n != 2 || down.count() != 2 {
		t.Fatalf("first round: %d tries, %d POSTs; want 2", n, down.count())
	}
	if n := round(); n != 0 {
		t.Fatalf("during the backoff: %d tries; want none", n)
	}

	down.mu.Lock()
	down.script = []int{http.StatusOK}
	down.mu.Unlock()
	reply, err := s.apiWebhookTest(ctx, []byte(`{"name":"down"}`))
	if err != nil || !reply.(WebhookTestReply).Delivered {
		t.Fatalf("test: %+v, %v; want delivered", reply, err)
	}
	select {
	case <-s.answered.kick:
		ids := s.answered.take()
		if len(ids) != 1 {
			t.Fatalf("hooks answered: %v; want the one tested", ids)
		}
		sd.answered(ids[0])
	default:
		t.Fatal("the sender was not told the hook answered")
	}
	if n := round(); n != 2 {
		t.Fatalf("after a 2xx test: %d tries; want both deliveries at once", n)
	}
	if got, err := db.FailingHooks(ctx); err != nil || len(got) != 0 {
		t.Fatalf("failing hooks after deliveries: %v, %v; want none", got, err)
	}

	// The store forgets the failures too: a server started after a
	// test (and before any delivery) does not back the hook off.
	down.mu.Lock()
	down.script = []int{http.StatusServiceUnavailable}
	down.mu.Unlock()
	end()
	if n := round(); n != 1 {
		t.Fatalf("a new end: %d tries; want 1", n)
	}
	down.mu.Lock()
	down.script = []int{http.StatusOK}
	down.mu.Unlock()
	if _, err := s.apiWebhookTest(ctx, []byte(`{"name":"down"}`)); err != nil {
		t.Fatal(err)
	}
	again := New(db, q, WithClock(clock), WithWebhookRetry(time.Hour, time.Hour, 24*time.Hour))
	if sd2 := again.newSender(ctx); len(sd2.hooks) != 0 {
		t.Fatalf("a restarted server backs off a hook that answered its test: %+v", sd2.hooks)
	}
	if _, err := s.apiWebhookTest(ctx, []byte(`{"name":"nope"}`)); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("test of an unknown hook: %v", err)
	}
}

// TestWebhookLeavesArrayChildrenOut: an array run whose children all fail
// tells a hook with arrayChildren false once, by its parent's end (which
// counts the children and names the first that failed), and a plain
// run's failure as before; a hook without it hears of every child and of
// the parent. webhooks.add and webhooks.list show arrayChildren false on
// the first hook alone, and a hook on pipeline runs alone is refused it,
// naming the field.
func TestWebhookLeavesArrayChildrenOut(t *testing.T) {
	t.Parallel()
	e := startDepsAPI(t)
	q := e.queue()
	all, oncall := newReceiver(t, 200), newReceiver(t, 200)
	e.addHook(fmt.Sprintf(`{"name":"all","url":%q}`, all.URL))
	if h := e.addHook(fmt.Sprintf(`{"name":"oncall","url":%q,"arrayChildren":false}`, oncall.URL)); h.HearsArrayChildren() {
		t.Errorf("added %+v: want arrayChildren false", h)
	}
	if h := e.addHook(fmt.Sprintf(`{"name":"default","url":%q,"arrayChildren":true}`, all.URL)); h.ArrayChildren != nil {
		t.Errorf("arrayChildren true added as %v: want left out, the default", *h.ArrayChildren)
	}
	e.ok("gantry.api.webhooks.delete", `{"name":"default"}`, nil)
	got := apiError(t, e.req(e.op, "gantry.api.webhooks.add",
		fmt.Sprintf(`{"name":"prs","url":%q,"kind":"pipelineRuns","arrayChildren":false}`, oncall.URL)))
	if got.Code != jobs.CodeInvalidArgument || !strings.Contains(got.Message, "arrayChildren: no pipeline run is an array run's child") {
		t.Errorf("kind pipelineRuns without array children: %+v", got)
	}
	var listed struct {
		Webhooks []map[string]any `json:"webhooks"`
	}
	e.ok("gantry.api.webhooks.list", `{}`, &listed)
	for _, h := range listed.Webhooks {
		v, ok := h["arrayChildren"]
		if want := h["name"] == "oncall"; ok != want || ok && v != false {
			t.Errorf("webhooks.list: hook %v has arrayChildren %v (%v); want it %v", h["name"], v, ok, want)
		}
	}

	const n = 100
	p := e.submitRun(fmt.Sprintf(`{"taskDefinition":"hello","arrayProperties":{"size":%d}}`, n))
	now := time.Now().UTC()
	exit := 3
	for i := range n {
		id := jobs.ArrayChildID(p.RunID, i)
		for _, ev := range []*jobs.Event{
			{RunID: id, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Source: jobs.SourceWorker, Worker: "w1", Time: now},
			{RunID: id, Attempt: 1, Seq: 2, Status: jobs.StatusFailed, Source: jobs.SourceWorker, Worker: "w1", Time: now.Add(time.Second),
				ExitCode: &exit, StopCode: jobs.StopEssentialExited, StoppedReason: "Essential container in task exited"},
		} {
			if err := q.Report(context.Background(), ev); err != nil {
				t.Fatalf("report %s: %v", id, err)
			}
		}
	}
	e.waitFor(p.RunID, "ended", ended)
	plain := e.submitRun(`{"taskDefinition":"hello"}`)
	e.endRun(plain.RunID, jobs.StatusFailed, 1)

	// Every end is stored with its deliveries: once each hook has
	// delivered what it has, it gets no more.
	heard := all.wait(t, n+2)
	e.waitHook("all", "done", func(h jobs.WebhookInfo) bool { return h.Delivered == n+2 && h.Pending == 0 })
	e.waitHook("oncall", "done", func(h jobs.WebhookInfo) bool { return h.Delivered == 2 && h.Pending == 0 })
	children := 0
	for _, g := range heard {
		if strings.Contains(string(g.body), `"arrayJobId":"`+p.RunID+`"`) {
			children++
		}
	}
	if children != n || all.count() != n+2 {
		t.Errorf("the hook without the option got %d POSTs, %d of children; want %d, %d", all.count(), children, n+2, n)
	}
	sent := oncall.wait(t, 2)
	if len(sent) != 2 {
		t.Fatalf("oncall got %d POSTs, want 2: the parent and the plain run", len(sent))
	}
	var parent, other jobs.WebhookEvent
	if err := json.Unmarshal(sent[0].body, &parent); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sent[1].body, &other); err != nil {
		t.Fatal(err)
	}
	if parent.ID != p.RunID || parent.Status != jobs.StatusFailed || parent.ArrayJobID != "" || parent.ArrayProperties == nil ||
		parent.ArrayProperties.StatusSummary[jobs.StatusFailed] != n ||
		!strings.Contains(parent.Reason, fmt.Sprintf("%d of %d child runs did not succeed", n, n)) ||
		parent.ExitCode == nil || *parent.ExitCode != exit {
		t.Errorf("oncall's first POST, want the parent's end:\n%s", sent[0].body)
	}
	if other.ID != plain.RunID {
		t.Errorf("oncall's second POST, want the plain run's end:\n%s", sent[1].body)
	}
}
