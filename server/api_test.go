package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/storage"
	"github.com/gantry-dev/gantry/workerq"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// These tests drive every endpoint over a real (embedded) NATS server with
// auth on: an operator, who may do everything, and a submit-only user.
// No Docker: runs stay queued, which is all the API needs.

const (
	opUser, opPass   = "op", "op-secret"
	subUser, subPass = "submitter", "sub-secret"
)

type apiEnv struct {
	t       *testing.T
	ns      *natsserver.Server
	data    string
	op, sub *nats.Conn
	subErrs chan error // the submit user's asynchronous errors
	stop    func()
	opts    []Option // of the servers startServer starts
	srv     *Server  // the server startServer started last
}

// openStore opens the store of e's server, stopped, for a test to read or
// change by hand; the caller closes it.
func (e *apiEnv) openStore() *storage.DB {
	e.t.Helper()
	db, err := storage.Open(context.Background(), filepath.Join(e.data, "gantry.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	return db
}

// queue is a queue on the operator's connection.
func (e *apiEnv) queue() *queue.Queue {
	e.t.Helper()
	q, err := queue.New(e.op)
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

func startAPI(t *testing.T) *apiEnv {
	t.Helper()
	return startAPIOn(t, t.TempDir())
}

// startAPIOn is startAPI with the server's data directory data (its store
// data/gantry.db) and options.
func startAPIOn(t *testing.T, data string, opts ...Option) *apiEnv {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), User: opUser, Password: opPass,
		SubmitUser: subUser, SubmitPassword: subPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	e := &apiEnv{t: t, ns: ns, data: data, subErrs: make(chan error, 100), opts: opts}
	e.op = e.dial(opUser, opPass)
	e.sub, err = nats.Connect(ns.ClientURL(), nats.UserInfo(subUser, subPass),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case e.subErrs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.sub.Close)
	e.startServer()
	t.Cleanup(func() { e.stop() })
	return e
}

func (e *apiEnv) dial(user, pass string) *nats.Conn {
	e.t.Helper()
	nc, err := nats.Connect(e.ns.ClientURL(), nats.UserInfo(user, pass))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

// startServer runs a server on the data directory until e.stop.
func (e *apiEnv) startServer() {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := storage.Open(ctx, filepath.Join(e.data, "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	// Closed by e.stop, after the server stopped: a cleanup of its own
	// (e.dial's) would run before e.stop's for a server started again by
	// the test, and the server would fail on its connection closed.
	nc, err := nats.Connect(e.ns.ClientURL(), nats.UserInfo(opUser, opPass))
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	srv := New(db, q, e.opts...)
	e.srv = srv
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
			nc.Close()
			db.Close()
		})
	}
	waitForAPI(t, e.op)
}

// waitForAPI waits until the API answers runs.list, the last endpoint
// added (see service).
func waitForAPI(t *testing.T, nc *nats.Conn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := nc.Request("gantry.api.runs.list", nil, time.Second); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the API did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// req sends a request as nc and returns the reply.
func (e *apiEnv) req(nc *nats.Conn, subject string, body string) *nats.Msg {
	e.t.Helper()
	// Long enough for a request that does much under -race on a loaded
	// 2-core machine, as gantry's client waits: runs.stop of an array of
	// 503 children, a child at a time, took 4.2 s alone there and more
	// than 5 s beside other tests.
	m, err := nc.Request(subject, []byte(body), 30*time.Second)
	if err != nil {
		e.t.Fatalf("%s %s: %v", subject, body, err)
	}
	return m
}

// ok sends a request as the operator and decodes a successful reply.
func (e *apiEnv) ok(subject, body string, out any) {
	e.t.Helper()
	m := e.req(e.op, subject, body)
	if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
		e.t.Fatalf("%s %s: error %s: %s", subject, body, code, m.Data)
	}
	if out != nil {
		if err := json.Unmarshal(m.Data, out); err != nil {
			e.t.Fatalf("%s: %v\n%s", subject, err, m.Data)
		}
	}
}

// apiError decodes an error reply and checks its headers agree with it.
func apiError(t *testing.T, m *nats.Msg) jobs.Error {
	t.Helper()
	var reply ErrorReply
	if err := json.Unmarshal(m.Data, &reply); err != nil || reply.Error.Code == "" {
		t.Fatalf("not an error reply: %s", m.Data)
	}
	if got, want := m.Header.Get(micro.ErrorCodeHeader), microErrorCode(reply.Error.Code); got != want {
		t.Errorf("%s header %q, want %q", micro.ErrorCodeHeader, got, want)
	}
	if h := m.Header.Get(micro.ErrorHeader); !strings.HasPrefix(h, reply.Error.Code+": ") {
		t.Errorf("%s header %q does not start with the code %s", micro.ErrorHeader, h, reply.Error.Code)
	}
	return reply.Error
}

const helloTaskDef = `{"family":"hello","containerDefinitions":[{"name":"main","image":"gantry/samples:latest","command":["true"],"memory":64}]}`

const pipelineYAML = `name: nightly
parameters: {day: "2026-01-01"}
schedule: {cron: "0 * * * *", suspend: true}
stages:
  - name: only
    taskDefinition: hello
`

func TestEveryEndpoint(t *testing.T) {
	e := startAPI(t)
	ctx := context.Background()
	// Fixtures: a task definition, runs, a live worker, a pipeline.
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var run, toStop jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &run)
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &toStop)
	q, _ := queue.New(e.op)
	now := time.Now().UTC()
	if err := q.Beat(ctx, jobs.WorkerInfo{ID: "w1", Cluster: "default", State: jobs.WorkerActive,
		Capacity: jobs.Resources{CPU: 1024, Memory: 1024, Slots: 1}, StartedAt: now, LastHeartbeat: now}); err != nil {
		t.Fatal(err)
	}
	yamlJSON, _ := json.Marshal(map[string][]byte{"data": []byte(pipelineYAML)})
	e.ok("gantry.api.pipelines.apply", string(yamlJSON), nil)
	doomed, _ := json.Marshal(map[string][]byte{"data": []byte(strings.Replace(pipelineYAML, "nightly", "doomed", 1))})
	e.ok("gantry.api.pipelines.apply", string(doomed), nil)
	var pr, prStop jobs.PipelineRun
	e.ok("gantry.api.pipelines.run", `{"name":"nightly"}`, &pr)
	e.ok("gantry.api.pipelines.run", `{"name":"nightly"}`, &prStop)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(receiver.Close)

	good := map[string]string{
		"runs.submit":         `{"taskDefinition":"hello","idempotencyKey":"k1"}`,
		"runs.get":            fmt.Sprintf(`{"runId":%q}`, run.RunID),
		"runs.status":         fmt.Sprintf(`{"runId":%q}`, run.RunID),
		"runs.list":           `{"all":true,"limit":1,"taskDefinition":"hello"}`,
		"runs.stop":           fmt.Sprintf(`{"runId":%q}`, toStop.RunID),
		"runs.rerun":          fmt.Sprintf(`{"runId":%q,"priority":"high"}`, run.RunID),
		"runs.logs":           fmt.Sprintf(`{"runId":%q}`, run.RunID),
		"workers.list":        `{}`,
		"workers.get":         `{"id":"w1"}`,
		"workers.drain":       `{"id":"w1"}`,
		"workers.activate":    `{"id":"w1"}`,
		"taskdefs.register":   helloTaskDef,
		"taskdefs.list":       `{}`,
		"taskdefs.describe":   `{"taskDefinition":"hello"}`,
		"taskdefs.deregister": `{"taskDefinition":"hello:2"}`,
		"pipelines.apply":     string(yamlJSON),
		"pipelines.list":      `{}`,
		"pipelines.describe":  `{"name":"nightly"}`,
		"pipelines.run":       `{"name":"nightly","parameters":{"day":"2026-02-02"}}`,
		"pipelines.runs":      `{"name":"nightly"}`,
		"pipelines.get":       fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID),
		"pipelines.status":    fmt.Sprintf(`{"pipelineRunId":%q}`, pr.PipelineRunID),
		"pipelines.stop":      fmt.Sprintf(`{"pipelineRunId":%q}`, prStop.PipelineRunID),
		"pipelines.backfill":  `{"name":"nightly","from":"2026-01-01T00:00:00Z","to":"2026-01-01T02:00:00Z"}`,
		"pipelines.retry":     fmt.Sprintf(`{"pipelineRunId":%q}`, prStop.PipelineRunID), // CANCELED by pipelines.stop
		"schedules.list":      `{}`,
		"schedules.suspend":   `{"name":"nightly"}`,
		"schedules.resume":    `{"name":"nightly"}`,
		"schedules.trigger":   `{"name":"nightly"}`,
		"schedules.create":    `{"taskDefinition":"hello","schedule":{"cron":"@daily","suspend":true}}`,
		"pipelines.delete":    `{"name":"doomed"}`,
		"schedules.delete":    `{"name":"hello"}`, // the task schedule schedules.create made
		"pools.set":           `{"name":"warehouse","slots":2}`,
		"pools.list":          `{}`,
		"pools.delete":        `{"name":"warehouse"}`, // pools.set made it
		"webhooks.add":        fmt.Sprintf(`{"name":"ops","url":%q,"on":["FAILED"],"secret":"s"}`, receiver.URL),
		"webhooks.list":       `{}`,
		"webhooks.test":       `{"name":"ops"}`, // webhooks.add made it
		"webhooks.delete":     `{"name":"ops"}`,
		"admin.backup":        `{}`,
	}
	// Requests the submit-only user may make; it is refused everything
	// else, runs.get and pipelines.get included (runs.status and
	// pipelines.status are its views of runs and pipeline runs), and
	// runs.rerun (which runs another user's spec again).
	submitterMay := map[string]bool{"runs.submit": true, "runs.status": true, "pipelines.status": true}
	order := []string{"runs.submit", "runs.get", "runs.status", "runs.list", "runs.stop", "runs.rerun", "runs.logs",
		"workers.list", "workers.get", "workers.drain", "workers.activate",
		"taskdefs.register", "taskdefs.list", "taskdefs.describe", "taskdefs.deregister",
		"pipelines.apply", "pipelines.list", "pipelines.describe", "pipelines.run", "pipelines.runs",
		"pipelines.get", "pipelines.status", "pipelines.stop", "pipelines.retry", "pipelines.backfill",
		"schedules.list", "schedules.suspend", "schedules.resume", "schedules.trigger", "schedules.create",
		"pipelines.delete", "schedules.delete", "pools.set", "pools.list", "pools.delete",
		"webhooks.add", "webhooks.list", "webhooks.test", "webhooks.delete", "admin.backup"}
	if len(order) != len(endpointSpecs) || len(good) != len(endpointSpecs) {
		t.Fatalf("the test covers %d endpoints (%d good requests), the service has %d", len(order), len(good), len(endpointSpecs))
	}
	for _, ep := range order {
		subject := "gantry.api." + ep
		t.Run(ep, func(t *testing.T) {
			t.Run("good", func(t *testing.T) {
				m := e.req(e.op, subject, good[ep])
				if m.Header.Get(micro.ErrorCodeHeader) != "" {
					t.Fatalf("error reply: %s", m.Data)
				}
				if !json.Valid(m.Data) || strings.Contains(string(m.Data), `"error":{`) {
					t.Fatalf("reply: %s", m.Data)
				}
			})
			t.Run("empty", func(t *testing.T) {
				if !endpointSpecs[ep].emptyOK {
					return
				}
				// docs/nats-api.md marks these "empty ok": an empty body is {}.
				if m := e.req(e.op, subject, ""); m.Header.Get(micro.ErrorCodeHeader) != "" {
					t.Fatalf("an empty request was refused: %s", m.Data)
				}
			})
			t.Run("malformed", func(t *testing.T) {
				for _, body := range []string{`{"runId":`, `[1,2]`, `not json`} {
					got := apiError(t, e.req(e.op, subject, body))
					if got.Code != jobs.CodeInvalidArgument {
						t.Errorf("%s: code %s (%s), want invalid_argument", body, got.Code, got.Message)
					}
				}
			})
			t.Run("not allowed", func(t *testing.T) {
				if submitterMay[ep] {
					m := e.req(e.sub, subject, good[ep])
					if m.Header.Get(micro.ErrorCodeHeader) != "" {
						t.Fatalf("the submitter was refused: %s", m.Data)
					}
					return
				}
				_, err := e.sub.Request(subject, []byte(good[ep]), 300*time.Millisecond)
				if err == nil {
					t.Fatal("the submit-only user got a reply")
				}
				select {
				case aerr := <-e.subErrs:
					if !errors.Is(aerr, nats.ErrPermissionViolation) || !strings.Contains(aerr.Error(), subject) {
						t.Fatalf("async error %v, want a permissions violation on %s", aerr, subject)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("no permissions violation reported")
				}
			})
		})
	}
	t.Run("anonymous connection refused", func(t *testing.T) {
		if nc, err := nats.Connect(e.ns.ClientURL()); err == nil {
			nc.Close()
			t.Fatal("connected without credentials")
		}
	})
}

