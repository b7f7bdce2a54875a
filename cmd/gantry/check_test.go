package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// cli runs gantry in this process with stdin, against an address where no
// NATS listens, and returns what it wrote and its exit code.
func cli(stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = runWith(context.Background(), append(args, "--nats", "nats://127.0.0.1:1"), strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// badPipeline has several problems, of the decoder's and the validator's.
const badPipeline = `name: bad
schedule: {cron: "every day"}
stages:
  - {name: a, taskDefinition: t, dependsOn: [b]}
  - {name: b, taskDefinition: t, dependsOn: [a, ghost], arraySize: -1}
`

// TestPipelineValidateOffline: without a server, validate lists every
// problem of every file on stderr, a line each after its file's name,
// exactly those of the parser apply and the server use, and exits 1;
// valid files say so on stdout, and alone exit 0; stdin is "-"; a file
// that cannot be read is gantry's failure (125).
func TestPipelineValidateOffline(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"bad.yaml":     badPipeline,
		"unknown.yaml": "name: u\nstages: [{name: a, taskDefinition: t, tiemout: 5}]\n",
		"broken.yaml":  "name: [x\n",
	})
	good := filepath.Join("..", "..", "samples", "pipelines", "daily-sales.yaml")
	bad, unknown, broken := filepath.Join(dir, "bad.yaml"), filepath.Join(dir, "unknown.yaml"), filepath.Join(dir, "broken.yaml")

	out, errOut, code := cli("", "pipeline", "validate", good, filepath.Join("..", "..", "samples", "pipelines", "sales-report.yaml"))
	if code != 0 || errOut != "" || strings.Count(out, ": valid, ") != 2 || !strings.Contains(out, good+": pipeline daily-sales: valid, 4 stages\n") ||
		!strings.Contains(out, ": pipeline sales-report: valid, 1 stage\n") {
		t.Fatalf("valid files: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	out, errOut, code = cli("", "pipeline", "validate", good, bad, unknown, broken)
	if code != exitProblems {
		t.Errorf("exit %d, want %d", code, exitProblems)
	}
	var want []string
	for _, f := range []string{bad, unknown, broken} {
		data, _ := os.ReadFile(f)
		_, err := jobs.ParsePipeline(data)
		if err == nil {
			t.Fatalf("%s parses", f)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			want = append(want, f+": "+line)
		}
	}
	if n := strings.Count(strings.Join(want, "\n"), bad+": "); n < 4 {
		t.Fatalf("bad.yaml has %d problems, want several:\n%s", n, strings.Join(want, "\n"))
	}
	want = append(want, "gantry: "+strconv.Itoa(len(want))+" problems in 3 of 4 files")
	if got := strings.TrimSpace(errOut); got != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.Contains(out, good+": pipeline daily-sales: valid") || strings.Contains(out, bad) {
		t.Errorf("stdout:\n%s", out)
	}
	for _, w := range []string{"schedule.cron", "dependency cycle", `no stage "ghost"`, "arraySize", "tiemout"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr does not say %q:\n%s", w, errOut)
		}
	}

	// stdin.
	if out, errOut, code := cli(badPipeline, "pipeline", "validate", "-"); code != exitProblems || !strings.HasPrefix(errOut, "stdin: ") || out != "" {
		t.Errorf("stdin: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	src, _ := os.ReadFile(good)
	if out, _, code := cli(string(src), "pipeline", "validate", "-"); code != 0 || !strings.HasPrefix(out, "stdin: pipeline daily-sales: valid") {
		t.Errorf("stdin, valid: exit %d: %s", code, out)
	}

	// A file that cannot be read is told on a line of its own, and the
	// files after it are checked all the same; 125 after them all.
	nosuch := filepath.Join(dir, "nosuch.yaml")
	out, errOut, code = cli("", "pipeline", "validate", nosuch, broken, good)
	data, _ := os.ReadFile(broken)
	_, perr := jobs.ParsePipeline(data)
	if want := nosuch + ": cannot read: no such file or directory\n" + broken + ": " + perr.Error() + "\n" +
		"gantry: could not read 1 of 3 files; 1 problem in 1 of the 2 others\n"; code != exitGantryError || errOut != want ||
		out != good+": pipeline daily-sales: valid, 4 stages\n" {
		t.Errorf("an unreadable file first: exit %d\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s", code, out, errOut, want)
	}
	if _, errOut, code := cli("", "pipeline", "validate", nosuch, good); code != exitGantryError ||
		errOut != nosuch+": cannot read: no such file or directory\ngantry: could not read 1 of 2 files\n" {
		t.Errorf("an unreadable file and a valid one: exit %d, stderr %q", code, errOut)
	}

	// What gantry could not check.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-", "-"}, "- (stdin) is given more than once"},
		{nil, "requires at least 1 arg(s)"},
	} {
		out, errOut, code := cli("", append([]string{"pipeline", "validate"}, c.args...)...)
		if code != exitGantryError || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("validate %q: exit %d, stdout %q, stderr %q; want 125 saying %q", c.args, code, out, errOut, c.want)
		}
	}
}

// TestTaskdefValidateOffline: taskdef validate, without a server, lists
// every problem of each file as register would refuse it, warnings
// apart; exit 0, 1 or 125 as pipeline validate.
func TestTaskdefValidateOffline(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"bad.json": `{"family": "bad", "containerDefinitions": [
  {"name": "main", "image": "i", "memmory": 512, "dependsOn": [{"containerName": "ghost", "condition": "START"}]}]}`,
		"aws.json":    `{"family": "aws", "executionRoleArn": "arn:aws:iam::1:role/x", "containerDefinitions": [{"name": "main", "image": "i"}]}`,
		"broken.json": `{"family": `,
	})
	good := filepath.Join("..", "..", "samples", "taskdefs", "hello.json")
	bad, aws, broken := filepath.Join(dir, "bad.json"), filepath.Join(dir, "aws.json"), filepath.Join(dir, "broken.json")

	out, errOut, code := cli("", "taskdef", "validate", good, aws)
	if code != 0 || !strings.Contains(out, good+": task definition hello: valid, 1 container\n") || !strings.Contains(out, aws+": task definition aws: valid") ||
		strings.TrimSpace(errOut) != aws+": warning: ignored fields that only mean something on AWS: executionRoleArn" {
		t.Fatalf("valid files: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	_, errOut, code = cli("", "taskdef", "validate", bad, good, broken)
	want := bad + `: containerDefinitions[0].memmory: unknown field; did you mean "memory"?` + "\n" +
		bad + `: containerDefinitions[0].dependsOn[0].containerName: no container "ghost" in the task definition` + "\n" +
		broken + ": task definition: "
	if code != exitProblems || !strings.HasPrefix(errOut, want) || !strings.HasSuffix(errOut, "gantry: 3 problems in 2 of 3 files\n") {
		t.Errorf("exit %d, stderr:\n%s\nwant it to start:\n%s", code, errOut, want)
	}

	data, _ := os.ReadFile(bad)
	if _, errOut, code := cli(string(data), "taskdef", "validate", "-"); code != exitProblems || !strings.HasPrefix(errOut, "stdin: containerDefinitions[0].memmory") {
		t.Errorf("stdin: exit %d: %s", code, errOut)
	}
	nosuch := filepath.Join(dir, "nosuch.json")
	if _, errOut, code := cli("", "taskdef", "validate", nosuch); code != exitGantryError ||
		errOut != nosuch+": cannot read: no such file or directory\ngantry: could not read the file\n" {
		t.Errorf("missing file: exit %d: %s", code, errOut)
	}
	// The files after one that cannot be read are checked all the same.
	if out, errOut, code := cli("", "taskdef", "validate", nosuch, bad, good); code != exitGantryError ||
		!strings.HasPrefix(errOut, nosuch+": cannot read: no such file or directory\n"+bad+": containerDefinitions[0].memmory") ||
		!strings.HasSuffix(errOut, "gantry: could not read 1 of 3 files; 2 problems in 1 of the 2 others\n") ||
		out != good+": task definition hello: valid, 1 container\n" {
		t.Errorf("an unreadable file first: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestApplyListsAFilesProblemsALineEach: apply lists a refused file's
// problems as validate does, a line each after the file's name (they were
// joined with "; " on one line), then says what was not applied: a file
// that does not decode is refused before any file is sent, so none is;
// without a server, the files' own problems are told before the
// connection's error.
func TestApplyListsAFilesProblemsALineEach(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"ok.yaml":     "name: fine\nstages: [{name: a, taskDefinition: t}]\n",
		"typo.yaml":   "name: typo\nstages: [{name: a, taskDefinition: t, timeoutSecond: 5, arraySize: -1}]\n",
		"broken.yaml": "name: [x\n",
		"bad.yaml":    badPipeline,
	})
	ok, typo, broken, bad := filepath.Join(dir, "ok.yaml"), filepath.Join(dir, "typo.yaml"), filepath.Join(dir, "broken.yaml"), filepath.Join(dir, "bad.yaml")
	_, errOut, code := cli("", "pipeline", "apply", typo)
	if want := typo + ": stages[0](a).timeoutSecond: unknown field; did you mean \"timeoutSeconds\"?\n" +
		typo + ": stages[0](a).arraySize: -1: must be between 0 and 10000\n" +
		"gantry: " + typo + ": refused (2 problems): not applied\n"; code != exitGantryError || errOut != want {
		t.Errorf("one file: exit %d, stderr:\n%s\nwant:\n%s", code, errOut, want)
	}
	_, errOut, code = cli("", "pipeline", "apply", ok, broken, typo)
	if want := "gantry: " + broken + ": refused (1 problem): no file applied\n"; code != exitGantryError ||
		!strings.HasPrefix(errOut, broken+": pipeline: yaml: line 1") || !strings.HasSuffix(errOut, want) || strings.Contains(errOut, typo) {
		t.Errorf("a file that does not decode among others: exit %d, stderr:\n%s\nwant its problem, then %q", code, errOut, want)
	}
	_, errOut, code = cli("", "pipeline", "apply", ok, bad)
	if code != exitGantryError || !strings.Contains(errOut, "\n"+bad+": stages: dependency cycle: a -> b -> a\n") ||
		!strings.Contains(errOut, "\ngantry: cannot reach NATS") || strings.Contains(errOut, "; ") {
		t.Errorf("without a server: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestDryRunWithoutAServer: a dry run lists the problems of files that do
// not decode without a server (exit 1); one that needs the server and
// finds none is gantry's failure (125), after those problems.
func TestDryRunWithoutAServer(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"broken.yaml": "name: [x\n",
		"ok.yaml":     "name: fine\nstages: [{name: a, taskDefinition: t}]\n",
		"bad.json":    `{"family": "bad", "containerDefinitions": [{"name": "main", "image": "i", "memmory": 5}]}`,
	})
	broken, ok := filepath.Join(dir, "broken.yaml"), filepath.Join(dir, "ok.yaml")
	if _, errOut, code := cli("", "pipeline", "apply", "--dry-run", broken); code != exitProblems || !strings.HasPrefix(errOut, broken+": pipeline: yaml: line 1") {
		t.Errorf("a file that does not decode: exit %d: %s", code, errOut)
	}
	_, errOut, code := cli("", "pipeline", "apply", "--dry-run", broken, ok)
	if code != exitGantryError || !strings.HasPrefix(errOut, broken+": pipeline: yaml") || !strings.Contains(errOut, "gantry: cannot reach NATS") {
		t.Errorf("with a file for the server: exit %d: %s", code, errOut)
	}
	// A file's own problems are told even so.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(badPipeline), 0o644)
	_, errOut, code = cli("", "pipeline", "apply", "--dry-run", bad)
	if code != exitGantryError || !strings.Contains(errOut, bad+": stages: dependency cycle: a -> b -> a\n") || !strings.Contains(errOut, "gantry: cannot reach NATS") {
		t.Errorf("a file with problems of its own, without a server: exit %d: %s", code, errOut)
	}
	// In the order given: a file that does not decode after one that does.
	_, errOut, code = cli("", "pipeline", "apply", "--dry-run", bad, broken)
	if i, j := strings.Index(errOut, bad+": stages: dependency cycle"), strings.Index(errOut, broken+": pipeline: yaml"); code != exitGantryError || i < 0 || j < i {
		t.Errorf("apply --dry-run %s %s without a server: exit %d, stderr not in the order given:\n%s", bad, broken, code, errOut)
	}
	bad = filepath.Join(dir, "bad.json")
	if _, errOut, code := cli("", "taskdef", "register", "--dry-run", bad); code != exitProblems || !strings.HasPrefix(errOut, bad+": containerDefinitions[0].memmory") {
		t.Errorf("taskdef register --dry-run of a bad file: exit %d: %s", code, errOut)
	}
	if _, errOut, code := cli("", "taskdef", "register", "--dry-run", filepath.Join("..", "..", "samples", "taskdefs", "hello.json")); code != exitGantryError ||
		!strings.Contains(errOut, "cannot reach NATS") {
		t.Errorf("taskdef register --dry-run without a server: exit %d: %s", code, errOut)
	}
}
