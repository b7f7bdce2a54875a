package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// writeTaskDef writes an ECS task definition for the test, with the
// instance's image wherever IMAGE appears.
func (in *instance) writeTaskDef(name, js string) string {
	in.t.Helper()
	p := filepath.Join(in.t.TempDir(), name)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(js, "IMAGE", in.image)), 0o644); err != nil {
		in.t.Fatal(err)
	}
	return p
}

func (in *instance) mustGantry(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.gantry(args...)
	if code != 0 {
		in.t.Fatalf("gantry %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (in *instance) runID(args ...string) string {
	in.t.Helper()
	return strings.TrimSpace(in.mustGantry(append([]string{"run", "-d"}, args...)...))
}

const etlTaskDef = `{
  "family": "etl-job",
  "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
  "taskRoleArn": "arn:aws:iam::123456789012:role/etl",
  "networkMode": "bridge",
  "requiresCompatibilities": ["EC2"],
  "memory": "256",
  "containerDefinitions": [
    {
      "name": "prepare",
      "image": "IMAGE",
      "essential": false,
      "command": ["sh", "-c", "echo preparing"],
      "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/etl", "awslogs-region": "eu-west-1"}}
    },
    {
      "name": "main",
      "image": "IMAGE",
      "memory": 64,
      "command": ["sh", "-c", "echo \"hello $NAME from $GANTRY_RUN_ID\""],
      "environment": [{"name": "NAME", "value": "etl"}],
      "dependsOn": [{"containerName": "prepare", "condition": "SUCCESS"}]
    }
  ]
}`

func TestTaskdefRegistryEndToEnd(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	file := in.writeTaskDef("etl.json", etlTaskDef)

	out, errOut, code := in.gantry("taskdef", "register", file)
	if code != 0 || out != "etl-job:1\n" {
		t.Fatalf("register: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	want := "gantry: warning: ignored fields that only mean something on AWS: containerDefinitions[0].logConfiguration, executionRoleArn, requiresCompatibilities, taskRoleArn\n"
	if errOut != want {
		t.Errorf("register stderr %q, want %q", errOut, want)
	}
	// From stdin, as a second revision.
	data, _ := os.ReadFile(file)
	if out := runStdin(t, in, string(data), "taskdef", "register", "-"); out != "etl-job:2\n" {
		t.Fatalf("register -: %q", out)
	}

	var list []jobs.RegisteredTaskDefinition
	if err := json.Unmarshal([]byte(in.mustGantry("taskdef", "ls", "-o", "json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("ls: %v %+v", err, list)
	}
	if tbl := in.mustGantry("taskdef", "ls"); !strings.Contains(tbl, "etl-job:2") || !strings.Contains(tbl, "prepare,main") {
		t.Errorf("ls table:\n%s", tbl)
	}
	var td jobs.RegisteredTaskDefinition
	json.Unmarshal([]byte(in.mustGantry("taskdef", "describe", "etl-job", "-o", "json")), &td)
	if td.Revision != 2 || td.Status != jobs.TaskDefActive || len(td.ContainerDefinitions) != 2 {
		t.Fatalf("describe etl-job: %+v", td)
	}
	if y := in.mustGantry("taskdef", "describe", "etl-job:1", "-o", "yaml"); !strings.Contains(y, "revision: 1") {
		t.Errorf("describe -o yaml:\n%s", y)
	}

	// gantry run FAMILY runs the latest ACTIVE revision, with overrides.
	out, errOut, code = in.gantry("run", "etl-job", "--env", "NAME=override")
	if code != 0 || !strings.HasPrefix(out, "preparing\nhello override from ") {
		t.Fatalf("run etl-job: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out = in.mustGantry("run", "etl-job:1", "--", "sh", "-c", "echo command override")
	if out != "preparing\ncommand override\n" {
		t.Errorf("run etl-job:1 with a command: %q", out)
	}
	id := in.runID("etl-job")
	r := in.waitStatus(id, jobs.StatusSucceeded, jobs.StatusFailed)
	if r.TaskDefinition != "etl-job:2" || r.Status != jobs.StatusSucceeded || len(r.Containers) != 2 {
		t.Fatalf("run: %+v", r)
	}
	if logs := in.mustGantry("logs", id, "--container", "prepare"); logs != "preparing\n" {
		t.Errorf("logs --container prepare = %q", logs)
	}

	// Deregistered: no new runs of it; the family falls back to revision 1.
	if out := in.mustGantry("taskdef", "deregister", "etl-job:2"); !strings.Contains(out, "INACTIVE") {
		t.Errorf("deregister: %q", out)
	}
	_, errOut, code = in.gantry("run", "-d", "etl-job:2")
	if code != exitGantryError || !strings.Contains(errOut, "task definition etl-job:2 is INACTIVE") {
		t.Errorf("run of an INACTIVE revision: exit %d, %q", code, errOut)
	}
	if r := in.waitStatus(in.runID("etl-job"), jobs.StatusSucceeded, jobs.StatusFailed); r.TaskDefinition != "etl-job:1" {
		t.Errorf("run etl-job after deregistering 2 ran %s", r.TaskDefinition)
	}
	if r := in.describe(id); r.Status != jobs.StatusSucceeded {
		t.Errorf("earlier run changed: %s", r.Status)
	}
	if out := in.mustGantry("taskdef", "ls", "--all", "-o", "json"); strings.Count(out, `"INACTIVE"`) != 1 {
		t.Errorf("ls --all: %s", out)
	}
	_, errOut, code = in.gantry("run", "-d", "no-such-family")
	if code != exitGantryError || !strings.Contains(errOut, "task definition family no-such-family is not registered;") {
		t.Errorf("run of an unknown family: exit %d, %q", code, errOut)
	}
	// docker run's habit: an image's name where a family goes.
	for _, args := range [][]string{{"run", "-d", "no-such-family"}, {"run", "no-such-family", "--", "echo", "hi"}} {
		_, errOut, code = in.gantry(args...)
		if want := "; to run the image no-such-family instead: gantry run --image no-such-family -- CMD"; code != exitGantryError || !strings.Contains(errOut, want) {
			t.Errorf("gantry %s: exit %d, %q; want %q", strings.Join(args, " "), code, errOut, want)
		}
	}
	// Not of another thing not found, of a family that is registered.
	_, errOut, code = in.gantry("run", "-d", "--pool", "nosuch", "etl-job")
	if code != exitGantryError || !strings.Contains(errOut, "nosuch") || strings.Contains(errOut, "--image") {
		t.Errorf("run --pool nosuch etl-job: exit %d, %q; want the pool refused, without the --image hint", code, errOut)
	}
}

func runStdin(t *testing.T, in *instance, stdin string, args ...string) string {
	t.Helper()
	cmd := execCommand(in.env, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gantry %v: %v", args, err)
	}
	return string(out)
}

func TestTaskdefRegisterRejectsMalformed(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	file := in.writeTaskDef("bad.json", `{"family": "bad", "containerDefinitions": [
	  {"name": "main", "image": "IMAGE", "memmory": 512, "dependsOn": [{"containerName": "ghost", "condition": "START"}]}]}`)
	_, errOut, code := in.gantry("taskdef", "register", file)
	// Each problem on a line of its own after the file's name, as
	// validate and pipeline apply list them.
	want := file + `: containerDefinitions[0].memmory: unknown field; did you mean "memory"?` + "\n" +
		file + `: containerDefinitions[0].dependsOn[0].containerName: no container "ghost" in the task definition` + "\n" +
		"gantry: " + file + ": refused (2 problems): not registered"
	if code != exitGantryError || strings.TrimSpace(errOut) != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", code, errOut, want)
	}
	// --file checks the same way, before anything is submitted.
	_, errOut, code = in.gantry("run", "--file", file)
	if want := strings.Replace(want, "not registered", "not run", 1); code != exitGantryError || strings.TrimSpace(errOut) != want {
		t.Fatalf("run --file: exit %d, stderr:\n%s\nwant:\n%s", code, errOut, want)
	}
	if out := in.mustGantry("taskdef", "ls", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("something was registered: %s", out)
	}
}

// TestPortMappedWebServer is the ECS "first task" walkthrough: register a
// web server, run it, reach it on its host port, stop it.
func TestPortMappedWebServer(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	port := freeHostPort(t)
	file := in.writeTaskDef("web.json", fmt.Sprintf(`{
  "family": "sample-fargate-app",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "256",
  "memory": "512",
  "containerDefinitions": [{
    "name": "fargate-app",
    "image": "IMAGE",
    "essential": true,
    "entryPoint": ["sh", "-c"],
    "command": ["httpd 80 'Amazon ECS Sample App'"],
    "portMappings": [{"containerPort": 80, "hostPort": %d, "protocol": "tcp"}]
  }]
}`, port))
	if out := in.mustGantry("taskdef", "register", file); out != "sample-fargate-app:1\n" {
		t.Fatalf("register: %q", out)
	}
	id := in.runID("sample-fargate-app")
	in.waitLog(id, "listening on :80")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if body != "Amazon ECS Sample App\n" {
		t.Errorf("GET %s = %q", url, body)
	}
	// A second run of it finds the host port taken, and says so.
	_, errOut, code := in.gantry("run", "sample-fargate-app")
	if want := fmt.Sprintf("start container fargate-app: host port %d (portMappings hostPort) is already in use on the worker's host, "+
		"by another run or program; leave hostPort out (or 0) to let Docker pick a free one", port); code != exitGantryError || !strings.Contains(errOut, want) {
		t.Errorf("a second run on the same host port: exit %d, stderr %q; want %q", code, errOut, want)
	}
	in.mustGantry("stop", id)
	r := in.waitStatus(id, jobs.StatusCanceled, jobs.StatusFailed, jobs.StatusSucceeded)
	if r.Status != jobs.StatusCanceled || r.StopCode != jobs.StopUserInitiated {
		t.Fatalf("after stop: %s %s %q", r.Status, r.StopCode, r.StoppedReason)
	}
	if logs := in.mustGantry("logs", id); !strings.Contains(logs, "GET /\n") {
		t.Errorf("logs: %q", logs)
	}
}

func execCommand(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(gantryBin, args...)
	cmd.Env = env
	return cmd
}

func freeHostPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestHostVolumesAndSecrets(t *testing.T) {
	t.Parallel()
	allowed := t.TempDir()
	secrets := t.TempDir()
	const secret = "pa55-w0rd-never-shown"
	os.WriteFile(filepath.Join(secrets, "db-password"), []byte(secret+"\n"), 0o600)
	in := startUp(t, "--allow-host-path", allowed, "--secrets-dir", secrets)
	file := in.writeTaskDef("vol.json", fmt.Sprintf(`{
  "family": "with-volumes",
  "volumes": [{"name": "out", "host": {"sourcePath": %q}}, {"name": "scratch", "host": {}}],
  "containerDefinitions": [
    {"name": "producer", "image": "IMAGE", "essential": false,
     "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}],
     "command": ["sh", "-c", "echo made-by-producer > /scratch/data"]},
    {"name": "main", "image": "IMAGE",
     "volumesFrom": [{"sourceContainer": "producer", "readOnly": true}],
     "mountPoints": [{"sourceVolume": "out", "containerPath": "/out"}],
     "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/db-password"}],
     "dependsOn": [{"containerName": "producer", "condition": "COMPLETE"}],
     "command": ["sh", "-c", "cp /scratch/data /out/result; echo $DB_PASSWORD | tr a-z A-Z"]}
  ]
}`, filepath.Join(allowed, "results")))
	in.mustGantry("taskdef", "register", file)
	out, errOut, code := in.gantry("run", "with-volumes")
	// The container shows it changed, so that the logs do not hold it.
	if code != 0 || out != strings.ToUpper(secret)+"\n" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(allowed, "results", "result")); string(got) != "made-by-producer\n" {
		t.Errorf("host volume has %q", got)
	}
	list := in.mustGantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	json.Unmarshal([]byte(list), &runs)
	desc := in.mustGantry("describe", runs[0].RunID, "-o", "json")
	tdJSON := in.mustGantry("taskdef", "describe", "with-volumes", "-o", "json")
	for what, s := range map[string]string{"describe": desc, "taskdef describe": tdJSON, "gantry up's log": in.log.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the secret", what)
		}
	}

	outside := in.writeTaskDef("outside.json", `{"family": "outside",
	  "volumes": [{"name": "etc", "host": {"sourcePath": "/etc"}}],
	  "containerDefinitions": [{"name": "main", "image": "IMAGE", "command": ["true"],
	    "mountPoints": [{"sourceVolume": "etc", "containerPath": "/host-etc"}]}]}`)
	in.mustGantry("taskdef", "register", outside)
	id := in.runID("outside")
	r := in.waitStatus(id, jobs.StatusFailed, jobs.StatusSucceeded)
	if r.Status != jobs.StatusFailed || r.StopCode != jobs.StopFailedToStart ||
		!strings.Contains(r.StoppedReason, `host path "/etc" is not allowed`) || !strings.Contains(r.StoppedReason, "--allow-host-path") {
		t.Fatalf("outside: %s %s %q", r.Status, r.StopCode, r.StoppedReason)
	}
}

// TestEssentialContainerStopsTask checks ECS's task semantics end to end:
// the essential container's exit stops the sidecar, the run's exit code is
// the essential container's, and an OOM-killed container says so.
func TestEssentialContainerStopsTask(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	file := in.writeTaskDef("ess.json", `{"family": "ess", "containerDefinitions": [
	  {"name": "sidecar", "image": "IMAGE", "essential": false, "command": ["sh", "-c", "echo sidecar up; sleep 300"], "stopTimeout": 5},
	  {"name": "hog", "image": "IMAGE", "essential": false, "memory": 16, "command": ["sh", "-c", "sleep 1; exec alloc 256"]},
	  {"name": "main", "image": "IMAGE", "command": ["sh", "-c", "ulimit -u; exit 7"],
	   "dependsOn": [{"containerName": "sidecar", "condition": "START"}, {"containerName": "hog", "condition": "COMPLETE"}],
	   "ulimits": [{"name": "nproc", "softLimit": 321, "hardLimit": 654}]}
	]}`)
	in.mustGantry("taskdef", "register", file)
	out, _, code := in.gantry("run", "ess")
	if code != 7 || !strings.Contains(out, "321\n") {
		t.Fatalf("exit %d, stdout %q; want 7 and the ulimit", code, out)
	}
	list := in.mustGantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	json.Unmarshal([]byte(list), &runs)
	r := in.describe(runs[0].RunID)
	if r.Status != jobs.StatusFailed || r.StopCode != jobs.StopEssentialExited || r.ExitCode == nil || *r.ExitCode != 7 {
		t.Fatalf("run: %s %s %v %q", r.Status, r.StopCode, r.ExitCode, r.StoppedReason)
	}
	byName := map[string]jobs.ContainerResult{}
	for _, c := range r.Containers {
		byName[c.Name] = c
	}
	if c := byName["hog"]; !c.OOMKilled || !strings.Contains(c.Reason, "OutOfMemory") {
		code := "none"
		if c.ExitCode != nil {
			code = fmt.Sprint(*c.ExitCode)
		}
		t.Errorf("hog: exit code %s, OOM killed %v, reason %q; want an OOM kill", code, c.OOMKilled, c.Reason)
	}
	if c := byName["sidecar"]; !strings.Contains(c.Reason, "essential container main exited") || c.ExitCode == nil {
		t.Errorf("sidecar: %+v", c)
	}
}
