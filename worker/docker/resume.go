package docker

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/docker/docker/pkg/stdcopy"
)

// headLen is how many of a stream's first bytes a lineWriter keeps, to
// check that a container's log read again from its start begins as the
// stream did.
const headLen = 256

// maxHeadCheck bounds how much of a log resumeAt reads ahead to check the
// streams' first bytes: a stream whose first bytes come later in the log
// than that is taken to begin as it did.
const maxHeadCheck = 1 << 20

// resumeAt readies the output of a container read again from the start of
// its log (log, multiplexed unless tty) to carry on where the writers'
// streams broke off: each writer then drops the bytes it has delivered
// already (lineWriter.skip), so that no line comes twice and none is
// missed. That holds when the log holds all the container wrote, as the
// json-file driver keeps it unless told to rotate it. A log rotated, its
// start gone, no longer begins as the streams did: resumeAt reads the log
// ahead until it has compared each stream's first bytes, and returns
// whole false if they differ, the writers left as they were. Otherwise it
// returns the log to copy from, the part read ahead included. A read that
// fails ends the check: the copy meets the error again.
func resumeAt(log io.Reader, tty bool, stdout, stderr *lineWriter) (out io.Reader, whole bool) {
	var read bytes.Buffer
	checks := []*headCheck{{w: stdout}, {w: stderr}}
	if tty {
		checks = checks[:1]
	}
	pending := func() bool {
		for _, c := range checks {
			if c.checked < len(c.w.head) {
				return true
			}
		}
		return false
	}
	for pending() && read.Len() < maxHeadCheck {
		c, p, err := readPart(log, &read, tty)
		if err != nil {
			break
		}
		if c > 0 && int(c) <= len(checks) && !checks[c-1].match(p) {
			return nil, false
		}
	}
	for _, c := range checks {
		c.w.skip = c.w.delivered
	}
	return io.MultiReader(&read, log), true
}

// readPart reads the next part of a log into read: a frame of a
// multiplexed one, or what comes of a terminal's. It returns the part's
// bytes and its stream (stdcopy's: 1 stdout, 2 stderr; a terminal's is
// stdout).
func readPart(log io.Reader, read *bytes.Buffer, tty bool) (stdcopy.StdType, []byte, error) {
	if tty {
		var b [32 << 10]byte
		n, err := log.Read(b[:])
		read.Write(b[:n])
		if n == 0 && err == nil {
			err = io.ErrNoProgress
		}
		return stdcopy.Stdout, b[:n], err
	}
	var h [8]byte
	if _, err := io.ReadFull(log, h[:]); err != nil {
		return 0, nil, err
	}
	read.Write(h[:])
	size := int64(binary.BigEndian.Uint32(h[4:]))
	from := read.Len()
	if _, err := io.CopyN(read, log, size); err != nil {
		return 0, nil, err
	}
	return stdcopy.StdType(h[0]), read.Bytes()[from:], nil
}

// headCheck compares a stream of a log with the first bytes its writer
// delivered.
type headCheck struct {
	w       *lineWriter
	checked int
}

// match compares the stream's next part p with the head, as far as it
// goes, and tells whether they agree.
func (c *headCheck) match(p []byte) bool {
	rest := c.w.head[c.checked:]
	n := min(len(rest), len(p))
	if !bytes.Equal(rest[:n], p[:n]) {
		return false
	}
	c.checked += n
	return true
}
