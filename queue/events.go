package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// eventMsgID makes a republished worker event a duplicate within the
// window, and names an event in errors.
func eventMsgID(ev *jobs.Event) string {
	return fmt.Sprintf("%s/%d/%d", ev.RunID, ev.Attempt, ev.Seq)
}

// PublishEvent stores an event in GANTRY_EVENTS and returns once JetStream
// has acknowledged it.
func (q *Queue) PublishEvent(ctx context.Context, ev *jobs.Event) error {
	if _, err := q.js.PublishMsg(ctx, eventMsg(ev), jetstream.WithMsgID(eventMsgID(ev))); err != nil {
		return fmt.Errorf("publish event %s: %w", eventMsgID(ev), err)
	}
	return nil
}

// SourceHeader names an event's source (jobs.Event.Source) on the message,
// so that a reader interested in one source skips the others undecoded.
const SourceHeader = "Gantry-Source"

// PublishEventAsync publishes without waiting; the returned future reports
// JetStream's acknowledgement. It is how the server announces status
// changes, each once, so it sets no message id: the stream would keep every
// id for its duplicate window (memory that grows with the rate of runs),
// and would drop a second change of the same status, such as a STARTING
// run's new pull progress.
func (q *Queue) PublishEventAsync(ev *jobs.Event) (jetstream.PubAckFuture, error) {
	return q.js.PublishMsgAsync(eventMsg(ev))
}

func eventMsg(ev *jobs.Event) *nats.Msg {
	data, _ := json.Marshal(ev) // an Event always encodes
	m := nats.NewMsg(EventSubject(ev.RunID))
	m.Data = data
	if ev.Source != "" {
		m.Header.Set(SourceHeader, ev.Source)
	}
	return m
}

// FromServer tells, from its header alone, whether an event message is a
// status change the server published. Messages of older versions carry no
// header; their source is in the JSON.
func FromServer(h nats.Header) bool { return h.Get(SourceHeader) == jobs.SourceServer }

// EventBatch is a group of events taken from the workers' reports.
// Ack them once their effects are stored.
type EventBatch struct {
	Events []jobs.Event
	msgs   []jetstream.Msg
	acks   chan<- ackRequest // ConsumeEvents' acker; nil in a batch made by hand
	// published are the status changes announced for the batch
	// (Announced); failed, whether one could not even be sent.
	published []jetstream.PubAckFuture
	failed    bool
	// redelivered are the runs of the batch's reports that were delivered
	// before (RedeliveredRuns).
	redelivered []string
	// handed: Ack was called.
	handed bool
}

// Announced records a status change published (PublishEventAsync) for
// the batch's events, with what the publish returned: Ack acknowledges
// the batch only once it is stored. A report applied and acknowledged
// while its announcement was still on its way would lose it with a crash
// of the server: the report, gone, is never applied again.
func (b *EventBatch) Announced(f jetstream.PubAckFuture, err error) {
	if err != nil || f == nil {
		b.failed = true
		return
	}
	b.published = append(b.published, f)
}

// RedeliveredRuns returns the runs of the batch's reports that JetStream
// delivered before: a server may have applied them, then died or failed
// to announce what changed before it acknowledged them. Applied again,
// they change nothing and announce nothing; their runs' announcements
// must be checked (queue.LastStatus).
func (b *EventBatch) RedeliveredRuns() []string { return b.redelivered }

// Ack hands the batch to its acknowledger, which acknowledges its
// messages, in the order batches were handed, once the status changes
// announced for it (Announced) are stored, without holding up the caller
// meanwhile. A batch one of whose announcements failed, or did not come
// back within reportAnnounceWait, is not acknowledged but redelivered
// after reportRetry: applied again, it announces its runs' statuses anew
// (RedeliveredRuns).
//
// The newest acknowledged message's acknowledgement is held until the
// next batch is acknowledged or the reports stop for reportAckHold. A
// work-queue stream that a consumer empties deletes its message block
// and writes a new one (a file created and removed). The server applies
// reports as fast as they come, so the stream emptied after nearly every
// report, and that file churn was about a tenth of the control plane's
// CPU. An applied report redelivered after a crash is applied again,
// which changes nothing (storage.ApplyEvents).
func (b *EventBatch) Ack() {
	b.handed = true
	if len(b.msgs) == 0 || b.acks == nil {
		return
	}
	b.acks <- ackRequest{msgs: b.msgs, published: b.published, failed: b.failed, handed: time.Now()}
}

