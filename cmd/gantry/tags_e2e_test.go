package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestTagsFindRuns: gantry run --tag tags a run; gantry ps --tag, -o json
// and the HTTP API's tag= find exactly the runs tagged so, and describe
// shows the tags.
func TestTagsFindRuns(t *testing.T) {
	t.Parallel()
	in := startUp(t, "--http", "127.0.0.1:0")
	addr := logAddr(t, in.log, "HTTP API ready")
	runTagged := func(tags ...string) string {
		t.Helper()
		args := []string{"run", "-d", "--image", in.image}
		for _, tag := range tags {
			args = append(args, "--tag", tag)
		}
		out, errOut, code := in.gantry(append(args, "--", "echo", "hi")...)
		if code != 0 {
			t.Fatalf("gantry %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return strings.TrimSpace(out)
	}
	data := runTagged("team=data", "cost-centre=")
	web := runTagged("team=web")
	plain := in.runDetached("echo", "hi")
	for _, id := range []string{data, web, plain} {
		in.waitStatus(id, jobs.StatusSucceeded)
	}
	ps := func(args ...string) []string {
		t.Helper()
		out, errOut, code := in.gantry(append([]string{"ps", "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("gantry ps %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		var runs []jobs.Run
		if err := json.Unmarshal([]byte(out), &runs); err != nil {
			t.Fatalf("gantry ps %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.RunID)
			if r.RunID == data && (len(r.Tags) != 2 || r.Tags["team"] != "data" || r.Tags["cost-centre"] != "") {
				t.Errorf("ps -o json: tags of %s: %v", data, r.Tags)
			}
		}
		return ids
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--all", "--tag", "team=data"}, []string{data}},
		{[]string{"--all", "--tag", "team"}, []string{web, data}},
		{[]string{"--all", "--tag", "team=data", "--tag", "cost-centre"}, []string{data}},
		{[]string{"--all", "--tag", "team=ops"}, nil},
		{[]string{"--tag", "team=data"}, nil}, // ended: only with --all
	} {
		if got := ps(c.args...); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("gantry ps %s: %v, want %v", strings.Join(c.args, " "), got, c.want)
		}
	}
	out, _, _ := in.gantry("describe", data)
	if !strings.Contains(out, "Tags:") || !strings.Contains(out, "cost-centre=, team=data") {
		t.Errorf("describe shows no tags:\n%s", out)
	}
	if out, _, _ := in.gantry("describe", plain); strings.Contains(out, "Tags:") {
		t.Errorf("describe of an untagged run shows tags:\n%s", out)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for path, want := range map[string][]string{
		"/api/runs?all=1&tag=team=data":             {data},
		"/api/runs?all=1&tag=team":                  {web, data},
		"/api/runs?all=1&tag=team&tag=cost-centre=": {data},
		"/api/runs?status=SUCCEEDED&tag=team=web":   {web},
	} {
		code, body := get(path)
		var page struct{ Runs []jobs.Run }
		json.Unmarshal([]byte(body), &page)
		var ids []string
		for _, r := range page.Runs {
			ids = append(ids, r.RunID)
		}
		if code != 200 || fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("%s: %d %v, want %v: %s", path, code, ids, want, body)
		}
	}
	if code, body := get("/api/runs?tag=gantry:x=1"); code != 400 || !strings.Contains(body, `"code":"invalid_argument"`) ||
		!strings.Contains(body, `tag=\"gantry:x=1\": key \"gantry:x\": the prefixes gantry: and gantry. are reserved`) {
		t.Errorf("a bad tag=: %d %s", code, body)
	}

	// --propagate-tags gives a run its registered task definition's tags
	// too, its own --tag winning; without it, none of them.
	in.mustGantry("taskdef", "register", in.writeTaskDef("tagged.json", fmt.Sprintf(`{"family": "tagged",
		"containerDefinitions": [{"name": "main", "image": %q, "command": ["true"]}],
		"tags": [{"key": "team", "value": "data"}, {"key": "tier", "value": "gold"}]}`, in.image)))
	propagated := strings.TrimSpace(in.mustGantry("run", "-d", "--propagate-tags", "--tag", "tier=run", "tagged"))
	own := strings.TrimSpace(in.mustGantry("run", "-d", "--tag", "tier=run", "tagged"))
	if r := in.describe(propagated); len(r.Tags) != 2 || r.Tags["team"] != "data" || r.Tags["tier"] != "run" {
		t.Errorf("run --propagate-tags: tags %v", r.Tags)
	}
	if r := in.describe(own); len(r.Tags) != 1 || r.Tags["tier"] != "run" {
		t.Errorf("run without --propagate-tags: tags %v", r.Tags)
	}
}
