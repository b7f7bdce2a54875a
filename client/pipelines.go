package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
)

// ApplyPipeline creates or updates a pipeline from a YAML or JSON file's
// content; changed is false when it equals the latest version.
func (c *Client) ApplyPipeline(ctx context.Context, data []byte) (p *jobs.Pipeline, changed bool, err error) {
	var reply struct {
		Pipeline jobs.Pipeline `json:"pipeline"`
		Changed  bool          `json:"changed"`
	}
	if err := c.call(ctx, "pipelines.apply", map[string]any{"data": data}, &reply); err != nil {
		return nil, false, err
	}
	return &reply.Pipeline, reply.Changed, nil
}

// ListPipelines returns the latest version of every pipeline.
func (c *Client) ListPipelines(ctx context.Context) ([]jobs.Pipeline, error) {
	var out []jobs.Pipeline
	return out, c.call(ctx, "pipelines.list", map[string]any{}, &out)
}

// DescribePipeline returns a version of a pipeline, the latest for 0.
func (c *Client) DescribePipeline(ctx context.Context, name string, version int) (*jobs.Pipeline, error) {
	var p jobs.Pipeline
	if err := c.call(ctx, "pipelines.describe", map[string]any{"name": name, "version": version}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// RunPipeline starts a run of a pipeline with parameters over its defaults.
func (c *Client) RunPipeline(ctx context.Context, name string, params map[string]string) (*jobs.PipelineRun, error) {
	return c.RunPipelinePriority(ctx, name, params, "")
}

// RunPipelinePriority is RunPipeline with the priority of every stage's
// runs (high, normal or low) over the pipeline file's; empty keeps the
// file's.
func (c *Client) RunPipelinePriority(ctx context.Context, name string, params map[string]string, priority jobs.Priority) (*jobs.PipelineRun, error) {
	return c.RunPipelineWith(ctx, name, RunOptions{Parameters: params, Priority: priority})
}

// RunOptions are what a pipeline run may set over its pipeline file.
type RunOptions struct {
	// Parameters are set over the pipeline's defaults.
	Parameters map[string]string
	// Priority is that of every stage's runs (high, normal or low);
	// empty keeps the file's.
	Priority jobs.Priority
	// TimeoutSeconds bounds the run, from its start to its end, over the
	// file's timeoutSeconds; 0 keeps the file's. A run past it ends FAILED
	// with stopCode Timeout.
	TimeoutSeconds int
	// Tags are every stage's runs', over the pipeline file's key by key.
	Tags jobs.TagList
	// Constraints hold for every stage's runs besides the pipeline
	// file's; one that contradicts the file's is refused.
	Constraints jobs.Constraints
	// IdempotencyKey, when set, makes the run once: a second request with
	// the same key for the same pipeline returns the run the first one
	// created, as it is now, whatever else the request says, for as long
	// as that run is kept (--run-retention). A server too old to read the
	// key is an error, before anything is sent.
	IdempotencyKey string
}

// RunPipelineWith is RunPipeline with the options of pipelines.run. The
// run comes back RUNNING, or PENDING (StatusReason says why) while its
// pipeline's maxActiveRuns are taken: it starts when one of them ends.
func (c *Client) RunPipelineWith(ctx context.Context, name string, o RunOptions) (*jobs.PipelineRun, error) {
	req := map[string]any{"name": name, "parameters": o.Parameters}
	if o.Priority != "" {
		req["priority"] = o.Priority
	}
	if o.TimeoutSeconds != 0 {
		req["timeoutSeconds"] = o.TimeoutSeconds
	}
	if len(o.Tags) > 0 {
		req["tags"] = o.Tags
	}
	if len(o.Constraints) > 0 {
		req["constraints"] = o.Constraints
	}
	if o.IdempotencyKey != "" {
		// An older server would drop the key and start a run at each
		// retry: the very duplicate the key is for.
		ok, err := c.knowsRequestField(ctx, "pipelines.run", "idempotencyKey")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("the gantry server is too old for idempotency keys of pipeline runs: upgrade it (no run was started)")
		}
		req["idempotencyKey"] = o.IdempotencyKey
	}
	var pr jobs.PipelineRun
	if err := c.call(ctx, "pipelines.run", req, &pr); err != nil {
		return nil, err
	}
	return &pr, nil
}

// PipelineRuns lists the runs of a pipeline (of all, with an empty name),
// newest first.
func (c *Client) PipelineRuns(ctx context.Context, name string, limit int) ([]jobs.PipelineRun, error) {
	var out []jobs.PipelineRun
	return out, c.call(ctx, "pipelines.runs", map[string]any{"name": name, "limit": limit}, &out)
}

// GetPipelineRun returns one pipeline run with its stages.
func (c *Client) GetPipelineRun(ctx context.Context, id string) (*jobs.PipelineRun, error) {
	var pr jobs.PipelineRun
	if err := c.call(ctx, "pipelines.get", map[string]any{"pipelineRunId": id}, &pr); err != nil {
		return nil, err
	}
	return &pr, nil
}

// StopPipelineRun stops every running stage of a pipeline run and starts
// no other.
func (c *Client) StopPipelineRun(ctx context.Context, id, reason string) (*jobs.PipelineRun, error) {
	var pr jobs.PipelineRun
	if err := c.call(ctx, "pipelines.stop", map[string]any{"pipelineRunId": id, "reason": reason}, &pr); err != nil {
		return nil, err
	}
	return &pr, nil
}

// RetryPipelineRun runs again, under the same id, the stages of an ended
// pipeline run (FAILED or CANCELED) that did not succeed and those
// downstream of them, with the pipeline version and parameters it ran;
// the stages that succeeded keep their runs and files. It returns the run
// RUNNING again, or PENDING (StatusReason says why) while its pipeline's
// maxActiveRuns are taken. A run not ended, one that succeeded, one whose pipeline
// was deleted or whose kept stages' files the data retention deleted is
// ErrFailedPrecondition; an unknown id ErrNotFound.
func (c *Client) RetryPipelineRun(ctx context.Context, id string) (*jobs.PipelineRun, error) {
	var pr jobs.PipelineRun
	if err := c.call(ctx, "pipelines.retry", map[string]any{"pipelineRunId": id}, &pr); err != nil {
		return nil, err
	}
	return &pr, nil
}

// Backfill creates one run of a scheduled pipeline per fire time in
// [from, to].
func (c *Client) Backfill(ctx context.Context, name string, from, to time.Time) ([]jobs.PipelineRun, error) {
	return c.BackfillParallel(ctx, name, from, to, 0)
}

// BackfillParallel is Backfill with at most maxParallel of the runs active
// at once (0: no bound): the others wait PENDING and start, earliest
// scheduled time first, as runs end.
func (c *Client) BackfillParallel(ctx context.Context, name string, from, to time.Time, maxParallel int) ([]jobs.PipelineRun, error) {
	return c.BackfillPriority(ctx, name, from, to, maxParallel, "")
}

// BackfillPriority is BackfillParallel with the priority of every stage's
// runs (low, typically, so that the backfill does not delay scheduled
// runs) over the pipeline file's; empty keeps the file's.
func (c *Client) BackfillPriority(ctx context.Context, name string, from, to time.Time, maxParallel int, priority jobs.Priority) ([]jobs.PipelineRun, error) {
	return c.BackfillWith(ctx, name, from, to, BackfillOptions{MaxParallel: maxParallel, Priority: priority})
}

// BackfillOptions are what a backfill may set.
type BackfillOptions struct {
	// MaxParallel bounds the backfill's active runs (0: no bound).
	MaxParallel int
	// Priority is that of every stage's runs; empty keeps the file's.
	Priority jobs.Priority
	// TimeoutSeconds bounds each run over the file's timeoutSeconds (0
	// keeps the file's), counted from when the run starts, not while it
	// waits PENDING.
	TimeoutSeconds int
	// Tags are every stage's runs', over the pipeline file's key by key.
	Tags jobs.TagList
}

// BackfillWith is Backfill with the options of pipelines.backfill.
func (c *Client) BackfillWith(ctx context.Context, name string, from, to time.Time, o BackfillOptions) ([]jobs.PipelineRun, error) {
	req := map[string]any{"name": name, "from": from, "to": to, "maxParallel": o.MaxParallel}
	if o.Priority != "" {
		req["priority"] = o.Priority
	}
	if o.TimeoutSeconds != 0 {
		req["timeoutSeconds"] = o.TimeoutSeconds
	}
	if len(o.Tags) > 0 {
		req["tags"] = o.Tags
	}
	var out []jobs.PipelineRun
	return out, c.call(ctx, "pipelines.backfill", req, &out)
}

// ScheduleInfo is one schedule with its next fire time.
type ScheduleInfo struct {
	Name string `json:"name"`
	// Kind is pipeline or task (a task schedule); Target is the pipeline's
	// name or the task definition, family[:rev].
	Kind      string        `json:"kind"`
	Target    string        `json:"target"`
	Schedule  jobs.Schedule `json:"schedule"`
	Suspended bool          `json:"suspended"`
	// LastFire is the latest fire time handled: fired, skipped, missed or
	// passed while suspended.
	LastFire *time.Time `json:"lastFire,omitempty"`
	// LastRun is the latest fire time that started (or found) a pipeline
	// run: when the schedule last ran.
	LastRun  *time.Time `json:"lastRun,omitempty"`
	NextFire *time.Time `json:"nextFire,omitempty"`
}

// Schedules lists the schedules.
func (c *Client) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	var out []ScheduleInfo
	return out, c.call(ctx, "schedules.list", map[string]any{}, &out)
}

