package docker

import (
	"bytes"
	"io"
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
// otherwise than the output did: resumeAt says so, and leaves the writers
// as they were, dropping nothing.
func TestResumeAtRotatedLog(t *testing.T) {
	sink := &recordSink{}
	wout := &lineWriter{sink: sink, container: "c", stream: "stdout"}
	werr := &lineWriter{sink: sink, container: "c", stream: "stderr"}
	stdcopy.StdCopy(wout, werr, bytes.NewReader(muxed([]part{{stdcopy.Stdout, "one\ntwo\n"}, {stdcopy.Stderr, "e\n"}})))
	rotated := muxed([]part{{stdcopy.Stdout, "two\n"}, {stdcopy.Stderr, "e\n"}, {stdcopy.Stdout, "three\n"}})
	if _, whole := resumeAt(bytes.NewReader(rotated), false, wout, werr); whole {
		t.Fatal("a log that begins with the output's second line was taken as whole")
	}
	if wout.skip != 0 || werr.skip != 0 {
		t.Fatalf("skip %d and %d, want none", wout.skip, werr.skip)
	}
}

// TestResumeAtShortLog: a log that ends before it holds all that was
// delivered (the container gone meanwhile) delivers nothing more.
func TestResumeAtShortLog(t *testing.T) {
	sink := &recordSink{}
	wout := &lineWriter{sink: sink, container: "c", stream: "stdout"}
	werr := &lineWriter{sink: sink, container: "c", stream: "stderr"}
	wout.Write([]byte("one\ntwo\n"))
	out, whole := resumeAt(bytes.NewReader(muxed([]part{{stdcopy.Stdout, "one\n"}})), false, wout, werr)
	if !whole {
		t.Fatal("not whole")
	}
	stdcopy.StdCopy(wout, werr, out)
	if got := sink.output("c", "stdout"); got != "one\ntwo\n" {
		t.Fatalf("stdout %q, want one and two, once", got)
	}
}

// FuzzResumeAt: whatever the container wrote, in whatever parts, and
// wherever the stream broke, the output read again from the log gives
// back each stream exactly as written.
func FuzzResumeAt(f *testing.F) {
	f.Add([]byte("ready\ntick\n"), []byte("e\n"), uint8(3), uint16(7), false)
	f.Add([]byte("a\r\nb\r\n"), []byte(nil), uint8(1), uint16(4), true)
	f.Add([]byte(strings.Repeat("x", 300)+"\n"), []byte("y"), uint8(50), uint16(200), false)
	f.Fuzz(func(t *testing.T, out, errOut []byte, size uint8, brk uint16, tty bool) {
		k := max(int(size), 1)
		var parts []part
		for i := 0; i < max(len(out), len(errOut)); i += k {
			if i < len(out) {
				parts = append(parts, part{stdcopy.Stdout, string(out[i:min(i+k, len(out))])})
			}
			if i < len(errOut) && !tty {
				parts = append(parts, part{stdcopy.Stderr, string(errOut[i:min(i+k, len(errOut))])})
			}
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
