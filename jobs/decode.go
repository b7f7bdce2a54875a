package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// awsOnly lists, by the type of the object they appear in, the ECS fields
// that mean something only on AWS. They are accepted, dropped and reported
// once in a warning, so that a task definition written for ECS registers
// unchanged. The fields that describe-task-definition adds (status,
// registeredAt, ...) are here too, so that its output registers as well.
var awsOnly = map[reflect.Type][]string{
	reflect.TypeFor[TaskDefinition](): {"taskRoleArn", "executionRoleArn", "requiresCompatibilities",
		"proxyConfiguration", "inferenceAccelerators",
		"ephemeralStorage", "runtimePlatform", "enableFaultInjection", "taskDefinitionArn", "status",
		"requiresAttributes", "compatibilities", "registeredAt", "registeredBy", "deregisteredAt"},
	reflect.TypeFor[ContainerDefinition](): {"repositoryCredentials", "logConfiguration",
		"firelensConfiguration", "environmentFiles", "credentialSpecs", "versionConsistency"},
	reflect.TypeFor[Volume](): {"efsVolumeConfiguration", "fsxWindowsFileServerVolumeConfiguration",
		"configuredAtLaunch"},
	reflect.TypeFor[PortMapping](): {"name", "appProtocol", "containerPortRange"},
}

// Warnings are what a task definition had that gantry accepts but ignores.
type Warnings []string

// DecodeTaskDefinition decodes an ECS task definition strictly: a field ECS
// does not have is an error that names its path and the nearest real field,
// a value of the wrong kind is an error naming its path, and every problem
// of Validate is reported with them. Fields that only mean something on AWS
// are dropped and listed in the warnings. The output of
// describe-task-definition ({"taskDefinition": {...}}) is accepted too.
func DecodeTaskDefinition(data []byte) (*TaskDefinition, Warnings, error) {
	td, sc, err := decodeShape(data)
	if err != nil {
		return nil, nil, err
	}
	if verr := td.Validate(); verr != nil {
		for _, e := range unjoin(verr) {
			var fe *FieldError
			if errors.As(e, &fe) && sc.reported(fe.Path) {
				continue // "required" after a wrong kind says nothing new
			}
			sc.errs = append(sc.errs, e)
		}
	}
	var warn Warnings
	if len(sc.ignored) > 0 {
		warn = append(warn, "ignored fields that only mean something on AWS: "+strings.Join(sc.ignored, ", "))
	}
	if len(sc.placement) > 0 {
		warn = append(warn, "ignored placementConstraints that only mean something on AWS: "+strings.Join(sc.placement, ", ")+
			`; gantry keeps those of type memberOf with expression "attribute:K == V" or "attribute:K != V", K a worker label (gantry worker --label K=V)`)
	}
	if len(sc.unreadPlacement) > 0 {
		warn = append(warn, "placementConstraints not kept, so the runs may go to any worker of their cluster: "+strings.Join(sc.unreadPlacement, ", ")+
			`; gantry reads one "attribute:K == V" or "attribute:K != V" per constraint, K a worker label (gantry worker --label K=V): give each condition of an "and" its own constraint`)
	}
	var accel []string
	for i, c := range td.ContainerDefinitions {
		for j, rr := range c.ResourceRequirements {
			if rr.Type == ResourceInferenceAccelerator {
				accel = append(accel, fmt.Sprintf("containerDefinitions[%d].resourceRequirements[%d]", i, j))
			}
		}
	}
	if len(accel) > 0 {
		warn = append(warn, "ignored InferenceAccelerator resource requirements (Amazon Elastic Inference, only on AWS): "+strings.Join(accel, ", "))
	}
	if td.NetworkMode == "awsvpc" {
		warn = append(warn, `networkMode "awsvpc": the task gets a bridge network of its own, as with "bridge"`)
	}
	if len(sc.errs) > 0 {
		return nil, warn, errors.Join(sc.errs...)
	}
	return td, warn, nil
}

// DecodeStoredTaskDefinition reads a definition that gantry accepted
// before, as an inline stage definition of a stored pipeline is: the way
// DecodeTaskDefinition does, but what today's rules refuse is not an error
// (a field that does not fit is left out, as it was then), so that a
// pipeline applied under an older gantry's looser rules keeps running. Its
// runs are checked only for the problems their overrides bring (see
// TaskDefinition.WithOverrides); parameters fill in commands and
// environment values, which no rule checks.
func DecodeStoredTaskDefinition(data []byte) (*TaskDefinition, error) {
	td, _, err := decodeShape(data)
	return td, err
}

