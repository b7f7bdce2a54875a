package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pipeline is a DAG of stages, each a run of a task definition, as a
// pipeline file describes it (YAML, or JSON with the same keys).
type Pipeline struct {
	Name string `json:"name"`
	// Version counts the applies of the pipeline, from 1; the store sets it.
	Version int `json:"version,omitempty"`
	// Parameters are declared with the defaults of ${name} (and
	// Ref::name) references, overridden when a run is started, or as
	// required: without a default, to be given to every run.
	Parameters ParamDecls `json:"parameters,omitempty"`
	Schedule   *Schedule  `json:"schedule,omitempty"`
	// Triggers start a run of this pipeline when a run of another ends
	// (trigger.go).
	Triggers []Trigger `json:"triggers,omitempty"`
	// Kind is pipeline (the default) or task: a task schedule made by
	// `gantry schedule create --task`, one stage running one task
	// definition.
	Kind string `json:"kind,omitempty"`
	// Priority is that of the stages' runs (high, normal or low; empty is
	// normal) where a stage does not set its own.
	Priority Priority `json:"priority,omitempty"`
	// TimeoutSeconds bounds each run of the pipeline, from when it starts
	// RUNNING (or from its latest retry) to its end, as Airflow's
	// dagrun_timeout and Argo's activeDeadlineSeconds do: past it the run
	// is stopped and ends FAILED with stopCode Timeout. 0 means no limit;
	// gantry pipeline run --timeout overrides it for one run.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// MaxActiveRuns bounds the runs of the pipeline RUNNING at once,
	// however they were started (by hand, a schedule, a trigger, a
	// backfill or a retry), as Airflow's max_active_runs does: a run
	// started while that many are RUNNING waits PENDING, saying so, and
	// starts as one ends, highest priority then longest waiting first.
	// Nil (left out) means no bound; it is at least 1 when set.
	MaxActiveRuns *int `json:"maxActiveRuns,omitempty"`
	// DependsOnPast makes each run that has a scheduled time (a fire, a
	// catch-up, a backfill, schedule trigger) wait PENDING until the
	// pipeline's run with the latest scheduled time before its own has
	// SUCCEEDED, as Airflow's depends_on_past does for a DAG run's tasks:
	// day N does not load while day N-1 has not. Runs without a
	// scheduled time (pipeline run, a trigger by another pipeline)
	// neither wait nor count (PreviousRun, scheduler.Promote).
	DependsOnPast bool `json:"dependsOnPast,omitempty"`
	// Tags are every stage's runs' (tags.go), with the stage's own over
	// them key by key, so that gantry ps --tag finds a pipeline's runs.
	Tags TagList `json:"tags,omitempty"`
	// PropagateTags TASK_DEFINITION gives every stage's runs their task
	// definition's tags too, under the run's own, as ECS RunTask's and
	// SubmitRequest's (tags.go); NONE or empty does not. A stage's own
	// wins.
	PropagateTags string `json:"propagateTags,omitempty"`
	// Constraints place every stage's runs on the workers whose labels
	// satisfy them (constraints.go); a stage's own replace them key by
	// key.
	Constraints Constraints `json:"constraints,omitempty"`
	Stages      []Stage     `json:"stages"`
	CreatedAt   time.Time   `json:"createdAt,omitzero"`
}

