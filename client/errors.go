package client

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// APIError is the error of a request the server refused: a stable Code
// (invalid_argument, not_found, already_exists, failed_precondition,
// unavailable, internal, and permission_denied when NATS refused the
// subject) and a Message for people. Get it with errors.As, or test a code
// with errors.Is and the sentinels below.
type APIError = jobs.Error

// Sentinels for errors.Is: each matches every APIError of its code.
var (
	ErrNotFound           = jobs.ErrNotFound
	ErrInvalidArgument    = jobs.ErrInvalidArgument
	ErrAlreadyExists      = jobs.ErrAlreadyExists
	ErrFailedPrecondition = jobs.ErrFailedPrecondition
	ErrUnavailable        = jobs.ErrUnavailable
	ErrInternal           = jobs.ErrInternal
	ErrPermissionDenied   = jobs.ErrPermissionDenied
)

// permWatch turns NATS's asynchronous permission violations into errors
// of the requests that caused them: without it a refused request would
// only time out.
type permWatch struct {
	mu sync.Mutex
	// waiters are by subject; the value says whether the waiter expects
	// the refusal (Get trying runs.get).
	waiters map[string]map[*context.CancelCauseFunc]bool
}

// watchPermissions chains an error handler onto nc's. A refusal that a
// request expected does not reach it.
func (c *Client) watchPermissions() {
	c.perms = &permWatch{waiters: map[string]map[*context.CancelCauseFunc]bool{}}
	prev := c.nc.ErrorHandler()
	c.nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if c.perms.notify(err) {
			return
		}
		if prev != nil {
			prev(nc, sub, err)
		}
	})
}

// watch cancels ctx with a permission_denied cause if NATS refuses a
// publish to subject; the returned function stops watching. expected
// says that the caller handles the refusal: it is then not reported to
// the connection's error handler.
func (p *permWatch) watch(ctx context.Context, subject string, expected bool) (context.Context, func()) {
	if p == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	key := &cancel
	p.mu.Lock()
	if p.waiters[subject] == nil {
		p.waiters[subject] = map[*context.CancelCauseFunc]bool{}
	}
	p.waiters[subject][key] = expected
	p.mu.Unlock()
	return ctx, func() {
		p.mu.Lock()
		delete(p.waiters[subject], key)
		if len(p.waiters[subject]) == 0 {
			delete(p.waiters, subject)
		}
		p.mu.Unlock()
		cancel(nil)
	}
}

// notify fails the requests to the subject NATS refused, if err is such a
// refusal, and reports whether one of them expected it.
func (p *permWatch) notify(err error) (expected bool) {
	if err == nil {
		return false
	}
	msg := err.Error()
	const marker = `for publish to "`
	i := strings.Index(strings.ToLower(msg), marker)
	if i < 0 {
		return false
	}
	subject, _, _ := strings.Cut(msg[i+len(marker):], `"`)
	p.mu.Lock()
	defer p.mu.Unlock()
	for cancel, exp := range p.waiters[subject] {
		(*cancel)(&APIError{Code: jobs.CodePermissionDenied,
			Message: refusedMessage(subject)})
		expected = expected || exp
	}
	return expected
}

// refusedMessage is what a user reads when NATS refused a subject, however
// the refusal reached the client.
func refusedMessage(subject string) string {
	return fmt.Sprintf("NATS refused %s: permission denied to your user (a submit-only user?)", subject)
}
