package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/storage"
	json "github.com/goccy/go-json"
)

// Webhooks POST the ends of runs and pipeline runs to HTTP endpoints
// (jobs/webhook.go). The store writes a delivery row per hook that hears
// of an end in the transaction that stores the end (storage/webhooks.go);
// one sender goroutine (sendWebhooks) reads the rows due and POSTs them,
// at most webhookConcurrency at once, each try bounded by webhookTimeout.
// A 2xx answer removes the row; anything else tries again later, the
// delay doubling from the first retry delay to the largest, until the
// delivery is older than the give-up age: then it is dropped, counted
// failed and logged.
//
// Crash safety, per step, if the server dies just after it:
//
//  1. An end is stored with its delivery rows (one transaction): the
//     sender, at the next start, finds the rows due and sends them.
//  2. A POST is answered, its result not yet recorded: the row is still
//     due, and is sent again at the next start. The receiver sees the
//     same body and X-Gantry-Event-Id twice: delivery is at least once,
//     and receivers dedup by the event id.
//  3. A try's result is recorded (row removed, or its next try and the
//     hook's counts, with the hook's deliveries past the give-up age
//     when it failed, and its failures in a row, in one transaction):
//     nothing is left to redo. The next start takes the hook's backoff
//     from its failures in a row and the time of the latest
//     (storage.DB.FailingHooks).
//
// A hook's delete removes its rows; a POST in flight for it finishes and
// records nothing.

const (
	// webhookTimeout bounds one POST, answer included.
	webhookTimeout = 10 * time.Second
	// webhookConcurrency is how many POSTs may be in flight at once.
	webhookConcurrency = 4
	// webhookPerHook is how many of them one hook may have: a receiver
	// that stops answering holds no more, and the others' deliveries go
	// on meanwhile (one at a time once it is seen failing).
	webhookPerHook = webhookConcurrency - 1
	// webhookAnswerMax is how much of an answer's body is kept, for an
	// error or webhooks.test's reply.
	webhookAnswerMax = 1024
)

// webhookRetry is when deliveries are tried again and given up.
type webhookRetry struct {
	first, max, giveUp time.Duration
}

var defaultWebhookRetry = webhookRetry{first: 5 * time.Second, max: 10 * time.Minute, giveUp: 24 * time.Hour}

// WithWebhookRetry sets the delay before a delivery's first retry
// (doubling at each one up to max) and the age at which it is given up
// (24 h by default): tests make them short.
func WithWebhookRetry(first, max, giveUp time.Duration) Option {
	return func(c *config) { c.webhookRetry = webhookRetry{first: first, max: max, giveUp: giveUp} }
}

// delay is the wait before the try after tries failed ones.
func (r webhookRetry) delay(tries int) time.Duration {
	d := r.first
	for i := 1; i < tries && d < r.max; i++ {
		d *= 2
	}
	return min(d, r.max)
}

// A hook whose try fails backs off as a whole: its next try (of its
// oldest delivery due) waits the retry delay, doubling with each failure
// in a row, and until one succeeds it has at most one POST in flight.
// The sender reads each hook's deliveries apart (storage.HookDeliveries),
// so a receiver that is down, however long its backlog, holds at most
// webhookPerHook of the webhookConcurrency POSTs (one, once a try has
// failed) and does not delay other hooks' deliveries. Each failed try also gives up the hook's deliveries older
// than the give-up age at once: a receiver down for days keeps at most
// the give-up age of ends in the outbox, not more with every day. The
// backoff is kept in memory and derived, at start, from what the store
// keeps of each hook (its failures in a row and the latest's time): a
// restarted server waits out a failing hook's delay as the server before
// it would have, then tries it one delivery at a time.

// hookBackoff is the sender's state of one hook.
type hookBackoff struct {
	fails    int       // tries failed in a row
	until    time.Time // no try before, after a failure
	inFlight int
}

// sendWebhooks is the sender: it starts the deliveries due, up to
// webhookConcurrency at once, and sleeps until the next is due, a new
// one is stored (storage.DB.Outboxed) or one in flight ends. It returns
// nil when ctx ends, after the POSTs in flight (cut short by ctx) have.
func (s *Server) sendWebhooks(ctx context.Context) error {
	if hooks, err := s.db.ListWebhooks(ctx); err != nil {
		s.cfg.log.Warn().Err(err).Msg("list webhooks for their metrics")
	} else {
		for _, h := range hooks {
			s.metrics.webhookKnown(h.Name)
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sd := s.newSender(ctx)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.startDueWebhooks(ctx, sd, &wg)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.db.Outboxed():
		case t := <-sd.done:
			sd.ended(t, s.cfg.webhookRetry)
		case <-s.answered.kick:
			for _, id := range s.answered.take() {
				sd.answered(id)
			}
		case <-timer.C:
		}
	}
}

