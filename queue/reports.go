package queue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Workers report how their attempts go (STARTING, RUNNING, the end) to the
// server through the work-queue stream GANTRY_REPORTS, many events to a
// message: under load a worker ends hundreds of attempts a second, and one
// JetStream message per event, stored, delivered and acknowledged, was most
// of the control plane's cost. The server applies the events and publishes
// each status change on gantry.events.runs.<runId>, which is what clients
// follow. A report is removed once the server has applied it.
//
// Reports are internal; their payload is a JSON array of jobs.Event.
const (
	StreamReports = "GANTRY_REPORTS"
	ReportSubject = "gantry.reports"
)

// reportMaxBytes bounds a report message, well under NATS's default
// 1 MiB payload limit.
const reportMaxBytes = 256 << 10

// reportTimeout bounds one report's publish; the worker retries.
const reportTimeout = 10 * time.Second

type pendingReport struct {
	data []byte // the events, encoded and separated by commas
	n    int    // how many
	done chan error
}

// reportEventsHeader gives the number of events in a report, so that the
// server decodes them into a slice of that size instead of growing one.
// A report without it (from an older worker) decodes as well.
const reportEventsHeader = "Gantry-Events"

// maxReportEvents bounds the size a report's header may ask for.
const maxReportEvents = reportMaxBytes / 16

// reporter batches events: the first goes at once, and the events that
// come while a report is in flight go together in the next, so that a
// lone event waits one round trip, as a plain publish would, and a busy
// worker sends few large reports.
type reporter struct {
	mu       sync.Mutex
	pending  []pendingReport
	flushing bool
	// buf is the flusher's buffer, kept while no flusher runs: a busy
	// worker starts one for nearly every report, and a new buffer grown to
	// the report's size each time was a tenth of what a run allocates.
	buf []byte
}

// Report stores evs in GANTRY_REPORTS, in one report, batched with the
// events other goroutines report meanwhile, and returns once JetStream has
// acknowledged that report (or with the error it met). Events that the
// server must apply in order must be reported in order by one goroutine,
// as a worker does for each attempt (their seq orders them in any case).
func (q *Queue) Report(ctx context.Context, evs ...*jobs.Event) error {
	if len(evs) == 0 {
		return nil
	}
	var data []byte
	for i, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if i > 0 {
			data = append(data, ',')
		}
		data = append(data, b...)
	}
	ev := evs[len(evs)-1]
	p := pendingReport{data: data, n: len(evs), done: make(chan error, 1)}
	r := &q.reports
	r.mu.Lock()
	r.pending = append(r.pending, p)
	if !r.flushing {
		r.flushing = true
		go q.flushReports()
	}
	r.mu.Unlock()
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("report event %s: %w", eventMsgID(ev), err)
		}
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// flushReports publishes what is pending, one report at a time, until
// nothing is.
func (q *Queue) flushReports() {
	r := &q.reports
	r.mu.Lock()
	buf := r.buf
	r.buf = nil
	r.mu.Unlock()
	for {
		r.mu.Lock()
		n, size := 0, 2
		for n < len(r.pending) && (n == 0 || size+len(r.pending[n].data)+1 <= reportMaxBytes) {
			size += len(r.pending[n].data) + 1
			n++
		}
		if n == 0 {
			r.flushing = false
			r.buf = buf[:0]
			r.mu.Unlock()
			return
		}
		batch := r.pending[:n:n]
		r.pending = r.pending[n:]
		if len(r.pending) == 0 {
			r.pending = nil // let the backing array go
		}
		r.mu.Unlock()

		buf = append(buf[:0], '[')
		events := 0
		for i, p := range batch {
			events += p.n
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, p.data...)
		}
		buf = append(buf, ']')
		ctx, cancel := context.WithTimeout(context.Background(), reportTimeout)
		m := &nats.Msg{Subject: ReportSubject, Data: buf, Header: nats.Header{reportEventsHeader: {strconv.Itoa(events)}}}
		_, err := q.publishSync(ctx, m)
		cancel()
		for _, p := range batch {
			p.done <- err
		}
	}
}

// decodeReport returns the events of a report, whose header may say how
// many there are.
func decodeReport(data []byte, h nats.Header) ([]jobs.Event, error) {
	var evs []jobs.Event
	if n, err := strconv.Atoi(h.Get(reportEventsHeader)); err == nil && n > 0 && n <= maxReportEvents {
		evs = make([]jobs.Event, 0, n)
	}
	if err := json.Unmarshal(data, &evs); err != nil {
		return nil, fmt.Errorf("decode report: %w", err)
	}
	return evs, nil
}

// reportsStream is the configuration of GANTRY_REPORTS.
func reportsStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamReports,
		Description: "gantry: workers' reports of their attempts, until the server has applied them (work queue)",
		Subjects:    []string{ReportSubject},
		Retention:   jetstream.WorkQueuePolicy,
	}
}
