package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// TestRunRefusesACommandWithoutDash: arguments after the task that are
// not after -- are refused before anything is submitted, instead of
// running the task's own command as if they had not been given.
func TestRunRefusesACommandWithoutDash(t *testing.T) {
	td := filepath.Join(t.TempDir(), "td.json")
	os.WriteFile(td, []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hello", "echo", "hi"}, `unexpected argument "echo": the command follows --, as in gantry run hello -- CMD (or, to run the image hello, gantry run --image hello -- CMD)`},
		// docker run's habit: an image where a task definition goes.
		{[]string{"gantry/samples:latest", "echo", "hi"}, `"gantry/samples:latest" is not a task definition (FAMILY[:REV], as gantry taskdef register names it); to run an image: gantry run --image gantry/samples:latest -- CMD`},
		{[]string{"ubuntu:22.04", "--", "echo", "hi"}, `to run an image: gantry run --image ubuntu:22.04 -- CMD`},
		{[]string{"registry.example.com/etl", "--", "echo", "hi"}, `to run an image: gantry run --image registry.example.com/etl -- CMD`},
		{[]string{"hello:0"}, `task definition "hello:0": revision must be a positive number`},
		{[]string{"hello:3", "echo", "--", "hi"}, `unexpected argument "echo": the command follows --, as in gantry run hello:3 -- CMD`},
		{[]string{"--", "echo", "hi"}, `what to run? give FAMILY[:REV] before --`},
		{[]string{"--", "/bin/sh", "-c", "x"}, `what to run? give FAMILY[:REV] before --`},
		{[]string{"--file", td, "echo"}, `unexpected argument "echo": with --file the command follows --, as in gantry run --file ` + td + ` -- CMD`},
		{[]string{"--image", "i", "echo"}, `unexpected argument "echo": with --image the command follows --`},
	} {
		err := offline(append([]string{"run"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry run %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestRunChecksCountFlags: --attempts out of 1..10 (0 included, which
// was taken for no retry strategy and ran once, silently) and a negative
// --cpu or --memory are refused before anything is sent, naming the flag
// the user typed rather than the field it fills
// (retryStrategy.attempts, containerDefinitions[0].memory).
func TestRunChecksCountFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--attempts", "0", "--image", "i"}, "--attempts 0: must be between 1 and 10"},
		{[]string{"--attempts", "-3", "--image", "i"}, "--attempts -3: must be between 1 and 10"},
		{[]string{"--attempts", "11", "hello"}, "--attempts 11: must be between 1 and 10"},
		{[]string{"--memory", "-5", "--image", "i"}, "--memory -5: must not be negative (MiB)"},
		{[]string{"--memory", "-5", "hello"}, "--memory -5: must not be negative (MiB)"},
		{[]string{"--cpu", "-1", "hello"}, "--cpu -1: must not be negative"},
		{[]string{"--memory", "2", "--image", "i"}, "--memory 2: below Docker's minimum of 6 MiB"},
		{[]string{"--memory", "5", "hello"}, "--memory 5: below Docker's minimum of 6 MiB"},
	} {
		err := offline(append([]string{"run"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("gantry run %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestRerunFlagsCheckedFirst: gantry rerun refuses bad flags, and a
// pipeline run's id, before it connects, naming the flag.
func TestRerunFlagsCheckedFirst(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pr-01m93xn56p3h7582v5t08b2jtc"}, "pr-01m93xn56p3h7582v5t08b2jtc is a pipeline run: run its failed stages again with gantry pipeline retry pr-01m93xn56p3h7582v5t08b2jtc"},
		{[]string{"--env", "NOEQUALS", "01x"}, `--env "NOEQUALS": want K=V`},
		{[]string{"--name", "main", "01x"}, "--name names the container that --env, --cpu or --memory change"},
		{[]string{"--attempts", "0", "01x"}, "--attempts 0: must be between 1 and 10"},
		{[]string{"--memory", "-1", "01x"}, "--memory -1: must not be negative"},
		{[]string{"--memory", "3", "01x"}, "--memory 3: below Docker's minimum of 6 MiB"},
		{[]string{"--cpu", "-1", "01x"}, "--cpu -1: must not be negative"},
		{[]string{"--timeout", "500ms", "01x"}, "--timeout 500ms: must be at least 1s"},
		{[]string{"--priority", "urgent", "01x"}, `--priority "urgent": want high, normal or low`},
		{[]string{"--tag", "gantry:x=1", "01x"}, "--tag"},
		{[]string{"--depends-on", "a:sometimes", "01x"}, "--depends-on"},
		{[]string{"--pool", "bad pool", "01x"}, "--pool"},
		{[]string{"-o", "json", "01x"}, "-o json needs -d"},
		{[]string{"--cluster", "a b", "01x"}, "cluster"},
		{nil, "accepts 1 arg(s), received 0"},
		{[]string{"01x", "--", "sh", "-c", "exit 0"}, "a rerun runs RUN's own command: a command after -- cannot change it; for another command, submit a new run with gantry run"},
		{[]string{"01x", "02x"}, "accepts 1 arg(s), received 2"},
	} {
		err := offline(append([]string{"rerun"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("gantry rerun %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestRerunPoolFlag: gantry rerun without --pool keeps the run's pool
// (none sent); an empty --pool sends "" (the rerun in no pool, as gantry
// run's empty --pool); --pool NAME sends NAME.
func TestRerunPoolFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the request's pool JSON
	}{
		{nil, "null"},
		{[]string{"--pool", ""}, `""`},
		{[]string{"--pool", "gpu"}, `"gpu"`},
	} {
		var f rerunFlags
		cmd := &cobra.Command{}
		cmd.Flags().StringVar(&f.pool, "pool", "", "")
		if err := cmd.ParseFlags(c.args); err != nil {
			t.Fatal(err)
		}
		req, err := f.request(cmd, "01x")
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if got, _ := json.Marshal(req.Pool); string(got) != c.want {
			t.Errorf("%q: pool %s, want %s", c.args, got, c.want)
		}
	}
}

// pagedLister serves runs r0, r1, ... newest first in pages whose filter
// (the store does not index it) let through only a few of each scan.
type pagedLister struct {
	pages [][]jobs.Run
	asked []client.ListOptions
}

func (p *pagedLister) List(_ context.Context, o client.ListOptions) ([]jobs.Run, string, error) {
	p.asked = append(p.asked, o)
	i := len(p.asked) - 1
	next := ""
	if i+1 < len(p.pages) {
		next = fmt.Sprint("cursor", i+1)
	}
	runs := p.pages[i]
	if len(runs) > o.Limit {
		runs = runs[:o.Limit]
	}
	return runs, next, nil
}

// TestPsFollowsPages: pages that come back short or empty with a next
// cursor are followed until the limit or the end, so a narrow filter
// still finds its runs.
func TestPsFollowsPages(t *testing.T) {
	run := func(id string) jobs.Run { return jobs.Run{RunID: id} }
	p := &pagedLister{pages: [][]jobs.Run{{}, {}, {run("a")}, {run("b"), run("c")}, {run("d")}}}
	got, err := listUpTo(context.Background(), p, client.ListOptions{All: true, TaskDefinition: "rare"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].RunID != "a" || got[2].RunID != "c" {
		t.Fatalf("runs %v", got)
	}
	if len(p.asked) != 4 || p.asked[1].Before != "cursor1" || p.asked[3].Limit != 2 || p.asked[3].TaskDefinition != "rare" {
		t.Fatalf("requests %+v", p.asked)
	}
}

// TestYAMLKeepsIntegers: -o yaml prints the API's integers as integers,
// large ones included, and its fractions as fractions.
func TestYAMLKeepsIntegers(t *testing.T) {
	var buf bytes.Buffer
	if err := output("yaml").write(&buf, map[string]any{"hardLimit": 1048576, "big": int64(1) << 53, "f": 0.25}, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hardLimit: 1048576\n", "big: 9007199254740992\n", "f: 0.25\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("yaml %q lacks %q", buf.String(), want)
		}
	}
}

// TestLogLinesKeepTheirOrderAcrossStreams: on one terminal (stdout and
// stderr the same), a batch's lines come out in their order.
func TestLogLinesKeepTheirOrderAcrossStreams(t *testing.T) {
	var buf bytes.Buffer
	p := newLinePrinter(&buf, &buf, false)
	err := p.batch(&jobs.LogBatch{Container: "main", Lines: []jobs.LogLine{
		{Stream: jobs.Stdout, Text: "out1"}, {Stream: jobs.Stderr, Text: "err1"}, {Stream: jobs.Stdout, Text: "out2"},
		{Stream: jobs.Stderr, Text: "err2"}, {Stream: jobs.Stderr, Text: "err3"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "out1\nerr1\nout2\nerr2\nerr3\n"; buf.String() != want {
		t.Fatalf("printed %q, want %q", buf.String(), want)
	}
}

// TestLogsGiveBackALastLineWithoutNewline: a stream's last line that had
// no newline is printed without one (`gantry logs RUN > file` gives back
// what the container wrote); another container's line after it starts on
// a line of its own, and with prefixes every line ends with a newline.
func TestLogsGiveBackALastLineWithoutNewline(t *testing.T) {
	for _, c := range []struct {
		name    string
		prefix  bool
		batches []*jobs.LogBatch
		want    string
	}{
		{"alone", false, []*jobs.LogBatch{{Container: "main", Lines: []jobs.LogLine{
			{Stream: jobs.Stdout, Text: "a"}, {Stream: jobs.Stdout, Text: "{\"done\":true}", NoNewline: true}}}},
			"a\n{\"done\":true}"},
		{"in pieces", false, []*jobs.LogBatch{{Container: "main", Lines: []jobs.LogLine{
			{Stream: jobs.Stdout, Text: "ab", Partial: true}}}, {Container: "main", Lines: []jobs.LogLine{
			{Stream: jobs.Stdout, Text: "c", NoNewline: true}}}},
			"abc"},
		{"another container after", false, []*jobs.LogBatch{
			{Container: "one", Lines: []jobs.LogLine{{Stream: jobs.Stdout, Text: "x", NoNewline: true}}},
			{Container: "two", Lines: []jobs.LogLine{{Stream: jobs.Stdout, Text: "y"}}}},
			"x\ny\n"},
		{"prefixed", true, []*jobs.LogBatch{{Container: "main", Lines: []jobs.LogLine{
			{Stream: jobs.Stdout, Text: "z", NoNewline: true}}}},
			"main|stdout z\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newLinePrinter(&buf, &buf, c.prefix)
			for _, b := range c.batches {
				if err := p.batch(b); err != nil {
					t.Fatal(err)
				}
			}
			if buf.String() != c.want {
				t.Fatalf("printed %q, want %q", buf.String(), c.want)
			}
		})
	}
}

// TestLongLineInPiecesIsNotHeldWhole: a line in pieces longer than
// maxHeldLine (a blob written with no newline) is written out as its
// pieces come, its start (prefix, timestamp) once, rather than held
// whole; what is printed is the same as for a short line.
func TestLongLineInPiecesIsNotHeldWhole(t *testing.T) {
	old := maxHeldLine
	maxHeldLine = 8
	t.Cleanup(func() { maxHeldLine = old })
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	p := newLinePrinter(&buf, &buf, true)
	p.timestamps = true
	for i, piece := range []string{"0123", "4567", "89ab", "cdef"} {
		if err := p.batch(&jobs.LogBatch{Container: "main", Time: at.Add(time.Duration(i) * time.Second),
			Lines: []jobs.LogLine{{Stream: jobs.Stdout, Text: piece, Partial: true}}}); err != nil {
			t.Fatal(err)
		}
		if held := len(p.partial["main/stdout"]); held >= maxHeldLine {
			t.Fatalf("after piece %d the printer holds %d bytes of the line", i, held)
		}
	}
	if want := "main|stdout 2026-12-06T10:00:00.000000000Z 0123456789abcdef"; buf.String() != want {
		t.Fatalf("printed %q before the line's end, want %q", buf.String(), want)
	}
	if err := p.batch(&jobs.LogBatch{Container: "main", Time: at.Add(5 * time.Second), Lines: []jobs.LogLine{
		{Stream: jobs.Stdout, Text: "!"}, {Stream: jobs.Stdout, Text: "next"}}}); err != nil {
		t.Fatal(err)
	}
	if want := "main|stdout 2026-12-06T10:00:00.000000000Z 0123456789abcdef!\nmain|stdout 2026-12-06T10:00:05.000000000Z next\n"; buf.String() != want {
		t.Fatalf("printed %q, want %q", buf.String(), want)
	}
}

// TestHTTPAuthFor: the HTTP API asks for what NATS asks of the operator,
// from the flags or the URL; NATS auth it cannot mirror needs --http-token.
func TestHTTPAuthFor(t *testing.T) {
	for _, c := range []struct {
		name    string
		o       queue.ConnOptions
		token   string
		certs   bool
		want    httpAuth
		wantErr bool
	}{
		{"no auth", queue.ConnOptions{URL: "nats://127.0.0.1:4222"}, "", false, httpAuth{}, false},
		{"user and password", queue.ConnOptions{User: "op", Password: "pw"}, "", false, httpAuth{user: "op", password: "pw"}, false},
		{"token", queue.ConnOptions{Token: "t0k"}, "", false, httpAuth{token: "t0k"}, false},
		{"credentials in the URL", queue.ConnOptions{URL: "nats://admin:pw@host:4222"}, "", false, httpAuth{user: "admin", password: "pw"}, false},
		{"token in the URL", queue.ConnOptions{URL: "nats://t0k@host:4222"}, "", false, httpAuth{token: "t0k"}, false},
		{"credentials in a cluster's second URL", queue.ConnOptions{URL: "nats://n1:4222,nats://admin:pw@n2:4222"}, "", false, httpAuth{user: "admin", password: "pw"}, false},
		{"cluster URLs with spaces", queue.ConnOptions{URL: "nats://admin:pw@n1:4222, nats://admin:pw@n2:4222"}, "", false, httpAuth{user: "admin", password: "pw"}, false},
		{"creds file", queue.ConnOptions{Creds: "op.creds"}, "", false, httpAuth{}, true},
		{"client certificate", queue.ConnOptions{TLSCert: "c.pem", TLSKey: "k.pem"}, "", false, httpAuth{}, true},
		{"embedded NATS asking for client certificates", queue.ConnOptions{}, "", true, httpAuth{}, true},
		{"creds file and --http-token", queue.ConnOptions{Creds: "op.creds"}, "h", false, httpAuth{token: "h", httpToken: true}, false},
		{"--http-token wins", queue.ConnOptions{User: "op", Password: "pw"}, "h", false, httpAuth{token: "h", httpToken: true}, false},
	} {
		got, err := httpAuthFor(c.o, c.token, c.certs)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("%s: %+v %v, want %+v (error: %v)", c.name, got, err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "--http-token") {
			t.Errorf("%s: the error does not say what to do: %v", c.name, err)
		}
	}
	basic := httpAuth{user: "op", password: "pw"}
	for _, c := range []struct {
		user, pass string
		want       bool
	}{{"op", "pw", true}, {"op", "no", false}, {"no", "pw", false}, {"", "", false}} {
		r, _ := http.NewRequest("GET", "/api/runs", nil)
		if c.user != "" {
			r.SetBasicAuth(c.user, c.pass)
		}
		if got := basic.allows(r); got != c.want {
			t.Errorf("basic %s:%s: %v", c.user, c.pass, got)
		}
	}
	r, _ := http.NewRequest("GET", "/api/runs", nil)
	r.Header.Set("Authorization", "Bearer h")
	if !(httpAuth{token: "h"}).allows(r) || (httpAuth{token: "other"}).allows(r) {
		t.Error("bearer token")
	}
}

// TestLogsOfARunPastTheLogRetention: `gantry logs` of a run that ended
// longer ago than GANTRY_LOGS keeps lines says on stderr that its logs are
// no longer kept (it printed nothing and exited 0, as for a run that
// wrote nothing); of a run that just ended without a line it says nothing.
func TestLogsOfARunPastTheLogRetention(t *testing.T) {
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
	// The server's clock says when runs end: 31 days ago, then now.
	var clock atomic.Pointer[time.Time]
	long := time.Now().Add(-31 * 24 * time.Hour)
	clock.Store(&long)
	done := make(chan error, 1)
	go func() {
		done <- server.New(db, q, server.WithClock(func() time.Time { return *clock.Load() })).Run(ctx)
	}()
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
	ended := func() string {
		t.Helper()
		td := []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
			if err == nil {
				// Its container started: a run canceled while queued says
				// it has no log whenever it ended.
				endAsRan(t, ctx, c, q, r.RunID, *clock.Load())
				return r.RunID
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server did not take a run within 10s: %v", err)
			}
		}
	}
	logs := func(id string) (stdout, stderr string) {
		t.Helper()
		root := newRoot()
		var out, errb bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errb)
		root.SetArgs([]string{"logs", "--nats", nc.ConnectedUrl(), id})
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("gantry logs %s: %v", id, err)
		}
		return out.String(), errb.String()
	}

	old := ended()
	out, errOut := logs(old)
	if want := "gantry: run " + old + " ended 31d ago, and logs are kept 30d (the GANTRY_LOGS stream's max age): its logs, if it wrote any, are no longer kept\n"; out != "" || errOut != want {
		t.Errorf("logs of a run that ended 31 days ago: stdout %q, stderr %q; want stderr %q", out, errOut, want)
	}
	now := time.Now()
	clock.Store(&now)
	if out, errOut := logs(ended()); out != "" || errOut != "" {
		t.Errorf("logs of a run that just ended without a line: stdout %q, stderr %q; want nothing", out, errOut)
	}

	// A run that ended without a line before the stream's oldest line,
	// the stream having dropped nothing: nothing was lost, nothing to say.
	justNow := time.Now()
	clock.Store(&justNow)
	quiet := ended()
	w := q.NewLogWriter("another", 1)
	w.Line("main", jobs.Stdout, []byte("hello"))
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if out, errOut := logs(quiet); out != "" || errOut != "" {
		t.Errorf("logs of a run that ended without a line before the stream's first: stdout %q, stderr %q; want nothing", out, errOut)
	}

	// A run that ended before the stream was made, as a store restored
	// onto a new data directory holds: its lines are in the JetStream it
	// ran with.
	minuteAgo := now.Add(-time.Minute)
	clock.Store(&minuteAgo)
	restored := ended()
	out, errOut = logs(restored)
	if want := "gantry: run " + restored + " ended 1m"; out != "" || !strings.HasPrefix(errOut, want) ||
		!strings.HasSuffix(errOut, "its logs, if it wrote any, are in the JetStream it ran with, not this one (a store restored onto a new data directory?)\n") || !strings.Contains(errOut, "before the GANTRY_LOGS stream was made (") {
		t.Errorf("logs of a run that ended before the stream was made: stdout %q, stderr %q; want stderr %q...", out, errOut, want)
	}
}

// TestScheduleCreateChecksItsFlags: --timeout and --starting-deadline
// under a second are refused (500ms was truncated to 0: no timeout, or the
// default one-minute deadline), as are negative ones, --attempts out of
// range and an unknown --priority, naming the flag rather than the stored
// pipeline's fields.
func TestScheduleCreateChecksItsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--timeout", "500ms"}, "--timeout 500ms: must be at least 1s"},
		{[]string{"--timeout", "-5s"}, "--timeout -5s: must be at least 1s"},
		{[]string{"--starting-deadline", "200ms"}, "--starting-deadline 200ms: must be at least 1s"},
		{[]string{"--attempts", "-1"}, "--attempts -1: must be between 1 and 10"},
		{[]string{"--attempts", "0"}, "--attempts 0: must be between 1 and 10"},
		{[]string{"--attempts", "11"}, "--attempts 11: must be between 1 and 10"},
		{[]string{"--priority", "urgent"}, `--priority "urgent": want high, normal or low`},
		// Every flag's problem, not the first only.
		{[]string{"--priority", "urgent", "--attempts", "11", "--env", "X"},
			`--priority "urgent": want high, normal or low; --attempts 11: must be between 1 and 10; --env "X": want K=V`},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		// No NATS listens here: flags that passed would fail to connect.
		root.SetArgs(append([]string{"schedule", "create", "--nats", "nats://127.0.0.1:1", "--task", "hello", "--cron", "@hourly"}, c.args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry schedule create %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestAStaleContextLocksNothingOut: a --context (or GANTRY_CONTEXT) naming
// a context that is not defined failed every command, 'gantry context ls'
// and 'context use' included, which its error points to, and the
// completion script; it fails only the commands that connect.
func TestAStaleContextLocksNothingOut(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	t.Setenv("GANTRY_CONFIG", cfg)
	gantry := func(args ...string) error {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"--context", "gone"}, args...))
		return root.ExecuteContext(context.Background())
	}
	if err := gantry("context", "add", "here", "--nats", "nats://127.0.0.1:1"); err != nil {
		t.Fatalf("context add: %v", err)
	}
	for _, args := range [][]string{{"context", "ls"}, {"context", "use", "here"}, {"version"}, {"help"}, {"completion", "bash"}} {
		if err := gantry(args...); err != nil {
			t.Errorf("gantry --context gone %s: %v", strings.Join(args, " "), err)
		}
	}
	if err := gantry("ps"); err == nil || !strings.Contains(err.Error(), `context "gone" is not defined`) {
		t.Errorf("gantry --context gone ps: %v; want the context refused", err)
	}
}

// TestContextFileIsPrivate: contexts hold passwords, and saving them into
// a config file that already existed (made by hand, say) kept its mode:
// 0644 left the password readable by every user of the machine. A saved
// config file is readable by its owner alone.
func TestContextFileIsPrivate(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	t.Setenv("GANTRY_CONFIG", cfg)
	if err := os.WriteFile(cfg, []byte("contexts: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	root := newRoot()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"context", "add", "prod", "--nats", "nats://127.0.0.1:1", "--user", "op", "--password", "s3cret"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("context add: %v", err)
	}
	st, err := os.Stat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Errorf("config file mode %o after saving a password; want 600", mode)
	}
	if data, _ := os.ReadFile(cfg); !strings.Contains(string(data), "s3cret") {
		t.Errorf("the context was not saved: %s", data)
	}
}

// TestUnknownSubcommandFails: a mistyped subcommand of a group (cobra
// checks them only under the root) printed the group's help and exited 0,
// which a script took for success; it is an error with a suggestion. The
// group alone still prints its help.
func TestUnknownSubcommandFails(t *testing.T) {
	gantry := func(args ...string) (string, error) {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.ExecuteContext(context.Background())
		return out.String(), err
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"taskdef", "regster", "td.json"}, `unknown command "regster" for "gantry taskdef"; did you mean "register"?`},
		{[]string{"pipeline", "bogus"}, `unknown command "bogus" for "gantry pipeline" (see 'gantry pipeline --help')`},
		{[]string{"workers", "lss"}, `unknown command "lss" for "gantry workers"; did you mean "ls"?`},
		{[]string{"pipline", "ls"}, `unknown command "pipline" for "gantry"; did you mean "pipeline"? (see 'gantry --help')`},
		{[]string{"wokers"}, `unknown command "wokers" for "gantry"; did you mean "worker" or "workers"?`},
	} {
		if _, err := gantry(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	out, err := gantry("taskdef")
	if err != nil || !strings.Contains(out, "  gantry taskdef [command]\n") {
		t.Errorf("gantry taskdef: %v\n%s", err, out)
	}
	if _, err := gantry("help", "bogus"); err == nil || !strings.Contains(err.Error(), `unknown help topic "bogus"`) {
		t.Errorf("gantry help bogus: %v; want unknown help topic", err)
	}
	for _, args := range [][]string{{}, {"help"}, {"help", "taskdef", "register"}} {
		out, err := gantry(args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("gantry %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestUnknownFlagSuggests: a mistyped flag said only "unknown flag:
// --stauts"; the error suggests the command's flag it is closest to, its
// parents' included, and suggests nothing when none is close.
func TestUnknownFlagSuggests(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "--stauts", "FAILED"}, "unknown flag: --stauts; did you mean --status? (see 'gantry ps --help')"},
		{[]string{"logs", "--folow", "r1"}, "unknown flag: --folow; did you mean --follow? (see 'gantry logs --help')"},
		{[]string{"run", "--imgae=x"}, "unknown flag: --imgae; did you mean --image?"},
		{[]string{"describe", "--nast", "nats://x", "r1"}, "unknown flag: --nast; did you mean --nats?"},
		{[]string{"ps", "--zzzzzzzz"}, "unknown flag: --zzzzzzzz (see 'gantry ps --help')"},
		{[]string{"run", "-detach", "--image", "i"}, "-detach: write --detach: one dash takes one-letter flags"},
		{[]string{"logs", "-follow", "r1"}, "-follow: write --follow"},
		{[]string{"run", "-timeout=5s", "--image", "i"}, "-timeout=5s: write --timeout"},
		{[]string{"ps", "-nats", "nats://x"}, "-nats: write --nats"},
	} {
		var out, errb bytes.Buffer
		code := runWith(context.Background(), c.args, strings.NewReader(""), &out, &errb)
		if code != exitGantryError || !strings.Contains(errb.String(), c.want) {
			t.Errorf("gantry %s: exit %d, %q; want 125 and %q", strings.Join(c.args, " "), code, errb.String(), c.want)
		}
	}
}

// TestHTTPAddressErrorsNameTheFlag: --http on an address in use (or not
// an address) said only Go's "listen tcp ...: bind: address already in
// use", which named neither the flag nor what to do.
func TestHTTPAddressErrorsNameTheFlag(t *testing.T) {
	nc := embeddedNATS(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	addr := busy.Addr().String()
	for _, c := range []struct{ addr, want string }{
		{addr, "--http " + addr + ": the address is in use; pick another"},
		{"8080", "--http 8080: "},
	} {
		err := httpServe(c.addr, nc, httpAuth{}, nil, zerolog.Nop())(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("--http %s: %v; want %q", c.addr, err, c.want)
		}
	}
}

// TestArgCountErrorsSayTheUsage: cobra's "accepts 1 arg(s), received 0"
// named neither the command nor what it takes.
func TestArgCountErrorsSayTheUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"describe"}, "accepts 1 arg(s), received 0; usage: gantry describe RUN|PIPELINE-RUN"},
		{[]string{"stop"}, "usage: gantry stop RUN..."},
		{[]string{"wait"}, "usage: gantry wait RUN..."},
		{[]string{"taskdef", "register"}, "usage: gantry taskdef register FILE|-"},
		{[]string{"logs", "a", "b"}, "accepts 1 arg(s), received 2; usage: gantry logs RUN | PIPELINE-RUN"},
	} {
		err := offline(c.args...)
		if err == nil || !strings.HasSuffix(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want it to end with %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestPsRefusesANegativeSince: --since -5m was ignored, listing runs of
// any age as if it had not been given.
func TestPsRefusesANegativeSince(t *testing.T) {
	if err := offline("ps", "--since", "-5m"); err == nil || !strings.Contains(err.Error(), "--since -5m0s: give how long ago") {
		t.Errorf("gantry ps --since -5m: %v", err)
	}
}

// TestContextLsWithNoneSaysSo: gantry context ls with no context saved
// printed nothing at all, which read as a command that did nothing; it
// says on stderr how commands reach NATS then and how to save one, and
// -o json stays an empty list.
func TestContextLsWithNoneSaysSo(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	var out, errb bytes.Buffer
	if code := runWith(context.Background(), []string{"context", "ls"}, strings.NewReader(""), &out, &errb); code != 0 ||
		out.Len() != 0 || !strings.Contains(errb.String(), "no context saved") || !strings.Contains(errb.String(), "gantry context add NAME --nats URL") {
		t.Errorf("context ls: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := runWith(context.Background(), []string{"context", "ls", "-o", "json"}, strings.NewReader(""), &out, &errb); code != 0 ||
		out.String() != "[]\n" || errb.Len() != 0 {
		t.Errorf("context ls -o json: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestCompletionOfContextAndTask: --context completed to file names and
// schedule create --task to files too; they offer the saved contexts and
// the server's families (none here: no server answers), never files.
func TestCompletionOfContextAndTask(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	gantry := func(args ...string) string {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("gantry %v: %v", args, err)
		}
		return out.String()
	}
	complete := func(args ...string) string { return gantry(append([]string{"__complete"}, args...)...) }
	gantry("context", "add", "prod", "--nats", "nats://127.0.0.1:1")
	if out := complete("ps", "--context", ""); out != "prod\n:4\n" {
		t.Errorf("__complete ps --context '': %q; want the context prod, and no files (:4)", out)
	}
	if out := complete("schedule", "create", "--nats", "nats://127.0.0.1:1", "--task", ""); !strings.HasSuffix(out, ":4\n") {
		t.Errorf("__complete schedule create --task '': %q; want no files (:4)", out)
	}
	// gantry rerun completes run ids (none: no server answers), not files.
	for _, args := range [][]string{{"rerun", ""}, {"rerun", "--pool", ""}, {"rerun", "--depends-on", ""}} {
		if out := complete(append([]string{"--nats", "nats://127.0.0.1:1"}, args...)...); !strings.HasSuffix(out, ":4\n") {
			t.Errorf("__complete %q: %q; want no files (:4)", args, out)
		}
	}
}

// TestLogsFlagsOfRunsAndPipelineRuns: the flags of gantry logs that
// apply to a run only, or to a pipeline run only, are refused for the
// other, each named, before connecting.
func TestLogsFlagsOfRunsAndPipelineRuns(t *testing.T) {
	const pr, run = "pr-01m93xn56p3h7582v5t08b2jtc", "01m93xn56p3h7582v5t08b2jtc"
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"logs", pr, "--container", "main", "--attempt", "2", "--prefix"}, []string{
			"--container: applies to a run, not to a pipeline run: give one of its stage runs' ids",
			"--attempt: applies to a run, not to a pipeline run",
			"--prefix: applies to a run, not to a pipeline run: its lines start with their stage run's label (--no-prefix leaves it out)"}},
		{[]string{"logs", run, "--stage", "extract", "--no-prefix"}, []string{
			"--stage: applies to a pipeline run (pr-...), not to a run",
			"--no-prefix: applies to a pipeline run (pr-...), not to a run"}},
		{[]string{"logs", pr, "--tail", "x", "--stage", "a"}, []string{`invalid --tail "x"`}},
	} {
		err := offline(tc.args...)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v; want it to say %q", tc.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%q connected before refusing its flags: %v", tc.args, err)
		}
	}
}

// TestDescribePipelineRunShowsEachRunsReason: the REASON column of a
// stage's runs showed the stage's reason ("1 of 2 runs failed") on its first
// run and nothing on the others; each run shows its own.
func TestDescribePipelineRunShowsEachRunsReason(t *testing.T) {
	zero, one := 0, 1
	pr := &jobs.PipelineRun{PipelineRunID: "pr-1", Pipeline: "etl", Version: 1, Status: jobs.StatusFailed,
		Stages: []jobs.StageState{
			{Name: "extract", Status: jobs.StatusFailed, Reason: "1 of 2 runs failed", Runs: []jobs.StageRun{
				{RunID: "r0", ArrayIndex: &zero, Status: jobs.StatusSucceeded, Attempts: 1, ExitCode: &zero},
				{RunID: "r1", ArrayIndex: &one, Status: jobs.StatusFailed, Attempts: 1, ExitCode: &one,
					StoppedReason: "Essential container in task exited"}}},
			{Name: "load", Status: jobs.StatusSkipped, Reason: "dependency extract ended FAILED; condition success cannot hold"},
		}}
	var b bytes.Buffer
	if err := describePipelineRun(&b, pr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"extract\tFAILED\tr0\t0\tSUCCEEDED\t1\t0\t-\n",
		"extract\tFAILED\tr1\t1\tFAILED\t1\t1\tEssential container in task exited\n",
		"load\tSKIPPED\t-\t-\t-\t-\t-\tdependency extract ended FAILED; condition success cannot hold\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe does not hold %q:\n%s", want, b.String())
		}
	}
}

// TestWorkersHelpNamesItsCommands: gantry workers' short help left out
// activate.
func TestWorkersHelpNamesItsCommands(t *testing.T) {
	for _, c := range newRoot().Commands() {
		if c.Name() != "workers" {
			continue
		}
		for _, sub := range c.Commands() {
			if name := sub.Name(); name != "ls" && !strings.Contains(c.Short, name) {
				t.Errorf("gantry workers: %q does not name %s", c.Short, name)
			}
		}
		return
	}
	t.Fatal("no workers command")
}

// startHTTPAPI serves the HTTP API with auth against an embedded NATS
// server without a gantry server behind it.
func startHTTPAPI(t *testing.T, auth httpAuth) *httptest.Server {
	t.Helper()
	nc := embeddedNATS(t)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpHandler(c, nc, auth))
	t.Cleanup(srv.Close)
	return srv
}

// httpDo sends a request to srv and returns the status, the content type
// and the API error's code ("" when the body is no {"error":...}).
func httpDo(t *testing.T, srv *httptest.Server, method, path string, header ...string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body.Error.Code
}

// TestHTTPAPIRefusalsAreJSON: a path under /api/ that is no endpoint, or a
// method other than GET, got the mux's plain-text "404 page not found" and
// "Method Not Allowed", where every other refusal of the API is
// {"error":{"code":...}}.
func TestHTTPAPIRefusalsAreJSON(t *testing.T) {
	srv := startHTTPAPI(t, httpAuth{})
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/nope", 404, "not_found"},
		{"GET", "/api/runs/", 404, "not_found"},
		{"GET", "/api/runs/x/y", 404, "not_found"},
		{"POST", "/api/runs", 405, "method_not_allowed"},
		{"DELETE", "/api/runs/r1", 405, "method_not_allowed"},
		{"GET", "/api/runs/r1", 503, "unavailable"}, // no gantry server answers
	} {
		status, ctype, code := httpDo(t, srv, c.method, c.path)
		if status != c.status || ctype != "application/json" || code != c.code {
			t.Errorf("%s %s: %d %s code %q; want %d application/json code %q", c.method, c.path, status, ctype, code, c.status, c.code)
		}
	}
}

// TestHTTPAPIRefusesUnknownQueryParameters: a query parameter an endpoint
// does not take (a typo: ?stauts=FAILED) was ignored and /api/runs
// answered every run; it is refused with 400, naming each unknown one, the
// one it likely meant, and those the endpoint takes, with the other
// problems of the query at once. Known parameters still pass (here to no
// gantry server: 503).
func TestHTTPAPIRefusesUnknownQueryParameters(t *testing.T) {
	srv := startHTTPAPI(t, httpAuth{})
	for _, c := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/api/runs?stauts=FAILED", 400, []string{`unknown query parameter "stauts" (did you mean "status"?); /api/runs takes all, array, before, cluster, family, limit, status, tag, worker`}},
		{"/api/runs?status=FAILED&famly=etl&x=1", 400, []string{`unknown query parameter "famly" (did you mean "family"?); unknown query parameter "x"; /api/runs takes all,`}},
		{"/api/runs?Status=FAILED", 400, []string{`unknown query parameter "Status" (did you mean "status"?)`}},
		{"/api/runs?limt=5&all=maybe&status=DONE", 400, []string{`unknown query parameter "limt" (did you mean "limit"?)`, `all="maybe": want true or false`, `"DONE"`}},
		{"/api/runs/r1?verbose=1", 400, []string{`unknown query parameter "verbose"; /api/runs/{id} takes no query parameters`}},
		{"/api/runs?status=FAILED,SUCCEEDED&all=1&limit=5&family=etl&cluster=c&worker=w&before=x&tag=team=data", 503, nil},
		{"/api/runs/r1", 503, nil},
	} {
		resp, err := srv.Client().Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %+v; want %d", c.path, resp.StatusCode, body.Error, c.status)
			continue
		}
		if c.status == 400 && body.Error.Code != "invalid_argument" {
			t.Errorf("%s: code %q; want invalid_argument", c.path, body.Error.Code)
		}
		for _, w := range c.want {
			if !strings.Contains(body.Error.Message, w) {
				t.Errorf("%s: %q lacks %q", c.path, body.Error.Message, w)
			}
		}
	}
}

// TestHTTPAPITimeoutIsUnavailable: a gantry server that did not answer
// within the request's time gave 500 internal, a bug to report, where the
// NATS API and the Go client call it unavailable: 503, retry later.
func TestHTTPAPITimeoutIsUnavailable(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("gantry.api.runs.get: %w", context.DeadlineExceeded),
		fmt.Errorf("gantry.api.runs.list: %w", nats.ErrTimeout),
		client.ErrNoServer,
	} {
		w := httptest.NewRecorder()
		writeJSON(w, nil, err)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"code":"unavailable"`) {
			t.Errorf("%v: %d %s; want 503 unavailable", err, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	writeJSON(w, nil, errors.New("boom"))
	if w.Code != http.StatusInternalServerError {
		t.Errorf("another error: %d; want 500", w.Code)
	}
}

// TestHTTPAPIAsksForWhatItChecks: with --http-token the 401 said the API
// asks for "the NATS operator's user and password (Basic auth) or token",
// which it refuses, and not for the --http-token it checks; and a Bearer
// scheme spelt in lower case ("bearer", as some clients send it; schemes
// are case-insensitive) was refused with the right token.
func TestHTTPAPIAsksForWhatItChecks(t *testing.T) {
	for _, c := range []struct {
		auth       httpAuth
		says, sent string
	}{
		{httpAuth{token: "ht", httpToken: true}, "--http-token", "bearer ht"},
		{httpAuth{token: "nt"}, "the NATS token", "BEARER nt"},
		{httpAuth{user: "op", password: "pw"}, "user and password", "basic b3A6cHc="},
	} {
		srv := httptest.NewServer(httpHandler(nil, nil, c.auth))
		for _, h := range []string{"", "Bearer wrong"} {
			req, _ := http.NewRequest("GET", srv.URL+"/api/nope", nil)
			if h != "" {
				req.Header.Set("Authorization", h)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), c.says) || strings.Contains(string(b), " or ") {
				t.Errorf("%+v, Authorization %q: %d %s; want 401 saying %q only", c.auth, h, resp.StatusCode, b, c.says)
			}
		}
		req, _ := http.NewRequest("GET", srv.URL+"/api/nope", nil)
		req.Header.Set("Authorization", c.sent)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound { // let in: no such endpoint
			t.Errorf("%+v, Authorization %q: %d; want it let in", c.auth, c.sent, resp.StatusCode)
		}
		srv.Close()
	}
}

// TestEmbeddedNATSRefusesNKeyAndCreds: `gantry up --nkey FILE` (or
// --creds) looked like it turned on nkey auth, but the embedded server has
// no such user and up failed with "nats: nkeys not supported by the
// server"; it is refused before anything starts, naming the flags it takes.
func TestEmbeddedNATSRefusesNKeyAndCreds(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	for _, args := range [][]string{
		{"up", "--nkey", "user.nk"},
		{"up", "--creds", "user.creds"},
		{"server", "--embedded-nats", "--nkey", "user.nk"},
	} {
		data := t.TempDir()
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append(args, "--data", data, "--nats-port", "0"))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), "asks for --user/--password or --token, not an nkey or creds file") {
			t.Errorf("gantry %v: %v", args, err)
		}
		if _, err := os.Stat(filepath.Join(data, "nats.url")); err == nil {
			t.Errorf("gantry %v started NATS", args)
		}
	}
}

// TestHTTPAPIClosesIdleConnections: a kept-alive connection that sent one
// request (even one refused for want of credentials) and then nothing was
// kept open for ever, a file descriptor and a goroutine each.
func TestHTTPAPIClosesIdleConnections(t *testing.T) {
	old := httpIdleTimeout
	t.Cleanup(func() { httpIdleTimeout = old }) // last: after the server is done
	httpIdleTimeout = 200 * time.Millisecond
	nc := embeddedNATS(t)
	logged := &syncBuffer{}
	log := zerolog.New(zerolog.ConsoleWriter{Out: logged, NoColor: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- httpServe("127.0.0.1:0", nc, httpAuth{token: "t"}, nil, log)(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := net.Dial("tcp", logAddr(t, logged, "HTTP API ready"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/runs HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Read the 401, then wait for the server to close the idle connection.
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("the idle connection was not closed: %v (read %q)", err, got)
			}
			break
		}
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 401") {
		t.Errorf("answer: %q", got)
	}
}

// TestContextSavesAbsolutePaths: `gantry context add prod --creds
// prod.creds` saved the path as given, so a later command run from another
// directory looked for prod.creds there and failed; the files of a context
// are saved as absolute paths.
func TestContextSavesAbsolutePaths(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	t.Setenv("GANTRY_CONFIG", cfg)
	dir := t.TempDir()
	t.Chdir(dir)
	root := newRoot()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"context", "add", "prod", "--nats", "tls://nats.prod:4222", "--creds", "prod.creds",
		"--tls-ca", "pki/ca.pem", "--tls-cert", "./c.pem", "--tls-key", "c-key.pem", "--nkey", "u.nk"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("context add: %v", err)
	}
	cfgs, err := loadContexts()
	if err != nil {
		t.Fatal(err)
	}
	p := cfgs.Contexts["prod"]
	for got, want := range map[string]string{
		p.Creds: "prod.creds", p.TLSCA: "pki/ca.pem", p.TLSCert: "c.pem", p.TLSKey: "c-key.pem", p.NKey: "u.nk",
	} {
		if got != filepath.Join(dir, want) {
			t.Errorf("saved %q; want %q", got, filepath.Join(dir, want))
		}
	}
	if p.NATS != "tls://nats.prod:4222" {
		t.Errorf("nats %q", p.NATS)
	}
}

// TestServerRefusesEmbeddedFlagsWithoutEmbeddedNATS: `gantry server
// --tls-client-ca ca.pem` (or --tls-server-key, --submit-password,
// --nats-port) without --embedded-nats was ignored unsaid: the operator
// believed client certificates were required. Each is refused.
func TestServerRefusesEmbeddedFlagsWithoutEmbeddedNATS(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	for _, args := range [][]string{
		{"--tls-client-ca", "ca.pem"},
		{"--tls-server-key", "server-key.pem"},
		{"--submit-password", "sp"},
		{"--nats-port", "4333"},
		{"--nats-host", "0.0.0.0"},
	} {
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"server", "--nats", "nats://127.0.0.1:1", "--data", t.TempDir()}, args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), "give --embedded-nats too") {
			t.Errorf("gantry server %v: %v", args, err)
		}
	}
}

// TestServerChecksReplicas: --replicas (or GANTRY_REPLICAS), where given,
// is 1 to 5; left out it is no count at all (the streams keep theirs), so
// an explicit 0 or a GANTRY_REPLICAS that is no number is refused rather
// than taken for that.
func TestServerChecksReplicas(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	for _, c := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--replicas", "0"}, "--replicas 0: want 1 to 5"},
		{"", []string{"--replicas", "7"}, "--replicas 7: want 1 to 5"},
		{"0", nil, "--replicas 0: want 1 to 5"},
		{"three", nil, `GANTRY_REPLICAS="three": want 1 to 5`},
		{"", []string{"--replicas", "3", "--embedded-nats"}, "--replicas needs a NATS cluster"},
	} {
		t.Setenv("GANTRY_REPLICAS", c.env)
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append([]string{"server", "--nats", "nats://127.0.0.1:1", "--data", t.TempDir()}, c.args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("GANTRY_REPLICAS=%q gantry server %v: %v, want %q", c.env, c.args, err, c.want)
		}
	}
}

// TestHTTPTokenNeedsHTTP: `gantry up --http-token T` without --http
// served no HTTP API and said nothing.
func TestHTTPTokenNeedsHTTP(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	for _, args := range [][]string{
		{"up", "--nats-port", "0", "--http-token", "t", "--id", fmt.Sprintf("test-http-token-%d", time.Now().UnixNano())},
		{"server", "--embedded-nats", "--nats-port", "0", "--http-token", "t"},
	} {
		root := newRoot()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(append(args, "--data", t.TempDir()))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := root.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "give --http ADDR too") {
			t.Errorf("gantry %v: %v", args, err)
		}
	}
}

// TestContextListHidesEveryPassword: `gantry context ls` masked the
// password of a context's URL, but of a cluster's list only the first
// URL's ("nats://op:xxxxx@n1,nats://op:pw@n2"), and none when a space
// followed a comma, or of a token.
func TestContextListHidesEveryPassword(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	gantry := func(args ...string) string {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("gantry %v: %v", args, err)
		}
		return out.String()
	}
	gantry("context", "add", "a", "--nats", "nats://op:secret1@n1:4222,nats://op:secret2@n2:4222")
	gantry("context", "add", "b", "--nats", "nats://op:secret3@n1:4222, nats://op:secret4@n2:4222")
	gantry("context", "add", "c", "--nats", "nats://secret5@n1:4222")
	for _, o := range []string{"table", "json"} {
		out := gantry("context", "ls", "-o", o)
		if strings.Contains(out, "secret") || !strings.Contains(out, "n2:4222") {
			t.Errorf("context ls -o %s:\n%s", o, out)
		}
	}
}

