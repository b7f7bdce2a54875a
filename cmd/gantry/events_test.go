package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
)

// TestEventsFlagErrorsNameTheFlag: bad flags are refused before anything
// connects (no NATS listens at the URL), every one named at once.
func TestEventsFlagErrorsNameTheFlag(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"events", "--nats", "nats://127.0.0.1:1", "--since", "yesterday", "--until", "-5m",
		"--status", "running,DONE", "--kind", "jobs", "--run", "a.b", "-o", "yaml"})
	err := root.ExecuteContext(context.Background())
	if err == nil {
		t.Fatal("gantry events with bad flags: no error")
	}
	for _, want := range []string{`invalid --since "yesterday"`, `invalid --until "-5m": a duration counts back`,
		`invalid --status "DONE": want one of QUEUED`, `invalid --kind "jobs"`, `invalid --run "a.b"`, `invalid -o/--output "yaml"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("gantry events: error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("gantry events: bad flags tried to connect: %v", err)
	}
}

func TestEventsUntilBeforeSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	_, err := eventsFlags{since: "1h", until: "2h", output: "table"}.parse(now)
	if err == nil || !strings.Contains(err.Error(), `invalid --until "2h": before --since "1h"`) {
		t.Errorf("--until before --since: %v", err)
	}
	q, err := eventsFlags{since: "1h", until: "2026-01-02T14:30:00Z", output: "json"}.parse(now)
	if err != nil || !q.watch.Since.Equal(now.Add(-time.Hour)) || !q.watch.Until.Equal(now.Add(-30*time.Minute)) {
		t.Errorf("--since 1h --until 14:30: %+v, %v", q, err)
	}
}

// TestEventsPastUntilNeedsSince: without --since events starts from now,
// so a past --until (a duration is always one) would end it at once with
// nothing shown: it is refused naming both flags; a future --until follows
// from now until then.
func TestEventsPastUntilNeedsSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	for _, until := range []string{"5m", "0s", "2026-01-02T14:00:00Z", "2026-01-02T15:00:00Z"} {
		_, err := eventsFlags{until: until, output: "table"}.parse(now)
		want := fmt.Sprintf(`invalid --until %q: it is past, and without --since events shows only what comes from now on: give --since too (--since 1h --until %s)`, until, until)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--until %s without --since: %v; want %q", until, err, want)
		}
	}
	q, err := eventsFlags{until: "2026-01-02T16:00:00Z", output: "table"}.parse(now)
	if err != nil || !q.watch.Since.IsZero() || !q.watch.Until.Equal(now.Add(time.Hour)) {
		t.Errorf("a future --until without --since: %+v, %v; want it followed from now until then", q, err)
	}
}

// TestEventsSubject: what NATS can filter it does, with one subject.
func TestEventsSubject(t *testing.T) {
	for _, c := range []struct {
		f    eventsFlags
		want string
	}{
		{eventsFlags{}, ""},
		{eventsFlags{kind: "runs"}, "gantry.events.runs.>"},
		{eventsFlags{kind: "pipeline"}, "gantry.events.pipelines.>"},
		{eventsFlags{runs: []string{"01abc"}}, "gantry.events.runs.01abc"},
		{eventsFlags{runs: []string{"pr-x"}}, "gantry.events.pipelines.pr-x"},
		{eventsFlags{runs: []string{"01abc", "01def"}}, ""},
		{eventsFlags{runs: []string{"01abc", "01def"}, kind: "runs"}, "gantry.events.runs.>"},
		{eventsFlags{pipeline: "daily"}, ""},
		// --pipeline needs the pipeline runs' events to know its runs.
		{eventsFlags{pipeline: "daily", kind: "runs"}, ""},
		{eventsFlags{pipeline: "daily", runs: []string{"01abc"}}, ""},
		{eventsFlags{pipeline: "daily", runs: []string{"pr-x"}}, "gantry.events.pipelines.pr-x"},
		{eventsFlags{pipeline: "daily", kind: "pipelines"}, "gantry.events.pipelines.>"},
	} {
		c.f.output = "table"
		q, err := c.f.parse(time.Now())
		if err != nil {
			t.Fatalf("%+v: %v", c.f, err)
		}
		if q.watch.Subject != c.want {
			t.Errorf("%+v: subject %q, want %q", c.f, q.watch.Subject, c.want)
		}
	}
}

func runEv(id string, st jobs.Status, pipelineRun string) client.StreamEvent {
	return client.StreamEvent{Run: &jobs.Event{RunID: id, Status: st, PipelineRunID: pipelineRun, Source: jobs.SourceServer}}
}

func pipeEv(id, name string, st jobs.Status) client.StreamEvent {
	return client.StreamEvent{Pipeline: &jobs.PipelineEvent{PipelineRunID: id, Pipeline: name, Status: st}}
}

// TestEventsMatch: the filters NATS cannot apply, all of them together;
// --pipeline takes the stage runs of the pipeline runs seen.
func TestEventsMatch(t *testing.T) {
	type step struct {
		ev   client.StreamEvent
		want bool
	}
	for _, c := range []struct {
		name  string
		f     eventsFlags
		steps []step
	}{
		{"all", eventsFlags{}, []step{{runEv("a", jobs.StatusQueued, ""), true}, {pipeEv("pr-1", "p", jobs.StatusRunning), true}}},
		{"runs", eventsFlags{runs: []string{"a", "pr-1"}}, []step{
			{runEv("a", jobs.StatusQueued, ""), true}, {runEv("b", jobs.StatusQueued, ""), false},
			{pipeEv("pr-1", "p", jobs.StatusRunning), true}, {pipeEv("pr-2", "p", jobs.StatusRunning), false}}},
		{"status", eventsFlags{statuses: []string{"failed", "CANCELED"}}, []step{
			{runEv("a", jobs.StatusQueued, ""), false}, {runEv("a", jobs.StatusFailed, ""), true},
			{pipeEv("pr-1", "p", jobs.StatusCanceled), true}}},
		{"kind runs", eventsFlags{kind: "runs"}, []step{{runEv("a", jobs.StatusQueued, ""), true}, {pipeEv("pr-1", "p", jobs.StatusRunning), false}}},
		{"kind pipelines", eventsFlags{kind: "pipelines"}, []step{{runEv("a", jobs.StatusQueued, ""), false}, {pipeEv("pr-1", "p", jobs.StatusRunning), true}}},
		{"pipeline", eventsFlags{pipeline: "daily"}, []step{
			{runEv("early", jobs.StatusQueued, "pr-1"), false}, // its pipeline run not seen yet
			{pipeEv("pr-1", "daily", jobs.StatusRunning), true},
			{pipeEv("pr-2", "other", jobs.StatusRunning), false},
			{runEv("s1", jobs.StatusQueued, "pr-1"), true},
			{runEv("s2", jobs.StatusQueued, "pr-2"), false},
			{runEv("lone", jobs.StatusQueued, ""), false}}},
		{"pipeline and kind runs", eventsFlags{pipeline: "daily", kind: "runs"}, []step{
			{pipeEv("pr-1", "daily", jobs.StatusRunning), false},
			{runEv("s1", jobs.StatusQueued, "pr-1"), true},
			{runEv("s2", jobs.StatusQueued, "pr-2"), false}}},
		{"pipeline and one run", eventsFlags{pipeline: "daily", runs: []string{"s1"}}, []step{
			{pipeEv("pr-1", "daily", jobs.StatusRunning), false},
			{runEv("s1", jobs.StatusQueued, "pr-1"), true},
			{runEv("s3", jobs.StatusQueued, "pr-1"), false}}},
		{"pipeline and status", eventsFlags{pipeline: "daily", statuses: []string{"SUCCEEDED"}}, []step{
			{pipeEv("pr-1", "daily", jobs.StatusRunning), false},
			{runEv("s1", jobs.StatusSucceeded, "pr-1"), true},
			{pipeEv("pr-1", "daily", jobs.StatusSucceeded), true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.f.output = "table"
			q, err := c.f.parse(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range c.steps {
				if got := q.match(s.ev); got != s.want {
					t.Errorf("event %d (%+v %+v): match %v, want %v", i, s.ev.Run, s.ev.Pipeline, got, s.want)
				}
			}
		})
	}
}

// TestEventLine: one line an event, whole when piped; on an 80-column
// terminal cut to fit with its status coloured.
func TestEventLine(t *testing.T) {
	old := localZone
	localZone = time.UTC
	defer func() { localZone = old }()
	at := time.Date(2026, 3, 14, 15, 9, 26, 500, time.UTC)
	code := 3
	run := client.StreamEvent{Run: &jobs.Event{RunID: "01jq8x9v2c3n4m5p6q7r8s9t0v", Status: jobs.StatusFailed, Time: at,
		ExitCode: &code, Worker: "host-a", Cluster: "etl", TaskDefinition: "extract:3", PipelineRunID: "pr-01jq", Stage: "extract",
		StoppedReason: "Essential container in task exited"}}
	const want = `2026-03-14T15:09:26Z run      01jq8x9v2c3n4m5p6q7r8s9t0v FAILED    task=extract:3 exit=3 worker=host-a cluster=etl stage=pr-01jq/extract reason="Essential container in task exited"`
	if got := eventLine(run, style{}); got != want {
		t.Errorf("piped:\n got %q\nwant %q", got, want)
	}
	idx := 2
	child := client.StreamEvent{Run: &jobs.Event{RunID: "01jq8x9v2c3n4m5p6q7r8s9t0w", Status: jobs.StatusQueued, Time: at,
		PipelineRunID: "pr-01jq", Stage: "extract", ArrayIndex: &idx}}
	const wantChild = `2026-03-14T15:09:26Z run      01jq8x9v2c3n4m5p6q7r8s9t0w QUEUED    stage=pr-01jq/extract[2]`
	if got := eventLine(child, style{}); got != wantChild {
		t.Errorf("a run of an array stage:\n got %q\nwant %q", got, wantChild)
	}
	got := eventLine(run, style{tty: true, width: 80, color: true})
	plain := strings.NewReplacer("\x1b[31m", "", "\x1b[0m", "").Replace(got)
	if n := len([]rune(plain)); n != 80 || !strings.HasSuffix(plain, "…") || !strings.Contains(got, "\x1b[31mFAILED\x1b[0m") {
		t.Errorf("on 80 columns: %q (%d columns), want cut to 80 with the status red", got, n)
	}
	pipe := client.StreamEvent{Pipeline: &jobs.PipelineEvent{PipelineRunID: "pr-01jq", Pipeline: "daily", Status: jobs.StatusRunning, Time: at,
		Stages: map[string]jobs.Status{"load": jobs.StatusPending, "extract": jobs.StatusSucceeded}}}
	const wantPipe = `2026-03-14T15:09:26Z pipeline pr-01jq                    RUNNING   pipeline=daily stages=extract:SUCCEEDED,load:PENDING`
	if got := eventLine(pipe, style{}); got != wantPipe {
		t.Errorf("pipeline run:\n got %q\nwant %q", got, wantPipe)
	}
	waiting := client.StreamEvent{Pipeline: &jobs.PipelineEvent{PipelineRunID: "pr-01jr", Pipeline: "daily", Status: jobs.StatusPending, Time: at,
		StatusReason: "waiting: 1 of 1 active runs of daily (maxActiveRuns)", Stages: map[string]jobs.Status{"extract": jobs.StatusPending}}}
	const wantWaiting = `2026-03-14T15:09:26Z pipeline pr-01jr                    PENDING   pipeline=daily stages=extract:PENDING reason="waiting: 1 of 1 active runs of daily (maxActiveRuns)"`
	if got := eventLine(waiting, style{}); got != wantWaiting {
		t.Errorf("waiting pipeline run:\n got %q\nwant %q", got, wantWaiting)
	}
	queued := client.StreamEvent{Run: &jobs.Event{RunID: "01jq8x9v2c3n4m5p6q7r8s9t0v", Status: jobs.StatusQueued, Time: at}}
	if got := eventLine(queued, style{tty: true, width: 80, color: true}); got != "2026-03-14T15:09:26Z run      01jq8x9v2c3n4m5p6q7r8s9t0v \x1b[2mQUEUED\x1b[0m" {
		t.Errorf("queued on a terminal: %q", got)
	}
}

// FuzzParseEventTime: --since and --until give a time or an error naming
// the flag, never a panic.
func FuzzParseEventTime(f *testing.F) {
	for _, s := range []string{"10m", "1h30m", "-5m", "0s", "2026-01-02T15:04:05Z", "2026-01-02T15:04:05.999+02:00", "", "yesterday", "1d", "1d12h", "2w"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseEventTime("--until", s, now)
		if err != nil {
			if !strings.Contains(err.Error(), "--until") {
				t.Fatalf("parseEventTime(%q): error %q does not name the flag", s, err)
			}
			return
		}
		if got.IsZero() && s != "0001-01-01T00:00:00Z" {
			// A duration is back from now; a time as given.
			if _, derr := jobs.ParseDuration(s); derr == nil {
				t.Fatalf("parseEventTime(%q): zero time", s)
			}
		}
	})
}

// TestEventsPipelineAsksForAnUnseenPipelineRun: with --pipeline, a stage
// run's event that comes before any of its pipeline run's asks the server
// once which pipeline that run is of; without an answer (a submit-only
// user) it waits for the pipeline run's own event, as before.
func TestEventsPipelineAsksForAnUnseenPipelineRun(t *testing.T) {
	q, err := eventsFlags{pipeline: "daily", output: "table"}.parse(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	asked := map[string]int{}
	q.lookup = func(id string) (string, bool) {
		asked[id]++
		switch id {
		case "pr-1":
			return "daily", true
		case "pr-2":
			return "other", true
		}
		return "", false
	}
	for i, s := range []struct {
		ev   client.StreamEvent
		want bool
	}{
		{runEv("first", jobs.StatusQueued, "pr-1"), true}, // asked: daily's
		{runEv("again", jobs.StatusQueued, "pr-1"), true},
		{runEv("x", jobs.StatusQueued, "pr-2"), false}, // asked: other's
		{runEv("y", jobs.StatusRunning, "pr-2"), false},
		{runEv("z", jobs.StatusQueued, "pr-3"), false}, // no answer
		{pipeEv("pr-3", "daily", jobs.StatusRunning), true},
		{runEv("z", jobs.StatusRunning, "pr-3"), true},
	} {
		if got := q.match(s.ev); got != s.want {
			t.Errorf("event %d (%+v): match %v, want %v", i, s.ev.Run, got, s.want)
		}
	}
	if asked["pr-1"] != 1 || asked["pr-2"] != 1 || asked["pr-3"] != 1 {
		t.Errorf("asked %v; want each pipeline run once", asked)
	}
}

// stageEv is a stage run's event as the server publishes it now: naming
// its pipeline.
func stageEv(id string, st jobs.Status, pipelineRun, pipeline string) client.StreamEvent {
	ev := runEv(id, st, pipelineRun)
	ev.Run.Pipeline = pipeline
	return ev
}

// TestEventsPipelineNamedByStageRuns: with --pipeline, a stage run's event
// that names its pipeline matches by that name alone, before any event of
// its pipeline run and with no lookup (which a submit-only user may not
// do); one that does not (queued by an older server) is still looked up.
func TestEventsPipelineNamedByStageRuns(t *testing.T) {
	type step struct {
		ev   client.StreamEvent
		want bool
	}
	for _, c := range []struct {
		name  string
		f     eventsFlags
		steps []step
		asked string // the pipeline runs looked up
	}{
		{"pipeline", eventsFlags{pipeline: "daily"}, []step{
			{stageEv("first", jobs.StatusQueued, "pr-1", "daily"), true}, // before pr-1's own
			{stageEv("x", jobs.StatusQueued, "pr-2", "other"), false},
			{pipeEv("pr-2", "daily", jobs.StatusRunning), true},
			{stageEv("y", jobs.StatusRunning, "pr-2", "other"), false}, // its own name wins
			{runEv("old", jobs.StatusQueued, "pr-3"), true},            // looked up: daily's
			{runEv("older", jobs.StatusQueued, "pr-4"), false},         // looked up: no answer
			{runEv("lone", jobs.StatusQueued, ""), false},
		}, "[pr-3 pr-4]"},
		{"pipeline, kind runs and status", eventsFlags{pipeline: "daily", kind: "runs", statuses: []string{"FAILED"}}, []step{
			{stageEv("a", jobs.StatusQueued, "pr-1", "daily"), false},
			{stageEv("a", jobs.StatusFailed, "pr-1", "daily"), true},
			{pipeEv("pr-1", "daily", jobs.StatusFailed), false},
		}, "[]"},
		{"no pipeline filter", eventsFlags{}, []step{
			{stageEv("a", jobs.StatusQueued, "pr-1", "daily"), true},
		}, "[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.f.output = "table"
			q, err := c.f.parse(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			asked := []string{}
			q.lookup = func(id string) (string, bool) {
				asked = append(asked, id)
				if id == "pr-3" {
					return "daily", true
				}
				return "", false
			}
			for i, s := range c.steps {
				if got := q.match(s.ev); got != s.want {
					t.Errorf("event %d (%+v): match %v, want %v", i, s.ev.Run, got, s.want)
				}
			}
			if got := fmt.Sprint(asked); got != c.asked {
				t.Errorf("looked up %s; want %s (only the pipeline runs whose stage runs' events do not name their pipeline)", got, c.asked)
			}
		})
	}
}

// TestEventPrinterLeavesOutRepeats: a pipeline run's event that says what
// its last line said (announced again for a stage run's STARTING) prints
// nothing; a change of status, stages or reason prints, and so does the
// RUNNING of a retry after an end. -o json prints every event.
func TestEventPrinterLeavesOutRepeats(t *testing.T) {
	at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	ev := func(id string, s jobs.Status, reason string, stages ...jobs.Status) client.StreamEvent {
		pe := &jobs.PipelineEvent{PipelineRunID: id, Pipeline: "daily", Status: s, StatusReason: reason, Time: at,
			Stages: map[string]jobs.Status{"a": stages[0], "b": stages[1]}}
		return client.StreamEvent{Pipeline: pe, JSON: []byte(`{"pipelineRunId":"` + id + `"}`)}
	}
	const P, R, S, F = jobs.StatusPending, jobs.StatusRunning, jobs.StatusSucceeded, jobs.StatusFailed
	events := []client.StreamEvent{
		ev("pr-1", P, "waiting: 1 of 1", P, P),
		ev("pr-1", P, "waiting: 2 of 1", P, P), // the reason changed
		ev("pr-1", R, "", R, P),
		ev("pr-2", R, "", R, P), // another run: printed
		ev("pr-1", R, "", R, P), // a stage run's STARTING: no news
		ev("pr-1", R, "", R, P),
		ev("pr-1", R, "", S, R),
		ev("pr-1", F, "", S, F),
		ev("pr-1", R, "", S, R), // retried: RUNNING again
	}
	var b strings.Builder
	p := eventPrinter{w: &b, shown: map[string]string{}}
	for _, e := range events {
		if err := p.print(e); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		f := strings.Fields(l)
		got = append(got, f[2]+" "+f[3]+" "+f[5])
	}
	want := []string{"pr-1 PENDING stages=a:PENDING,b:PENDING", "pr-1 PENDING stages=a:PENDING,b:PENDING",
		"pr-1 RUNNING stages=a:RUNNING,b:PENDING", "pr-2 RUNNING stages=a:RUNNING,b:PENDING",
		"pr-1 RUNNING stages=a:SUCCEEDED,b:RUNNING", "pr-1 FAILED stages=a:SUCCEEDED,b:FAILED",
		"pr-1 RUNNING stages=a:SUCCEEDED,b:RUNNING"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("printed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	b.Reset()
	p = eventPrinter{w: &b, json: true, shown: map[string]string{}}
	for _, e := range events {
		p.print(e)
	}
	if n := strings.Count(b.String(), "\n"); n != len(events) {
		t.Errorf("-o json printed %d events of %d", n, len(events))
	}
}

// TestLostNATSSaysSo: gantry logs -f and gantry wait, when the server
// they followed went away, ended with nats.go's words alone
// ("gantry.api.runs.get: nats: connection closed"); an error that comes
// once the connection is lost says NATS was lost, where, and what to do,
// while one of a connection still up is left as it is.
func TestLostNATSSaysSo(t *testing.T) {
	nc := embeddedNATS(t)
	url := nc.ConnectedUrl()
	cause := errors.New("gantry.api.runs.get: nats: connection closed")
	if err := lostNATS(cause, nc, url, "again"); err != cause {
		t.Errorf("connected: %v; want the error as it is", err)
	}
	if err := lostNATS(nil, nc, url, "again"); err != nil {
		t.Errorf("no error: %v", err)
	}
	nc.Close()
	err := lostNATS(cause, nc, url, "the runs go on: gantry wait again waits for them")
	want := "lost NATS at " + url + " (the runs go on: gantry wait again waits for them): " + cause.Error()
	if err == nil || err.Error() != want || !errors.Is(err, cause) {
		t.Errorf("lost: %v; want %q", err, want)
	}
}
