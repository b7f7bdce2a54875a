package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
	"github.com/rs/zerolog"
)

// TestArrayRunSubmitted: a submission with arrayProperties is answered
// with the parent, QUEUED with its summary; its children are stored and
// announced QUEUED, with their index and the array's environment; the
// parent has no job and no attempt; runs.list leaves the children out,
// arrayJobId lists them; the same key finds the parent again.
func TestArrayRunSubmitted(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	q := e.queue()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var p jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","idempotencyKey":"arr","arrayProperties":{"size":3},"tags":{"team":"data"}}`, &p)
	if !p.ArrayParent() || p.Status != jobs.StatusQueued || p.ArrayProperties.Size != 3 ||
		p.ArrayProperties.StatusSummary[jobs.StatusQueued] != 3 || len(p.Attempts) != 0 {
		t.Fatalf("the reply: %+v", p)
	}
	waitAnnounced(t, q, p.RunID, jobs.StatusQueued)
	for i := range 3 {
		id := jobs.ArrayChildID(p.RunID, i)
		var c jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &c)
		env := fmt.Sprint(c.Spec.Overrides.ContainerOverrides[len(c.Spec.Overrides.ContainerOverrides)-1].Environment)
		if c.ArrayJobID != p.RunID || *c.ArrayProperties.Index != i || c.Tags["team"] != "data" || c.IdempotencyKey != "" ||
			!strings.Contains(env, fmt.Sprintf("{AWS_BATCH_JOB_ARRAY_INDEX %d}", i)) || !strings.Contains(env, "{GANTRY_ARRAY_SIZE 3}") {
			t.Errorf("child %d: %+v, env %s", i, c, env)
		}
		waitAnnounced(t, q, id, jobs.StatusQueued)
	}
	var list ListReply
	e.ok("gantry.api.runs.list", `{}`, &list)
	if len(list.Runs) != 1 || list.Runs[0].RunID != p.RunID {
		t.Errorf("runs.list: %d runs; want the parent alone", len(list.Runs))
	}
	e.ok("gantry.api.runs.list", fmt.Sprintf(`{"arrayJobId":%q}`, p.RunID), &list)
	if len(list.Runs) != 3 {
		t.Errorf("runs.list of the children: %d runs", len(list.Runs))
	}
	var again jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","idempotencyKey":"arr","arrayProperties":{"size":3}}`, &again)
	if again.RunID != p.RunID {
		t.Errorf("the same key made %s; want %s", again.RunID, p.RunID)
	}
}

// TestArrayRunChildrenByIndex: runs.list of an array's children pages
// through them by index, 0 first and 10 after 9 (by id text 10 came
// before 2), whatever the filters and the page size; a cursor that is no
// child of the array is refused, naming the field.
func TestArrayRunChildrenByIndex(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var p jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","arrayProperties":{"size":12}}`, &p)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		filter string
		want   string
	}{
		{`"limit":5`, "[[0 1 2 3 4] [5 6 7 8 9] [10 11]]"},
		{`"limit":12`, "[[0 1 2 3 4 5 6 7 8 9 10 11]]"},
		{`"limit":7,"statuses":["QUEUED"],"taskDefinition":"hello"`, "[[0 1 2 3 4 5 6] [7 8 9 10 11]]"},
		{`"limit":5,"createdBefore":"` + future + `"`, "[[0 1 2 3 4] [5 6 7 8 9] [10 11]]"},
		{`"limit":5,"createdAfter":"` + future + `"`, "[[]]"},
		{`"limit":5,"statuses":["FAILED"]`, "[[]]"},
	} {
		var pages [][]int
		next := ""
		for range 10 {
			var list ListReply
			e.ok("gantry.api.runs.list", fmt.Sprintf(`{"arrayJobId":%q,"all":true,"before":%q,%s}`, p.RunID, next, c.filter), &list)
			page := []int{}
			for _, r := range list.Runs {
				i, ok := jobs.ArrayChildIndex(p.RunID, r.RunID)
				if !ok {
					t.Fatalf("%s: listed %s, no child of %s", c.filter, r.RunID, p.RunID)
				}
				page = append(page, i)
			}
			pages = append(pages, page)
			if next = list.Next; next == "" {
				break
			}
		}
		if got := fmt.Sprint(pages); got != c.want {
			t.Errorf("%s: pages %s; want %s", c.filter, got, c.want)
		}
	}
	for _, before := range []string{"01nosuch", p.RunID, p.RunID + "-x", p.RunID + "-07", "01other-3"} {
		got := apiError(t, e.req(e.op, "gantry.api.runs.list", fmt.Sprintf(`{"arrayJobId":%q,"before":%q}`, p.RunID, before)))
		want := fmt.Sprintf(`before: %q is not a child of array run %s: with arrayJobId, give the next of the previous page, `+
			`a child's id (%s-0, %s-1, ...)`, before, p.RunID, p.RunID, p.RunID)
		if got.Code != jobs.CodeInvalidArgument || got.Message != want {
			t.Errorf("before %q: %+v; want %q", before, got, want)
		}
	}
}

