package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// Golden tests of the CLI's tables and JSON, at a fixed time and in UTC.
// Rewrite the files after an intended change with
//
//	go test ./cmd/gantry -run Golden -update

var update = flag.Bool("update", false, "rewrite the golden files of the CLI's output")

var goldenNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func fixedClock(t *testing.T) {
	t.Helper()
	oldClock, oldZone := clock, localZone
	clock, localZone = func() time.Time { return goldenNow }, time.UTC
	t.Cleanup(func() { clock, localZone = oldClock, oldZone })
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rewrite it with -update if intended):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func ptr[T any](v T) *T { return &v }

func goldenRuns() []jobs.Run {
	at := func(d time.Duration) *time.Time { return ptr(goldenNow.Add(-d)) }
	return []jobs.Run{
		{RunID: "01jp8z6kq3m4n5p6r7s8t9v0wx", Status: jobs.StatusRunning, TaskDefinition: "etl-sales:3", Cluster: "default", Priority: jobs.PriorityNormal,
			Worker: "host-a", CreatedAt: *at(5 * time.Minute), StartedAt: at(4 * time.Minute), ExitCode: nil,
			Attempts:   []jobs.Attempt{{Attempt: 1, Worker: "host-a", Status: jobs.StatusRunning, CreatedAt: *at(5 * time.Minute), StartedAt: at(4 * time.Minute)}},
			Containers: []jobs.ContainerResult{}},
		{RunID: "01jp8y2bc3d4e5f6g7h8j9k0mn", Status: jobs.StatusFailed, TaskDefinition: "adhoc:1", Cluster: "default", Priority: jobs.PriorityNormal,
			Worker: "host-b", CreatedAt: *at(3 * time.Hour), StartedAt: at(3*time.Hour - 10*time.Second),
			FinishedAt: at(3*time.Hour - 72*time.Second), ExitCode: ptr(3), StopCode: jobs.StopEssentialExited,
			StoppedReason: "Essential container in task exited",
			Attempts: []jobs.Attempt{
				{Attempt: 1, Worker: "host-b", Status: jobs.StatusFailed, ExitCode: ptr(3), StoppedReason: "Essential container in task exited",
					CreatedAt: *at(3 * time.Hour), StartedAt: at(3*time.Hour - 10*time.Second), FinishedAt: at(3*time.Hour - 40*time.Second)},
				{Attempt: 2, Worker: "host-b", Status: jobs.StatusFailed, ExitCode: ptr(3), StoppedReason: "Essential container in task exited",
					CreatedAt: *at(3*time.Hour - 41*time.Second), StartedAt: at(3*time.Hour - 45*time.Second), FinishedAt: at(3*time.Hour - 72*time.Second)},
			},
			Containers: []jobs.ContainerResult{{Name: "main", ExitCode: ptr(3), Reason: "exit status 3"}}},
		{RunID: "01jp8x0000aaaabbbbccccdddd", Status: jobs.StatusQueued, TaskDefinition: "big-memory:1", Cluster: "etl", Priority: jobs.PriorityHigh,
			CreatedAt: *at(26 * time.Hour), StatusReason: "no worker in cluster etl has 32000 MiB of memory (the most is 7900 MiB)",
			Attempts: []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: *at(26 * time.Hour)}}, Containers: []jobs.ContainerResult{}},
	}
}

// goldenRunAfterEnd is a run ended by worker host-b, cut off from NATS
// for longer than its lease, whose job went to host-a meanwhile: host-a's
// attempt ran after the end (jobs.Attempt.AfterEnd).
func goldenRunAfterEnd() jobs.Run {
	at := func(d time.Duration) *time.Time { return ptr(goldenNow.Add(-d)) }
	r := jobs.Run{RunID: "01jp8w1111eeeeffffgggghhhh", Status: jobs.StatusSucceeded, TaskDefinition: "etl-sales:3", Cluster: "default",
		Priority: jobs.PriorityNormal, Worker: "host-b", CreatedAt: *at(time.Hour), StartedAt: at(time.Hour - 2*time.Second),
		FinishedAt: at(time.Hour - 62*time.Second), ExitCode: ptr(0),
		Attempts: []jobs.Attempt{
			{Attempt: 1, Worker: "host-b", Status: jobs.StatusSucceeded, ExitCode: ptr(0),
				CreatedAt: *at(time.Hour), StartedAt: at(time.Hour - 2*time.Second), FinishedAt: at(time.Hour - 62*time.Second)},
		},
		Containers: []jobs.ContainerResult{{Name: "main", ExitCode: ptr(0)}}}
	r.Apply(jobs.Event{RunID: r.RunID, Attempt: 2, Seq: 1, Status: jobs.StatusRunning, Source: jobs.SourceWorker, Worker: "host-a",
		Time: *at(time.Hour - 40*time.Second)})
	r.Apply(jobs.Event{RunID: r.RunID, Attempt: 2, Seq: 2, Status: jobs.StatusSucceeded, Source: jobs.SourceWorker, Worker: "host-a",
		Time: *at(time.Hour - 100*time.Second), ExitCode: ptr(0), Containers: []jobs.ContainerResult{{Name: "main", ExitCode: ptr(0)}}})
	return r
}

