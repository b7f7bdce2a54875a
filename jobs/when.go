package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// When is a stage's run-time condition, as Argo's `when:` and Airflow's
// branch and short-circuit operators decide which stages run: once its
// dependencies hold, the stage runs only if every condition holds, and
// is SKIPPED otherwise. A condition compares a pipeline parameter, or an
// output an upstream stage wrote to its outputs.env, with values written
// in the file: a fixed shape, not an expression language.
//
//	when: {output: check.MODE, equals: full}
//	when: [{param: mode, in: [daily, backfill]}, {output: check.ROWS, notEquals: "0"}]
//
// The zero value is no condition: the stage runs as its dependencies say.
type When struct {
	Conditions []WhenCondition
	// list says the file wrote a list, kept so that the stage reads back
	// (and a dry run compares) as written.
	list bool
}

// WhenOp is how a condition compares its value with the file's.
type WhenOp string

// The comparisons of a when condition.
const (
	WhenEquals    WhenOp = "equals"
	WhenIn        WhenOp = "in"
	WhenNotEquals WhenOp = "notEquals"
	WhenNotIn     WhenOp = "notIn"
)

var whenOps = []WhenOp{WhenEquals, WhenIn, WhenNotEquals, WhenNotIn}

// WhenCondition is one condition of a stage's when: the value of a
// parameter or of an upstream output, compared by Op with Values.
type WhenCondition struct {
	// Output names a KEY=VALUE line of an upstream stage's outputs.env
	// (check.MODE); Param a parameter of the pipeline. One of them is set.
	Output *OutputRef
	Param  string
	// Op compares; Values holds one value for equals and notEquals.
	Op     WhenOp
	Values []string

	// For Validate: the comparisons the file gave (more than one is
	// refused) and whether it gave param, even empty.
	ops      []WhenOp
	hasParam bool
}

// IsZero reports no condition, for omitzero.
func (w When) IsZero() bool { return len(w.Conditions) == 0 && !w.list }

// ReadsOutputs reports whether deciding the when reads an upstream output
// (a parameter's is known without a read).
func (w When) ReadsOutputs() bool {
	for _, c := range w.Conditions {
		if c.Output != nil {
			return true
		}
	}
	return false
}

// String is the when as gantry pipeline describe shows it: its conditions
// joined by "and" (check.MODE equals full and parameter mode in [daily,
// backfill]).
func (w When) String() string {
	parts := make([]string, len(w.Conditions))
	for i, c := range w.Conditions {
		parts[i] = c.String()
	}
	return strings.Join(parts, " and ")
}

// String is one condition as describe shows it: check.MODE equals full.
func (c WhenCondition) String() string {
	values := make([]any, len(c.Values))
	for i, v := range c.Values {
		values[i] = v
	}
	var vs string
	switch c.Op {
	case WhenIn, WhenNotIn:
		vs = compact(values)
	default:
		if len(values) > 0 {
			vs = compact(values[0])
		}
	}
	return c.subject() + " " + string(c.Op) + " " + vs
}

// subject names what the condition reads: check.MODE, or parameter mode.
func (c WhenCondition) subject() string {
	if c.Output != nil {
		return c.Output.String()
	}
	return "parameter " + c.Param
}

// Holds decides the condition for value (set false when no run wrote the
// output's key): a key no run wrote counts as the empty string, for
// every comparison. When it does not hold, why says so for the stage's
// reason: `when: check.MODE is "incremental", not "full"`.
func (c WhenCondition) Holds(value string, set bool) (ok bool, why string) {
	in := slices.Contains(c.Values, value)
	switch c.Op {
	case WhenEquals, WhenIn:
		ok = in
	default:
		ok = !in
	}
	if ok {
		return true, ""
	}
	is := fmt.Sprintf("is %q", shortValue(value))
	if !set {
		is = "is not set"
		if c.Output != nil {
			is += fmt.Sprintf(" (no run of %s wrote %s=)", c.Output.Stage, c.Output.Key)
		}
	}
	quoted := make([]string, len(c.Values))
	for i, v := range c.Values {
		quoted[i] = strconv.Quote(v)
	}
	var not string
	switch c.Op {
	case WhenEquals:
		not = "not " + quoted[0]
	case WhenIn:
		not = "not one of " + strings.Join(quoted, ", ")
	default:
		not = "excluded by " + string(c.Op)
	}
	return false, fmt.Sprintf("when: %s %s, %s", c.subject(), is, not)
}

// errWhenShape is the error of a when that is no condition nor list of
// them. encoding/json passes it on without the stage it read: a pipeline
// file finds which (whenShapeProblems).
var errWhenShape = errors.New("when")

// whenProblem is a shape problem of a when, at a path under it ("",
// "[1]", ".in").
type whenProblem struct{ path, msg string }