// TestArrayRunRefusedNamingTheField: sizes gantry cannot make are refused
// with the field and what it takes.
func TestArrayRunRefusedNamingTheField(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	for _, c := range []struct{ size, want string }{
		{`1`, `arrayProperties.size: 1: must be between 2 and 10000 (an array of one is a plain run: leave arrayProperties out)`},
		{`0`, `arrayProperties.size: 0: must be between 2 and 10000`},
		{`10001`, `arrayProperties.size: 10001: must be between 2 and 10000`},
		{`"ten"`, `arrayProperties.size: "ten": want a whole number from 2 to 10000`},
	} {
		got := apiError(t, e.req(e.op, "gantry.api.runs.submit", `{"taskDefinition":"hello","arrayProperties":{"size":`+c.size+`}}`))
		if got.Code != jobs.CodeInvalidArgument || got.Message != c.want {
			t.Errorf("size %s: %+v; want %q", c.size, got, c.want)
		}
	}
	// A dependency is named by its place in the request, SEQUENTIAL's
	// counted.
	got := apiError(t, e.req(e.op, "gantry.api.runs.submit",
		`{"taskDefinition":"hello","arrayProperties":{"size":2},"dependsOn":[{"type":"SEQUENTIAL"},{"runId":"nosuch"}]}`))
	if got.Code != jobs.CodeNotFound || !strings.HasPrefix(got.Message, "dependsOn[1].runId: run nosuch") {
		t.Errorf("an unknown dependency after SEQUENTIAL: %+v", got)
	}
}

// TestSequentialArrayRun: with dependsOn type SEQUENTIAL, child 0 is
// queued and each other child waits for the one before it to succeed.
func TestSequentialArrayRun(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var p jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","arrayProperties":{"size":3},"dependsOn":[{"type":"SEQUENTIAL"}]}`, &p)
	if p.ArrayProperties.Order != jobs.ArrayOrderSequential || len(p.DependsOn) != 0 {
		t.Errorf("the parent: order %q, dependsOn %v", p.ArrayProperties.Order, p.DependsOn)
	}
	for i := range 3 {
		var c jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, jobs.ArrayChildID(p.RunID, i)), &c)
		switch {
		case i == 0 && (c.Waiting() || len(c.DependsOn) != 0):
			t.Errorf("child 0 waits: %v", c.DependsOn)
		case i > 0 && (!c.Waiting() || c.StatusReason != fmt.Sprintf("waiting for run %s (QUEUED) to succeed", jobs.ArrayChildID(p.RunID, i-1))):
			t.Errorf("child %d: waiting %v, %q", i, c.Waiting(), c.StatusReason)
		}
	}
}

// TestArrayRunRecomputedAtStart: children that ended while no server
// recomputed their parent (a crash between a child's end and the parent's
// recomputation) end the parent at the next start, announced.
func TestArrayRunRecomputedAtStart(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	q := e.queue()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var p jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","cluster":"nowhere","arrayProperties":{"size":2}}`, &p)
	e.stop()
	db := e.openStore()
	for i := range 2 {
		if _, err := db.UpdateRun(context.Background(), jobs.ArrayChildID(p.RunID, i), func(r *jobs.Run) bool {
			code := 0
			r.Status, r.ExitCode = jobs.StatusSucceeded, &code
			return true
		}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	e.startServer()
	waitAnnounced(t, q, p.RunID, jobs.StatusSucceeded)
	var got jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, p.RunID), &got)
	if got.Status != jobs.StatusSucceeded || got.ArrayProperties.StatusSummary[jobs.StatusSucceeded] != 2 || got.FinishedAt == nil {
		t.Errorf("the parent after the restart: %s, %v", got.Status, got.ArrayProperties.StatusSummary)
	}
}

