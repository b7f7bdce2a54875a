package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
)

// fakeFollower ends each run when its channel is closed, as the run in
// runs; a run not in runs is not found.
type fakeFollower struct {
	runs     map[string]*jobs.Run
	pipeline map[string]*jobs.PipelineRun
	end      map[string]chan struct{}
}

func (f *fakeFollower) Get(_ context.Context, id string) (*jobs.Run, error) {
	r, ok := f.runs[id]
	if !ok {
		return nil, fmt.Errorf("run %s: not found", id)
	}
	return r, nil
}

func (f *fakeFollower) GetPipelineRun(_ context.Context, id string) (*jobs.PipelineRun, error) {
	pr, ok := f.pipeline[id]
	if !ok {
		return nil, fmt.Errorf("pipeline run %s: not found", id)
	}
	return pr, nil
}

func (f *fakeFollower) WaitFunc(ctx context.Context, id string, fn func(jobs.Event)) (*jobs.Run, error) {
	r, ok := f.runs[id]
	if !ok {
		return nil, fmt.Errorf("run %s: not found", id)
	}
	fn(jobs.Event{RunID: id, Status: jobs.StatusRunning})
	select {
	case <-f.end[id]:
		return r, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (f *fakeFollower) WatchPipelineRun(ctx context.Context, id string, fn func(*jobs.PipelineRun)) (*jobs.PipelineRun, error) {
	pr, ok := f.pipeline[id]
	if !ok {
		return nil, fmt.Errorf("pipeline run %s: not found", id)
	}
	fn(&jobs.PipelineRun{PipelineRunID: id, Status: jobs.StatusRunning})
	select {
	case <-f.end[id]:
		return pr, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// TestWaitExitsAsAnAttachedRun: wait tells each run as it ends and exits
// with the outcome of the first run given that did not succeed, in the
// order given, whichever ended first: a task's exit code (a run stopped
// while running has its container's, 143 after SIGTERM, as docker wait,
// and says how it was stopped), 124 for a timeout, 125 for a run that
// ended without an exit code or, not succeeding, with 0, 1 for a pipeline run (124 for one that timed
// out).
func TestWaitExitsAsAnAttachedRun(t *testing.T) {
	t.Parallel()
	run := func(id string, s jobs.Status, code *int, stop string) *jobs.Run {
		return &jobs.Run{RunID: id, Status: s, ExitCode: code, StopCode: stop, StoppedReason: "why " + id}
	}
	runs := map[string]*jobs.Run{
		"ok":       run("ok", jobs.StatusSucceeded, ptr(0), ""),
		"exit3":    run("exit3", jobs.StatusFailed, ptr(3), jobs.StopEssentialExited),
		"timedout": run("timedout", jobs.StatusFailed, ptr(137), jobs.StopTimeout),
		"canceled": run("canceled", jobs.StatusCanceled, nil, jobs.StopUserInitiated),
		// Stopped while running: its container's code, as docker wait.
		"stopped": run("stopped", jobs.StatusCanceled, ptr(143), jobs.StopUserInitiated),
		// Stopped while running, its task trapping SIGTERM and exiting 0:
		// not a success, so not 0.
		"trapped": run("trapped", jobs.StatusCanceled, ptr(0), jobs.StopUserInitiated),
	}
	pipelines := map[string]*jobs.PipelineRun{
		"pr-ok":     {PipelineRunID: "pr-ok", Status: jobs.StatusSucceeded},
		"pr-failed": {PipelineRunID: "pr-failed", Status: jobs.StatusFailed},
		"pr-timedout": {PipelineRunID: "pr-timedout", Status: jobs.StatusFailed, StopCode: jobs.StopTimeout,
			StoppedReason: "pipeline run timed out after 2s (timeoutSeconds 2)"},
	}
	for _, c := range []struct {
		ids  []string
		code int // 0: nil
		msg  string
	}{
		{[]string{"ok"}, 0, ""},
		{[]string{"exit3"}, 3, ""},
		{[]string{"timedout"}, exitTimeout, "run timedout: why timedout"},
		{[]string{"canceled"}, exitGantryError, "run canceled CANCELED: why canceled"},
		{[]string{"stopped"}, 143, "run stopped CANCELED (UserInitiated): why stopped"},
		{[]string{"trapped", "ok"}, exitGantryError, "run trapped CANCELED (UserInitiated): why trapped; its task exited 0, but a run that did not succeed exits 125"},
		{[]string{"ok", "stopped", "exit3"}, 143, "run stopped CANCELED (UserInitiated): why stopped"},
		{[]string{"pr-ok", "ok"}, 0, ""},
		{[]string{"pr-failed"}, exitPipelineFailed, ""},
		{[]string{"pr-timedout"}, exitTimeout, "pr-timedout: pipeline run timed out after 2s (timeoutSeconds 2)"},
		{[]string{"pr-failed", "pr-timedout"}, exitPipelineFailed, ""},
		{[]string{"ok", "timedout", "exit3"}, exitTimeout, "run timedout: why timedout"},
		{[]string{"exit3", "timedout", "pr-failed"}, 3, ""},
		{[]string{"ok", "ok"}, 0, ""},
	} {
		t.Run(strings.Join(c.ids, ","), func(t *testing.T) {
			t.Parallel()
			f := &fakeFollower{runs: runs, pipeline: pipelines, end: map[string]chan struct{}{}}
			for _, id := range c.ids {
				f.end[id] = make(chan struct{})
			}
			var got []string
			var mu sync.Mutex
			told := make(chan struct{}, len(c.ids))
			done := make(chan error, 1)
			go func() {
				done <- waitEnds(t.Context(), f, c.ids, 0, func(e *endedRun) error {
					mu.Lock()
					got = append(got, e.id+" "+string(e.status())+" "+e.exitText())
					mu.Unlock()
					told <- struct{}{}
					return nil
				})
			}()
			// The runs end in the reverse order of their ids, one at a time.
			var want []string
			for i := len(c.ids) - 1; i >= 0; i-- {
				id := c.ids[i]
				if slices.Index(c.ids, id) != i {
					continue // a repeat: waited for once
				}
				close(f.end[id])
				<-told
				if r := runs[id]; r != nil {
					want = append(want, id+" "+string(r.Status)+" "+exitText(r.ExitCode))
				} else {
					want = append(want, id+" "+string(pipelines[id].Status)+" -")
				}
			}
			err := <-done
			if strings.Join(got, "; ") != strings.Join(want, "; ") {
				t.Errorf("told %q, want %q", got, want)
			}
			var ee *exitError
			switch {
			case c.code == 0 && err != nil:
				t.Errorf("err %v, want nil", err)
			case c.code != 0 && (!errors.As(err, &ee) || ee.code != c.code):
				t.Errorf("err %v, want exit %d", err, c.code)
			case c.msg != "" && err.Error() != c.msg:
				t.Errorf("err %q, want %q", err, c.msg)
			}
		})
	}
}

// waitServer is an embedded NATS with an operator (op) and a submitter
// (sub), and a gantry server without a worker: runs stay queued until
// stopped. It returns NATS's URL and the operator's client.
func waitServer(t *testing.T) (string, *client.Client) {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), User: "op", Password: "op-pw",
		SubmitUser: "sub", SubmitPassword: "sub-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("op", "op-pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := queue.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	runTestServer(t, q)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return ns.ClientURL(), c
}

// runTestServer runs a gantry server over q, its store in a temporary
// directory, until the test ends.
func runTestServer(t *testing.T, q *queue.Queue) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
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
}

// gantryCmd runs a gantry command in this process and returns its output
// and exit code as main would give them (the error's words on stderr).
func gantryCmd(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.code
		if ee.err != nil {
			fmt.Fprintln(&errb, "gantry:", ee.err)
		}
	default:
		code = exitGantryError
		fmt.Fprintln(&errb, "gantry:", err)
	}
	return out.String(), errb.String(), code
}

// TestWaitCommand: gantry wait, as a submit-only user, against a real
// server: a run that ends while it waits, one already ended, an unknown
// run, --timeout, a signal, and -o json.
func TestWaitCommand(t *testing.T) {
	t.Parallel()
	url, op := waitServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	submit := func() string {
		t.Helper()
		td := []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r, err := op.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
			if err == nil {
				return r.RunID
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server did not take a run within 10s: %v", err)
			}
		}
	}
	wait := func(ctx context.Context, args ...string) (string, string, int) {
		return gantryCmd(ctx, append([]string{"wait", "--nats", url, "--user", "sub", "--password", "sub-pw"}, args...)...)
	}

	a, b := submit(), submit()
	t.Run("ends while waiting", func(t *testing.T) {
		type result struct {
			out, errOut string
			code        int
		}
		waited := make(chan result, 1)
		go func() {
			out, errOut, code := wait(ctx, a)
			waited <- result{out, errOut, code}
		}()
		select {
		case w := <-waited:
			t.Fatalf("wait of a queued run returned: exit %d, %q %q", w.code, w.out, w.errOut)
		case <-time.After(500 * time.Millisecond):
		}
		if _, err := op.Stop(ctx, a, "enough"); err != nil {
			t.Fatal(err)
		}
		select {
		case w := <-waited:
			// As gantry run attached: a canceled run is 125, saying why.
			if w.out != a+"\tCANCELED\t-\n" || w.code != exitGantryError || w.errOut != "gantry: run "+a+" CANCELED: enough\n" {
				t.Errorf("wait of a run stopped meanwhile: exit %d, stdout %q, stderr %q", w.code, w.out, w.errOut)
			}
		case <-time.After(time.Second): // Wait's poll is every 2s: the event told it
			t.Fatal("wait did not end within 1s of the run's end")
		}
	})
	t.Run("already ended", func(t *testing.T) {
		out, _, code := wait(ctx, a, a)
		if out != a+"\tCANCELED\t-\n" || code != exitGantryError {
			t.Errorf("wait of a run ended, given twice: exit %d, stdout %q", code, out)
		}
		out, _, code = wait(ctx, "-o", "json", a)
		var r jobs.Run
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.RunID != a || r.Status != jobs.StatusCanceled || code != exitGantryError {
			t.Errorf("wait -o json: exit %d, %v:\n%s", code, err, out)
		}
	})
	t.Run("unknown run", func(t *testing.T) {
		const nosuch = "01jzzzzzzzzzzzzzzzzzzzzzzz"
		out, errOut, code := wait(ctx, b, nosuch)
		if want := "gantry: run " + nosuch + ": not found (gantry ps --all lists runs)\n"; code != exitGantryError || out != "" || errOut != want {
			t.Errorf("wait of an unknown run: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
		}
		// Every unknown one is named, in the order given, at once.
		const typo = "01jzzzzzzzzzzzzzzzzzzzzzzy"
		out, errOut, code = wait(ctx, typo, b, nosuch)
		if want := "gantry: run " + typo + ": not found; run " + nosuch + ": not found (gantry ps --all lists runs)\n"; code != exitGantryError || out != "" || errOut != want {
			t.Errorf("wait of two unknown runs: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
		}
	})
	t.Run("pipeline run", func(t *testing.T) {
		// A submitter may not read pipeline runs: said, not waited for.
		_, errOut, code := wait(ctx, b, "pr-01jzzzzzzzzzzzzzzzzzzzzzzz")
		if code != exitGantryError || !strings.Contains(errOut, "NATS refused gantry.api.pipelines.get") {
			t.Errorf("wait of a pipeline run as a submitter: exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		out, errOut, code := wait(ctx, "--timeout", "500ms", a, b)
		want := "gantry: --timeout 500ms reached; not ended: " + b + " (QUEUED)\n"
		if code != exitGantryError || out != a+"\tCANCELED\t-\n" || errOut != want {
			t.Errorf("wait --timeout: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("wait --timeout 500ms took %s", d)
		}
		if _, errOut, code := wait(ctx, "--timeout", "-1s", b); code != exitGantryError || !strings.Contains(errOut, "--timeout -1s: give how long to wait") {
			t.Errorf("wait --timeout -1s: exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("signal", func(t *testing.T) {
		sctx, stop := context.WithCancelCause(ctx)
		time.AfterFunc(300*time.Millisecond, func() { stop(errors.New("interrupt signal received")) })
		_, errOut, code := wait(sctx, b)
		if want := "gantry: stopped waiting (interrupt); the runs go on\n"; code != exitGantryError || errOut != want {
			t.Errorf("wait, signalled: exit %d, stderr %q; want %q", code, errOut, want)
		}
		if r, err := op.Get(ctx, b); err != nil || r.Status != jobs.StatusQueued {
			t.Errorf("the run after wait was signalled: %v %+v, want it still QUEUED", err, r)
		}
	})
	// A signal while the runs are looked up (a slow server) says the
	// same, not that the request was canceled.
	t.Run("signal while looking up", func(t *testing.T) {
		sctx, stop := context.WithCancelCause(ctx)
		c := &slowLookUp{runFollower: op, stop: func() { stop(errors.New("interrupt signal received")) }}
		err := waitEnds(sctx, c, []string{b}, 0, func(*endedRun) error { return nil })
		if want := "stopped waiting (interrupt); the runs go on"; err == nil || err.Error() != want {
			t.Errorf("wait, signalled while looking up: %v; want %q", err, want)
		}
	})
}

// slowLookUp is a runFollower whose look-up is interrupted: it calls
// stop, then answers as a request cut short by it does.
type slowLookUp struct {
	runFollower
	stop func()
}

func (s *slowLookUp) Get(ctx context.Context, runID string) (*jobs.Run, error) {
	s.stop()
	return s.runFollower.Get(ctx, runID)
}

// TestReadmeWaitExampleIsTheOutput: the README's gantry wait example
// showed the line with two spaces between the fields, where wait prints
// tabs: it shows them as <TAB>, the line wait prints for such a run.
func TestReadmeWaitExampleIsTheOutput(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	three := 3
	e := &endedRun{id: "01jf3...", run: &jobs.Run{RunID: "01jf3...", Status: jobs.StatusFailed, ExitCode: &three}}
	want := `gantry wait "$id"                        # ` + strings.ReplaceAll(strings.TrimSuffix(e.line(), "\n"), "\t", "<TAB>") + ", exits 3\n"
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md has no line %q: the example does not show what gantry wait prints (%q)", want, e.line())
	}
	if got := strings.Split(e.line(), "\t"); len(got) != 3 || got[2] != "3\n" {
		t.Errorf("wait's line %q: want three tab-separated fields, the exit code third (cut -f3)", e.line())
	}
}
