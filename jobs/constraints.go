package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Constraints place a run on the workers whose labels (gantry worker
// --label K=V) satisfy them, as Kubernetes' nodeSelector, Nomad's
// constraint and ECS's memberOf placement constraints do: K=V asks for a
// worker with label K of value V, K!=V for one whose label K is not V (a
// worker without label K satisfies it, as Kubernetes' NotIn), K alone for
// one with label K of any value (Kubernetes' Exists, Nomad's is_set) and
// !K for one without label K (DoesNotExist, is_not_set). A run asks for
// at most MaxConstraints; keys have 1 to MaxConstraintKeyLen characters,
// values 0 to MaxConstraintValueLen, both letters, digits and - _ . /
// (values also : @ +). Worker labels (CheckLabel) have the same alphabet
// and lengths, so that every label can be asked for.
const (
	MaxConstraints         = 16
	MaxConstraintKeyLen    = 128
	MaxConstraintValueLen  = 256
	constraintKeyPunct     = "-_./"
	constraintValuePunct   = "-_./:@+"
	constraintShapeMessage = `want a list of "K=V", "K!=V", "K" or "!K" strings, or an object of strings ({"disk": "ssd"}, as Kubernetes' nodeSelector)`
	constraintForms        = "want K=V, K!=V, K or !K (a worker label K of value V, not of value V, of any value, or no label K)"
)

// Constraint is one condition on a worker's labels.
type Constraint struct {
	Key   string
	Value string
	// Not asks for a worker whose label Key is not Value (or that has no
	// label Key); with Presence, for one that has no label Key.
	Not bool
	// Presence asks only whether the worker has label Key, of any value
	// (K), or, with Not, has none (!K); Value is empty.
	Presence bool
	// inMap marks a constraint given in the object shape, named by its
	// key.
	inMap bool
}

// String is K=V, K!=V, K or !K.
func (c Constraint) String() string {
	switch {
	case c.Presence && c.Not:
		return "!" + c.Key
	case c.Presence:
		return c.Key
	case c.Not:
		return c.Key + "!=" + c.Value
	}
	return c.Key + "=" + c.Value
}

// Met reports whether a worker with labels satisfies c.
func (c Constraint) Met(labels map[string]string) bool {
	v, ok := labels[c.Key]
	switch {
	case c.Presence:
		return ok != c.Not
	case c.Not:
		return !ok || v != c.Value
	}
	return ok && v == c.Value
}

// absent reports whether c holds only for a worker without label Key
// (!K); needs whether it holds only for one with it (K, K=V).
func (c Constraint) absent() bool { return c.Presence && c.Not }
func (c Constraint) needs() bool  { return !c.Not }

// Conflict says why no worker could satisfy both c and o, an earlier
// constraint named name, or "" when one could. K=V and K, or !K and
// K!=V, hold together: the one says more than the other.
func (c Constraint) Conflict(o Constraint, name string) string {
	switch {
	case o.Key != c.Key:
		return ""
	case o.Not == c.Not && o.Presence == c.Presence && o.Value == c.Value:
		return "given twice (also " + name + ")"
	case c.absent() && o.needs() || o.absent() && c.needs():
		return fmt.Sprintf("contradicts %s (%s): a worker cannot both have label %s and lack it", name, o, c.Key)
	case c.Presence || o.Presence:
		return ""
	case !o.Not && !c.Not:
		return fmt.Sprintf("contradicts %s (%s): a worker's label has one value", name, o)
	case o.Value == c.Value:
		return fmt.Sprintf("contradicts %s (%s)", name, o)
	}
	return ""
}

// ParseConstraint reads K=V, K!=V, K or !K (K= asks for an empty value),
// as gantry run --constraint and a submission's list take them.
func ParseConstraint(s string) (Constraint, error) {
	c := parseConstraint(s)
	if err := c.check(); err != nil {
		return Constraint{}, fmt.Errorf("%q: %s", s, err)
	}
	return c, nil
}

// parseConstraint splits s at its operator, without checking the key and
// value: a string without = is a presence constraint, K or !K.
func parseConstraint(s string) Constraint {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		if k, ok := strings.CutPrefix(s, "!"); ok {
			return Constraint{Key: k, Not: true, Presence: true}
		}
		return Constraint{Key: s, Presence: true}
	}
	c := Constraint{Key: k, Value: v}
	if k, ok := strings.CutSuffix(k, "!"); ok {
		c.Key, c.Not = k, true
	}
	return c
}