// Settle returns once the batches acknowledged before this one are
// settled: their announcements stored, failed or given up on. A reader of
// a run's last status on its subject then reads what the server
// announced, not an announcement on its way.
func (b *EventBatch) Settle(ctx context.Context) error {
	if b.acks == nil {
		return nil
	}
	done := make(chan struct{})
	select {
	case b.acks <- ackRequest{settled: done}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// reportAckHold is how long the newest applied report's acknowledgement
// waits for the next report; far below the consumer's ack wait.
const reportAckHold = time.Second

// reportAnnounceWait bounds how long, from its handing, the acknowledger
// waits for a batch's announcements to be stored before it gives up on
// them (and so on acknowledging the batch), far below the consumer's ack
// wait; reportRetry is when a batch not acknowledged for that is
// delivered again, doubled with each delivery up to reportRetryMax;
// reportStopWait is how long, once ConsumeEvents' ctx is done, the
// acknowledger goes on waiting for the announcements of the batches
// handed to it; those it gives up on are left to the next server, to
// which their reports are delivered again.
const (
	reportAnnounceWait = 10 * time.Second
	reportRetry        = time.Second
	reportRetryMax     = 30 * time.Second
	reportStopWait     = 2 * time.Second
)

// reportRetryDelay is when a report not acknowledged is delivered again:
// reportRetry after its first delivery, twice as long after each next, up
// to reportRetryMax. While the events stream takes no announcement, every
// report applied waits to be acknowledged: each applied again every
// second (a store transaction, a read of the run and of its subject) was a
// storm that grew with the reports pending, up to the consumer's 1000.
func reportRetryDelay(m jetstream.Msg) time.Duration {
	md, err := m.Metadata()
	if err != nil {
		return reportRetry
	}
	return retryDelay(md.NumDelivered)
}

// retryDelay is reportRetryDelay for a report delivered n times.
func retryDelay(n uint64) time.Duration {
	if n <= 1 {
		return reportRetry
	}
	return min(reportRetry<<min(n-1, 5), reportRetryMax)
}

// ackRequest is a batch handed to the acknowledger, or, with settled set,
// a caller waiting for the batches before.
type ackRequest struct {
	msgs      []jetstream.Msg
	published []jetstream.PubAckFuture
	failed    bool
	handed    time.Time // when Ack handed it: its announcements were on their way
	settled   chan struct{}
}

// ackReports acknowledges the batches handed to it, in order, each once
// its announcements are stored (EventBatch.Ack), until in is closed.
// A batch whose announcements are not stored by the time giveUp is done
// is left unacknowledged.
func (q *Queue) ackReports(giveUp context.Context, in <-chan ackRequest) {
	var last jetstream.Msg // acknowledgement held
	idle := time.NewTimer(reportAckHold)
	idle.Stop()
	wait := time.NewTimer(reportAnnounceWait)
	wait.Stop()
	defer func() {
		if last != nil {
			_ = last.Ack()
		}
	}()
	for {
		var r ackRequest
		select {
		case req, ok := <-in:
			if !ok {
				return
			}
			r = req
		case <-idle.C:
			if last != nil {
				_ = last.Ack()
				last = nil
			}
			continue
		}
		if r.settled != nil {
			close(r.settled)
			continue
		}
		if err := awaitPublished(giveUp, r, wait); err != nil {
			q.cfg.log.Warn().Err(err).Int("reports", len(r.msgs)).
				Msg("announce status changes; the reports that caused them are applied again, and announce them again")
			for _, m := range r.msgs {
				_ = m.NakWithDelay(reportRetryDelay(m))
			}
			continue
		}
		if last != nil {
			_ = last.Ack()
		}
		n := len(r.msgs) - 1
		for _, m := range r.msgs[:n] {
			_ = m.Ack()
		}
		last = r.msgs[n]
		idle.Reset(reportAckHold)
	}
}

// awaitPublished waits for the announcements of a batch to be stored,
// until reportAnnounceWait after the batch was handed at most (wait,
// stopped, is the timer for that), or until giveUp is done. The wait runs
// from the handing, not from when the batches before it were settled:
// while the events stream does not answer, batches handed one after
// another would otherwise wait reportAnnounceWait each, in turn, and the
// acknowledger, holding up Ack once its queue is full, would let the
// server apply one batch every 10 s.
func awaitPublished(giveUp context.Context, r ackRequest, wait *time.Timer) error {
	if r.failed {
		return errors.New("a status change could not be published")
	}
	if len(r.published) == 0 {
		return nil
	}
	wait.Reset(max(time.Until(r.handed.Add(reportAnnounceWait)), 0))
	defer wait.Stop()
	for _, f := range r.published {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish status of %s: %w", f.Msg().Subject, err)
		case <-wait.C:
			return fmt.Errorf("publish status of %s: not stored after %s", f.Msg().Subject, reportAnnounceWait)
		case <-giveUp.Done():
			return fmt.Errorf("publish status of %s: not stored when the server stopped", f.Msg().Subject)
		}
	}
	return nil
}

// ConsumeEvents feeds the server the workers' reports (reports.go) in
// batches of up to max events, until ctx is done. Undecodable reports are
// terminated and skipped. Reports not acknowledged within the ack wait are
// delivered again, so handle must be idempotent.
//
// Once ctx is done, the reports received and not applied (a batch that
// handle did not acknowledge, its store write failing as the server
// stops, and those received after it) are given back to JetStream at once
// (giveBack): the next server applies them as it starts. Left
// unacknowledged they would wait out the consumer's 30 s ack wait, as
// after a crash: a report sent just before an orderly restart (an
// upgrade, gantry up restarted) applied half a minute late, its run shown
// RUNNING and its pipeline run's next stages not started meanwhile.
//
// The server does not read GANTRY_EVENTS: every message there is a status
// change it published itself, or pull progress that workers also report.
// Reading it only to skip its own messages cost a delivery and an ack for
// each status change.
func (q *Queue) ConsumeEvents(ctx context.Context, max int, handle func(*EventBatch)) error {
	// The consumer through which servers before reports read GANTRY_EVENTS
	// would keep every event since pending.
	if err := q.js.DeleteConsumer(ctx, StreamEvents, "server"); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("remove the old events consumer: %w", err)
	}
	ch := make(chan jetstream.Msg, 256)
	rc, err := q.consumeDurable(ctx, StreamReports, jetstream.ConsumerConfig{
		Durable:       "server",
		Description:   "gantry: the server applies workers' reports to its store",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 1000,
	}, func(m jetstream.Msg) { ch <- m }, jetstream.PullMaxMessages(64))
	if err != nil {
		return fmt.Errorf("reports consumer: %w", err)
	}
	defer rc.Stop()
	// The acknowledger; it ends, its held acknowledgement sent, once the
	// batches handed to it are, or gives up on their announcements
	// reportStopWait after ctx's end (when a handle blocked in Ack, the
	// acknowledger's queue full, is let go too).
	acks := make(chan ackRequest, 64)
	giveUp, stopWaiting := context.WithCancel(context.Background())
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(reportStopWait, stopWaiting) })
	var acker sync.WaitGroup
	acker.Go(func() { q.ackReports(giveUp, acks) })
	defer func() {
		close(acks)
		if stopAfter() { // ended before ctx did
			time.AfterFunc(reportStopWait, stopWaiting)
		}
		acker.Wait()
		stopWaiting()
	}()
	for {
		b := EventBatch{acks: acks}
		if ctx.Err() != nil { // before the select, which may pick a report
			giveBack(rc, ch, nil)
			return nil
		}
		select {
		case <-ctx.Done():
			giveBack(rc, ch, nil)
			return nil
		case err := <-rc.Lost():
			rc.restore(ctx, err)
			continue
		case m := <-ch:
			b.add(m)
		}
	drain:
		for len(b.Events) < max {
			select {
			case m := <-ch:
				b.add(m)
			default:
				break drain
			}
		}
		if len(b.msgs) > 0 {
			handle(&b)
			if !b.handed && ctx.Err() != nil { // not applied, the server stopping
				giveBack(rc, ch, b.msgs)
				return nil
			}
		}
	}
}

