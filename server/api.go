package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/worker"
	gojson "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// GetRequest names one run.
type GetRequest struct {
	RunID string `json:"runId"`
}

// StopRequest asks to stop a run.
type StopRequest struct {
	RunID  string `json:"runId"`
	Reason string `json:"reason,omitempty"`
}

// ListRequest filters runs: by default the runs that have not ended.
type ListRequest struct {
	Statuses []jobs.Status `json:"statuses,omitempty"`
	All      bool          `json:"all,omitempty"`
	// Limit is the page size: 100 by default, at most 1000.
	Limit int `json:"limit,omitempty"`
	// Before is the cursor: the next of the previous page's reply (with
	// ArrayJobID, the last child of that page: the next page is the
	// children after it by index).
	Before string `json:"before,omitempty"`
	// TaskDefinition keeps the runs of a family, or of family:revision.
	TaskDefinition string `json:"taskDefinition,omitempty"`
	Cluster        string `json:"cluster,omitempty"`
	Worker         string `json:"worker,omitempty"`
	// CreatedAfter and CreatedBefore bound the creation time.
	CreatedAfter  *time.Time `json:"createdAfter,omitempty"`
	CreatedBefore *time.Time `json:"createdBefore,omitempty"`
	// Tags keeps the runs that have every one of these tags, key and
	// value ({"team": "data"}); TagKeys those that have a tag of each of
	// these keys, whatever its value.
	Tags    map[string]string `json:"tags,omitempty"`
	TagKeys []string          `json:"tagKeys,omitempty"`
	// ArrayJobID lists the children of that array run (jobs/arrayrun.go)
	// by index, PARENT-0 first; without it an array's children are left
	// out, its parent listed, as AWS Batch's list-jobs does without
	// --array-job-id.
	ArrayJobID string `json:"arrayJobId,omitempty"`
}

// ListReply is a page of runs, newest first (an array's children by
// index).
type ListReply struct {
	Runs []jobs.Run `json:"runs"`
	// Next is the cursor (Before) of the next page, empty on the last.
	Next string `json:"next,omitempty"`
}

// ErrorReply is the body of every failed request.
type ErrorReply struct {
	Error jobs.Error `json:"error"`
}

