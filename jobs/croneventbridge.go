package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// EventBridge (and CloudWatch Events) write schedules as cron(...) with
// six fields, minutes first and a year last, or as rate(N unit). Gantry's
// six-field form has seconds first, so "0 2 * * ? *", pasted from an
// EventBridge rule, would parse and fire at minute 2 of every hour, not
// at 02:00: eventBridgeCron refuses such expressions, saying what to
// write instead.

// eventBridgeCron returns why expr is an EventBridge expression gantry
// does not read as EventBridge does, with the expression to use, or ""
// for any other expression.
func eventBridgeCron(expr string) string {
	e := strings.TrimSpace(expr)
	if inner, ok := cutCall(e, "rate"); ok {
		if every, ok := rateEvery(inner); ok {
			return fmt.Sprintf("%q is EventBridge's rate(): write %q", expr, every)
		}
		return fmt.Sprintf("%q is EventBridge's rate(): write @every and a duration, as \"@every 5m\"", expr)
	}
	inner, wrapped := cutCall(e, "cron")
	if !wrapped {
		inner = e
	}
	f := strings.Fields(inner)
	if len(f) != 6 || !wrapped && f[2] != "?" && f[4] != "?" {
		// Six fields with "?" in the hour or month field are no seconds-
		// first expression: "?" stands for a day of month or of week.
		if wrapped {
			return fmt.Sprintf("%q is EventBridge's cron(): write its fields without cron(...) "+
				"(5 fields: minute hour day-of-month month day-of-week)", expr)
		}
		return ""
	}
	how := "an EventBridge cron (minute hour day-of-month month day-of-week year), which gantry would read with seconds first"
	if wrapped {
		how = "EventBridge's cron() (minute hour day-of-month month day-of-week year)"
	}
	msg := fmt.Sprintf("%q is %s: write %q", expr, how, strings.Join(f[:5], " "))
	if y := f[5]; y != "*" && y != "?" {
		msg += fmt.Sprintf(" (gantry has no year field: %s cannot be kept)", y)
	}
	if strings.ContainsAny(f[4], "0123456789") {
		msg += fmt.Sprintf("; EventBridge numbers the days of week 1-7 from Sunday, cron 0-6: "+
			"check %q, or write names (MON-FRI)", f[4])
	}
	return msg
}

// cutCall returns the text inside name(...), case-insensitively.
func cutCall(e, name string) (string, bool) {
	if len(e) < len(name)+2 || !strings.EqualFold(e[:len(name)], name) {
		return "", false
	}
	rest := strings.TrimSpace(e[len(name):])
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return "", false
	}
	return strings.TrimSpace(rest[1 : len(rest)-1]), true
}

// rateEvery turns a rate's "5 minutes" into "@every 5m".
func rateEvery(inner string) (string, bool) {
	n, unit, ok := strings.Cut(inner, " ")
	v, err := strconv.Atoi(n)
	if !ok || err != nil || v <= 0 || v > 1e6 {
		return "", false
	}
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "minute", "minutes":
		return fmt.Sprintf("@every %dm", v), true
	case "hour", "hours":
		return fmt.Sprintf("@every %dh", v), true
	case "day", "days":
		return fmt.Sprintf("@every %dh", 24*v), true
	}
	return "", false
}
