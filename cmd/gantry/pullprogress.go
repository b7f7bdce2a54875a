package main

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
)

// watchPulls prints, on w, the image pull progress that the run's worker
// reports before its containers start (jobs.Event.Pull), and why the run
// waits in the queue (no worker can take it, a retry's backoff), until
// stop is called: attached to a run no worker takes, gantry run printed
// nothing at all. Without the events (a role not allowed to read them) it
// prints nothing.
func watchPulls(ctx context.Context, c *client.Client, runID string, w io.Writer) (stop func()) {
	return watchRunEvents(ctx, c.Events, runID, w)
}

// watchRunEvents is watchPulls over the events open delivers: gantry logs -f
// joins a run under way, and takes them from the latest
// (Client.EventsFromLatest), so as not to tell of waits long over.
func watchRunEvents(ctx context.Context, open func(context.Context, string) (<-chan jobs.Event, error),
	runID string, w io.Writer) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	events, err := open(ctx, runID)
	if err != nil {
		cancel()
		return func() {}
	}
	p := &pullPrinter{w: w, tty: styleOf(w).tty}
	done := make(chan struct{})
	go func() {
		defer close(done)
		queued := "" // the reason last told
		for ev := range events {
			switch {
			case ev.Source != jobs.SourceServer && ev.Pull != nil:
				p.print(*ev.Pull)
			case ev.Source == jobs.SourceServer && ev.Status == jobs.StatusQueued:
				if ev.StatusReason != "" && ev.StatusReason != queued {
					p.say(fmt.Sprintf("run %s is queued: %s", runID, ev.StatusReason))
				}
				queued = ev.StatusReason
			case ev.Status == jobs.StatusRunning || ev.Status.Terminal():
				p.end()
			}
		}
	}()
	return func() {
		cancel()
		<-done
		p.end()
	}
}

// pullPrinter shows pull progress: on a terminal one line rewritten in
// place, otherwise one line per report (the worker sends about one a
// second).
type pullPrinter struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	open bool // a line rewritten in place waits for its newline
}

func (p *pullPrinter) print(pp jobs.PullProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "gantry: %s\n", pp)
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[Kgantry: %s", pp)
	p.open = !pp.Done
	if pp.Done {
		fmt.Fprintln(p.w)
	}
}

// say prints a line of its own, after ending a pull line left open.
func (p *pullPrinter) say(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
	fmt.Fprintf(p.w, "gantry: %s\n", s)
}

// end finishes a line left open.
func (p *pullPrinter) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}