// SuspendSchedule stops or (suspend=false) resumes a schedule's firing.
func (c *Client) SuspendSchedule(ctx context.Context, name string, suspend bool) error {
	ep := "schedules.resume"
	if suspend {
		ep = "schedules.suspend"
	}
	var out map[string]any
	return c.call(ctx, ep, map[string]any{"name": name}, &out)
}

// TaskSchedule schedules a single task definition: the fields of the
// schedules.create request.
type TaskSchedule struct {
	// Name defaults to the task definition's family.
	Name           string              `json:"name,omitempty"`
	TaskDefinition string              `json:"taskDefinition"` // family[:rev]
	Schedule       jobs.Schedule       `json:"schedule"`
	Cluster        string              `json:"cluster,omitempty"`
	Overrides      *jobs.Overrides     `json:"overrides,omitempty"`
	RetryStrategy  *jobs.RetryStrategy `json:"retryStrategy,omitempty"`
	TimeoutSeconds int                 `json:"timeoutSeconds,omitempty"`
	Priority       jobs.Priority       `json:"priority,omitempty"`
	// Constraints place the runs it makes (the stage's constraints of
	// the pipeline it is kept as).
	Constraints jobs.Constraints `json:"constraints,omitempty"`
}

// CreateTaskSchedule creates or updates the schedule of a task
// definition. It is stored as a one-stage pipeline of kind task, so that
// every schedule and pipeline command works on it; changed is false when
// nothing changed.
func (c *Client) CreateTaskSchedule(ctx context.Context, ts TaskSchedule) (p *jobs.Pipeline, changed bool, err error) {
	var reply struct {
		Pipeline jobs.Pipeline `json:"pipeline"`
		Changed  bool          `json:"changed"`
	}
	if err := c.call(ctx, "schedules.create", ts, &reply); err != nil {
		return nil, false, err
	}
	return &reply.Pipeline, reply.Changed, nil
}

