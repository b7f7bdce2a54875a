package docker

import (
	"bytes"

	"github.com/gantry-dev/gantry/worker"
)

// maxLine bounds the memory one line may take. A longer line is passed on in
// pieces of maxLine bytes so that a program that never prints a newline
// cannot exhaust the worker's memory.
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
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			if len(w.partial) >= maxLine {
				w.emit(w.partial)
			}
			return n, nil
		}
		if len(w.partial) == 0 {
			w.sink.Line(w.container, w.stream, p[:i])
		} else {
			w.partial = append(w.partial, p[:i]...)
			w.emit(w.partial)
		}
		p = p[i+1:]
	}
	return n, nil
}

// emit passes the buffered line on and empties the buffer, dropping it if
// an unusually long line made it large.
func (w *lineWriter) emit(line []byte) {
	w.sink.Line(w.container, w.stream, line)
	if cap(w.partial) > 1<<20 {
		w.partial = nil
	} else {
		w.partial = w.partial[:0]
	}
}

// Flush passes on a last line that has no newline.
func (w *lineWriter) Flush() {
	if len(w.partial) > 0 {
		w.emit(w.partial)
	}
}
