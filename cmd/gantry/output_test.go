package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
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
