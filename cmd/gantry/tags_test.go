package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestTagFlagsAreCheckedBeforeConnecting: a bad --tag of gantry run or
// gantry ps is refused naming the flag and the value, before any request
// (no NATS listens here: a command that got that far would fail to
// connect instead).
func TestTagFlagsAreCheckedBeforeConnecting(t *testing.T) {
	var fifty []string
	for i := range 51 {
		fifty = append(fifty, "--tag", fmt.Sprintf("k%d=v", i))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--tag", "team", "etl"}, `--tag "team": want KEY=VALUE (KEY= for an empty value)`},
		{[]string{"run", "--tag", "=data", "etl"}, `--tag "=data": empty key`},
		{[]string{"run", "--tag", "gantry:stage=x", "etl"}, `--tag "gantry:stage=x": key "gantry:stage": the prefixes gantry: and gantry. are reserved`},
		{[]string{"run", "--tag", "team=a,b", "etl"}, `--tag "team=a,b": value "a,b": character ',' not allowed`},
		{[]string{"run", "--tag", "team=a", "--tag", "team=b", "etl"}, `--tag "team=b": key "team" given twice (also --tag "team=a")`},
		{append(append([]string{"run"}, fifty...), "etl"), `--tag: 51 tags: at most 50`},
		{[]string{"ps", "--tag", "a b=c\td"}, `--tag "a b=c\td": value "c\td": character '\t' not allowed`},
		{[]string{"ps", "--tag", "team=a", "--tag", "team=b"}, `--tag "team=b": key "team" is given the value "a" too: no run has both`},
		{[]string{"ps", "--all", "--tag", "gantry.run"}, `--tag "gantry.run": key "gantry.run": the prefixes`},
		{[]string{"pipeline", "run", "--tag", "team", "etl"}, `--tag "team": want KEY=VALUE`},
		{[]string{"pipeline", "backfill", "etl", "--from", "2026-01-01", "--to", "2026-01-02", "--tag", "a=b", "--tag", "a=c"},
			`--tag "a=c": key "a" given twice (also --tag "a=b")`},
	} {
		err := offline(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