// check says what is wrong with c's key or value.
func (c Constraint) check() error {
	if strings.HasPrefix(c.Key, "!") {
		// "!disk=ssd": a ! before a key that has a value.
		return fmt.Errorf("key %q: character '!' not allowed: %s", c.Key, constraintForms)
	}
	if c.Presence && !c.Not && c.Key == "" {
		// --constraint "$UNSET", or "" in a list. (An unquoted !spot in a
		// pipeline file is a YAML tag, refused as such when it is read.)
		return fmt.Errorf("empty: %s", constraintForms)
	}
	if c.Presence && c.Value != "" {
		return fmt.Errorf("value %q: a presence constraint (K or !K) has none", c.Value)
	}
	if err := checkKey(c.Key); err != nil {
		return err
	}
	return checkValue(c.Value)
}

// checkKey says what is wrong with a label's or a constraint's key.
func checkKey(key string) error {
	switch n := len(key); {
	case n == 0:
		return fmt.Errorf("empty key: %s", constraintForms)
	case n > MaxConstraintKeyLen:
		return fmt.Errorf("key of %d characters: at most %d", n, MaxConstraintKeyLen)
	}
	if r, ok := badConstraintRune(key, constraintKeyPunct); !ok {
		return fmt.Errorf("key %q: character %q not allowed: use letters, digits and %s", key, r, spaced(constraintKeyPunct))
	}
	return nil
}

// checkValue says what is wrong with a label's or a constraint's value.
func checkValue(v string) error {
	if n := len(v); n > MaxConstraintValueLen {
		return fmt.Errorf("value of %d characters: at most %d", n, MaxConstraintValueLen)
	}
	if r, ok := badConstraintRune(v, constraintValuePunct); !ok {
		return fmt.Errorf("value %q: character %q not allowed: use letters, digits and %s", v, r, spaced(constraintValuePunct))
	}
	return nil
}

// ParseLabel reads a worker label, K=V (gantry worker --label), whose key
// and value a constraint can name: the same characters and lengths.
func ParseLabel(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		if checkKey(s) == nil {
			// As Docker's --label gpu would be: a label of no value,
			// which a constraint gpu asks for whatever its value.
			return "", "", fmt.Errorf("%q: want K=V: %s= for a label %s of no value (gantry run --constraint %s asks for a label %s of any value)", s, s, s, s, s)
		}
		return "", "", fmt.Errorf("%q: want K=V", s)
	}
	if err := checkKey(k); err != nil {
		if k == "" {
			err = errors.New("empty key: want K=V")
		}
		return "", "", fmt.Errorf("%q: %w (so that gantry run --constraint can ask for it)", s, err)
	}
	if err := checkValue(v); err != nil {
		return "", "", fmt.Errorf("%q: %w (so that gantry run --constraint can ask for it)", s, err)
	}
	return k, v, nil
}

// badConstraintRune finds the first character of s that is not an ASCII
// letter or digit nor in punct; ok is true when there is none.
func badConstraintRune(s, punct string) (r rune, ok bool) {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(punct, r):
		default:
			return r, false
		}
	}
	return 0, true
}

func spaced(punct string) string {
	return strings.Join(strings.Split(punct, ""), " ")
}

// Constraints are a run's conditions on the labels of the worker that
// runs it, all of which must hold. Their JSON is a list of "K=V",
// "K!=V", "K" and "!K" strings, or an object of strings, {"disk": "ssd"},
// each entry asking for that value (Kubernetes' nodeSelector); they are
// written as the list.
type Constraints []Constraint

// errConstraintShape is the error of constraints in neither shape.
var errConstraintShape = errors.New("constraints: " + constraintShapeMessage)

