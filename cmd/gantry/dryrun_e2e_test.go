package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDryRunsEndToEnd: taskdef register --dry-run and pipeline apply
// --dry-run against a running server say what would change (a new
// revision, identical to the latest; a new pipeline, the next version
// with what differs, unchanged) and store nothing; problems only the
// server sees are listed a line each after the file's name, exit 1.
func TestDryRunsEndToEnd(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	td := in.writeTaskDef("hello.json", `{"family": "hello", "containerDefinitions": [{"name": "main", "image": "IMAGE", "memory": 64}]}`)
	if out := in.mustGantry("taskdef", "register", "--dry-run", td); out != "would register hello:1\n" {
		t.Fatalf("taskdef register --dry-run: %q", out)
	}
	if out := in.mustGantry("taskdef", "ls", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("the dry run registered: %s", out)
	}
	in.mustGantry("taskdef", "register", td)
	if out := in.mustGantry("taskdef", "register", "--dry-run", td); out != "would register hello:2, identical to hello:1\n" {
		t.Fatalf("taskdef register --dry-run of the same: %q", out)
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "p.yaml")
	write := func(path, src string) {
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const v1 = "name: p\nstages: [{name: a, taskDefinition: hello}]\n"
	write(p, v1)
	if out := in.mustGantry("pipeline", "apply", "--dry-run", p); out != p+": pipeline p: new, would be version 1 (1 stage)\n" {
		t.Fatalf("apply --dry-run of a new pipeline: %q", out)
	}
	if out := in.mustGantry("pipeline", "ls", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("the dry run applied: %s", out)
	}
	in.mustGantry("pipeline", "apply", p)
	q := filepath.Join(dir, "q.yaml")
	write(q, strings.Replace(v1, "hello}", "hello, timeoutSeconds: 60}", 1))
	want := p + ": pipeline p: unchanged (version 1)\n" + q + ": pipeline p: would be version 2 (now 1):\n  stages[0](a).timeoutSeconds: added 60\n"
	if out := in.mustGantry("pipeline", "apply", "--dry-run", p, q); out != want {
		t.Fatalf("apply --dry-run:\n%s\nwant:\n%s", out, want)
	}

	bad := filepath.Join(dir, "bad.yaml")
	write(bad, "name: bad\nstages: [{name: a, taskDefinition: nosuch, pool: ghost}, {name: b, taskDefinition: hello, dependsOn: [c]}]\n")
	out, errOut, code := in.gantry("pipeline", "apply", "--dry-run", p, bad)
	wantErr := []string{
		bad + `: stages[1](b).dependsOn[0].stage: no stage "c" in the pipeline`,
		bad + `: stages[0](a).pool: no pool "ghost"`,
		bad + ": stages[0](a).taskDefinition: task definition family nosuch is not registered;",
		"gantry: 3 problems in 1 of 2 files",
	}
	for _, w := range wantErr {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr does not say %q:\n%s", w, errOut)
		}
	}
	if code != exitProblems || out != p+": pipeline p: unchanged (version 1)\n" || strings.Count(errOut, "\n") != len(wantErr) {
		t.Errorf("apply --dry-run with problems: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// Problems come in the order of the files given, whether the server
	// found them or the file did not decode.
	broken := filepath.Join(dir, "broken.yaml")
	write(broken, "name: [x\n")
	_, errOut, code = in.gantry("pipeline", "apply", "--dry-run", bad, broken, p)
	if i, j := strings.Index(errOut, bad+": stages[1](b)"), strings.Index(errOut, broken+": pipeline: yaml"); code != exitProblems || i < 0 || j < i {
		t.Errorf("apply --dry-run bad broken p: exit %d, problems not in the order given:\n%s", code, errOut)
	}
	if out := in.mustGantry("pipeline", "describe", "p", "-o", "json"); !strings.Contains(out, `"version": 1`) {
		t.Errorf("the dry runs changed p: %s", out)
	}
}
