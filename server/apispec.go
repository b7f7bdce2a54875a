package server

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go/jetstream"
)

// This file describes the API for `nats micro info gantry`: each endpoint
// carries, in its metadata, a description and JSON Schemas of its request
// and reply. docs/nats-api.md is the prose version.

// APIVersion is the version of the API's request, reply and event payloads.
// Fields are only ever added within a version.
const APIVersion = "1"

// Endpoint metadata keys.
const (
	MetaDescription    = "description"
	MetaRequestSchema  = "request_schema"
	MetaResponseSchema = "response_schema"
	MetaAPIVersion     = "api_version"
)

// endpointSpec documents one endpoint.
type endpointSpec struct {
	desc     string
	req, rep any // zero values of the request and reply types
	// emptyOK: an empty body is a valid request (lists take defaults).
	emptyOK bool
}

var endpointSpecs = map[string]endpointSpec{
	"runs.submit":         {"Create a run (ECS RunTask / Batch SubmitJob shape); a repeated idempotencyKey returns the run it created; fields not read are named in warnings", jobs.SubmitRequest{}, SubmitReply{}, false},
	"runs.get":            {"Get one run", GetRequest{}, jobs.Run{}, false},
	"runs.status":         {"Get one run without its spec and idempotencyKey (what the submit role may read of any run)", GetRequest{}, runStatusDoc{}, false},
	"runs.list":           {"List runs newest first (an array run's children by index), filtered, a page at a time (next is the cursor of the following page)", ListRequest{}, ListReply{}, true},
	"runs.stop":           {"Stop a run: at once if queued, through its worker if running", StopRequest{}, jobs.Run{}, false},
	"runs.rerun":          {"Create a new run as a run was submitted (its task definition revision, overrides, cluster, priority, timeouts, retry strategy, tags, dependencies, pool), the request's fields winning; the reply is the new run without its spec, with warnings", jobs.RerunRequest{}, RerunReply{}, false},
	"runs.logs":           {"Where a run's logs are in GANTRY_LOGS: subjects, message counts and stream sequences, to read them with any JetStream client", LogsRequest{}, LogsReply{}, false},
	"workers.list":        {"List the live workers", WorkersListRequest{}, WorkersListReply{}, true},
	"workers.get":         {"Get one live worker", WorkerRequest{}, jobs.WorkerInfo{}, false},
	"workers.drain":       {"Tell a worker, live or not, to take nothing new", WorkerRequest{}, jobs.WorkerInfo{}, false},
	"workers.activate":    {"Let a drained worker, live or not, take work again", WorkerRequest{}, jobs.WorkerInfo{}, false},
	"taskdefs.register":   {"Register an ECS task definition (the register-task-definition JSON) as the next revision of its family; with dryRun, check it and say which revision it would be, storing nothing", registerRequest{}, RegisterReply{}, false},
	"taskdefs.list":       {"List task definition revisions", TaskDefListRequest{}, TaskDefListReply{}, true},
	"taskdefs.describe":   {"Get a task definition revision: family (latest ACTIVE) or family:revision", TaskDefRequest{}, TaskDefReply{}, false},
	"taskdefs.deregister": {"Mark family:revision INACTIVE", TaskDefRequest{}, TaskDefReply{}, false},
	"pipelines.apply":     {"Create or update a pipeline from its YAML or JSON file (base64 in data); with dryRun, check it as an apply does and say what would change, storing nothing", PipelineApplyRequest{}, PipelineApplyReply{}, false},
	"pipelines.list":      {"List the latest version of every pipeline", struct{}{}, []jobs.Pipeline{}, true},
	"pipelines.describe":  {"Get a version of a pipeline (the latest for version 0)", NameRequest{}, jobs.Pipeline{}, false},
	"pipelines.run":       {"Start a pipeline run with parameters over the defaults", PipelineRunRequest{}, jobs.PipelineRun{}, false},
	"pipelines.runs":      {"List the runs of a pipeline (of all, with no name), newest first", PipelineRunsRequest{}, []jobs.PipelineRun{}, true},
	"pipelines.get":       {"Get a pipeline run with its stages", PipelineRunRef{}, jobs.PipelineRun{}, false},
	"pipelines.status":    {"Get a pipeline run with its stages (in DAG order) and their runs, without its spec, parameters and idempotencyKey (what the submit role may read of any pipeline run)", PipelineRunRef{}, pipelineRunStatusDoc{}, false},
	"pipelines.stop":      {"Stop a pipeline run's running stages and start no other", PipelineRunRef{}, jobs.PipelineRun{}, false},
	"pipelines.backfill":  {"Create one run of a scheduled pipeline per fire time in [from, to]", BackfillRequest{}, []jobs.PipelineRun{}, false},
	"pipelines.retry":     {"Run again, under the same id, the stages of an ended FAILED or CANCELED pipeline run that did not succeed and those downstream of them; the others keep their runs and files", PipelineRunRef{}, jobs.PipelineRun{}, false},
	"schedules.list":      {"List schedules with their last and next fire times", struct{}{}, []ScheduleInfo{}, true},
	"schedules.suspend":   {"Stop a schedule firing", NameRequest{}, map[string]any{}, false},
	"schedules.resume":    {"Let a suspended schedule fire again", NameRequest{}, map[string]any{}, false},
	"schedules.trigger":   {"Run a scheduled pipeline now", NameRequest{}, jobs.PipelineRun{}, false},
	"schedules.create":    {"Schedule a single task definition (stored as a one-stage pipeline of kind task)", ScheduleCreateRequest{}, PipelineApplyReply{}, false},
	"pipelines.delete":    {"Delete every version of a pipeline and its schedule; its past runs stay readable by id. Active runs: failed_precondition, or stopped with force", PipelineDeleteRequest{}, DeleteReply{}, false},
	"pools.set":           {"Create a pool (a cluster-wide bound on how many runs of it run at once) or change its slots; 0 slots pauses it", PoolSetRequest{}, PoolSetReply{}, false},
	"pools.list":          {"List the pools with their slots, the slots in use and the runs waiting for one", struct{}{}, PoolListReply{}, true},
	"pools.delete":        {"Delete a pool. Runs holding or waiting for a slot: failed_precondition, or with force the waiting ones fail and the others run on", PoolDeleteRequest{}, PoolDeleteReply{}, false},
	"webhooks.add":        {"Add a webhook: an http(s) URL POSTed the end of every run and pipeline run its filters select (on: end statuses, FAILED by default; kind, pipelines, families, tags; arrayChildren false leaves out array runs' children, keeping their parents), at least once, signed with its secret when given", WebhookAddRequest{}, jobs.Webhook{}, false},
	"webhooks.list":       {"List the webhooks with their last delivery try and their deliveries pending, delivered and failed (never a secret)", struct{}{}, WebhookListReply{}, true},
	"webhooks.delete":     {"Delete a webhook and drop its pending deliveries", WebhookNameRequest{}, WebhookDeleteReply{}, false},
	"webhooks.test":       {"POST a sample event (a FAILED run) to a webhook now and return the answer; nothing is recorded", WebhookNameRequest{}, WebhookTestReply{}, false},
	"admin.backup":        {"Make a consistent copy of the store (SQLite VACUUM INTO) and put it in the data bucket for the caller to fetch and delete (gantry backup); the reply names the object, its size and SHA-256; the server deletes it after an hour if no one did", BackupRequest{}, BackupReply{}, true},
	"schedules.delete":    {"Delete a task schedule (the runs it started go on); a pipeline's schedule is part of its file: failed_precondition", ScheduleDeleteRequest{}, DeleteReply{}, false},
}

