package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// PipelineDryRun is what applying a pipeline file would do.
type PipelineDryRun struct {
	// Pipeline is the version an apply would store (Version 1 for a
	// pipeline the server does not have), or, not Changed, the latest
	// version, which the file equals.
	Pipeline jobs.Pipeline `json:"pipeline"`
	Changed  bool          `json:"changed"`
	// Changes sum up what differs from the latest version, a line each
	// (`stages[1](transform).timeoutSeconds: 600 -> 900`); none for a new
	// pipeline.
	Changes []string `json:"changes"`
}

// DryRunPipeline checks a pipeline file as ApplyPipeline's server does
// (its task definitions, pools and triggers too), refusing it with the
// same error, and says what an apply would change, storing nothing.
// A server too old to know dry runs would apply the file: it is asked
// first, and such a server is an error before the file is sent.
func (c *Client) DryRunPipeline(ctx context.Context, data []byte) (*PipelineDryRun, error) {
	if err := c.knowsDryRun(ctx, "pipelines.apply"); err != nil {
		return nil, err
	}
	var reply struct {
		PipelineDryRun
		DryRun bool `json:"dryRun"`
	}
	if err := c.call(ctx, "pipelines.apply", map[string]any{"data": data, "dryRun": true}, &reply); err != nil {
		return nil, err
	}
	if !reply.DryRun {
		return nil, fmt.Errorf("the server applied %s as version %d: it does not know dry runs", reply.Pipeline.Name, reply.Pipeline.Version)
	}
	return &reply.PipelineDryRun, nil
}

// TaskDefDryRun is what registering a task definition would do.
type TaskDefDryRun struct {
	// TaskDefinition is the revision a register would make.
	TaskDefinition jobs.RegisteredTaskDefinition `json:"taskDefinition"`
	// Warnings name what a register would accept but ignore.
	Warnings []string `json:"warnings"`
	// IdenticalTo names the family's latest revision (family:revision)
	// when the definition equals it; a register makes a new revision all
	// the same.
	IdenticalTo string `json:"identicalTo"`
}

// DryRunTaskDef checks an ECS task definition as RegisterTaskDef's server
// does, refusing it with the same error, and says which revision a
// register would make, storing nothing.
func (c *Client) DryRunTaskDef(ctx context.Context, taskDef []byte) (*TaskDefDryRun, error) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(taskDef, &obj) != nil || obj == nil {
		// Let the parser say where, before anything is sent.
		if _, _, err := jobs.DecodeTaskDefinition(taskDef); err != nil {
			return nil, err
		}
		return nil, errors.New("task definition: want a JSON object")
	}
	if _, ok := obj["dryRun"]; ok {
		return nil, errors.New(`task definition: "dryRun" is no field of a task definition`)
	}
	obj["dryRun"] = json.RawMessage("true")
	var reply struct {
		TaskDefDryRun
		DryRun bool `json:"dryRun"`
	}
	// A server that does not know dryRun refuses it as an unknown field.
	if err := c.call(ctx, "taskdefs.register", obj, &reply); err != nil {
		return nil, err
	}
	if !reply.DryRun {
		return nil, fmt.Errorf("the server registered %s: it does not know dry runs", reply.TaskDefinition.Ref())
	}
	return &reply.TaskDefDryRun, nil
}

// knowsDryRun asks the gantry service's description (`nats micro info
// gantry`) whether endpoint's request has dryRun.
func (c *Client) knowsDryRun(ctx context.Context, endpoint string) error {
	ok, err := c.knowsRequestField(ctx, endpoint, "dryRun")
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the gantry server is too old for dry runs: upgrade it (nothing was sent)")
	}
	return nil
}

// knowsRequestField reports whether the server's endpoint reads field in
// its requests, by the request schema of its description: a server older
// than the field would ignore it (encoding/json drops unknown fields).
func (c *Client) knowsRequestField(ctx context.Context, endpoint, field string) (bool, error) {
	const subject = "$SRV.INFO.gantry"
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	ctx, unwatch := c.perms.watch(ctx, subject, true)
	defer unwatch()
	msg, err := c.nc.RequestWithContext(ctx, subject, nil)
	if err != nil {
		var denied *jobs.Error
		switch {
		case errors.As(context.Cause(ctx), &denied):
			return false, denied
		case errors.Is(err, nats.ErrNoResponders):
			return false, ErrNoServer
		}
		return false, fmt.Errorf("%s: %w", subject, err)
	}
	var info struct {
		Endpoints []struct {
			Subject  string            `json:"subject"`
			Metadata map[string]string `json:"metadata"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		return false, fmt.Errorf("%s: bad reply: %w", subject, err)
	}
	for _, e := range info.Endpoints {
		if e.Subject == "gantry.api."+endpoint {
			return strings.Contains(e.Metadata["request_schema"], `"`+field+`"`), nil
		}
	}
	return false, nil
}
