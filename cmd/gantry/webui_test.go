package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
)

// uiEnv is the HTTP server's handler against a real gantry server and
// embedded NATS (no worker, no Docker: the test reports the worker's
// events and log lines itself).
type uiEnv struct {
	t   *testing.T
	ctx context.Context
	srv *httptest.Server
	c   *client.Client
	q   *queue.Queue
	nc  *nats.Conn
}

func startUI(t *testing.T, auth httpAuth) *uiEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nc := embeddedNATS(t)
	q, err := queue.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- server.New(db, q).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		db.Close()
	})
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := c.Pools(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the server did not answer within 10s: %v", err)
		}
	}
	srv := httptest.NewServer(httpHandler(c, nc, auth))
	t.Cleanup(srv.Close)
	return &uiEnv{t: t, ctx: ctx, srv: srv, c: c, q: q, nc: nc}
}

// submit submits a run of an inline task definition.
func (e *uiEnv) submit(req *jobs.SubmitRequest) *jobs.Run {
	e.t.Helper()
	if req.TaskDefinition == nil {
		req.TaskDefinition = []byte(`{"family":"etl","containerDefinitions":[{"name":"main","image":"i"}]}`)
	}
	r, err := e.c.Submit(e.ctx, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// waitRun polls the run until ok holds.
func (e *uiEnv) waitRun(id string, ok func(*jobs.Run) bool) *jobs.Run {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := e.c.Get(e.ctx, id)
		if err == nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s: %+v %v", id, r, err)
		}
	}
}

// get requests path and returns the response and its body.
func (e *uiEnv) get(path string, header ...string) (*http.Response, string) {
	e.t.Helper()
	return uiGet(e.t, e.srv, "GET", path, header...)
}

func uiGet(t *testing.T, srv *httptest.Server, method, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// wantPage checks a page's status, that it is HTML with the UI's
// security headers, and holds each of want and none of never.
func wantPage(t *testing.T, path string, resp *http.Response, body string, status int, want []string, never ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d:\n%s", path, resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	for h, v := range map[string]string{"Content-Security-Policy": webuiCSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if got := resp.Header.Get(h); got != v {
			t.Errorf("%s: %s %q, want %q", path, h, got, v)
		}
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: the page lacks %q:\n%s", path, w, body)
		}
	}
	for _, n := range never {
		if strings.Contains(body, n) {
			t.Errorf("%s: the page holds %q:\n%s", path, n, body)
		}
	}
}

const uiXSS = `<script>alert("x")</script>`

