package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestRerunAttached: gantry rerun of a failed run runs its command again
// with its environment, --env winning, streams its output and exits with
// its exit code; describe shows where the new run came from.
func TestRerunAttached(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	id := in.detached("run", "-d", "--env", "WHO=first", "--env", "KEEP=kept", "--tag", "team=data",
		"--image", in.image, "--", "sh", "-c", "echo $WHO $KEEP; exit 3")
	if r := in.waitStatus(id, jobs.StatusFailed); r.ExitCode == nil || *r.ExitCode != 3 {
		t.Fatalf("the run: %s, exit %v", r.Status, r.ExitCode)
	}
	out, errOut, code := in.gantry("rerun", "--env", "WHO=again", id)
	if code != 3 || out != "again kept\n" {
		t.Fatalf("gantry rerun: exit %d, stdout %q, stderr %q; want 3 and %q", code, out, errOut, "again kept\n")
	}
	list, _, _ := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	json.Unmarshal([]byte(list), &runs)
	var rerun *jobs.Run
	for i := range runs {
		if runs[i].RerunOf == id {
			rerun = &runs[i]
		}
	}
	if rerun == nil || rerun.Status != jobs.StatusFailed || rerun.Tags["team"] != "data" {
		t.Fatalf("no failed rerun of %s tagged team=data in ps:\n%s", id, list)
	}
	if d, _, _ := in.gantry("describe", rerun.RunID); !strings.Contains(d, "Rerun of:") || !strings.Contains(d, id) {
		t.Errorf("describe of the rerun does not say Rerun of %s:\n%s", id, d)
	}
}
