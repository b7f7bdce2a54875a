package main

import (
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

func TestPullPrinter(t *testing.T) {
	reports := []jobs.PullProgress{
		{Image: "etl:3", Layers: 2},
		{Image: "etl:3", Layers: 2, LayersDone: 1, Current: 1_000_000, Total: 2_000_000},
		{Image: "etl:3", Layers: 2, LayersDone: 2, Current: 2_000_000, Total: 2_000_000, Done: true},
	}
	t.Run("lines when not a terminal", func(t *testing.T) {
		var b strings.Builder
		p := &pullPrinter{w: &b}
		for _, r := range reports {
			p.print(r)
		}
		p.end()
		want := "gantry: pulling image etl:3: 0 of 2 layers\n" +
			"gantry: pulling image etl:3: 1.0 MB of 2.0 MB, 1 of 2 layers\n" +
			"gantry: pulled image etl:3\n"
		if b.String() != want {
			t.Fatalf("got %q\nwant %q", b.String(), want)
		}
	})
	t.Run("one line in place on a terminal", func(t *testing.T) {
		var b strings.Builder
		p := &pullPrinter{w: &b, tty: true}
		p.print(reports[0])
		p.print(reports[1])
		p.end() // the run started without a Done report: the line is ended
		p.end()
		want := "\r\x1b[Kgantry: pulling image etl:3: 0 of 2 layers" +
			"\r\x1b[Kgantry: pulling image etl:3: 1.0 MB of 2.0 MB, 1 of 2 layers\n"
		if b.String() != want {
			t.Fatalf("got %q\nwant %q", b.String(), want)
		}
		b.Reset()
		p.print(reports[2])
		p.end()
		if b.String() != "\r\x1b[Kgantry: pulled image etl:3\n" {
			t.Fatalf("done: %q", b.String())
		}
	})
}