// UnmarshalJSON reads either shape; a string with a bad key or value is
// kept for Validate, which names it by its index. An object's entries come
// in key order.
func (cs *Constraints) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		*cs = nil
	case len(data) > 0 && data[0] == '{':
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return errConstraintShape
		}
		out := make(Constraints, 0, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, Constraint{Key: k, Value: m[k], inMap: true})
		}
		*cs = out
	default:
		var list []string
		if err := json.Unmarshal(data, &list); err != nil {
			return errConstraintShape
		}
		out := make(Constraints, 0, len(list))
		for _, s := range list {
			out = append(out, parseConstraint(s))
		}
		*cs = out
	}
	return nil
}

// MarshalJSON writes the list of strings.
func (cs Constraints) MarshalJSON() ([]byte, error) {
	return json.Marshal(cs.Strings())
}

// Strings are the constraints as K=V, K!=V, K and !K, in their order.
func (cs Constraints) Strings() []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

// String is the constraints joined by ", ".
func (cs Constraints) String() string { return strings.Join(cs.Strings(), ", ") }

// Match reports whether a worker with labels satisfies every constraint.
// It allocates nothing.
func (cs Constraints) Match(labels map[string]string) bool {
	for _, c := range cs {
		if !c.Met(labels) {
			return false
		}
	}
	return true
}

// Validate collects the problems of the constraints, each naming its path
// under field ("constraints"): field[i] for a list's entry, field["k"] for
// an object's. A key asked for two values, for a value and not for it, or
// for a label and for none, is a problem too: no worker could satisfy
// both.
func (cs Constraints) Validate(field string) error {
	var errs []error
	if len(cs) > MaxConstraints {
		errs = append(errs, &FieldError{field, fmt.Sprintf("%d constraints: at most %d", len(cs), MaxConstraints)})
	}
	path := func(i int) string {
		if cs[i].inMap {
			return fmt.Sprintf("%s[%q]", field, cs[i].Key)
		}
		return fmt.Sprintf("%s[%d]", field, i)
	}
	bad := make([]bool, len(cs))
	for i, c := range cs {
		if err := c.check(); err != nil {
			errs = append(errs, &FieldError{path(i), fmt.Sprintf("%q: %s", c.String(), err)})
			bad[i] = true
			continue
		}
		for j := range i {
			if bad[j] {
				continue
			}
			if msg := c.Conflict(cs[j], path(j)); msg != "" {
				errs = append(errs, &FieldError{path(i), fmt.Sprintf("%q: %s", c.String(), msg)})
				break
			}
		}
	}
	return errors.Join(errs...)
}

// MergeConstraints joins the constraints of lists, those of a later list
// replacing those of an earlier one on the same key (a pipeline stage's
// over the pipeline's, a submission's over its task definition's); nil
// when there are none. The result is sorted by key.
func MergeConstraints(lists ...Constraints) Constraints {
	var out Constraints
	for _, l := range lists {
		if len(l) == 0 {
			continue
		}
		out = slices.DeleteFunc(out, func(c Constraint) bool {
			return slices.ContainsFunc(l, func(n Constraint) bool { return n.Key == c.Key })
		})
		out = append(out, l...)
	}
	slices.SortStableFunc(out, func(a, b Constraint) int { return strings.Compare(a.Key, b.Key) })
	for i := range out {
		out[i].inMap = false
	}
	return out
}

// CheckMerged says, naming field, when constraints merged from several
// places are more than MaxConstraints.
func (cs Constraints) CheckMerged(field, what string) error {
	if len(cs) > MaxConstraints {
		return &FieldError{field, fmt.Sprintf("%d constraints, %s together: at most %d", len(cs), what, MaxConstraints)}
	}
	return nil
}

// Unmet are the constraints that no worker of workers satisfies on its
// own, in order.
func (cs Constraints) Unmet(workers []map[string]string) Constraints {
	var out Constraints
	for _, c := range cs {
		if !slices.ContainsFunc(workers, func(l map[string]string) bool { return c.Met(l) }) {
			out = append(out, c)
		}
	}
	return out
}

