package main

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
	"go.yaml.in/yaml/v3"
)

// TestEmptyListingIsAnEmptyList: gantry ps -o json with no run to list
// printed null, which the README's own `jq -r '.[].runId'` fails on
// ("cannot iterate over null"); every empty listing prints [].
func TestEmptyListingIsAnEmptyList(t *testing.T) {
	table := func(io.Writer) error { return nil }
	for _, c := range []struct {
		o    output
		v    any
		want string
	}{
		{"json", []jobs.Run(nil), "[]\n"},
		{"yaml", []jobs.Run(nil), "[]\n"},
		{"json", []jobs.Run{}, "[]\n"},
		{"json", (*jobs.Run)(nil), "null\n"}, // not a listing: left as it is
	} {
		var b bytes.Buffer
		if err := c.o.write(&b, c.v, table); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("-o %s of %#v: %q; want %q", c.o, c.v, b.String(), c.want)
		}
	}
}

// TestYAMLKeepsJSONOrder: -o yaml sorted every object's keys (attempts
// before runId, status near the end) where -o json keeps the fields'
// order; it now prints them in JSON's order, with the same values.
func TestYAMLKeepsJSONOrder(t *testing.T) {
	fixedClock(t)
	runs := goldenRuns()
	tricky := map[string]any{"list": []any{"true", "3", "a\nb", 1048576, 0.5, nil, false, map[string]any{}, []any{}}}
	for _, v := range []any{runs, &runs[1], tricky} {
		var js, ys bytes.Buffer
		if err := output("json").write(&js, v, nil); err != nil {
			t.Fatal(err)
		}
		if err := output("yaml").write(&ys, v, nil); err != nil {
			t.Fatal(err)
		}
		var fromJSON, fromYAML any
		if err := json.Unmarshal(js.Bytes(), &fromJSON); err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(ys.Bytes(), &fromYAML); err != nil {
			t.Fatal(err)
		}
		// Numbers as JSON reads them, to compare.
		back, _ := json.Marshal(fromYAML)
		fromYAML = nil
		json.Unmarshal(back, &fromYAML)
		if !reflect.DeepEqual(fromJSON, fromYAML) {
			t.Errorf("-o yaml's values differ from -o json's:\n%s\n%s", ys.String(), js.String())
		}
		if jk, yk := keyOrder(t, js.Bytes()), keyOrder(t, ys.Bytes()); !slices.Equal(jk, yk) {
			t.Errorf("-o yaml's keys in the order\n%q\nwant -o json's\n%q", yk, jk)
		}
	}
}

// keyOrder lists the keys of every object in data, depth first, in the
// order they are written, read through a yaml.Node (YAML is a superset
// of JSON, and a node keeps the order).
func keyOrder(t *testing.T, data []byte) []string {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				keys = append(keys, c.Value)
				continue
			}
			walk(c)
		}
	}
	walk(&n)
	return keys
}

// FuzzYAMLNode: any JSON value -o yaml prints reads back as the same
// value, its objects' keys in JSON's order.
func FuzzYAMLNode(f *testing.F) {
	f.Add(`{"runId":"r1","status":"FAILED","exitCode":3,"attempts":[{"b":1,"a":"true"}]}`)
	f.Add(`[1048576, 0.25, null, false, "3", "a\nb", {}, []]`)
	f.Add(`{"z":{"y":{"x":"no"}}, "": ""}`)
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		if json.Unmarshal([]byte(in), &v) != nil {
			return
		}
		if yaml.Unmarshal([]byte(in), &v) != nil {
			return // a key twice in an object, which no reply of the API has
		}
		var ys, js bytes.Buffer
		if err := output("yaml").write(&ys, json.RawMessage(in), nil); err != nil {
			return // what json.Marshal refuses (invalid UTF-8 is replaced, not refused)
		}
		if err := output("json").write(&js, json.RawMessage(in), nil); err != nil {
			t.Fatal(err)
		}
		var fromYAML, fromJSON any
		if err := yaml.Unmarshal(ys.Bytes(), &fromYAML); err != nil {
			t.Fatalf("%q: -o yaml %q does not read back: %v", in, ys.String(), err)
		}
		json.Unmarshal(js.Bytes(), &fromJSON)
		back, err := json.Marshal(fromYAML)
		if err != nil {
			t.Fatalf("%q: -o yaml %q reads back as %#v", in, ys.String(), fromYAML)
		}
		fromYAML = nil
		json.Unmarshal(back, &fromYAML)
		if !reflect.DeepEqual(fromJSON, fromYAML) {
			t.Errorf("%q: -o yaml %q reads back as %v", in, ys.String(), fromYAML)
		}
		if jk, yk := keyOrder(t, js.Bytes()), keyOrder(t, ys.Bytes()); !slices.Equal(jk, yk) {
			t.Errorf("%q: -o yaml's keys %q, want %q", in, yk, jk)
		}
	})
}