// TestArrayRunStoredButNotQueuedIsQueuedAtStart: a server that died
// right after storing an array run, before announcing it and publishing
// its children's jobs, leaves it to the next, which announces the parent
// and the children and publishes the children's jobs, never a job of the
// parent.
func TestArrayRunStoredButNotQueuedIsQueuedAtStart(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	q := e.queue()
	e.stop()
	db := e.openStore()
	ctx := context.Background()
	now := time.Now().UTC()
	td := jobs.TaskDefinition{Family: "hello", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "gantry/samples:latest", Memory: 64}}}
	parent := &jobs.Run{RunID: "01jparent0000000000000000x", Status: jobs.StatusQueued, Cluster: "nowhere", CreatedAt: now,
		Attempts: []jobs.Attempt{}, Containers: []jobs.ContainerResult{}, Spec: jobs.RunSpec{Task: td},
		ArrayProperties: &jobs.ArrayProperties{Size: 2, StatusSummary: map[jobs.Status]int{jobs.StatusQueued: 2}}}
	var children []*jobs.Run
	for i := range 2 {
		tmpl := *parent
		tmpl.ArrayProperties = nil
		tmpl.Attempts = []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: now}}
		children = append(children, arrayChild(&tmpl, parent.RunID, i, 2))
	}
	if _, _, _, err := db.CreateArrayRun(ctx, parent, children); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.startServer()
	waitAnnounced(t, q, parent.RunID, jobs.StatusQueued)
	for _, c := range children {
		waitAnnounced(t, q, c.RunID, jobs.StatusQueued)
	}
	db = e.openStore()
	defer db.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left, err := db.Unpublished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs still unpublished after the start: %s", len(left), left[0].RunID)
		}
	}
	var p jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, parent.RunID), &p)
	if p.Status != jobs.StatusQueued || len(p.Attempts) != 0 {
		t.Errorf("the parent after the start: %s, %d attempts", p.Status, len(p.Attempts))
	}
}