// constraintShapeProblems names the constraints of a pipeline file (JSON)
// that are in neither shape, by their field paths (constraints,
// stages[1](load).constraints), for the decoding error that says only
// that some are.
func constraintShapeProblems(js []byte) error {
	return fieldProblems(js, "constraints", true, func(path string, raw json.RawMessage) []error {
		var cs Constraints
		if cs.UnmarshalJSON(raw) != nil {
			return []error{&FieldError{path, constraintShapeMessage}}
		}
		return nil
	})
}

// StageConstraints are the constraints of st's runs: the pipeline file's,
// with the stage's replacing them key by key, and those the run was
// started with (gantry pipeline run --constraint) besides, all holding.
func (pr *PipelineRun) StageConstraints(st *Stage) Constraints {
	return withConstraints(MergeConstraints(pr.Spec.Constraints, st.Constraints), pr.Constraints)
}

// withConstraints adds to base (sorted by key) the constraints of extra
// that it lacks, keeping both sides' on the same key: unlike
// MergeConstraints, all of them hold. The result is sorted by key.
func withConstraints(base, extra Constraints) Constraints {
	out := slices.Clone(base)
	for _, c := range extra {
		if !slices.ContainsFunc(out, c.same) {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b Constraint) int { return strings.Compare(a.Key, b.Key) })
	for i := range out {
		out[i].inMap = false
	}
	return out
}

// same reports whether c and o ask the same of a worker.
func (c Constraint) same(o Constraint) bool {
	return c.Key == o.Key && c.Value == o.Value && c.Not == o.Not && c.Presence == o.Presence
}

// CheckRunConstraints says, naming each of cs by its path under field,
// which of the constraints a run of p is started with (gantry pipeline
// run --constraint) contradict those of the pipeline file that hold for
// some stage (the file's top-level ones a stage does not replace, and the
// stage's own), naming the file's by their paths; and which stages' runs
// would get more than MaxConstraints. cs add to the file's, all holding:
// a stage's constraints say what its task needs (a GPU, a licence), which
// a run's flag must not quietly undo, and one that cannot hold with them
// would leave the stage's runs QUEUED for ever. cs are valid on their
// own.
func (p *Pipeline) CheckRunConstraints(field string, cs Constraints) error {
	if len(cs) == 0 {
		return nil
	}
	type named struct {
		c    Constraint
		path string
	}
	var errs []error
	said := map[string]bool{}
	for i := range p.Stages {
		st := &p.Stages[i]
		var file []named
		for j, c := range st.Constraints {
			file = append(file, named{c, fmt.Sprintf("%s.constraints[%d]", stagePath(i, st.Name), j)})
		}
		for j, c := range p.Constraints {
			if !slices.ContainsFunc(st.Constraints, func(o Constraint) bool { return o.Key == c.Key }) {
				file = append(file, named{c, fmt.Sprintf("constraints[%d]", j)})
			}
		}
		for k, c := range cs {
			for _, f := range file {
				if c.same(f.c) {
					continue
				}
				msg := c.Conflict(f.c, "the pipeline file's "+f.path)
				if msg == "" || said[fmt.Sprint(k, f.path)] {
					continue
				}
				said[fmt.Sprint(k, f.path)] = true
				errs = append(errs, &FieldError{fmt.Sprintf("%s[%d]", field, k), fmt.Sprintf("%q: %s", c.String(), msg)})
			}
		}
		if n := len(withConstraints(MergeConstraints(p.Constraints, st.Constraints), cs)); n > MaxConstraints {
			errs = append(errs, &FieldError{field, fmt.Sprintf("%d constraints for %s, the pipeline file's and the run's together: at most %d",
				n, stagePath(i, st.Name), MaxConstraints)})
		}
	}
	return errors.Join(errs...)
}

