package jobs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// ArraySize is a stage's fan-out: N children fixed in the file
// (`arraySize: 3`), or as many as an upstream stage's output says when
// the stage starts (`arraySize: {fromOutput: extract.FILES}`), as
// Airflow's dynamic task mapping and Argo's withParam fan out over what
// an earlier task found. The zero value is one plain run.
//
// The file's mapping is its own key, not a ${...} string: ${name} is a
// pipeline parameter, substituted as text when the run is created,
// while an output is known only once its stage has run. stage.KEY names
// the stage apart from the key (EXTRACT_FILES, as the stage's containers
// see it, could be stage extract's FILES or stage extract_files's...).
type ArraySize struct {
	// N is the fixed size, 0 to MaxArraySize; 0 is one plain run.
	N int
	// From, when set, names the upstream output whose value is the size
	// (N is then 0).
	From *OutputRef
}

// OutputRef names one KEY=VALUE line of the outputs.env of a stage.
type OutputRef struct {
	Stage string
	Key   string
	// written is the reference as the file wrote it, for Validate to
	// quote one without a dot as it is ("extract", not "extract.").
	written string
}

// String is the reference as written: stage.KEY.
func (r OutputRef) String() string {
	if r.written != "" || r.Stage == "" && r.Key == "" {
		return r.written
	}
	return r.Stage + "." + r.Key
}

// ParseOutputRef reads stage.KEY, cut at the first dot (a stage name
// has none). What is wrong with it is left to Validate, which names the
// field.
func ParseOutputRef(s string) OutputRef {
	stage, key, _ := strings.Cut(s, ".")
	return OutputRef{Stage: stage, Key: key, written: s}
}

// Fixed returns an ArraySize of n children.
func Fixed(n int) ArraySize { return ArraySize{N: n} }

// Dynamic reports whether the size is read from an upstream output.
func (a ArraySize) Dynamic() bool { return a.From != nil }

// Array reports whether the stage runs as an array (children with an
// index): a fixed size above 0, or any size read from an output.
func (a ArraySize) Array() bool { return a.N > 0 || a.From != nil }

// IsZero reports one plain run, for omitzero.
func (a ArraySize) IsZero() bool { return a.N == 0 && a.From == nil }

// String is the size as gantry pipeline describe shows it: the number,
// or the output it is read from (extract.FILES).
func (a ArraySize) String() string {
	if a.From != nil {
		return a.From.String()
	}
	return strconv.Itoa(a.N)
}

// MarshalJSON writes a number, or {"fromOutput": "stage.KEY"}.
func (a ArraySize) MarshalJSON() ([]byte, error) {
	if a.From != nil {
		return json.Marshal(map[string]string{"fromOutput": a.From.String()})
	}
	return json.Marshal(a.N)
}

// errArraySizeShape is the error of an arraySize that is neither a
// number nor {fromOutput: ...}. encoding/json passes it on without the
// stage it read: a pipeline file finds which (arraySizeShapeProblems).
var errArraySizeShape = errors.New("arraySize")

// UnmarshalJSON reads a whole number (any, so that Validate names one out
// of range with its stage) or {"fromOutput": "stage.KEY"}.
func (a *ArraySize) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	want := func() error {
		return fmt.Errorf("%w: %s: want a number from 0 to %d, or {fromOutput: STAGE.KEY} to read it from an upstream stage's outputs.env",
			errArraySizeShape, shortJSON(data), MaxArraySize)
	}
	switch {
	case string(data) == "null":
		*a = ArraySize{}
		return nil
	case len(data) > 0 && data[0] == '{':
		var m struct {
			FromOutput *string `json:"fromOutput"`
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil || m.FromOutput == nil {
			return want()
		}
		ref := ParseOutputRef(*m.FromOutput)
		*a = ArraySize{From: &ref}
		return nil
	case len(data) > 0 && data[0] == '"':
		return want() // a quoted size is refused, as a quoted skipOnExitCode is
	}
	var n int
	if err := json.Unmarshal(data, &n); err != nil {
		return want()
	}
	*a = ArraySize{N: n}
	return nil
}

