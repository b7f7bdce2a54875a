package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ExitCodes are the exit codes of a stage's skipOnExitCode: a run of the
// stage whose essential container exits with one of them found nothing to
// do, and the stage ends SKIPPED rather than FAILED (Airflow's
// skip_on_exit_code). The file may give one code (`skipOnExitCode: 99`)
// or a list (`[99, 100]`); it is kept, and written, as a list.
type ExitCodes []int

// errSkipShape is the error of a skipOnExitCode that is no code nor list
// of codes. encoding/json passes it on without the stage it read: a
// pipeline file finds which (skipShapeProblems).
var errSkipShape = errors.New("skipOnExitCode")

// skipShapeProblems names each stage's skipOnExitCode of a pipeline file
// (JSON) that is not a code nor a list of codes, by its field path
// (stages[0](extract).skipOnExitCode[1]), for the decoding error that
// says only that one is.
func skipShapeProblems(js []byte) error {
	return fieldProblems(js, "skipOnExitCode", false, func(path string, raw json.RawMessage) []error {
		var c ExitCodes
		if c.UnmarshalJSON(raw) == nil {
			return nil
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return []error{&FieldError{path, skipShapeText(c.UnmarshalJSON(raw))}}
		}
		var errs []error
		for j, v := range list {
			if err := c.UnmarshalJSON(v); err != nil || bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
				if err == nil {
					err = fmt.Errorf("%w: %s: want an exit code from 1 to 255", errSkipShape, v)
				}
				errs = append(errs, &FieldError{fmt.Sprintf("%s[%d]", path, j), skipShapeText(err)})
			}
		}
		return errs
	})
}

// skipShapeText is an errSkipShape error without its leading field name,
// which the FieldError's path says.
func skipShapeText(err error) string {
	return strings.TrimPrefix(err.Error(), errSkipShape.Error()+": ")
}

// UnmarshalJSON reads a number or a list of numbers. Any integer is read,
// so that Validate names a code out of range with its stage; other values
// are refused here.
func (c *ExitCodes) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	want := func(v []byte) error {
		return fmt.Errorf("%w: %s: want an exit code from 1 to 255, or a list of them, as [99]", errSkipShape, v)
	}
	raw := []json.RawMessage{data}
	switch {
	case string(data) == "null":
		*c = nil
		return nil
	case len(data) > 0 && data[0] == '[':
		// A fresh slice: decoding into raw, whose element shares data's
		// array, would write over the caller's bytes.
		raw = nil
		if err := json.Unmarshal(data, &raw); err != nil {
			return want(data)
		}
	}
	out := make(ExitCodes, 0, len(raw))
	for _, v := range raw {
		// A json.Number would take "99" too: a quoted code is refused,
		// as a quoted arraySize is.
		var n json.Number
		if len(v) == 0 || v[0] == '"' || json.Unmarshal(v, &n) != nil {
			return want(v)
		}
		i, err := strconv.ParseInt(n.String(), 10, 0)
		if err != nil {
			// 99.0 or 1e2 in JSON: a whole number all the same.
			f, ferr := strconv.ParseFloat(n.String(), 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
				return want(v)
			}
			i = int64(f)
		}
		out = append(out, int(i))
	}
	*c = out
	return nil
}

// validate collects the problems of the codes, each naming its index
// under path.
func (c ExitCodes) validate(path string) []error {
	var errs []error
	for i, code := range c {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case code == 0:
			errs = append(errs, &FieldError{p, "0: exit code 0 is success, not a skip: want 1 to 255"})
		case code < 0 || code > 255:
			errs = append(errs, &FieldError{p, fmt.Sprintf("%d: want an exit code from 1 to 255", code)})
		case slices.Index(c, code) < i:
			errs = append(errs, &FieldError{p, fmt.Sprintf("%d is listed twice", code)})
		}
	}
	return errs
}

// skipExit returns the exit code of a task that ended as status with
// stopCode and exit when it is one of codes: the task ran and its
// essential container exited so. A task that timed out, was stopped or
// never started does not skip, whatever its exit code (137 after a
// timeout's kill is not "nothing to do").
func skipExit(codes []int, status Status, stopCode string, exit *int) (int, bool) {
	if status != StatusFailed || stopCode != StopEssentialExited || exit == nil || !slices.Contains(codes, *exit) {
		return 0, false
	}
	return *exit, true
}

// SkipCode returns the run's exit code when it ended FAILED because its
// essential container exited with one of codes (a stage's
// skipOnExitCode), and false otherwise.
func (r *Run) SkipCode(codes []int) (int, bool) {
	return skipExit(codes, r.Status, r.StopCode, r.ExitCode)
}

// SkipReason is the reason of a stage whose runs skipped themselves:
// skipped of its total runs, with the exit codes they gave.
func SkipReason(skipped, total int, codes []int) string {
	codes = slices.Clone(codes)
	slices.Sort(codes)
	codes = slices.Compact(codes)
	text := make([]string, len(codes))
	for i, c := range codes {
		text[i] = strconv.Itoa(c)
	}
	if total <= 1 {
		return fmt.Sprintf("exited %s (skipOnExitCode): skipped", strings.Join(text, ", "))
	}
	return fmt.Sprintf("%d of %d runs exited %s (skipOnExitCode): skipped", skipped, total, strings.Join(text, ", "))
}