// Stage is one node of a pipeline.
type Stage struct {
	Name string `json:"name"`
	// TaskDefinition is "family[:revision]" or an inline ECS task definition.
	TaskDefinition json.RawMessage `json:"taskDefinition"`
	DependsOn      []Dependency    `json:"dependsOn,omitempty"`
	// TriggerRule says which ends of the dependencies, taken together,
	// let the stage run, as Airflow's trigger_rule (triggerrule.go);
	// empty is allSuccess, where each dependency's condition decides.
	TriggerRule TriggerRule `json:"triggerRule,omitempty"`
	// ArraySize fans the stage out to that many parallel runs, each seeing
	// GANTRY_ARRAY_INDEX (0 to the size - 1); zero means one plain run.
	// The size is fixed, or read from an upstream stage's output when the
	// stage starts (arraysize.go).
	ArraySize ArraySize `json:"arraySize,omitzero"`
	// ArrayOrder is how an array stage's children start: parallel (the
	// default: all at once) or sequential (child i+1 once child i
	// succeeded, as AWS Batch's SEQUENTIAL; arrayorder.go).
	ArrayOrder     string         `json:"arrayOrder,omitempty"`
	Cluster        string         `json:"cluster,omitempty"`
	Overrides      *Overrides     `json:"overrides,omitempty"`
	RetryStrategy  *RetryStrategy `json:"retryStrategy,omitempty"`
	TimeoutSeconds int            `json:"timeoutSeconds,omitempty"`
	// Priority of the stage's runs; empty takes the pipeline's.
	Priority Priority `json:"priority,omitempty"`
	// Tags of the stage's runs, over the pipeline's key by key.
	Tags TagList `json:"tags,omitempty"`
	// PropagateTags of the stage's runs (TASK_DEFINITION or NONE); empty
	// takes the pipeline's.
	PropagateTags string `json:"propagateTags,omitempty"`
	// Constraints of the stage's runs, replacing the pipeline's key by
	// key: a stage's disk=hdd wins over the pipeline's disk=ssd, and the
	// pipeline's zone=eu holds for the stage still.
	Constraints Constraints `json:"constraints,omitempty"`
	// SkipOnExitCode lists the exit codes (1-255) by which the stage's
	// task says it found nothing to do: a run that ends so is not
	// retried, and the stage ends SKIPPED rather than FAILED
	// (skipcode.go).
	SkipOnExitCode ExitCodes `json:"skipOnExitCode,omitempty"`
	// Pool names a pool (pool.go) each of the stage's runs, an array's
	// children each, takes a slot of.
	Pool string `json:"pool,omitempty"`
	// When, once the stage's dependencies hold, decides whether it runs
	// or ends SKIPPED, from a parameter or an upstream output (when.go).
	When When `json:"when,omitzero"`
}

// MaxArraySize bounds a stage's fan-out, as AWS Batch does.
const MaxArraySize = 10000

// Condition says which end of an upstream stage lets a stage run.
type Condition string

// Dependency conditions. Success is the default.
const (
	CondSuccess  Condition = "success"  // the upstream stage succeeded
	CondFailure  Condition = "failure"  // the upstream stage failed
	CondComplete Condition = "complete" // the upstream stage ended, however (skipped and canceled included)
)

// Dependency is one edge of the DAG: this stage waits for Stage to end in
// a way that satisfies Condition.
type Dependency struct {
	Stage     string    `json:"stage"`
	Condition Condition `json:"condition,omitempty"`
	// Type N_TO_N (AWS Batch's spelling), between two array stages of one
	// size, makes child i of this stage wait for child i of Stage only
	// (arrayorder.go); empty waits for the whole stage.
	Type string `json:"type,omitempty"`
}

// UnmarshalJSON accepts a bare stage name as well as {stage, condition}.
func (d *Dependency) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		d.Condition = CondSuccess
		return json.Unmarshal(b, &d.Stage)
	}
	type plain Dependency
	var p plain
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*d = Dependency(p)
	if d.Condition == "" {
		d.Condition = CondSuccess
	}
	return nil
}

// Params are pipeline parameters by name.
type Params map[string]string

// UnmarshalJSON takes numbers and booleans as their text, so that YAML's
// `rows: 100` is the parameter "100".
func (p *Params) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := Params{}
	for k, v := range raw {
		var s string
		switch {
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
		case string(v) == "null":
		case len(v) > 0 && (v[0] == '{' || v[0] == '['):
			return fmt.Errorf("parameter %q: want a string, number or boolean", k)
		default:
			s = string(v)
		}
		out[k] = s
	}
	*p = out
	return nil
}