// service serves the API until the stop it returns is called.
func (s *Server) service(ctx context.Context) (stop func(), err error) {
	endpoints := []struct {
		name, subject string
		h             func(context.Context, []byte) (any, error)
	}{
		{"runs_submit", "runs.submit", s.apiSubmit},
		{"runs_get", "runs.get", s.apiGet},
		{"runs_status", "runs.status", s.apiStatus},
		{"runs_stop", "runs.stop", s.apiStop},
		{"runs_rerun", "runs.rerun", s.apiRerun}, // rerun.go
		{"runs_logs", "runs.logs", s.apiLogs},
		{"workers_list", "workers.list", s.apiWorkersList},
		{"workers_get", "workers.get", s.apiWorkersGet},
		{"workers_drain", "workers.drain", s.apiWorkersDrain},
		{"workers_activate", "workers.activate", s.apiWorkersActivate},
		{"taskdefs_register", "taskdefs.register", s.apiRegisterTaskDef},
		{"taskdefs_list", "taskdefs.list", s.apiListTaskDefs},
		{"taskdefs_describe", "taskdefs.describe", s.apiDescribeTaskDef},
		{"taskdefs_deregister", "taskdefs.deregister", s.apiDeregisterTaskDef},
		{"pipelines_apply", "pipelines.apply", s.apiPipelineApply},
		{"pipelines_list", "pipelines.list", s.apiPipelineList},
		{"pipelines_describe", "pipelines.describe", s.apiPipelineDescribe},
		{"pipelines_run", "pipelines.run", s.apiPipelineRun},
		{"pipelines_runs", "pipelines.runs", s.apiPipelineRuns},
		{"pipelines_get", "pipelines.get", s.apiPipelineGet},
		{"pipelines_status", "pipelines.status", s.apiPipelineStatus},
		{"pipelines_stop", "pipelines.stop", s.apiPipelineStop},
		{"pipelines_backfill", "pipelines.backfill", s.apiPipelineBackfill},
		{"pipelines_retry", "pipelines.retry", s.apiPipelineRetry}, // retry.go
		{"schedules_list", "schedules.list", s.apiScheduleList},
		{"schedules_suspend", "schedules.suspend", s.apiScheduleSuspend},
		{"schedules_resume", "schedules.resume", s.apiScheduleResume},
		{"schedules_trigger", "schedules.trigger", s.apiScheduleTrigger},
		{"schedules_create", "schedules.create", s.apiScheduleCreate}, // taskschedule.go
		{"pipelines_delete", "pipelines.delete", s.apiPipelineDelete}, // delete.go
		{"schedules_delete", "schedules.delete", s.apiScheduleDelete},
		{"pools_set", "pools.set", s.apiPoolSet}, // pools.go
		{"pools_list", "pools.list", s.apiPoolList},
		{"pools_delete", "pools.delete", s.apiPoolDelete},
		{"webhooks_add", "webhooks.add", s.apiWebhookAdd}, // webhooks.go
		{"webhooks_list", "webhooks.list", s.apiWebhookList},
		{"webhooks_delete", "webhooks.delete", s.apiWebhookDelete},
		{"webhooks_test", "webhooks.test", s.apiWebhookTest},
		{"admin_backup", "admin.backup", s.apiBackup}, // backup.go
		// Last: endpoints go live one by one as they are added, and clients
		// (gantry ps, tests, bench) take an answer from runs.list to mean
		// the whole API is up.
		{"runs_list", "runs.list", s.apiList},
	}
	stats := make(map[string]*endpointStats, len(endpoints))
	for _, e := range endpoints {
		stats[e.name] = new(endpointStats)
	}
	nc := s.q.Conn()
	svc, err := micro.AddService(nc, micro.Config{
		Name:        serviceName,
		Version:     Version,
		Metadata:    serviceMetadata(), // alone.go
		Description: "gantry batch and ETL job engine: runs, task definitions, pipelines",
		// The stats' data: what micro's own counts miss (see endpointStats).
		StatsHandler: func(e *micro.Endpoint) any {
			if st := stats[e.Name]; st != nil {
				return st.snapshot()
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("micro service: %w", err)
	}
	g := svc.AddGroup("gantry.api")
	// Requests are handled concurrently, up to maxInFlight at once: a
	// subscription's callbacks come one at a time, and one slow request (a
	// store write, a publish) must not hold up the others. Waiting for a
	// free place holds the subscription, which pushes back on clients.
	//
	// The goroutine answers on the connection, not through the micro
	// request: micro reads the request's outcome once the handler has
	// returned, so answering through it from another goroutine is a data
	// race. micro's error count and processing time therefore miss these
	// requests; endpointStats keeps them. The goroutines are kept for
	// the next requests: a new one for each grew its stack to encode the
	// reply, about 3% of the control plane's CPU under load.
	//
	// Requests outlive ctx: stop answers those taken before it and refuses
	// the rest (see apiHandlers).
	inFlight := make(chan struct{}, maxInFlight)
	handlers := newAPIHandlers(ctx)
	answer := func(to string, msg *nats.Msg) {
		if to == "" {
			return // a publish, not a request: nobody to answer
		}
		msg.Subject = to
		_ = nc.PublishMsg(msg)
	}
	for _, e := range endpoints {
		h, st := checked(e.subject, e.h), stats[e.name] // apispec.go
		timeout := cmp.Or(endpointTimeouts[e.subject], 30*time.Second)
		err := g.AddEndpoint(e.name, micro.HandlerFunc(func(req micro.Request) {
			data, to := req.Data(), req.Reply()
			if queue.JetStreamDelivery(to) {
				s.cfg.log.Warn().Str("endpoint", e.subject).Str("from", to).
					Msg("ignored a message a JetStream consumer delivered to the API: a user's consumer on gantry's streams delivers there")
				return
			}
			inFlight <- struct{}{}
			taken := handlers.Go(func(ctx context.Context) {
				defer func() { <-inFlight }()
				start := time.Now()
				rctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				msg := replyMsg(h(rctx, data))
				st.record(time.Since(start), msg)
				answer(to, msg)
			})
			if !taken {
				<-inFlight
				msg := errorMsg(&jobs.Error{Code: jobs.CodeUnavailable, Message: "the server is stopping: try again"})
				st.record(0, msg)
				answer(to, msg)
			}
		}), micro.WithEndpointSubject(e.subject), micro.WithEndpointMetadata(endpointMetadata(e.subject)))
		if err != nil {
			svc.Stop()
			handlers.Stop()
			return nil, fmt.Errorf("endpoint %s: %w", e.subject, err)
		}
	}
	return func() {
		svc.Stop()
		handlers.Stop()
	}, nil
}

// endpointTimeouts are the endpoints whose requests may take longer than
// 30 s.
var endpointTimeouts = map[string]time.Duration{"admin.backup": backupTimeout}

// apiHandlers runs the API's requests on kept goroutines, and lets the
// server finish those it has taken before it stops: a submission cut off
// at shutdown was stored, but its job was queued only at the next start
// and its submitter got no answer.
type apiHandlers struct {
	pool *worker.Pool
	// ctx is the requests': it ends only if they outlast apiDrain.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.RWMutex
	stopped bool
}

// apiDrain is how long a stopping server waits for the requests it has
// taken before it cancels them.
const apiDrain = 10 * time.Second

func newAPIHandlers(ctx context.Context) *apiHandlers {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &apiHandlers{pool: worker.NewPool(), ctx: ctx, cancel: cancel}
}

// Go runs f on the pool and says so, or says no once Stop has begun.
func (h *apiHandlers) Go(f func(context.Context)) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.stopped {
		return false
	}
	h.pool.Go(func() { f(h.ctx) })
	return true
}

// Stop refuses new requests and waits for those taken, cancelling them
// if they take longer than apiDrain.
func (h *apiHandlers) Stop() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.pool.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(apiDrain):
	}
	h.cancel()
	<-done
	h.pool.Close()
}

