package jobs

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// maxDiffValue bounds a value shown in a change; a longer one is only
// said to have changed.
const maxDiffValue = 60

// PipelineChanges summarizes, a line each, what differs between two
// versions of a pipeline, as an apply's dry run tells it: a field's old
// and new values (`schedule.cron: "0 2 * * *" -> "0 3 * * *"`), stages
// added, removed or moved by name, and a stage's fields by its path in
// the new file (`stages[1](transform).timeoutSeconds: 600 -> 900`).
// Version and creation time are not compared. Equal pipelines have none.
func PipelineChanges(old, new *Pipeline) []string {
	a, b := pipelineTree(old), pipelineTree(new)
	var out []string
	for _, k := range jsonKeys(reflect.TypeFor[Pipeline]()) {
		if k == "stages" {
			out = append(out, stageChanges(a[k], b[k])...)
			continue
		}
		diffValue(k, a[k], b[k], &out)
	}
	return out
}

// pipelineTree is p as decoded JSON, without its version and time.
func pipelineTree(p *Pipeline) map[string]any {
	x := *p
	x.Version, x.CreatedAt = 0, time.Time{}
	data, _ := json.Marshal(&x)
	var tree map[string]any
	_ = json.Unmarshal(data, &tree)
	return tree
}

// jsonKeys lists the JSON names of t's fields in their order.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

func stageChanges(a, b any) []string {
	olds, _ := a.([]any)
	news, _ := b.([]any)
	name := func(s any) string {
		m, _ := s.(map[string]any)
		n, _ := m["name"].(string)
		return n
	}
	oldIdx := map[string]int{}
	for i, s := range olds {
		oldIdx[name(s)] = i
	}
	var out, kept []string
	newNames := map[string]bool{}
	for i, s := range news {
		n := name(s)
		newNames[n] = true
		path := fmt.Sprintf("stages[%d](%s)", i, n)
		j, ok := oldIdx[n]
		if !ok {
			out = append(out, path+": added")
			continue
		}
		kept = append(kept, n)
		om, _ := olds[j].(map[string]any)
		nm, _ := s.(map[string]any)
		for _, k := range jsonKeys(reflect.TypeFor[Stage]()) {
			if k != "name" {
				diffValue(path+"."+k, om[k], nm[k], &out)
			}
		}
	}
	for i, s := range olds {
		if n := name(s); !newNames[n] {
			out = append(out, fmt.Sprintf("stages[%d](%s): removed", i, n))
		}
	}
	var keptOld []string
	for _, s := range olds {
		if newNames[name(s)] {
			keptOld = append(keptOld, name(s))
		}
	}
	if !slices.Equal(kept, keptOld) {
		out = append(out, "stages: order changed")
	}
	return out
}

// diffValue appends what differs between a and b (decoded JSON, nil for
// absent) at path: objects key by key, anything else as a whole.
func diffValue(path string, a, b any, out *[]string) {
	if reflect.DeepEqual(a, b) {
		return
	}
	switch {
	case a == nil:
		*out = append(*out, path+": added"+shown(" ", b))
		return
	case b == nil:
		*out = append(*out, path+": removed"+shown(" (was ", a, ")"))
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			diffValue(path+"."+k, am[k], bm[k], out)
		}
		return
	}
	sa, sb := compact(a), compact(b)
	if len(sa) > maxDiffValue || len(sb) > maxDiffValue {
		*out = append(*out, path+": changed")
		return
	}
	*out = append(*out, path+": "+sa+" -> "+sb)
}

// shown is v's JSON between before and the optional after, or nothing
// when it is too long to show.
func shown(before string, v any, after ...string) string {
	s := compact(v)
	if len(s) > maxDiffValue {
		return ""
	}
	return before + s + strings.Join(after, "")
}

func compact(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}
