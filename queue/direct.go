package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
)

// Followers (WatchRun, ReadLogs) read GANTRY_EVENTS and GANTRY_LOGS by
// batched direct get, not through consumers of their own: NATS does not
// check where a consumer delivers, so the right to make one let a
// submitter copy stored events into any subject, gantry's own streams
// included. A direct get answers only the requester's inbox.
//
// nats.go has no batched direct get, so it is done here over core NATS:
// a request to $JS.API.DIRECT.GET.<stream> with {"seq", "next_by_subj",
// "batch", "max_bytes"} is answered (nats-server 2.11 and later) with up
// to batch messages, each with the headers Nats-Stream, Nats-Subject,
// Nats-Sequence, Nats-Time-Stamp, Nats-Num-Pending and Nats-Last-Sequence,
// then an end-of-batch status (204 EOB, with Nats-Num-Pending: what is
// left after the batch); 404 when no message matches.
const (
	// directBatch is the most messages a request asks for.
	directBatch = 1000
	// directMaxBytes bounds a request's answer (the server stops after the
	// message that reaches it), far below what the server lets a client
	// have pending (64 MiB) and the replies subscription's limit.
	directMaxBytes = 8 << 20
	// directWait is how long a reader waits for the next message of an
	// answer.
	directWait = 10 * time.Second
	// followPoll is how often a follower asks even with no wake-up, in
	// case one was missed; followRetry how soon it first asks again when
	// a wake-up found nothing new (doubling up to followPoll).
	followPoll  = time.Second
	followRetry = 2 * time.Millisecond
	// followHot is how often a follower reads while messages come; the
	// log writer publishes every 50 ms.
	followHot = 25 * time.Millisecond
)

// hdrNumPending is the header of a batched direct get's messages and end
// saying how many match after them.
const hdrNumPending = "Nats-Num-Pending"

// errNoBatch is a NATS server that cannot answer a batched direct get
// (before 2.11), or a stream without direct get (AllowDirect off): the
// reader falls back to an ordered consumer.
var errNoBatch = errors.New("queue: the NATS server does not answer batched direct gets")

// directReader reads the messages of one stream on one subject filter, in
// stored order, each once.
type directReader struct {
	nc     *nats.Conn
	stream string
	filter string
	next   uint64 // the sequence to ask from: the last read + 1
	// caughtUp, if set, is called when a follower has read what is
	// stored and is about to wait for more (LogQuery.CaughtUp).
	caughtUp func() error

	sub   *nats.Subscription // the answers, on inbox.<request number>
	inbox string
	n     int
}

func newDirectReader(nc *nats.Conn, stream, filter string) (*directReader, error) {
	r := &directReader{nc: nc, stream: stream, filter: filter, next: 1, inbox: nc.NewInbox()}
	sub, err := nc.SubscribeSync(r.inbox + ".*")
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", stream, filter, err)
	}
	// An answer is at most directMaxBytes and a message more.
	_ = sub.SetPendingLimits(-1, 2*directMaxBytes+(8<<20))
	r.sub = sub
	return r, nil
}

func (r *directReader) close() { _ = r.sub.Unsubscribe() }