// embeddedNATS starts an embedded NATS server for the test and connects to
// it; both go when the test ends.
func embeddedNATS(t *testing.T) *nats.Conn {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// offline runs gantry with args against an address where no NATS listens:
// a command whose flags passed would fail to connect. It returns the
// command's error.
func offline(args ...string) error {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--nats", "nats://127.0.0.1:1"))
	return root.ExecuteContext(context.Background())
}

// TestBackupChecksItsFileFirst: what keeps FILE from being written is said
// before anything is asked of the server (none listens here).
func TestBackupChecksItsFileFirst(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "there.db")
	os.WriteFile(existing, []byte("keep"), 0o600)
	locked := filepath.Join(dir, "locked")
	os.Mkdir(locked, 0o500)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{filepath.Join(dir, "nosuch", "b.db")}, "cannot write there"},
		{[]string{existing}, "exists: give --force to replace it"},
		{[]string{dir}, "is a directory"},
		{[]string{filepath.Join(locked, "b.db")}, "cannot write there"},
	} {
		if os.Geteuid() == 0 && strings.HasPrefix(c.args[0], locked) {
			continue // root writes anywhere
		}
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"backup", "--nats", "nats://127.0.0.1:1"}, c.args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "FILE ") {
			t.Errorf("gantry backup %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Errorf("the existing file became %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("left in the directory: %v", entries)
	}
}

// TestVersionFlag: gantry --version (and -v), as docker --version, prints
// what gantry version prints; it was an unknown flag.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err != nil || out.String() != "gantry "+version+"\n" {
			t.Errorf("gantry %s: %v, output %q; want %q", strings.Join(args, " "), err, out.String(), "gantry "+version+"\n")
		}
	}
}
