package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestConstraintFlagsAreCheckedBeforeConnecting: a bad --constraint of
// gantry run or gantry rerun is refused naming the flag and the value,
// before any request (no NATS listens here).
func TestConstraintFlagsAreCheckedBeforeConnecting(t *testing.T) {
	var many []string
	for i := range 17 {
		many = append(many, "--constraint", fmt.Sprintf("k%d=v", i))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--constraint", "disk", "etl"}, `--constraint "disk": want K=V or K!=V`},
		{[]string{"run", "--constraint", "=ssd", "etl"}, `--constraint "=ssd": empty key`},
		{[]string{"run", "--constraint", "!=ssd", "etl"}, `--constraint "!=ssd": empty key`},
		{[]string{"run", "--constraint", "disk type=ssd", "etl"}, `--constraint "disk type=ssd": key "disk type": character ' ' not allowed: use letters, digits and - _ . /`},
		{[]string{"run", "--constraint", "disk=a,b", "etl"}, `--constraint "disk=a,b": value "a,b": character ',' not allowed`},
		{[]string{"run", "--constraint", "disk=ssd", "--constraint", "disk=hdd", "etl"},
			`--constraint "disk=hdd": contradicts --constraint "disk=ssd" (disk=ssd): a worker's label has one value`},
		{[]string{"run", "--constraint", "disk=ssd", "--constraint", "disk!=ssd", "etl"},
			`--constraint "disk!=ssd": contradicts --constraint "disk=ssd" (disk=ssd)`},
		{[]string{"run", "--constraint", "disk=ssd", "--constraint", "disk=ssd", "etl"},
			`--constraint "disk=ssd": given twice (also --constraint "disk=ssd")`},
		{append(append([]string{"run"}, many...), "etl"), `--constraint: 17 constraints: at most 16`},
		{[]string{"rerun", "--constraint", "gpu", "01abc"}, `--constraint "gpu": want K=V or K!=V`},
	} {
		err := offline(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// TestDescribeShowsConstraints: gantry describe shows the constraints a
// run was placed by, the task definition's included, and nothing for a
// run without.
func TestDescribeShowsConstraints(t *testing.T) {
	var r jobs.Run
	if err := json.Unmarshal([]byte(`{"runId":"r1","status":"QUEUED","cluster":"etl",
		"statusReason":"no worker in cluster etl has labels disk=ssd","spec":{"task":{"family":"x"},"constraints":["disk=ssd","zone!=eu-1"]}}`), &r); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := describeRun(&b, &r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Constraints:\tdisk=ssd, zone!=eu-1\n", "Status reason:\tno worker in cluster etl has labels disk=ssd\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("describe lacks %q:\n%s", want, b.String())
		}
	}
	r.Spec.Constraints = nil
	b.Reset()
	describeRun(&b, &r)
	if strings.Contains(b.String(), "Constraints") {
		t.Errorf("a run without constraints:\n%s", b.String())
	}
}
