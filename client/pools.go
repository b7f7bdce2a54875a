package client

import (
	"context"

	"github.com/gantry-dev/gantry/jobs"
)

// SetPool creates pool name with slots, or changes its slots (0 pauses
// it), and reports whether it created it.
func (c *Client) SetPool(ctx context.Context, name string, slots int) (*jobs.Pool, bool, error) {
	var reply struct {
		jobs.Pool
		Created bool `json:"created"`
	}
	req := struct {
		Name  string `json:"name"`
		Slots int    `json:"slots"`
	}{name, slots}
	if err := c.call(ctx, "pools.set", req, &reply); err != nil {
		return nil, false, err
	}
	return &reply.Pool, reply.Created, nil
}

// Pools returns every pool with its slots in use and runs waiting.
func (c *Client) Pools(ctx context.Context) ([]jobs.Pool, error) {
	var reply struct {
		Pools []jobs.Pool `json:"pools"`
	}
	if err := c.call(ctx, "pools.list", struct{}{}, &reply); err != nil {
		return nil, err
	}
	return reply.Pools, nil
}

// PoolDeleted says what a pool's delete did.
type PoolDeleted struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	// Failed are the runs that waited for the pool, failed by a forced
	// delete.
	Failed []string `json:"failed,omitempty"`
	// Running are the runs that held a slot of it: they run on.
	Running []string `json:"running,omitempty"`
}

// DeletePool deletes pool name. Without force a pool that runs hold a
// slot of or wait for is not deleted (an error with code
// failed_precondition naming them); with force those waiting fail.
func (c *Client) DeletePool(ctx context.Context, name string, force bool) (*PoolDeleted, error) {
	var reply PoolDeleted
	req := struct {
		Name  string `json:"name"`
		Force bool   `json:"force,omitempty"`
	}{name, force}
	if err := c.call(ctx, "pools.delete", req, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}
