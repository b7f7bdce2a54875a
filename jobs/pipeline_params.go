package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// ParamDecl declares one parameter of a pipeline: its default, or, when
// Required, that it has none and every run must be given it.
type ParamDecl struct {
	Default  string
	Required bool
}

// ParamDecls are a pipeline's parameters by name, as its file declares
// them: `day: "2026-01-01"` with its default, `customer: {required:
// true}` without one, which `gantry pipeline run --param`, the API's
// parameters, a trigger or the schedule's dateParameter must give.
type ParamDecls map[string]ParamDecl

// MarshalJSON writes a parameter as its file does: the default, or
// {"required": true}.
func (d ParamDecl) MarshalJSON() ([]byte, error) {
	if d.Required {
		return []byte(`{"required":true}`), nil
	}
	return json.Marshal(d.Default)
}

// UnmarshalJSON takes numbers and booleans as their text, so that YAML's
// `rows: 100` is the default "100", null as the empty default (as it was
// before required parameters), and {required: true} for a parameter
// without a default.
func (p *ParamDecls) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := ParamDecls{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		d, err := decodeParamDecl(k, raw[k])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[k] = d
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	*p = out
	return nil
}

func decodeParamDecl(k string, v json.RawMessage) (ParamDecl, error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) > 0 && v[0] == '"':
		var s string
		err := json.Unmarshal(v, &s)
		return ParamDecl{Default: s}, err
	case string(v) == "null":
		return ParamDecl{}, nil
	case len(v) > 0 && v[0] == '[':
		return ParamDecl{}, &FieldError{Path: "parameters." + k,
			Msg: "a list: want a default (a string, number or boolean) or {required: true}"}
	case len(v) > 0 && v[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return ParamDecl{}, err
		}
		var errs []error
		names := make([]string, 0, len(obj))
		for f := range obj {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, f := range names {
			if f != "required" {
				msg := "unknown field: a parameter is its default (" + k + ": VALUE) or {required: true}"
				if s := Nearest(f, []string{"required"}); s != "" {
					msg = fmt.Sprintf("unknown field; did you mean %q?", s)
				}
				errs = append(errs, &FieldError{Path: "parameters." + k + "." + f, Msg: msg})
			}
		}
		req, ok := obj["required"]
		switch {
		case !ok && len(errs) == 0:
			errs = append(errs, &FieldError{Path: "parameters." + k,
				Msg: "{}: want a default (" + k + ": VALUE) or {required: true}"})
		case ok && string(bytes.TrimSpace(req)) != "true":
			errs = append(errs, &FieldError{Path: "parameters." + k + ".required",
				Msg: fmt.Sprintf("%s: want true; a parameter a run need not be given has a default: write %s: VALUE", req, k)})
		}
		if err := errors.Join(errs...); err != nil {
			return ParamDecl{}, err
		}
		return ParamDecl{Required: true}, nil
	default:
		return ParamDecl{Default: string(v)}, nil
	}
}

// Defaults returns the parameters that have a default, with it.
func (p ParamDecls) Defaults() Params {
	out := make(Params, len(p))
	for k, d := range p {
		if !d.Required {
			out[k] = d.Default
		}
	}
	return out
}

// RequiredNames returns the names of the parameters without a default,
// sorted.
func (p ParamDecls) RequiredNames() []string {
	var out []string
	for k, d := range p {
		if d.Required {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Has reports whether the pipeline declares the parameter name.
func (p ParamDecls) Has(name string) bool {
	_, ok := p[name]
	return ok
}

// CheckRequired refuses a run of p whose parameters, from every source
// (its request, a trigger, the schedule's dateParameter), lack one that
// p declares without a default, naming each (parameters.customer:
// pipeline daily-sales needs parameter customer: give it a value).
func (p *Pipeline) CheckRequired(params Params) error {
	var errs []error
	for _, k := range p.Parameters.RequiredNames() {
		if _, ok := params[k]; !ok {
			errs = append(errs, &FieldError{Path: "parameters." + k,
				Msg: fmt.Sprintf("pipeline %s needs parameter %s: %s", p.Name, k, MissingParamHint)})
		}
	}
	return errors.Join(errs...)
}

// MissingParamHint ends the error of a run lacking a required parameter;
// the CLI puts its --param flag in its place.
const MissingParamHint = "give it a value"

// checkScheduleParams refuses a schedule whose runs would lack a required
// parameter: a fire gives none but the dateParameter.
func (p *Pipeline) checkScheduleParams() []error {
	if p.Schedule == nil {
		return nil
	}
	var errs []error
	for _, k := range p.Parameters.RequiredNames() {
		if k == p.Schedule.DateParameter {
			continue
		}
		errs = append(errs, &FieldError{Path: "schedule", Msg: fmt.Sprintf(
			"its runs would have no value for parameter %s, which has no default (parameters.%s: {required: true}): "+
				"give it a default, or make it schedule.dateParameter", k, k)})
	}
	return errs
}
