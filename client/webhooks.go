package client

import (
	"context"

	"github.com/gantry-dev/gantry/jobs"
)

// WebhookSpec is a hook to add: where to POST, the ends it hears of and
// the filters that narrow them (jobs.WebhookAddRequest, the server's
// request itself).
type WebhookSpec = jobs.WebhookAddRequest

// AddWebhook adds a hook; a name already taken is an error with code
// already_exists. Only operators may.
func (c *Client) AddWebhook(ctx context.Context, spec WebhookSpec) (*jobs.Webhook, error) {
	var h jobs.Webhook
	if err := c.call(ctx, "webhooks.add", spec, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Webhooks returns every hook with its last delivery try and its
// deliveries pending, delivered and failed.
func (c *Client) Webhooks(ctx context.Context) ([]jobs.WebhookInfo, error) {
	var reply struct {
		Webhooks []jobs.WebhookInfo `json:"webhooks"`
	}
	if err := c.call(ctx, "webhooks.list", struct{}{}, &reply); err != nil {
		return nil, err
	}
	return reply.Webhooks, nil
}

// WebhookDeleted says what a hook's delete did.
type WebhookDeleted struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	// Dropped counts the pending deliveries dropped with it.
	Dropped int `json:"dropped"`
}

// DeleteWebhook deletes hook name and drops its pending deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, name string) (*WebhookDeleted, error) {
	var reply WebhookDeleted
	if err := c.call(ctx, "webhooks.delete", struct {
		Name string `json:"name"`
	}{name}, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

// WebhookTested is the answer of a hook's endpoint to a sample event.
type WebhookTested struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	EventID   string `json:"eventId"`
	Delivered bool   `json:"delivered"`
	// Status is the HTTP status of the answer, 0 when there was none
	// (Error says why).
	Status int    `json:"status,omitempty"`
	Body   string `json:"body,omitempty"`
	Error  string `json:"error,omitempty"`
}

// TestWebhook has the server POST a sample event (a FAILED run) to hook
// name now, and returns the answer.
func (c *Client) TestWebhook(ctx context.Context, name string) (*WebhookTested, error) {
	var reply WebhookTested
	if err := c.call(ctx, "webhooks.test", struct {
		Name string `json:"name"`
	}{name}, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}
