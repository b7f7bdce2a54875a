package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// TestUnknownRunsSayHowToFindRuns: describe, stop, wait, logs and rerun
// of a run the server does not know said only "run nosuch: not found",
// where schedule describe and webhook say which command lists them; and
// run and rerun --depends-on nosuch said "dependsOn[0].runId: run nosuch:
// not found", a field the user did not write. Against a real server.
func TestUnknownRunsSayHowToFindRuns(t *testing.T) {
	t.Parallel()
	url, op := waitServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const nosuch = "01jzzzzzzzzzzzzzzzzzzzzzzz"
	td := []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`)
	var known string
	for deadline := time.Now().Add(10 * time.Second); known == ""; time.Sleep(20 * time.Millisecond) {
		r, err := op.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: td})
		if err == nil {
			known = r.RunID
		} else if time.Now().After(deadline) {
			t.Fatalf("the server did not take a run within 10s: %v", err)
		}
	}
	if _, err := op.Stop(ctx, known, "to rerun"); err != nil {
		t.Fatal(err)
	}
	hint := " (gantry ps --all lists runs)"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"describe", nosuch}, "run " + nosuch + ": not found" + hint},
		{[]string{"describe", "pr-" + nosuch}, "pipeline run pr-" + nosuch + ": not found (gantry pipeline runs PIPELINE lists its runs)"},
		{[]string{"stop", nosuch}, "run " + nosuch + ": not found" + hint},
		{[]string{"wait", nosuch}, "run " + nosuch + ": not found" + hint},
		{[]string{"logs", nosuch}, "run " + nosuch + ": not found" + hint},
		{[]string{"rerun", "-d", nosuch}, "run " + nosuch + ": not found" + hint},
		{[]string{"pipeline", "retry", "pr-" + nosuch}, "pipeline run pr-" + nosuch + ": not found (gantry pipeline runs PIPELINE lists its runs)"},
		// Pipelines, task definitions and schedules say how to list them.
		{[]string{"pipeline", "run", "nosuch"}, "pipeline nosuch: not found (gantry pipeline ls lists them)"},
		{[]string{"pipeline", "describe", "nosuch"}, "pipeline nosuch: not found (gantry pipeline ls lists them)"},
		{[]string{"pipeline", "runs", "nosuch"}, "pipeline nosuch: not found (gantry pipeline ls lists them)"},
		{[]string{"taskdef", "describe", "nosuch:3"}, "task definition family nosuch is not registered; gantry taskdef ls lists them"},
		{[]string{"schedule", "trigger", "nosuch"}, "schedule nosuch: not found (gantry schedule ls lists them)"},
		{[]string{"schedule", "suspend", "nosuch"}, "schedule nosuch: not found (gantry schedule ls lists them)"},
		{[]string{"run", "-d", "--depends-on", nosuch, "--image", "i"},
			`--depends-on "` + nosuch + `": no such run (gantry ps --all lists runs)`},
		{[]string{"run", "-d", "--depends-on", known, "--depends-on", nosuch + ":failure", "--image", "i"},
			`--depends-on "` + nosuch + `:failure": no such run (gantry ps --all lists runs)`},
		{[]string{"rerun", "-d", "--depends-on", nosuch, known},
			`--depends-on "` + nosuch + `": no such run (gantry ps --all lists runs)`},
	} {
		args := append(append([]string{}, c.args...), "--nats", url, "--user", "op", "--password", "op-pw")
		_, errOut, code := gantryCmd(ctx, args...)
		if want := "gantry: " + c.want + "\n"; code != exitGantryError || errOut != want {
			t.Errorf("gantry %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), code, errOut, exitGantryError, want)
		}
	}
}

// TestUnregisteredFamilySaysSo: every command that looks up a family
// never registered said "helo has no ACTIVE revision", as if its
// revisions were all deregistered; each says it is not registered and
// suggests the nearest family, and a run's says how to register one. A
// family whose revisions were all deregistered still says it has no
// ACTIVE revision. Against a real server.
func TestUnregisteredFamilySaysSo(t *testing.T) {
	t.Parallel()
	url, op := waitServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, family := range []string{"hello", "retired"} {
		td := []byte(`{"family":"` + family + `","containerDefinitions":[{"name":"main","image":"i"}]}`)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			_, _, err := op.RegisterTaskDef(ctx, td)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server did not register %s within 10s: %v", family, err)
			}
		}
	}
	if _, err := op.DeregisterTaskDef(ctx, "retired:1"); err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(stage, []byte("name: p\nstages: [{name: a, taskDefinition: helo}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const (
		helo     = "task definition family helo is not registered; did you mean hello? gantry taskdef ls lists them"
		register = "; register it with `gantry taskdef register FILE`"
	)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"taskdef", "describe", "helo"}, helo},
		{[]string{"taskdef", "describe", "helo:2"}, helo},
		{[]string{"taskdef", "describe", "zzzzzzzz"}, "task definition family zzzzzzzz is not registered; gantry taskdef ls lists them"},
		{[]string{"run", "-d", "helo"}, helo + register + "; to run the image helo instead: gantry run --image helo -- CMD"},
		{[]string{"run", "-d", "helo:2"}, helo + register},
		{[]string{"schedule", "create", "--task", "helo", "--cron", "@daily"}, "--task: " + helo + register},
		// Its problems are a line each, then "refused".
		{[]string{"pipeline", "apply", stage}, stage + ": stages[0](a).taskDefinition: " + helo + register +
			"\ngantry: " + stage + ": refused (1 problem): not applied"},
		{[]string{"taskdef", "describe", "retired"}, "task definition retired has no ACTIVE revision: not found (gantry taskdef ls --all lists them)"},
		{[]string{"run", "-d", "retired"}, "task definition retired has no ACTIVE revision: not found (register it with `gantry taskdef register FILE`)"},
	} {
		args := append(append([]string{}, c.args...), "--nats", url, "--user", "op", "--password", "op-pw")
		_, errOut, code := gantryCmd(ctx, args...)
		want := "gantry: " + c.want + "\n"
		if c.args[0] == "pipeline" {
			want = c.want + "\n"
		}
		if code != exitGantryError || errOut != want {
			t.Errorf("gantry %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), code, errOut, exitGantryError, want)
		}
	}
}

// TestRunFlagErrorsNameTheFlag: the refusals gantry run finds itself name
// the flag, not the request's field or only the file's name.
func TestRunFlagErrorsNameTheFlag(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nosuch.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--file", missing}, "gantry: --file " + missing + ": no such file or directory\n"},
		{[]string{"run", "--depends-on", "a", "--depends-on", "a:failure", "--image", "i"},
			`gantry: --depends-on "a:failure": run a given twice (also --depends-on "a")` + "\n"},
		{[]string{"rerun", "--depends-on", "pr-01jzzzzzzzzzzzzzzzzzzzzzzz", "r1"},
			`gantry: --depends-on "pr-01jzzzzzzzzzzzzzzzzzzzzzzz": "pr-01jzzzzzzzzzzzzzzzzzzzzzzz" is a pipeline run: a run may depend only on runs`},
	} {
		_, errOut, code := gantryCmd(context.Background(), c.args...)
		if code != exitGantryError || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("gantry %s: exit %d, stderr %q; want %d and %q", strings.Join(c.args, " "), code, errOut, exitGantryError, c.want)
		}
	}
	// A file that cannot be read for another reason says why.
	dir := t.TempDir()
	if _, errOut, _ := gantryCmd(context.Background(), "run", "--file", dir); !strings.Contains(errOut, "--file "+dir+": ") {
		t.Errorf("--file DIR: %q", errOut)
	}
}

// TestDependsOnFlagErrors maps the lines of a server's refusal that name
// dependsOn fields to the --depends-on flags, and leaves the others.
func TestDependsOnFlagErrors(t *testing.T) {
	flags := []string{"a", "b:failure"}
	err := jobs.NotFound("dependsOn[1].runId: run b: not found; its id dates from 2026-01-01, and runs ...\n" +
		"dependsOn: 21 runs: at most 20\ncluster: nope\ndependsOn[7].runId: out of range")
	got := dependsOnFlagErrors(err, flags)
	want := `--depends-on "b:failure": no such run (gantry ps --all lists runs); its id dates from 2026-01-01, and runs ...` + "\n" +
		"--depends-on: 21 runs: at most 20\ncluster: nope\ndependsOn[7].runId: out of range"
	if got.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(got, jobs.ErrNotFound) {
		t.Errorf("the error lost its code: %#v", got)
	}
	plain := errors.New("cluster: nope")
	if got := dependsOnFlagErrors(plain, flags); got != plain {
		t.Errorf("an error naming no dependsOn changed: %v", got)
	}
}

// FuzzDependsOnFlagErrors: any server message keeps its number of lines,
// and one that names no dependsOn is returned as it is.
func FuzzDependsOnFlagErrors(f *testing.F) {
	f.Add("dependsOn[0].runId: run a: not found", "a")
	f.Add("dependsOn[1]: x\ndependsOn: y", "b:success")
	f.Add("dependsOn[-1].runId: run : not found", "")
	f.Fuzz(func(t *testing.T, msg, flag string) {
		err := errors.New(msg)
		got := dependsOnFlagErrors(err, []string{flag, flag})
		if strings.Count(got.Error(), "\n") != strings.Count(msg, "\n") {
			t.Errorf("%q became %q", msg, got)
		}
		if !strings.Contains(msg, "dependsOn") && got != err {
			t.Errorf("%q changed to %q", msg, got)
		}
	})
}