const whenWant = "want {output: STAGE.KEY, equals: VALUE} or {param: NAME, in: [VALUE, ...]}, or a list of them"

// parseWhen reads a when: one condition or a list of them. It refuses
// what has the wrong shape (unknown keys, values that are not text),
// each problem with its path; what is missing or given twice is left to
// Validate.
func parseWhen(data []byte) (When, []whenProblem) {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		return When{}, nil
	case len(data) > 0 && data[0] == '{':
		c, probs := parseWhenCondition(data, "")
		return When{Conditions: []WhenCondition{c}}, probs
	case len(data) > 0 && data[0] == '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return When{}, []whenProblem{{"", shortJSON(data) + ": " + whenWant}}
		}
		w := When{Conditions: make([]WhenCondition, 0, len(raw)), list: true}
		var probs []whenProblem
		for i, r := range raw {
			p := fmt.Sprintf("[%d]", i)
			if r = bytes.TrimSpace(r); len(r) == 0 || r[0] != '{' {
				probs = append(probs, whenProblem{p, shortJSON(r) + ": want {output: STAGE.KEY, equals: VALUE} or {param: NAME, ...}"})
				continue
			}
			c, ps := parseWhenCondition(r, p)
			w.Conditions = append(w.Conditions, c)
			probs = append(probs, ps...)
		}
		return w, probs
	}
	return When{}, []whenProblem{{"", shortJSON(data) + ": " + whenWant}}
}

func parseWhenCondition(data []byte, path string) (WhenCondition, []whenProblem) {
	var c WhenCondition
	var probs []whenProblem
	bad := func(key, format string, args ...any) {
		probs = append(probs, whenProblem{path + "." + key, fmt.Sprintf(format, args...)})
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return c, []whenProblem{{path, shortJSON(data) + ": " + whenWant}}
	}
	keys := []string{"output", "param"}
	for _, op := range whenOps {
		keys = append(keys, string(op))
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		switch k {
		case "output", "param":
			var s string
			if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
				want := "STAGE.KEY, an upstream stage's outputs.env key (check.MODE)"
				if k == "param" {
					want = "the name of a pipeline parameter"
				}
				bad(k, "%s: want %s", shortJSON(v), want)
				continue
			}
			if k == "output" {
				ref := ParseOutputRef(s)
				c.Output = &ref
			} else {
				c.Param, c.hasParam = s, true
			}
		case string(WhenEquals), string(WhenNotEquals):
			s, ok := whenValue(v)
			if !ok {
				bad(k, "%s: want a value (a string, number or boolean%s); in: [a, b] for several", shortJSON(v), emptyHint(v))
				continue
			}
			c.ops = append(c.ops, WhenOp(k))
			c.Op, c.Values = WhenOp(k), []string{s}
		case string(WhenIn), string(WhenNotIn):
			var raw []json.RawMessage
			if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &raw) != nil {
				bad(k, "%s: want a list of values, as [full, rebuild]", shortJSON(v))
				continue
			}
			values := make([]string, 0, len(raw))
			ok := true
			for i, r := range raw {
				s, good := whenValue(r)
				if !good {
					bad(fmt.Sprintf("%s[%d]", k, i), "%s: want a value (a string, number or boolean%s)", shortJSON(r), emptyHint(r))
					ok = false
				}
				values = append(values, s)
			}
			if ok {
				c.ops = append(c.ops, WhenOp(k))
				c.Op, c.Values = WhenOp(k), values
			}
		default:
			msg := "unknown field"
			if s := Nearest(k, keys); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			bad(k, "%s", msg)
		}
	}
	return c, probs
}

// whenValue reads one value of a condition: a string, or a number or
// boolean as its text (a file's `equals: 3` compares with "3"; YAML's
// numbers there stay as written, 010 is "010").
func whenValue(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err == nil
	case '{', '[', 'n':
		return "", false
	}
	var x any
	if json.Unmarshal(v, &x) != nil {
		return "", false
	}
	return string(v), true
}

// emptyHint is what a null value was likely meant as: YAML reads
// `notEquals:` with nothing after it as null, not as the empty string.
func emptyHint(v json.RawMessage) string {
	if string(bytes.TrimSpace(v)) == "null" {
		return `; "" for the empty string`
	}
	return ""
}

// UnmarshalJSON reads one condition or a list of them; a shape problem is
// an errWhenShape error.
func (w *When) UnmarshalJSON(data []byte) error {
	got, probs := parseWhen(data)
	if len(probs) > 0 {
		return fmt.Errorf("%w%s: %s", errWhenShape, probs[0].path, probs[0].msg)
	}
	*w = got
	return nil
}

