package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
)

// TestServerChecksHistoryFlags: --log-retention, --log-max-size and
// --run-retention (or their GANTRY_* variables) that make no sense are
// refused at start, naming the flag or the variable, by gantry server
// and gantry up alike, before anything is started.
func TestServerChecksHistoryFlags(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	for _, c := range []struct {
		env  [2]string // variable, value
		args []string
		want string
	}{
		{args: []string{"--log-retention", "-1h"}, want: "--log-retention -1h0m0s: want 0 (no age limit) or at least 1m0s"},
		{args: []string{"--log-retention", "10s"}, want: "--log-retention 10s: want 0 (no age limit) or at least 1m0s"},
		{args: []string{"--log-retention", "a week"}, want: `invalid argument "a week" for "--log-retention"`},
		{args: []string{"--run-retention", "-720h"}, want: "--run-retention -720h0m0s: want 0 (keep runs for ever) or at least 1h0m0s"},
		{args: []string{"--run-retention", "5m"}, want: "--run-retention 5m0s: want 0 (keep runs for ever) or at least 1h0m0s"},
		{args: []string{"--log-max-size", "20 gigs"}, want: `--log-max-size "20 gigs": want a size such as 20GiB`},
		{args: []string{"--log-max-size", "-5GiB"}, want: `--log-max-size "-5GiB": want a size such as 20GiB`},
		{args: []string{"--log-max-size", "1e30"}, want: `--log-max-size "1e30": want a size such as 20GiB`},
		{args: []string{"--log-max-size", "1MiB"}, want: `--log-max-size "1MiB": want at least 10MiB`},
		{env: [2]string{"GANTRY_LOG_MAX_SIZE", "lots"}, want: `GANTRY_LOG_MAX_SIZE "lots": want a size such as 20GiB`},
		{env: [2]string{"GANTRY_LOG_RETENTION", "30 days"}, want: `GANTRY_LOG_RETENTION="30 days": want a duration such as 30d, 720h or 90m (--log-retention)`},
		{args: []string{"--log-retention", "a week"}, want: `invalid argument "a week" for "--log-retention" flag: want a duration such as 90s, 10m, 1h30m, 2d (days of 24h) or 1w`},
		// Days and weeks are read: 1w is over the least, 1d under it.
		{args: []string{"--run-retention", "1w", "--log-retention", "30s"}, want: "--log-retention 30s: want 0 (no age limit) or at least 1m0s"},
		{env: [2]string{"GANTRY_RUN_RETENTION", "-1h"}, want: "GANTRY_RUN_RETENTION=-1h (--run-retention): want 0 (keep runs for ever)"},
		{env: [2]string{"GANTRY_LOG_RETENTION", "30s"}, want: "GANTRY_LOG_RETENTION=30s (--log-retention): want 0 (no age limit) or at least 1m0s"},
		{env: [2]string{"GANTRY_RUN_RETENTION", "24h"}, args: []string{"--run-retention", "5m"}, want: "--run-retention 5m0s: want 0"},
		// Every problem at once.
		{args: []string{"--log-retention", "-1h", "--run-retention", "5m", "--log-max-size", "x"},
			want: "--log-retention -1h0m0s: want 0 (no age limit) or at least 1m0s\n--run-retention 5m0s: want 0 (keep runs for ever)"},
	} {
		for _, role := range [][]string{{"server", "--nats", "nats://127.0.0.1:1"}, {"up", "--nats-port", "0"}} {
			for _, env := range []string{"GANTRY_LOG_RETENTION", "GANTRY_LOG_MAX_SIZE", "GANTRY_RUN_RETENTION"} {
				t.Setenv(env, "")
			}
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			root := newRoot()
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs(append(append(role, "--data", t.TempDir()), c.args...))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := root.ExecuteContext(ctx)
			cancel()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s=%q gantry %s %v: %v, want %q", c.env[0], c.env[1], role[0], c.args, err, c.want)
			}
		}
	}
}

func TestParseLogMaxSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"0": 0, " 0 ": 0, "20GiB": 20 << 30, "20GB": 20 << 30, "20g": 20 << 30, "500MiB": 500 << 20,
		"1.5TiB": 3 << 39, "10MiB": 10 << 20, "1EiB": -1, "1PiB": 1 << 50,
	} {
		got, err := parseLogMaxSize(in)
		if want < 0 {
			if err == nil {
				t.Errorf("parseLogMaxSize(%q) = %d, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("parseLogMaxSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// FuzzParseLogMaxSize: whatever the input, parseLogMaxSize returns 0 or a
// size within its bounds, or an error; never a negative size or a panic.
func FuzzParseLogMaxSize(f *testing.F) {
	for _, s := range []string{"0", "20GiB", "20 GB", "1e30", "-1", "9223372036854775807", "NaN", "1.5t", "0x10", "", "b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseLogMaxSize(s)
		if err != nil {
			return
		}
		if n != 0 && (n < minLogMaxSize || n > maxLogMaxSize) {
			t.Fatalf("parseLogMaxSize(%q) = %d, out of bounds", s, n)
		}
	})
}

// TestLogsOfARunWhoseLinesWereDropped: with the log stream bounded in
// size (--log-max-size), `gantry logs` says on stderr that the lines of a
// run that ended before the oldest line held are gone, and that the first
// lines of a run are, naming the bound; it printed nothing, or the lines
// left, without a word.
func TestLogsOfARunWhoseLinesWereDropped(t *testing.T) {
	b := startBoundedLogs(t)
	ctx, c, q := b.ctx, b.c, b.q
	submit := b.submit
	logs := func(id string) (stdout, stderr string) {
		t.Helper()
		return b.logs(id, io.Discard)
	}

	old := submit()
	endAsRan(t, ctx, c, q, old, time.Now()) // its container started, and wrote nothing
	time.Sleep(10 * time.Millisecond)       // the lines below are stored after its end
	busy := submit()
	w := q.NewLogWriter(busy, 1)
	line := []byte(strings.Repeat("x", 1000))
	for range 3000 { // 3 MB in 1 MiB
		w.Line("main", jobs.Stdout, line)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	out, errOut := logs(old)
	if want := "gantry: run " + old + " ended "; out != "" || !strings.HasPrefix(errOut, want) ||
		!strings.Contains(errOut, "before the oldest line the GANTRY_LOGS stream holds") ||
		!strings.Contains(errOut, "the GANTRY_LOGS stream keeps lines 30d and at most 1MiB (its max age and max size, the server's --log-retention and --log-max-size), dropping the oldest first; its logs, if it wrote any, are no longer kept\n") {
		t.Errorf("logs of a run that ended before the oldest line: stdout %q, stderr %q", out, errOut)
	}
	out, errOut = logs(busy)
	if !strings.HasPrefix(errOut, "gantry: the first ") ||
		!strings.Contains(errOut, " lines of container main (attempt 1) are no longer kept: the GANTRY_LOGS stream keeps lines 30d and at most 1MiB") ||
		strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(out, string(line)+"\n") {
		t.Errorf("logs of a run whose first lines were dropped: %d bytes of stdout, stderr %q", len(out), errOut)
	}
}

// boundedLogs is a server whose log stream holds at most 1 MiB, and a
// client of it.
type boundedLogs struct {
	t   *testing.T
	ctx context.Context
	nc  *nats.Conn
	q   *queue.Queue
	c   *client.Client
}

func startBoundedLogs(t *testing.T) *boundedLogs {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nc := embeddedNATS(t)
	bounded, err := queue.New(nc, queue.WithLogMaxBytes(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := bounded.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(nc) // as the server without the flags: keeps the bound
	if err != nil {
		t.Fatal(err)
	}
	runTestServer(t, q)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &boundedLogs{t: t, ctx: ctx, nc: nc, q: q, c: c}
}

// submit makes a run, which no worker takes.
func (b *boundedLogs) submit() string {
	b.t.Helper()
	td := []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r, err := b.c.Submit(b.ctx, &jobs.SubmitRequest{TaskDefinition: td})
		if err == nil {
			return r.RunID
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the server did not take a run within 10s: %v", err)
		}
	}
}

// logs runs gantry logs ID; stdout is written to out as well.
func (b *boundedLogs) logs(id string, out io.Writer) (stdout, stderr string) {
	b.t.Helper()
	root := newRoot()
	var outb, errb bytes.Buffer
	root.SetOut(io.MultiWriter(out, &outb))
	root.SetErr(&errb)
	root.SetArgs([]string{"logs", "--nats", b.nc.ConnectedUrl(), id})
	if err := root.ExecuteContext(b.ctx); err != nil {
		b.t.Fatalf("gantry logs %s: %v", id, err)
	}
	return outb.String(), errb.String()
}

// TestLogsSayWhichLinesASlowReaderMissed: past --log-max-size the stream
// drops its oldest lines whoever has yet to read them. A reader that
// falls behind a run's output by more than the bound (gantry run or
// gantry logs into a slow pipe) misses lines in the middle of the run's:
// gantry logs says on stderr which, rather than join the lines before the
// gap to those after it without a word.
func TestLogsSayWhichLinesASlowReaderMissed(t *testing.T) {
	b := startBoundedLogs(t)
	id := b.submit()
	w := b.q.NewLogWriter(id, 1)
	line := []byte(strings.Repeat("x", 1000))
	write := func(n int) {
		for range n {
			w.Line("main", jobs.Stdout, line)
		}
	}
	write(600) // two batches of 256 KiB go out at once
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if p, err := b.c.LogPosition(b.ctx, id, ""); err == nil && p.Messages > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no log batch stored within 10s")
		}
	}
	// The reader holds its first batch while 3 MB more go through the
	// 1 MiB stream.
	slow := &blockedWriter{started: make(chan struct{}), release: make(chan struct{})}
	go func() {
		<-slow.started
		write(3000)
		if err := w.Close(b.ctx); err != nil {
			t.Error(err)
		}
		close(slow.release)
	}()
	out, errOut := b.logs(id, slow)
	lines := strings.Count(out, "\n")
	if lines >= 3600 || strings.Count(errOut, "\n") != 1 ||
		!regexp.MustCompile(`^gantry: \d+ lines of container main \(attempt 1\), \d+ to \d+, were dropped before they were read: `+
			`the GANTRY_LOGS stream keeps lines 30d and at most 1MiB`).MatchString(errOut) {
		t.Fatalf("logs read slowly past the bound: %d lines of 3600 on stdout, stderr %q", lines, errOut)
	}
	var missed, from, to int
	fmt.Sscanf(errOut, "gantry: %d lines of container main (attempt 1), %d to %d,", &missed, &from, &to)
	if from < 2 || to != from+missed-1 || lines+missed != 3600 {
		t.Errorf("%d lines printed, and stderr says %d (%d to %d) are missing, of 3600: %q", lines, missed, from, to, errOut)
	}
}

// blockedWriter holds its first Write until release is closed, telling
// started when it begins to.
type blockedWriter struct {
	started, release chan struct{}
	once             sync.Once
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		close(w.started)
		<-w.release
	})
	return len(p), nil
}
