// Package sampletest gives integration tests a Docker client and the samples
// image, and cleans up what they create.
//
// Tests label every container, volume and network they create with
// LabelKey=<label> and call [Cleanup] with the same label:
//
//	cli := sampletest.Docker(t)
//	img := sampletest.Image(t)
//	sampletest.Cleanup(t, cli, t.Name())
//	cli.ContainerCreate(ctx, &container.Config{Image: img, Labels: sampletest.Labels(t.Name())}, ...)
package sampletest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/samples"
)

// LabelKey is the label that marks what a test created, for [Cleanup].
const LabelKey = "gantry.test"

// pingTimeout bounds how long Docker may take to answer before tests skip.
const pingTimeout = 5 * time.Second

// Docker returns a client of the local Docker daemon (DOCKER_HOST and friends
// are honoured, the API version is negotiated) and closes it when the test
// ends. When the daemon does not answer the test is skipped, or fails if
// GANTRY_REQUIRE_DOCKER=1.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		_, err = cli.Ping(ctx)
		cancel()
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		if os.Getenv("GANTRY_REQUIRE_DOCKER") == "1" {
			t.Fatalf("docker not reachable (%v) and GANTRY_REQUIRE_DOCKER=1", err)
		}
		t.Skipf("docker not reachable (%v); set GANTRY_REQUIRE_DOCKER=1 to make this a failure", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// image memoizes the build for the test process.
var image struct {
	once sync.Once
	ref  string
	err  error
}

// Image returns the content-addressed reference of the samples image
// (gantry/samples:<hash>, see [samples.BuildImage]), building it at most
// once per test process. It skips like [Docker] when the daemon is away and
// fails the test when the build failed.
func Image(t testing.TB) string {
	t.Helper()
	cli := Docker(t)
	image.once.Do(func() {
		var progress bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		image.ref, image.err = samples.BuildImage(ctx, cli, &progress)
		if image.err != nil {
			image.err = fmt.Errorf("%w\n%s", image.err, progress.Bytes())
		}
	})
	if image.err != nil {
		t.Fatalf("build samples image: %v", image.err)
	}
	return image.ref
}

// WaitForProcess waits until a process of container id has a command line
// containing want, and fails the test after 30 seconds. Call it before
// stopping a container you just started: a SIGTERM that arrives while runc is
// still starting the process as PID 1 is dropped by the kernel, and the stop
// then takes its whole timeout and ends in SIGKILL (exit 137).
func WaitForProcess(t testing.TB, cli *client.Client, id, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		top, err := cli.ContainerTop(ctx, id, nil)
		if err == nil {
			for _, proc := range top.Processes {
				if len(proc) > 0 && strings.Contains(proc[len(proc)-1], want) {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s never ran %q (last error: %v)", id, want, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Labels returns the labels that put an object in label's [Cleanup] set.
func Labels(label string) map[string]string {
	return map[string]string{LabelKey: label}
}

// Cleanup removes, when the test ends, every container (forcibly, with its
// anonymous volumes), then every volume and network labelled
// gantry.test=<label>. Failures are logged, not fatal: a leftover must not
// hide the test's own result.
func Cleanup(t testing.TB, cli *client.Client, label string) {
	t.Helper()
	t.Cleanup(func() {
		// The test's context is done by now; cleaning up needs its own.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args := filters.NewArgs(filters.Arg("label", LabelKey+"="+label))

		containers, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
		if err != nil {
			t.Logf("cleanup %s: list containers: %v", label, err)
		}
		for _, c := range containers {
			err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				t.Logf("cleanup %s: remove container %s: %v", label, c.ID, err)
			}
		}

		vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: args})
		if err != nil {
			t.Logf("cleanup %s: list volumes: %v", label, err)
		}
		for _, v := range vols.Volumes {
			if err := cli.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
				t.Logf("cleanup %s: remove volume %s: %v", label, v.Name, err)
			}
		}

		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: args})
		if err != nil {
			t.Logf("cleanup %s: list networks: %v", label, err)
		}
		for _, n := range nets {
			if err := cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
				t.Logf("cleanup %s: remove network %s: %v", label, n.Name, err)
			}
		}
	})
}
