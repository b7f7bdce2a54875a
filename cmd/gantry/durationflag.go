package main

import (
	"errors"
	"time"

	"github.com/spf13/pflag"

	"github.com/gantry-dev/gantry/jobs"
)

// durationHelp is what a duration flag accepts, for its error.
const durationHelp = "want a duration such as 90s, 10m, 1h30m, 2d (days of 24h) or 1w"

// errDurationFlag is the error of a duration flag given garbage; pflag puts
// the flag and the text before it.
var errDurationFlag = errors.New(durationHelp)

// durationValue is a duration flag that takes days and weeks (2d, 1d12h,
// 1w: jobs.ParseDuration) besides Go's units, which have none.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := jobs.ParseDuration(s)
	if err != nil {
		return errDurationFlag
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Type() string   { return "duration" }

// durationVar defines a duration flag as pflag's DurationVar does, taking
// days and weeks too.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var((*durationValue)(p), name, usage)
}
