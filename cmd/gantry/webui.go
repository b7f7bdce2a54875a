package main

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"
)

// The web UI: read-only HTML pages under /ui/ of the HTTP API's server,
// rendered on the server with html/template (which escapes every value:
// names, tags, reasons and log lines are users'), one embedded style
// sheet, no script and nothing fetched from elsewhere, so that it works
// on machines without the internet. Its pages ask NATS what the CLI asks,
// through the client package: nothing new on the gantry server.

//go:embed webui
var webuiFiles embed.FS

// webuiTailLines is how many of a run's last log lines its page shows;
// logs.txt has them all.
const webuiTailLines = 1000

// webuiPageSize is how many runs a page of the runs list shows when the
// query gives no limit.
const webuiPageSize = 50

// webuiCSP keeps a page to what the server itself serves: no inline
// script or style, no frame, no form posting elsewhere.
const webuiCSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// webuiTemplates parses the pages once: each is layout.html with its own
// file's "content".
var webuiTemplates = sync.OnceValue(func() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"runs", "run", "pipelines", "pipeline", "pipelinerun", "workers", "pools", "error"} {
		pages[name] = template.Must(template.New("layout.html").Funcs(webuiFuncs).
			ParseFS(webuiFiles, "webui/layout.html", "webui/"+name+".html"))
	}
	return pages
})

// webUI serves the pages with c; nc tells whether NATS is reachable.
type webUI struct {
	c   *client.Client
	nc  *nats.Conn
	mux *http.ServeMux
}

func newWebUI(c *client.Client, nc *nats.Conn) *webUI {
	u := &webUI{c: c, nc: nc, mux: http.NewServeMux()}
	u.mux.HandleFunc("GET /ui/{$}", u.runs)
	u.mux.HandleFunc("GET /ui/runs/{id}", u.run)
	u.mux.HandleFunc("GET /ui/runs/{id}/logs.txt", u.logsText)
	u.mux.HandleFunc("GET /ui/pipelines", u.pipelines)
	u.mux.HandleFunc("GET /ui/pipelines/{name}", u.pipeline)
	u.mux.HandleFunc("GET /ui/workers", u.workers)
	u.mux.HandleFunc("GET /ui/pools", u.pools)
	u.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			u.fail(w, http.StatusMethodNotAllowed, "Read-only", fmt.Sprintf("%s %s: the web UI is read-only: use GET", r.Method, r.URL.Path))
			return
		}
		u.fail(w, http.StatusNotFound, "No such page", fmt.Sprintf("%s: no such page of the web UI", r.URL.Path))
	})
	return u
}

// guard serves the pages to the requests auth lets in, as /api/ does;
// a browser is asked for Basic auth, which it prompts for.
func (u *webUI) guard(auth httpAuth) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", webuiCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if auth.clientCert && !hasClientCert(r) {
			u.fail(w, http.StatusUnauthorized, "Client certificate needed", clientCertAsked)
			return
		}
		if !auth.allowsUI(r) {
			h.Set("WWW-Authenticate", `Basic realm="gantry", charset="UTF-8"`)
			u.fail(w, http.StatusUnauthorized, "Sign in", auth.asksUI())
			return
		}
		if u.nc != nil && !u.nc.IsConnected() {
			u.fail(w, http.StatusServiceUnavailable, "NATS is unreachable",
				fmt.Sprintf("this HTTP server has lost its connection to NATS (%s): the pages come back when it reconnects", strings.ToLower(u.nc.Status().String())))
			return
		}
		u.mux.ServeHTTP(w, r)
	})
}

// allowsUI is allows, and where auth is a token also takes it as the
// password of Basic auth (any user name): a browser sends Basic auth
// by itself, and no Bearer token.
func (a httpAuth) allowsUI(r *http.Request) bool {
	if a.allows(r) {
		return true
	}
	if a.user != "" || a.token == "" {
		return false
	}
	_, p, ok := r.BasicAuth()
	return ok && subtle.ConstantTimeCompare([]byte(p), []byte(a.token)) == 1
}

