package jobs

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

func TestPipelineChanges(t *testing.T) {
	const base = `name: p
parameters: {day: "2026-01-01"}
schedule: {cron: "0 2 * * *"}
stages:
  - {name: extract, taskDefinition: extract:3, timeoutSeconds: 600}
  - {name: transform, taskDefinition: transform, dependsOn: [extract]}
  - {name: load, taskDefinition: load, dependsOn: [transform]}
`
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"same", base, nil},
		{"fields", strings.NewReplacer(`"0 2 * * *"`, `"0 3 * * *", suspend: true`, "extract:3", "extract:4",
			"timeoutSeconds: 600", "timeoutSeconds: 900", `day: "2026-01-01"`, `day: "2026-01-01", region: eu`).Replace(base),
			[]string{`parameters.region: added eu`, `schedule.cron: "0 2 * * *" -> "0 3 * * *"`, `schedule.suspend: added true`,
				`stages[0](extract).taskDefinition: extract:3 -> extract:4`, `stages[0](extract).timeoutSeconds: 600 -> 900`}},
		// Values read as the file writes them, not as the JSON stored.
		{"as written", strings.NewReplacer("dependsOn: [extract]}", "dependsOn: [extract], arraySize: {fromOutput: extract.FILES}, tags: {team: data}}",
			"dependsOn: [transform]}", "dependsOn: [transform, {stage: extract, condition: failure}], skipOnExitCode: [3, 4]}",
			`day: "2026-01-01"`, `day: "2026-01-02", rows: 100, flag: "true", empty: ""`).Replace(base),
			[]string{`parameters.day: "2026-01-01" -> "2026-01-02"`, `parameters.empty: added ""`, `parameters.flag: added "true"`, `parameters.rows: added "100"`,
				`stages[1](transform).arraySize: added {fromOutput: extract.FILES}`, `stages[1](transform).tags: added {team: data}`,
				`stages[2](load).dependsOn: [transform] -> [transform, {stage: extract, condition: failure}]`,
				`stages[2](load).skipOnExitCode: added [3, 4]`}},
		// A trigger rule set, and a stage's dependencies with it.
		{"trigger rule", strings.Replace(base, "  - {name: load, taskDefinition: load, dependsOn: [transform]}\n",
			"  - {name: load, taskDefinition: load, dependsOn: [transform, extract], triggerRule: oneFailed}\n", 1),
			[]string{"stages[2](load).dependsOn: [transform] -> [transform, extract]", "stages[2](load).triggerRule: added oneFailed"}},
		{"stages added and removed", strings.Replace(base, "  - {name: load, taskDefinition: load, dependsOn: [transform]}\n",
			"  - {name: report, taskDefinition: report, dependsOn: [transform]}\n", 1),
			[]string{"stages[2](report): added", "stages[2](load): removed"}},
		{"order", "name: p\nparameters: {day: \"2026-01-01\"}\nschedule: {cron: \"0 2 * * *\"}\nstages:\n" +
			"  - {name: transform, taskDefinition: transform, dependsOn: [extract]}\n" +
			"  - {name: extract, taskDefinition: extract:3, timeoutSeconds: 600}\n" +
			"  - {name: load, taskDefinition: load, dependsOn: [transform]}\n",
			[]string{"stages: order changed"}},
		{"schedule removed, long value", "name: p\nparameters: {day: \"2026-01-01\"}\nstages:\n" +
			"  - {name: extract, taskDefinition: extract:3, timeoutSeconds: 600}\n" +
			"  - {name: transform, taskDefinition: transform, dependsOn: [extract, {stage: extract, condition: complete}, {stage: extract, condition: failure}]}\n" +
			"  - {name: load, taskDefinition: load, dependsOn: [transform]}\n",
			[]string{`schedule: removed (was {cron: "0 2 * * *"})`, "stages[1](transform).dependsOn: changed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old, err := ParsePipeline([]byte(base))
			if err != nil {
				t.Fatal(err)
			}
			p, err := DecodePipeline([]byte(c.src))
			if err != nil {
				t.Fatal(err)
			}
			old.Version, p.Version = 3, 0 // never compared
			if got := PipelineChanges(old, p); !slices.Equal(got, c.want) {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}

	// A size changed from an output to a number, and tags key by key.
	old, err := ParsePipeline([]byte(strings.Replace(base, "dependsOn: [extract]}", "dependsOn: [extract], arraySize: {fromOutput: extract.FILES}, tags: {team: data, env: prod}}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePipeline([]byte(strings.Replace(base, "dependsOn: [extract]}", "dependsOn: [extract], arraySize: 2, tags: [{key: team, value: ops}]}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"stages[1](transform).arraySize: {fromOutput: extract.FILES} -> 2", "stages[1](transform).tags.env: removed (was prod)",
		"stages[1](transform).tags.team: data -> ops"}
	if got := PipelineChanges(old, p); !slices.Equal(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCompactReadsBack: a value as a change shows it reads back, as YAML,
// as the value it is, in a flow mapping and sequence too: a string is
// left bare only where YAML keeps it a string.
func TestCompactReadsBack(t *testing.T) {
	for _, s := range []string{"extract.FILES", "Europe/Paris", "extract:3", "a-b_c+d@e", "x", "_x", "", " ", "true", "True", "no", "Y", "null", "~",
		"1", "1.5", "0x10", "2026-01-01", "0 2 * * *", "${day}", "a: b", "a:", "a #b", "-a", "*a", "&a", "!a", "%a", "@a", "`a", "'a", `"a`, "a,b", "a]", "a}",
		"[a]", "{a: b}", "?a", "|", ">", "a\nb", ".inf", ".nan", "NaN", "é", "a\tb", "<<"} {
		for _, v := range []any{s, []any{s, "x"}, map[string]any{s: s, "k": "v"}} {
			shown := compact(v)
			var back any
			if err := yaml.Unmarshal([]byte("v: "+shown), &back); err != nil {
				t.Errorf("%q shown as %s: %v", v, shown, err)
				continue
			}
			if got := back.(map[string]any)["v"]; !reflect.DeepEqual(got, v) {
				t.Errorf("%q shown as %s reads back as %#v", v, shown, got)
			}
		}
	}
	if got := compact(map[string]any{"condition": "failure", "stage": "extract"}); got != "{stage: extract, condition: failure}" {
		t.Errorf("a dependency shown as %s", got)
	}
}

// TestPipelineChangesSeesEveryField: a field added to Pipeline or Stage
// is told when it changes without PipelineChanges naming it, whatever its
// type: each field set in turn to a value of its type makes a change
// under its JSON name. A field PipelineChanges would not see (one without
// a JSON name, say) fails here, not silently in a dry run.
func TestPipelineChangesSeesEveryField(t *testing.T) {
	base := func() *Pipeline {
		return &Pipeline{Name: "p", Stages: []Stage{{Name: "a", TaskDefinition: json.RawMessage(`"t"`)}}}
	}
	check := func(path string, p *Pipeline) {
		t.Helper()
		changes := PipelineChanges(base(), p)
		if !slices.ContainsFunc(changes, func(c string) bool { return strings.HasPrefix(c, path+":") || strings.HasPrefix(c, path+".") }) {
			t.Errorf("%s set: changes %q name no %s", path, changes, path)
		}
	}
	pt := reflect.TypeFor[Pipeline]()
	for i := range pt.NumField() {
		key := jsonFieldName(pt.Field(i))
		switch key {
		case "-", "name", "version", "createdAt", "stages": // not stored, or not compared, or compared by stage
			continue
		}
		p := base()
		reflect.ValueOf(p).Elem().Field(i).Set(sampleValue(pt.Field(i).Type))
		check(key, p)
	}
	st := reflect.TypeFor[Stage]()
	for i := range st.NumField() {
		key := jsonFieldName(st.Field(i))
		if key == "-" || key == "name" { // a stage is its name: another is added and removed
			continue
		}
		p := base()
		reflect.ValueOf(&p.Stages[0]).Elem().Field(i).Set(sampleValue(st.Field(i).Type))
		check("stages[0](a)."+key, p)
	}
}

// jsonFieldName is a struct field's name in JSON.
func jsonFieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// sampleValue is a value of type t unlike its zero value, every field and
// element of it set.
func sampleValue(t reflect.Type) reflect.Value {
	switch t {
	case reflect.TypeFor[json.RawMessage]():
		return reflect.ValueOf(json.RawMessage(`"x"`))
	case reflect.TypeFor[time.Time]():
		return reflect.ValueOf(time.Unix(7, 0).UTC())
	}
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		p.Elem().Set(sampleValue(t.Elem()))
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(t, 1, 1)
		s.Index(0).Set(sampleValue(t.Elem()))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(t)
		m.SetMapIndex(sampleValue(t.Key()), sampleValue(t.Elem()))
		v.Set(m)
	case reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				v.Field(i).Set(sampleValue(t.Field(i).Type))
			}
		}
	}
	return v
}

// FuzzCompactReadsBack: any string a change shows, alone or in a flow
// sequence or mapping, reads back as YAML as that string.
func FuzzCompactReadsBack(f *testing.F) {
	for _, s := range []string{"extract.FILES", "extract:3", "0 2 * * *", "", "true", "a: b", "${day}", "-a", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // a JSON-quoted string is valid UTF-8: not s
		}
		for _, v := range []any{s, []any{s, "x"}, map[string]any{"k": s}} {
			shown := compact(v)
			var back map[string]any
			if err := yaml.Unmarshal([]byte("v: "+shown), &back); err != nil {
				t.Fatalf("%q shown as %s: %v", s, shown, err)
			}
			if !reflect.DeepEqual(back["v"], v) {
				t.Fatalf("%q shown as %s reads back as %#v", s, shown, back["v"])
			}
		}
	})
}
