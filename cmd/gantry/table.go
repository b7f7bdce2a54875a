package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// clock is the time tables are shown at; golden tests fix it.
var clock = time.Now

// localZone is the zone times are shown in; tests set it rather than
// time.Local, which other goroutines read.
var localZone = time.Local

// when shows a time both ways: absolute, in local time, and relative.
func when(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(localZone).Format(time.RFC3339) + " (" + ago(t, now) + ")"
}

// style is how output goes to a writer: on a terminal, tables fit its
// width and statuses are coloured (unless NO_COLOR is set or TERM=dumb);
// anywhere else output is plain and never cut, for scripts.
type style struct {
	tty   bool
	width int
	color bool
}

// styleOf looks at w: only a terminal gets a style.
func styleOf(w io.Writer) style {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return style{}
	}
	st := style{tty: true, width: 80, color: colorAllowed()}
	if cols, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && cols > 0 {
		st.width = cols
	} else if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		st.width = w
	}
	return st
}

// colorAllowed honours https://no-color.org (NO_COLOR set and not empty)
// and dumb terminals.
func colorAllowed() bool {
	return os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// statusColors are ANSI colours of the statuses runs, pipeline runs and
// workers are shown in.
var statusColors = map[string]string{
	"SUCCEEDED": "32", // green
	"FAILED":    "31", // red
	"CANCELED":  "33", // yellow
	"RUNNING":   "36", // cyan
	"STARTING":  "36",
	"QUEUED":    "2", // dim
	"ACTIVE":    "32",
	"DRAINING":  "33",
	"INACTIVE":  "2",
}

const (
	colGap    = 2 // spaces between columns, as the tabwriter of plain output
	minColumn = 6 // no column is cut narrower than this
)

// renderTable aligns tab-separated rows (blocks of lines that hold tabs,
// as text/tabwriter does), cuts the widest columns with "…" until a row
// fits st.width, and colours status cells.
func renderTable(text string, st style) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); {
		if !strings.Contains(lines[i], "\t") {
			out.WriteString(cut(lines[i], st.width))
			out.WriteByte('\n')
			i++
			continue
		}
		j := i
		for j < len(lines) && strings.Contains(lines[j], "\t") {
			j++
		}
		renderBlock(&out, lines[i:j], st)
		i = j
	}
	return out.String()
}

func renderBlock(out *strings.Builder, lines []string, st style) {
	rows := make([][]string, len(lines))
	var widths []int
	for i, l := range lines {
		rows[i] = strings.Split(l, "\t")
		for c, cell := range rows[i] {
			if c >= len(widths) {
				widths = append(widths, 0)
			}
			widths[c] = max(widths[c], utf8.RuneCountInString(cell))
		}
	}
	fit(widths, st.width)
	for _, row := range rows {
		var line strings.Builder
		for c, cell := range row {
			text := cut(cell, widths[c])
			n := utf8.RuneCountInString(text)
			// By the whole cell: a status cut to fit ("SUCCE…") keeps its colour.
			if code, ok := statusColors[strings.TrimSpace(cell)]; ok && st.color {
				text = "\x1b[" + code + "m" + text + "\x1b[0m"
			}
			line.WriteString(text)
			if c < len(row)-1 {
				line.WriteString(strings.Repeat(" ", widths[c]-n+colGap))
			}
		}
		out.WriteString(strings.TrimRight(line.String(), " "))
		out.WriteByte('\n')
	}
}

// fit narrows the widest columns but the first, one character at a time,
// until a row fits width or no column can be narrowed further.
func fit(widths []int, width int) {
	if width <= 0 {
		return
	}
	total := func() int {
		n := 0
		for _, w := range widths {
			n += w
		}
		return n + colGap*(len(widths)-1)
	}
	for total() > width {
		// The first column holds ids people copy: cut it last.
		widest := -1
		for c, w := range widths {
			if c > 0 && w > minColumn && (widest < 0 || w > widths[widest]) {
				widest = c
			}
		}
		if widest < 0 && widths[0] > minColumn {
			widest = 0
		}
		if widest < 0 {
			return
		}
		widths[widest]--
	}
}

// cut shortens s to n characters, marking the cut with "…".
func cut(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