// ParsePipeline decodes a pipeline file, YAML or JSON, and validates it,
// returning every problem at once.
func ParsePipeline(data []byte) (*Pipeline, error) {
	p, err := DecodePipeline(data)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// DecodePipeline decodes a pipeline file, YAML or JSON, without
// validating it: for a caller that adds problems of its own to Validate's
// (the server's unknown task definitions).
func DecodePipeline(data []byte) (*Pipeline, error) {
	js, err := yamlToJSON(data)
	if err != nil {
		return nil, err
	}
	var p Pipeline
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, errTagShape) {
			if named := tagShapeProblems(js); named != nil {
				return nil, errors.Join(named, unknownFieldsOf(js))
			}
		}
		if errors.Is(err, errArraySizeShape) || errors.Is(err, errWhenShape) {
			if named := errors.Join(arraySizeShapeProblems(js), whenShapeProblems(js)); named != nil {
				// The file's other problems too, when the rest decodes:
				// encoding/json stopped at the size or the when, before
				// the keys it has no field for.
				named = errors.Join(named, unknownFieldsOf(js))
				if rest, ok := withoutBadStageFields(js); ok {
					return nil, errors.Join(named, rest.Validate())
				}
				return nil, named
			}
		}
		if errors.Is(err, errConstraintShape) {
			if named := constraintShapeProblems(js); named != nil {
				return nil, errors.Join(named, unknownFieldsOf(js))
			}
		}
		if errors.Is(err, errSkipShape) {
			if named := skipShapeProblems(js); named != nil {
				return nil, errors.Join(named, unknownFieldsOf(js))
			}
		}
		if errors.Is(err, errTriggerRuleShape) {
			if named := triggerRuleShapeProblems(js); named != nil {
				return nil, errors.Join(named, unknownFieldsOf(js))
			}
		}
		if unknownFieldErr(err) {
			var tree any
			if json.Unmarshal(js, &tree) == nil {
				if named := unknownPipelineFields(tree); named != nil {
					// The file's other problems too, all at once: what the
					// known keys say, validated.
					var known Pipeline
					if json.Unmarshal(js, &known) == nil {
						return nil, errors.Join(named, known.Validate())
					}
					return nil, named
				}
			}
		}
		if named := scheduleShapeProblem(js); named != nil {
			return nil, named
		}
		if named := dependsOnPastShapeProblem(js); named != nil {
			return nil, errors.Join(named, unknownFieldsOf(js))
		}
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return &p, nil
}

// scheduleShapeProblem names a schedule written as a bare expression, as
// a Kubernetes CronJob's schedule: "0 2 * * *" is, where a pipeline's is
// an object; nil for any other file.
func scheduleShapeProblem(js []byte) error {
	var top struct {
		Schedule any `json:"schedule"`
	}
	if json.Unmarshal(js, &top) != nil {
		return nil
	}
	expr, ok := top.Schedule.(string)
	if !ok {
		return nil
	}
	return &FieldError{Path: "schedule", Msg: fmt.Sprintf("%q: want an object, schedule: {cron: %q}, "+
		"with timezone, concurrencyPolicy, suspend, startingDeadlineSeconds and misfire beside cron", expr, expr)}
}

// unknownFieldsOf names the keys of a pipeline file (JSON) that no field
// takes, for a decoding error that stopped before reaching them.
func unknownFieldsOf(js []byte) error {
	var tree any
	if json.Unmarshal(js, &tree) != nil {
		return nil
	}
	return unknownPipelineFields(tree)
}

