// Package client is the Go client of gantry's NATS API. The gantry CLI uses
// it for everything; programs can too.
package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
)

// Client talks to a gantry server over NATS. It is safe for concurrent use.
type Client struct {
	nc    *nats.Conn
	q     *queue.Queue
	perms *permWatch // errors.go
	get   getRoute   // get.go
}

// New wraps a NATS connection; the caller keeps ownership of it. Replies
// come to nc's inboxes: where other users may subscribe to _INBOX.> (a
// submit-only user may), connect with a prefix of your own
// (nats.CustomInboxPrefix) that only you may subscribe to.
func New(nc *nats.Conn) (*Client, error) {
	q, err := queue.New(nc)
	if err != nil {
		return nil, err
	}
	c := &Client{nc: nc, q: q}
	c.get.probe = make(chan struct{}, 1)
	c.watchPermissions()
	return c, nil
}

// ErrNoServer is returned when nothing answers on the API subjects.
var ErrNoServer = errors.New("no gantry server answers on NATS: start one with `gantry up` or `gantry server`")

// call sends a request to gantry.api.<endpoint> and decodes the reply into
// out; API errors come back as *jobs.Error (APIError), and so does a
// subject NATS refused (permission_denied).
func (c *Client) call(ctx context.Context, endpoint string, in, out any) error {
	return c.request(ctx, endpoint, in, out, false)
}

// request is call; with expectRefusal, a refusal by NATS is only this
// request's error, not also reported to the connection's error handler
// (whose default, nats.go's, prints it on stderr).
func (c *Client) request(ctx context.Context, endpoint string, in, out any, expectRefusal bool) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	ctx, unwatch := c.perms.watch(ctx, "gantry.api."+endpoint, expectRefusal)
	defer unwatch()
	msg, err := c.nc.RequestWithContext(ctx, "gantry.api."+endpoint, data)
	if err != nil {
		var denied *jobs.Error
		if errors.As(context.Cause(ctx), &denied) {
			return denied
		}
		if errors.Is(err, nats.ErrNoResponders) {
			// Where NATS has no JetStream no gantry server can run: say
			// what to do about that rather than to start one.
			if noJS := queue.CheckJetStream(c.nc); noJS != nil {
				return noJS
			}
			return ErrNoServer
		}
		if errors.Is(err, nats.ErrPermissionViolation) {
			return &APIError{Code: jobs.CodePermissionDenied, Message: refusedMessage("gantry.api." + endpoint)}
		}
		return fmt.Errorf("gantry.api.%s: %w", endpoint, err)
	}
	apiErr, err := decodeReply(msg.Data, out)
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return fmt.Errorf("gantry.api.%s: bad reply: %w", endpoint, err)
	}
	return nil
}

// Submit creates a run. It drops the server's warnings; SubmitWithWarnings
// returns them.
func (c *Client) Submit(ctx context.Context, req *jobs.SubmitRequest) (*jobs.Run, error) {
	r, _, err := c.SubmitWithWarnings(ctx, req)
	return r, err
}

// SubmitWithWarnings creates a run, as Submit, and returns the server's
// warnings too: each names a field of the request that the server did
// not read (one a newer gantry has and the server's does not, say), and
// what to use instead where there is something.
func (c *Client) SubmitWithWarnings(ctx context.Context, req *jobs.SubmitRequest) (*jobs.Run, []string, error) {
	var reply struct {
		jobs.Run
		Warnings []string `json:"warnings"`
	}
	// Room for the one attempt and the one container most new runs have:
	// go-json makes a slice it grows from nothing with room for four
	// (about 3 KB a submission). A reply without them keeps them nil.
	reply.Attempts = make([]jobs.Attempt, 0, 1)
	reply.Spec.Task.ContainerDefinitions = make([]jobs.ContainerDefinition, 0, 1)
	if err := c.call(ctx, "runs.submit", req, &reply); err != nil {
		return nil, nil, err
	}
	if len(reply.Attempts) == 0 {
		reply.Attempts = nil
	}
	if len(reply.Spec.Task.ContainerDefinitions) == 0 {
		reply.Spec.Task.ContainerDefinitions = nil
	}
	return &reply.Run, reply.Warnings, nil
}

