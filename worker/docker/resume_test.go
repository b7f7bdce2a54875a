package docker

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/pkg/stdcopy"
)

// part is what a container wrote to one stream at once.
type part struct {
	stream stdcopy.StdType
	text   string
}

// muxed is parts as the daemon's log gives them: a frame each.
func muxed(parts []part) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		stdcopy.NewStdWriter(&b, p.stream).Write([]byte(p.text))
	}
	return b.Bytes()
}

// resumed delivers the first n bytes of log (multiplexed unless tty) to a
// stdout and a stderr writer, as the attach did before it broke, then
// reads the whole log again through resumeAt, and returns what a reader
// gives back of each stream, and whether the log was taken as whole.
func resumed(t *testing.T, log []byte, n int, tty bool) (stdout, stderr string, whole bool) {
	t.Helper()
	sink := &recordSink{}
	wout := &lineWriter{sink: sink, container: "c", stream: "stdout", tty: tty}
	werr := &lineWriter{sink: sink, container: "c", stream: "stderr"}
	copyLog := func(r io.Reader) {
		var err error
		if tty {
			_, err = io.Copy(wout, r)
		} else {
			_, err = stdcopy.StdCopy(wout, werr, r)
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatalf("copy: %v", err)
		}
	}
	copyLog(bytes.NewReader(log[:n]))
	out, whole := resumeAt(bytes.NewReader(log), tty, wout, werr)
	if !whole {
		return sink.output("c", "stdout"), sink.output("c", "stderr"), false
	}
	copyLog(out)
	wout.Flush()
	werr.Flush()
	return sink.output("c", "stdout"), sink.output("c", "stderr"), true
}

// TestResumeAt: the output read again from the log's start goes on where
// the stream broke off, wherever that was, each line once: "tick", the
// same line over and over, which the log's times or content cannot place,
// included.
func TestResumeAt(t *testing.T) {
	parts := []part{
		{stdcopy.Stdout, "ready\n"},
		{stdcopy.Stderr, "warn: one\n"},
		{stdcopy.Stdout, "tick\ntick\n"},
		{stdcopy.Stdout, "tick\n"},
		{stdcopy.Stderr, "warn: "},
		{stdcopy.Stderr, "two\n"},
		{stdcopy.Stdout, "tick\nno newline"},
	}
	log := muxed(parts)
	for n := 0; n <= len(log); n++ {
		stdout, stderr, whole := resumed(t, log, n, false)
		if !whole || stdout != "ready\ntick\ntick\ntick\ntick\nno newline" || stderr != "warn: one\nwarn: two\n" {
			t.Fatalf("broken after %d bytes: stdout %q, stderr %q, whole %v; want each line once", n, stdout, stderr, whole)
		}
	}
}

// TestResumeAtTerminal: a terminal's output, one stream with \r\n, not
// multiplexed.
func TestResumeAtTerminal(t *testing.T) {
	log := []byte("ready\r\ntick\r\ntick\r\ndone\r\n")
	for n := 0; n <= len(log); n++ {
		if stdout, _, whole := resumed(t, log, n, true); !whole || stdout != "ready\ntick\ntick\ndone\n" {
			t.Fatalf("broken after %d bytes: stdout %q, whole %v", n, stdout, whole)
		}
	}
}

// TestResumeAtRotatedLog: a log whose start was rotated away begins
// otherwise than the output did: resumeAt says so.
func TestResumeAtRotatedLog(t *testing.T) {
	wout, werr := delivered(t, muxed([]part{{stdcopy.Stdout, "one\ntwo\n"}, {stdcopy.Stderr, "e\n"}}))
	rotated := muxed([]part{{stdcopy.Stdout, "two\n"}, {stdcopy.Stderr, "e\n"}, {stdcopy.Stdout, "three\n"}})
	if _, whole := resumeAt(bytes.NewReader(rotated), false, wout, werr); whole {
		t.Fatal("a log that begins with the output's second line was taken as whole")
	}
}

