package jobs

import (
	"fmt"
	"strconv"
	"strings"
)

// cronField is one field of a cron expression, with the values it spans.
type cronField struct {
	name     string
	min, max int
}

var (
	cronFields  = []cronField{{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 6}}
	secondField = cronField{"second", 0, 59}
)

// cronSteps says, one problem a line, which steps of expr are larger than
// their field's range: the cron library takes "*/61" in the minute field
// as minute 0 alone, where its writer meant something else. Descriptors
// (@daily, @every) have no steps; an expression the library refuses is
// left to its error.
func cronSteps(expr string) []string {
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		// Refused on its own in Validate; the fields come after it.
		_, expr, _ = strings.Cut(expr, " ")
	}
	if strings.HasPrefix(expr, "@") {
		return nil
	}
	fields := strings.Fields(expr)
	specs := cronFields
	if len(fields) == len(cronFields)+1 {
		specs = append([]cronField{secondField}, cronFields...)
	}
	if len(fields) != len(specs) {
		return nil
	}
	var problems []string
	for i, f := range fields {
		spec := specs[i]
		for part := range strings.SplitSeq(f, ",") {
			span, step, ok := strings.Cut(part, "/")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(step)
			if err != nil || n <= spec.max-spec.min {
				continue
			}
			first, _, _ := strings.Cut(span, "-")
			if first == "*" || first == "?" {
				first = strconv.Itoa(spec.min)
			}
			problems = append(problems, fmt.Sprintf("%s field %q: step %d is larger than the field's range %d-%d: it would match %s alone (write %s for that, or a step up to %d)",
				spec.name, part, n, spec.min, spec.max, first, first, spec.max-spec.min))
		}
	}
	return problems
}
