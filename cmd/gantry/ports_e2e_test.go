package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// TestDynamicHostPortIsReported: a portMapping without hostPort lets Docker
// pick one; the run reports it as the container's networkBindings (as ECS
// does) while it runs and after it ended, and the server answers there.
func TestDynamicHostPortIsReported(t *testing.T) {
	t.Parallel()
	in := startUp(t)
	file := in.writeTaskDef("web.json", `{
  "family": "dynamic-port",
  "networkMode": "bridge",
  "containerDefinitions": [{
    "name": "web", "image": "IMAGE", "essential": true,
    "command": ["httpd", "8080", "picked by docker"],
    "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}]
  }]
}`)
	id := in.runID("--file", file)
	in.waitLog(id, "listening on :8080")
	bound := func(r *jobs.Run) *jobs.NetworkBinding {
		if len(r.Containers) != 1 || r.Containers[0].Name != "web" {
			return nil
		}
		for i, b := range r.Containers[0].NetworkBindings {
			if b.ContainerPort == 8080 && b.Protocol == "tcp" && b.HostPort > 0 && b.BindIP != "" {
				return &r.Containers[0].NetworkBindings[i]
			}
		}
		return nil
	}
	var b *jobs.NetworkBinding
	waitFor(t, "the running run to report its host port", func() bool { b = bound(in.describe(id)); return b != nil })
	if r := in.describe(id); r.Status != jobs.StatusRunning || len(r.Attempts) != 1 || bound(&jobs.Run{Containers: r.Attempts[0].Containers}) == nil {
		t.Fatalf("run %s, attempt containers %+v", r.Status, r.Attempts[0].Containers)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", b.HostPort)
	var body string
	waitFor(t, "GET "+url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		body = string(data)
		return true
	})
	if tbl := in.mustGantry("describe", id); !strings.Contains(tbl, fmt.Sprintf(":%d->8080/tcp", b.HostPort)) {
		t.Errorf("describe does not show the port:\n%s", tbl)
	}
	if body != "picked by docker\n" {
		t.Errorf("GET %s = %q", url, body)
	}
	in.mustGantry("stop", id)
	r := in.waitStatus(id, jobs.StatusCanceled, jobs.StatusFailed, jobs.StatusSucceeded)
	if after := bound(r); after == nil || after.HostPort != b.HostPort {
		t.Errorf("ended run lost its network bindings: %+v", r.Containers)
	}
}
