package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tags attribute a run to a team, a project or a cost centre, and find it
// again (gantry ps --tag team=data), as ECS RunTask's and AWS Batch
// SubmitJob's tags do. They are fixed at submission. The rules are AWS's:
// at most 50 tags, keys of 1 to 128 characters, values of 0 to 256,
// letters, digits, spaces and _ . : / = + - @; but a key may not hold '='
// here, so that team=data on the command line and in the HTTP API's
// ?tag=team=data reads one way only. The prefixes gantry: and gantry. are
// reserved (any case), as AWS reserves aws:, for tags gantry may set
// itself one day.
const (
	MaxTags        = 50
	MaxTagKeyLen   = 128
	MaxTagValueLen = 256
)

// Tag is one tag in ECS RunTask's shape.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// inMap marks a tag given in AWS Batch's map shape: there is no index
	// to name it by, so its problems name its key.
	inMap bool
}

// TagList is the tags of a submission. Its JSON is either ECS RunTask's
// list, [{"key": "team", "value": "data"}], or AWS Batch SubmitJob's
// object, {"team": "data"}; it is written as the list. The run keeps
// them as a map (Run.Tags).
type TagList []Tag

// errTagShape is the error of tags in neither shape. encoding/json
// passes it on as it is, without the path of the tags it read: a
// pipeline file, which has tags in several places, finds which
// (tagShapeProblems).
var errTagShape = errors.New(`tags: want a list of {"key": ..., "value": ...} (as ECS RunTask) or an object of strings (as AWS Batch SubmitJob)`)

// UnmarshalJSON reads either shape. An object's tags come in key order.
func (l *TagList) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	want := errTagShape
	switch {
	case string(data) == "null":
		*l = nil
	case len(data) > 0 && data[0] == '{':
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return want
		}
		out := make(TagList, 0, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, Tag{Key: k, Value: m[k], inMap: true})
		}
		*l = out
	default:
		var list []Tag
		if err := json.Unmarshal(data, &list); err != nil {
			return want
		}
		*l = list
	}
	return nil
}

// Map is the tags as the run keeps them, nil when there are none.
func (l TagList) Map() map[string]string {
	if len(l) == 0 {
		return nil
	}
	m := make(map[string]string, len(l))
	for _, t := range l {
		m[t.Key] = t.Value
	}
	return m
}

// TagsOf lists a map of tags in key order, as a TagList given in the map
// shape.
func TagsOf(m map[string]string) TagList {
	if len(m) == 0 {
		return nil
	}
	out := make(TagList, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, Tag{Key: k, Value: m[k], inMap: true})
	}
	return out
}

// Validate collects the problems of the tags, each naming its path under
// field ("tags"): field[i].key and field[i].value for a list, field["k"]
// for an object's entry.
func (l TagList) Validate(field string) error {
	var errs []error
	if len(l) > MaxTags {
		errs = append(errs, &FieldError{field, fmt.Sprintf("%d tags: at most %d", len(l), MaxTags)})
	}
	first := map[string]int{}
	for i, t := range l {
		keyPath, valuePath := fmt.Sprintf("%s[%d].key", field, i), fmt.Sprintf("%s[%d].value", field, i)
		if t.inMap {
			keyPath = fmt.Sprintf("%s[%q]", field, t.Key)
			valuePath = keyPath
		}
		if err := CheckTagKey(keyPath, t.Key); err != nil {
			errs = append(errs, err)
		}
		if err := CheckTagValue(valuePath, t.Value); err != nil {
			errs = append(errs, err)
		}
		if j, dup := first[t.Key]; dup {
			errs = append(errs, &FieldError{keyPath, fmt.Sprintf("%q: given twice (also %s[%d].key)", t.Key, field, j)})
		} else {
			first[t.Key] = i
		}
	}
	return errors.Join(errs...)
}

// CheckTagKey says what is wrong with a tag key, naming path.
func CheckTagKey(path, key string) error {
	n := utf8.RuneCountInString(key)
	switch {
	case key == "":
		return &FieldError{path, fmt.Sprintf("empty key: a key has 1 to %d characters", MaxTagKeyLen)}
	case n > MaxTagKeyLen:
		return &FieldError{path, fmt.Sprintf("key of %d characters: at most %d", n, MaxTagKeyLen)}
	}
	if r, ok := badTagRune(key, false); !ok {
		return &FieldError{path, fmt.Sprintf("key %q: character %q not allowed: use letters, digits, spaces and _ . : / + - @", key, r)}
	}
	if lower := strings.ToLower(key); strings.HasPrefix(lower, "gantry:") || strings.HasPrefix(lower, "gantry.") {
		return &FieldError{path, fmt.Sprintf("key %q: the prefixes gantry: and gantry. are reserved for gantry's own tags", key)}
	}
	return nil
}

// CheckTagValue says what is wrong with a tag value, naming path.
func CheckTagValue(path, value string) error {
	if n := utf8.RuneCountInString(value); n > MaxTagValueLen {
		return &FieldError{path, fmt.Sprintf("value of %d characters: at most %d", n, MaxTagValueLen)}
	}
	if r, ok := badTagRune(value, true); !ok {
		return &FieldError{path, fmt.Sprintf("value %q: character %q not allowed: use letters, digits, spaces and _ . : / = + - @", value, r)}
	}
	return nil
}

