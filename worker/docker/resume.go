package docker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strconv"

	"github.com/docker/docker/pkg/stdcopy"
)

// headLen is how many of a stream's first bytes a lineWriter keeps, to
// tell at once that a container's log read again from its start does not
// begin as the stream did.
const headLen = 256

// tailLen is how many of a stream's last bytes a lineWriter keeps, to
// find where the stream broke off in a log whose start was rotated away
// (locate).
const tailLen = 256

// maxReadAhead bounds what resumeAt keeps of a log, read ahead past the
// bytes one stream delivered while it checks another's. In a log that
// holds all the container wrote, the streams' ends lie close together,
// where the output broke; a log whose ends lie further apart is taken as
// not the one delivered.
const maxReadAhead = 8 << 20

// errFrameTooLarge: a log's frame claims more bytes than resumeAt keeps.
var errFrameTooLarge = errors.New("a frame of the container's log is larger than " + strconv.Itoa(maxReadAhead>>20) + " MiB")

// castagnoli is the CRC of what a lineWriter delivered (lineWriter.sum),
// in hardware on amd64 and arm64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// resumeAt readies the output of a container read again from the start of
// its log (log, multiplexed unless tty) to carry on where the writers'
// streams broke off. It reads each stream as far as its writer delivered,
// checking those bytes against what was delivered (the first headLen
// bytes, then the CRC of all of them), and returns the log from there on:
// what it read beyond one stream's end while it checked the other's, then
// the rest. No line then comes twice, and none is missed.
//
// That holds when the log holds all the container wrote, as the json-file
// driver keeps it unless told to rotate it. A log rotated, its start
// gone, no longer holds the bytes delivered; nor does one that ends before
// it reaches them, or one that fails to be read. resumeAt then returns
// whole false, having read part of log, and the writers as they were: the
// caller looks for the place in what is left of the log (locate), or
// follows it from another moment. What is left of a rotated log can still
// begin with the very bytes delivered, for a container that writes the
// same line over and over; nothing in the log tells it from a whole one
// then, and as many of the lines written since as were rotated away are
// not delivered.
func resumeAt(log io.Reader, tty bool, stdout, stderr *lineWriter) (out io.Reader, whole bool) {
	return readOnFrom(log, tty, stdout.mark(), stderr.mark())
}

// A mark is where to read a stream of a log on from: after its first n
// bytes, whose CRC is sum and which begin with head.
type mark struct {
	n    int64
	sum  uint32
	head []byte
}

// mark is where the writer's stream broke off: after what it delivered.
func (w *lineWriter) mark() mark { return mark{n: w.delivered, sum: w.sum, head: w.head} }

// readOnFrom reads log as far as each stream's mark, checking the bytes
// against it (resumeAt), and returns the log from there on, or false if
// the bytes differ or the log does not reach the marks.
func readOnFrom(log io.Reader, tty bool, stdout, stderr mark) (out io.Reader, ok bool) {
	checks := []*deliveredCheck{{m: stdout}, {m: stderr}}
	if tty {
		checks = checks[:1]
	}
	pending := func() bool {
		for _, c := range checks {
			if c.read < c.m.n {
				return true
			}
		}
		return false
	}
	var ahead bytes.Buffer
	var buf [32 << 10]byte
	for pending() {
		if ahead.Len() > maxReadAhead {
			return nil, false
		}
		s, p, err := readPart(log, buf[:], tty)
		if s > 0 && int(s) <= len(checks) {
			c := checks[s-1]
			var ok bool
			if p, ok = c.consume(p); !ok {
				return nil, false
			}
		}
		if len(p) > 0 {
			if tty {
				ahead.Write(p)
			} else {
				stdcopy.NewStdWriter(&ahead, s).Write(p)
			}
		}
		if err != nil {
			if pending() {
				return nil, false
			}
			break // the rest of log gives the error again
		}
	}
	for _, c := range checks {
		if c.sum != c.m.sum {
			return nil, false
		}
	}
	return io.MultiReader(&ahead, log), true
}

// readPart reads the next part of a log: a frame of a multiplexed one,
// or what a read gives of a terminal's. It returns the part's stream
// (stdcopy's: 1 stdout, 2 stderr; a terminal's is stdout) and its bytes,
// in buf if they fit, and the error that ended the read, if any. A frame
// cut short has no stream.
func readPart(log io.Reader, buf []byte, tty bool) (stdcopy.StdType, []byte, error) {
	if tty {
		n, err := log.Read(buf)
		if n == 0 && err == nil {
			err = io.ErrNoProgress
		}
		return stdcopy.Stdout, buf[:n], err
	}
	var h [8]byte
	if _, err := io.ReadFull(log, h[:]); err != nil {
		return 0, nil, err
	}
	size := int(binary.BigEndian.Uint32(h[4:]))
	if size > maxReadAhead { // no log driver's frame; not read into memory
		return 0, nil, errFrameTooLarge
	}
	if size > len(buf) {
		buf = make([]byte, size)
	}
	if _, err := io.ReadFull(log, buf[:size]); err != nil {
		return 0, nil, err
	}
	return stdcopy.StdType(h[0]), buf[:size], nil
}

