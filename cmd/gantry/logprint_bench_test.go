package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// BenchmarkLinePrinter prints a batch of 2,000 lines of 100 bytes, as
// gantry logs does for every message of a chatty container.
func BenchmarkLinePrinter(b *testing.B) {
	batch := &jobs.LogBatch{RunID: "r", Attempt: 1, Container: "main", Time: time.Now()}
	text := strings.Repeat("x", 100)
	for i := range 2000 {
		batch.Lines = append(batch.Lines, jobs.LogLine{Seq: int64(i + 1), Stream: jobs.Stdout, Text: text})
	}
	p := newLinePrinter(io.Discard, io.Discard, false)
	b.SetBytes(2000 * 101)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.batch(batch); err != nil {
			b.Fatal(err)
		}
	}
}
