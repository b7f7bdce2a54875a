package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// stageView is the live table of an attached `pipeline run` on a terminal:
// one row per stage (status, runs, attempts, duration, reason), redrawn in
// place as the run changes and as time passes. Off a terminal the attach
// prints a line per change instead, which scripts and tests read.
type stageView struct {
	w     io.Writer
	st    style
	lines int // lines drawn last time, to move back over
}

// draw redraws the table for pr at now: the cursor goes back to the top
// of the previous drawing, each line is cleared and written, and whatever
// the previous drawing had below is erased.
func (v *stageView) draw(pr *jobs.PipelineRun, now time.Time) {
	var b strings.Builder
	fmt.Fprintf(&b, "STAGE\tSTATUS\tRUNS\tATTEMPTS\tDURATION\tREASON\n")
	for i := range pr.Stages {
		st := &pr.Stages[i]
		runs, attempts := "-", "-"
		if len(st.Runs) > 0 {
			done, n := 0, 0
			for _, r := range st.Runs {
				if r.Status.Terminal() {
					done++
				}
				n += r.Attempts
			}
			runs, attempts = fmt.Sprintf("%d/%d", done, len(st.Runs)), strconv.Itoa(n)
		}
		dur := "-"
		if st.StartedAt != nil {
			end := now
			if st.FinishedAt != nil {
				end = *st.FinishedAt
			}
			dur = short(end.Sub(*st.StartedAt))
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, st.Status, runs, attempts, dur, orDash(firstOf(st.Reason, stageWaitReason(pr, st))))
	}
	fmt.Fprintf(&b, "%s\t%s\t\t\t%s\t%s\n", "(pipeline)", pr.Status, pipelineDuration(pr, now), pipelineReason(pr, now))
	text := renderTable(b.String(), v.st)
	var out strings.Builder
	if v.lines > 0 {
		fmt.Fprintf(&out, "\x1b[%dA", v.lines)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for _, l := range lines {
		out.WriteString("\r\x1b[2K")
		out.WriteString(l)
		out.WriteByte('\n')
	}
	out.WriteString("\x1b[J")
	v.lines = len(lines)
	io.WriteString(v.w, out.String())
}

// pipelineReason is what the pipeline row of the live view says: why the
// run stopped, or why it waits PENDING, or, while it runs with a timeout,
// when it times out.
func pipelineReason(pr *jobs.PipelineRun, now time.Time) string {
	if pr.StoppedReason != "" {
		return pr.StoppedReason
	}
	if pr.Status == jobs.StatusPending && pr.StatusReason != "" {
		return pr.StatusReason
	}
	if at, ok := pr.Deadline(); ok {
		return fmt.Sprintf("times out in %s (timeoutSeconds %d)", short(max(at.Sub(now), 0)), pr.TimeoutSeconds)
	}
	return ""
}

// liveStages starts a stage view on w: show draws a new state of the
// run, and a ticker redraws the last one every tick so that durations
// move. stop ends the ticker, draws the last state once more and returns
// once the ticker's goroutine has.
func liveStages(w io.Writer, st style, tick time.Duration, now func() time.Time) (show func(*jobs.PipelineRun), stop func()) {
	v := &stageView{w: w, st: st}
	var (
		mu   sync.Mutex
		last *jobs.PipelineRun
		wg   sync.WaitGroup
	)
	done := make(chan struct{})
	redraw := func() {
		mu.Lock()
		defer mu.Unlock()
		if last != nil {
			v.draw(last, now())
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				redraw()
			}
		}
	}()
	show = func(pr *jobs.PipelineRun) {
		mu.Lock()
		last = pr
		mu.Unlock()
		redraw()
	}
	stop = func() {
		close(done)
		wg.Wait()
		redraw()
	}
	return show, stop
}