// MarshalJSON writes the conditions as the file did: one as a mapping, a
// list as a list.
func (w When) MarshalJSON() ([]byte, error) {
	if w.IsZero() {
		return []byte("null"), nil
	}
	out := make([]any, len(w.Conditions))
	for i, c := range w.Conditions {
		out[i] = c.written()
	}
	if len(out) == 1 && !w.list {
		return json.Marshal(out[0])
	}
	return json.Marshal(out)
}

// whenJSON is one condition as a file writes it, its keys in that order.
type whenJSON struct {
	Output    *string   `json:"output,omitempty"`
	Param     *string   `json:"param,omitempty"`
	Equals    *string   `json:"equals,omitempty"`
	In        *[]string `json:"in,omitempty"`
	NotEquals *string   `json:"notEquals,omitempty"`
	NotIn     *[]string `json:"notIn,omitempty"`
}

func (c WhenCondition) written() whenJSON {
	var j whenJSON
	if c.Output != nil {
		s := c.Output.String()
		j.Output = &s
	}
	if c.hasParam || c.Param != "" {
		j.Param = &c.Param
	}
	values := c.Values
	if values == nil {
		values = []string{}
	}
	switch c.Op {
	case WhenEquals, WhenNotEquals:
		var v string
		if len(values) > 0 {
			v = values[0]
		}
		if c.Op == WhenEquals {
			j.Equals = &v
		} else {
			j.NotEquals = &v
		}
	case WhenIn:
		j.In = &values
	case WhenNotIn:
		j.NotIn = &values
	}
	return j
}

// whenShapeProblems names each stage's when of a pipeline file (JSON)
// that has the wrong shape, by its field path
// (stages[1](full-reload).when.equal), for the decoding error that says
// only that one has.
func whenShapeProblems(js []byte) error {
	return fieldProblems(js, "when", false, func(path string, raw json.RawMessage) []error {
		_, probs := parseWhen(raw)
		var errs []error
		for _, p := range probs {
			errs = append(errs, &FieldError{path + p.path, p.msg})
		}
		return errs
	})
}

// validateWhen collects the problems of the when of stage i: a condition
// that reads neither or both of an output and a parameter, an output not
// upstream of the stage (only those have run when it starts, as for
// arraySize's fromOutput), a parameter not declared, and a comparison
// missing, given twice, or with no value.
func (p *Pipeline) validateWhen(i int, up map[string]bool) []error {
	st := &p.Stages[i]
	w := st.When
	base := stagePath(i, st.Name) + ".when"
	if w.list && len(w.Conditions) == 0 {
		return []error{&FieldError{base, "an empty list: leave when out for a stage that always runs"}}
	}
	var errs []error
	for j, c := range w.Conditions {
		path := base
		if w.list {
			path = fmt.Sprintf("%s[%d]", base, j)
		}
		bad := func(path, format string, args ...any) {
			errs = append(errs, &FieldError{path, fmt.Sprintf(format, args...)})
		}
		switch {
		case c.Output != nil && c.hasParam:
			bad(path, "output and param both given: want one (a list of conditions, when: [{...}, {...}], for both)")
		case c.Output != nil:
			if err := p.checkOutputRef(path+".output", st, *c.Output, up, "a stage cannot decide on its own output"); err != nil {
				errs = append(errs, err)
			}
		case c.hasParam:
			if _, ok := p.Parameters[c.Param]; !ok {
				msg := fmt.Sprintf("%q: the pipeline declares no such parameter: declare it under parameters", c.Param)
				if s := Nearest(c.Param, slices.Collect(maps.Keys(p.Parameters))); s != "" && len(p.Parameters) > 0 {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				bad(path+".param", "%s", msg)
			}
		default:
			bad(path, "want output: STAGE.KEY (an upstream stage's outputs.env key) or param: NAME (a pipeline parameter)")
		}
		ops := make([]string, len(c.ops))
		for k, op := range c.ops {
			ops[k] = string(op)
		}
		switch {
		case len(c.ops) == 0:
			bad(path, "want one of equals, in, notEquals or notIn")
		case len(c.ops) == 2:
			bad(path, "%s and %s both given: want one of equals, in, notEquals or notIn", ops[0], ops[1])
		case len(c.ops) > 2:
			bad(path, "%s and %s all given: want one of equals, in, notEquals or notIn", strings.Join(ops[:len(ops)-1], ", "), ops[len(ops)-1])
		case (c.Op == WhenIn || c.Op == WhenNotIn) && len(c.Values) == 0:
			bad(path+"."+string(c.Op), "an empty list: want at least one value")
		}
	}
	return errs
}

// whenValueInReason finds the value Holds quotes in a reason (%q: quotes
// inside it are escaped).
var whenValueInReason = regexp.MustCompile(`(when: (?:parameter )?\S+ is )"(?:[^"\\]|\\.)*"`)
