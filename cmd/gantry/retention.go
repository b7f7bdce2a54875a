package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/spf13/cobra"
)

// addDataRetentionFlag adds --data-retention to `gantry up` and `gantry
// server`.
func addDataRetentionFlag(c *cobra.Command, d *time.Duration) {
	durationVar(c.Flags(), d, "data-retention", queue.DefaultDataRetention,
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

// historyFlags are the flags of `gantry server` and `gantry up` that bound
// what is kept of logs and of the run history: --log-retention,
// --log-max-size and --run-retention, each with its GANTRY_* variable.
type historyFlags struct {
	logRetention, runRetention time.Duration
	logMaxSize                 string
}

// Defaults and bounds of the history flags.
const (
	minLogRetention = time.Minute
	minRunRetention = time.Hour
	minLogMaxSize   = 10 << 20 // a few log messages (each up to 1 MiB)
	maxLogMaxSize   = 1 << 60  // 1 EiB: far from int64's end
)

func (f *historyFlags) add(c *cobra.Command) {
	durationVar(c.Flags(), &f.logRetention, "log-retention", envDuration("GANTRY_LOG_RETENTION", queue.DefaultLogRetention),
		"how long the GANTRY_LOGS stream keeps log lines; 0 for no age limit. Without it (or GANTRY_LOG_RETENTION) a stream that exists keeps its own, "+
			"as an operator may have set it (nats stream edit --max-age), and a new one gets 720h (30d)")
	c.Flags().StringVar(&f.logMaxSize, "log-max-size", os.Getenv("GANTRY_LOG_MAX_SIZE"),
		"most bytes the GANTRY_LOGS stream holds, e.g. 20GiB (binary units: 1GB = 1GiB); past it the oldest lines are dropped. 0 removes a bound; "+
			"without it (or GANTRY_LOG_MAX_SIZE) a stream that exists keeps its own and a new one has none")
	durationVar(c.Flags(), &f.runRetention, "run-retention", envDuration("GANTRY_RUN_RETENTION", 0),
		"delete runs and pipeline runs from the store this long after they ended (at least 1h); 0 keeps them for ever (env GANTRY_RUN_RETENTION)")
}

// check refuses bad values, naming the flag or the variable they came from.
func (f *historyFlags) check(cmd *cobra.Command) error {
	var errs []error
	if err := checkEnvDuration(cmd, "log-retention", "GANTRY_LOG_RETENTION"); err != nil {
		errs = append(errs, err)
	} else if d := f.logRetention; d < 0 || (d > 0 && d < minLogRetention) {
		errs = append(errs, fmt.Errorf("%s: want 0 (no age limit) or at least %s", durationSource(cmd, "log-retention", "GANTRY_LOG_RETENTION", d), minLogRetention))
	}
	if err := checkEnvDuration(cmd, "run-retention", "GANTRY_RUN_RETENTION"); err != nil {
		errs = append(errs, err)
	} else if d := f.runRetention; d < 0 || (d > 0 && d < minRunRetention) {
		errs = append(errs, fmt.Errorf("%s: want 0 (keep runs for ever) or at least %s, so that a run outlives "+
			"the clients waiting for its end and what its end sets off", durationSource(cmd, "run-retention", "GANTRY_RUN_RETENTION", d), minRunRetention))
	}
	if f.logMaxSize != "" {
		if _, err := parseLogMaxSize(f.logMaxSize); err != nil {
			name := "--log-max-size"
			if !cmd.Flags().Changed("log-max-size") {
				name = "GANTRY_LOG_MAX_SIZE"
			}
			errs = append(errs, fmt.Errorf("%s %q: %w", name, f.logMaxSize, err))
		}
	}
	return errors.Join(errs...)
}

// queueOptions are the log stream's limits given by flag or variable;
// those not given are left as the stream has them (queue.WithLogRetention).
func (f *historyFlags) queueOptions(cmd *cobra.Command) []queue.Option {
	var opts []queue.Option
	if cmd.Flags().Changed("log-retention") || os.Getenv("GANTRY_LOG_RETENTION") != "" {
		opts = append(opts, queue.WithLogRetention(f.logRetention))
	}
	if f.logMaxSize != "" {
		n, _ := parseLogMaxSize(f.logMaxSize) // checked
		opts = append(opts, queue.WithLogMaxBytes(n))
	}
	return opts
}

// parseLogMaxSize parses a --log-max-size: 0 (no bound), or a size in
// binary units (go-units' RAMInBytes: 20GiB, 20GB and 20g are all 20 GiB)
// from 10 MiB to 1 EiB.
func parseLogMaxSize(s string) (int64, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	n, err := units.RAMInBytes(strings.TrimSpace(s))
	switch {
	case err != nil || n < 0 || n > maxLogMaxSize:
		// RAMInBytes takes floats: a value past int64's end comes back
		// negative, or saturated, depending on the machine.
		return 0, errors.New("want a size such as 20GiB or 500MiB (binary units: 1GB = 1GiB), or 0 for no bound, at most 1EiB")
	case n < minLogMaxSize:
		return 0, fmt.Errorf("want at least 10MiB (a log message holds up to 1MiB of lines), or 0 for no bound")
	}
	return n, nil
}

// envDuration is the duration in the environment variable name, or def
// when it is unset or not a duration (checkEnvDuration refuses one that
// is not).
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := jobs.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// durationSource names where a duration flag's value d came from: the
// flag ("--run-retention 5m0s") or, when the flag was not given, its
// variable ("GANTRY_RUN_RETENTION=5m (--run-retention)"), as a user who
// set the variable long ago and gave no flag would not look for it.
func durationSource(cmd *cobra.Command, flag, env string, d time.Duration) string {
	if v := os.Getenv(env); v != "" && !cmd.Flags().Changed(flag) {
		return fmt.Sprintf("%s=%s (--%s)", env, v, flag)
	}
	return fmt.Sprintf("--%s %s", flag, d)
}

// checkEnvDuration refuses the variable env when it is set, the flag is
// not given and it is not a duration.
func checkEnvDuration(cmd *cobra.Command, flag, env string) error {
	v := os.Getenv(env)
	if v == "" || cmd.Flags().Changed(flag) {
		return nil
	}
	if _, err := jobs.ParseDuration(v); err != nil {
		return fmt.Errorf("%s=%q: want a duration such as 30d, 720h or 90m (--%s)", env, v, flag)
	}
	return nil
}
