package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/scheduler"
	"github.com/spf13/cobra"
)

// describedFires is how many coming fire times schedule describe shows.
const describedFires = 5

// scheduleDescription is schedule describe's view: the schedule as
// schedule ls lists it, with its coming fire times.
type scheduleDescription struct {
	client.ScheduleInfo
	// NextFires are the next fire times from NextFire on, in the
	// schedule's zone; none while it is suspended.
	NextFires []time.Time `json:"nextFires,omitempty"`
}

func newScheduleDescribeCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a schedule: its cron, zone and policies, when it last ran and its next fire times",
		Long: `describe shows one schedule as 'gantry schedule ls' lists it (the cron
expression, its time zone, concurrency policy, starting deadline and misfire
policy, whether it is suspended, when it last ran), with its next ` + fmt.Sprint(describedFires) + ` fire
times in the schedule's zone and yours. -o json adds nextFires to schedule
ls's fields. Its runs are those of 'gantry pipeline runs NAME'.`,
		Example: `  gantry schedule describe daily-sales
  gantry schedule describe cleanup -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (scheduleDescription, error) {
				ss, err := c.Schedules(ctx)
				if err != nil {
					return scheduleDescription{}, err
				}
				for _, s := range ss {
					if s.Name == args[0] {
						return describeSchedule(s)
					}
				}
				return scheduleDescription{}, &jobs.Error{Code: jobs.CodeNotFound,
					Message: fmt.Sprintf("schedule %s: not found (gantry schedule ls lists them)", args[0])}
			}, func(w io.Writer, d scheduleDescription) error {
				writeScheduleDescription(w, d, clock())
				return nil
			})
		},
	}
	addOutputFlag(c, &out)
	return c
}

// describeSchedule adds s's coming fire times to it, counted from its next
// fire as the server counts it (an @every schedule's from its own base).
func describeSchedule(s client.ScheduleInfo) (scheduleDescription, error) {
	d := scheduleDescription{ScheduleInfo: s}
	if s.NextFire == nil || s.Suspended {
		return d, nil
	}
	loc, err := s.Schedule.Location()
	if err != nil {
		return d, fmt.Errorf("schedule %s: %w", s.Name, err)
	}
	d.NextFires = []time.Time{s.NextFire.In(loc)}
	more, err := scheduler.FireTimes(&s.Schedule, *s.NextFire, s.NextFire.Add(time.Nanosecond), time.Unix(1<<40, 0), describedFires-1)
	if err != nil {
		return d, fmt.Errorf("schedule %s: %w", s.Name, err)
	}
	for _, t := range more {
		d.NextFires = append(d.NextFires, t.In(loc))
	}
	return d, nil
}

// writeScheduleDescription is schedule describe's table.
func writeScheduleDescription(w io.Writer, d scheduleDescription, now time.Time) {
	s := d.Schedule
	loc, _ := s.Location()
	fmt.Fprintf(w, "Schedule:\t%s\n", d.Name)
	fmt.Fprintf(w, "Runs:\t%s\n", scheduleRuns(d.ScheduleInfo))
	fmt.Fprintf(w, "Cron:\t%s\n", s.Cron)
	fmt.Fprintf(w, "Time zone:\t%s\n", loc)
	fmt.Fprintf(w, "Concurrency policy:\t%s\n", s.Policy())
	deadline := "60s (the default)"
	if s.StartingDeadlineSeconds > 0 {
		deadline = short(time.Duration(s.StartingDeadlineSeconds) * time.Second)
	}
	fmt.Fprintf(w, "Starting deadline:\t%s\n", deadline)
	misfire := s.Misfire
	if misfire == "" {
		misfire = jobs.MisfireSkip
	}
	fmt.Fprintf(w, "Misfire:\t%s\n", misfire)
	if s.DateParameter != "" {
		fmt.Fprintf(w, "Date parameter:\t%s (each fire's date in %s%s)\n", s.DateParameter, loc, offsetDays(s.DateOffsetDays))
	}
	if d.Suspended {
		fmt.Fprintf(w, "Suspended:\ttrue (gantry schedule resume %s fires it again; the times passed meanwhile are not run)\n", d.Name)
	} else {
		fmt.Fprintf(w, "Suspended:\tfalse\n")
	}
	last := "-"
	if d.LastRun != nil {
		last = fmt.Sprintf("%s (%s)", d.LastRun.In(loc).Format(time.RFC3339), ago(*d.LastRun, now))
	}
	fmt.Fprintf(w, "Last run:\t%s\n", last)
	if len(d.NextFires) == 0 {
		fmt.Fprintf(w, "Next fires:\t-\n")
	}
	for i, t := range d.NextFires {
		label := ""
		if i == 0 {
			label = "Next fires:"
		}
		at, here := t.In(loc).Format(time.RFC3339), t.In(localZone).Format(time.RFC3339)
		if here == at {
			fmt.Fprintf(w, "%s\t%s (in %s)\n", label, at, short(t.Sub(now)))
		} else {
			fmt.Fprintf(w, "%s\t%s (in %s; %s here)\n", label, at, short(t.Sub(now)), here)
		}
	}
	fmt.Fprintf(w, "Its runs:\tgantry pipeline runs %s\n", d.Name)
}

// offsetDays says how dateOffsetDays moves a schedule's date, or nothing
// for none.
func offsetDays(n int) string {
	switch {
	case n == 0:
		return ""
	case n == -1:
		return ", the day before"
	case n < 0:
		return fmt.Sprintf(", %d days before", -n)
	case n == 1:
		return ", the day after"
	}
	return fmt.Sprintf(", %d days after", n)
}