// shortJSON is data for an error message: at most 40 bytes of it.
func shortJSON(data []byte) string {
	if len(data) > 40 {
		return string(data[:40]) + "..."
	}
	return string(data)
}

// arraySizeShapeProblems names each stage's arraySize of a pipeline file
// (JSON) that is neither a number nor {fromOutput: ...}, by its field
// path, for the decoding error that says only that one is.
func arraySizeShapeProblems(js []byte) error {
	return fieldProblems(js, "arraySize", false, func(path string, raw json.RawMessage) []error {
		var a ArraySize
		if err := a.UnmarshalJSON(raw); err != nil {
			return []error{&FieldError{path, strings.TrimPrefix(err.Error(), errArraySizeShape.Error()+": ")}}
		}
		return nil
	})
}

// withoutBadStageFields decodes a pipeline file (JSON) leaving out the
// arraySize and the when of each stage that arraySizeShapeProblems and
// whenShapeProblems report, so that Validate can report the file's other
// problems beside them; false when the rest does not decode either.
func withoutBadStageFields(js []byte) (*Pipeline, bool) {
	var tree map[string]any
	if json.Unmarshal(js, &tree) != nil {
		return nil, false
	}
	stages, _ := tree["stages"].([]any)
	for _, s := range stages {
		st, _ := s.(map[string]any)
		if raw, ok := st["arraySize"]; ok {
			b, _ := json.Marshal(raw)
			var a ArraySize
			if a.UnmarshalJSON(b) != nil {
				delete(st, "arraySize")
			}
		}
		if raw, ok := st["when"]; ok {
			b, _ := json.Marshal(raw)
			if _, probs := parseWhen(b); len(probs) > 0 {
				delete(st, "when")
			}
		}
	}
	rest, err := json.Marshal(tree)
	if err != nil {
		return nil, false
	}
	var p Pipeline
	if json.Unmarshal(rest, &p) != nil {
		return nil, false
	}
	return &p, true
}

// validateArraySize collects the problems of the arraySize of stage i:
// a fixed size out of range, or an output reference that is malformed,
// names no stage, or names one that is not upstream of it (up: its
// upstream stages, direct or not), since only those have run when it
// starts.
func (p *Pipeline) validateArraySize(i int, up map[string]bool) []error {
	st := &p.Stages[i]
	path := stagePath(i, st.Name) + ".arraySize"
	bad := func(format string, args ...any) []error {
		return []error{&FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}}
	}
	if st.ArraySize.From == nil {
		if st.ArraySize.N < 0 || st.ArraySize.N > MaxArraySize {
			return bad("%d: must be between 0 and %d", st.ArraySize.N, MaxArraySize)
		}
		return nil
	}
	if err := p.checkOutputRef(path+".fromOutput", st, *st.ArraySize.From, up, "a stage cannot size itself from its own output"); err != nil {
		return []error{err}
	}
	return nil
}

// checkOutputRef reports what is wrong with ref, an output that stage st
// reads at path (its arraySize's fromOutput, a when's output): malformed,
// naming no stage or st itself (self says why not), a stage not
// upstream of st (up: its upstream stages, direct or not), since only
// those have run when it starts, or a dependency st's triggerRule may
// start it without (uncountedOutput).
func (p *Pipeline) checkOutputRef(path string, st *Stage, ref OutputRef, up map[string]bool, self string) error {
	bad := func(format string, args ...any) error {
		return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case ref.Stage == "" || ref.Key == "":
		return bad("%q: want STAGE.KEY, a KEY=VALUE line of an upstream stage's /gantry/out/%s (extract.FILES)",
			ref.String(), StageOutputsFile)
	case !validOutputKey(ref.Key):
		return bad("%q: %q cannot be a key of %s: no spaces, '=' or leading '#'", ref.String(), ref.Key, StageOutputsFile)
	case ref.Stage == st.Name:
		return bad("%q: %s", ref.String(), self)
	case p.Stage(ref.Stage) == nil:
		return bad("%q: no stage %q in the pipeline", ref.String(), ref.Stage)
	case !up[ref.Stage]:
		return bad("%q: stage %s is not upstream of %s, so it may not have run when %s starts: add it to dependsOn, "+
			"directly or through a stage %s depends on", ref.String(), ref.Stage, st.Name, st.Name, st.Name)
	}
	if why := st.uncountedOutput(ref.Stage); why != "" { // triggerrule.go
		return bad("%q: %s", ref.String(), why)
	}
	return nil
}