// TestArrayChildrenLeftToTheirSubmission: a sweep's republish that comes
// between an array run's commit and the publication of its children's
// jobs leaves them to the submission, as it does a plain run's: it
// published them all again (deduplicated by the queue, but 6381 jobs and
// marks more, seconds of the sweep, for an array of 10,000).
func TestArrayChildrenLeftToTheirSubmission(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, q, db := testStack(t)
	var (
		logs     syncBuffer
		s        *Server
		snapshot []jobs.Run
	)
	s = New(db, q, WithLogger(zerolog.New(&logs)), func(c *config) {
		c.runStored = func(string) {
			if err := s.republish(ctx); err != nil {
				t.Errorf("republish: %v", err)
			}
			var err error
			if snapshot, err = db.Unpublished(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	t.Cleanup(s.bg.Wait)
	p, err := s.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: json.RawMessage(helloTaskDef),
		ArrayProperties: &jobs.SubmitArrayProperties{Size: json.RawMessage("3")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := logs.String(); strings.Contains(got, "re-queued") {
		t.Errorf("the sweep republished the children of the array being submitted:\n%s", got)
	}
	for i := range 3 {
		if id := jobs.ArrayChildID(p.RunID, i); unpublished(t, db, id) {
			t.Errorf("child %s left unpublished", id)
		}
	}
	// A round that listed them unpublished before the submission queued
	// them, and comes to them after (10,000 take seconds), leaves them.
	if len(snapshot) != 3 {
		t.Fatalf("listed unpublished at the commit: %d runs; want the 3 children", len(snapshot))
	}
	if n, err := s.republishThese(ctx, snapshot, time.Now(), s.republishable(ctx)); err != nil || n != 0 {
		t.Errorf("a round of a listing made before the children were queued queued %d, %v; want none", n, err)
	}
}

// TestArrayRunStoppedPageByPage: runs.stop of an array run of more
// children than stopArray reads at once stops every one, as Stop stops a
// run: marked canceled in the queue, stored and announced CANCELED; and
// the parent ends CANCELED, told once.
func TestArrayRunStoppedPageByPage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := startAPI(t)
	q := e.queue()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	n := stopArrayPage + 3
	var p jobs.Run
	e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":"hello","cluster":"nowhere","arrayProperties":{"size":%d}}`, n), &p)
	var stopped jobs.Run
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q}`, p.RunID), &stopped)
	if stopped.Status != jobs.StatusCanceled || stopped.ArrayProperties.StatusSummary[jobs.StatusCanceled] != n {
		t.Errorf("the stopped parent: %s, %v; want CANCELED, %d CANCELED", stopped.Status, stopped.ArrayProperties.StatusSummary, n)
	}
	for i := range n {
		id := jobs.ArrayChildID(p.RunID, i)
		if canceled, reason, err := q.Canceled(ctx, id); err != nil || !canceled || reason != "Stopped by user" {
			t.Errorf("child %d marked canceled in the queue: %v, %q, %v; want true, %q", i, canceled, reason, err, "Stopped by user")
		}
		waitAnnounced(t, q, id, jobs.StatusCanceled)
	}
	waitAnnounced(t, q, p.RunID, jobs.StatusCanceled)
	if got := announcedStatuses(t, q, p.RunID); !slices.Equal(got, []jobs.Status{jobs.StatusQueued, jobs.StatusCanceled}) {
		t.Errorf("the parent's announcements: %v; want QUEUED, CANCELED", got)
	}
}

// TestArrayRunRerunKeepsWhatItWasSubmittedWith: gantry rerun of an array
// run submits the array again with what it was submitted with, as the
// rerun of a plain run does: its pool, its dependencies and its deadline,
// which only its children hold (the parent takes no slot and waits for
// nothing), and its sequential order.
func TestArrayRunRerunKeepsWhatItWasSubmittedWith(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	e.ok("gantry.api.pools.set", `{"name":"warehouse","slots":1}`, nil)
	var dep jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","cluster":"nowhere"}`, &dep)
	var p jobs.Run
	e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":"hello","cluster":"nowhere","pool":"warehouse","activeDeadlineSeconds":3600,
		"dependsOn":[{"runId":%q,"condition":"complete"},{"type":"SEQUENTIAL"}],"arrayProperties":{"size":2}}`, dep.RunID), &p)
	var again jobs.Run
	e.ok("gantry.api.runs.rerun", fmt.Sprintf(`{"runId":%q}`, p.RunID), &again)
	if !again.ArrayParent() || again.ArrayProperties.Size != 2 || again.ArrayProperties.Order != jobs.ArrayOrderSequential {
		t.Fatalf("the rerun: %+v", again.ArrayProperties)
	}
	for i := range 2 {
		var c jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, jobs.ArrayChildID(again.RunID, i)), &c)
		wantDeps := fmt.Sprint([]string{dep.RunID + ":complete"})
		if i == 1 {
			wantDeps = fmt.Sprint([]string{dep.RunID + ":complete", jobs.ArrayChildID(again.RunID, 0) + ":success"})
		}
		var deps []string
		for _, d := range c.DependsOn {
			deps = append(deps, d.RunID+":"+string(d.Condition))
		}
		if c.Pool != "warehouse" || c.Spec.ActiveDeadlineSeconds != 3600 || fmt.Sprint(deps) != wantDeps {
			t.Errorf("the rerun's child %d: pool %q, activeDeadlineSeconds %d, dependsOn %v; want warehouse, 3600, %s",
				i, c.Pool, c.Spec.ActiveDeadlineSeconds, deps, wantDeps)
		}
	}
}

// TestSequentialArrayRunStoppedCancelsEveryChild: gantry stop of a
// sequential array run ends every child CANCELED with the stop's reason,
// none FAILED as the stop of the one before it reached it as a failed
// dependency first; the parent ends CANCELED. More children than
// stopArray reads at once: the last page's are stopped before the first's.
func TestSequentialArrayRunStoppedCancelsEveryChild(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	n := stopArrayPage + 3
	var p jobs.Run
	e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":"hello","cluster":"nowhere","arrayProperties":{"size":%d},"dependsOn":[{"type":"SEQUENTIAL"}]}`, n), &p)
	var stopped jobs.Run
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q,"reason":"wrong input"}`, p.RunID), &stopped)
	if stopped.Status != jobs.StatusCanceled || stopped.ArrayProperties.StatusSummary[jobs.StatusCanceled] != n {
		t.Errorf("the stopped parent: %s, %v; want CANCELED, %d CANCELED", stopped.Status, stopped.ArrayProperties.StatusSummary, n)
	}
	for i := range n {
		var c jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, jobs.ArrayChildID(p.RunID, i)), &c)
		if c.Status != jobs.StatusCanceled || c.StopCode != jobs.StopUserInitiated || c.StoppedReason != "wrong input" {
			t.Errorf("child %d: %s, stop code %q, reason %q, status reason %q; want CANCELED, %s, %q",
				i, c.Status, c.StopCode, c.StoppedReason, c.StatusReason, jobs.StopUserInitiated, "wrong input")
		}
	}
}

// TestArrayRunStopFinishedAtStart: a server that dies after it stored an
// array run's stop and before it stopped its children (stopArray's step
// 1) leaves them queued; the next start stops them, with the stop's
// reason, and the parent ends CANCELED, announced.
func TestArrayRunStopFinishedAtStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := startAPI(t)
	q := e.queue()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const n = 5
	var p jobs.Run
	e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":"hello","cluster":"nowhere","arrayProperties":{"size":%d}}`, n), &p)
	e.stop()
	db, err := storage.Open(ctx, filepath.Join(e.data, "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateRun(ctx, p.RunID, func(r *jobs.Run) bool { return r.StopArray("wrong input") }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e.startServer()
	var got jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, p.RunID), &got)
	if got.Status != jobs.StatusCanceled || got.ArrayProperties.StatusSummary[jobs.StatusCanceled] != n {
		t.Errorf("the parent after the start: %s, %v; want CANCELED, %d CANCELED", got.Status, got.ArrayProperties.StatusSummary, n)
	}
	for i := range n {
		id := jobs.ArrayChildID(p.RunID, i)
		var c jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, id), &c)
		if c.Status != jobs.StatusCanceled || c.StoppedReason != "wrong input" {
			t.Errorf("child %d: %s, reason %q; want CANCELED, %q", i, c.Status, c.StoppedReason, "wrong input")
		}
		waitAnnounced(t, q, id, jobs.StatusCanceled)
		if canceled, _, err := q.Canceled(ctx, id); err != nil || !canceled {
			t.Errorf("child %d marked canceled in the queue: %v, %v; want true", i, canceled, err)
		}
	}
	waitAnnounced(t, q, p.RunID, jobs.StatusCanceled)
}

