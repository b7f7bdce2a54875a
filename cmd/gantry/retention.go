package main

import (
	"fmt"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/spf13/cobra"
)

// addDataRetentionFlag adds --data-retention to `gantry up` and `gantry
// server`.
func addDataRetentionFlag(c *cobra.Command, d *time.Duration) {
	c.Flags().DurationVar(d, "data-retention", queue.DefaultDataRetention,
		"how long the files pipeline stages pass along are kept after their pipeline run ended (more than 0, at most 50 years)")
}

// maxDataRetention bounds --data-retention as jobs.MaxDurationSeconds
// bounds timeouts: 50 years, far from overflowing the bucket's TTL
// (the retention plus queue.DataBucketSlack).
const maxDataRetention = jobs.MaxDurationSeconds * time.Second

// checkDataRetention refuses a --data-retention that is not positive,
// which the server took for the default (168h) without a word: 0 could as
// well mean "delete at once" or "keep for ever", and it does neither.
func checkDataRetention(d time.Duration) error {
	switch {
	case d <= 0:
		return fmt.Errorf("--data-retention %s: must be more than 0 (how long stage files are kept after their pipeline run ended; default %s)",
			d, queue.DefaultDataRetention)
	case d > maxDataRetention:
		return fmt.Errorf("--data-retention %s: must be at most %s (50 years)", d, maxDataRetention)
	}
	return nil
}
