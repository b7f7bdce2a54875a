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
// caller follows the log from another place. What is left of a rotated
// log can still begin with the very bytes delivered, for a container that
// writes the same line over and over; nothing in the log tells it from a
// whole one then, and as many of the lines written since as were rotated
// away are not delivered.
func resumeAt(log io.Reader, tty bool, stdout, stderr *lineWriter) (out io.Reader, whole bool) {
	checks := []*deliveredCheck{{w: stdout}, {w: stderr}}
	if tty {
		checks = checks[:1]
	}
	pending := func() bool {
		for _, c := range checks {
			if c.read < c.w.delivered {
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
			if !tty {
				var h [8]byte
				h[0] = byte(s)
				binary.BigEndian.PutUint32(h[4:], uint32(len(p)))
				ahead.Write(h[:])
			}
			ahead.Write(p)
		}
		if err != nil {
			if pending() {
				return nil, false
			}
			break // the rest of log gives the error again
		}
	}
	for _, c := range checks {
		if c.sum != c.w.sum {
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

// deliveredCheck compares a stream of a log with what its writer
// delivered: read is how many of the stream's bytes it has compared, and
// sum their CRC.
type deliveredCheck struct {
	w    *lineWriter
	read int64
	sum  uint32
}

// consume takes the stream's next part p, as much of it as the writer
// delivered, and tells whether it agrees with the writer's first bytes
// so far. It returns the rest of p, which the writer has not delivered.
func (c *deliveredCheck) consume(p []byte) (rest []byte, ok bool) {
	n := int(min(int64(len(p)), c.w.delivered-c.read))
	if c.read < int64(len(c.w.head)) {
		h := c.w.head[c.read:]
		k := min(len(h), n)
		if !bytes.Equal(h[:k], p[:k]) {
			return nil, false
		}
	}
	c.sum = crc32.Update(c.sum, castagnoli, p[:n])
	c.read += int64(n)
	return p[n:], true
}
