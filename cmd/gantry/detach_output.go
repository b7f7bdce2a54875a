package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// addDetachOutputFlag adds -o to a command that prints an id when
// detached (`gantry run -d`, `gantry pipeline run -d`): table, the
// default, prints only the id, as scripts expect; json and yaml print the
// whole object the server returned.
func addDetachOutputFlag(c *cobra.Command, o *output) {
	*o = "table"
	c.Flags().VarP(o, "output", "o", "with -d: table prints only the id; json or yaml print the whole run")
}

// detachedOnly refuses -o json|yaml on an attached command, whose stdout
// carries the run's output.
func (o output) detachedOnly(detach bool) error {
	if o != "table" && !detach {
		return fmt.Errorf("-o %s needs -d: attached, stdout carries the run's output", o)
	}
	return nil
}

// writeID prints id, or v as JSON or YAML.
func (o output) writeID(w io.Writer, id string, v any) error {
	if o == "table" {
		_, err := fmt.Fprintln(w, id)
		return err
	}
	return o.write(w, v, nil)
}