// sender is sendWebhooks' state, owned by its goroutine.
type sender struct {
	inFlight map[int64]bool // by delivery id
	hooks    map[int64]*hookBackoff
	next     int // the hook to look at first, in turn, so each gets the free slots
	done     chan tried
}

// newSender is the sender's state at start: the hooks whose latest
// tries failed back off as they did before the server stopped.
func (s *Server) newSender(ctx context.Context) *sender {
	sd := &sender{inFlight: make(map[int64]bool, webhookConcurrency), hooks: map[int64]*hookBackoff{},
		done: make(chan tried, webhookConcurrency)} // never blocks: one per delivery in flight
	failing, err := s.db.FailingHooks(ctx)
	if err != nil {
		s.cfg.log.Warn().Err(err).Msg("read the webhooks' backoff; failing hooks are tried at once")
	}
	for id, f := range failing {
		sd.hooks[id] = &hookBackoff{fails: f.Fails, until: f.Last.Add(s.cfg.webhookRetry.delay(f.Fails))}
	}
	return sd
}

// tried is how a try ended, told by its goroutine.
type tried struct {
	id, hook int64
	at       time.Time
	ok       bool // delivered, or not recorded because stopping
}

// ended takes in t: its hook's backoff starts again or grows.
func (sd *sender) ended(t tried, r webhookRetry) {
	delete(sd.inFlight, t.id)
	h := sd.hooks[t.hook]
	if h == nil {
		return
	}
	h.inFlight--
	if t.ok {
		h.fails, h.until = 0, time.Time{}
		return
	}
	h.fails++
	h.until = t.at.Add(r.delay(h.fails))
}

// answeredHooks are the hooks whose tests were answered 2xx since the
// sender last looked: apiWebhookTest adds, the sender takes.
type answeredHooks struct {
	mu   sync.Mutex
	ids  []int64
	kick chan struct{} // one waiting wake-up at most
}

func (a *answeredHooks) add(id int64) {
	a.mu.Lock()
	if !slices.Contains(a.ids, id) {
		a.ids = append(a.ids, id)
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default: // the sender is to look already
	}
}

func (a *answeredHooks) take() []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := a.ids
	a.ids = nil
	return ids
}

// answered ends the backoff of hook id, whose receiver answered a test.
func (sd *sender) answered(id int64) {
	if h := sd.hooks[id]; h != nil {
		h.fails, h.until = 0, time.Time{}
	}
}

// startDueWebhooks starts the deliveries due that are not in flight, as
// many as there is room for and each hook may have, and returns how long
// to wait for the next.
func (s *Server) startDueWebhooks(ctx context.Context, sd *sender, wg *sync.WaitGroup) time.Duration {
	ids := s.db.WebhookIDs()
	for id, h := range sd.hooks {
		if h.inFlight == 0 && !slices.Contains(ids, id) {
			delete(sd.hooks, id) // deleted
		}
	}
	wait := idleWait
	free := webhookConcurrency - len(sd.inFlight)
	now := s.cfg.now()
	sd.next++
	for i := range ids {
		if free == 0 {
			return idleWait // one in flight ends first
		}
		id := ids[(sd.next+i)%len(ids)]
		h := sd.hooks[id]
		if h == nil {
			h = &hookBackoff{}
			sd.hooks[id] = h
		}
		room := min(free, webhookPerHook-h.inFlight)
		switch {
		case h.until.After(now):
			wait = min(wait, h.until.Sub(now))
			continue
		case h.fails > 0:
			room = min(room, 1-h.inFlight) // one try at a time until one succeeds
		}
		if room <= 0 {
			continue
		}
		// The rows in flight are due: read past them.
		ds, err := s.db.HookDeliveries(ctx, id, h.inFlight+room)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.log.Warn().Err(err).Msg("read webhook deliveries; trying again in a minute")
			}
			return idleWait
		}
		for j := range ds {
			d := ds[j]
			if sd.inFlight[d.ID] {
				continue
			}
			if d.NextAt.After(now) {
				wait = min(wait, d.NextAt.Sub(now))
				break
			}
			if room == 0 {
				break
			}
			room--
			free--
			h.inFlight++
			sd.inFlight[d.ID] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				sd.done <- s.deliver(ctx, &d)
			}()
		}
	}
	return wait
}

// idleWait is how long the sender sleeps with nothing due: a new
// delivery wakes it sooner. After a store error it tries again then.
const idleWait = time.Minute