// badTagRune finds the first character AWS's tag pattern
// [\p{L}\p{Z}\p{N}_.:/=+\-@]* refuses ('=' too in a key); ok is true when
// there is none.
func badTagRune(s string, equals bool) (r rune, ok bool) {
	for _, r := range s {
		switch {
		case unicode.IsLetter(r), unicode.Is(unicode.Z, r), unicode.IsNumber(r), strings.ContainsRune("_.:/+-@", r):
		case r == '=' && equals:
		default:
			return r, false
		}
	}
	return 0, true
}

// ParseTag reads a command line's K=V (K= is an empty value). With
// keyOnly, a lone K is taken too, with has false: a filter on the key.
func ParseTag(s string, keyOnly bool) (key, value string, has bool, err error) {
	key, value, has = strings.Cut(s, "=")
	if !has && !keyOnly {
		return "", "", false, fmt.Errorf("%q: want KEY=VALUE (KEY= for an empty value)", s)
	}
	if err := CheckTagKey("key", key); err != nil {
		return "", "", false, fmt.Errorf("%q: %s", s, strings.TrimPrefix(err.Error(), "key: "))
	}
	if err := CheckTagValue("value", value); err != nil {
		return "", "", false, fmt.Errorf("%q: %s", s, strings.TrimPrefix(err.Error(), "value: "))
	}
	return key, value, has, nil
}

// StageTags are the tags of st's runs: the pipeline file's, the stage's
// over them and those the run was started with over both, key by key;
// nil when there are none.
func (pr *PipelineRun) StageTags(st *Stage) map[string]string {
	return mergeTags(pr.Spec.Tags, st.Tags, TagsOf(pr.Tags))
}

// CheckStageTags reports the stages of p whose runs would have more than
// MaxTags tags, the pipeline's, the stage's and extra (those a run is
// started with) together, naming each stage's tags.
func (p *Pipeline) CheckStageTags(extra TagList) error {
	var errs []error
	for i := range p.Stages {
		st := &p.Stages[i]
		if n := len(mergeTags(p.Tags, st.Tags, extra)); n > MaxTags {
			what := "the pipeline's and its own"
			if len(extra) > 0 {
				what = "the pipeline's, its own and the run's"
			}
			errs = append(errs, &FieldError{stagePath(i, st.Name) + ".tags",
				fmt.Sprintf("%d tags, %s together: at most %d", n, what, MaxTags)})
		}
	}
	return errors.Join(errs...)
}

// mergeTags joins lists into a map, a later list's tag over an earlier's
// of the same key; nil when there are none.
func mergeTags(lists ...TagList) map[string]string {
	var m map[string]string
	for _, l := range lists {
		for _, t := range l {
			if m == nil {
				m = map[string]string{}
			}
			m[t.Key] = t.Value
		}
	}
	return m
}

// tagShapeProblems names the tags of a pipeline file (JSON) that are in
// neither shape, by their field paths (tags, stages[1](load).tags), for
// the decoding error that says only that some are.
func tagShapeProblems(js []byte) error {
	return fieldProblems(js, "tags", true, func(path string, raw json.RawMessage) []error {
		var l TagList
		if l.UnmarshalJSON(raw) != nil {
			return []error{&FieldError{path, strings.TrimPrefix(errTagShape.Error(), "tags: ")}}
		}
		return nil
	})
}

// PropagateTags values, as ECS RunTask's (SERVICE has no meaning here).
const (
	PropagateTaskDefinition = "TASK_DEFINITION"
	PropagateNone           = "NONE"
)

// CheckPropagateTags checks a propagateTags value at path: empty,
// TASK_DEFINITION or NONE.
func CheckPropagateTags(path, v string) error {
	switch v {
	case "", PropagateNone, PropagateTaskDefinition:
		return nil
	case "SERVICE":
		return &FieldError{path, `"SERVICE": gantry has no services; want TASK_DEFINITION or NONE`}
	}
	return &FieldError{path, fmt.Sprintf("%q: want TASK_DEFINITION or NONE", v)}
}

// StagePropagateTags is the propagateTags of st's runs: the stage's, or
// else the pipeline file's.
func (pr *PipelineRun) StagePropagateTags(st *Stage) string {
	if st.PropagateTags != "" {
		return st.PropagateTags
	}
	return pr.Spec.PropagateTags
}

// RunTags are the tags of a run of td that req submits: req's, and with
// propagateTags TASK_DEFINITION td's under them key by key; more than
// MaxTags together is an error naming both.
func RunTags(req *SubmitRequest, td *TaskDefinition) (map[string]string, error) {
	if req.PropagateTags != PropagateTaskDefinition || len(td.Tags) == 0 {
		return req.Tags.Map(), nil
	}
	m := mergeTags(td.Tags, req.Tags)
	if len(m) > MaxTags {
		return nil, &FieldError{"tags", fmt.Sprintf("%d tags with the task definition's (propagateTags TASK_DEFINITION): at most %d", len(m), MaxTags)}
	}
	return m, nil
}