// goldenRunRetrying is a run whose first attempt failed on host-a 30 s
// ago: its retry waits for its backoff, QUEUED. The run's worker and
// startedAt (-o json) are still the first attempt's.
func goldenRunRetrying() jobs.Run {
	at := func(d time.Duration) *time.Time { return ptr(goldenNow.Add(-d)) }
	r := jobs.Run{RunID: "01jp8v2222iiiijjjjkkkkmmmm", Status: jobs.StatusQueued, TaskDefinition: "etl-sales:3", Cluster: "default",
		Priority: jobs.PriorityNormal, CreatedAt: *at(2 * time.Minute),
		Attempts:   []jobs.Attempt{{Attempt: 1, Status: jobs.StatusQueued, CreatedAt: *at(2 * time.Minute)}},
		Containers: []jobs.ContainerResult{},
		Spec:       jobs.RunSpec{RetryStrategy: &jobs.RetryStrategy{Attempts: 2, Backoff: &jobs.Backoff{InitialSeconds: 600}}}}
	r.Apply(jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusRunning, Source: jobs.SourceWorker, Worker: "host-a",
		Time: *at(90 * time.Second)})
	r.Apply(jobs.Event{RunID: r.RunID, Attempt: 1, Seq: 2, Status: jobs.StatusFailed, Source: jobs.SourceWorker, Worker: "host-a",
		Time: *at(30 * time.Second), ExitCode: ptr(1), StopCode: jobs.StopEssentialExited, StoppedReason: "Essential container in task exited",
		Containers: []jobs.ContainerResult{{Name: "main", ExitCode: ptr(1)}}})
	return r
}

func TestGoldenOutput(t *testing.T) {
	fixedClock(t)
	runs := goldenRuns()
	late := goldenRunAfterEnd()
	retrying := goldenRunRetrying()
	workers := []jobs.WorkerInfo{{ID: "host-a", Cluster: "default", Host: "host-a.example", State: jobs.WorkerActive,
		Labels: map[string]string{"zone": "a"}, Capacity: jobs.Resources{CPU: 4096, Memory: 7900, Slots: 4},
		InUse: jobs.Resources{CPU: 1024, Memory: 512, Slots: 1}, Runs: []string{runs[0].RunID},
		StartedAt: goldenNow.Add(-48 * time.Hour), LastHeartbeat: goldenNow.Add(-2 * time.Second)}}
	taskdefs := []jobs.RegisteredTaskDefinition{{TaskDefinition: jobs.TaskDefinition{Family: "etl-sales", Revision: 3,
		CPU: "512", Memory: "1024", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "gantry/samples:latest"},
			{Name: "sidecar", Image: "gantry/samples:latest"}}}, Status: jobs.TaskDefActive, RegisteredAt: goldenNow.Add(-72 * time.Hour)}}
	tests := []struct {
		name  string
		v     any
		table func(io.Writer) error
	}{
		{"ps", runs, func(w io.Writer) error { return psTable(w, runs, clock(), psNormal) }},
		{"describe", &runs[1], func(w io.Writer) error { return describeRun(w, &runs[1]) }},
		{"describe-queued", &runs[2], func(w io.Writer) error { return describeRun(w, &runs[2]) }},
		{"describe-after-end", &late, func(w io.Writer) error { return describeRun(w, &late) }},
		{"describe-retrying", &retrying, func(w io.Writer) error { return describeRun(w, &retrying) }},
		// Its WORKER is "-": the retry waits for the next worker.
		{"ps-retrying", []jobs.Run{retrying}, func(w io.Writer) error { return psTable(w, []jobs.Run{retrying}, clock(), psNormal) }},
		{"workers-ls", workers, func(w io.Writer) error { return workersTable(w, workers, clock()) }},
		{"workers-describe", &workers[0], func(w io.Writer) error { return describeWorker(w, &workers[0]) }},
		{"taskdef-ls", taskdefs, func(w io.Writer) error { return taskdefsTable(w, taskdefs, clock()) }},
	}
	for _, tt := range tests {
		for _, format := range []output{"table", "json", "yaml"} {
			t.Run(tt.name+"."+string(format), func(t *testing.T) {
				var buf bytes.Buffer
				if err := format.write(&buf, tt.v, tt.table); err != nil {
					t.Fatal(err)
				}
				golden(t, tt.name+"."+string(format), buf.Bytes())
			})
		}
	}
}