// deliveredCheck compares a stream of a log with its mark: read is how
// many of the stream's bytes it has compared, and sum their CRC.
type deliveredCheck struct {
	m    mark
	read int64
	sum  uint32
}

// consume takes the stream's next part p, as much of it as comes before
// the mark, and tells whether it agrees with the mark's first bytes so
// far. It returns the rest of p, which comes after the mark.
func (c *deliveredCheck) consume(p []byte) (rest []byte, ok bool) {
	n := int(min(int64(len(p)), c.m.n-c.read))
	if c.read < int64(len(c.m.head)) {
		h := c.m.head[c.read:]
		k := min(len(h), n)
		if !bytes.Equal(h[:k], p[:k]) {
			return nil, false
		}
	}
	c.sum = crc32.Update(c.sum, castagnoli, p[:n])
	c.read += int64(n)
	return p[n:], true
}

// locate finds, in what is left of a rotated log (log, read to its end,
// not followed, and ending soon after the output broke: readAgain), where
// each writer's stream broke off: just after the one place where the last
// bytes it delivered (lineWriter.tail) occur; or at the stream's start
// when they occur nowhere, rotated away with all that came before them,
// the stream's every byte left written since. It returns the marks to
// read a log of the container on from (readOnFrom), or false when the
// place cannot be told: the last bytes delivered occur more than once (a
// line written over and over), or the stream's first bytes could be the
// end of them (their start rotated away, and a place found further on
// another), or the log could not be read.
func locate(log io.Reader, tty bool, stdout, stderr *lineWriter) (marks [2]mark, ok bool) {
	finds := []*tailFind{{tail: stdout.lastBytes()}, {tail: stderr.lastBytes()}}
	if tty {
		finds = finds[:1]
	}
	var buf [32 << 10]byte
	for {
		s, p, err := readPart(log, buf[:], tty)
		if s > 0 && int(s) <= len(finds) {
			finds[s-1].write(p)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return marks, false
		}
	}
	for i, f := range finds {
		if marks[i], ok = f.mark(); !ok {
			return marks, false
		}
	}
	return marks, true
}

// tailFind looks for a stream's last bytes delivered (tail) in the
// stream's bytes in a log, as they are read (write).
type tailFind struct {
	tail  []byte
	carry []byte // the last len(tail)-1 bytes read, where a tail may begin
	first []byte // the first headLen bytes read
	n     int64  // bytes read
	sum   uint32 // their CRC
	found int    // places the tail was found, counted up to 2
	at    mark   // just after the first
}

func (f *tailFind) write(p []byte) {
	if len(f.first) < headLen {
		f.first = append(f.first, p[:min(len(p), headLen-len(f.first))]...)
	}
	if len(f.tail) > 0 && f.found < 2 {
		// A place found here ends in p: one within carry would be
		// shorter than the tail.
		in := append(f.carry[:len(f.carry):len(f.carry)], p...)
		for i := 0; f.found < 2; {
			j := bytes.Index(in[i:], f.tail)
			if j < 0 {
				break
			}
			if f.found++; f.found == 1 {
				k := i + j + len(f.tail) - len(f.carry) // bytes of p to its end
				f.at = mark{n: f.n + int64(k), sum: crc32.Update(f.sum, castagnoli, p[:k])}
			}
			i += j + 1
		}
		f.carry = append(f.carry[:0], in[len(in)-min(len(in), len(f.tail)-1):]...)
	}
	f.sum = crc32.Update(f.sum, castagnoli, p)
	f.n += int64(len(p))
}

// mark is where the stream broke off, if that can be told (locate).
func (f *tailFind) mark() (mark, bool) {
	if len(f.tail) == 0 { // nothing delivered
		return mark{}, true
	}
	// A stream left that begins with the end of the tail may have lost
	// the rest of it to the rotation, and a place found later be another.
	for k := 1; k < len(f.tail) && k <= len(f.first); k++ {
		if bytes.Equal(f.first[:k], f.tail[len(f.tail)-k:]) {
			return mark{}, false
		}
	}
	switch f.found {
	case 0:
		return mark{}, true
	case 1:
		f.at.head = f.first[:min(int64(len(f.first)), f.at.n)]
		return f.at, true
	}
	return mark{}, false
}
