package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// unknownPipelineFields names every key of a pipeline file, decoded as
// JSON into tree, that its place has no field for, with the field it
// most likely meant (stages[1](load).timeoutSecond: unknown field; did you
// mean "timeoutSeconds"?), as a task definition's are named: encoding/json
// names only the first such key, with no path. Values of types that read
// themselves (json.Unmarshaler: dependsOn's, tags, an inline task
// definition) are left to their own decoding. Nil when there are none.
func unknownPipelineFields(tree any) error {
	var errs []error
	walkFields(tree, reflect.TypeFor[Pipeline](), "", &errs)
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func walkFields(v any, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t == reflect.TypeFor[json.RawMessage]() {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return // a shape error, for encoding/json to name
		}
		fields := jsonFields(t)
		folded := make(map[string]reflect.Type, len(fields))
		for name, ft := range fields {
			folded[strings.ToLower(name)] = ft
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			fp := join(path, k)
			// encoding/json takes a key in any case: so does this.
			if ft, ok := folded[strings.ToLower(k)]; ok {
				walkFields(obj[k], ft, fp, errs)
				continue
			}
			msg := "unknown field"
			if h := fieldHint(t, k, obj[k]); h != "" {
				msg += "; " + h
			} else if s := Nearest(k, slices.Collect(maps.Keys(fields))); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			*errs = append(*errs, &FieldError{Path: fp, Msg: msg})
		}
	case reflect.Slice:
		arr, _ := v.([]any)
		for i, e := range arr {
			p := fmt.Sprintf("%s[%d]", path, i)
			if path == "stages" {
				p = stagePath(i, stageName(e))
			}
			walkFields(e, t.Elem(), p, errs)
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		keys := slices.Collect(maps.Keys(obj))
		sort.Strings(keys)
		for _, k := range keys {
			walkFields(obj[k], t.Elem(), join(path, k), errs)
		}
	}
}

// stageName is the name of a stage decoded as JSON, "" if it has none.
func stageName(v any) string {
	if obj, ok := v.(map[string]any); ok {
		if s, ok := obj["name"].(string); ok && validName(s) {
			return s
		}
	}
	return ""
}

// unknownFieldErr reports whether err is encoding/json's error for an
// unknown field, which names no path.
func unknownFieldErr(err error) bool {
	return strings.HasPrefix(err.Error(), "json: unknown field ") && !strings.Contains(err.Error(), "\n")
}
