package docker

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// recordSink is a worker.LogSink that keeps copies of the lines it gets,
// joining a line's pieces as readers do.
type recordSink struct {
	mu     sync.Mutex
	lines  map[string][]string // "container/stream" → lines
	pieces map[string][]string // of the line in the making
	cuts   int                 // pieces in all
	ended  map[string]bool     // "container/stream" whose last line had no newline
}

func (s *recordSink) End(container, stream string, line []byte) {
	s.Line(container, stream, line)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == nil {
		s.ended = map[string]bool{}
	}
	s.ended[container+"/"+stream] = true
}

// output is what a reader gives back of one stream: its lines, each with
// its newline but a last one that had none.
func (s *recordSink) output(container, stream string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := container + "/" + stream
	out := strings.Join(s.lines[k], "\n")
	if len(s.lines[k]) > 0 && !s.ended[k] {
		out += "\n"
	}
	return out
}

func (s *recordSink) Piece(container, stream string, piece []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pieces == nil {
		s.pieces = map[string][]string{}
	}
	k := container + "/" + stream
	s.pieces[k] = append(s.pieces[k], string(piece))
	s.cuts++
}

func (s *recordSink) Line(container, stream string, line []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines == nil {
		s.lines = map[string][]string{}
	}
	k := container + "/" + stream
	s.lines[k] = append(s.lines[k], strings.Join(s.pieces[k], "")+string(line))
	delete(s.pieces, k)
}

func (s *recordSink) get(container, stream string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines[container+"/"+stream]...)
}

// writeChunks writes in to a fresh lineWriter in pieces of size n, and
// returns the lines it passed on and the output a reader gives back.
func writeChunks(in string, n int) (lines []string, out string) {
	sink := &recordSink{}
	w := &lineWriter{sink: sink, container: "c", stream: "stdout"}
	b := []byte(in)
	for len(b) > 0 {
		k := min(n, len(b))
		// Reuse the caller's buffer, as stdcopy does, to catch a writer
		// that keeps the slice it was given.
		chunk := append([]byte(nil), b[:k]...)
		w.Write(chunk)
		for i := range chunk {
			chunk[i] = 'X'
		}
		b = b[k:]
	}
	w.Flush()
	return sink.get("c", "stdout"), sink.output("c", "stdout")
}

// splitLines is what lineWriter should produce.
func splitLines(in string) []string {
	if in == "" {
		return nil
	}
	lines := strings.Split(in, "\n")
	if strings.HasSuffix(in, "\n") {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func TestLineWriter(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"one line", "hello\n"},
		{"no final newline", "a\nb"},
		{"empty lines", "\n\n\na\n\n"},
		{"carriage return kept", "a\r\nb\r\n"},
		{"1 MiB line", "before\n" + big + "\nafter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := splitLines(tt.in)
			for _, n := range []int{1, 3, 7, 4096, 32 << 10, len(tt.in) + 1} {
				got, out := writeChunks(tt.in, n)
				if out != tt.in {
					t.Fatalf("chunks of %d: a reader gives back %.40q (%d bytes), not the %d bytes written", n, out, len(out), len(tt.in))
				}
				if len(got) != len(want) {
					t.Fatalf("chunks of %d: got %d lines, want %d", n, len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("chunks of %d: line %d: got %.40q (%d bytes), want %.40q (%d bytes)", n, i, got[i], len(got[i]), want[i], len(want[i]))
					}
				}
			}
		})
	}
}

func TestLineWriterBoundsMemory(t *testing.T) {
	sink := &recordSink{}
	w := &lineWriter{sink: sink, container: "c", stream: "stderr"}
	chunk := bytes.Repeat([]byte("y"), 1<<20)
	for range 2 * maxLine / len(chunk) {
		w.Write(chunk)
	}
	w.Flush()
	got := sink.get("c", "stderr")
	if len(got) != 1 || len(got[0]) != 2*maxLine || sink.cuts != 2 {
		t.Fatalf("got %d lines in %d pieces, want one of %d bytes in 2", len(got), sink.cuts, 2*maxLine)
	}
}

// TestLineWriterCutsLongLinesBetweenCharacters: a line longer than
// maxLine goes in pieces cut between characters, each valid UTF-8, and
// joined they are the line.
func TestLineWriterCutsLongLinesBetweenCharacters(t *testing.T) {
	line := strings.Repeat("x", maxLine-1) + "é€😀" + strings.Repeat("y", 100)
	for _, n := range []int{1, 2, 3, 32 << 10} {
		sink := &recordSink{}
		w := &lineWriter{sink: sink, container: "c", stream: "stdout"}
		var pieces []string
		check := &pieceCheck{recordSink: sink, pieces: &pieces}
		w.sink = check
		for b := []byte(line + "\nnext\n"); len(b) > 0; {
			k := min(n, len(b))
			w.Write(append([]byte(nil), b[:k]...))
			b = b[k:]
		}
		w.Flush()
		got := sink.get("c", "stdout")
		if len(got) != 2 || got[0] != line || got[1] != "next" || len(pieces) == 0 {
			t.Fatalf("chunks of %d: %d lines, %d pieces; the long line came back the same: %v", n, len(got), len(pieces), len(got) > 0 && got[0] == line)
		}
		for i, p := range pieces {
			if !utf8.ValidString(p) {
				t.Fatalf("chunks of %d: piece %d of %d bytes is not valid UTF-8: it ends %q", n, i, len(p), p[len(p)-4:])
			}
		}
	}
}

// pieceCheck records the pieces it passes on.
type pieceCheck struct {
	*recordSink
	pieces *[]string
}

func (p *pieceCheck) Piece(container, stream string, piece []byte) {
	*p.pieces = append(*p.pieces, string(piece))
	p.recordSink.Piece(container, stream, piece)
}

func FuzzLineWriter(f *testing.F) {
	f.Add("a\nb\n", 1)
	f.Add("\n\nxyz", 2)
	f.Fuzz(func(t *testing.T, in string, n int) {
		if n <= 0 || n > 1<<16 {
			t.Skip()
		}
		got, out := writeChunks(in, n)
		want := splitLines(in)
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != len(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if out != in {
			t.Fatalf("a reader gives back %q, not %q", out, in)
		}
	})
}

// discardSink is a worker.LogSink that keeps nothing.
type discardSink struct{}

func (discardSink) Line(string, string, []byte)  {}
func (discardSink) Piece(string, string, []byte) {}
func (discardSink) End(string, string, []byte)   {}

// BenchmarkLineWriter: a stream's 100-byte lines, split and passed on,
// and counted for the stream read again (resume.go): in writes of 32 KiB,
// and one line a write, as a container that writes its lines one by one
// sends them.
func BenchmarkLineWriter(b *testing.B) {
	line := strings.Repeat("x", 99) + "\n"
	for _, n := range []int{327, 1} {
		b.Run(fmt.Sprintf("lines=%d", n), func(b *testing.B) {
			buf := []byte(strings.Repeat(line, n))
			w := &lineWriter{sink: discardSink{}, container: "c", stream: "stdout"}
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				w.Write(buf)
			}
		})
	}
}
