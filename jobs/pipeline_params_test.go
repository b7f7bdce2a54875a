package jobs

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestRequiredParameterParses: {required: true} declares a parameter
// without a default beside the defaults, which read as before (null the
// empty default), and the pipeline's JSON writes it back the same way.
func TestRequiredParameterParses(t *testing.T) {
	p, err := ParsePipeline([]byte("name: reload\nparameters: {customer: {required: true}, day: 2026-01-01, note: null}\n" +
		"stages: [{name: a, taskDefinition: t, overrides: {containerOverrides: [{name: m, command: ['${customer}', '${day}']}]}}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Parameters.RequiredNames(); !slices.Equal(got, []string{"customer"}) {
		t.Errorf("required %v, want [customer]", got)
	}
	if got, want := p.Parameters.Defaults(), (Params{"day": "2026-01-01", "note": ""}); !maps.Equal(got, want) {
		t.Errorf("defaults %v, want %v", got, want)
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"parameters":{"customer":{"required":true},"day":"2026-01-01","note":""}`) {
		t.Errorf("JSON %s", js)
	}
	var back Pipeline
	if err := json.Unmarshal(js, &back); err != nil || !maps.Equal(back.Parameters, p.Parameters) {
		t.Errorf("read back %v (%v), want %v", back.Parameters, err, p.Parameters)
	}
}

// TestRequiredParameterShapes: anything but {required: true} as an
// object is refused naming the field.
func TestRequiredParameterShapes(t *testing.T) {
	for _, tc := range []struct{ params, want string }{
		{"{customer: {required: false}}", `parameters.customer.required: false: want true; a parameter a run need not be given has a default: write customer: VALUE`},
		{"{customer: {required: yes}}", `parameters.customer.required: "yes": want true`},
		{"{customer: {requird: true}}", `parameters.customer.requird: unknown field; did you mean "required"?`},
		{"{customer: {default: x}}", `parameters.customer.default: unknown field: a parameter is its default (customer: VALUE) or {required: true}`},
		{"{customer: {}}", `parameters.customer: {}: want a default (customer: VALUE) or {required: true}`},
		{"{customer: [a]}", `parameters.customer: a list: want a default (a string, number or boolean) or {required: true}`},
	} {
		t.Run(tc.params, func(t *testing.T) {
			_, err := ParsePipeline([]byte("name: p\nparameters: " + tc.params + "\nstages: [{name: a, taskDefinition: t}]\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRequiredParameterAndSchedule: a schedule gives its runs no
// parameter but its dateParameter, so one required parameter it does not
// set is refused at apply, naming the schedule and the parameter.
func TestRequiredParameterAndSchedule(t *testing.T) {
	const stages = "stages: [{name: a, taskDefinition: t}]\n"
	_, err := ParsePipeline([]byte("name: p\nparameters: {customer: {required: true}, day: {required: true}}\n" +
		"schedule: {cron: '@daily', dateParameter: day}\n" + stages))
	want := `schedule: its runs would have no value for parameter customer, which has no default (parameters.customer: {required: true}): give it a default, or make it schedule.dateParameter`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if _, err := ParsePipeline([]byte("name: p\nparameters: {day: {required: true}}\nschedule: {cron: '@daily', dateParameter: day}\n" + stages)); err != nil {
		t.Errorf("the schedule sets the required parameter: %v", err)
	}
}

// TestCheckRequired: a run lacking required parameters is refused naming
// each; the empty value given is given.
func TestCheckRequired(t *testing.T) {
	p := &Pipeline{Name: "daily-sales", Parameters: ParamDecls{"customer": {Required: true}, "region": {Required: true}, "day": {Default: "x"}}}
	got, err := p.ResolveParams(map[string]string{"day": "y"})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, Params{"day": "y"}) {
		t.Errorf("resolved %v: a required parameter not given is left out", got)
	}
	err = p.CheckRequired(got)
	want := "parameters.customer: pipeline daily-sales needs parameter customer: give it a value\n" +
		"parameters.region: pipeline daily-sales needs parameter region: give it a value"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if err := p.CheckRequired(Params{"customer": "", "region": "eu"}); err != nil {
		t.Errorf("given: %v", err)
	}
}

// TestCheckTriggersRequiredParameters: a trigger whose upstream pipeline
// does not declare a parameter this one requires is refused, naming it.
func TestCheckTriggersRequiredParameters(t *testing.T) {
	up := Pipeline{Name: "sales", Parameters: ParamDecls{"day": {Default: "x"}}}
	p := &Pipeline{Name: "report", Parameters: ParamDecls{"day": {Required: true}, "customer": {Required: true}},
		Triggers: []Trigger{{Pipeline: "sales"}}}
	err := CheckTriggers(p, []Pipeline{up})
	want := `triggers[0].pipeline: sales declares no parameter customer, which this pipeline requires (parameters.customer: {required: true}): the runs it triggers would have no value for it`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	up.Parameters["customer"] = ParamDecl{Required: true}
	if err := CheckTriggers(p, []Pipeline{up}); err != nil {
		t.Errorf("the upstream declares both: %v", err)
	}
}

// TestCheckTriggersUpstreamDropsRequiredParameter: an upstream pipeline
// applied again without a parameter that a pipeline it triggers requires
// is refused, naming that pipeline, its trigger and the parameter.
func TestCheckTriggersUpstreamDropsRequiredParameter(t *testing.T) {
	down := Pipeline{Name: "report", Parameters: ParamDecls{"customer": {Required: true}},
		Triggers: []Trigger{{Pipeline: "other"}, {Pipeline: "sales"}}}
	old := Pipeline{Name: "sales", Parameters: ParamDecls{"customer": {Default: "x"}}}
	up := &Pipeline{Name: "sales"}
	err := CheckTriggers(up, []Pipeline{old, down, {Name: "other"}})
	want := `parameters: pipeline report, which sales triggers (its triggers[1]), requires parameter customer: declare customer here, or the runs it triggers would have no value for it`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	up.Parameters = ParamDecls{"customer": {Required: true}}
	if err := CheckTriggers(up, []Pipeline{old, down}); err != nil {
		t.Errorf("the upstream declares it: %v", err)
	}
}

// TestRequiredParameterChange: a dry run tells a default made required
// as the file writes it.
func TestRequiredParameterChange(t *testing.T) {
	const stages = "stages: [{name: a, taskDefinition: t}]\n"
	old, err := ParsePipeline([]byte("name: p\nparameters: {customer: all}\n" + stages))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePipeline([]byte("name: p\nparameters: {customer: {required: true}}\n" + stages))
	if err != nil {
		t.Fatal(err)
	}
	got := PipelineChanges(old, p)
	if want := []string{"parameters.customer: all -> {required: true}"}; !slices.Equal(got, want) {
		t.Errorf("changes %q, want %q", got, want)
	}
}