// giveBack ends ConsumeEvents' consumption of the reports and gives back
// to JetStream (durable.GiveBack), each with a Nak, the reports received
// and not applied: unapplied (a batch the server did not acknowledge),
// those in ch, and those the subscription still held. ch is read
// meanwhile: a handler blocked on it, full, would hold up the drain.
func giveBack(rc *durable, ch <-chan jetstream.Msg, unapplied []jetstream.Msg) {
	held := unapplied
	done := make(chan struct{})
	go func() {
		defer close(done)
		rc.GiveBack(reportStopWait)
	}()
	for waiting := true; waiting; {
		select {
		case m := <-ch:
			held = append(held, m)
		case <-done:
			waiting = false
		}
	}
	for len(ch) > 0 { // only this goroutine reads ch
		held = append(held, <-ch)
	}
	for _, m := range held {
		_ = m.Nak()
	}
}

func (b *EventBatch) add(m jetstream.Msg) {
	evs, err := decodeReport(m.Data(), m.Headers())
	if err != nil {
		_ = m.Term()
		return
	}
	evs = slices.DeleteFunc(evs, func(ev jobs.Event) bool { return ev.RunID == "" || ev.Source == jobs.SourceServer })
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		for _, ev := range evs {
			if !slices.Contains(b.redelivered, ev.RunID) {
				b.redelivered = append(b.redelivered, ev.RunID)
			}
		}
	}
	if b.Events == nil {
		b.Events = evs // most batches hold one report: no copy
	} else {
		b.Events = append(b.Events, evs...)
	}
	b.msgs = append(b.msgs, m)
}