// ListOptions filter List; the zero value lists the runs not yet ended.
type ListOptions struct {
	Statuses []jobs.Status `json:"statuses,omitempty"`
	All      bool          `json:"all,omitempty"`
	// Limit is the page size (100 by default, at most 1000); Before the
	// cursor List returned with the previous page.
	Limit  int    `json:"limit,omitempty"`
	Before string `json:"before,omitempty"`
	// TaskDefinition keeps the runs of a family or of family:revision.
	TaskDefinition string `json:"taskDefinition,omitempty"`
	Cluster        string `json:"cluster,omitempty"`
	Worker         string `json:"worker,omitempty"`
	// CreatedAfter and CreatedBefore bound the runs' creation time.
	CreatedAfter  *time.Time `json:"createdAfter,omitempty"`
	CreatedBefore *time.Time `json:"createdBefore,omitempty"`
	// Tags keeps the runs that have all these tags, key and value;
	// TagKeys those that have a tag of each of these keys.
	Tags    map[string]string `json:"tags,omitempty"`
	TagKeys []string          `json:"tagKeys,omitempty"`
	// ArrayJobID lists the children of that array run; without it no
	// array's children are listed, its parent is.
	ArrayJobID string `json:"arrayJobId,omitempty"`
}

// List returns a page of runs, newest first, and the cursor of the next.
func (c *Client) List(ctx context.Context, o ListOptions) ([]jobs.Run, string, error) {
	var reply struct {
		Runs []jobs.Run `json:"runs"`
		Next string     `json:"next"`
	}
	if err := c.call(ctx, "runs.list", o, &reply); err != nil {
		return nil, "", err
	}
	return reply.Runs, reply.Next, nil
}

