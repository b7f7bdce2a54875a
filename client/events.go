package client

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
)

// WatchOptions say which events Watch reports.
type WatchOptions struct {
	// Subject is a filter within gantry.events.> (wildcards allowed),
	// the NATS side of the selection; every event when empty.
	Subject string
	// Since starts with the events stored at or after it, as far back as
	// GANTRY_EVENTS keeps them (queue.EventsRetention); only new events
	// when zero.
	Since time.Time
	// Until, when set, ends Watch once the events stored before it are
	// read: at once for a time past, at that time for one to come.
	Until time.Time
}

// StreamEvent is one message of GANTRY_EVENTS: a run's status change
// (Run) or a pipeline run's (Pipeline), and its JSON as published.
type StreamEvent struct {
	Run      *jobs.Event
	Pipeline *jobs.PipelineEvent
	JSON     json.RawMessage
}

// Time is when the event happened, as its publisher says.
func (e StreamEvent) Time() time.Time {
	if e.Run != nil {
		return e.Run.Time
	}
	return e.Pipeline.Time
}

// Watch calls fn with the status changes of runs and pipeline runs as
// the server announces them, oldest first, until ctx is done (then it
// returns nil), o.Until passes, or fn returns an error (which it
// returns). Workers' image pull progress, also on those subjects, is
// left out, and so are messages that are neither kind of event.
//
// It reads by direct get, which a submit-only user may do; a refusal
// comes back as a permission_denied APIError.
func (c *Client) Watch(ctx context.Context, o WatchOptions, fn func(StreamEvent) error) error {
	ctx, unwatch := c.perms.watch(ctx, "$JS.API.DIRECT.GET."+queue.StreamEvents, false)
	defer unwatch()
	var done chan struct{}
	if !o.Until.IsZero() {
		done = make(chan struct{})
		t := time.AfterFunc(time.Until(o.Until), func() { close(done) })
		defer t.Stop()
	}
	var past errUntil
	err := c.q.FollowEvents(ctx, queue.EventsQuery{Filter: o.Subject, Since: o.Since, Done: done}, func(data []byte, h nats.Header) error {
		ev, ok := DecodeStreamEvent(data, h)
		if !ok {
			return nil
		}
		if !o.Until.IsZero() && ev.Time().After(o.Until) {
			return past
		}
		return fn(ev)
	})
	var denied *APIError
	if errors.As(context.Cause(ctx), &denied) {
		return denied
	}
	if errors.Is(err, past) {
		return nil
	}
	return err
}

// errUntil ends Watch's read at the first event after Until.
type errUntil struct{}

func (errUntil) Error() string { return "client: past --until" }

// DecodeStreamEvent reads a message of GANTRY_EVENTS; ok is false for one
// Watch leaves out: a worker's event (pull progress), or one of neither
// kind. h may be nil (a message without its headers).
func DecodeStreamEvent(data []byte, h nats.Header) (ev StreamEvent, ok bool) {
	if h != nil && h.Get(queue.SourceHeader) == jobs.SourceWorker {
		return ev, false // skipped undecoded
	}
	var probe struct {
		RunID         string `json:"runId"`
		PipelineRunID string `json:"pipelineRunId"`
		Source        string `json:"source"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return ev, false
	}
	ev.JSON = json.RawMessage(data)
	switch {
	case probe.RunID != "":
		if probe.Source == jobs.SourceWorker {
			return ev, false
		}
		ev.Run = new(jobs.Event)
		if json.Unmarshal(data, ev.Run) != nil || ev.Run.Status == "" {
			return ev, false
		}
	case probe.PipelineRunID != "":
		ev.Pipeline = new(jobs.PipelineEvent)
		if json.Unmarshal(data, ev.Pipeline) != nil || ev.Pipeline.Status == "" {
			return ev, false
		}
	default:
		return ev, false
	}
	return ev, true
}
