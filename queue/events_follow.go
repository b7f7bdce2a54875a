package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EventsSubjects is the filter of every message of GANTRY_EVENTS: run
// events (EventSubject) and pipeline run events.
const EventsSubjects = "gantry.events.>"

// EventsQuery says which messages of GANTRY_EVENTS FollowEvents reads.
type EventsQuery struct {
	// Filter is a subject filter within EventsSubjects (wildcards
	// allowed); EventsSubjects when empty.
	Filter string
	// Since, when set, starts the read at the first message stored at or
	// after it; otherwise only messages stored from now on are read.
	Since time.Time
	// Done, when closed, ends the read once what was stored by then is
	// read (gantry events --until).
	Done <-chan struct{}
}

// EventsRetention is how long GANTRY_EVENTS keeps a message (its MaxAge):
// how far back FollowEvents can start.
const EventsRetention = 7 * 24 * time.Hour

// FollowEvents calls fn with each message of GANTRY_EVENTS on q.Filter,
// in stored order, until ctx is done, q.Done is closed or fn returns an
// error (which it returns). A message read from the stream's leader (see
// directReader.fromLeader) comes without headers.
//
// It reads by batched direct get, as WatchRun does, so a submit-only
// user may follow too; on a NATS server before 2.11 it falls back to an
// ordered consumer, which leaves nothing behind but which a submitter
// may not make.
func (q *Queue) FollowEvents(ctx context.Context, o EventsQuery, fn func(data []byte, h nats.Header) error) error {
	if o.Filter == "" {
		o.Filter = EventsSubjects
	}
	r, err := newDirectReader(q.nc, StreamEvents, o.Filter)
	if err != nil {
		return fmt.Errorf("follow events: %w", err)
	}
	defer r.close()
	if r.next, err = q.eventsStart(ctx, r, o.Since); err != nil {
		return err
	}
	err = r.follow(ctx, true, o.Done, fn)
	if errors.Is(err, errNoBatch) {
		return q.followEventsConsumer(ctx, o, r.next, fn)
	}
	if ctx.Err() != nil && errors.Is(err, context.Cause(ctx)) {
		return nil
	}
	return q.explain(err)
}

// eventsStart is the stream sequence a read of the events from since (or,
// when it is zero, from now) starts at.
func (q *Queue) eventsStart(ctx context.Context, r *directReader, since time.Time) (uint64, error) {
	// The last sequence first: a message stored after it is read, and one
	// stored before it and after since is found below.
	s, err := q.js.Stream(ctx, StreamEvents)
	if err != nil {
		return 0, q.explain(fmt.Errorf("stream %s: %w", StreamEvents, err))
	}
	last := s.CachedInfo().State.LastSeq
	if since.IsZero() {
		return last + 1, nil
	}
	seq, err := r.seqAt(ctx, since)
	if errors.Is(err, errNoBatch) {
		// No direct get: the ordered consumer starts by time itself, from
		// the first message; followEventsConsumer skips to since.
		return 1, nil
	}
	if err != nil {
		return 0, q.explain(err)
	}
	if seq == 0 {
		return last + 1, nil
	}
	return seq, nil
}

// seqAt returns the sequence of the first message on the reader's filter
// stored at or after t, 0 when there is none.
func (r *directReader) seqAt(ctx context.Context, t time.Time) (uint64, error) {
	req, _ := json.Marshal(struct {
		StartTime time.Time `json:"start_time"`
		NextBy    string    `json:"next_by_subj"`
	}{t.UTC(), r.filter})
	m, err := r.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+r.stream, req)
	if errors.Is(err, nats.ErrNoResponders) {
		return 0, errNoBatch
	}
	if err != nil {
		return 0, fmt.Errorf("first of %s %s since %s: %w", r.stream, r.filter, t.Format(time.RFC3339), err)
	}
	if seq := m.Header.Get(nats.JSSequence); seq != "" {
		return strconv.ParseUint(seq, 10, 64)
	}
	switch m.Header.Get("Status") {
	case "404":
		return 0, nil
	case "503":
		return 0, errNoBatch
	}
	return 0, fmt.Errorf("first of %s %s since %s: the server answered %s %s", r.stream, r.filter,
		t.Format(time.RFC3339), m.Header.Get("Status"), m.Header.Get("Description"))
}

// followEventsConsumer is FollowEvents through an ordered consumer from
// the stream sequence start (or, when start is 1 and o.Since is set, from
// o.Since), for servers without batched direct get.
func (q *Queue) followEventsConsumer(ctx context.Context, o EventsQuery, start uint64, fn func([]byte, nats.Header) error) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{o.Filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	}
	if start == 1 && !o.Since.IsZero() {
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, 0, &since
	}
	// Done ends the read as ctx does: an ordered consumer cannot tell when
	// it has read what is stored.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Done != nil {
		go func() { // ends with the call, at the latest (cancel)
			select {
			case <-o.Done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	cons, err := q.js.OrderedConsumer(ctx, StreamEvents, cfg)
	if err != nil {
		return q.explain(fmt.Errorf("follow events through a consumer: %w", err))
	}
	it, err := cons.Messages()
	if err != nil {
		return q.explain(fmt.Errorf("follow events through a consumer: %w", err))
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("follow events through a consumer: %w", err)
		}
		if err := fn(m.Data(), m.Headers()); err != nil {
			return err
		}
	}
}
