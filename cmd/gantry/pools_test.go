package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestPoolCommandsCheckTheirFlags: gantry pool set and delete, and gantry
// run --pool, refuse bad names and slots before connecting, naming the
// flag or argument.
func TestPoolCommandsCheckTheirFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pool", "set", "warehouse"}, "--slots: required (0 pauses the pool)"},
		{[]string{"pool", "set", "warehouse", "--slots", "-1"}, "--slots: -1: want 0 (paused: nothing new starts) to 1000000"},
		{[]string{"pool", "set", "ware house", "--slots", "2"}, `NAME: "ware house": a pool name is letters, digits, '-' and '_'`},
		{[]string{"pool", "delete", "ware/house"}, `NAME: "ware/house": a pool name`},
		{[]string{"run", "--pool", "ware house", "--image", "busybox", "--", "true"}, `--pool: "ware house": a pool name`},
		{[]string{"pool", "set"}, "accepts 1 arg(s), received 0; usage: gantry pool set NAME --slots N"},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		// No NATS listens here: flags that passed would fail to connect.
		root.SetArgs(append(c.args, "--nats", "nats://127.0.0.1:1"))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