// yamlToJSON converts a YAML document (JSON is YAML) into JSON: dates and
// versions stay strings, numbers stay numbers, and the values of the
// top-level parameters stay as written (zip: 02134 is "02134", not the
// octal 1116; ver: 1.10 is "1.10").
func yamlToJSON(data []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		if bareBang.Match(data) {
			// [disk=ssd, !spot]: the tag runs to the ], and YAML's
			// error says nothing of it.
			return nil, fmt.Errorf("pipeline: %w (if a value there starts with !, quote it: \"!spot\"; a bare ! starts a YAML tag)", err)
		}
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if n.Kind == 0 {
		return nil, errors.New("pipeline: empty file")
	}
	v, err := nodeValue(&n, 0, false)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("pipeline: want a mapping with name and stages at the top")
	}
	return json.Marshal(v)
}

// bareBang finds a ! that starts a value, which YAML reads as a tag.
var bareBang = regexp.MustCompile(`(?m)(^|[\s\[,{])![A-Za-z0-9_]`)

// nodeValue is n as a JSON value; verbatim keeps numbers as their text.
func nodeValue(n *yaml.Node, depth int, verbatim bool) (any, error) {
	if depth > 64 {
		return nil, fmt.Errorf("line %d: nested too deeply", n.Line)
	}
	if n.Style&yaml.TaggedStyle != 0 && !strings.HasPrefix(n.ShortTag(), "!!") {
		// An unquoted !spot is a tag, not text: on its own it tags
		// nothing, and in [!spot, disk=ssd] it tags disk=ssd, a
		// constraint lost without a word.
		return nil, fmt.Errorf("line %d: YAML tag %s: gantry reads no YAML tags; quote a value that starts with ! (%q, as a constraint !K is written)",
			n.Line, n.Tag, strings.TrimRight(n.Tag, ",]}"))
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0], depth+1, verbatim)
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: YAML aliases are not supported", n.Line)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: keys must be plain strings", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q appears twice", k.Line, k.Value)
			}
			// The document's mapping is at depth 1: its parameters are
			// text, whatever YAML would read them as.
			// So are a stage's when values (depth 3 is a stage's
			// mapping): equals: 010 compares with "010", not "8".
			v, err := nodeValue(n.Content[i+1], depth+1, verbatim || depth == 1 && k.Value == "parameters" || depth == 3 && k.Value == "when")
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c, depth+1, verbatim)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return b, nil
		case "!!int", "!!float":
			if verbatim {
				return n.Value, nil
			}
			if n.ShortTag() == "!!int" {
				if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
					return json.Number(strconv.FormatInt(i, 10)), nil
				}
				return n.Value, nil
			}
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil || f != f || f > 1e300 || f < -1e300 {
				return n.Value, nil
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

// Stage returns the stage named name, or nil.
func (p *Pipeline) Stage(name string) *Stage {
	for i := range p.Stages {
		if p.Stages[i].Name == name {
			return &p.Stages[i]
		}
	}
	return nil
}

// Validate collects every problem of the pipeline, each naming its field
// path: names, unknown or repeated stages, cycles (with their path), task
// definitions, conditions, parameters, maxActiveRuns and the schedule.
func (p *Pipeline) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case p.Name == "":
		bad("name", "required")
	case !validName(p.Name):
		bad("name", "%q: use letters, digits, '-' and '_'", p.Name)
	}
	if err := CheckPriority("priority", p.Priority); err != nil {
		errs = append(errs, err)
	}
	if err := CheckTimeoutSeconds("timeoutSeconds", p.TimeoutSeconds); err != nil {
		errs = append(errs, err)
	}
	if p.MaxActiveRuns != nil && *p.MaxActiveRuns < 1 {
		bad("maxActiveRuns", "must be at least 1, got %d; leave it out for no bound", *p.MaxActiveRuns)
	}
	if err := p.Tags.Validate("tags"); err != nil {
		errs = append(errs, err)
	}
	if err := CheckPropagateTags("propagateTags", p.PropagateTags); err != nil {
		errs = append(errs, err)
	}
	if err := p.Constraints.Validate("constraints"); err != nil {
		errs = append(errs, err)
	}
	names := make([]string, 0, len(p.Parameters))
	for k := range p.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !validParamName(k) {
			bad("parameters."+k, "%q: a parameter name is letters, digits and '_', not starting with a digit", k)
		}
	}
	if len(p.Stages) == 0 {
		bad("stages", "at least one stage is required")
	}
	seen := map[string]bool{}
	for i, st := range p.Stages {
		switch {
		case st.Name == "":
			bad(fmt.Sprintf("stages[%d].name", i), "required")
		case !validName(st.Name):
			bad(fmt.Sprintf("stages[%d].name", i), "%q: use letters, digits, '-' and '_'", st.Name)
		case seen[st.Name]:
			bad(fmt.Sprintf("stages[%d].name", i), "%q is used twice", st.Name)
		}
		seen[st.Name] = true
	}
	for i, st := range p.Stages {
		errs = append(errs, st.validate(stagePath(i, st.Name), seen, p.Parameters)...)
		var up map[string]bool
		if st.ArraySize.From != nil || st.When.ReadsOutputs() {
			up = p.upstreamOf(st.Name)
		}
		errs = append(errs, p.validateArraySize(i, up)...)
		errs = append(errs, p.validateWhen(i, up)...)
		errs = append(errs, p.validateArrayOrder(i)...) // arrayorder.go
	}
	if err := p.CheckStageTags(nil); err != nil {
		errs = append(errs, err)
	}
	for i := range p.Stages {
		st := &p.Stages[i]
		if len(st.Constraints) > 0 && len(p.Constraints) > 0 {
			merged := MergeConstraints(p.Constraints, st.Constraints)
			if err := merged.CheckMerged(stagePath(i, st.Name)+".constraints", "the pipeline's and its own"); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if cycle := p.findCycle(); cycle != nil {
		bad("stages", "dependency cycle: %s", strings.Join(cycle, " -> "))
	}
	if p.Schedule != nil {
		if err := p.Schedule.Validate(); err != nil {
			errs = append(errs, prefixErrors("schedule.", err))
		}
		if n := p.Schedule.DateParameter; n != "" {
			if _, ok := p.Parameters[n]; !ok {
				bad("schedule.dateParameter", "%q: the pipeline declares no such parameter (%s)", n, p.declaredParams())
			}
		}
	}
	errs = append(errs, p.checkScheduleParams()...) // pipeline_params.go
	errs = append(errs, p.validateTriggers()...)
	return errors.Join(errs...)
}

func (st *Stage) validate(sp string, stages map[string]bool, params ParamDecls) []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: sp + "." + path, Msg: fmt.Sprintf(format, args...)})
	}
	req := SubmitRequest{TaskDefinition: st.TaskDefinition, Cluster: st.Cluster, Overrides: st.Overrides,
		RetryStrategy: st.RetryStrategy, TimeoutSeconds: st.TimeoutSeconds, Priority: st.Priority, Tags: st.Tags, PropagateTags: st.PropagateTags, Pool: st.Pool}
	if err := req.Validate(); err != nil {
		errs = append(errs, prefixErrors(sp+".", err))
	}
	// Apart, under the stage's path: a conflict names the stage's other
	// constraint by its path, which "constraints[0]" would misread as the
	// pipeline's.
	if err := st.Constraints.Validate(sp + ".constraints"); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	_, inline, err := req.TaskRef()
	if err != nil {
		errs = append(errs, prefixErrors(sp+".", err))
	}
	if inline != nil && st.Overrides != nil {
		if _, err := inline.WithOverrides(st.Overrides); err != nil {
			errs = append(errs, prefixErrors(sp+".", err))
		}
	}
	errs = append(errs, st.SkipOnExitCode.validate(sp+".skipOnExitCode")...)
	deps := map[string]bool{}
	for j, d := range st.DependsOn {
		dp := fmt.Sprintf("dependsOn[%d]", j)
		switch {
		case d.Stage == "":
			bad(dp+".stage", "required")
		case d.Stage == st.Name:
			bad(dp+".stage", "%q: a stage cannot depend on itself", d.Stage)
		case !stages[d.Stage]:
			bad(dp+".stage", "no stage %q in the pipeline", d.Stage)
		case deps[d.Stage]:
			bad(dp+".stage", "%q is listed twice", d.Stage)
		}
		deps[d.Stage] = true
		switch d.Condition {
		case CondSuccess, CondFailure, CondComplete:
		default:
			bad(dp+".condition", "%q: want success, failure or complete", d.Condition)
		}
	}
	errs = append(errs, st.validateTriggerRule(sp)...)
	for _, ref := range st.paramRefs(inline) {
		if _, ok := params[ref.name]; !ok {
			errs = append(errs, unknownParam(sp+"."+ref.path, ref))
		}
	}
	return errs
}

