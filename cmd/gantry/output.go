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
		var generic any
		if err := dec.Decode(&generic); err != nil {
			return err
		}
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(yamlNumbers(generic)); err != nil {
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

// yamlNumbers turns the JSON numbers of v into integers where they are
// (a float64 would print 1048576 as 1.048576e+06) and floats elsewhere.
func yamlNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = yamlNumbers(e)
		}
	}
	return v
}
