package jobs

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// A submission may carry fields a SubmitRequest does not read: those of
// AWS Batch's SubmitJob or ECS RunTask that gantry has no use for, or a
// misspelt one. They are not refused, since clients send such fields on
// purpose, but the reply names each (UnreadSubmitFields), so that a
// Batch user's timeout or share identifier is not dropped without a word.

// maxUnreadFields bounds the warnings of one submission.
const maxUnreadFields = 20

// unreadHints say, by the type of the object a field is in, what to use
// instead of a field gantry does not read; v is the field's value.
var unreadHints = map[reflect.Type]map[string]func(v any) string{
	reflect.TypeFor[SubmitRequest](): {
		"timeout": func(v any) string {
			if obj, ok := v.(map[string]any); ok {
				if n, ok := obj["attemptDurationSeconds"].(float64); ok {
					return fmt.Sprintf(`use "timeoutSeconds": %s (AWS Batch's timeout.attemptDurationSeconds: each attempt's bound, from its container's start)`,
						strconv.FormatFloat(n, 'f', -1, 64))
				}
			}
			return `use "timeoutSeconds" (seconds, each attempt from its container's start)`
		},
		"containerOverrides":   hint(`use "overrides": {"containerOverrides": [...]}, as ECS RunTask`),
		"jobDefinition":        hint(`use "taskDefinition" (family[:revision] of a registered ECS task definition, or one inline)`),
		"jobQueue":             hint(`use "cluster" (the workers started with --cluster NAME take its runs)`),
		"clientToken":          hint(`use "idempotencyKey"`),
		"placementConstraints": placementHint,
		"placementStrategy": hint(`a worker of the cluster with room takes the run; there is no spread or binpack: ` +
			`"constraints" (["K=V"], worker labels) say which workers may`),
		"startedBy": func(v any) string {
			if s, ok := v.(string); ok && s != "" {
				b, _ := json.Marshal(s)
				return fmt.Sprintf(`tag the run, "tags": {"startedBy": %s}, and find it with gantry ps --all --tag startedBy=%s `+
					`(ECS's list-tasks --started-by)`, b, s)
			}
			return `tag the run, "tags": {"startedBy": "..."}, and find it with gantry ps --all --tag startedBy=...`
		},
		"group":                      hint(`tag the run ("tags": {"group": "..."}) and find it with gantry ps --tag group=...`),
		"launchType":                 awsOnlyField,
		"capacityProviderStrategy":   awsOnlyField,
		"platformVersion":            awsOnlyField,
		"networkConfiguration":       awsOnlyField,
		"enableECSManagedTags":       awsOnlyField,
		"enableExecuteCommand":       awsOnlyField,
		"referenceId":                awsOnlyField,
		"volumeConfigurations":       awsOnlyField,
		"schedulingPriorityOverride": hint(`use "priority" (high, normal or low)`),
		"jobName":                    hint(`a run has no name: tag it ("tags": {"name": "..."}) to find it with gantry ps --tag`),
		"count": hint(`use "arrayProperties": {"size": N} (AWS Batch's array job): N child runs of the task, ` +
			`each seeing GANTRY_ARRAY_INDEX and AWS_BATCH_JOB_ARRAY_INDEX`),
	},
	reflect.TypeFor[RunDependency](): {
		"jobId": hint(`use "runId"`),
	},
	reflect.TypeFor[ContainerOverride](): {
		"vcpus":             hint(`use "cpu" (1024 units per vCPU)`),
		"memoryReservation": hint(`use "memory" (MiB, the container's hard limit), or set memoryReservation in the task definition`),
		"environmentFiles":  hint(`use "environment": [{"name": "K", "value": "V"}]`),
	},
	reflect.TypeFor[Overrides](): {
		"cpu": hint(`a task-level override is not read: give each container's, ` +
			`"containerOverrides": [{"name": "main", "cpu": 512}] (1024 units a CPU)`),
		"memory": hint(`a task-level override is not read: give each container's, ` +
			`"containerOverrides": [{"name": "main", "memory": 512}] (MiB)`),
		"taskRoleArn":                   awsOnlyField,
		"executionRoleArn":              awsOnlyField,
		"ephemeralStorage":              awsOnlyField,
		"inferenceAcceleratorOverrides": awsOnlyField,
	},
}