// validOutputKey reports whether k can be the key of an outputs.env line.
func validOutputKey(k string) bool {
	return k != "" && !strings.HasPrefix(k, "#") && !strings.ContainsAny(k, "= \t\r\n")
}

// upstreamOf returns the stages name depends on, directly or through
// others. Cycles end the walk (Validate reports them).
func (p *Pipeline) upstreamOf(name string) map[string]bool {
	seen := map[string]bool{}
	todo := []string{name}
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		st := p.Stage(n)
		if st == nil {
			continue
		}
		for _, d := range st.DependsOn {
			if !seen[d.Stage] {
				seen[d.Stage] = true
				todo = append(todo, d.Stage)
			}
		}
	}
	return seen
}

// DecideArraySize is the size of a stage whose arraySize reads ref, given
// the output's value (set false when no run of the stage wrote the key):
// a whole number from 0 to MaxArraySize, spaces around it allowed.
// Anything else is an error naming the output and the value, for the
// stage's reason.
func DecideArraySize(ref OutputRef, value string, set bool) (int, error) {
	if !set {
		return 0, fmt.Errorf("arraySize: %s is not set: no run of stage %s wrote a %s= line to /gantry/out/%s",
			ref, ref.Stage, ref.Key, StageOutputsFile)
	}
	v := strings.TrimSpace(value)
	ok := v != "" && len(v) <= 6
	for i := 0; ok && i < len(v); i++ {
		ok = v[i] >= '0' && v[i] <= '9'
	}
	n, err := strconv.Atoi(v)
	if !ok || err != nil || n > MaxArraySize {
		return 0, fmt.Errorf("arraySize: %s is %q: want an integer 0..%d", ref, shortValue(value), MaxArraySize)
	}
	return n, nil
}

// outputValueInReason finds the value DecideArraySize quotes in a reason
// (%q: quotes inside it are escaped).
var outputValueInReason = regexp.MustCompile(`(arraySize: \S+ is )"(?:[^"\\]|\\.)*"(: want an integer)`)

// HideOutputValues takes out of reason the output values DecideArraySize
// and a when (WhenCondition.Holds) quote in it: an output is what a
// stage's container wrote, which the submit role's views
// (pipelines.status) do not show, as they do not show a run's
// environment; nor do they show parameters, which a when's reason may
// quote too.
func HideOutputValues(reason string) string {
	if strings.Contains(reason, "arraySize: ") {
		reason = outputValueInReason.ReplaceAllString(reason, "${1}a value not shown here${2}")
	}
	if strings.HasPrefix(reason, "when: ") {
		// A when's reason quotes an output's value or a parameter's,
		// which that view does not show either.
		reason = whenValueInReason.ReplaceAllString(reason, "${1}a value not shown here")
	}
	return reason
}

// shortValue is an output's value for a reason: at most 64 bytes of it.
func shortValue(v string) string {
	if len(v) > 64 {
		return v[:64] + "..."
	}
	return v
}

// ParseOutputs reads the KEY=VALUE lines of a stage's outputs.env: blank
// lines and # comments are skipped, an `export ` before the key is
// dropped, and one pair of quotes around the value too. The worker gives
// them to downstream containers and the server reads an arraySize from
// them by these same rules.
func ParseOutputs(r io.Reader) ([]KeyValue, error) {
	var out []KeyValue
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out = append(out, KeyValue{Name: k, Value: v})
	}
	return out, sc.Err()
}

// OutputValue is the value of key among outputs, the last one when
// several lines set it (an array's lines come joined in index order).
func OutputValue(outputs []KeyValue, key string) (string, bool) {
	for i := len(outputs) - 1; i >= 0; i-- {
		if outputs[i].Name == key {
			return outputs[i].Value, true
		}
	}
	return "", false
}