// PlacementConstraint is one of an ECS task definition's
// placementConstraints. Gantry keeps those of type memberOf whose
// expression is attribute:K == V or attribute:K != V, K a worker label
// (not one of ECS's own ecs.* attributes): they constrain the definition's
// runs as K=V and K!=V do. The others mean something only on AWS: decoding
// drops them with a warning.
type PlacementConstraint struct {
	Type       string `json:"type"`
	Expression string `json:"expression,omitempty"`
}

// Constraint reads p as a worker label constraint; ok is false for what
// gantry cannot map.
func (p PlacementConstraint) Constraint() (c Constraint, ok bool) {
	if p.Type != "memberOf" {
		return Constraint{}, false
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(p.Expression), "attribute:")
	if !ok {
		return Constraint{}, false
	}
	for _, op := range []string{"==", "!="} {
		k, v, found := strings.Cut(rest, op)
		if !found {
			continue
		}
		c = Constraint{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v), Not: op == "!="}
		if c.Value == "" || strings.HasPrefix(c.Key, "ecs.") || c.check() != nil {
			return Constraint{}, false
		}
		return c, true
	}
	return Constraint{}, false
}

// Constraints are the worker label constraints of the task definition's
// placementConstraints.
func (td *TaskDefinition) Constraints() Constraints {
	var out Constraints
	for _, p := range td.PlacementConstraints {
		if c, ok := p.Constraint(); ok {
			out = append(out, c)
		}
	}
	return out
}

// keepPlacement keeps, of a decoded task definition's (obj's)
// placementConstraints, those gantry maps to label constraints (as
// {type, expression}), and lists the others by their paths: in unread
// those of type memberOf on an attribute of the user's own (not ecs.*)
// that gantry cannot read (attribute:disk in [ssd, nvme], an and of two,
// a regular expression), which mean a placement the runs lose; in ignored
// the rest, which mean something only on AWS. A value that is not an
// array is left to the shape check.
func keepPlacement(obj map[string]any) (ignored, unread []string) {
	list, ok := obj["placementConstraints"].([]any)
	if !ok {
		return nil, nil
	}
	var kept []any
	for i, e := range list {
		m, _ := e.(map[string]any)
		typ, _ := m["type"].(string)
		expr, _ := m["expression"].(string)
		pc := PlacementConstraint{Type: typ, Expression: expr}
		if _, ok := pc.Constraint(); ok && len(m) == 2 {
			kept = append(kept, map[string]any{"type": typ, "expression": expr})
			continue
		}
		what := typ
		if expr != "" {
			what += " " + expr
		}
		named := fmt.Sprintf("placementConstraints[%d] (%s)", i, strings.TrimSpace(what))
		if ownAttribute(typ, expr) {
			unread = append(unread, named)
		} else {
			ignored = append(ignored, named)
		}
	}
	if len(kept) == 0 {
		delete(obj, "placementConstraints")
	} else {
		obj["placementConstraints"] = kept
	}
	return ignored, unread
}

// ownAttribute reports whether a placement constraint asks for an
// attribute of the user's own, which a worker label would stand for:
// memberOf on attribute:K, K not one of ECS's ecs.* attributes.
func ownAttribute(typ, expr string) bool {
	rest, ok := strings.CutPrefix(strings.TrimSpace(expr), "attribute:")
	return typ == "memberOf" && ok && !strings.HasPrefix(rest, "ecs.")
}

// validatePlacement collects the problems of the placementConstraints
// kept (a definition made otherwise than by decoding may hold others):
// each must map to a label constraint, and together they must be
// satisfiable.
func (td *TaskDefinition) validatePlacement() []error {
	var errs []error
	var cs Constraints
	for i, p := range td.PlacementConstraints {
		c, ok := p.Constraint()
		if !ok {
			errs = append(errs, &FieldError{fmt.Sprintf("placementConstraints[%d]", i),
				fmt.Sprintf(`type %q, expression %q: want type memberOf with expression "attribute:K == V" or "attribute:K != V", K a worker label`, p.Type, p.Expression)})
		}
		cs = append(cs, c)
	}
	if len(errs) > 0 {
		return errs
	}
	if err := cs.Validate("placementConstraints"); err != nil {
		return unjoin(err)
	}
	return nil
}
