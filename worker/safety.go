package worker

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
)

// DockerSockets are where Docker daemons listen on a host. A task that
// bind-mounts one, or a directory above one, could take over the host.
var DockerSockets = []string{"/var/run/docker.sock", "/run/docker.sock"}

// WithDockerSocketAllowed lets tasks mount the Docker socket (the worker's
// --allow-docker-socket flag). Off by default, even under an allowed host
// path.
func WithDockerSocketAllowed(ok bool) Option { return func(c *config) { c.dockerSocket = ok } }

// refuseDockerSocket returns an error naming the first host volume of def
// that is a Docker socket or a directory holding one.
func refuseDockerSocket(def *jobs.TaskDefinition) error {
	if !slices.ContainsFunc(def.Volumes, func(v jobs.Volume) bool { return v.Host != nil && v.Host.SourcePath != "" }) {
		return nil // most tasks: no need to resolve the sockets' links
	}
	socks := make([]string, 0, 2*len(DockerSockets))
	for _, s := range DockerSockets {
		socks = append(socks, s)
		if r, err := filepath.EvalSymlinks(s); err == nil && r != s {
			socks = append(socks, r)
		}
	}
	for i, v := range def.Volumes {
		if v.Host == nil || v.Host.SourcePath == "" {
			continue
		}
		p := filepath.Clean(v.Host.SourcePath)
		cands := []string{p}
		if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
			cands = append(cands, r)
		}
		for _, c := range cands {
			for _, s := range socks {
				if c == s || c == "/" || strings.HasPrefix(s, c+"/") {
					return fmt.Errorf("volumes[%d].host.sourcePath: %q exposes the Docker socket %s; "+
						"a worker mounts it only when started with --allow-docker-socket", i, v.Host.SourcePath, s)
				}
			}
		}
	}
	return nil
}