type directGetRequest struct {
	Seq      uint64 `json:"seq"`
	NextBy   string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// fetch asks for the next batch and calls fn with each of its messages
// (data and headers as stored, with the server's Nats-* headers added). It
// returns how many messages match after the batch (0: caught up) and how
// many fn was given.
func (r *directReader) fetch(ctx context.Context, fn func(data []byte, h nats.Header) error) (pending uint64, got int, err error) {
	req := directGetRequest{Seq: r.next, NextBy: r.filter, Batch: directBatch, MaxBytes: directMaxBytes}
	pending, err = r.ask(ctx, req, func(seq uint64, m *nats.Msg) error {
		if seq < r.next {
			return nil
		}
		r.next = seq + 1
		got++
		return fn(m.Data, m.Header)
	})
	return pending, got, err
}

// ask sends a batched direct get request and calls fn with each message
// of its answer, in order, until the answer ends: with a 204 end of batch,
// whose Nats-Num-Pending it returns, or a 404 (nothing matched). An error
// fn returns ends it; the rest of the answer is dropped as late when the
// reader asks next.
func (r *directReader) ask(ctx context.Context, request any, fn func(seq uint64, m *nats.Msg) error) (pending uint64, err error) {
	r.n++
	reply := r.inbox + "." + strconv.Itoa(r.n)
	req, _ := json.Marshal(request)
	if err := r.nc.PublishRequest("$JS.API.DIRECT.GET."+r.stream, reply, req); err != nil {
		return 0, fmt.Errorf("read %s %s: %w", r.stream, r.filter, err)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, directWait)
		m, err := r.sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return 0, context.Cause(ctx)
			}
			if errors.Is(err, nats.ErrNoResponders) {
				return 0, fmt.Errorf("%w: no direct get on %s", errNoBatch, r.stream)
			}
			return 0, fmt.Errorf("read %s %s from %d: %w", r.stream, r.filter, r.next, err)
		}
		if m.Subject != reply {
			continue // the late answer to a request that timed out
		}
		seqHdr := m.Header.Get(nats.JSSequence)
		if seqHdr == "" {
			// A status: the server's stored messages all carry a sequence.
			switch status := m.Header.Get("Status"); status {
			case "204": // end of batch
				np, err := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("read %s %s: end of batch without a valid %s", r.stream, r.filter, hdrNumPending)
				}
				return np, nil
			case "404": // nothing matches
				return 0, nil
			case "503", "408":
				// No responders (nats.go makes most an error, above): no
				// direct get on the stream. 408: a server that takes the
				// request for a bad one.
				return 0, fmt.Errorf("%w: %s %s", errNoBatch, status, m.Header.Get("Description"))
			default:
				return 0, fmt.Errorf("read %s %s: the server answered %s %s", r.stream, r.filter, status, m.Header.Get("Description"))
			}
		}
		if m.Header.Get(hdrNumPending) == "" {
			// A server before 2.11 ignores "batch" and answers one message.
			return 0, errNoBatch
		}
		seq, err := strconv.ParseUint(seqHdr, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s %s: bad %s %q", r.stream, r.filter, nats.JSSequence, seqHdr)
		}
		if err := fn(seq, m); err != nil {
			return 0, err
		}
	}
}