// runStatusDoc describes the reply of runs.status (runStatus): a run
// whose spec and idempotencyKey are left out.
type runStatusDoc struct {
	jobs.Run
	Spec           struct{} `json:"spec" schema:"-"`
	IdempotencyKey struct{} `json:"idempotencyKey" schema:"-"`
}

// pipelineRunStatusDoc describes the reply of pipelines.status
// (pipelineRunStatus): a pipeline run whose spec, parameters and
// idempotencyKey are left out.
type pipelineRunStatusDoc struct {
	jobs.PipelineRun
	Spec           struct{} `json:"spec" schema:"-"`
	Parameters     struct{} `json:"parameters" schema:"-"`
	IdempotencyKey struct{} `json:"idempotencyKey" schema:"-"`
}

// endpointMetadata is what `nats micro info gantry` shows of an endpoint.
func endpointMetadata(subject string) map[string]string {
	md := map[string]string{MetaAPIVersion: APIVersion}
	spec, ok := endpointSpecs[subject]
	if !ok {
		return md
	}
	md[MetaDescription] = spec.desc
	md[MetaRequestSchema] = schemaJSON(spec.req)
	md[MetaResponseSchema] = schemaJSON(spec.rep)
	return md
}

// checked rejects, before the handler sees it, a body that is not JSON, so
// that every endpoint answers a malformed request with invalid_argument.
func checked(subject string, h func(context.Context, []byte) (any, error)) func(context.Context, []byte) (any, error) {
	emptyOK := endpointSpecs[subject].emptyOK
	return func(ctx context.Context, data []byte) (any, error) {
		trimmed := strings.TrimSpace(string(data))
		switch {
		case trimmed == "" && !emptyOK:
			return nil, jobs.Invalid("empty request: want a JSON object (see `nats micro info gantry` for its schema)")
		case trimmed != "" && !json.Valid(data):
			return nil, jobs.Invalid("malformed request: not valid JSON")
		case trimmed != "" && trimmed[0] != '{':
			return nil, jobs.Invalid("malformed request: want a JSON object")
		}
		return h(ctx, data)
	}
}