// maxInFlight bounds the API requests handled at once.
const maxInFlight = 256

// replyMsg is the answer to a request: the reply's JSON, or the error's
// with the micro error headers (Nats-Service-Error-Code carries the
// HTTP-like number, Nats-Service-Error the code and the message's first
// line). The caller sets the subject.
func replyMsg(reply any, err error) *nats.Msg {
	if err == nil {
		data, merr := gojson.Marshal(reply) // the same bytes as encoding/json's, faster
		if merr == nil {
			return &nats.Msg{Data: data}
		}
		err = merr
	}
	return errorMsg(err)
}

// errorMsg is the answer to a request that failed.
func errorMsg(err error) *nats.Msg {
	code := errorCode(err) // apispec.go
	if errors.Is(err, jobs.ErrNotFound) {
		code = jobs.CodeNotFound
	}
	msg := &nats.Msg{Header: nats.Header{}}
	msg.Data, _ = json.Marshal(ErrorReply{Error: jobs.Error{Code: code, Message: err.Error()}})
	msg.Header.Set(micro.ErrorCodeHeader, microErrorCode(code))
	msg.Header.Set(micro.ErrorHeader, code+": "+firstLine(err.Error()))
	return msg
}

// endpointStats counts an endpoint's answers as `nats micro stats gantry`
// shows them in each endpoint's data: micro counts the requests, but its
// handlers return before the answer (see service), so its own error count
// stays at zero and its processing time is only the hand-over.
type endpointStats struct {
	answered, errors, nanos atomic.Int64
	mu                      sync.Mutex
	lastError               string
}

func (st *endpointStats) record(took time.Duration, msg *nats.Msg) {
	st.answered.Add(1)
	st.nanos.Add(int64(took))
	if h := msg.Header.Get(micro.ErrorHeader); h != "" {
		st.errors.Add(1)
		st.mu.Lock()
		st.lastError = h
		st.mu.Unlock()
	}
}

// endpointData is the data of an endpoint's stats; times in nanoseconds,
// as micro gives its own.
type endpointData struct {
	NumAnswered           int64  `json:"num_answered"`
	NumErrors             int64  `json:"num_errors"`
	LastError             string `json:"last_error,omitempty"`
	ProcessingTime        int64  `json:"processing_time"`
	AverageProcessingTime int64  `json:"average_processing_time"`
}

func (st *endpointStats) snapshot() endpointData {
	d := endpointData{NumAnswered: st.answered.Load(), NumErrors: st.errors.Load(), ProcessingTime: st.nanos.Load()}
	if d.NumAnswered > 0 {
		d.AverageProcessingTime = d.ProcessingTime / d.NumAnswered
	}
	st.mu.Lock()
	d.LastError = st.lastError
	st.mu.Unlock()
	return d
}