// stagePath names stage i in field paths: stages[i](name).
func stagePath(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("stages[%d]", i)
	}
	return fmt.Sprintf("stages[%d](%s)", i, name)
}

// fieldProblems walks the values of field in a pipeline file (JSON), the
// pipeline's own when top is set and each stage's, and joins what check
// says of each, given its field path (constraints,
// stages[1](load).constraints): the ShapeProblems functions name the
// values that the decoding error says only that one is wrong. Keys match
// as encoding/json matches them, the exact key first, then in any case.
func fieldProblems(js []byte, field string, top bool, check func(path string, raw json.RawMessage) []error) error {
	var doc map[string]json.RawMessage
	if json.Unmarshal(js, &doc) != nil {
		return nil
	}
	var errs []error
	if raw := lookUpKey(doc, field); top && len(raw) > 0 {
		errs = append(errs, check(field, raw)...)
	}
	var stages []map[string]json.RawMessage
	if json.Unmarshal(lookUpKey(doc, "stages"), &stages) != nil {
		return errors.Join(errs...)
	}
	for i, st := range stages {
		var name string
		_ = json.Unmarshal(lookUpKey(st, "name"), &name)
		if raw := lookUpKey(st, field); len(raw) > 0 {
			errs = append(errs, check(stagePath(i, name)+"."+field, raw)...)
		}
	}
	return errors.Join(errs...)
}