// awsOnlyField answers an ECS RunTask field that means something only on AWS.
var awsOnlyField = hint("it means something only on AWS: gantry runs the task on its workers' Docker")

// placementHint answers ECS RunTask's placementConstraints with the
// constraints they mean, when gantry reads each as a label constraint.
func placementHint(v any) string {
	const general = `use "constraints" (["K=V", "K!=V"], worker labels)`
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return general
	}
	var cs []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		typ, _ := m["type"].(string)
		expr, _ := m["expression"].(string)
		c, ok := PlacementConstraint{Type: typ, Expression: expr}.Constraint()
		if !ok {
			return general + `; only memberOf with "attribute:K == V" or "attribute:K != V" maps to one`
		}
		cs = append(cs, c.String())
	}
	b, _ := json.Marshal(cs)
	return fmt.Sprintf(`use "constraints": %s (worker labels, gantry worker --label)`, b)
}

func hint(s string) func(any) string { return func(any) string { return s } }

// UnreadSubmitFields returns a warning for each field of data, a
// submission's JSON, that a SubmitRequest does not read, at the top or in
// an object below it (overrides, retryStrategy, dependsOn), but not
// inside taskDefinition, tags or constraints, which have checks of their
// own. Each names the field's path and what to use instead, or the
// nearest field's name. Keys are matched as encoding/json matches them,
// without regard to case. Malformed JSON has none: decoding reports it.
func UnreadSubmitFields(data []byte) []string {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return nil
	}
	var out []string
	n := unreadFields(v, reflect.TypeFor[SubmitRequest](), "", &out)
	if n > len(out) {
		out = append(out, fmt.Sprintf("and %d more fields not read", n-len(out)))
	}
	return out
}

// unreadFields appends to out the warnings of the fields in v that t does
// not read, up to maxUnreadFields, and returns how many there are.
func unreadFields(v any, t reflect.Type, path string, out *[]string) int {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return 0 // read by its own decoder (taskDefinition, tags, constraints, ...)
	}
	n := 0
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return 0
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			fp := join(path, k)
			if ft, ok := readField(fields, k); ok {
				n += unreadFields(obj[k], ft, fp, out)
				continue
			}
			n++
			if len(*out) < maxUnreadFields {
				*out = append(*out, unreadWarning(t, fp, k, obj[k]))
			}
		}
	case reflect.Slice:
		arr, _ := v.([]any)
		for i, e := range arr {
			n += unreadFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			n += unreadFields(obj[k], t.Elem(), join(path, k), out)
		}
	}
	return n
}

// readField is the type of the field that encoding/json decodes key into:
// the one of that name, else one whose name folds to it (Unicode simple
// folding, as encoding/json's).
func readField(fields map[string]reflect.Type, key string) (reflect.Type, bool) {
	if ft, ok := fields[key]; ok {
		return ft, true
	}
	for name, ft := range fields {
		if strings.EqualFold(name, key) {
			return ft, true
		}
	}
	return nil, false
}

// unreadWarning says that field k (at path) of an object of type t is not
// read, and what to use instead.
func unreadWarning(t reflect.Type, path, k string, v any) string {
	if h := unreadHints[t][k]; h != nil {
		return path + ": not read; " + h(v)
	}
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "-" && f.Tag.Get("schema") != "-" {
			names = append(names, cmp.Or(name, f.Name))
		}
	}
	if s := Nearest(k, names); s != "" {
		return fmt.Sprintf("%s: not read; did you mean %q?", path, s)
	}
	return path + ": not read: no such field of a submission (docs/nats-api.md lists them)"
}