// deliver makes one try of d and records how it went.
func (s *Server) deliver(ctx context.Context, d *storage.Delivery) tried {
	at := s.cfg.now().UTC()
	t := tried{id: d.ID, hook: d.HookID, at: at}
	status, answer, err := s.postWebhook(ctx, d.URL, d.Secret, d.EventID, d.Body)
	if ctx.Err() != nil {
		t.ok = true
		return t // stopping: the row stays due, for the next start
	}
	res := storage.DeliveryResult{WebhookTry: jobs.WebhookTry{At: at, Status: status}}
	switch {
	case err != nil:
		res.Error = err.Error()
	case status < 200 || status > 299:
		res.Error = httpError(status, answer)
	default:
		res.Delivered = true
	}
	t.ok = res.Delivered
	result := "delivered"
	if !res.Delivered {
		res.Expire = at.Add(-s.cfg.webhookRetry.giveUp)
		next := at.Add(s.cfg.webhookRetry.delay(d.Tries + 1))
		if next.Before(d.CreatedAt.Add(s.cfg.webhookRetry.giveUp)) {
			res.Retry, result = next, "retry"
		} else {
			result = "failed"
		}
	}
	log := s.cfg.log.With().Str("webhook", d.Hook).Str("event", d.EventID).Int("tries", d.Tries+1).Logger()
	expired, err := s.db.RecordDelivery(context.WithoutCancel(ctx), d, res)
	if err != nil {
		// Not recorded: the row is still due and is tried again.
		log.Error().Err(err).Msg("record webhook delivery")
		return t
	}
	s.metrics.webhookDeliveries.WithLabelValues(d.Hook, result).Inc()
	if expired > 0 {
		s.metrics.webhookDeliveries.WithLabelValues(d.Hook, "failed").Add(float64(expired))
		log.Warn().Int("given_up", expired).Dur("age", s.cfg.webhookRetry.giveUp).
			Msg("webhook deliveries given up unsent: older than the give-up age, their receiver still failing")
	}
	switch result {
	case "delivered":
		log.Debug().Int("status", status).Msg("webhook delivered")
	case "retry":
		log.Info().Str("error", res.Error).Time("next", res.Retry).Msg("webhook delivery failed; trying again")
	default:
		log.Warn().Str("error", res.Error).Time("since", d.CreatedAt).
			Msg("webhook delivery given up after its retries: the receiver never answered 2xx")
	}
	return t
}

// webhookClient sends every POST: no redirect is followed (a 3xx is not
// a delivery, as GitHub's webhooks do), each try is bounded by its
// context.
var webhookClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// postWebhook POSTs body to target, signed with secret when there is one,
// and returns the answer's status and the start of its body.
func (s *Server) postWebhook(ctx context.Context, target, secret, eventID string, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gantry/"+Version)
	req.Header.Set("X-Gantry-Event-Id", eventID)
	if secret != "" {
		req.Header.Set("X-Gantry-Signature", Signature(secret, body))
	}
	resp, err := webhookClient.Do(req)
	if err != nil {
		return 0, "", postError(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, webhookAnswerMax))
	return resp.StatusCode, string(answer), nil
}

// Signature is the X-Gantry-Signature of body under secret:
// "sha256=" and the hex HMAC-SHA256, as GitHub's X-Hub-Signature-256.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// postError shortens a client error: the URL it repeats is the hook's.
func postError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if ue.Timeout() {
		return fmt.Errorf("no answer within %s", webhookTimeout)
	}
	// "dial tcp 10.0.0.5:8080: connect: connection refused" repeats the
	// hook's address too, and gantry webhook ls cuts it before the cause.
	var oe *net.OpError
	if errors.As(ue.Err, &oe) && oe.Op == "dial" && oe.Err != nil {
		return fmt.Errorf("dial: %w", oe.Err)
	}
	return ue.Err
}

// httpError is the error of an answer that is not 2xx.
func httpError(status int, answer string) string {
	msg := fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	if line, _, _ := strings.Cut(strings.TrimSpace(answer), "\n"); line != "" {
		if r := []rune(line); len(r) > 200 {
			line = string(r[:200]) + "…"
		}
		msg += ": " + line
	}
	return msg
}

// WebhookAddRequest adds a hook (jobs.WebhookAddRequest, the client's
// WebhookSpec too).
type WebhookAddRequest = jobs.WebhookAddRequest

// WebhookListReply lists every hook with how its deliveries fare.
type WebhookListReply struct {
	Webhooks []jobs.WebhookInfo `json:"webhooks"`
}

// WebhookNameRequest names a hook.
type WebhookNameRequest struct {
	Name string `json:"name"`
}

// WebhookDeleteReply says what a hook's delete did.
type WebhookDeleteReply struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	// Dropped counts the deliveries pending that were dropped with it.
	Dropped int `json:"dropped"`
}