// lookUpKey is the value of key in obj as encoding/json finds a field's:
// the exact key, else one equal to it in any case; nil when none is.
func lookUpKey(obj map[string]json.RawMessage, key string) json.RawMessage {
	if raw, ok := obj[key]; ok {
		return raw
	}
	for k, raw := range obj {
		if strings.EqualFold(k, key) {
			return raw
		}
	}
	return nil
}

// paramRef is one reference to a parameter: ${name}, or Ref::name.
type paramRef struct {
	path, name string
	ref        bool
}

func unknownParam(path string, r paramRef) error {
	if r.ref {
		return &FieldError{Path: path, Msg: fmt.Sprintf("unknown parameter Ref::%s: declare it under parameters", r.name)}
	}
	return &FieldError{Path: path, Msg: fmt.Sprintf("unknown parameter ${%s}: declare it under parameters, or write $${%s} for a literal ${%s}",
		r.name, r.name, r.name)}
}

// paramRefs lists the ${name} references of the stage's commands and
// environment, and the Ref::name ones of its commands, with their paths.
func (st *Stage) paramRefs(inline *TaskDefinition) []paramRef {
	var out []paramRef
	add := func(path, s string, cmd bool) {
		for _, n := range References(s) {
			out = append(out, paramRef{path, n, false})
		}
		if cmd {
			for _, n := range RefReferences(s) {
				out = append(out, paramRef{path, n, true})
			}
		}
	}
	if st.Overrides != nil {
		for i, co := range st.Overrides.ContainerOverrides {
			for j, c := range co.Command {
				add(fmt.Sprintf("overrides.containerOverrides[%d].command[%d]", i, j), c, true)
			}
			for j, kv := range co.Environment {
				add(fmt.Sprintf("overrides.containerOverrides[%d].environment[%d].value", i, j), kv.Value, false)
			}
		}
	}
	if inline != nil {
		for i, c := range inline.ContainerDefinitions {
			for j, a := range c.Command {
				add(fmt.Sprintf("taskDefinition.containerDefinitions[%d].command[%d]", i, j), a, true)
			}
			for j, kv := range c.Environment {
				add(fmt.Sprintf("taskDefinition.containerDefinitions[%d].environment[%d].value", i, j), kv.Value, false)
			}
		}
	}
	return out
}