func firstLine(s string) string {
	for i := range len(s) {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

func decode(data []byte, v any) error {
	if len(data) == 0 {
		return jobs.Invalid("empty request: want a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jobs.Invalid("malformed request: " + err.Error())
	}
	return nil
}

func (s *Server) apiSubmit(ctx context.Context, data []byte) (any, error) {
	if len(data) == 0 {
		return nil, jobs.Invalid("empty request: want a JSON object")
	}
	req, warnings, err := decodeSubmit(data)
	if err != nil {
		return nil, jobs.Invalid("malformed request: " + err.Error()) // as decode
	}
	if err := fromOutside(&req); err != nil {
		return nil, err
	}
	r, created, err := s.submit(ctx, &req)
	if err != nil {
		return nil, err
	}
	return withWarnings(submitReply(r, created), warnings), nil
}

// SubmitReply answers runs.submit (and a durable submission's
// Gantry-Reply-To) when the request had fields the server did not read:
// the run, and a warning naming each field. Without such fields the reply
// is the run alone.
type SubmitReply struct {
	jobs.Run
	// Warnings name the fields of the request that were not read, each
	// with what to use instead where there is something
	// (jobs.UnreadSubmitFields).
	Warnings []string `json:"warnings,omitempty"`
}

// withWarnings is the reply of a submission that made or found r.
func withWarnings(r *jobs.Run, warnings []string) any {
	if len(warnings) == 0 {
		return r
	}
	return &SubmitReply{Run: *r, Warnings: warnings}
}

// decodeSubmit decodes a submission and names the fields it has that a
// SubmitRequest does not read. Unknown fields are not refused: clients
// send ECS's and Batch's on purpose. The request is decoded once with
// DisallowUnknownFields; only when that fails (an unknown field, or a
// malformed request) is it decoded again as before, for encoding/json's
// own error, and its keys walked for the warnings.
func decodeSubmit(data []byte) (req jobs.SubmitRequest, warnings []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) == nil && onlySpace(data[dec.InputOffset():]) {
		return req, nil, nil
	}
	req = jobs.SubmitRequest{}
	if err := json.Unmarshal(data, &req); err != nil {
		return req, nil, err
	}
	return req, jobs.UnreadSubmitFields(data), nil
}

// onlySpace reports whether b is JSON whitespace, as may follow the value.
func onlySpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// submitReply is the run a submission is answered with. A submission
// whose idempotency key found a run gets it without its spec: the run
// may be someone else's (keys are shared by every user who may submit),
// and its spec holds that user's task definition, command and
// environment, which the submit role may not read (runs.status). The
// server cannot tell who asks, so every such reply is without it; the
// run's own submitter knows what it sent, and an operator reads the
// spec with runs.get.
func submitReply(r *jobs.Run, created bool) *jobs.Run {
	if created {
		return r
	}
	found := *r
	found.Spec = jobs.RunSpec{}
	return &found
}

// runStatus is a run as runs.status shows it: without its spec, and
// without its idempotency key, which is its submitter's input verbatim
// (it may name an order, a customer) and a handle on it: whoever knows
// a key's pattern can take the next key first, and the submission of
// the key's owner then only finds that run.
func runStatus(r *jobs.Run) *jobs.Run {
	st := *r
	st.Spec = jobs.RunSpec{}
	st.IdempotencyKey = ""
	return &st
}

// fromOutside refuses what only gantry itself may put in a submission
// that comes over NATS: a stage's context, which the pipeline scheduler
// sets on the runs of stages. With it anyone who may submit could read a
// pipeline's stage files or replace them (they are named by pipeline run
// and stage).
func fromOutside(req *jobs.SubmitRequest) error {
	if req.Stage != nil {
		return jobs.Invalid("stage: set by gantry on the runs of pipeline stages, not in a submission; run a pipeline with gantry pipeline run")
	}
	// Nor may it take a stage run's idempotency key (scheduler.StageRequest):
	// submitted first, its run would be adopted as the stage's.
	if strings.HasPrefix(req.IdempotencyKey, stageKeyPrefix) {
		return jobs.Invalid(fmt.Sprintf("idempotencyKey %q: keys starting %q are gantry's own, for the runs of pipeline stages", req.IdempotencyKey, stageKeyPrefix))
	}
	return nil
}

// stageKeyPrefix starts the idempotency keys of stage runs.
const stageKeyPrefix = "pipeline/"

func (s *Server) apiGet(ctx context.Context, data []byte) (any, error) {
	var req GetRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, jobs.Invalid("runId: required")
	}
	r, err := s.db.GetRun(ctx, req.RunID)
	return r, s.explainPruned(err, req.RunID) // history.go
}

// apiStatus answers runs.status, the submit role's runs.get: NATS does
// not tell the server who asks, so the view is the same for everyone.
func (s *Server) apiStatus(ctx context.Context, data []byte) (any, error) {
	var req GetRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, jobs.Invalid("runId: required")
	}
	r, err := s.db.GetRun(ctx, req.RunID)
	if err != nil {
		return nil, s.explainPruned(err, req.RunID) // history.go
	}
	return runStatus(r), nil
}

func (s *Server) apiStop(ctx context.Context, data []byte) (any, error) {
	var req StopRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, jobs.Invalid("runId: required")
	}
	r, err := s.Stop(ctx, req.RunID, req.Reason)
	if err != nil {
		return nil, err
	}
	s.pipelinesChanged(ctx, r) // a stage run canceled while queued
	return r, nil
}

func (s *Server) apiList(ctx context.Context, data []byte) (any, error) {
	var req ListRequest
	if len(data) > 0 {
		if err := decode(data, &req); err != nil {
			return nil, err
		}
	}
	return s.listRuns(ctx, req) // runs_api.go
}