// asksUI says what a refused page request should have carried.
func (a httpAuth) asksUI() string {
	switch {
	case a.user != "":
		return "the web UI asks for the NATS operator's user and password"
	case a.httpToken:
		return "the web UI asks for the token given with --http-token: give it as the password (any user name), or send Authorization: Bearer TOKEN"
	}
	return "the web UI asks for the NATS token: give it as the password (any user name), or send Authorization: Bearer TOKEN"
}

// style serves the style sheet, which every page links.
func (u *webUI) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeFileFS(w, r, webuiFiles, "webui/style.css")
}

// page is what the layout shows around a page's content (Body).
type page struct {
	Title string
	Nav   string // the navigation link of the page's section
	// Refresh is the auto-refresh's period in seconds, 0 for off;
	// RefreshOn and RefreshOff are the page's URLs with it on and off,
	// empty where the page offers none.
	Refresh               int
	RefreshOn, RefreshOff string
	Body                  any
}

// webuiRefresh is the period the auto-refresh link turns on.
const webuiRefresh = 5

// newPage reads the refresh query parameter of r (seconds, 1 to 3600)
// and, with refreshable, offers the auto-refresh toggle. It returns the
// query without it.
func newPage(r *http.Request, title, nav string, refreshable bool) (page, url.Values, error) {
	p := page{Title: title, Nav: nav}
	q := r.URL.Query()
	if v := q.Get("refresh"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 3600 {
			return p, q, jobs.Invalid(fmt.Sprintf("refresh=%q: want seconds, 1 to 3600", v))
		}
		p.Refresh = n
	}
	q.Del("refresh")
	if refreshable {
		p.RefreshOff = pageURL(r.URL.Path, q)
		on := maps.Clone(q)
		on.Set("refresh", strconv.Itoa(webuiRefresh))
		p.RefreshOn = pageURL(r.URL.Path, on)
	} else {
		p.Refresh = 0
	}
	return p, q, nil
}

