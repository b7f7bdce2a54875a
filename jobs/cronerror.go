package jobs

import (
	"fmt"
	"regexp"
	"strings"
)

// The cron library's errors name neither the field at fault nor what it
// takes ("end of range (25) above maximum (23): 25", "failed to parse int
// from MONN: strconv.Atoi: ..."). cronProblem says the same in the words
// of cronSteps: which field, what is wrong with it, what it accepts.

// cronDescriptors are the @ forms the cron library reads.
var cronDescriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// cronNames are the names a field takes besides numbers.
var cronNames = map[string]string{"month": "JAN-DEC", "day of week": "SUN-SAT"}

var (
	cronAbove   = regexp.MustCompile(`^end of range \((\d+)\) above maximum \((\d+)\)`)
	cronBelow   = regexp.MustCompile(`^beginning of range \((\d+)\) below minimum \((\d+)\)`)
	cronReverse = regexp.MustCompile(`^beginning of range \((\d+)\) beyond end of range \((\d+)\)`)
	cronNotInt  = regexp.MustCompile(`^failed to parse int from ([^:]*)`)
)

// cronProblems says why the cron library refused expr with err: the
// number of fields and the forms an expression takes, an unknown
// descriptor, or each field it refuses with the range that field takes,
// a problem each.
func cronProblems(expr string, err error) []string {
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ=") {
		// Refused on its own in Validate; the fields come after it.
		_, e, _ = strings.Cut(e, " ")
		e = strings.TrimSpace(e)
		if e == "" {
			return []string{fmt.Sprintf("%q: a time zone and no fields", expr)}
		}
	}
	if strings.HasPrefix(e, "@") {
		if strings.HasPrefix(e, "@every") {
			return []string{fmt.Sprintf("%q: %v; write @every and a duration, as \"@every 10m\"", expr, err)}
		}
		msg := fmt.Sprintf("%q: unknown descriptor; want one of %s, or @every and a duration (\"@every 10m\")", expr, strings.Join(cronDescriptors, ", "))
		if near := Nearest(strings.ToLower(e), cronDescriptors); near != "" {
			msg += fmt.Sprintf("; did you mean %q?", near)
		}
		return []string{msg}
	}
	fields := strings.Fields(e)
	specs := cronFields
	if len(fields) == len(cronFields)+1 {
		specs = append([]cronField{secondField}, cronFields...)
	}
	if len(fields) != len(specs) {
		return []string{fmt.Sprintf("%q has %d fields: want 5 (minute hour day-of-month month day-of-week, as \"0 2 * * *\"), "+
			"6 with seconds first, or a descriptor (@daily, @every 10m)", expr, len(fields))}
	}
	var problems []string
	for i, f := range fields {
		alone := make([]string, len(fields))
		for j := range alone {
			alone[j] = "*"
		}
		alone[i] = f
		_, ferr := parseSpec(strings.Join(alone, " "))
		if ferr == nil {
			continue
		}
		spec := specs[i]
		takes := fmt.Sprintf("%d-%d", spec.min, spec.max)
		if names := cronNames[spec.name]; names != "" {
			takes += " or " + names
		}
		problems = append(problems, fmt.Sprintf("%q: %s field %q: %s; it takes %s, *, ranges (1-5), lists (1,3) and steps (*/15)",
			expr, spec.name, f, cronFieldProblem(ferr.Error(), cronNames[spec.name] != ""), takes))
	}
	if len(problems) == 0 {
		// Each field parses alone: say what the library said.
		return []string{fmt.Sprintf("%q: %v", expr, err)}
	}
	return problems
}

// cronFieldProblem is the cron library's error about one field, in words
// that need no knowledge of the library; named says whether the field
// takes names (months, days of the week).
func cronFieldProblem(msg string, named bool) string {
	if m := cronAbove.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is above the field's maximum, %s", m[1], m[2])
	}
	if m := cronBelow.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s is below the field's minimum, %s", m[1], m[2])
	}
	if m := cronReverse.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("the range starts (%s) after it ends (%s)", m[1], m[2])
	}
	if m := cronNotInt.FindStringSubmatch(msg); m != nil {
		if named {
			return fmt.Sprintf("%q is not a number or a name", m[1])
		}
		return fmt.Sprintf("%q is not a number", m[1])
	}
	if strings.HasPrefix(msg, "step of range should be a positive number") {
		return "a step must be 1 or more"
	}
	return msg
}