// Stop cancels a run.
func (c *Client) Stop(ctx context.Context, runID, reason string) (*jobs.Run, error) {
	var r jobs.Run
	if err := c.call(ctx, "runs.stop", map[string]string{"runId": runID, "reason": reason}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Wait blocks until the run ends and returns it as Get reads it. It
// follows the run's events and, in case one is missed, asks the server
// now and then.
func (c *Client) Wait(ctx context.Context, runID string) (*jobs.Run, error) {
	return c.WaitFunc(ctx, runID, nil)
}

// WaitFunc is Wait calling fn with every status the server reports.
func (c *Client) WaitFunc(ctx context.Context, runID string, fn func(jobs.Event)) (*jobs.Run, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := c.q.WatchRun(wctx, runID)
	if err != nil {
		return nil, err
	}
	poll := time.NewTicker(waitPoll)
	defer poll.Stop()
	check := func() (*jobs.Run, error) {
		r, err := c.Get(ctx, runID)
		if err != nil {
			return nil, err
		}
		if r.Status.Terminal() {
			return r, nil
		}
		return nil, nil
	}
	// The events are read from the run's first, stored in JetStream, and
	// the watch was started before this read: an end that comes after it
	// is in the events, whenever the watch subscribed.
	if r, err := check(); r != nil || err != nil {
		return r, err
	}
	if testHookWaitRead != nil {
		testHookWaitRead(runID)
	}
	// Once following, a server that does not answer for a while (it
	// restarts) stops nothing: the events come from JetStream, and the
	// store is asked again at the next tick (an end seen in the events
	// is read from it once it answers), for up to ServerGone.
	var downSince time.Time
	for {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Source != jobs.SourceServer {
				continue
			}
			if fn != nil {
				fn(ev)
			}
			if !ev.Status.Terminal() {
				continue
			}
			r, err := c.Get(ctx, runID)
			if err == nil || !transient(err) {
				return r, err
			}
		case <-poll.C:
			r, err := check()
			if err != nil && transient(err) && ctx.Err() == nil {
				// Gone for longer than a restart takes: say so.
				if downSince.IsZero() {
					downSince = time.Now()
				}
				if time.Since(downSince) < ServerGone {
					continue
				}
				return nil, fmt.Errorf("following run %s: the server has not answered for %s: %w", runID, ServerGone, err)
			}
			downSince = time.Time{}
			if r != nil || err != nil {
				return r, err
			}
		}
	}
}

// waitPoll is how often Wait asks the server besides following the
// events, in case one is missed.
var waitPoll = 2 * time.Second

// testHookWaitRead, set by tests, is called once Wait's first read found
// the run not ended yet.
var testHookWaitRead func(runID string)

// ServerGone is how long Wait follows a run whose server does not answer
// before it gives up.
var ServerGone = 2 * time.Minute

// transient reports whether err is the server not answering for now.
func transient(err error) bool {
	return errors.Is(err, ErrNoServer) || jobs.ErrorCode(err) == jobs.CodeUnavailable ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// LogOptions select what Logs reads.
type LogOptions struct {
	Container string
	Attempt   int
	// Follow reads until the run ends instead of stopping at the end of what
	// is stored now.
	Follow bool
	// CaughtUp, if set, is called while following each time the read has
	// read every line stored so far, before it waits for more (see
	// queue.LogQuery); its error ends the read.
	CaughtUp func() error
	// Tail, when set, reads the log's end, not all of it: batches that
	// hold its last Tail.Lines lines, which a reader that keeps the last
	// lines takes as it would the whole log's (queue.LogTail); following,
	// the read goes on from there. Logs sets Tail.Whole and Tail.Bounded.
	Tail *queue.LogTail
	// Since, when set, starts a read without Tail near it rather than at
	// the log's first batch: the batches it gives hold every line of a
	// batch whose Time is at or after it, and what a reader needs to know
	// of the lines before (queue.LogQuery); the reader drops the older
	// lines. Skew is how far a worker's clock may run ahead of the NATS
	// servers' for that to hold (0: queue.DefaultLogSkew).
	Since time.Time
	Skew  time.Duration
}

// LogRetention returns how long the log stream (GANTRY_LOGS) keeps log
// lines after they were written; 0 means no age limit. A run that ended
// longer ago than that has none left.
func (c *Client) LogRetention(ctx context.Context) (time.Duration, error) {
	return c.q.LogRetention(ctx)
}

// LogLimits returns the log stream's limits (age and size) and when the
// oldest line it holds was stored: lines stored before it are gone.
func (c *Client) LogLimits(ctx context.Context) (queue.LogLimits, error) {
	return c.q.LogLimits(ctx)
}

// Logs calls fn with the run's log lines in order, batch by batch.
func (c *Client) Logs(ctx context.Context, runID string, o LogOptions, fn func(*jobs.LogBatch) error) error {
	r, err := c.Get(ctx, runID)
	if err != nil {
		return err
	}
	if o.Container != "" {
		var names []string
		for _, cd := range r.Spec.Task.ContainerDefinitions {
			names = append(names, cd.Name)
		}
		if len(names) == 0 {
			// No spec (runs.status, for a submit-only user): a run that
			// has started lists every container of its task.
			for _, cr := range r.Containers {
				names = append(names, cr.Name)
			}
		}
		if len(names) > 0 && !slices.Contains(names, o.Container) {
			return fmt.Errorf("run %s has no container %q; its containers: %s", runID, o.Container, strings.Join(names, ", "))
		}
	}
	// An attempt the run does not have would read nothing, as if it had
	// written nothing; followed, a run not yet ended may still make it.
	if o.Attempt < 0 || (o.Attempt > len(r.Attempts) && (!o.Follow || r.Status.Terminal())) {
		return jobs.Invalid(fmt.Sprintf("run %s has no attempt %d (attempts so far: %d)", runID, o.Attempt, len(r.Attempts)))
	}
	lq := queue.LogQuery{RunID: runID, Container: o.Container, Attempt: o.Attempt, Follow: o.Follow, CaughtUp: o.CaughtUp, Tail: o.Tail,
		Since: o.Since, Skew: o.Skew}
	if !o.Follow {
		return c.q.ReadLogs(ctx, lq, fn)
	}
	done := make(chan struct{})
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var werr error
	go func() {
		defer close(done)
		_, werr = c.Wait(wctx, runID)
	}()
	lq.Done = done
	err = c.q.ReadLogs(ctx, lq, fn)
	cancel()
	<-done
	if err == nil && werr != nil && ctx.Err() == nil && !errors.Is(werr, context.Canceled) {
		err = werr
	}
	return err
}

// Rerun creates a new run as the run req.RunID was submitted, req's
// fields winning (gantry rerun). The run comes without its spec; the
// warnings say what the rerun does not carry over or could have taken.
// It is the operator's: a submit-only user gets a permission_denied
// error (it may not run other users' specs again).
func (c *Client) Rerun(ctx context.Context, req *jobs.RerunRequest) (*jobs.Run, []string, error) {
	var reply struct {
		jobs.Run
		Warnings []string `json:"warnings"`
	}
	if err := c.call(ctx, "runs.rerun", req, &reply); err != nil {
		return nil, nil, err
	}
	return &reply.Run, reply.Warnings, nil
}
