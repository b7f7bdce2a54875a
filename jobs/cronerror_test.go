package jobs

import (
	"fmt"
	"strings"
	"testing"
)

// TestScheduleValidateSaysWhichCronFieldIsWrong: a cron expression the
// library refuses is refused naming the field at fault and what it takes,
// or the forms an expression takes, not in the library's words ("end of
// range (25) above maximum (23): 25").
func TestScheduleValidateSaysWhichCronFieldIsWrong(t *testing.T) {
	for expr, want := range map[string][]string{
		"0 25 * * *":   {`cron: "0 25 * * *": hour field "25": 25 is above the field's maximum, 23; it takes 0-23, *, ranges (1-5), lists (1,3) and steps (*/15)`},
		"60 * * * *":   {`minute field "60": 60 is above the field's maximum, 59`},
		"0 0 0 * *":    {`day of month field "0": 0 is below the field's minimum, 1; it takes 1-31`},
		"0 2 * * 8":    {`day of week field "8": 8 is above the field's maximum, 6; it takes 0-6 or SUN-SAT`},
		"0 2 * * MONN": {`day of week field "MONN": "MONN" is not a number or a name; it takes 0-6 or SUN-SAT`},
		"a * * * *":    {`minute field "a": "a" is not a number; it takes 0-59`},
		"5-2 * * * *":  {`minute field "5-2": the range starts (5) after it ends (2)`},
		"*/0 * * * *":  {`minute field "*/0": a step must be 1 or more`},
		// Every field at fault, a problem each, seconds first when there are six.
		"0 2 * FOO 9": {`cron: "0 2 * FOO 9": month field "FOO": "FOO" is not a number or a name; it takes 1-12 or JAN-DEC`,
			"\ncron: \"0 2 * FOO 9\": day of week field \"9\": 9 is above"},
		"99 0 2 * * *":  {`second field "99": 99 is above the field's maximum, 59`},
		"0 2 * *":       {`cron: "0 2 * *" has 4 fields: want 5 (minute hour day-of-month month day-of-week, as "0 2 * * *"), 6 with seconds first, or a descriptor (@daily, @every 10m)`},
		"every day":     {`"every day" has 2 fields: want 5`},
		"* * * * * * *": {`has 7 fields`},
		"@dayly":        {`cron: "@dayly": unknown descriptor; want one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, or @every and a duration ("@every 10m"); did you mean "@daily"?`},
		"@every 10x":    {`"@every 10x": `, `write @every and a duration, as "@every 10m"`},
	} {
		err := (&Schedule{Cron: expr}).Validate()
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want an error saying %q", expr, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), "of range") {
			t.Errorf("%q: %v: in the cron library's words", expr, err)
		}
	}
	_, err := ParsePipeline([]byte("name: p\nschedule: {cron: '0 25 * * *'}\nstages: [{name: a, taskDefinition: t}]\n"))
	if err == nil || !strings.Contains(err.Error(), `schedule.cron: "0 25 * * *": hour field "25"`) {
		t.Errorf("pipeline file: %v, want schedule.cron and the hour field named", err)
	}
}

// FuzzCronProblems: whatever the expression the library refuses, the
// problem is said without panicking and quotes the expression.
func FuzzCronProblems(f *testing.F) {
	for _, s := range []string{"0 25 * * *", "@dayly", "0 2 * *", "TZ=UTC 0 2 * * 8", "1-2-3 * * * *", "*/0 5 * * *", "@every x", "0 2 * FOO 9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		_, err := parseSpec(expr)
		if err == nil {
			return
		}
		problems := cronProblems(expr, err)
		if len(problems) == 0 {
			t.Fatalf("cronProblems(%q): none", expr)
		}
		for _, msg := range problems {
			if !strings.Contains(msg, fmt.Sprintf("%q", expr)) {
				t.Fatalf("cronProblems(%q) = %q: does not quote the expression", expr, msg)
			}
		}
	})
}
