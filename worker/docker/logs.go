package docker

import (
	"bytes"
	"hash/crc32"
	"slices"
	"unicode/utf8"

	"github.com/gantry-dev/gantry/worker"
)

// maxLine bounds the memory one line may take. A longer line is passed on in
// pieces of about maxLine bytes (LogSink.Piece) so that a program that never
// prints a newline cannot exhaust the worker's memory.
const maxLine = 16 << 20

// lineWriter splits what a container writes to one stream into lines and
// hands each to the sink without its newline. Lines that arrive whole in
// one write are passed straight from the caller's buffer; only a line split
// across writes is copied, into a buffer reused for the next one.
type lineWriter struct {
	sink      worker.LogSink
	container string
	stream    string
	partial   []byte
	// pieced: pieces of the line in the making went out (emitPiece); a
	// Line must end it, even an empty one.
	pieced bool
	// tty: the stream is a terminal's, whose lines end with \r\n.
	tty bool

	// delivered counts the bytes of the stream passed on, head keeps the
	// first headLen of them, tail the last tailLen (a ring: the next byte
	// goes at tailAt), and sum is their CRC (castagnoli): where the stream
	// stands, should it be read again from the container's log
	// (resume.go).
	delivered int64
	head      []byte
	sum       uint32
	tail      [tailLen]byte
	tailAt    int
}

// line is b without the \r a terminal puts before the newline.
func (w *lineWriter) line(b []byte) []byte {
	if w.tty {
		b = bytes.TrimSuffix(b, []byte{'\r'})
	}
	return b
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.delivered += int64(len(p))
	w.sum = crc32.Update(w.sum, castagnoli, p)
	if len(w.head) < headLen {
		w.head = append(w.head, p[:min(len(p), headLen-len(w.head))]...)
	}
	w.keepTail(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxLine {
				w.emitPiece()
			}
			return n, nil
		}
		if len(w.partial) == 0 {
			w.sink.Line(w.container, w.stream, w.line(p[:i]))
			w.pieced = false
		} else {
			w.partial = append(w.partial, p[:i]...)
			w.emit(w.partial)
		}
		p = p[i+1:]
	}
	return n, nil
}

// keepTail keeps the last tailLen bytes delivered, p the latest.
func (w *lineWriter) keepTail(p []byte) {
	if len(p) >= tailLen {
		copy(w.tail[:], p[len(p)-tailLen:])
		w.tailAt = 0
		return
	}
	n := copy(w.tail[w.tailAt:], p)
	copy(w.tail[:], p[n:])
	w.tailAt = (w.tailAt + len(p)) % tailLen
}

// lastBytes returns the last tailLen bytes delivered, or all of them if
// fewer.
func (w *lineWriter) lastBytes() []byte {
	if w.delivered < tailLen {
		return slices.Clone(w.tail[:w.delivered])
	}
	return append(slices.Clone(w.tail[w.tailAt:]), w.tail[:w.tailAt]...)
}

// emit passes the buffered line on and empties the buffer, dropping it if
// an unusually long line made it large.
func (w *lineWriter) emit(line []byte) {
	w.sink.Line(w.container, w.stream, w.line(line))
	w.pieced = false
	if cap(w.partial) > 1<<20 {
		w.partial = nil
	} else {
		w.partial = w.partial[:0]
	}
}

// emitPiece passes the buffered part of a long line on as a piece, but for
// the bytes of a character cut short at its end, which stay for the next.
func (w *lineWriter) emitPiece() {
	cut := len(w.partial)
	for i := cut - 1; i >= 0 && i >= cut-utf8.UTFMax; i-- {
		if utf8.RuneStart(w.partial[i]) {
			if !utf8.FullRune(w.partial[i:]) {
				cut = i
			}
			break
		}
	}
	w.sink.Piece(w.container, w.stream, w.partial[:cut])
	w.pieced = true
	rest := copy(w.partial, w.partial[cut:])
	w.partial = w.partial[:rest]
}

// Flush passes on a last line that has no newline, as such (LogSink.End),
// so that readers give the output back byte for byte.
func (w *lineWriter) Flush() {
	if len(w.partial) > 0 || w.pieced {
		w.sink.End(w.container, w.stream, w.partial)
		w.pieced = false
		w.partial = nil
	}
}
