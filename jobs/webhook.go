package jobs

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Webhooks: HTTP endpoints the server POSTs to when runs and pipeline runs
// end (server/webhooks.go). A hook's filters select the ends it hears of:
// an end status among On, and, when given, the kind (runs or pipeline
// runs), a pipeline among Pipelines, a task definition family among
// Families, every one of Tags, and no array run's child unless
// ArrayChildren allows. Filters AND together; the values of one filter
// OR.

// Webhook is one hook as stored and listed. Its secret is never shown:
// Signed says whether it has one.
type Webhook struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// On are the end statuses it hears of: SUCCEEDED, FAILED, CANCELED.
	On []Status `json:"on"`
	// Kind keeps only runs ("runs") or only pipeline runs
	// ("pipelineRuns"); empty keeps both. A stage's run that fails also
	// fails its pipeline run: a hook on FAILED hears of both unless it
	// names one kind.
	Kind string `json:"kind,omitempty"`
	// Pipelines keeps the pipeline runs of these pipelines and the runs
	// of their stages.
	Pipelines []string `json:"pipelines,omitempty"`
	// Families keeps the runs of these task definition families (no
	// pipeline run has one).
	Families []string `json:"families,omitempty"`
	// Tags keeps the runs and pipeline runs that have every one of these.
	Tags map[string]string `json:"tags,omitempty"`
	// ArrayChildren false leaves out the ends of array runs' children
	// (the runs with an arrayJobId), keeping their parent's, which counts
	// them and names the first that failed: an array of 10,000 that fails
	// is one POST, not 10,001. Left out (nil) the hook hears of them, as
	// hooks stored before the field do. The children of a pipeline's
	// array stage are no array run's: they have no parent run to stand
	// for them, and are heard of as any stage's run.
	ArrayChildren *bool `json:"arrayChildren,omitempty"`
	// Secret is the HMAC-SHA256 key of X-Gantry-Signature; empty for none.
	Secret    string    `json:"-"`
	Signed    bool      `json:"signed"`
	CreatedAt time.Time `json:"createdAt"`
}

// HearsArrayChildren reports whether h hears of the ends of array runs'
// children (ArrayChildren not false).
func (h *Webhook) HearsArrayChildren() bool { return h.ArrayChildren == nil || *h.ArrayChildren }

// CheckWebhookArrayChildren says why a hook of kind (as ParseWebhookKind
// returns it) cannot leave out array children, at path, or returns nil:
// a hook on pipeline runs alone hears of no run, so of no array child,
// and leaving them out there would read as if it left out something
// else (the children of a pipeline's array stage, which it never hears
// of either).
func CheckWebhookArrayChildren(path, kind string) error {
	if kind == WebhookOnlyPipelineRuns {
		return &FieldError{path, "no pipeline run is an array run's child: with kind pipelineRuns the hook hears of no run, so of no child to leave out: drop one or the other"}
	}
	return nil
}

// WebhookStatuses are the statuses a hook may hear of: the end statuses
// of runs and pipeline runs.
var WebhookStatuses = []Status{StatusSucceeded, StatusFailed, StatusCanceled}

// Kinds of webhook events.
const (
	WebhookKindRun         = "run"
	WebhookKindPipelineRun = "pipelineRun"
)

// Values of a hook's Kind filter, as gantry webhook add --kind takes them.
const (
	WebhookOnlyRuns         = "runs"
	WebhookOnlyPipelineRuns = "pipelineRuns"
)

// ParseWebhookKind reads a hook's kind filter, any case: "runs",
// "pipelineRuns", or "pipelines" as gantry events --kind spells it; ""
// is both. path names the field or flag in errors.
func ParseWebhookKind(path, s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "runs":
		return WebhookOnlyRuns, nil
	case "pipelineruns", "pipelines":
		return WebhookOnlyPipelineRuns, nil
	}
	return "", &FieldError{path, fmt.Sprintf("%q: want runs or pipelineRuns (leave it out for both)", s)}
}