// WatchRun delivers the events of one run, from its first, until ctx is
// done. The channel is closed when the watch ends.
//
// It reads GANTRY_EVENTS by direct get (direct.go), woken up by the run's
// subject; on a NATS server before 2.11 it falls back to an ordered
// consumer, which a submitter may not make.
func (q *Queue) WatchRun(ctx context.Context, runID string) (<-chan jobs.Event, error) {
	return q.watchRun(ctx, runID, false)
}

// WatchRunFromLatest is WatchRun from the run's latest event on: a reader
// that joins a run under way learns where it stands, not its history.
func (q *Queue) WatchRunFromLatest(ctx context.Context, runID string) (<-chan jobs.Event, error) {
	return q.watchRun(ctx, runID, true)
}

func (q *Queue) watchRun(ctx context.Context, runID string, fromLatest bool) (<-chan jobs.Event, error) {
	r, err := newDirectReader(q.nc, StreamEvents, EventSubject(runID))
	if err != nil {
		return nil, fmt.Errorf("watch run %s: %w", runID, err)
	}
	out := make(chan jobs.Event, 64)
	go func() {
		defer close(out)
		defer r.close()
		if fromLatest {
			// A server that cannot tell gives the whole history.
			if seq, err := r.lastSeq(ctx); err == nil && seq > 0 {
				r.next = seq
			}
		}
		err := r.follow(ctx, true, nil, func(data []byte, _ nats.Header) error {
			var ev jobs.Event
			if json.Unmarshal(data, &ev) != nil {
				return nil
			}
			select {
			case out <- ev:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
		if errors.Is(err, errNoBatch) {
			q.watchRunConsumer(ctx, runID, r.next, out)
		}
	}()
	return out, nil
}

// watchRunConsumer is WatchRun through an ordered consumer, from the
// stream sequence start on, for servers without batched direct get.
func (q *Queue) watchRunConsumer(ctx context.Context, runID string, start uint64, out chan<- jobs.Event) {
	cons, err := q.js.OrderedConsumer(ctx, StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{EventSubject(runID)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return
	}
	it, err := cons.Messages()
	if err != nil {
		return
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			return
		}
		var ev jobs.Event
		if json.Unmarshal(m.Data(), &ev) != nil {
			continue
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// PublishCancel asks the worker running runID to stop it. It is core NATS:
// workers that are down learn of the cancellation from the server instead.
func (q *Queue) PublishCancel(runID, reason string) error {
	data, _ := json.Marshal(CancelMsg{RunID: runID, Reason: reason})
	return q.nc.Publish(CancelSubject, data)
}

// CancelMsg asks a worker to stop a run.
type CancelMsg struct {
	RunID  string `json:"runId"`
	Reason string `json:"reason"`
}

// JetStreamDelivery reports whether a message with this reply subject is
// one a JetStream consumer delivered, not a request or a message of
// gantry's. A user who may make consumers to read the events or logs (a
// submitter) may have them delivered to any subject, which NATS's
// permissions cannot stop: a run's stored events, {"runId": ...}, read as
// a stop request or a cancellation.
func JetStreamDelivery(reply string) bool { return strings.HasPrefix(reply, "$JS.ACK.") }

// SubscribeCancels calls fn for every cancellation request.
func (q *Queue) SubscribeCancels(fn func(CancelMsg)) (*nats.Subscription, error) {
	return q.nc.Subscribe(CancelSubject, func(m *nats.Msg) {
		var c CancelMsg
		if !JetStreamDelivery(m.Reply) && json.Unmarshal(m.Data, &c) == nil && c.RunID != "" {
			fn(c)
		}
	})
}

// RunEnded reports whether the last status change the server announced
// for a run (the last message on its event subject) is an end. False when
// there is none, or when the last message is not the server's: then it
// cannot be told.
func (q *Queue) RunEnded(ctx context.Context, runID string) (bool, error) {
	stream, err := q.stream(ctx, StreamEvents)
	if err != nil {
		return false, err
	}
	m, err := stream.GetLastMsgForSubject(ctx, EventSubject(runID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("last event of run %s: %w", runID, err)
	}
	var ev jobs.Event
	if !FromServer(m.Header) || json.Unmarshal(m.Data, &ev) != nil {
		return false, nil
	}
	return ev.Status.Terminal(), nil
}

// LastStatus returns the last status change the server announced for a
// run: the last message on its event subject, read from the stream's
// leader (a replica's direct get may lag behind it), or nil when there is
// none or the last message is not the server's (a worker's pull
// progress, which comes before the run's end).
//
// A ctx without a deadline gets the JetStream context's default timeout:
// a stream without a leader does not answer, and the server, which asks
// while applying reports, must not wait for ever.
func (q *Queue) LastStatus(ctx context.Context, runID string) (*jobs.Event, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.js.Options().DefaultTimeout)
		defer cancel()
	}
	req, _ := json.Marshal(struct {
		LastBy string `json:"last_by_subj"`
	}{EventSubject(runID)})
	m, err := q.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+StreamEvents, req)
	if err != nil {
		return nil, fmt.Errorf("last status of run %s: %w", runID, err)
	}
	var resp struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("last status of run %s: %w", runID, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return nil, nil
	case resp.Error != nil:
		return nil, fmt.Errorf("last status of run %s: %w", runID, resp.Error)
	case resp.Message == nil:
		return nil, fmt.Errorf("last status of run %s: no message in the answer", runID)
	}
	var ev jobs.Event
	if json.Unmarshal(resp.Message.Data, &ev) != nil || ev.Source != jobs.SourceServer {
		return nil, nil
	}
	return &ev, nil
}
