package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// output is the -o flag of listings and describe.
type output string

func addOutputFlag(c *cobra.Command, o *output) {
	*o = "table"
	c.Flags().VarP(o, "output", "o", "output format: table, json or yaml")
}

// outputWide is -o wide of the listings that have it (gantry ps): the
// table with more columns, as kubectl's, not cut to the terminal's width.
const outputWide output = "wide"

// addWideOutputFlag adds -o that takes wide too.
func addWideOutputFlag(c *cobra.Command, o *output) {
	*o = "table"
	c.Flags().VarP(wideOutput{o}, "output", "o", "output format: table, wide (more columns, tags too, lines not cut to the terminal), json or yaml")
}

// wideOutput is an output that may be wide.
type wideOutput struct{ *output }

func (wideOutput) Type() string { return "table|wide|json|yaml" }
func (o wideOutput) Set(s string) error {
	if s == string(outputWide) {
		*o.output = outputWide
		return nil
	}
	if err := o.output.Set(s); err != nil {
		return fmt.Errorf("%q: want table, wide, json or yaml", s)
	}
	return nil
}

func (o *output) String() string { return string(*o) }
func (o *output) Type() string   { return "table|json|yaml" }
func (o *output) Set(s string) error {
	switch s {
	case "table", "json", "yaml":
		*o = output(s)
		return nil
	}
	return fmt.Errorf("%q: want table, json or yaml", s)
}

// write prints v as JSON or YAML (with JSON's field names), or calls table.
// An empty listing is [] however it was made: a nil slice would print
// null, over which jq's .[] fails ("cannot iterate over null").
func (o output) write(w io.Writer, v any, table func(w io.Writer) error) error {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
		v = []any{}
	}
	switch o {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	case "yaml":
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		node, err := yamlNode(dec)
		if err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(node); err != nil {
			return err
		}
		return enc.Close()
	}
	if st := styleOf(w); st.tty { // table.go: fit the terminal, colour
		if o == outputWide {
			st.width = 0 // whole lines: the terminal wraps them, less -S scrolls
		}
		var buf strings.Builder
		if err := table(&buf); err != nil {
			return err
		}
		_, err := io.WriteString(w, renderTable(buf.String(), st))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if err := table(tw); err != nil {
		return err
	}
	return tw.Flush()
}

// show is the body of the listing, describe and delete commands: it
// connects, calls get, and writes what it returns as -o asks, table
// printing the table.
func show[T any](cmd *cobra.Command, g *globals, out output, get func(context.Context, *client.Client) (T, error),
	table func(io.Writer, T) error) error {
	nc, c, err := g.connect(cmd.Context())
	if err != nil {
		return err
	}
	defer nc.Close()
	v, err := get(cmd.Context(), c)
	if err != nil {
		return err
	}
	return out.write(cmd.OutOrStdout(), v, func(w io.Writer) error { return table(w, v) })
}

// ago shows how long ago t was, briefly.
func ago(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return short(now.Sub(t)) + " ago"
}

// short prints a duration the way people read it: 850ms, 12s, 3m4s, 2h5m, 3d.
func short(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// yamlNode reads the JSON value dec is at into a YAML node, keeping the
// order of every object's fields: -o yaml shows them in -o json's order
// (runId, status, exitCode first), where a map would have sorted them.
// Scalars are encoded as before, numbers as integers where they are whole.
func yamlNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if t == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := yamlNode(dec) // a key: a string
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k)
			}
			e, err := yamlNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, e)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case json.Number:
		var v any
		if i, err := t.Int64(); err == nil {
			v = i
		} else {
			v, _ = t.Float64()
		}
		return scalarNode(v)
	default: // string, bool, nil
		return scalarNode(t)
	}
}

// scalarNode is the YAML node of a string, number, bool or nil, quoted
// where YAML would read it as another type ("true", "3").
func scalarNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return &n, nil
}