// TriggerSchedule runs a scheduled pipeline now.
func (c *Client) TriggerSchedule(ctx context.Context, name string) (*jobs.PipelineRun, error) {
	var pr jobs.PipelineRun
	if err := c.call(ctx, "schedules.trigger", map[string]any{"name": name}, &pr); err != nil {
		return nil, err
	}
	return &pr, nil
}

// WatchPipelineRun calls fn with the pipeline run each time it changes,
// and returns it once it has ended. It follows the events on
// gantry.events.pipelines.<id> and asks the server every second besides;
// once it has read the run, a server that does not answer (it restarts)
// is waited for, up to ServerGone.
func (c *Client) WatchPipelineRun(ctx context.Context, id string, fn func(*jobs.PipelineRun)) (*jobs.PipelineRun, error) {
	return c.watchPipelineRun(ctx, id, c.GetPipelineRun, fn)
}

// PipelineRunStatus returns a pipeline run without its spec, parameters
// and idempotency key (gantry.api.pipelines.status), its stages in DAG
// order with their runs: what a submit-only user may read of any
// pipeline run, and all that is needed to read its stages' logs.
func (c *Client) PipelineRunStatus(ctx context.Context, id string) (*jobs.PipelineRun, error) {
	var pr jobs.PipelineRun
	if err := c.call(ctx, "pipelines.status", map[string]any{"pipelineRunId": id}, &pr); err != nil {
		return nil, err
	}
	return &pr, nil
}