// decodeShape decodes what fits the TaskDefinition's shape; the problems
// of shape it met are in the shapeCheck. The error is for data that is not
// one JSON object.
func decodeShape(data []byte) (*TaskDefinition, *shapeCheck, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, nil, fmt.Errorf("task definition: %s", jsonProblem(data, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("task definition: unexpected data after the JSON object")
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("task definition: want a JSON object, got %s", kindOf(tree))
	}
	if inner, ok := obj["taskDefinition"].(map[string]any); ok && len(obj) <= 2 {
		if tags, ok := obj["tags"]; len(obj) == 1 || ok {
			// describe-task-definition --include TAGS puts the tags beside
			// the definition: they are its own.
			if _, has := inner["tags"]; ok && !has {
				inner["tags"] = tags
			}
			obj = inner
		}
	}
	// ECS wants task-level cpu and memory as strings; numbers are taken too.
	for _, k := range []string{"cpu", "memory"} {
		if n, ok := obj[k].(json.Number); ok {
			obj[k] = n.String()
		}
	}
	sc := &shapeCheck{}
	sc.placement, sc.unreadPlacement = keepPlacement(obj) // constraints.go
	sc.check(obj, reflect.TypeFor[TaskDefinition](), "")
	clean, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("task definition: %w", err)
	}
	var td TaskDefinition
	if err := json.Unmarshal(clean, &td); err != nil {
		// The shape check removed what does not fit; this is a number out of
		// range or the like.
		sc.errs = append(sc.errs, fmt.Errorf("task definition: %w", err))
	}
	return &td, sc, nil
}

// shapeCheck walks a decoded JSON tree against the Go type it must fill,
// removing and recording what does not fit.
type shapeCheck struct {
	errs    []error
	paths   []string
	ignored []string
	// placement are the placementConstraints gantry does not map to
	// worker label constraints (keepPlacement): those that mean
	// something only on AWS, and those on the user's own attributes it
	// cannot read.
	placement, unreadPlacement []string
}

func (sc *shapeCheck) bad(path, format string, args ...any) {
	sc.errs = append(sc.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	sc.paths = append(sc.paths, path)
}

// reported reports whether a problem was found at path or inside it.
func (sc *shapeCheck) reported(path string) bool {
	for _, p := range sc.paths {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// check reports whether v fits t; the caller drops a v that does not.
func (sc *shapeCheck) check(v any, t reflect.Type, path string) bool {
	if v == nil {
		return true // null leaves the zero value, as encoding/json does
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			sc.bad(path, "want an object, got %s", kindOf(v))
			return false
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fp := join(path, k)
			if ft, ok := fields[k]; ok {
				if !sc.check(obj[k], ft, fp) {
					delete(obj, k)
				}
				continue
			}
			delete(obj, k)
			if slices.Contains(awsOnly[t], k) {
				sc.ignored = append(sc.ignored, fp)
				continue
			}
			names := slices.Concat(slices.Collect(maps.Keys(fields)), awsOnly[t])
			if s := Nearest(k, names); s != "" {
				sc.bad(fp, "unknown field; did you mean %q?", s)
			} else {
				sc.bad(fp, "unknown field")
			}
		}
		return true
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			sc.bad(path, "want an array, got %s", kindOf(v))
			return false
		}
		good := true
		for i, e := range arr {
			if !sc.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)) {
				arr[i] = nil
				good = false
			}
		}
		return good || t.Elem().Kind() == reflect.Struct
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			sc.bad(path, "want an object of strings, got %s", kindOf(v))
			return false
		}
		for k, e := range obj {
			if !sc.check(e, t.Elem(), join(path, k)) {
				delete(obj, k)
			}
		}
		return true
	case reflect.String:
		if _, ok := v.(string); !ok {
			sc.bad(path, "want a string, got %s", kindOf(v))
			return false
		}
		return true
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			sc.bad(path, "want true or false, got %s", kindOf(v))
			return false
		}
		return true
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := v.(json.Number)
		if !ok {
			sc.bad(path, "want a number, got %s", kindOf(v))
			return false
		}
		bits := t.Bits()
		if _, err := strconv.ParseInt(n.String(), 10, bits); err != nil {
			sc.bad(path, "%s: want a whole number", n)
			return false
		}
		return true
	}
	sc.bad(path, "cannot be decoded")
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// jsonFields maps the JSON names of t's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func kindOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("the string %q", x)
	case json.Number:
		return "the number " + x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// jsonProblem describes a JSON syntax error with its line and column.
func jsonProblem(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := 1, 1
		for _, b := range data[:min(max(int(se.Offset)-1, 0), len(data))] {
			if b == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, se.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "invalid JSON: unexpected end of input"
	}
	return "invalid JSON: " + err.Error()
}

// Nearest returns the candidate closest to s, or "" when none is close
// enough to be what was meant.
func Nearest(s string, candidates []string) string {
	best, bestD := "", -1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if bestD < 0 || d < bestD || d == bestD && c < best {
			best, bestD = c, d
		}
	}
	if bestD < 0 || bestD > max(2, len(s)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, with an adjacent
// transposition counted as one edit.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