// WebhookTestReply is the answer to a sample event.
type WebhookTestReply struct {
	Name    string `json:"name"`
	URL     string `json:"url"`
	EventID string `json:"eventId"`
	// Delivered says the answer was 2xx.
	Delivered bool `json:"delivered"`
	Status    int  `json:"status,omitempty"`
	// Body is the start of the answer's body (1 KiB at most).
	Body  string `json:"body,omitempty"`
	Error string `json:"error,omitempty"`
}

func (s *Server) apiWebhookAdd(ctx context.Context, data []byte) (any, error) {
	var req WebhookAddRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	h := jobs.Webhook{Name: req.Name, URL: req.URL, On: req.On, Kind: req.Kind, Pipelines: req.Pipelines, Families: req.Families,
		Tags: req.Tags, ArrayChildren: req.ArrayChildren, Secret: req.Secret, CreatedAt: s.cfg.now().UTC()}
	h.Normalize()
	if err := h.Validate(); err != nil {
		return nil, jobs.Invalid(err.Error())
	}
	if err := s.db.AddWebhook(ctx, &h); err != nil {
		return nil, err
	}
	s.metrics.webhookKnown(h.Name)
	s.cfg.log.Info().Str("webhook", h.Name).Msg("webhook added")
	h.URL = h.RedactedURL() // shown as webhooks.list shows it
	return h, nil
}

func (s *Server) apiWebhookList(ctx context.Context, _ []byte) (any, error) {
	hooks, err := s.db.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	for i := range hooks {
		hooks[i].URL = hooks[i].RedactedURL()
	}
	return WebhookListReply{Webhooks: hooks}, nil
}

// webhookNamed decodes a request naming a hook, checking the name.
func webhookNamed(data []byte) (string, error) {
	var req WebhookNameRequest
	if err := decode(data, &req); err != nil {
		return "", err
	}
	if err := jobs.CheckWebhookName("name", req.Name); err != nil {
		return "", jobs.Invalid(err.Error())
	}
	return req.Name, nil
}

func webhookNotFound(name string) error {
	return jobs.NotFound(fmt.Sprintf("webhook %s: not found (gantry webhook ls lists them)", name))
}

func (s *Server) apiWebhookDelete(ctx context.Context, data []byte) (any, error) {
	name, err := webhookNamed(data)
	if err != nil {
		return nil, err
	}
	dropped, err := s.db.DeleteWebhook(ctx, name)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, webhookNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	s.metrics.webhookDeliveries.DeletePartialMatch(map[string]string{"hook": name})
	s.cfg.log.Info().Str("webhook", name).Int("dropped", dropped).Msg("webhook deleted")
	return WebhookDeleteReply{Name: name, Deleted: true, Dropped: dropped}, nil
}

// apiWebhookTest POSTs a sample event to a hook now, as a delivery would
// be sent, and returns the answer. It records nothing of the sample; a
// 2xx answer ends the hook's backoff: its waiting deliveries are due.
func (s *Server) apiWebhookTest(ctx context.Context, data []byte) (any, error) {
	name, err := webhookNamed(data)
	if err != nil {
		return nil, err
	}
	h, err := s.db.GetWebhook(ctx, name)
	if errors.Is(err, jobs.ErrNotFound) {
		return nil, webhookNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	ev := sampleEvent(s.cfg.now().UTC(), s.newRunID())
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	reply := WebhookTestReply{Name: name, URL: h.RedactedURL(), EventID: ev.EventID}
	status, answer, err := s.postWebhook(ctx, h.URL, h.Secret, ev.EventID, body)
	reply.Status, reply.Body = status, answer
	switch {
	case err != nil:
		reply.Error = err.Error()
	case status < 200 || status > 299:
		reply.Error = httpError(status, answer)
	default:
		reply.Delivered = true
		// The receiver answers again: its hook's deliveries need not
		// wait out the backoff of its earlier failures.
		id, err := s.db.EndHookBackoff(ctx, name, s.cfg.now())
		if err != nil {
			s.cfg.log.Warn().Err(err).Str("webhook", name).Msg("end the backoff of a webhook that answered its test")
			break
		}
		s.answered.add(id)
	}
	return reply, nil
}

// sampleEvent is webhooks.test's event: a run that failed, as a real end
// would read, with an event id of its own.
func sampleEvent(now time.Time, id string) *jobs.WebhookEvent {
	exit := 1
	started := now.Add(-42 * time.Second)
	r := &jobs.Run{RunID: "test-" + id, Status: jobs.StatusFailed, ExitCode: &exit, StopCode: jobs.StopEssentialExited,
		StoppedReason: "sample event sent by gantry webhook test", TaskDefinition: "sample:1", Cluster: "default",
		Tags: map[string]string{"gantry-test": "true"}, CreatedAt: started, StartedAt: &started, FinishedAt: &now}
	ev := jobs.RunEndEvent(r)
	ev.EventID = "test/" + id
	return ev
}