func pageURL(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// render writes the page name with p, or a plain 500 if the template
// fails (a bug): rendered to a buffer first, so no half page goes out.
func (u *webUI) render(w http.ResponseWriter, status int, name string, p page) {
	var b bytes.Buffer
	if err := webuiTemplates()[name].Execute(&b, p); err != nil {
		http.Error(w, "gantry web UI: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Not kept on the browser's disk either: pages show reasons, tags and
	// a pipeline run's parameters, which may be sensitive.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// errorBody is the content of an error page.
type errorBody struct{ Heading, Message string }

func (u *webUI) fail(w http.ResponseWriter, status int, heading, message string) {
	u.render(w, status, "error", page{Title: heading, Body: errorBody{heading, message}})
}

// failErr answers err as a page with the HTTP API's status for it; what
// names the object asked for ("run 01j..."), for a 404.
func (u *webUI) failErr(w http.ResponseWriter, what string, err error) {
	_, status := httpError(err)
	heading := "Error"
	switch status {
	case http.StatusNotFound:
		heading = "No " + what
	case http.StatusBadRequest:
		heading = "Bad request"
	case http.StatusForbidden:
		heading = "Permission denied"
	case http.StatusServiceUnavailable:
		heading = "Gantry is unavailable"
	}
	u.fail(w, status, heading, err.Error())
}

// link is one link of a list of choices, Current marking the page's.
type link struct {
	Label, URL string
	Current    bool
}

// runsBody is the runs page's content.
type runsBody struct {
	Runs    []jobs.Run
	Filters []link
	// Tags are the tag filters (team=data, or team for any value);
	// Kept the other parameters, for the tag form to keep.
	Tags  []string
	Kept  [][2]string
	Clear string // the page without the tag filters
	// Older is the next page's URL, Newest the first's (empty on it).
	Older, Newest string
	// ByIndex says the runs are an array's children (array=PARENT), by
	// index: the pages go on to higher indexes, not older runs.
	ByIndex bool
}

// runs lists runs, newest first: active ones by default, or by status,
// tag, family, cluster or worker, a page at a time (before); or an array's
// children (array), by index.
func (u *webUI) runs(w http.ResponseWriter, r *http.Request) {
	p, q, err := newPage(r, "Runs", "runs", true)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	// The tag form sends an empty tag when left empty.
	q["tag"] = slices.DeleteFunc(q["tag"], func(s string) bool { return strings.TrimSpace(s) == "" })
	if len(q["tag"]) == 0 {
		delete(q, "tag")
	}
	o, err := listQueryOf("/ui/", q)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	if o.Limit == 0 {
		o.Limit = webuiPageSize
	}
	runs, next, err := u.c.List(r.Context(), o)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	p.Body = runsBodyOf(q, runs, next)
	u.render(w, http.StatusOK, "runs", p)
}

// runsBodyOf is the runs page's content: runs, listed for the query q
// (without refresh), and next, the cursor of the page after.
func runsBodyOf(q url.Values, runs []jobs.Run, next string) runsBody {
	b := runsBody{Runs: runs, Filters: statusFilters(q), Tags: q["tag"], ByIndex: q.Get("array") != ""}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if k != "tag" && k != "before" {
			for _, v := range q[k] {
				b.Kept = append(b.Kept, [2]string{k, v})
			}
		}
	}
	if len(b.Tags) > 0 {
		c := maps.Clone(q)
		delete(c, "tag")
		delete(c, "before")
		b.Clear = pageURL("/ui/", c)
	}
	if next != "" {
		c := maps.Clone(q)
		c.Set("before", next)
		b.Older = pageURL("/ui/", c)
	}
	if q.Get("before") != "" {
		c := maps.Clone(q)
		delete(c, "before")
		b.Newest = pageURL("/ui/", c)
	}
	return b
}

// statusFilters are the runs page's status links (active, all, each
// status), keeping q's other filters, but not its page.
func statusFilters(q url.Values) []link {
	base := maps.Clone(q)
	for _, k := range []string{"status", "all", "before"} {
		delete(base, k)
	}
	with := func(k, v string) string {
		c := maps.Clone(base)
		if k != "" {
			c.Set(k, v)
		}
		return pageURL("/ui/", c)
	}
	all, _ := strconv.ParseBool(q.Get("all"))
	statuses := q["status"]
	links := []link{
		{"active", with("", ""), len(statuses) == 0 && !all},
		{"all", with("all", "true"), len(statuses) == 0 && all},
	}
	for _, s := range []jobs.Status{jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed, jobs.StatusCanceled} {
		cur := len(statuses) == 1 && strings.EqualFold(statuses[0], string(s))
		links = append(links, link{strings.ToLower(string(s)), with("status", string(s)), cur})
	}
	return links
}

// logLine is a whole line of a run's log (its pieces joined), cut
// after webuiMaxLineBytes.
type logLine struct {
	Attempt           int
	Container, Stream string
	Text              string
	Cut               int // bytes of the line not shown
}

// webuiMaxLineBytes is the most of one log line the run page shows; the
// rest is counted. A program that never writes a newline makes a line of
// any size (the worker passes it on in pieces): whole, a page view held
// all of it in the server's memory, and rendered it.
const webuiMaxLineBytes = 4 << 10

// webuiMaxLogRead is how much of a log's end the run page reads at most
// (queue.LogTail.MaxBytes), to show its last webuiTailLines lines: where
// they take more (long lines), the page shows those whole in that much,
// and says so.
var webuiMaxLogRead int64 = 16 << 20

// byteSize writes n in MiB, or KiB under 1 MiB.
func byteSize(n int64) string {
	if n < 1<<20 {
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n>>20, 10) + " MiB"
}

// logTail keeps the last lines of a run's log.
type logTail struct {
	max     int
	lines   []logLine // a ring once full: next is the oldest
	next    int
	total   int
	partial map[string]*logLine // container/stream: the line so far
}

func (t *logTail) batch(b *jobs.LogBatch) error {
	for _, l := range b.Lines {
		key := b.Container + "/" + l.Stream
		line := t.partial[key]
		if line == nil {
			line = &logLine{Attempt: b.Attempt, Container: b.Container, Stream: l.Stream}
		}
		line.append(l.Text)
		if l.Partial {
			t.partial[key] = line
			continue
		}
		delete(t.partial, key)
		// The page is UTF-8: bytes that are not (latin-1, binary) show
		// as U+FFFD, as they would in a browser; logs.txt has them all.
		line.Text = strings.ToValidUTF8(line.Text, "\ufffd")
		t.add(*line)
	}
	return nil
}

// append adds text to the line, up to webuiMaxLineBytes (on a rune's
// start), counting the rest.
func (l *logLine) append(text string) {
	if room := webuiMaxLineBytes - len(l.Text); l.Cut > 0 || room < len(text) {
		cut := max(room, 0)
		for cut > 0 && cut < len(text) && !utf8.RuneStart(text[cut]) {
			cut--
		}
		l.Text += text[:cut]
		l.Cut += len(text) - cut
		return
	}
	l.Text += text
}
func (t *logTail) add(l logLine) {
	t.total++
	if len(t.lines) < t.max {
		t.lines = append(t.lines, l)
		return
	}
	t.lines[t.next] = l
	t.next = (t.next + 1) % t.max
}

// last returns the lines kept, oldest first.
func (t *logTail) last() []logLine {
	return append(t.lines[t.next:len(t.lines):len(t.lines)], t.lines[:t.next]...)
}

// runBody is a run page's content.
type runBody struct {
	Run        *jobs.Run
	Pool       string // the pool and whether the run holds a slot of it
	Lines      []logLine
	Total      int    // lines in the log, when Whole
	Whole      bool   // every line of the log was read: the log is short
	LogsNote   string // why a run shows no line, when that can be told
	LogsError  string // why its logs could not be read
	MultiConts bool   // the lines come from more than one container
	// Bounded says the log's last webuiTailLines lines take more than
	// the page reads (ReadLimit, "16 MiB"): it shows those whole in it.
	Bounded   bool
	ReadLimit string
	// Children are an array run's first webuiArrayChildren children by
	// index, ChildrenErr why they could not be listed.
	Children    []jobs.Run
	ChildrenErr string
}

// webuiArrayChildren is how many of an array run's children its page
// lists; gantry ps --array lists them all.
const webuiArrayChildren = 100

// run shows a run (or, given a pr- id, a pipeline run) and its last log
// lines.
func (u *webUI) run(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if jobs.IsPipelineRunID(id) {
		u.pipelineRun(w, r, id)
		return
	}
	ctx := r.Context()
	run, err := u.c.Get(ctx, id)
	if err != nil {
		u.failErr(w, "run "+id, err)
		return
	}
	p, _, err := newPage(r, "Run "+id, "runs", !run.Status.Terminal())
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	b := runBody{Run: run}
	if run.Pool != "" {
		b.Pool = poolText(run)
	}
	if run.ArrayParent() {
		// It runs nothing, and has no log: its children do.
		b.Children, _, err = u.c.List(ctx, client.ListOptions{ArrayJobID: id, All: true, Limit: webuiArrayChildren})
		if err != nil {
			b.ChildrenErr = err.Error()
		}
		b.LogsNote = fmt.Sprintf("An array run runs no container: each of its children has its log (gantry logs %s).", jobs.ArrayChildID(id, 0))
		p.Body = b
		w.Header().Set("Cache-Control", "no-store")
		u.render(w, http.StatusOK, "run", p)
		return
	}
	// The log's end, not all of it: a run that wrote gigabytes shows its
	// last lines at the cost of reading them.
	tail := &logTail{max: webuiTailLines, partial: map[string]*logLine{}}
	end := &queue.LogTail{Lines: webuiTailLines, MaxBytes: int(webuiMaxLogRead)}
	if err := u.c.Logs(ctx, id, client.LogOptions{Tail: end}, tail.batch); err != nil {
		b.LogsError = err.Error()
	}
	b.Lines, b.Whole, b.Bounded = tail.last(), end.Whole, end.Bounded
	if b.Whole {
		b.Total = tail.total
	}
	b.ReadLimit = byteSize(webuiMaxLogRead)
	containers := map[string]bool{}
	for _, l := range b.Lines {
		containers[l.Container] = true
	}
	b.MultiConts = len(containers) > 1
	if len(b.Lines) == 0 && b.LogsError == "" {
		b.LogsNote = firstOf(neverStarted(run), logsExpired(ctx, u.c, id, client.LogOptions{}, clock()))
	}
	p.Body = b
	w.Header().Set("Cache-Control", "no-store") // log lines may hold secrets
	u.render(w, http.StatusOK, "run", p)
}

// neverStarted says that a run ended without starting, and so has no log
// line to wait for: no container of it ever ran (the worker reports
// RUNNING once they start, before any end). "" for any other run.
func neverStarted(r *jobs.Run) string {
	if !r.Status.Terminal() || r.StartedAt != nil {
		return ""
	}
	how := "ended " + string(r.Status)
	switch r.Status {
	case jobs.StatusCanceled:
		how = "was canceled"
	case jobs.StatusFailed:
		how = "failed"
	}
	return fmt.Sprintf("This run never started: it %s before any of its containers ran, so it has no log.", how)
}

// logsText serves a run's whole log as text, as `gantry logs RUN`
// prints it (stdout and stderr in order); of a pipeline run, every stage
// run's, labelled, as `gantry logs pr-...`.
func (u *webUI) logsText(w http.ResponseWriter, r *http.Request) {
	id, ctx := r.PathValue("id"), r.Context()
	var pr *jobs.PipelineRun
	var err error
	if jobs.IsPipelineRunID(id) {
		pr, err = pipelineRunStatus(ctx, u.c, id) // pipelogs.go
	} else {
		_, err = u.c.Get(ctx, id)
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if err != nil {
		_, status := httpError(err)
		w.WriteHeader(status)
		fmt.Fprintf(w, "gantry: %s: %v\n", id, err)
		return
	}
	if pr != nil {
		p := &pipelineLogs{c: u.c, stdout: w, stderr: w, tail: -1}
		err = p.print(ctx, pr, false)
	} else {
		lp := newLinePrinter(w, w, false)
		err = u.c.Logs(ctx, id, client.LogOptions{}, lp.batch)
		if ferr := lp.flush(); err == nil {
			err = ferr
		}
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(w, "\ngantry: reading the logs of %s failed: %v\n", id, err)
	}
}

// stageRow is one try of a stage on a pipeline run's page: its latest,
// or an earlier one that gantry pipeline retry ran again, labelled as
// gantry describe labels it ("transform (try 1)").
type stageRow struct {
	Label          string
	Status         jobs.Status
	Reason         string
	Runs           []jobs.StageRun
	TaskDefinition string
	DependsOn      []jobs.Dependency
	// TriggerRule is the stage's: one other than allSuccess is shown
	// after its dependencies, whose conditions it replaces.
	TriggerRule jobs.TriggerRule
}

// pipelineRunBody is a pipeline run page's content.
type pipelineRunBody struct {
	Run    *jobs.PipelineRun
	Stages []stageRow // in DAG order
}

func (u *webUI) pipelineRun(w http.ResponseWriter, r *http.Request, id string) {
	pr, err := u.c.GetPipelineRun(r.Context(), id)
	if err != nil {
		u.failErr(w, "pipeline run "+id, err)
		return
	}
	p, _, err := newPage(r, "Pipeline run "+id, "pipelines", !pr.Status.Terminal())
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	b := pipelineRunBody{Run: pr}
	b.Stages = stageRowsOf(pr)
	p.Body = b
	u.render(w, http.StatusOK, "pipelinerun", p)
}

// stageRowsOf lists pr's stages in DAG order, each stage's earlier tries
// before its latest, as gantry describe pr-... does.
func stageRowsOf(pr *jobs.PipelineRun) []stageRow {
	var rows []stageRow
	for _, st := range pr.StagesInOrder() {
		var td string
		var deps []jobs.Dependency
		var rule jobs.TriggerRule
		if s := pr.Spec.Stage(st.Name); s != nil {
			td, deps, rule = taskDefText(s.TaskDefinition), s.DependsOn, s.TriggerRule
		}
		for _, try := range st.EarlierTries {
			rows = append(rows, stageRow{Label: fmt.Sprintf("%s (try %d)", st.Name, try.Try), Status: try.Status,
				Reason: try.Reason, Runs: try.Runs, TaskDefinition: td, DependsOn: deps, TriggerRule: rule})
		}
		label := st.Name
		if st.Try > 1 {
			label = fmt.Sprintf("%s (try %d)", st.Name, st.Try)
		}
		// A stage RUNNING whose runs wait says why, as they do; one
		// PENDING for an output, which stage it waits for.
		rows = append(rows, stageRow{Label: label, Status: st.Status, Reason: firstOf(st.Reason, stageWaitReason(pr, &st)), Runs: st.Runs,
			TaskDefinition: td, DependsOn: deps, TriggerRule: rule})
	}
	return rows
}

// webuiLastRuns is how many of each pipeline's last runs the pipelines
// page shows.
const webuiLastRuns = 10

// pipelineRow is one pipeline of the pipelines page.
type pipelineRow struct {
	Pipeline jobs.Pipeline
	Schedule *client.ScheduleInfo // nil without a schedule
	Runs     []jobs.PipelineRun   // the last ones, newest first
}

// pipelines lists the pipelines with their schedules and their last runs.
func (u *webUI) pipelines(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, _, err := newPage(r, "Pipelines", "pipelines", true)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	ps, err := u.c.ListPipelines(ctx)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	scheds, err := u.c.Schedules(ctx)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	rows := make([]pipelineRow, len(ps))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8) // a request each: a few at once
	for i := range ps {
		rows[i].Pipeline = ps[i]
		for j := range scheds {
			if scheds[j].Name == ps[i].Name {
				rows[i].Schedule = &scheds[j]
			}
		}
		g.Go(func() error {
			runs, err := u.c.PipelineRuns(gctx, ps[i].Name, webuiLastRuns)
			rows[i].Runs = runs
			return err
		})
	}
	if err := g.Wait(); err != nil {
		u.failErr(w, "", err)
		return
	}
	p.Body = rows
	u.render(w, http.StatusOK, "pipelines", p)
}

// webuiPipelineRuns is how many runs a pipeline's page lists.
const webuiPipelineRuns = 50

// pipelineBody is a pipeline's page content.
type pipelineBody struct {
	Pipeline *jobs.Pipeline
	Stages   []jobs.Stage // in DAG order
	Runs     []jobs.PipelineRun
	// Suspended is whether its schedule is suspended now: gantry schedule
	// suspend and resume change it, the file's suspend only when applied.
	Suspended bool
}

// pipeline shows a pipeline's latest version and its last runs.
func (u *webUI) pipeline(w http.ResponseWriter, r *http.Request) {
	name, ctx := r.PathValue("name"), r.Context()
	pl, err := u.c.DescribePipeline(ctx, name, 0)
	if err != nil {
		u.failErr(w, "pipeline "+name, err)
		return
	}
	p, _, err := newPage(r, "Pipeline "+name, "pipelines", true)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	runs, err := u.c.PipelineRuns(ctx, name, webuiPipelineRuns)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	b := pipelineBody{Pipeline: pl, Runs: runs}
	if pl.Schedule != nil {
		scheds, err := u.c.Schedules(ctx)
		if err != nil {
			u.failErr(w, "", err)
			return
		}
		for _, s := range scheds {
			b.Suspended = b.Suspended || s.Name == name && s.Suspended
		}
	}
	for _, s := range pl.Order() {
		b.Stages = append(b.Stages, *pl.Stage(s))
	}
	p.Body = b
	u.render(w, http.StatusOK, "pipeline", p)
}

// workers lists the live workers, as `gantry workers ls`.
func (u *webUI) workers(w http.ResponseWriter, r *http.Request) {
	p, _, err := newPage(r, "Workers", "workers", true)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	ws, err := u.c.Workers(r.Context(), "")
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	p.Body = ws
	u.render(w, http.StatusOK, "workers", p)
}

// pools lists the pools, as `gantry pool ls`.
func (u *webUI) pools(w http.ResponseWriter, r *http.Request) {
	p, _, err := newPage(r, "Pools", "pools", true)
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	pools, err := u.c.Pools(r.Context())
	if err != nil {
		u.failErr(w, "", err)
		return
	}
	p.Body = pools
	u.render(w, http.StatusOK, "pools", p)
}

// webuiFuncs are the templates' functions.
var webuiFuncs = template.FuncMap{
	// utc and ago show a time (time.Time or *time.Time): in UTC, and how
	// long before now (or after); zero and nil as "-".
	"utc": func(v any) string {
		t := timeOf(v)
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"iso": func(v any) string { return timeOf(v).UTC().Format(time.RFC3339) },
	"ago": func(v any) string {
		t, now := timeOf(v), clock()
		if t.After(now) { // a schedule's next fire
			return "in " + short(t.Sub(now))
		}
		return ago(t, now)
	},
	"set": func(v any) bool { return !timeOf(v).IsZero() },
	// took is how long from start to end (or to now, not ended yet).
	"took": func(start, end *time.Time) string {
		if start == nil {
			return "-"
		}
		to := clock()
		if end != nil {
			to = *end
		}
		return short(to.Sub(*start))
	},
	// prTook is how long a pipeline run has run, since its latest retry
	// if it was retried, as gantry describe pr-... says.
	"prTook": func(pr jobs.PipelineRun) string { return pipelineDuration(&pr, clock()) },
	// prReason is a pipeline run's reason as gantry pipeline runs gives
	// it: why it stopped or waits, or which stages failed it and why.
	"prReason": func(pr jobs.PipelineRun) string { return runsReason(&pr) },
	"exit": func(code *int) string {
		if code == nil {
			return "-"
		}
		return strconv.Itoa(*code)
	},
	"lower": func(s jobs.Status) string { return strings.ToLower(string(s)) },
	// pairs lists a map's keys and values (tags, parameters), by key.
	"pairs": func(m map[string]string) [][2]string {
		out := make([][2]string, 0, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, [2]string{k, m[k]})
		}
		return out
	},
	// paramPairs lists a pipeline's parameters and their defaults, by
	// name; a required one, without a default, says so.
	"paramPairs": func(p jobs.ParamDecls) [][2]string {
		out := make([][2]string, 0, len(p))
		for _, k := range slices.Sorted(maps.Keys(p)) {
			v := p[k].Default
			if p[k].Required {
				v = "(required)"
			}
			out = append(out, [2]string{k, v})
		}
		return out
	},
	// tagURL is the runs page of the runs with that tag.
	"tagURL": func(k, v string) string { return "/ui/?" + url.Values{"all": {"true"}, "tag": {k + "=" + v}}.Encode() },
	"runURL": func(id string) string { return "/ui/runs/" + url.PathEscape(id) },
	"pipelineURL": func(name string) string {
		return "/ui/pipelines/" + url.PathEscape(name)
	},
	"index0": func(i *int) string {
		if i == nil {
			return ""
		}
		return "[" + strconv.Itoa(*i) + "]"
	},
	"used":    used,        // workers.go
	"orDash":  orDash,      // output.go
	"taskDef": taskDefText, // pipeline.go
	"labels":  labelText,   // workers.go
}

func timeOf(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case *time.Time:
		if t != nil {
			return *t
		}
	}
	return time.Time{}
}