// TestWebUIPages: every page against a real gantry server, with what
// users wrote (a stop reason, log lines, a query's tag) escaped.
func TestWebUIPages(t *testing.T) {
	e := startUI(t, httpAuth{})
	ctx := e.ctx
	if _, _, err := e.c.SetPool(ctx, "etl-pool", 2); err != nil {
		t.Fatal(err)
	}
	ssd, err := jobs.ParseConstraint("disk=ssd")
	if err != nil {
		t.Fatal(err)
	}
	queued := e.submit(&jobs.SubmitRequest{Tags: jobs.TagList{{Key: "team", Value: "data"}}, Pool: "etl-pool", Constraints: jobs.Constraints{ssd}})
	stopped := e.submit(&jobs.SubmitRequest{})
	if _, err := e.c.Stop(ctx, stopped.RunID, "stopped by "+uiXSS); err != nil {
		t.Fatal(err)
	}
	failed := e.submit(&jobs.SubmitRequest{Tags: jobs.TagList{{Key: "team", Value: "web"}}})
	// A worker runs failed's attempt: it writes lines and exits 3.
	lw := e.q.NewLogWriter(failed.RunID, 1)
	lw.Line("main", jobs.Stdout, []byte("hello "+uiXSS))
	lw.Piece("main", jobs.Stderr, []byte("a long "))
	lw.Line("main", jobs.Stderr, []byte("line & more"))
	if err := lw.Close(ctx); err != nil {
		t.Fatal(err)
	}
	exit := 3
	for i, ev := range []*jobs.Event{
		{Status: jobs.StatusRunning},
		{Status: jobs.StatusFailed, ExitCode: &exit, StopCode: jobs.StopEssentialExited, StoppedReason: "Essential container in task exited", Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &exit, Reason: "exit status 3"}}},
	} {
		ev.RunID, ev.Attempt, ev.Seq, ev.Source, ev.Worker, ev.Time = failed.RunID, 1, i+1, jobs.SourceWorker, "w1", time.Now().UTC()
		if err := e.q.Report(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	e.waitRun(failed.RunID, func(r *jobs.Run) bool { return r.Status == jobs.StatusFailed })
	if err := e.q.Beat(ctx, jobs.WorkerInfo{ID: "w1", Cluster: "default", Host: "host-a", State: jobs.WorkerActive,
		Capacity: jobs.Resources{CPU: 2048, Memory: 4096, Slots: 4}, Runs: []string{queued.RunID},
		StartedAt: time.Now(), LastHeartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.c.ApplyPipeline(ctx, []byte(`
name: daily-sales
schedule: {cron: "0 2 * * *"}
stages:
  - name: load
    taskDefinition: {family: load, containerDefinitions: [{name: main, image: i}]}
    dependsOn: [transform]
  - name: extract
    taskDefinition: {family: extract, containerDefinitions: [{name: main, image: i}]}
  - name: transform
    taskDefinition: {family: transform, containerDefinitions: [{name: main, image: i}]}
    dependsOn: [extract]
`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.c.ApplyPipeline(ctx, []byte("name: reload\nparameters: {customer: {required: true}, day: x}\n"+
		"stages: [{name: only, taskDefinition: {family: only, containerDefinitions: [{name: main, image: i}]}}]\n")); err != nil {
		t.Fatal(err)
	}
	pr, err := e.c.RunPipeline(ctx, "daily-sales", nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pr, err = e.c.GetPipelineRun(ctx, pr.PipelineRunID); err == nil && len(pr.StageState("extract").Runs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline run's first stage has no run: %+v %v", pr, err)
		}
	}
	extractRun := pr.StageState("extract").Runs[0].RunID

	resp, _ := e.get("/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("/: %d Location %q, want 302 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, c := range []struct {
		path        string
		status      int
		want, never []string
	}{
		{"/ui/", 200, []string{queued.RunID, extractRun, `<strong>active</strong>`, `href="/ui/?all=true">all</a>`,
			`<a class="tag" href="/ui/?all=true&amp;tag=team%3Ddata">team=data</a>`}, []string{stopped.RunID, failed.RunID}},
		{"/ui/?all=true", 200, []string{queued.RunID, stopped.RunID, failed.RunID, "stopped by &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;",
			`<strong>all</strong>`}, []string{uiXSS}},
		{"/ui/?status=failed", 200, []string{failed.RunID, `<strong>failed</strong>`, `<td>3</td>`}, []string{queued.RunID, stopped.RunID}},
		{"/ui/?all=true&tag=team=data", 200, []string{queued.RunID, `value="team=data"`, `clear tags`}, []string{failed.RunID, stopped.RunID}},
		{"/ui/?all=true&tag=", 200, []string{failed.RunID, stopped.RunID}, nil}, // the tag form left empty
		{"/ui/?all=true&limit=1", 200, []string{`older »`}, nil},
		{"/ui/?tag=" + url.QueryEscape(uiXSS), 400, []string{"Bad request", "&lt;script&gt;"}, []string{uiXSS}},
		{"/ui/?stauts=FAILED", 400, []string{`unknown query parameter &#34;stauts&#34; (did you mean &#34;status&#34;?); /ui/ takes`}, nil},
		{"/ui/?refresh=5", 200, []string{`<meta http-equiv="refresh" content="5">`, `<strong>on (5s)</strong>`, `<a href="/ui/">off</a>`}, nil},
		{"/ui/?refresh=0", 400, []string{`refresh=&#34;0&#34;: want seconds, 1 to 3600`}, nil},
		{"/ui/runs/" + failed.RunID, 200, []string{"FAILED", "exit status 3", "EssentialContainerExited", `<dt>Exit code</dt><dd>3</dd>`,
			`team=web`, "hello &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", `<span class="line stderr">a long line &amp; more</span>`,
			`href="/ui/runs/` + failed.RunID + `/logs.txt"`, "w1"}, []string{uiXSS, "refresh"}},
		// Canceled while queued, it never started: no line is to come.
		{"/ui/runs/" + stopped.RunID, 200, []string{"CANCELED", "stopped by &lt;script&gt;",
			"This run never started: it was canceled before any of its containers ran, so it has no log."}, []string{uiXSS, "No log line yet."}},
		{"/ui/runs/" + queued.RunID, 200, []string{"QUEUED", "etl-pool", `<a href="/ui/runs/` + queued.RunID + `?refresh=5">on</a>`,
			`<dt>Constraints</dt><dd>disk=ssd</dd>`, "No log line yet."}, []string{"never started"}},
		{"/ui/runs/" + extractRun, 200, []string{`<dt>Pipeline run</dt><dd><a href="/ui/runs/` + pr.PipelineRunID + `">` + pr.PipelineRunID + `</a>, stage extract of <a href="/ui/pipelines/daily-sales">daily-sales</a></dd>`}, nil},
		{"/ui/runs/" + failed.RunID, 200, nil, []string{"<dt>Pipeline run</dt>", "<dt>Constraints</dt>"}},
		{"/ui/runs/01nosuchrun", 404, []string{"No run 01nosuchrun"}, nil},
		{"/ui/runs/pr-nosuch", 404, []string{"No pipeline run pr-nosuch"}, nil},
		{"/ui/runs/" + pr.PipelineRunID, 200, []string{"daily-sales", "RUNNING", `href="/ui/runs/` + extractRun + `"`,
			"transform (success)"}, nil},
		{"/ui/pipelines", 200, []string{`href="/ui/pipelines/daily-sales"`, "<code>0 2 * * *</code>",
			`<a class="status s-running" href="/ui/runs/` + pr.PipelineRunID + `"`, `<span class="age">(in `}, nil},
		{"/ui/pipelines/daily-sales", 200, []string{pr.PipelineRunID, "extract (success)", "manual"}, nil},
		{"/ui/pipelines/nosuch", 404, []string{"No pipeline nosuch"}, nil},
		{"/ui/pipelines/reload", 200, []string{"<code>customer=(required)</code> <code>day=x</code>"}, nil},
		{"/ui/workers", 200, []string{"w1", "host-a", "0/4", `href="/ui/runs/` + queued.RunID + `"`}, nil},
		{"/ui/pools", 200, []string{"etl-pool", "<td>2</td>"}, nil},
		{"/ui/nosuch", 404, []string{"/ui/nosuch: no such page of the web UI"}, nil},
	} {
		resp, body := e.get(c.path)
		wantPage(t, c.path, resp, body, c.status, c.want, c.never...)
	}

	// The stages in DAG order, whatever the file's.
	_, body := e.get("/ui/runs/" + pr.PipelineRunID)
	if x, tr, l := strings.Index(body, "<td>extract"), strings.Index(body, "<td>transform"), strings.Index(body, "<td>load"); x < 0 || !(x < tr && tr < l) {
		t.Errorf("stages not in DAG order (extract %d, transform %d, load %d):\n%s", x, tr, l, body)
	}
	// Pages with log lines are not stored; lists are asked again.
	for path, want := range map[string]string{"/ui/runs/" + failed.RunID: "no-store", "/ui/runs/" + failed.RunID + "/logs.txt": "no-store", "/ui/": "no-store"} {
		if resp, _ := e.get(path); resp.Header.Get("Cache-Control") != want {
			t.Errorf("%s: Cache-Control %q, want %s", path, resp.Header.Get("Cache-Control"), want)
		}
	}
	resp, body = e.get("/ui/runs/" + failed.RunID + "/logs.txt")
	if want := "hello " + uiXSS + "\na long line & more\n"; resp.StatusCode != 200 || body != want || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("logs.txt: %d %s %q, want 200 text/plain %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
	}
	resp, body = e.get("/ui/runs/01nosuchrun/logs.txt")
	if resp.StatusCode != 404 || !strings.Contains(body, "01nosuchrun") {
		t.Errorf("logs.txt of no run: %d %q", resp.StatusCode, body)
	}
	resp, body = e.get("/ui/runs/" + pr.PipelineRunID + "/logs.txt")
	if resp.StatusCode != 200 {
		t.Errorf("logs.txt of a pipeline run: %d %q", resp.StatusCode, body)
	}
	resp, body = uiGet(t, e.srv, "POST", "/ui/runs/"+failed.RunID)
	wantPage(t, "POST", resp, body, 405, []string{"the web UI is read-only"})
	if resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("405 Allow %q", resp.Header.Get("Allow"))
	}
}

// TestWebUIAuth: /ui/ asks for what /api/ asks, and a browser for Basic
// auth (a token as its password); the style sheet needs none.
func TestWebUIAuth(t *testing.T) {
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	for _, c := range []struct {
		name       string
		auth       httpAuth
		in, out    []string // Authorization headers let in, refused
		challenged string   // what the 401 says
	}{
		{"user", httpAuth{user: "op", password: "pw"}, []string{basic("op", "pw")},
			[]string{"", basic("op", "no"), basic("no", "pw"), "Bearer pw"}, "the NATS operator&#39;s user and password"},
		{"--http-token", httpAuth{token: "ht", httpToken: true}, []string{"Bearer ht", basic("", "ht"), basic("anyone", "ht")},
			[]string{"", "Bearer no", basic("ht", "no")}, "--http-token: give it as the password"},
		{"NATS token", httpAuth{token: "nt"}, []string{"bearer nt", basic("x", "nt")}, []string{"", basic("nt", "")}, "the NATS token"},
	} {
		srv := startHTTPAPI(t, c.auth) // NATS without a gantry server: let in is 503
		for _, h := range c.out {
			resp, body := uiGet(t, srv, "GET", "/ui/", "Authorization", h)
			wantPage(t, c.name+" "+h, resp, body, 401, []string{c.challenged}, "no gantry server")
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="gantry", charset="UTF-8"` {
				t.Errorf("%s, Authorization %q: WWW-Authenticate %q", c.name, h, got)
			}
		}
		for _, h := range c.in {
			resp, body := uiGet(t, srv, "GET", "/ui/workers", "Authorization", h)
			wantPage(t, c.name+" "+h, resp, body, 503, []string{"Gantry is unavailable", "no gantry server answers on NATS"})
		}
		resp, body := uiGet(t, srv, "GET", "/ui/style.css")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, "pre.logs") {
			t.Errorf("%s: style.css: %d %s", c.name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// /api/ keeps its own challenge.
		if resp, _ := uiGet(t, srv, "GET", "/api/runs"); c.auth.token != "" && resp.Header.Get("WWW-Authenticate") != `Bearer realm="gantry"` {
			t.Errorf("%s: /api/'s WWW-Authenticate %q", c.name, resp.Header.Get("WWW-Authenticate"))
		}
		if c.auth.token != "" {
			if resp, _ := uiGet(t, srv, "GET", "/api/runs", "Authorization", basic("x", c.auth.token)); resp.StatusCode != 401 {
				t.Errorf("%s: /api/ let Basic auth with the token in: %d", c.name, resp.StatusCode)
			}
		}
	}
}

// TestWebUINATSDown: with the connection to NATS lost, a page says so
// (503), not that there is no gantry server.
func TestWebUINATSDown(t *testing.T) {
	nc := embeddedNATS(t)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpHandler(c, nc, httpAuth{}))
	t.Cleanup(srv.Close)
	nc.Close()
	resp, body := uiGet(t, srv, "GET", "/ui/runs/01x")
	wantPage(t, "/ui/runs/01x", resp, body, 503, []string{"NATS is unreachable", "lost its connection to NATS (closed)"})
}

// TestWebUIRunsPageGolden: the runs page's whole HTML, at a fixed time,
// for a page of runs with filters and a next page; a tag value that
// would be markup (the store refuses it, the template escapes it anyway)
// is text. Rewrite with go test ./cmd/gantry -run WebUIRunsPageGolden -update.
func TestWebUIRunsPageGolden(t *testing.T) {
	fixedClock(t)
	runs := goldenRuns()
	runs[0].Tags = map[string]string{"team": "data", "note": uiXSS}
	r := httptest.NewRequest("GET", "/ui/?status=FAILED&status=RUNNING&tag=team=data&refresh=10", nil)
	p, q, err := newPage(r, "Runs", "runs", true)
	if err != nil {
		t.Fatal(err)
	}
	p.Body = runsBodyOf(q, runs, "cursor-2")
	w := httptest.NewRecorder()
	newWebUI(nil, nil).render(w, http.StatusOK, "runs", p)
	got := w.Body.String()
	if strings.Contains(got, uiXSS) {
		t.Errorf("the tag's markup is not escaped:\n%s", got)
	}
	// Every link stays on the server: no asset from elsewhere, no script.
	for _, m := range regexp.MustCompile(`(?:href|src|action)="([^"]*)"`).FindAllStringSubmatch(got, -1) {
		if !strings.HasPrefix(m[1], "/ui/") {
			t.Errorf("a link off /ui/: %s", m[0])
		}
	}
	if strings.Contains(got, "<script") || strings.Contains(got, "style=") {
		t.Error("the page has a script or an inline style, which its CSP refuses")
	}
	golden(t, "ui-runs.html", w.Body.Bytes())
}

// TestLogTail: the run page keeps the last lines, oldest first, a long
// line's pieces joined, and counts them all.
func TestLogTail(t *testing.T) {
	tail := &logTail{max: 3, partial: map[string]*logLine{}}
	var n int
	line := func(c string, partial bool) jobs.LogLine {
		n++
		return jobs.LogLine{Stream: jobs.Stdout, Text: fmt.Sprint(c, n), Partial: partial}
	}
	tail.batch(&jobs.LogBatch{Container: "a", Lines: []jobs.LogLine{line("a", false), line("a", true)}})
	tail.batch(&jobs.LogBatch{Container: "b", Lines: []jobs.LogLine{line("b", false), line("b", false)}})
	tail.batch(&jobs.LogBatch{Container: "a", Lines: []jobs.LogLine{line("a", false), line("a", false)}})
	var got []string
	for _, l := range tail.last() {
		got = append(got, l.Container+":"+l.Text)
	}
	if want := "b:b4 a:a2a5 a:a6"; strings.Join(got, " ") != want || tail.total != 5 {
		t.Errorf("tail %q of %d; want %q of 5", got, tail.total, want)
	}
}

// TestLogTailInvalidUTF8: the run page shows bytes that are not valid
// UTF-8 as U+FFFD, and a character cut between pieces whole.
func TestLogTailInvalidUTF8(t *testing.T) {
	tail := &logTail{max: 10, partial: map[string]*logLine{}}
	tail.batch(&jobs.LogBatch{Container: "main", Lines: []jobs.LogLine{
		{Stream: jobs.Stdout, Text: "caf\xe9 \xc3", Partial: true}, {Stream: jobs.Stdout, Text: "\xa9t\xff\xfe"}}})
	got := tail.last()
	if want := "caf\ufffd ét\ufffd"; len(got) != 1 || got[0].Text != want {
		t.Fatalf("lines %+v, want one: %q", got, want)
	}
}

// TestLogTailBounds: a line is kept up to webuiMaxLineBytes, on a rune's
// start, its other bytes counted, however many pieces it comes in.
func TestLogTailBounds(t *testing.T) {
	tail := &logTail{max: 10, partial: map[string]*logLine{}}
	piece := strings.Repeat("é", 1000) // 2000 bytes
	var lines []jobs.LogLine
	for range 9 {
		lines = append(lines, jobs.LogLine{Stream: jobs.Stdout, Text: piece, Partial: true})
	}
	lines = append(lines, jobs.LogLine{Stream: jobs.Stdout, Text: "end"}, jobs.LogLine{Stream: jobs.Stdout, Text: "short"})
	if err := tail.batch(&jobs.LogBatch{Container: "main", Lines: lines}); err != nil {
		t.Fatal(err)
	}
	got := tail.last()
	if len(got) != 2 || got[1].Text != "short" || got[1].Cut != 0 {
		t.Fatalf("lines %+v", got)
	}
	long := got[0]
	if len(long.Text) != webuiMaxLineBytes || !utf8.ValidString(long.Text) || long.Cut != 9*2000+3-webuiMaxLineBytes {
		t.Errorf("the long line keeps %d bytes (valid UTF-8: %v), cut %d; want %d, cut %d",
			len(long.Text), utf8.ValidString(long.Text), long.Cut, webuiMaxLineBytes, 9*2000+3-webuiMaxLineBytes)
	}
}

// TestWebUIRunPageShowsTheLogsEnd: the run page of a run whose log is
// longer than it reads shows the log's last lines, read from its end:
// when they take more than the page reads, those whole in that much, and
// says so; logs.txt has every line. A short log's page counts its lines.
func TestWebUIRunPageShowsTheLogsEnd(t *testing.T) {
	old := webuiMaxLogRead
	webuiMaxLogRead = 64 << 10
	t.Cleanup(func() { webuiMaxLogRead = old })
	e := startUI(t, httpAuth{})
	r := e.submit(&jobs.SubmitRequest{})
	lw := e.q.NewLogWriter(r.RunID, 1)
	line := strings.Repeat("x", 1000)
	for i := range 3000 { // 3 MB, in a dozen batches
		lw.Line("main", jobs.Stdout, []byte(fmt.Sprintf("%04d %s", i, line)))
	}
	lw.Line("main", jobs.Stdout, []byte("a short line"))
	lw.Line("main", jobs.Stdout, []byte(strings.Repeat("y", webuiMaxLineBytes+10))) // the last: in the last batch
	if err := lw.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	path := "/ui/runs/" + r.RunID
	resp, body := e.get(path)
	// Which lines before the last the page shows depends on where the
	// writer's 50 ms flushes cut its batches (a loaded machine's cut
	// anywhere): the page reads whole batches, and gave no line at all
	// when the last held one line (queue.TestReadLogTailBoundedKeepsTheWindowsFirstLine).
	wantPage(t, path, resp, body, 200, []string{"The last ", " lines, those whole in the log's last 64 KiB, which is as much as this page reads",
		"gantry logs --tail 1000",
		strings.Repeat("y", webuiMaxLineBytes) + `<span class="cut"> … 10 more bytes (logs.txt has the whole line)</span>`},
		"0000 "+line, " of 3002 lines")
	if resp, body = e.get(path + "/logs.txt"); resp.StatusCode != 200 || !strings.HasPrefix(body, "0000 "+line+"\n") ||
		!strings.HasSuffix(body, "\na short line\n"+strings.Repeat("y", webuiMaxLineBytes+10)+"\n") {
		t.Errorf("logs.txt: %d, ends %q", resp.StatusCode, body[max(0, len(body)-40):])
	}

	// Read whole within the bound: 1000 lines of 1200, counted.
	webuiMaxLogRead = 16 << 20
	r = e.submit(&jobs.SubmitRequest{})
	lw = e.q.NewLogWriter(r.RunID, 1)
	for i := range 1200 {
		lw.Line("main", jobs.Stdout, []byte(fmt.Sprintf("short %04d", i)))
	}
	if err := lw.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	path = "/ui/runs/" + r.RunID
	resp, body = e.get(path)
	wantPage(t, path, resp, body, 200, []string{"The last 1000 of 1200 lines.", "short 1199", "short 0200"}, "short 0199", "which is as much as")
}

// renderUI renders the page name with body at the golden clock.
func renderUI(t *testing.T, name string, body any) string {
	t.Helper()
	fixedClock(t)
	w := httptest.NewRecorder()
	newWebUI(nil, nil).render(w, http.StatusOK, name, page{Title: name, Body: body})
	if w.Code != http.StatusOK {
		t.Fatalf("render %s: %d %s", name, w.Code, w.Body)
	}
	return w.Body.String()
}

// TestWebUIPipelineArray: a pipeline's page shows a stage's arraySize
// as pipeline describe does: the number, the output it is read from, or
// "-" for one plain run (not 0).
func TestWebUIPipelineArray(t *testing.T) {
	pl, err := jobs.ParsePipeline([]byte(`
name: per-file
stages:
  - name: extract
    taskDefinition: {family: extract, containerDefinitions: [{name: main, image: i}]}
  - name: shards
    arraySize: 3
    taskDefinition: {family: shards, containerDefinitions: [{name: main, image: i}]}
  - name: transform
    dependsOn: [extract]
    arraySize: {fromOutput: extract.FILES}
    taskDefinition: {family: transform, containerDefinitions: [{name: main, image: i}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := pipelineBody{Pipeline: pl}
	for _, s := range pl.Order() {
		b.Stages = append(b.Stages, *pl.Stage(s))
	}
	got := renderUI(t, "pipeline", b)
	for _, want := range []string{
		`<tr><td>extract</td><td>extract (inline)</td><td>-</td>`,
		`<tr><td>shards</td><td>shards (inline)</td><td>3</td>`,
		`<tr><td>transform</td><td>transform (inline)</td><td>extract.FILES</td>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the page lacks %q:\n%s", want, got)
		}
	}
}

// TestWebUIRetriedPipelineRun: a retried pipeline run's page lists each
// stage's earlier tries with their runs before its latest, as gantry
// describe pr-... does, and counts its time since the retry; the
// pipeline's page gives a failed run's reason as gantry pipeline runs
// does (the stages that failed it), and the same time.
func TestWebUIRetriedPipelineRun(t *testing.T) {
	spec, err := jobs.ParsePipeline([]byte(`
name: flaky
stages:
  - name: extract
    taskDefinition: {family: extract, containerDefinitions: [{name: main, image: i}]}
  - name: transform
    dependsOn: [extract]
    taskDefinition: {family: transform, containerDefinitions: [{name: main, image: i}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) *time.Time { return ptr(goldenNow.Add(-d)) }
	retried := &jobs.PipelineRun{PipelineRunID: "pr-01retried", Pipeline: "flaky", Version: 1, Status: jobs.StatusSucceeded,
		Trigger: "manual", CreatedAt: *at(time.Hour), StartedAt: at(time.Hour), FinishedAt: at(10 * time.Minute),
		Retries: 1, RetriedAt: at(12 * time.Minute), Spec: *spec,
		Stages: []jobs.StageState{
			{Name: "extract", Status: jobs.StatusSucceeded, Runs: []jobs.StageRun{{RunID: "01extract", Status: jobs.StatusSucceeded, Attempts: 1, ExitCode: ptr(0)}}},
			{Name: "transform", Status: jobs.StatusSucceeded, Try: 2,
				Runs: []jobs.StageRun{{RunID: "01transform2", Status: jobs.StatusSucceeded, Attempts: 1, ExitCode: ptr(0)}},
				EarlierTries: []jobs.StageTry{{Try: 1, Status: jobs.StatusFailed, Reason: "1 of 1 runs failed",
					Runs: []jobs.StageRun{{RunID: "01transform1", Status: jobs.StatusFailed, Attempts: 1, ExitCode: ptr(2), StoppedReason: "Essential container in task exited"}}}}},
		}}
	got := renderUI(t, "pipelinerun", pipelineRunBody{Run: retried, Stages: stageRowsOf(retried)})
	for _, want := range []string{
		`<tr><td>transform (try 1)</td><td><span class="status s-failed">FAILED</span>`,
		`href="/ui/runs/01transform1"`, "1 of 1 runs failed",
		`<tr><td>transform (try 2)</td><td><span class="status s-succeeded">SUCCEEDED</span>`,
		`href="/ui/runs/01transform2"`,
		`<dt>Retries</dt><dd>1 (last <time`,
		`<dt>Took</dt><dd>2m0s (since its last retry)</dd>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the pipeline run's page lacks %q:\n%s", want, got)
		}
	}
	if t1, t2 := strings.Index(got, "transform (try 1)"), strings.Index(got, "transform (try 2)"); t1 > t2 {
		t.Errorf("try 2 before try 1:\n%s", got)
	}

	failed := jobs.PipelineRun{PipelineRunID: "pr-01failed", Pipeline: "flaky", Version: 1, Status: jobs.StatusFailed,
		Trigger: "manual", CreatedAt: *at(5 * time.Minute), StartedAt: at(5 * time.Minute), FinishedAt: at(4 * time.Minute),
		Stages: []jobs.StageState{{Name: "extract", Status: jobs.StatusSucceeded},
			{Name: "transform", Status: jobs.StatusFailed, Reason: "1 of 1 runs failed"}}}
	got = renderUI(t, "pipeline", pipelineBody{Pipeline: spec, Runs: []jobs.PipelineRun{*retried, failed}})
	for _, want := range []string{
		`<td>2m0s</td><td class="reason"></td>`,                              // the retried one, since its retry
		`<td>1m0s</td><td class="reason">transform: 1 of 1 runs failed</td>`, // the failed one, why
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the pipeline's page lacks %q:\n%s", want, got)
		}
	}
}

// TestWebUIRunPageShowsAnAttemptAfterTheEnd: an attempt that ran after
// its run ended is marked in the run page's attempts, with why it ran, as
// gantry describe shows it.
func TestWebUIRunPageShowsAnAttemptAfterTheEnd(t *testing.T) {
	r := goldenRunAfterEnd()
	got := renderUI(t, "run", runBody{Run: &r, Whole: true})
	for _, want := range []string{"<tr><td>1</td>", "<tr><td>2 (after end)</td>",
		"ran after the run had ended: worker host-b&#39;s lease on the job of attempt 1 ran out"} {
		if !strings.Contains(got, want) {
			t.Errorf("the page lacks %q:\n%s", want, got)
		}
	}
}

// TestWebUIPipelineRunSaysWhyStagesWait: against a real gantry server
// with a worker labelled disk=ssd, a run of a pipeline whose constraints
// no worker meets has its stage RUNNING and the stage's run QUEUED; the
// pipeline run's page says why, on the run and on the stage, as the
// run's page does; the pipeline's page shows the file's constraints and
// each stage's, as gantry pipeline describe does.
func TestWebUIPipelineRunSaysWhyStagesWait(t *testing.T) {
	e := startUI(t, httpAuth{})
	ctx := e.ctx
	if err := e.q.Beat(ctx, jobs.WorkerInfo{ID: "w1", Cluster: "default", Host: "host-a", State: jobs.WorkerActive,
		Labels: map[string]string{"disk": "ssd"}, Capacity: jobs.Resources{CPU: 2048, Memory: 4096, Slots: 4},
		StartedAt: time.Now(), LastHeartbeat: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.c.ApplyPipeline(ctx, []byte(`
name: cons
constraints: [gpu=t4]
stages:
  - name: extract
    taskDefinition: {family: extract, containerDefinitions: [{name: main, image: i}]}
    constraints: [disk=ssd]
  - name: load
    taskDefinition: {family: load, containerDefinitions: [{name: main, image: i}]}
    dependsOn: [extract]
`)); err != nil {
		t.Fatal(err)
	}
	pr, err := e.c.RunPipeline(ctx, "cons", nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pr, err = e.c.GetPipelineRun(ctx, pr.PipelineRunID); err == nil && len(pr.StageState("extract").Runs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline run's first stage has no run: %+v %v", pr, err)
		}
	}
	const why = "no worker in cluster default has labels gpu=t4"
	path := "/ui/runs/" + pr.PipelineRunID
	resp, body := e.get(path)
	wantPage(t, path, resp, body, 200, []string{
		`<span class="status s-queued">QUEUED</span> exit - <span class="reason">waiting: ` + why + `</span>`,
		`<td class="reason">` + why + `</td></tr>`,
	})
	path = "/ui/pipelines/cons"
	resp, body = e.get(path)
	wantPage(t, path, resp, body, 200, []string{
		`<dt>Constraints</dt><dd>gpu=t4 (every stage's runs')</dd>`,
		`<td>disk=ssd (over the pipeline's, key by key)</td></tr>`,
		`<td>extract (success) </td><td>-</td></tr>`, // load, without constraints of its own
		// The pipeline's list of runs says why this one's stage waits.
		`<td class="reason">extract: ` + why + `</td>`,
	})
}

// TestWebUIPipelineOrderedArrays: a pipeline's page and a run's page say
// what pipeline describe says of a sequential array and of an N_TO_N
// dependency (not "success", which would read as waiting for the whole
// stage), next to a trigger rule and a required parameter.
func TestWebUIPipelineOrderedArrays(t *testing.T) {
	pl, err := jobs.ParsePipeline([]byte(`
name: in-order
dependsOnPast: true
parameters: {customer: {required: true}}
stages:
  - name: migrate
    arraySize: 3
    arrayOrder: sequential
    taskDefinition: {family: migrate, containerDefinitions: [{name: main, image: i}]}
  - name: verify
    arraySize: 3
    dependsOn: [{stage: migrate, type: N_TO_N}]
    taskDefinition: {family: verify, containerDefinitions: [{name: main, image: i}]}
  - name: cleanup
    dependsOn: [migrate, verify]
    triggerRule: allDone
    taskDefinition: {family: cleanup, containerDefinitions: [{name: main, image: i}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	b := pipelineBody{Pipeline: pl}
	for _, s := range pl.Order() {
		b.Stages = append(b.Stages, *pl.Stage(s))
	}
	got := renderUI(t, "pipeline", b)
	for _, want := range []string{
		`<tr><td>migrate</td><td>migrate (inline)</td><td>3, sequential</td><td>-</td>`,
		`<tr><td>verify</td><td>verify (inline)</td><td>3</td><td>migrate (N_TO_N: child i after its child i) </td>`,
		`<td>migrate verify (triggerRule allDone)</td>`,
		`<code>customer=(required)</code>`,
		`<dt>Depends on past</dt>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the pipeline page lacks %q:\n%s", want, got)
		}
	}
	pr := scheduler.NewPipelineRun(pl, "pr-x", jobs.Params{"customer": "acme"}, time.Now())
	got = renderUI(t, "pipelinerun", pipelineRunBody{Run: pr, Stages: stageRowsOf(pr)})
	if want := `<td>migrate (N_TO_N: child i after its child i) </td>`; !strings.Contains(got, want) {
		t.Errorf("the pipeline run page lacks %q:\n%s", want, got)
	}
}

// TestWebUIArrayRun: an array run's page shows its summary and its
// children, linked, and no attempts or log; a child's page links its
// parent with its index.
func TestWebUIArrayRun(t *testing.T) {
	code := 3
	parent := jobs.Run{RunID: "01parent", Status: jobs.StatusFailed, TaskDefinition: "etl:1", Attempts: []jobs.Attempt{},
		ArrayProperties: &jobs.ArrayProperties{Size: 3, StatusSummary: map[jobs.Status]int{jobs.StatusSucceeded: 2, jobs.StatusFailed: 1}}}
	idx := 1
	child := jobs.Run{RunID: "01parent-1", Status: jobs.StatusFailed, ExitCode: &code, ArrayJobID: "01parent",
		ArrayProperties: &jobs.ArrayProperties{Index: &idx}}
	got := renderUI(t, "run", runBody{Run: &parent, Children: []jobs.Run{child}, LogsNote: "An array run runs no container"})
	for _, want := range []string{"<dt>Array</dt><dd>3 children: 2 SUCCEEDED, 1 FAILED</dd>", "<h2>Children</h2>",
		`<a href="/ui/runs/01parent-1">01parent-1</a>`, "The first 1 of 3, by index: <code>gantry ps --array 01parent</code>", "An array run runs no container"} {
		if !strings.Contains(got, want) {
			t.Errorf("the parent's page lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<h2>Attempts</h2>") {
		t.Errorf("the parent's page shows attempts:\n%s", got)
	}
	got = renderUI(t, "run", runBody{Run: &child, Whole: true})
	if want := `<dt>Array run</dt><dd><a href="/ui/runs/01parent">01parent</a>[1]</dd>`; !strings.Contains(got, want) {
		t.Errorf("the child's page lacks %q:\n%s", want, got)
	}
}

// TestWebUIArrayChildrenByIndex: an array run's page shows its first
// children by index, 0 to 99 of 102 (by id text they were 0, 1, 10, 100,
// 101, 11, ...), and /ui/?array=PARENT pages through all of them in that
// order.
func TestWebUIArrayChildrenByIndex(t *testing.T) {
	e := startUI(t, httpAuth{})
	p := e.submit(&jobs.SubmitRequest{ArrayProperties: &jobs.SubmitArrayProperties{Size: []byte("102")}})
	link := regexp.MustCompile(`<a href="/ui/runs/` + p.RunID + `-(\d+)">`)
	indexes := func(body string) string {
		var out []string
		for _, m := range link.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return strings.Join(out, " ")
	}
	upTo := func(from, to int) string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, fmt.Sprint(i))
		}
		return strings.Join(out, " ")
	}
	_, body := e.get("/ui/runs/" + p.RunID)
	if got := indexes(body); got != upTo(0, 99) {
		t.Errorf("the parent's page lists children %s; want 0 to 99", got)
	}
	if want := "The first 100 of 102, by index"; !strings.Contains(body, want) {
		t.Errorf("the parent's page lacks %q:\n%s", want, body)
	}
	var pages []string
	next := "/ui/?array=" + p.RunID + "&limit=40"
	for range 5 {
		_, body := e.get(next)
		pages = append(pages, indexes(body))
		m := regexp.MustCompile(`<a href="([^"]+)">next »</a>`).FindStringSubmatch(body)
		if m == nil {
			break
		}
		next = strings.ReplaceAll(m[1], "&amp;", "&")
	}
	if want := []string{upTo(0, 39), upTo(40, 79), upTo(80, 101)}; fmt.Sprint(pages) != fmt.Sprint(want) {
		t.Errorf("/ui/?array= pages:\n%q\nwant\n%q", pages, want)
	}
}

// TestScheduleSuspendedNowIsShown: gantry schedule resume of a pipeline
// whose file says suspend: true left pipeline describe saying
// suspend=true and the web UI "(suspended)", from the file, while the
// schedule fired. Both show the schedule's state now.
func TestScheduleSuspendedNowIsShown(t *testing.T) {
	e := startUI(t, httpAuth{})
	ctx := e.ctx
	if _, _, err := e.c.ApplyPipeline(ctx, []byte("name: nightly\nschedule: {cron: '0 2 * * *', suspend: true}\n"+
		"stages: [{name: only, taskDefinition: {family: only, containerDefinitions: [{name: main, image: i}]}}]\n")); err != nil {
		t.Fatal(err)
	}
	check := func(suspended bool, describe string) {
		t.Helper()
		for _, path := range []string{"/ui/pipelines", "/ui/pipelines/nightly"} {
			if _, body := e.get(path); strings.Contains(body, "(suspended)") != suspended {
				t.Errorf("%s says (suspended): %v, want %v", path, !suspended, suspended)
			}
		}
		out, errOut, code := gantryCmd(ctx, "pipeline", "describe", "nightly", "--nats", e.nc.ConnectedUrl())
		if code != 0 || !strings.Contains(out, "Schedule:  0 2 * * * (-) Allow "+describe+"\n") {
			t.Errorf("pipeline describe: exit %d, %s%s; want Schedule: ... %s", code, out, errOut, describe)
		}
	}
	check(true, "suspend=true")
	if err := e.c.SuspendSchedule(ctx, "nightly", false); err != nil {
		t.Fatal(err)
	}
	check(false, "suspend=false (by gantry schedule resume; the file's suspend: true comes back when a changed file is applied)")
	if err := e.c.SuspendSchedule(ctx, "nightly", true); err != nil {
		t.Fatal(err)
	}
	check(true, "suspend=true")
}