// errorCode is the API code of err. Errors that come from NATS itself (a
// JetStream timeout, no responders) mean the service cannot do its work
// now: unavailable, worth retrying.
func errorCode(err error) string {
	code := jobs.ErrorCode(err)
	if code == jobs.CodeInternal && (errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)) {
		return jobs.CodeUnavailable
	}
	return code
}

// httpStatuses are the HTTP statuses of the API's error codes, for the
// micro error header Nats-Service-Error-Code (HTTP's numbers, as is usual
// for NATS micro services) and the HTTP API.
var httpStatuses = map[string]int{
	jobs.CodeInvalidArgument:  400,
	jobs.CodePermissionDenied: 403,
	jobs.CodeNotFound:         404,
	jobs.CodeAlreadyExists:    409,
	jobs.CodeFailedPrecond:    412,
	jobs.CodeInternal:         500,
	jobs.CodeUnavailable:      503,
}

// HTTPStatus is the HTTP status of an API error code; 500 for one it does
// not know.
func HTTPStatus(code string) int {
	if n, ok := httpStatuses[code]; ok {
		return n
	}
	return 500
}

func microErrorCode(code string) string { return strconv.Itoa(HTTPStatus(code)) }

// schemaJSON returns v's JSON Schema, compact.
func schemaJSON(v any) string {
	s := schemaOf(reflect.TypeOf(v), 0)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	b, _ := json.Marshal(s)
	return string(b)
}

// maxSchemaDepth bounds how deep schemas describe nested objects; deeper
// ones are described by name, so that the service info stays well under
// NATS's payload limit. docs/nats-api.md and the ECS reference describe
// them in full.
const maxSchemaDepth = 3

var (
	timeType    = reflect.TypeOf(time.Time{})
	durType     = reflect.TypeOf(time.Duration(0))
	rawType     = reflect.TypeOf(json.RawMessage{})
	marshalType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	tagsType    = reflect.TypeOf(jobs.TagList{})
	consType    = reflect.TypeOf(jobs.Constraints{})
	paramType   = reflect.TypeOf(jobs.ParamDecl{})
)

func schemaOf(t reflect.Type, depth int) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == durType:
		return map[string]any{"type": "integer", "description": "nanoseconds"}
	case t == rawType:
		return map[string]any{}
	case t == tagsType:
		// Either shape reads (jobs.TagList.UnmarshalJSON).
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "array", "items": schemaOf(t.Elem(), depth)},
			map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		}}
	case t == paramType:
		// A default, or {"required": true} (jobs.ParamDecl).
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{"type": "object", "properties": map[string]any{"required": map[string]any{"type": "boolean"}}},
		}}
	case t == consType:
		// "K=V", "K!=V", "K" and "!K" strings, or an object
		// (jobs.Constraints).
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
		}}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), depth)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), depth)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
	default:
		return map[string]any{}
	}
	if reflect.PointerTo(t).Implements(marshalType) || t.Implements(marshalType) {
		return map[string]any{"title": t.Name()}
	}
	obj := map[string]any{"type": "object"}
	if t.Name() != "" {
		obj["title"] = t.Name()
	}
	if depth >= maxSchemaDepth {
		obj["description"] = "see docs/nats-api.md"
		return obj
	}
	props := map[string]any{}
	var required []string
	addFields(t, depth, props, &required)
	obj["properties"] = props
	if len(required) > 0 {
		obj["required"] = required
	}
	return obj
}

func addFields(t reflect.Type, depth int, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Tag.Get("schema") == "-" {
			// Not offered; and a name an embedded struct before it
			// gave is taken back (runStatusDoc).
			delete(props, name)
			*required = slices.DeleteFunc(*required, func(r string) bool { return r == name })
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, depth, props, required)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type, depth+1)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}
