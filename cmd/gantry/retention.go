package main

import (
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/spf13/cobra"
)

// addDataRetentionFlag adds --data-retention to `gantry up` and `gantry
// server`.
func addDataRetentionFlag(c *cobra.Command, d *time.Duration) {
	c.Flags().DurationVar(d, "data-retention", queue.DefaultDataRetention,
		"how long the files pipeline stages pass along are kept after their pipeline run ended")
}