// follow reads every message on the filter, from the first, calling fn
// with each. Without follow it returns once it has read what is stored;
// with follow it goes on until ctx is done, or until done is closed and
// everything stored before that is read. It returns errNoBatch (with
// r.next the sequence to go on from) when the server cannot answer.
//
// Following, it waits for new messages in one of two ways. Idle, it is
// subscribed to the filter: a message stored wakes it up (a poll every
// followPoll covers a missed one). Once a read finds messages, more are
// likely (a container writing), and it unsubscribes and reads again every
// followHot until a read finds none: the wake-up subscription gets every
// message's payload too, and taking log output twice cost the logs
// benchmark about a fifth of its time.
func (r *directReader) follow(ctx context.Context, follow bool, done <-chan struct{}, fn func(data []byte, h nats.Header) error) error {
	var (
		wake = make(chan struct{}, 1)
		ws   *nats.Subscription
	)
	subscribe := func() error {
		var err error
		ws, err = r.nc.Subscribe(r.filter, func(*nats.Msg) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return fmt.Errorf("follow %s: %w", r.filter, err)
		}
		_ = ws.SetPendingLimits(-1, -1) // the callback only signals
		return nil
	}
	unsubscribe := func() {
		if ws != nil {
			_ = ws.Unsubscribe()
			ws = nil
		}
	}
	defer unsubscribe()
	if follow {
		// Subscribed before the first read: a message stored after it
		// wakes the reader up.
		if err := subscribe(); err != nil {
			return err
		}
	}
	poll := time.NewTimer(followPoll)
	defer poll.Stop()
	var (
		doneWake = done
		woken    bool          // a message came since the last read
		retry    time.Duration // how soon to read again for a message woken up for and not yet read
	)
	for {
		ended := follow && closed(done)
		pending, got, err := r.fetch(ctx, fn)
		if err != nil {
			return err
		}
		if pending > 0 {
			continue
		}
		if !follow || ended {
			// Any replica may answer a direct get, one behind the leader
			// too: the leader says whether that was all.
			more, err := r.fromLeader(ctx, fn)
			if err != nil || !more {
				return err
			}
			continue
		}
		if r.caughtUp != nil {
			if err := r.caughtUp(); err != nil {
				return err
			}
		}
		var wait time.Duration
		switch {
		case got > 0: // a writer is at work: hot
			unsubscribe()
			wait, retry = followHot, 0
		case ws == nil:
			// Hot, and nothing new: idle again. Subscribed, then read
			// once more for what came in between.
			if err := subscribe(); err != nil {
				return err
			}
			continue
		case woken || retry > 0:
			// A wake-up comes as the server takes the message, which the
			// stream may not have stored yet (or the replica that
			// answered not have got): ask again soon, then less soon.
			retry = min(max(2*retry, followRetry), followPoll)
			wait = retry
		default:
			wait = followPoll
		}
		poll.Reset(wait)
		woken = false
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-wake:
			woken = true
		case <-doneWake:
			doneWake = nil // read once more (ended), then stop
		case <-poll.C:
		}
	}
}

// lastSeq returns the sequence of the last message on the reader's filter
// (a literal subject), 0 when there is none.
func (r *directReader) lastSeq(ctx context.Context) (uint64, error) {
	req, _ := json.Marshal(struct {
		LastBy string `json:"last_by_subj"`
	}{r.filter})
	m, err := r.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+r.stream, req)
	if err != nil {
		return 0, fmt.Errorf("last of %s %s: %w", r.stream, r.filter, err)
	}
	if seq := m.Header.Get(nats.JSSequence); seq != "" {
		return strconv.ParseUint(seq, 10, 64)
	}
	if m.Header.Get("Status") == "404" {
		return 0, nil
	}
	return 0, fmt.Errorf("last of %s %s: the server answered %s %s", r.stream, r.filter, m.Header.Get("Status"), m.Header.Get("Description"))
}

// fromLeader reads the next message on the filter from the stream's
// leader ($JS.API.STREAM.MSG.GET, which only the leader answers), one at
// a time, and calls fn with it (without its headers); more is false when
// there is none. On a replicated stream a direct get may be answered by a
// replica that has not yet got the latest messages, which a reader about
// to stop would otherwise miss.
func (r *directReader) fromLeader(ctx context.Context, fn func(data []byte, h nats.Header) error) (more bool, err error) {
	req, _ := json.Marshal(struct {
		Seq    uint64 `json:"seq"`
		NextBy string `json:"next_by_subj"`
	}{r.next, r.filter})
	m, err := r.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+r.stream, req)
	if err != nil {
		return false, fmt.Errorf("read %s %s from %d at its leader: %w", r.stream, r.filter, r.next, err)
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return false, fmt.Errorf("read %s %s at its leader: %w", r.stream, r.filter, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return false, nil
	case resp.Error != nil:
		return false, fmt.Errorf("read %s %s at its leader: %s", r.stream, r.filter, resp.Error.Description)
	case resp.Message == nil || resp.Message.Seq < r.next:
		return false, fmt.Errorf("read %s %s at its leader: no message in its answer", r.stream, r.filter)
	}
	r.next = resp.Message.Seq + 1
	return true, fn(resp.Message.Data, nil)
}