func TestErrorCodes(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.ok("gantry.api.taskdefs.deregister", `{"taskDefinition":"hello:1"}`, nil)
	tests := []struct {
		subject, body, code string
	}{
		{"runs.get", `{"runId":"01jzzzzzzzzzzzzzzzzzzzzzzz"}`, jobs.CodeNotFound},
		{"runs.get", `{}`, jobs.CodeInvalidArgument},
		{"runs.get", ``, jobs.CodeInvalidArgument},
		{"runs.submit", `{"taskDefinition":"nosuch"}`, jobs.CodeNotFound},
		{"runs.submit", `{"taskDefinition":"hello:1"}`, jobs.CodeFailedPrecond},
		// A stage's context is gantry's to set: with it a submitter could
		// read or replace a pipeline's stage files.
		{"runs.submit", `{"taskDefinition":"hello","stage":{"pipelineRunId":"pr-x","stage":"extract"}}`, jobs.CodeInvalidArgument},
		{"runs.submit", `{"taskDefinition":"hello","idempotencyKey":"pipeline/pr-x/extract"}`, jobs.CodeInvalidArgument},
		{"runs.list", `{"statuses":["BOGUS"]}`, jobs.CodeInvalidArgument},
		{"taskdefs.describe", `{"taskDefinition":"nosuch"}`, jobs.CodeNotFound},
		{"workers.get", `{"id":"nosuch"}`, jobs.CodeNotFound},
		{"workers.get", `{"id":"a b"}`, jobs.CodeInvalidArgument},
		{"workers.drain", `{"id":"a*"}`, jobs.CodeInvalidArgument},
		{"pipelines.describe", `{"name":"nosuch"}`, jobs.CodeNotFound},
		{"pipelines.delete", `{"name":"nosuch"}`, jobs.CodeNotFound},
		{"pipelines.delete", `{}`, jobs.CodeInvalidArgument},
		{"schedules.delete", `{"name":"nosuch"}`, jobs.CodeNotFound},
		{"schedules.delete", `{}`, jobs.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.subject+" "+tt.body, func(t *testing.T) {
			got := apiError(t, e.req(e.op, "gantry.api."+tt.subject, tt.body))
			if got.Code != tt.code {
				t.Fatalf("code %s (%s), want %s", got.Code, got.Message, tt.code)
			}
		})
	}
}