func TestTableFitsTerminal(t *testing.T) {
	fixedClock(t)
	var buf bytes.Buffer
	runs := goldenRuns()
	psTable(&buf, runs, clock(), psNormal)
	wide := renderTable(buf.String(), style{tty: true, width: 1000})
	narrow := renderTable(buf.String(), style{tty: true, width: 100})
	for _, l := range strings.Split(strings.TrimSuffix(narrow, "\n"), "\n") {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("line of %d characters in a 100-column terminal: %q", n, l)
		}
	}
	if !strings.Contains(narrow, "…") || !strings.Contains(narrow, "01jp8z6kq3m4n5p6r7s8t9v0wx") {
		t.Errorf("want long columns cut and run ids whole:\n%s", narrow)
	}
	if strings.Contains(wide, "…") || strings.Contains(wide, "\x1b[") {
		t.Errorf("a wide terminal needs no cut, and colour was off:\n%s", wide)
	}
	colored := renderTable(buf.String(), style{tty: true, width: 1000, color: true})
	if !strings.Contains(colored, "\x1b[31mFAILED\x1b[0m") {
		t.Errorf("FAILED is not red:\n%q", colored)
	}
	// On an 80-column terminal the statuses are cut too; they keep their
	// colours.
	cutColored := renderTable(buf.String(), style{tty: true, width: 60, color: true})
	if !strings.Contains(cutColored, "…") || !strings.Contains(cutColored, "\x1b[31mFAIL") || !strings.Contains(cutColored, "\x1b[36mRUNN") {
		t.Errorf("statuses cut to fit lost their colours:\n%q", cutColored)
	}
	golden(t, "ps.tty100", []byte(narrow))
}

func TestColorHonoursNoColor(t *testing.T) {
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "1")
	if colorAllowed() {
		t.Error("NO_COLOR=1 must turn colour off")
	}
	t.Setenv("NO_COLOR", "")
	if !colorAllowed() {
		t.Error("colour off with NO_COLOR empty (no-color.org: present and not empty)")
	}
	t.Setenv("TERM", "dumb")
	if colorAllowed() {
		t.Error("colour on a dumb terminal")
	}
	if st := styleOf(&bytes.Buffer{}); st.tty || st.color {
		t.Error("a buffer is not a terminal")
	}
}

// TestPsOnAnEightyColumnTerminal: under 100 columns ps leaves out WORKER
// and CREATED, so that at 80 the status, exit code and duration are whole
// and the reason shows more than a word's start.
func TestPsOnAnEightyColumnTerminal(t *testing.T) {
	fixedClock(t)
	var buf bytes.Buffer
	runs := goldenRuns()
	psTable(&buf, runs, clock(), psNarrow)
	out := renderTable(buf.String(), style{tty: true, width: 80})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if h := lines[0]; strings.Contains(h, "WORKER") || strings.Contains(h, "CREATED") || !strings.Contains(h, "DURATION") || !strings.Contains(h, "REASON") {
		t.Errorf("narrow header %q", h)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 80 {
			t.Errorf("line of %d characters on 80 columns: %q", n, l)
		}
	}
	for _, r := range runs {
		if !strings.Contains(out, string(r.Status)) {
			t.Errorf("status %s cut on 80 columns:\n%s", r.Status, out)
		}
	}
}

// TestPsWide: gantry ps -o wide shows TAGS (key=value, by key) besides
// WORKER and CREATED, which it keeps on a narrow terminal too, and does not
// cut its lines to the terminal.
func TestPsWide(t *testing.T) {
	fixedClock(t)
	runs := goldenRuns()
	runs[0].Tags = map[string]string{"team": "data", "env": "prod"}
	runs[1].Tags = map[string]string{"cost-centre": "", "owner": "ana", "pipeline": "daily-sales", "reason": "reload after the outage", "tier": "gold"}
	var buf bytes.Buffer
	if err := outputWide.write(&buf, runs, func(w io.Writer) error { return psTable(w, runs, clock(), psWide) }); err != nil {
		t.Fatal(err)
	}
	golden(t, "ps.wide", buf.Bytes())

	buf.Reset()
	psTable(&buf, runs, clock(), psWide)
	out := renderTable(buf.String(), style{tty: true}) // as write renders wide on a terminal
	if h := strings.SplitN(out, "\n", 2)[0]; !strings.Contains(h, "WORKER") || !strings.Contains(h, "CREATED") || !strings.Contains(h, "TAGS") {
		t.Errorf("wide header %q", h)
	}
	if strings.Contains(out, "…") {
		t.Errorf("a wide table cut to a terminal:\n%s", out)
	}
}