// withChildrenMarked runs marked with the ids of each page of an array's
// children that stopArray marked canceled, before it stores them.
func withChildrenMarked(marked func(ids []string)) Option {
	return func(c *config) { c.childrenMarked = marked }
}

// TestSequentialArrayRunStopFailsNoChildWhileMarked: gantry stop of a
// sequential array run whose child 0 has its job queued, and whose worker
// stops it and reports it CANCELED as soon as it is marked, before its
// page is stored: child 1, waiting for it, ends CANCELED with the stop's
// reason, not FAILED as child 0's end reached it first.
func TestSequentialArrayRunStopFailsNoChildWhileMarked(t *testing.T) {
	t.Parallel()
	var e *apiEnv
	var once sync.Once
	e = startAPIOn(t, t.TempDir(), withChildrenMarked(func(ids []string) {
		p := ids[0][:strings.LastIndex(ids[0], jobs.ArraySeparator)]
		if !slices.Contains(ids, jobs.ArrayChildID(p, 0)) {
			return
		}
		once.Do(func() {
			// Child 0's worker heard of the stop: its end is applied
			// before the page is stored.
			e.end(jobs.ArrayChildID(p, 0), jobs.StatusCanceled, 0)
			ctx := context.Background()
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				c, err := e.srv.db.GetRun(ctx, jobs.ArrayChildID(p, 0))
				if err == nil && c.Status.Terminal() {
					if c1, err := e.srv.db.GetRun(ctx, jobs.ArrayChildID(p, 1)); err == nil && c1.Status.Terminal() {
						return // its end resolved child 1 (or child 1 was stored first)
					}
				}
			}
			t.Errorf("child 0's CANCELED was not applied, or child 1 not resolved by it, within 30s")
		})
	}))
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	const n = 3
	var p jobs.Run
	e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":"hello","cluster":"nowhere","arrayProperties":{"size":%d},"dependsOn":[{"type":"SEQUENTIAL"}]}`, n), &p)
	var stopped jobs.Run
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q,"reason":"wrong input"}`, p.RunID), &stopped)
	for i := 1; i < n; i++ {
		var c jobs.Run
		e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, jobs.ArrayChildID(p.RunID, i)), &c)
		if c.Status != jobs.StatusCanceled || c.StoppedReason != "wrong input" {
			t.Errorf("child %d: %s, reason %q; want CANCELED, %q", i, c.Status, c.StoppedReason, "wrong input")
		}
	}
	var c0 jobs.Run
	e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, jobs.ArrayChildID(p.RunID, 0)), &c0)
	if c0.Status != jobs.StatusCanceled {
		t.Errorf("child 0: %s; want CANCELED", c0.Status)
	}
}

// TestArrayRunStoppedTwiceKeepsTheFirstReason: gantry stop of an array
// run whose stop goes on (a child runs) with another reason leaves the
// parent's reason, and its children are stopped with that one too, not
// some with each stop's (as two stops at once would).
func TestArrayRunStoppedTwiceKeepsTheFirstReason(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := startAPI(t)
	q := e.queue()
	e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
	var p jobs.Run
	e.ok("gantry.api.runs.submit", `{"taskDefinition":"hello","cluster":"nowhere","arrayProperties":{"size":2}}`, &p)
	c0 := jobs.ArrayChildID(p.RunID, 0)
	if err := q.Report(ctx, &jobs.Event{RunID: c0, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Source: jobs.SourceWorker,
		Worker: "w1", Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	waitAnnounced(t, q, c0, jobs.StatusRunning)
	var first, second jobs.Run
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q,"reason":"wrong input"}`, p.RunID), &first)
	e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q,"reason":"again"}`, p.RunID), &second)
	if second.StoppedReason != "wrong input" {
		t.Errorf("the parent's reason: %q; want %q", second.StoppedReason, "wrong input")
	}
	if canceled, reason, err := q.Canceled(ctx, c0); err != nil || !canceled || reason != "wrong input" {
		t.Errorf("running child 0 marked canceled: %v, %q, %v; want true, %q", canceled, reason, err, "wrong input")
	}
}

// TestArrayRunStopStoresAChildAtATimeWhenItsPageFails: gantry stop of an
// array run one of whose children the store refuses to update fails that
// child alone, the error naming it: its siblings in the same page, whose
// transaction it failed, are stored CANCELED one at a time, and
// announced. Once the store takes it again, another stop ends the array.
func TestArrayRunStopStoresAChildAtATimeWhenItsPageFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, deps string }{
		{"parallel", ""},
		{"sequential", `,"dependsOn":[{"type":"SEQUENTIAL"}]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startAPI(t)
			q := e.queue()
			e.ok("gantry.api.taskdefs.register", helloTaskDef, nil)
			const n, bad = 5, 2
			var p jobs.Run
			e.ok("gantry.api.runs.submit", fmt.Sprintf(`{"taskDefinition":"hello","cluster":"nowhere","arrayProperties":{"size":%d}%s}`, n, tc.deps), &p)
			badID := jobs.ArrayChildID(p.RunID, bad)

			raw, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "gantry.db")+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Exec(fmt.Sprintf(`CREATE TRIGGER refuse_child BEFORE UPDATE ON runs
				WHEN OLD.run_id = '%s' BEGIN SELECT RAISE(ABORT, 'test refuses the child'); END`, badID)); err != nil {
				t.Fatal(err)
			}

			got := apiError(t, e.req(e.op, "gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q,"reason":"wrong input"}`, p.RunID)))
			// Once: a sequential array's waiting children are stored
			// before any is marked, and those refused tried again then.
			if strings.Count(got.Message, "stop "+badID) != 1 || !strings.Contains(got.Message, "test refuses the child") {
				t.Errorf("the stop's error: %q; want it to name child %s, once, and the store's refusal", got.Message, badID)
			}
			for i := range n {
				var c jobs.Run
				e.ok("gantry.api.runs.get", fmt.Sprintf(`{"runId":%q}`, jobs.ArrayChildID(p.RunID, i)), &c)
				if i == bad {
					if c.Status.Terminal() {
						t.Errorf("child %d, refused by the store: %s; want it not ended", i, c.Status)
					}
					continue
				}
				if c.Status != jobs.StatusCanceled || c.StoppedReason != "wrong input" {
					t.Errorf("child %d: %s, reason %q; want CANCELED, %q", i, c.Status, c.StoppedReason, "wrong input")
				}
				waitAnnounced(t, q, c.RunID, jobs.StatusCanceled)
			}
			if tc.deps != "" {
				return // once the store takes it, child 1's CANCELED may fail it, a dependency, before a second stop
			}

			if _, err := raw.Exec(`DROP TRIGGER refuse_child`); err != nil {
				t.Fatal(err)
			}
			var stopped jobs.Run
			e.ok("gantry.api.runs.stop", fmt.Sprintf(`{"runId":%q}`, p.RunID), &stopped)
			if stopped.Status != jobs.StatusCanceled || stopped.ArrayProperties.StatusSummary[jobs.StatusCanceled] != n {
				t.Errorf("the parent stopped again: %s, %v; want CANCELED, %d CANCELED", stopped.Status, stopped.ArrayProperties.StatusSummary, n)
			}
			waitAnnounced(t, q, badID, jobs.StatusCanceled)
		})
	}
}