// TestResumeAtRotatedLogSameStart: a log rotated so that what is left of
// it begins as the output did, for longer than the first bytes a writer
// keeps (headLen), the container writing the same line over and over
// until something happened, is not taken as whole: its bytes delivered
// differ further on. Taken as whole, the lines after the break, up to the
// length rotated away, were lost.
func TestResumeAtRotatedLogSameStart(t *testing.T) {
	before := ticks(100)
	wout, werr := delivered(t, muxed(append(before, part{stdcopy.Stdout, "ready\n"})))
	// Rotated: ten ticks gone, and "during" written since the break.
	rotated := muxed(append(before[10:], part{stdcopy.Stdout, "ready\n"}, part{stdcopy.Stdout, "during\n"}, part{stdcopy.Stdout, "after\nand the end\n"}))
	if _, whole := resumeAt(bytes.NewReader(rotated), false, wout, werr); whole {
		t.Fatal("a log rotated to less than was delivered, beginning as the output did, was taken as whole")
	}
}

// TestResumeAtShortLog: a log that ends before it holds all that was
// delivered is not the one delivered.
func TestResumeAtShortLog(t *testing.T) {
	wout, werr := delivered(t, muxed([]part{{stdcopy.Stdout, "one\ntwo\n"}}))
	if _, whole := resumeAt(bytes.NewReader(muxed([]part{{stdcopy.Stdout, "one\n"}})), false, wout, werr); whole {
		t.Fatal("a log shorter than the output delivered was taken as whole")
	}
}

// TestResumeAtStreamsFarApart: a log in which one stream goes on for
// more than maxReadAhead before the other reaches what it delivered is not
// the one delivered, whose streams broke off at one moment; resumeAt does
// not keep that much.
func TestResumeAtStreamsFarApart(t *testing.T) {
	wout, werr := delivered(t, muxed([]part{{stdcopy.Stdout, "one\n"}}))
	far := []part{}
	for range maxReadAhead/(32<<10) + 1 {
		far = append(far, part{stdcopy.Stderr, strings.Repeat("e", 32<<10-1) + "\n"})
	}
	log := muxed(append(far, part{stdcopy.Stdout, "one\n"}))
	if _, whole := resumeAt(bytes.NewReader(log), false, wout, werr); whole {
		t.Fatalf("a log with %d bytes of stderr before stdout's first line was taken as whole", len(log))
	}
	// Just under the bound, the log is whole, and nothing is lost.
	log = muxed(append(far[:len(far)-2], part{stdcopy.Stdout, "one\ntwo\n"}))
	out, whole := resumeAt(bytes.NewReader(log), false, wout, werr)
	if !whole {
		t.Fatal("a whole log with its streams' ends under maxReadAhead apart was not taken as whole")
	}
	sink := &recordSink{}
	wout.sink, werr.sink = sink, sink
	if _, err := stdcopy.StdCopy(wout, werr, out); err != nil {
		t.Fatal(err)
	}
	if got := sink.get("c", "stderr"); len(got) != len(far)-2 {
		t.Fatalf("%d lines of stderr, want %d", len(got), len(far)-2)
	}
	if got := sink.output("c", "stdout"); got != "two\n" {
		t.Fatalf("stdout %q, want the line not delivered yet", got)
	}
}

// TestResumeAtFrameTooLarge: a frame whose header claims more than
// maxReadAhead bytes is not read into memory: the log is not taken as
// whole.
func TestResumeAtFrameTooLarge(t *testing.T) {
	wout, werr := delivered(t, muxed([]part{{stdcopy.Stdout, "one\n"}}))
	log := []byte{byte(stdcopy.Stdout), 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'o', 'n', 'e'}
	if _, whole := resumeAt(bytes.NewReader(log), false, wout, werr); whole {
		t.Fatal("a log with a 4 GiB frame was taken as whole")
	}
	if _, _, err := readPart(bytes.NewReader(log), make([]byte, 16), false); err != errFrameTooLarge {
		t.Fatalf("reading the frame: %v, want %v", err, errFrameTooLarge)
	}
}