// TestTagsCell: ps -o wide's TAGS cell holds whole tags up to 40
// characters and counts the rest; a first tag longer than that alone is cut.
func TestTagsCell(t *testing.T) {
	long := strings.Repeat("x", 60)
	for _, c := range []struct {
		tags map[string]string
		want string
	}{
		{nil, "-"},
		{map[string]string{"team": "data"}, "team=data"},
		{map[string]string{"team": "data", "env": "prod", "cost-centre": ""}, "cost-centre=,env=prod,team=data"},
		{map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9", "j": "10"},
			"a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10"}, // 40: whole
		{map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9", "j": "100"},
			"a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,+1"},
		{map[string]string{"owner": "ana", "reason": "reload after the outage", "tier": "gold"}, "owner=ana,+2"},
		{map[string]string{"owner": "ana", "reason": "reload after the outage"}, "owner=ana,reason=reload after the outage"},
		{map[string]string{"note": long}, "note=" + strings.Repeat("x", 34) + "…"},
		{map[string]string{"note": long, "team": "data"}, "note=" + strings.Repeat("x", 31) + "…,+1"},
		{map[string]string{"a": "1", "b": strings.Repeat("y", 40)}, "a=1,+1"},
	} {
		got := tagsCell(c.tags)
		if got != c.want {
			t.Errorf("tagsCell(%v) = %q; want %q", c.tags, got, c.want)
		}
		if n := len([]rune(got)); n > tagsWidth {
			t.Errorf("tagsCell(%v): %d characters, more than %d", c.tags, n, tagsWidth)
		}
	}
}

// TestPsOutputWide: -o wide is gantry ps's only (other listings refuse it
// naming the formats they take), and completion offers it there only.
func TestPsOutputWide(t *testing.T) {
	if err := offline("ps", "-o", "wide"); err == nil || strings.Contains(err.Error(), "output") {
		t.Errorf("gantry ps -o wide: %v; want it taken (and no NATS to connect to)", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "-o", "wider"}, `"wider": want table, wide, json or yaml`},
		{[]string{"describe", "r1", "-o", "wide"}, `"wide": want table, json or yaml`},
	} {
		if err := offline(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %v: %v; want %q", c.args, err, c.want)
		}
	}
	complete := func(args ...string) string {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"__complete"}, args...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("__complete %v: %v", args, err)
		}
		return out.String()
	}
	if out := complete("ps", "-o", ""); out != "table\nwide\njson\nyaml\n:4\n" {
		t.Errorf("__complete ps -o '': %q", out)
	}
	if out := complete("workers", "ls", "-o", ""); out != "table\njson\nyaml\n:4\n" {
		t.Errorf("__complete workers ls -o '': %q", out)
	}
}

// TestDescribeRunBackInTheQueue: a run QUEUED again (a retry waiting for
// its backoff, a lost worker's job waiting for the next worker) shows at
// its top the current attempt's worker and start, none yet, not the
// previous attempt's as if it still ran there; the attempts table keeps
// the earlier one.
func TestDescribeRunBackInTheQueue(t *testing.T) {
	fixedClock(t)
	at := func(d time.Duration) time.Time { return goldenNow.Add(-d) }
	lost := goldenRuns()[0] // RUNNING on host-a
	lost.Apply(jobs.Event{RunID: lost.RunID, Attempt: 1, Seq: 1, Status: jobs.StatusFailed, Source: jobs.SourceServer, Worker: "host-a",
		Time: at(time.Minute), StopCode: jobs.StopWorkerLost, StoppedReason: "worker host-a lost", Redelivered: true})
	if lost.Status != jobs.StatusQueued {
		t.Fatalf("the lost attempt's run is %s, want QUEUED", lost.Status)
	}
	running := goldenRuns()[0]
	for name, c := range map[string]struct {
		r    jobs.Run
		want []string
	}{
		"retry": {goldenRunRetrying(), []string{"Worker:\t- (attempt 2 not taken yet)\n", "Started:\t-\n", "Duration:\t-\n",
			"1\thost-a\tFAILED\t1\t1m30s ago\t"}},
		"redelivery": {lost, []string{"Worker:\t- (attempt 2 not taken yet)\n", "Started:\t-\n",
			"1\thost-a\tFAILED\t-\t4m0s ago\tworker host-a lost\n", "2\t-\tQUEUED\t"}},
		"running": {running, []string{"Worker:\thost-a\n", "Started:\t2026-03-14T15:05:26Z (4m0s ago)\n", "Duration:\t4m0s\n"}},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := describeRun(&buf, &c.r); err != nil {
				t.Fatal(err)
			}
			for _, want := range c.want {
				if !strings.Contains(buf.String(), want) {
					t.Errorf("describe:\n%s\nwant %q", buf.String(), want)
				}
			}
		})
	}
}

