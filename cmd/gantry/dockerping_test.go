//go:build linux

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
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/worker/docker"
	"github.com/rs/zerolog"
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

// TestWorkerWaitsForDocker: a worker started before the Docker daemon (a
// booting host, systemd starting it first) ended at once, while it waits
// for NATS. It waits for Docker too, saying so, and goes on once the
// daemon answers; gantry up still fails at once, as it does for NATS; a
// worker stopped while it waits stops cleanly.
func TestWorkerWaitsForDocker(t *testing.T) {
	real := sampletest.Docker(t)
	target, ok := strings.CutPrefix(real.DaemonHost(), "unix://")
	if !ok {
		t.Skipf("the Docker daemon is at %s, not on a unix socket", real.DaemonHost())
	}
	// The daemon's socket comes later, as a link to the real one. A
	// socket's path must be short: not under t.TempDir().
	dir, err := os.MkdirTemp("", "gantry-ops-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "docker.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	cli, err := docker.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := pingDocker(ctx, cli, false, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "is it running?") {
		t.Fatalf("gantry up without Docker: %v, want it to fail at once", err)
	}

	stopped, stop := context.WithCancel(ctx)
	stop()
	if err := pingDocker(stopped, cli, true, zerolog.Nop()); !errors.Is(err, context.Canceled) {
		t.Fatalf("a worker stopped while it waits for Docker: %v, want context.Canceled", err)
	}

	lines := make(logLines, 100)
	done := make(chan error, 1)
	go func() { done <- pingDocker(ctx, cli, true, zerolog.New(lines)) }()
	waitLog(t, ctx, lines, "waiting for the Docker daemon at unix://"+sock+" to answer (is it running? set DOCKER_HOST to point elsewhere)")
	if err := os.Symlink(target, sock); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("once the daemon answers: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the worker still waits for a daemon that answers")
	}
	waitLog(t, ctx, lines, "the Docker daemon answers")
}

// TestDockerDownIsWaitedForPermissionIsNot: waiting cures a daemon not
// there; it does not cure a socket the worker's user may not open.
func TestDockerDownIsWaitedForPermissionIsNot(t *testing.T) {
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	if dockerDown(denied) {
		t.Error("a socket the user may not open is waited for")
	}
	if dockerDown(errors.New("tls: failed to verify certificate")) {
		t.Error("a TLS failure is waited for")
	}
	if !dockerDown(context.DeadlineExceeded) {
		t.Error("a daemon that does not answer is not waited for")
	}
}

// TestDockerWaitFlag: gantry up --docker-wait 1s: a running task whose
// Docker daemon goes away for longer than that fails as lost, although
// the daemon comes back well within the default wait (2 minutes), which
// would have kept the run going; once the daemon is back, the worker
// removes the lost container.
func TestDockerWaitFlag(t *testing.T) {
	t.Parallel()
	cli := sampletest.Docker(t)
	p := sampletest.StartDaemonProxy(t, cli)
	in := startUpWith(t, nil, []string{"DOCKER_HOST=unix://" + p.Path()}, "--docker-wait", "1s")
	id := in.runDetached("sh", "-c", "echo ready; sleep 300")
	in.waitLog(id, "ready")
	p.Kill()
	time.Sleep(5 * time.Second)
	p.Start(t)
	r := in.waitStatus(id, jobs.StatusFailed, jobs.StatusSucceeded, jobs.StatusCanceled)
	if r.Status != jobs.StatusFailed || len(r.Containers) != 1 || !strings.HasPrefix(r.Containers[0].Reason, worker.LostPrefix) {
		t.Fatalf("run %s %q, containers %+v: want FAILED, its container lost:\n%s", r.Status, r.StatusReason, r.Containers, in.log)
	}
	waitForWithin(t, time.Minute, "the worker to remove the lost container once the daemon answers again", func() bool {
		left, err := cli.ContainerList(t.Context(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", sampletest.LabelKey+"="+in.label))})
		if err != nil {
			t.Fatal(err)
		}
		return len(left) == 0
	})
}
