package jobs

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
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
			[]string{`parameters.region: added "eu"`, `schedule.cron: "0 2 * * *" -> "0 3 * * *"`, `schedule.suspend: added true`,
				`stages[0](extract).taskDefinition: "extract:3" -> "extract:4"`, `stages[0](extract).timeoutSeconds: 600 -> 900`}},
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
			[]string{`schedule: removed (was {"cron":"0 2 * * *"})`, "stages[1](transform).dependsOn: changed"}},
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
