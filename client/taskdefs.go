package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/gantry-dev/gantry/jobs"
)

// RegisterTaskDef registers an ECS task definition (its JSON, as
// register-task-definition takes it) as the next revision of its family.
// The warnings name what was accepted but ignored.
func (c *Client) RegisterTaskDef(ctx context.Context, taskDef []byte) (*jobs.RegisteredTaskDefinition, []string, error) {
	if t := bytes.TrimSpace(taskDef); !json.Valid(t) || t[0] != '{' {
		// Let the parser say where, or what came instead of an object,
		// before anything is sent: the server would answer only
		// "malformed request".
		if _, _, err := jobs.DecodeTaskDefinition(taskDef); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("task definition: invalid JSON")
	}
	var reply struct {
		TaskDefinition jobs.RegisteredTaskDefinition `json:"taskDefinition"`
		Warnings       []string                      `json:"warnings"`
	}
	if err := c.call(ctx, "taskdefs.register", json.RawMessage(taskDef), &reply); err != nil {
		return nil, nil, err
	}
	return &reply.TaskDefinition, reply.Warnings, nil
}

// DescribeTaskDef returns a revision: "family" names its latest ACTIVE one.
func (c *Client) DescribeTaskDef(ctx context.Context, ref string) (*jobs.RegisteredTaskDefinition, error) {
	var reply struct {
		TaskDefinition jobs.RegisteredTaskDefinition `json:"taskDefinition"`
	}
	if err := c.call(ctx, "taskdefs.describe", map[string]string{"taskDefinition": ref}, &reply); err != nil {
		return nil, err
	}
	return &reply.TaskDefinition, nil
}

// TaskDefListOptions filter ListTaskDefs; the zero value lists the ACTIVE
// revisions of every family.
type TaskDefListOptions struct {
	Family string `json:"family,omitempty"`
	// Status is ACTIVE (the default), INACTIVE or ALL.
	Status string `json:"status,omitempty"`
}

// ListTaskDefs returns task definition revisions by family and revision.
func (c *Client) ListTaskDefs(ctx context.Context, o TaskDefListOptions) ([]jobs.RegisteredTaskDefinition, error) {
	var reply struct {
		TaskDefinitions []jobs.RegisteredTaskDefinition `json:"taskDefinitions"`
	}
	if err := c.call(ctx, "taskdefs.list", o, &reply); err != nil {
		return nil, err
	}
	return reply.TaskDefinitions, nil
}

// DeregisterTaskDef marks family:revision INACTIVE: it starts no new runs.
func (c *Client) DeregisterTaskDef(ctx context.Context, ref string) (*jobs.RegisteredTaskDefinition, error) {
	var reply struct {
		TaskDefinition jobs.RegisteredTaskDefinition `json:"taskDefinition"`
	}
	if err := c.call(ctx, "taskdefs.deregister", map[string]string{"taskDefinition": ref}, &reply); err != nil {
		return nil, err
	}
	return &reply.TaskDefinition, nil
}
