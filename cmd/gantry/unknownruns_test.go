package main

import (
	"context"
	"errors"
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