// WatchPipelineRunStatus is WatchPipelineRun reading PipelineRunStatus:
// a submit-only user may call it.
func (c *Client) WatchPipelineRunStatus(ctx context.Context, id string, fn func(*jobs.PipelineRun)) (*jobs.PipelineRun, error) {
	return c.watchPipelineRun(ctx, id, c.PipelineRunStatus, fn)
}

func (c *Client) watchPipelineRun(ctx context.Context, id string, get func(context.Context, string) (*jobs.PipelineRun, error),
	fn func(*jobs.PipelineRun)) (*jobs.PipelineRun, error) {
	wake := make(chan struct{}, 1)
	sub, err := c.nc.Subscribe("gantry.events.pipelines."+id, func(*nats.Msg) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var (
		last      []byte
		read      bool      // the run was read once
		downSince time.Time // since when the server has not answered
	)
	for {
		pr, err := get(ctx, id)
		switch {
		case err == nil:
			read, downSince = true, time.Time{}
		case !read || !transient(err) || ctx.Err() != nil:
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		default:
			// Once following, a server that does not answer for a while
			// (it restarts) stops nothing, as with Wait: the run goes on,
			// and its pipeline events wake the next read.
			if downSince.IsZero() {
				downSince = time.Now()
			}
			if time.Since(downSince) >= ServerGone {
				return nil, fmt.Errorf("following pipeline run %s: the server has not answered for %s: %w", id, ServerGone, err)
			}
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-wake:
			case <-tick.C:
			}
			continue
		}
		if b, _ := json.Marshal(pr); fn != nil && string(b) != string(last) {
			last = b
			fn(pr)
		}
		if pr.Status.Terminal() {
			return pr, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-wake:
		case <-tick.C:
		}
	}
}

// Deleted is what deleting a pipeline or a schedule did.
type Deleted struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	// Stopped are the pipeline runs a forced pipeline delete stopped.
	Stopped []string `json:"stopped,omitempty"`
	// Running are the pipeline runs a deleted schedule had started, which
	// go on to their end.
	Running []string `json:"running,omitempty"`
}

// DeletePipeline deletes every version of a pipeline and its schedule,
// which stops firing at once. Its past pipeline runs stay readable with
// GetPipelineRun. A pipeline with active (PENDING or RUNNING) runs is not
// deleted, an ErrFailedPrecondition naming them, unless force, which
// stops them. A pipeline whose runs trigger another pipeline is not
// deleted either (ErrFailedPrecondition); an unknown name is ErrNotFound.
func (c *Client) DeletePipeline(ctx context.Context, name string, force bool) (*Deleted, error) {
	var d Deleted
	if err := c.call(ctx, "pipelines.delete", map[string]any{"name": name, "force": force}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DeleteSchedule deletes a task schedule (CreateTaskSchedule); the runs it
// started go on (Deleted.Running). The schedule of a pipeline is part of
// the pipeline: deleting it apart is an ErrFailedPrecondition (apply the
// pipeline without it, suspend it, or delete the pipeline). An unknown
// name is ErrNotFound.
func (c *Client) DeleteSchedule(ctx context.Context, name string) (*Deleted, error) {
	var d Deleted
	if err := c.call(ctx, "schedules.delete", map[string]any{"name": name}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