// TestDescribeStageRun: gantry describe of a stage's run names its
// pipeline run, pipeline and stage (with its index in an array); -o json
// had them only under spec.stage.
func TestDescribeStageRun(t *testing.T) {
	fixedClock(t)
	for _, c := range []struct {
		stage jobs.StageContext
		want  string
	}{
		{jobs.StageContext{PipelineRunID: "pr-01jp8z", Pipeline: "daily-sales", Stage: "transform", ArrayIndex: ptr(2)},
			"Pipeline run:\tpr-01jp8z (pipeline daily-sales, stage transform[2])\n"},
		{jobs.StageContext{PipelineRunID: "pr-01jp8z", Pipeline: "daily-sales", Stage: "load"},
			"Pipeline run:\tpr-01jp8z (pipeline daily-sales, stage load)\n"},
		{jobs.StageContext{PipelineRunID: "pr-01jp8z", Stage: "load"}, // queued before runs kept the pipeline's name
			"Pipeline run:\tpr-01jp8z (stage load)\n"},
	} {
		r := goldenRuns()[1]
		r.Spec.Stage = &c.stage
		var buf bytes.Buffer
		if err := describeRun(&buf, &r); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "Status:\tFAILED\n"+c.want) {
			t.Errorf("describe:\n%s\nwant the line after the status:\n%s", buf.String(), c.want)
		}
	}
	var buf bytes.Buffer
	r := goldenRuns()[1]
	describeRun(&buf, &r)
	if strings.Contains(buf.String(), "Pipeline run:") {
		t.Errorf("a run of no pipeline names one:\n%s", buf.String())
	}
}

// TestDrainNote: gantry workers drain and activate of a worker that is not
// live, or that is stopping, print its id and state as for any worker and
// say on stderr what the state is: recorded for its next start; a stopping
// worker, DRAINING, takes no run again before it stops.
func TestDrainNote(t *testing.T) {
	for _, c := range []struct {
		name  string
		x     jobs.WorkerInfo
		drain bool
		want  []string // in the note; none for no note
	}{
		{"drain live", jobs.WorkerInfo{ID: "w1", State: jobs.WorkerDraining}, true, nil},
		{"activate live", jobs.WorkerInfo{ID: "w1", State: jobs.WorkerActive}, false, nil},
		{"drain not live", jobs.WorkerInfo{ID: "w1", State: jobs.WorkerDraining, NotLive: true}, true,
			[]string{"worker w1 is not live", "gantry workers ls", "it starts DRAINING when it next starts", "gantry workers activate w1 undoes it"}},
		{"activate not live", jobs.WorkerInfo{ID: "w1", State: jobs.WorkerActive, NotLive: true}, false,
			[]string{"worker w1 is not live", "it starts ACTIVE when it next starts"}},
		{"activate stopping", jobs.WorkerInfo{ID: "w1", State: jobs.WorkerDraining, Stopping: true}, false,
			[]string{"worker w1 is stopping", "takes no run again before it stops", "it starts ACTIVE when it next starts"}},
		{"drain stopping", jobs.WorkerInfo{ID: "w1", State: jobs.WorkerDraining, Stopping: true}, true,
			[]string{"worker w1 is stopping", "it starts DRAINING when it next starts"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			note := drainNote(&c.x, c.drain)
			if len(c.want) == 0 && note != "" {
				t.Errorf("note %q, want none", note)
			}
			for _, w := range c.want {
				if !strings.Contains(note, w) {
					t.Errorf("note %q lacks %q", note, w)
				}
			}
		})
	}
	var buf bytes.Buffer
	describeWorker(&buf, &jobs.WorkerInfo{ID: "w1", State: jobs.WorkerDraining, Stopping: true})
	if want := "State:\tDRAINING (stopping: finishing its runs within its --grace, it takes none again)\n"; !strings.Contains(buf.String(), want) {
		t.Errorf("workers describe of a stopping worker:\n%s\nwant %q", buf.String(), want)
	}
}