// TestServiceStatsCountAnswers shows what `nats micro stats gantry` gives:
// requests are answered off micro's handler, so the answers and errors are
// counted in each endpoint's data.
func TestServiceStatsCountAnswers(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.runs.list", `{}`, nil)
	apiError(t, e.req(e.op, "gantry.api.runs.get", `{"runId":"01jzzzzzzzzzzzzzzzzzzzzzzz"}`))
	apiError(t, e.req(e.op, "gantry.api.runs.get", `{}`))
	var stats micro.Stats
	if err := json.Unmarshal(e.req(e.op, "$SRV.STATS.gantry", "").Data, &stats); err != nil {
		t.Fatal(err)
	}
	data := map[string]endpointData{}
	for _, ep := range stats.Endpoints {
		var d endpointData
		if err := json.Unmarshal(ep.Data, &d); err != nil {
			t.Fatalf("%s: data %s: %v", ep.Name, ep.Data, err)
		}
		data[ep.Name] = d
	}
	// startAPI polls runs.list until the API answers: at least one more.
	if d := data["runs_list"]; d.NumAnswered < 2 || d.NumErrors != 0 || d.LastError != "" {
		t.Errorf("runs_list: %+v, want at least 2 answered, no errors", d)
	}
	d := data["runs_get"]
	if d.NumAnswered != 2 || d.NumErrors != 2 || !strings.HasPrefix(d.LastError, jobs.CodeInvalidArgument+": ") {
		t.Errorf("runs_get: %+v, want 2 answered, 2 errors, the last invalid_argument", d)
	}
	if d.ProcessingTime <= 0 || d.AverageProcessingTime != d.ProcessingTime/2 {
		t.Errorf("runs_get: processing time %d, average %d", d.ProcessingTime, d.AverageProcessingTime)
	}
	if d := data["runs_submit"]; d.NumAnswered != 0 {
		t.Errorf("runs_submit: %+v, want nothing answered", d)
	}
}

