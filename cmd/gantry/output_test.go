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
