package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesACommandWithoutDash: arguments after the task that are
// not after -- are refused before anything is submitted, instead of
// running the task's own command as if they had not been given.
func TestRunRefusesACommandWithoutDash(t *testing.T) {
	td := filepath.Join(t.TempDir(), "td.json")
	os.WriteFile(td, []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"hello", "echo", "hi"}, `unexpected argument "echo": the command follows --, as in gantry run hello -- CMD`},
		{[]string{"hello:3", "echo", "--", "hi"}, `unexpected argument "echo": the command follows --, as in gantry run hello:3 -- CMD`},
		{[]string{"--", "echo", "hi"}, `what to run? give FAMILY[:REV] before --`},
		{[]string{"--", "/bin/sh", "-c", "x"}, `what to run? give FAMILY[:REV] before --`},
		{[]string{"--file", td, "echo"}, `unexpected argument "echo": with --file the command follows --, as in gantry run --file ` + td + ` -- CMD`},
		{[]string{"--image", "i", "echo"}, `unexpected argument "echo": with --image the command follows --`},
	} {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		// No NATS listens here: a request that passed would fail to connect.
		root.SetArgs(append([]string{"run", "--nats", "nats://127.0.0.1:1"}, c.args...))
		err := root.ExecuteContext(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gantry run %s: %v; want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}