// CheckRegisteredRefs reports, as Validate reports an inline definition's,
// the Ref::name references to parameters p does not declare in the
// commands of td: the registered task definition that stage i runs (see
// SubstituteRefs). A command the stage's overrides replace is not run,
// nor checked.
func (p *Pipeline) CheckRegisteredRefs(i int, td *TaskDefinition) error {
	st := &p.Stages[i]
	var errs []error
	for j, c := range td.ContainerDefinitions {
		if st.overridesCommand(c.Name, len(td.ContainerDefinitions)) {
			continue
		}
		for k, a := range c.Command {
			for _, n := range RegisteredRefReferences(a) {
				if _, ok := p.Parameters[n]; !ok {
					path := fmt.Sprintf("%s.taskDefinition(%s).containerDefinitions[%d].command[%d]", stagePath(i, st.Name), td.Ref(), j, k)
					errs = append(errs, unknownParam(path, paramRef{name: n, ref: true}))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// overridesCommand reports whether the stage's overrides replace the
// command of the container named name, of a task of n containers.
func (st *Stage) overridesCommand(name string, n int) bool {
	if st.Overrides == nil {
		return false
	}
	for _, co := range st.Overrides.ContainerOverrides {
		if co.Command != nil && (co.Name == name || co.Name == "" && n == 1) {
			return true
		}
	}
	return false
}

// validParamName reports whether s can be a parameter: an identifier.
func validParamName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ResolveParams merges trigger-time values over the pipeline's defaults.
// Every name must be declared by the pipeline. A required parameter not
// given is left out: a trigger or the schedule may give it still, and
// CheckRequired refuses the run without it.
func (p *Pipeline) ResolveParams(given map[string]string) (Params, error) {
	out := p.Parameters.Defaults()
	var errs []error
	keys := make([]string, 0, len(given))
	for k := range given {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := p.Parameters[k]; !ok {
			errs = append(errs, &FieldError{Path: "parameters." + k,
				Msg: fmt.Sprintf("pipeline %s declares no parameter %q (%s)", p.Name, k, p.declaredParams())})
			continue
		}
		out[k] = given[k]
	}
	return out, errors.Join(errs...)
}

// ScheduledParams returns params with the schedule's dateParameter set
// for a run scheduled at t (Schedule.ScheduledDate), params itself when
// the pipeline has no schedule or it no dateParameter.
func (p *Pipeline) ScheduledParams(params Params, t time.Time) Params {
	if p.Schedule == nil || p.Schedule.DateParameter == "" {
		return params
	}
	out := maps.Clone(params)
	if out == nil {
		out = Params{}
	}
	out[p.Schedule.DateParameter] = p.Schedule.ScheduledDate(t)
	return out
}

// declaredParams says which parameters the pipeline declares, for an error
// about one it does not: a misspelt name is then plain to see.
func (p *Pipeline) declaredParams() string {
	if len(p.Parameters) == 0 {
		return "it declares none: add it under parameters: in the pipeline file"
	}
	names := make([]string, 0, len(p.Parameters))
	for k := range p.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	return "it declares " + strings.Join(names, ", ")
}