func TestServiceInfoHasSchemas(t *testing.T) {
	e := startAPI(t)
	m := e.req(e.op, "$SRV.INFO.gantry", "")
	var info micro.Info
	if err := json.Unmarshal(m.Data, &info); err != nil {
		t.Fatal(err)
	}
	if len(m.Data) > 512<<10 {
		t.Errorf("service info is %d bytes: keep it well under NATS's 1 MiB payload limit", len(m.Data))
	}
	if len(info.Endpoints) != len(endpointSpecs) {
		t.Errorf("%d endpoints, %d specs", len(info.Endpoints), len(endpointSpecs))
	}
	for _, ep := range info.Endpoints {
		for _, key := range []string{MetaRequestSchema, MetaResponseSchema} {
			var schema map[string]any
			if err := json.Unmarshal([]byte(ep.Metadata[key]), &schema); err != nil || schema["$schema"] == nil {
				t.Errorf("%s %s: %v %q", ep.Subject, key, err, ep.Metadata[key])
			}
		}
		if ep.Metadata[MetaDescription] == "" || ep.Metadata[MetaAPIVersion] != APIVersion {
			t.Errorf("%s: metadata %v", ep.Subject, ep.Metadata)
		}
	}
	var get map[string]any
	json.Unmarshal([]byte(endpointMetadata("runs.get")[MetaRequestSchema]), &get)
	if req, _ := get["required"].([]any); len(req) != 1 || req[0] != "runId" {
		t.Errorf("runs.get request schema: %v", get)
	}
	// A stage's context is gantry's own: submissions from outside are
	// refused it, so the schema does not offer it.
	var submit struct{ Properties map[string]any }
	json.Unmarshal([]byte(endpointMetadata("runs.submit")[MetaRequestSchema]), &submit)
	if _, ok := submit.Properties["stage"]; ok || submit.Properties["taskDefinition"] == nil {
		t.Errorf("runs.submit request schema: properties %v, want taskDefinition and no stage", submit.Properties)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.ok("gantry.api.taskdefs.register", strings.Replace(helloTaskDef, `"hello"`, `"other"`, 1), nil)
	var ids []string
	for i := range 5 {
		family := "hello"
		if i%2 == 1 {
			family = "other"
		}
		var r jobs.Run
		e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":%q,"cluster":"c%d"}`, family, i%2), &r)
		ids = append(ids, r.RunID)
	}
	var page ListReply
	var got []string
	cursor := ""
	for range 10 {
		page = ListReply{}
		e.ok("gantry.api.runs.list", fmt.Sprintf(`{"limit":1,"taskDefinition":"hello","before":%q}`, cursor), &page)
		for _, r := range page.Runs {
			got = append(got, r.RunID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if want := []string{ids[4], ids[2], ids[0]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hello runs page by page: %v, want %v", got, want)
	}
	e.ok("gantry.api.runs.list", `{"cluster":"c1"}`, &page)
	if len(page.Runs) != 2 || page.Runs[0].RunID != ids[3] {
		t.Errorf("cluster c1: %d runs", len(page.Runs))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	e.ok("gantry.api.runs.list", fmt.Sprintf(`{"createdAfter":%q}`, future), &page)
	if len(page.Runs) != 0 {
		t.Errorf("created after an hour from now: %d runs", len(page.Runs))
	}
	// Statuses are read as ParseStatus reads them, in any case.
	e.ok("gantry.api.runs.list", `{"statuses":["queued"]}`, &page)
	if len(page.Runs) != 5 {
		t.Errorf("statuses [queued]: %d runs, want 5", len(page.Runs))
	}
	e.ok("gantry.api.runs.list", fmt.Sprintf(`{"createdBefore":%q}`, future), &page)
	if len(page.Runs) != 5 {
		t.Errorf("created before an hour from now: %d runs", len(page.Runs))
	}
}

// TestDurableSubmitWhileServerDown publishes to gantry.submit while no
// server runs: the submissions wait in their stream; the server takes them
// when it is back, makes one run of duplicates and answers on the
// Gantry-Reply-To subject.
func TestDurableSubmitWhileServerDown(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.stop()
	js, err := e.sub.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	inbox := e.sub.NewInbox()
	replies, err := e.sub.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(body, msgID, replyTo string) *nats.PubAck {
		m := nats.NewMsg(queue.SubmitSubject)
		m.Data = []byte(body)
		if msgID != "" {
			m.Header.Set(nats.MsgIdHdr, msgID)
		}
		if replyTo != "" {
			m.Header.Set(queue.ReplyToHeader, replyTo)
		}
		ack, err := js.PublishMsg(m)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		return ack
	}
	publish(`{"taskDefinition":"hello"}`, "order-1", inbox)
	if ack := publish(`{"taskDefinition":"hello"}`, "order-1", inbox); !ack.Duplicate {
		t.Error("the second publish with the same Nats-Msg-Id is not a duplicate")
	}
	publish(`{"taskDefinition":"hello","idempotencyKey":"key-2"}`, "", inbox)
	publish(`{"taskDefinition":"hello","idempotencyKey":"key-2"}`, "", inbox)
	publish(`{"taskDefinition":"nosuch"}`, "", inbox)
	publish(`{"taskDefinition":"hello"}`, "", "gantry.jobs.default") // not a reply subject anyone gets

	e.startServer()
	byID := map[string]int{}
	var codes []string
	for range 4 {
		m, err := replies.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		var reply struct {
			RunID string      `json:"runId"`
			Error *jobs.Error `json:"error"`
		}
		json.Unmarshal(m.Data, &reply)
		if reply.Error != nil {
			codes = append(codes, reply.Error.Code)
			continue
		}
		byID[reply.RunID]++
	}
	if len(byID) != 2 || len(codes) != 1 || codes[0] != jobs.CodeNotFound {
		t.Fatalf("runs %v, errors %v: want 2 runs (key-2 twice) and one not_found", byID, codes)
	}
	// The submission with a refused reply subject gets no reply to wait
	// for: it is taken after the others, and its run may take a moment.
	var list ListReply
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		e.ok("gantry.api.runs.list", `{"all":true}`, &list)
		if len(list.Runs) >= 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(list.Runs) != 3 {
		t.Fatalf("%d runs, want 3 (order-1, key-2, and the one with a refused reply subject)", len(list.Runs))
	}
}

func TestReplySubjectOK(t *testing.T) {
	for s, want := range map[string]bool{"_INBOX.abc": true, "orders.replies.7": true,
		"gantry.jobs.default": false, "$JS.API.STREAM.DELETE.X": false, "a.*": false, "a..b": false, "": false} {
		if got := replySubjectOK(s); got != want {
			t.Errorf("replySubjectOK(%q) = %v", s, got)
		}
	}
}

// TestWorkerAsksRunState: the worker's adapter (workerq.Claims.RunState)
// reads a run's status and attempt from the API, and not_found for a run
// the server does not know; with no server it fails.
func TestWorkerAsksRunState(t *testing.T) {
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var r jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello"}`, &r)
	q, err := queue.New(e.op)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	status, attempt, err := workerq.Claims{Q: q}.RunState(ctx, r.RunID)
	if err != nil || status != jobs.StatusQueued || attempt != 1 {
		t.Fatalf("RunState: %s %d %v", status, attempt, err)
	}
	if _, _, err := (workerq.Claims{Q: q}).RunState(ctx, "nosuchrun"); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
	e.stop()
	if _, _, err := (workerq.Claims{Q: q}).RunState(ctx, r.RunID); err == nil {
		t.Fatal("no server, no error")
	}
}

// A page asked larger than 1000 is 1000 long, not the default 100.
func TestListLimitAboveTheMaximum(t *testing.T) {
	ctx := context.Background()
	_, q, db := testStack(t)
	ids := make([]string, 150)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%03d", i)
	}
	createQueued(t, db, ids...)
	page, err := New(db, q).listRuns(ctx, ListRequest{All: true, Limit: 5000})
	if err != nil || len(page.Runs) != 150 {
		t.Fatalf("limit 5000: %d runs, %v; want all 150", len(page.Runs), err)
	}
}
