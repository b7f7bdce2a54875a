package main

import (
	"bufio"
	"bytes"
	"fmt"
	"runtime"
	"strconv"
)

// alloc MIB allocates MIB mebibytes, writing to every page so they are
// resident, then sleeps until killed. Under a smaller memory limit the
// container is OOM-killed (exit 137, OOMKilled true).
func alloc(p *proc, args []string) error {
	if len(args) != 2 {
		return usageError("alloc MIB")
	}
	mib, err := strconv.Atoi(args[1])
	if err != nil || mib < 0 {
		return usageError("alloc MIB: invalid size " + strconv.Quote(args[1]))
	}
	const pageSize = 4096
	chunks := make([][]byte, 0, mib)
	for i := range mib {
		chunk := make([]byte, 1<<20)
		for j := 0; j < len(chunk); j += pageSize {
			chunk[j] = 1
		}
		chunks = append(chunks, chunk)
		if (i+1)%64 == 0 {
			fmt.Fprintf(p.stdout, "alloc: %d MiB\n", i+1)
		}
	}
	fmt.Fprintf(p.stdout, "alloc: holding %d MiB\n", mib)
	<-p.ctx.Done()
	runtime.KeepAlive(chunks)
	return exitStatus(130)
}

// lines N [WIDTH [EVERY]] prints N lines "line 000001 xxx...", each WIDTH
// bytes long without its newline (default 64; never shorter than "line
// NNNNNN"). With EVERY, every EVERY-th line ends in the byte 0xe9 (Latin-1's
// "é") instead of its last byte: output that is not UTF-8, as legacy tools
// write, for the logs benchmark's byte-exact check.
func lines(p *proc, args []string) error {
	const usage = "lines N [WIDTH [EVERY]]"
	if len(args) < 2 || len(args) > 4 {
		return usageError(usage)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		return usageError(usage + ": invalid count " + strconv.Quote(args[1]))
	}
	width := 64
	if len(args) >= 3 {
		if width, err = strconv.Atoi(args[2]); err != nil || width < 0 {
			return usageError(usage + ": invalid width " + strconv.Quote(args[2]))
		}
	}
	every := 0 // no line carries a byte that is not UTF-8
	if len(args) == 4 {
		if every, err = strconv.Atoi(args[3]); err != nil || every < 1 {
			return usageError(usage + ": invalid EVERY " + strconv.Quote(args[3]) + " (a line count, at least 1)")
		}
	}
	w := bufio.NewWriterSize(p.stdout, 64*1024)
	pad := bytes.Repeat([]byte("x"), width)
	line := make([]byte, 0, width+32)
	for i := 1; i <= n; i++ {
		line = append(line[:0], "line "...)
		line = appendPadded(line, i)
		if len(line) < width {
			line = append(line, ' ')
			if len(line) < width {
				line = append(line, pad[:width-len(line)]...)
			}
		}
		if every > 0 && i%every == 0 {
			// Latin-1's "é", as legacy tools write it: not UTF-8.
			line[len(line)-1] = 0xe9
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return w.Flush()
}

// appendPadded appends i with at least six digits.
func appendPadded(b []byte, i int) []byte {
	s := strconv.Itoa(i)
	for k := len(s); k < 6; k++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// bigline BYTES prints one line of BYTES 'x' bytes and a newline.
func bigline(p *proc, args []string) error {
	if len(args) != 2 {
		return usageError("bigline BYTES")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		return usageError("bigline BYTES: invalid size " + strconv.Quote(args[1]))
	}
	w := bufio.NewWriterSize(p.stdout, 64*1024)
	chunk := bytes.Repeat([]byte("x"), 32*1024)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := w.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	w.WriteByte('\n')
	return w.Flush()
}