// ParseWebhookStatuses reads a command line's comma-separated statuses,
// any case ("failed,SUCCEEDED"); path names the flag in errors.
func ParseWebhookStatuses(path, s string) ([]Status, error) {
	var (
		out  []Status
		errs []error
	)
	for part := range strings.SplitSeq(s, ",") {
		st := Status(strings.ToUpper(strings.TrimSpace(part)))
		if err := checkWebhookStatus(path, st); err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out, errors.Join(errs...)
}

func checkWebhookStatus(path string, st Status) error {
	if slices.Contains(WebhookStatuses, st) {
		return nil
	}
	if st == "" {
		return &FieldError{path, "empty status: want SUCCEEDED, FAILED or CANCELED"}
	}
	return &FieldError{path, fmt.Sprintf("%q: not an end status: want SUCCEEDED, FAILED or CANCELED%s", string(st), StatusHint(string(st), WebhookStatuses))}
}

// CheckWebhookName says why name cannot name a hook, at path, or returns nil.
func CheckWebhookName(path, name string) error {
	if name == "" {
		return &FieldError{path, "empty: a hook name is letters, digits, '-' and '_', at most 255"}
	}
	if !validName(name) {
		return &FieldError{path, fmt.Sprintf("%q: a hook name is letters, digits, '-' and '_', at most 255", name)}
	}
	return nil
}

// MaxWebhookURLLen bounds a hook's URL.
const MaxWebhookURLLen = 2048

// CheckWebhookURL says why raw cannot be a hook's URL, at path, or
// returns nil: an absolute http or https URL with a host.
func CheckWebhookURL(path, raw string) error {
	if raw == "" {
		return &FieldError{path, "required: the http:// or https:// URL to POST to"}
	}
	if len(raw) > MaxWebhookURLLen {
		return &FieldError{path, fmt.Sprintf("%d bytes: at most %d", len(raw), MaxWebhookURLLen)}
	}
	if !strings.Contains(raw, "://") {
		// 127.0.0.1:8080 or hooks.example.com/x: Go's parser would answer
		// "first path segment in URL cannot contain colon" or an empty
		// scheme; what is missing is http:// or https://.
		return &FieldError{path, fmt.Sprintf("%q: no http:// or https:// in front: want http(s)://HOST[:PORT]/PATH", raw)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return &FieldError{path, fmt.Sprintf("%q: %v", raw, errors.Unwrap(err))}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return &FieldError{path, fmt.Sprintf("%q: scheme %q: want http or https", raw, u.Scheme)}
	case u.Opaque != "" || u.Hostname() == "":
		return &FieldError{path, fmt.Sprintf("%q: no host: want http(s)://HOST[:PORT]/PATH", raw)}
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return &FieldError{path, fmt.Sprintf("%q: a fragment (#...) is never sent: leave it out", raw)}
	}
	return nil
}

// RedactedURL is the hook's URL as it is shown, after its add: a
// password in it (https://user:PASSWORD@host/) reads "xxxxx", as the
// secret is never shown. The rest of the URL is shown whole.
func (h *Webhook) RedactedURL() string {
	u, err := url.Parse(h.URL)
	if err != nil || u.User == nil {
		return h.URL
	}
	return u.Redacted()
}

// Validate collects every problem of h, each naming its field. Empty On
// is taken as FAILED (Normalize).
func (h *Webhook) Validate() error {
	var errs []error
	if err := CheckWebhookName("name", h.Name); err != nil {
		errs = append(errs, err)
	}
	if err := CheckWebhookURL("url", h.URL); err != nil {
		errs = append(errs, err)
	}
	for i, st := range h.On {
		if err := checkWebhookStatus(fmt.Sprintf("on[%d]", i), st); err != nil {
			errs = append(errs, err)
		}
	}
	if h.Kind != "" && h.Kind != WebhookOnlyRuns && h.Kind != WebhookOnlyPipelineRuns {
		errs = append(errs, &FieldError{"kind", fmt.Sprintf("%q: want runs or pipelineRuns (leave it out for both)", h.Kind)})
	} else if h.Kind == WebhookOnlyPipelineRuns && len(h.Families) > 0 {
		errs = append(errs, &FieldError{"families", "no pipeline run has a family: with kind pipelineRuns the hook would hear of nothing"})
	}
	if !h.HearsArrayChildren() {
		if err := CheckWebhookArrayChildren("arrayChildren", h.Kind); err != nil {
			errs = append(errs, err)
		}
	}
	for i, p := range h.Pipelines {
		if !validName(p) {
			errs = append(errs, &FieldError{fmt.Sprintf("pipelines[%d]", i), fmt.Sprintf("%q: a pipeline name is letters, digits, '-' and '_'", p)})
		}
	}
	for i, f := range h.Families {
		if !validName(f) {
			errs = append(errs, &FieldError{fmt.Sprintf("families[%d]", i), fmt.Sprintf("%q: a family is letters, digits, '-' and '_' (no :revision)", f)})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(h.Tags)) {
		path := fmt.Sprintf("tags[%q]", k)
		if err := CheckTagKey(path, k); err != nil {
			errs = append(errs, err)
		}
		if err := CheckTagValue(path, h.Tags[k]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Normalize gives h its defaults: On is FAILED when empty; statuses are
// upper case and each listed once; Kind is spelled as stored (an unknown
// one is left for Validate); ArrayChildren true, the default, is left
// out.
func (h *Webhook) Normalize() {
	if h.HearsArrayChildren() {
		h.ArrayChildren = nil
	}
	if k, err := ParseWebhookKind("kind", h.Kind); err == nil {
		h.Kind = k
	}
	var on []Status
	for _, st := range h.On {
		st = Status(strings.ToUpper(string(st)))
		if !slices.Contains(on, st) {
			on = append(on, st)
		}
	}
	if len(on) == 0 {
		on = []Status{StatusFailed}
	}
	h.On = on
	h.Signed = h.Secret != ""
}

// Matches reports whether h hears of ev. It reads only memory: the store
// calls it for every end while hooks exist, on the fields RunEndMatch and
// PipelineRunEndMatch fill (a field read here must be filled there).
func (h *Webhook) Matches(ev *WebhookEvent) bool {
	if !slices.Contains(h.On, ev.Status) {
		return false
	}
	switch h.Kind {
	case WebhookOnlyRuns:
		if ev.Kind != WebhookKindRun {
			return false
		}
	case WebhookOnlyPipelineRuns:
		if ev.Kind != WebhookKindPipelineRun {
			return false
		}
	}
	if ev.ArrayJobID != "" && !h.HearsArrayChildren() {
		return false
	}
	if len(h.Pipelines) > 0 && (ev.Pipeline == "" || !slices.Contains(h.Pipelines, ev.Pipeline)) {
		return false
	}
	if len(h.Families) > 0 {
		fam, _, _ := strings.Cut(ev.TaskDefinition, ":")
		if fam == "" || !slices.Contains(h.Families, fam) {
			return false
		}
	}
	for k, v := range h.Tags {
		if got, ok := ev.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// WebhookEvent is the JSON body a hook receives: the end of a run or of a
// pipeline run. The same end has the same EventID, however many times it
// is delivered (at least once).
type WebhookEvent struct {
	EventID string `json:"eventId"`
	// Kind is "run" or "pipelineRun".
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Status Status `json:"status"`
	// StopCode, ExitCode and Reason are the run's stopCode, exitCode and
	// stoppedReason (a pipeline run has no exit code).
	StopCode string `json:"stopCode,omitempty"`
	ExitCode *int   `json:"exitCode,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// TaskDefinition is a run's family:revision.
	TaskDefinition string `json:"taskDefinition,omitempty"`
	Cluster        string `json:"cluster,omitempty"`
	// Pipeline is a pipeline run's pipeline, or the pipeline of a stage's
	// run, which also has PipelineRunID and Stage, and ArrayIndex on a run
	// of an array stage (its spec.stage.arrayIndex): which of the stage's
	// runs it is, as its run id alone said before.
	Pipeline      string            `json:"pipeline,omitempty"`
	PipelineRunID string            `json:"pipelineRunId,omitempty"`
	Stage         string            `json:"stage,omitempty"`
	ArrayIndex    *int              `json:"arrayIndex,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	// ArrayJobID is an array child's parent, on a child's event alone: a
	// hook with ArrayChildren false is sent none of the events that have
	// it, and a receiver can leave them out so too. ArrayProperties are
	// as in the run's JSON: a parent's size and its children by status, a
	// child's index (AWS Batch's job state change events carry them so
	// too).
	ArrayJobID      string           `json:"arrayJobId,omitempty"`
	ArrayProperties *ArrayProperties `json:"arrayProperties,omitempty"`
	CreatedAt       time.Time        `json:"createdAt"`
	StartedAt       *time.Time       `json:"startedAt"`
	StoppedAt       *time.Time       `json:"stoppedAt"`
	// Summary is one line for a chat message or a mail subject.
	Summary string `json:"summary"`
}

// RunEndMatch is the part of r's end event that Webhook.Matches reads
// (its kind, status, pipeline, task definition, tags and array parent),
// and nothing else: the store matches an end against the hooks with it, building the
// whole event (RunEndEvent, its summary the dearest part) only for an end
// that some hook hears of.
func RunEndMatch(r *Run) WebhookEvent {
	ev := WebhookEvent{Kind: WebhookKindRun, Status: r.Status, TaskDefinition: r.TaskDefinition, Tags: r.Tags, ArrayJobID: r.ArrayJobID}
	if st := r.Spec.Stage; st != nil {
		ev.Pipeline = st.Pipeline
	}
	return ev
}

// PipelineRunEndMatch is RunEndMatch of a pipeline run's end.
func PipelineRunEndMatch(pr *PipelineRun) WebhookEvent {
	return WebhookEvent{Kind: WebhookKindPipelineRun, Status: pr.Status, Pipeline: pr.Pipeline, Tags: pr.Tags}
}

// RunEndEvent is the event of r's end.
func RunEndEvent(r *Run) *WebhookEvent {
	ev := &WebhookEvent{EventID: "run/" + r.RunID, Kind: WebhookKindRun, ID: r.RunID, Status: r.Status,
		StopCode: r.StopCode, ExitCode: r.ExitCode, Reason: r.StoppedReason, TaskDefinition: r.TaskDefinition,
		Cluster: r.Cluster, Tags: r.Tags, ArrayJobID: r.ArrayJobID, ArrayProperties: r.ArrayProperties,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, StoppedAt: r.FinishedAt}
	if st := r.Spec.Stage; st != nil {
		ev.Pipeline, ev.PipelineRunID, ev.Stage, ev.ArrayIndex = st.Pipeline, st.PipelineRunID, st.Stage, st.ArrayIndex
	}
	var b strings.Builder
	fmt.Fprintf(&b, "run %s (%s", r.RunID, r.TaskDefinition)
	if ev.Stage != "" {
		fmt.Fprintf(&b, ", stage %s", ev.Stage)
		if ev.ArrayIndex != nil {
			fmt.Fprintf(&b, "[%d]", *ev.ArrayIndex)
		}
		fmt.Fprintf(&b, " of %s", cmp.Or(ev.Pipeline, ev.PipelineRunID))
	}
	fmt.Fprintf(&b, ") %s", r.Status)
	if r.ExitCode != nil {
		fmt.Fprintf(&b, ", exit code %d", *r.ExitCode)
	}
	ev.Summary = summaryTail(&b, r.StoppedReason, r.StartedAt, r.FinishedAt)
	return ev
}

// PipelineRunEndEvent is the event of pr's end. A retried pipeline run
// ends again: each end has its own event id.
func PipelineRunEndEvent(pr *PipelineRun) *WebhookEvent {
	id := "pipelineRun/" + pr.PipelineRunID
	if pr.Retries > 0 {
		id += fmt.Sprintf("/retry-%d", pr.Retries)
	}
	ev := &WebhookEvent{EventID: id, Kind: WebhookKindPipelineRun, ID: pr.PipelineRunID, Status: pr.Status,
		StopCode: pr.StopCode, Reason: pr.StoppedReason, Pipeline: pr.Pipeline, Tags: pr.Tags,
		CreatedAt: pr.CreatedAt, StartedAt: pr.StartedAt, StoppedAt: pr.FinishedAt}
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline run %s of %s %s", pr.PipelineRunID, pr.Pipeline, pr.Status)
	reason := pr.StoppedReason
	if reason == "" {
		var failed []string
		for _, st := range pr.Stages {
			if st.Status == StatusFailed {
				failed = append(failed, st.Name)
			}
		}
		if len(failed) > 0 {
			reason = "failed stages: " + strings.Join(failed, ", ")
		}
	}
	ev.Summary = summaryTail(&b, reason, pr.StartedAt, pr.FinishedAt)
	return ev
}

// summaryTail ends a summary with the reason and the duration, on one line.
func summaryTail(b *strings.Builder, reason string, started, stopped *time.Time) string {
	if reason != "" {
		reason = strings.Join(strings.Fields(reason), " ")
		if r := []rune(reason); len(r) > 200 {
			reason = string(r[:200]) + "…"
		}
		fmt.Fprintf(b, ": %s", reason)
	}
	if started != nil && stopped != nil && !stopped.Before(*started) {
		fmt.Fprintf(b, " (after %s)", stopped.Sub(*started).Round(time.Second))
	}
	return b.String()
}

// WebhookInfo is a hook as `gantry webhook ls` shows it: with how its
// deliveries fare.
type WebhookInfo struct {
	Webhook
	// Last is the hook's latest delivery try, nil before the first.
	Last *WebhookTry `json:"last,omitempty"`
	// Pending counts the ends still to deliver (retries included).
	Pending int `json:"pending"`
	// Delivered and Failed count the deliveries answered 2xx and those
	// given up after their retries, since the hook was added.
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
}

// WebhookTry is one POST of a delivery: its time, and the HTTP status of
// the answer or the error that stood for one.
type WebhookTry struct {
	At     time.Time `json:"at"`
	Status int       `json:"status,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// WebhookAddRequest is a hook to add (webhooks.add): where to POST, the
// ends it hears of (On: SUCCEEDED, FAILED, CANCELED, any case; FAILED when
// empty) and the filters that narrow them: Kind "runs" or "pipelineRuns"
// (or "pipelines", any case) keeps one kind of end, both when empty;
// ArrayChildren false leaves out array runs' children (Webhook).
type WebhookAddRequest struct {
	Name      string            `json:"name"`
	URL       string            `json:"url"`
	On        []Status          `json:"on,omitempty"`
	Kind      string            `json:"kind,omitempty"`
	Pipelines []string          `json:"pipelines,omitempty"`
	Families  []string          `json:"families,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	// ArrayChildren false leaves out the ends of array runs' children,
	// keeping their parents'; left out, the hook hears of them.
	ArrayChildren *bool `json:"arrayChildren,omitempty"`
	// Secret, when set, signs every body (X-Gantry-Signature); it is
	// never shown again.
	Secret string `json:"secret,omitempty"`
}
