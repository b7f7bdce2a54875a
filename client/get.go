package client

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/gantry-dev/gantry/jobs"
)

// Get returns a run. A user whom NATS refuses gantry.api.runs.get (the
// submit role, docs/nats-api.md's Authorization) gets it from runs.status
// instead: without its spec and its idempotency key. The client remembers
// the refusal: it costs one request, whose refusal is not reported to the
// connection's error handler.
func (c *Client) Get(ctx context.Context, runID string) (*jobs.Run, error) {
	switch c.get.state.Load() {
	case getAllowed:
		return c.getRun(ctx, "runs.get", runID, false)
	case getRefused:
		return c.Status(ctx, runID)
	}
	// Not known yet: one request finds out while the others wait, so
	// that NATS refuses one at most.
	select {
	case c.get.probe <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-c.get.probe }()
	if c.get.state.Load() != getUnknown {
		return c.Get(ctx, runID) // found out while this one waited
	}
	r, err := c.getRun(ctx, "runs.get", runID, true)
	var apiErr *APIError
	switch {
	case errors.Is(err, ErrPermissionDenied):
		c.get.state.Store(getRefused)
		r, err = c.Status(ctx, runID)
		if errors.Is(err, ErrNoServer) {
			// A server older than runs.status: the refusal says more.
			return nil, &APIError{Code: jobs.CodePermissionDenied, Message: refusedMessage("gantry.api.runs.get") +
				"; runs.status, which the submit role may request, has no responder (a gantry server older than the client?)"}
		}
	case err == nil, errors.As(err, &apiErr):
		c.get.state.Store(getAllowed) // the server answered: NATS let it through
	}
	return r, err
}

// Status returns a run without its spec and its idempotency key
// (gantry.api.runs.status): what a submit-only user may read of any run,
// its status, exit code, attempts and containers. Get uses it for such a
// user.
func (c *Client) Status(ctx context.Context, runID string) (*jobs.Run, error) {
	return c.getRun(ctx, "runs.status", runID, false)
}

func (c *Client) getRun(ctx context.Context, endpoint, runID string, expectRefusal bool) (*jobs.Run, error) {
	var r jobs.Run
	if err := c.request(ctx, endpoint, map[string]string{"runId": runID}, &r, expectRefusal); err != nil {
		return nil, err
	}
	return &r, nil
}

// getRoute is what Get knows of whether NATS lets it request runs.get.
type getRoute struct {
	state atomic.Int32 // getUnknown, getAllowed or getRefused
	// probe is held by the Get that finds out (capacity 1).
	probe chan struct{}
}

const (
	getUnknown int32 = iota
	getAllowed
	getRefused
)

// getRefusalLog ends a NATS server's log line on its refusal of runs.get.
const getRefusalLog = `Publish Violation - Subject "gantry.api.runs.get"`

// IsGetRefusal reports whether line, from a NATS server's log, is its
// refusal of gantry.api.runs.get: expected once from every client of a
// submit-only user that reads a run (Get), not a fault.
func IsGetRefusal(line string) bool { return strings.HasSuffix(strings.TrimSpace(line), getRefusalLog) }
