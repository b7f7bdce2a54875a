package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// stampedLine is a line gantry logs -t printed, split at its timestamp.
type stampedLine struct {
	at   time.Time
	text string
}

// parseStamped reads the lines of gantry logs -t output: each must start
// with an RFC 3339 time with nine digits of fraction, in UTC, and a space.
func parseStamped(t *testing.T, what, out string) []stampedLine {
	t.Helper()
	var lines []stampedLine
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		stamp, text, ok := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if !ok || err != nil || len(stamp) != len(timestampLayout)-len("Z07:00")+1 || !strings.HasSuffix(stamp, "Z") {
			t.Fatalf("%s: line %.80q does not start with an RFC 3339 time in UTC with nanoseconds (%v)", what, l, err)
		}
		lines = append(lines, stampedLine{at, text})
	}
	return lines
}

// TestLogsTimestamps: gantry logs -t starts every line with a time within
// the run's, never going back, the same time read after the run as
// followed, with --tail and --prefix; a line stored in pieces is one line
// with one time.
func TestLogsTimestamps(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	id := in.runDetached("sh", "-c", "echo one; echo two >&2; echo three; bigline 300000; echo four")
	followed, followedErr, code := in.gantry("logs", "-f", "-t", id)
	if code != 0 {
		t.Fatalf("logs -f -t: exit %d: %s", code, followedErr)
	}
	// Followed before its container starts, the log says first that it
	// waits for it; that notice is no line of the log.
	followedErr = regexp.MustCompile(`^gantry: run `+id+` is (QUEUED|STARTING), no container has started: waiting for its log\n`).
		ReplaceAllString(followedErr, "")
	r := in.waitStatus(id, "SUCCEEDED")
	stdout, stderr, code := in.gantry("logs", "--timestamps", id)
	if code != 0 || stdout != followed || stderr != followedErr {
		t.Fatalf("logs -t after the run (exit %d) printed other lines than logs -f -t:\n%.300q\n%.300q\nstderr %q, %q", code, stdout, followed, stderr, followedErr)
	}
	out, errs := parseStamped(t, "stdout", stdout), parseStamped(t, "stderr", stderr)
	var texts []string
	for i, l := range out {
		texts = append(texts, l.text)
		if i > 0 && l.at.Before(out[i-1].at) {
			t.Errorf("line %d's time %s is before line %d's, %s", i+1, l.at, i, out[i-1].at)
		}
	}
	if len(texts) != 4 || texts[0] != "one" || texts[1] != "three" || len(texts[2]) != 300000 || texts[3] != "four" ||
		len(errs) != 1 || errs[0].text != "two" {
		t.Fatalf("stdout lines %.60q, stderr lines %.60v; want one, three, a line of 300000 bytes, four; two", texts, errs)
	}
	// The worker reads a container's output from its start, which it
	// reports (startedAt) a moment later: the run's creation is the bound
	// before, its end the bound after (reported once the lines are
	// stored). The times are the worker's clock, the bounds too.
	for _, l := range append(out, errs...) {
		if l.at.Before(r.CreatedAt) || l.at.After(*r.FinishedAt) {
			t.Errorf("line %.20q at %s, outside the run's %s to %s", l.text, l.at, r.CreatedAt, *r.FinishedAt)
		}
	}

	// --tail counts the lines of both streams together, in the order they
	// were stored, and the daemon reads a container's stdout and stderr
	// apart: "two" may be stored before the long line, after it or after
	// "four". Whatever the order, the two lines printed are the end of
	// each stream's lines as logs -t has them.
	tailOut, tailErr, code := in.gantry("logs", "-t", "--tail", "2", id)
	if code != 0 || strings.Count(tailOut+tailErr, "\n") != 2 || !endsWithLines(stdout, tailOut) || !endsWithLines(stderr, tailErr) {
		t.Errorf("logs -t --tail 2 (exit %d): stdout %.100q..., stderr %q; want the last two lines of both streams as logs -t has them: stdout ending %.100q, stderr %q",
			code, tailOut, tailErr, stdout[max(0, len(stdout)-100):], stderr)
	}
	prefixed, _, _ := in.gantry("logs", "-t", "--prefix", id)
	if want := "main|stdout " + out[0].at.Format(timestampLayout) + " one\n"; !strings.HasPrefix(prefixed, want) {
		t.Errorf("logs -t --prefix: %.100q..., want it to start %q", prefixed, want)
	}
}

// endsWithLines reports whether end is the last of all's lines, whole (or
// nothing).
func endsWithLines(all, end string) bool {
	rest, ok := strings.CutSuffix(all, end)
	return ok && (end == "" || strings.HasSuffix(end, "\n")) && (rest == "" || strings.HasSuffix(rest, "\n"))
}
