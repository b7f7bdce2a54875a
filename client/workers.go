package client

import (
	"context"

	"github.com/gantry-dev/gantry/jobs"
)

// Workers returns the live workers, of one cluster when cluster is set.
func (c *Client) Workers(ctx context.Context, cluster string) ([]jobs.WorkerInfo, error) {
	var reply struct {
		Workers []jobs.WorkerInfo `json:"workers"`
	}
	if err := c.call(ctx, "workers.list", map[string]string{"cluster": cluster}, &reply); err != nil {
		return nil, err
	}
	return reply.Workers, nil
}

// Worker returns one live worker.
func (c *Client) Worker(ctx context.Context, id string) (*jobs.WorkerInfo, error) {
	var w jobs.WorkerInfo
	if err := c.call(ctx, "workers.get", map[string]string{"id": id}, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// DrainWorker tells a worker to finish what it runs and take nothing new.
// The setting is kept across the worker's restarts; for an id that is not
// live it is recorded for its next start, and the reply has NotLive set.
func (c *Client) DrainWorker(ctx context.Context, id string) (*jobs.WorkerInfo, error) {
	var w jobs.WorkerInfo
	if err := c.call(ctx, "workers.drain", map[string]string{"id": id}, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// ActivateWorker lets a drained worker take work again. A worker that is
// stopping (Stopping in the reply) stays DRAINING until it stops; for an
// id that is not live the setting is recorded for its next start, and the
// reply has NotLive set.
func (c *Client) ActivateWorker(ctx context.Context, id string) (*jobs.WorkerInfo, error) {
	var w jobs.WorkerInfo
	if err := c.call(ctx, "workers.activate", map[string]string{"id": id}, &w); err != nil {
		return nil, err
	}
	return &w, nil
}