// delivered returns a stdout and a stderr writer that delivered log, as
// an attach did before it broke.
func delivered(t *testing.T, log []byte) (stdout, stderr *lineWriter) {
	t.Helper()
	sink := &recordSink{}
	stdout = &lineWriter{sink: sink, container: "c", stream: "stdout"}
	stderr = &lineWriter{sink: sink, container: "c", stream: "stderr"}
	if _, err := stdcopy.StdCopy(stdout, stderr, bytes.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// interleaved is what a container wrote to stdout (out) and stderr
// (errOut) in parts of size bytes (at least 1), a part of each in turn.
func interleaved(out, errOut []byte, size uint8) []part {
	k := max(int(size), 1)
	var parts []part
	for i := 0; i < max(len(out), len(errOut)); i += k {
		if i < len(out) {
			parts = append(parts, part{stdcopy.Stdout, string(out[i:min(i+k, len(out))])})
		}
		if i < len(errOut) {
			parts = append(parts, part{stdcopy.Stderr, string(errOut[i:min(i+k, len(errOut))])})
		}
	}
	return parts
}

// FuzzResumeAt: whatever the container wrote, in whatever parts, and
// wherever the stream broke, the output read again from the log gives
// back each stream exactly as written.
func FuzzResumeAt(f *testing.F) {
	f.Add([]byte("ready\ntick\n"), []byte("e\n"), uint8(3), uint16(7), false)
	f.Add([]byte("a\r\nb\r\n"), []byte(nil), uint8(1), uint16(4), true)
	f.Add([]byte(strings.Repeat("x", 300)+"\n"), []byte("y"), uint8(50), uint16(200), false)
	f.Fuzz(func(t *testing.T, out, errOut []byte, size uint8, brk uint16, tty bool) {
		var parts []part
		if tty {
			parts = interleaved(out, nil, size)
		} else {
			parts = interleaved(out, errOut, size)
		}
		log := muxed(parts)
		if tty {
			log = out
		}
		n := int(brk) % (len(log) + 1)
		stdout, stderr, whole := resumed(t, log, n, tty)
		if !whole {
			t.Fatalf("the whole log, broken after %d bytes, was not taken as whole", n)
		}
		want := func(b []byte, tty bool) string {
			lines := splitLines(string(b))
			ended := len(b) > 0 && b[len(b)-1] == '\n'
			for i := range lines {
				if tty && (ended || i < len(lines)-1) {
					lines[i] = strings.TrimSuffix(lines[i], "\r")
				}
			}
			s := strings.Join(lines, "\n")
			if ended {
				s += "\n"
			}
			return s
		}
		if stdout != want(out, tty) {
			t.Fatalf("broken after %d bytes: stdout %q, want %q", n, stdout, want(out, tty))
		}
		if !tty && stderr != want(errOut, false) {
			t.Fatalf("broken after %d bytes: stderr %q, want %q", n, stderr, want(errOut, false))
		}
	})
}

// closeCount is a log that counts its closes.
type closeCount struct {
	io.Reader
	closes int
}

func (c *closeCount) Close() error { c.closes++; return nil }

// TestRelogReopen: a log followed again that its check finds rotated is
// closed, and the copy reads the one opened in its place, which Close
// closes; once closed, no other is opened.
func TestRelogReopen(t *testing.T) {
	first, second := &closeCount{Reader: strings.NewReader("old")}, &closeCount{Reader: strings.NewReader("since the break")}
	l := &relog{rc: first}
	l.check = func() (io.Reader, error) {
		return l.reopen(func() (io.ReadCloser, error) { return second, nil })
	}
	got, err := io.ReadAll(l)
	if err != nil || string(got) != "since the break" || first.closes != 1 {
		t.Fatalf("read %q, %v, first log closed %d times; want the second log's bytes and the first closed", got, err, first.closes)
	}
	l.Close()
	if second.closes != 1 {
		t.Fatalf("second log closed %d times, want once", second.closes)
	}

	closed := &relog{rc: &closeCount{Reader: strings.NewReader("old")}}
	opened := false
	closed.check = func() (io.Reader, error) {
		return closed.reopen(func() (io.ReadCloser, error) { opened = true; return second, nil })
	}
	closed.Close() // the container's exit, while the check reads
	if n, err := closed.Read(make([]byte, 8)); n != 0 || err != io.EOF || opened {
		t.Fatalf("read %d, %v, opened another %v; want EOF and none opened", n, err, opened)
	}
}

// ticks is n parts of "tick\n" on stdout.
func ticks(n int) []part {
	var ps []part
	for range n {
		ps = append(ps, part{stdcopy.Stdout, "tick\n"})
	}
	return ps
}

// located finds where the writers broke off in rotated, the log up to
// the break with its start rotated away (locate), and returns what the
// output then gives of each stream from the log followed (follow), and
// whether it was located.
func located(t *testing.T, wout, werr *lineWriter, rotated, follow []byte) (stdout, stderr string, ok bool) {
	t.Helper()
	marks, ok := locate(bytes.NewReader(rotated), false, wout, werr)
	if !ok {
		return "", "", false
	}
	out, ok := readOnFrom(bytes.NewReader(follow), false, marks[0], marks[1])
	if !ok {
		t.Fatalf("the log followed does not agree with the marks found in the same log: %+v", marks)
	}
	sink := &recordSink{}
	wout.sink, werr.sink = sink, sink
	if _, err := stdcopy.StdCopy(wout, werr, out); err != nil {
		t.Fatal(err)
	}
	return sink.output("c", "stdout"), sink.output("c", "stderr"), true
}

// TestLocate: in a log whose start was rotated away, where the output
// broke off is found after the one place the last bytes delivered occur,
// and the output goes on from there, each line once.
func TestLocate(t *testing.T) {
	before := append(ticks(100), part{stdcopy.Stderr, "warn\n"}, part{stdcopy.Stdout, "ready\n"})
	wout, werr := delivered(t, muxed(before))
	after := []part{{stdcopy.Stdout, "during\n"}, {stdcopy.Stderr, "oops\n"}, {stdcopy.Stdout, "after\n"}}
	upTo := muxed(append(slices.Clone(before[10:]), after[:1]...)) // the log until just after the break
	follow := muxed(append(slices.Clone(before[10:]), after...))
	stdout, stderr, ok := located(t, wout, werr, upTo, follow)
	if !ok || stdout != "during\nafter\n" || stderr != "oops\n" {
		t.Fatalf("stdout %q, stderr %q, located %v; want during, after and oops once", stdout, stderr, ok)
	}
}

// TestLocateTailRotatedAway: a stream whose last bytes delivered were
// rotated away, with all before them, goes on from its first byte left:
// every one was written since.
func TestLocateTailRotatedAway(t *testing.T) {
	before := append([]part{{stdcopy.Stderr, "early warning\n"}}, ticks(10)...)
	before = append(before, part{stdcopy.Stdout, "ready\n"})
	wout, werr := delivered(t, muxed(before))
	log := muxed(append(slices.Clone(before[1:]), part{stdcopy.Stderr, "late\n"}, part{stdcopy.Stdout, "after\n"}))
	stdout, stderr, ok := located(t, wout, werr, log, log)
	if !ok || stdout != "after\n" || stderr != "late\n" {
		t.Fatalf("stdout %q, stderr %q, located %v; want after and late once", stdout, stderr, ok)
	}
}

// TestLocateCannotTell: where the place cannot be told, locate says so:
// a tail delivered that occurs twice (a line written over and over), and
// a stream whose first bytes left could be the end of the tail, the rest
// of it rotated away.
func TestLocateCannotTell(t *testing.T) {
	wout, werr := delivered(t, muxed(append(ticks(300), part{stdcopy.Stderr, "e\n"})))
	if _, ok := locate(bytes.NewReader(muxed(append(ticks(290), part{stdcopy.Stderr, "e\n"}))), false, wout, werr); ok {
		t.Error("a tail of ticks among ticks was located")
	}
	wout, werr = delivered(t, muxed([]part{{stdcopy.Stdout, "ready\n"}, {stdcopy.Stderr, "abc\n"}, {stdcopy.Stderr, "def\n"}}))
	if _, ok := locate(bytes.NewReader(muxed([]part{{stdcopy.Stderr, "def\n"}, {stdcopy.Stdout, "ready\n"}, {stdcopy.Stderr, "xyz\n"}})), false, wout, werr); ok {
		t.Error("a stream that begins with the end of its tail was located")
	}
}

// FuzzLocate: whatever the container wrote, wherever the stream broke and
// however much of the log's start was rotated away, short of the last
// bytes delivered (tailLen), locate either says it cannot tell, or finds
// the very place: the output then gives back each stream exactly as
// written.
func FuzzLocate(f *testing.F) {
	f.Add([]byte("ready\ntick\n"), []byte("e\n"), uint8(3), uint16(7), uint16(2), uint8(1))
	f.Add([]byte(strings.Repeat("tick\n", 80)+"ready\n"), []byte("warn\n"), uint8(5), uint16(300), uint16(40), uint8(2))
	f.Add([]byte(strings.Repeat("x", 600)), []byte("y\nz\n"), uint8(50), uint16(200), uint16(3), uint8(0))
	f.Fuzz(func(t *testing.T, out, errOut []byte, size uint8, brk, cut uint16, slack uint8) {
		parts := interleaved(out, errOut, size)
		// The stream breaks after b parts; the log's first c parts are
		// rotated away; the log read to locate ends s parts after the break.
		b := int(brk) % (len(parts) + 1)
		c := int(cut) % (b + 1)
		s := min(b+int(slack)%3, len(parts))
		sink := &recordSink{}
		wout := &lineWriter{sink: sink, container: "c", stream: "stdout"}
		werr := &lineWriter{sink: sink, container: "c", stream: "stderr"}
		if _, err := stdcopy.StdCopy(wout, werr, bytes.NewReader(muxed(parts[:b]))); err != nil {
			t.Fatal(err)
		}
		for _, w := range []*lineWriter{wout, werr} {
			var left int64 // the stream's bytes delivered that the rotation left
			for _, p := range parts[c:b] {
				if (p.stream == stdcopy.Stdout) == (w == wout) {
					left += int64(len(p.text))
				}
			}
			if left < int64(len(w.lastBytes())) {
				return // the rotation reached the last bytes delivered
			}
		}
		marks, ok := locate(bytes.NewReader(muxed(parts[c:s])), false, wout, werr)
		if !ok {
			return
		}
		rest, ok := readOnFrom(bytes.NewReader(muxed(parts[c:])), false, marks[0], marks[1])
		if !ok {
			t.Fatalf("cut %d, break %d: the log followed does not agree with the marks found in it: %+v", c, b, marks)
		}
		if _, err := stdcopy.StdCopy(wout, werr, rest); err != nil {
			t.Fatal(err)
		}
		wout.Flush()
		werr.Flush()
		if got := sink.output("c", "stdout"); got != string(out) {
			t.Fatalf("cut %d, break %d: stdout %q, want %q", c, b, got, out)
		}
		if got := sink.output("c", "stderr"); got != string(errOut) {
			t.Fatalf("cut %d, break %d: stderr %q, want %q", c, b, got, errOut)
		}
	})
}

// TestLocateTerminal: a terminal's log, one stream with \r\n and not
// multiplexed, rotated: the output goes on after the last bytes
// delivered.
func TestLocateTerminal(t *testing.T) {
	sink := &recordSink{}
	wout := &lineWriter{sink: sink, container: "c", stream: "stdout", tty: true}
	werr := &lineWriter{sink: sink, container: "c", stream: "stderr"}
	var lines []string
	for i := range 60 {
		lines = append(lines, fmt.Sprintf("line %d\r\n", i))
	}
	wout.Write([]byte(strings.Join(lines, "") + "ready\r\n"))
	rotated := []byte(strings.Join(lines[10:], "") + "ready\r\nthree\r\n")
	marks, ok := locate(bytes.NewReader(rotated), true, wout, werr)
	if !ok {
		t.Fatal("not located")
	}
	out, ok := readOnFrom(bytes.NewReader(rotated), true, marks[0], marks[1])
	if !ok {
		t.Fatal("the log does not agree with the marks found in it")
	}
	if _, err := io.Copy(wout, out); err != nil {
		t.Fatal(err)
	}
	if got, want := sink.output("c", "stdout"), strings.ReplaceAll(strings.Join(lines, ""), "\r", "")+"ready\nthree\n"; got != want {
		t.Fatalf("stdout %q, want each line once", got)
	}
}
