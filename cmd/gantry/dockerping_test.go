package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gantry-dev/gantry/worker/docker"
)

// TestDockerUnreachableSaysWhy: a worker whose user may not open the
// Docker socket was asked whether the daemon runs ("is it running?"),
// which it did. Each cause now says what to do.
func TestDockerUnreachableSaysWhy(t *testing.T) {
	// A real ping of a socket no daemon listens on.
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	cli, err := docker.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	_, noDaemon := cli.Ping(context.Background())
	if noDaemon == nil {
		t.Fatal("a ping of a socket nobody listens on succeeded")
	}
	// As the Docker client wraps a socket its user may not open (root,
	// who runs the tests here, may open any).
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	for _, tc := range []struct {
		name    string
		err     error
		want    []string
		notWant string
	}{
		{"no daemon", noDaemon, []string{"is it running?", "DOCKER_HOST"}, ""},
		{"permission", denied, []string{"permission denied", "group", "docker", "root"}, "is it running?"},
		{"other", errors.New("tls: failed to verify certificate"), []string{"tls: failed to verify certificate", "DOCKER_HOST"}, "is it running?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := dockerUnreachable("unix:///var/run/docker.sock", tc.err).Error()
			for _, w := range append(tc.want, "unix:///var/run/docker.sock") {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not say %q", msg, w)
				}
			}
			if tc.notWant != "" && strings.Contains(msg, tc.notWant) {
				t.Errorf("%q says %q", msg, tc.notWant)
			}
		})
	}
}
