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
// Values are written as a pipeline file writes them, in YAML's flow
// style (`{fromOutput: extract.FILES} -> 2`, `[extract] -> [extract,
// clean]`), not as the JSON they are stored as.
// Version and creation time are not compared. Equal pipelines have none.
func PipelineChanges(old, new *Pipeline) []string {
	a, b := pipelineTree(old), pipelineTree(new)
	var out []string
	for _, k := range jsonKeys(reflect.TypeFor[Pipeline]()) {
		if k == "stages" {
			out = append(out, stageChanges(a[k], b[k])...)
			continue
		}
		diffValue(k, asWritten(k, a[k]), asWritten(k, b[k]), &out)
	}
	return out
}

// asWritten is the decoded JSON v of field key (of a pipeline or a
// stage) in the shorter shape a file may write it in, so that a change
// reads as the file does: a dependency on success is the stage's name
// alone ([extract], not [{stage: extract, condition: success}]), tags are
// a mapping ({team: data}, each key's change a line of its own).
func asWritten(key string, v any) any {
	switch key {
	case "dependsOn":
		deps, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, len(deps))
		for i, d := range deps {
			out[i] = d
			m, ok := d.(map[string]any)
			if !ok || m["condition"] != string(CondSuccess) {
				continue
			}
			name, ok := m["stage"].(string)
			switch {
			case ok && len(m) == 2:
				out[i] = name
			case ok && len(m) == 3 && m["type"] != nil:
				// {stage: a, type: N_TO_N}, its condition the default.
				out[i] = map[string]any{"stage": name, "type": m["type"]}
			}
		}
		return out
	case "tags":
		list, ok := v.([]any)
		if !ok {
			return v
		}
		tags := make(map[string]any, len(list))
		for _, t := range list {
			m, _ := t.(map[string]any)
			k, ok := m["key"].(string)
			if _, dup := tags[k]; !ok || dup || len(m) != 2 {
				return v // not a mapping's: shown as it is
			}
			tags[k] = m["value"]
		}
		return tags
	}
	return v
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
				diffValue(path+"."+k, asWritten(k, om[k]), asWritten(k, nm[k]), &out)
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

// shown is v as compact writes it between before and the optional
// after, or nothing when it is too long to show.
func shown(before string, v any, after ...string) string {
	s := compact(v)
	if len(s) > maxDiffValue {
		return ""
	}
	return before + s + strings.Join(after, "")
}

// compact writes decoded JSON v on one line as a pipeline file would, in
// YAML's flow style: {fromOutput: extract.FILES}, [3, 4], a string bare
// where YAML reads it back as that string (extract.FILES, Europe/Paris)
// and quoted where it would not or reads ambiguously ("0 2 * * *",
// "2026-01-01", "true", "").
func compact(v any) string {
	var b strings.Builder
	writeFlow(&b, v)
	return b.String()
}

func writeFlow(b *strings.Builder, v any) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if ri, rj := keyRank(keys[i]), keyRank(keys[j]); ri != rj {
				return ri < rj
			}
			return keys[i] < keys[j]
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeFlow(b, k)
			b.WriteString(": ")
			writeFlow(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeFlow(b, e)
		}
		b.WriteByte(']')
	case string:
		if plainString(v) {
			b.WriteString(v)
			return
		}
		b.WriteString(quoted(v))
	default:
		data, _ := json.Marshal(v)
		b.Write(data)
	}
}

// quoted is s as a YAML double-quoted string: JSON's quoting, and the
// characters YAML allows in no string written as they are (DEL, C1
// controls, NEL a line break in one) as escapes.
func quoted(s string) string {
	data, _ := json.Marshal(s)
	var b strings.Builder
	for _, r := range string(data) {
		if r == 0x7f || 0x80 <= r && r <= 0x9f || r == 0xfffe || r == 0xffff {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// keyRank puts first the keys that name what a mapping is, as files
// write them: {name: main, ...}, {stage: extract, condition: failure},
// {output: check.MODE, equals: full}.
func keyRank(k string) int {
	switch k {
	case "name", "stage", "key", "output", "param":
		return 0
	}
	return 1
}

// plainString reports whether YAML reads s written bare, in a flow
// mapping or sequence too, as the string s: a letter or _ first, no
// space, no character YAML gives a meaning to there, no word it reads
// as another type.
func plainString(s string) bool {
	if s == "" || s[len(s)-1] == ':' {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || strings.ContainsRune("-./:@+", c)):
		default:
			return false
		}
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf":
		return false
	}
	return true
}
