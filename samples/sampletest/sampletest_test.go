package sampletest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gantry-dev/gantry/samples"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// start creates a labelled container from the samples image, attaches to its
// output before starting it (so nothing is missed) and starts it. The
// returned function waits for the container and returns its output.
func start(t *testing.T, cli *client.Client, cfg *container.Config, hc *container.HostConfig) (string, func() (stdout, stderr string)) {
	t.Helper()
	ctx := t.Context()
	cfg.Image = sampletest.Image(t)
	cfg.Labels = sampletest.Labels(t.Name())
	cfg.AttachStdout, cfg.AttachStderr = true, true
	created, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, "")
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	att, err := cli.ContainerAttach(ctx, created.ID, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("attach container %s: %v", created.ID, err)
	}
	var stdout, stderr bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader)
		copied <- err
	}()
	t.Cleanup(func() {
		att.Close()
		<-copied
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", created.ID, err)
	}
	return created.ID, func() (string, string) {
		t.Helper()
		if err := <-copied; err != nil {
			t.Errorf("read output of %s: %v", created.ID, err)
		}
		copied <- nil // for the cleanup
		return stdout.String(), stderr.String()
	}
}

// wait waits for the container to stop and returns its state.
func wait(t *testing.T, cli *client.Client, id string) container.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	statusCh, errCh := cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-statusCh:
	case err := <-errCh:
		t.Fatalf("wait for container %s: %v", id, err)
	}
	// Docker marks an OOM kill when it handles the kernel's event, which
	// can come after the exit (worker/docker/oom.go waits for it too).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatalf("inspect container %s: %v", id, err)
		}
		if info.State.OOMKilled || info.State.ExitCode != 137 || time.Now().After(deadline) {
			return *info.State
		}
	}
}

func TestRunContainer(t *testing.T) {
	cli := sampletest.Docker(t)
	tests := []struct {
		name       string
		cmd        []string
		memoryMiB  int64
		wantCode   int
		wantOOM    bool
		wantStdout string
		wantStderr string
	}{
		{name: "output and exit code", cmd: []string{"sh", "-c", "echo hello; echo oops >&2; exit 3"},
			wantCode: 3, wantStdout: "hello\n", wantStderr: "oops\n"},
		{name: "applet as command", cmd: []string{"lines", "3", "12"},
			wantStdout: "line 000001 \nline 000002 \nline 000003 \n"},
		{name: "image defaults", cmd: []string{"sh", "-c", `echo "$PATH"; ls -d /tmp /data; test -x /bin/gantry-etl && echo etl`},
			wantStdout: "/bin\n/tmp\n/data\netl\n"},
		{name: "etl pipeline", cmd: []string{"sh", "-c", "gantry-etl extract --out /data/x --day 2026-01-02 --rows 1000 >/dev/null && " +
			"gantry-etl transform --in /data/x 2>/dev/null | grep -c rejected && gantry-etl load --in /data/x --db /data/wh.jsonl | grep -o 'appended 25 rows'"},
			wantStdout: "1\nappended 25 rows\n"},
		{name: "out of memory", cmd: []string{"sh", "-c", "sleep 1; exec alloc 128"}, memoryMiB: 32, wantCode: 137, wantOOM: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sampletest.Cleanup(t, cli, t.Name())
			hc := &container.HostConfig{}
			if tt.memoryMiB > 0 {
				hc.Memory = tt.memoryMiB << 20
				hc.MemorySwap = hc.Memory // no swap, or alloc just swaps
			}
			id, output := start(t, cli, &container.Config{Cmd: tt.cmd}, hc)
			state := wait(t, cli, id)
			stdout, stderr := output()
			if state.ExitCode != tt.wantCode || state.OOMKilled != tt.wantOOM {
				t.Errorf("exit %d, OOM killed %v; want %d, %v (stderr %q)", state.ExitCode, state.OOMKilled, tt.wantCode, tt.wantOOM, stderr)
			}
			if tt.wantOOM {
				return // alloc's progress lines depend on when the kill came
			}
			if stdout != tt.wantStdout || stderr != tt.wantStderr {
				t.Errorf("stdout %q, stderr %q; want %q, %q", stdout, stderr, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

// TestStopIsPrompt checks that box, as PID 1, exits on SIGTERM with 143
// while sh runs sleep, instead of being killed (137) at the stop timeout.
// It stops the container only once the script has run (its marker file
// exists): a signal that comes before the process has installed its handler
// is dropped by the kernel, for PID 1.
func TestStopIsPrompt(t *testing.T) {
	cli := sampletest.Docker(t)
	sampletest.Cleanup(t, cli, t.Name())
	id, output := start(t, cli, &container.Config{Cmd: []string{"sh", "-c", "touch /tmp/ready; sleep 30; echo not reached"}}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		if _, err := cli.ContainerStatPath(ctx, id, "/tmp/ready"); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the script never created /tmp/ready")
		case <-time.After(20 * time.Millisecond):
		}
	}
	timeout := 30
	if err := cli.ContainerStop(t.Context(), id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stop container %s: %v", id, err)
	}
	state := wait(t, cli, id)
	stdout, _ := output()
	if state.ExitCode != 143 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 143 (SIGTERM handled) and no output", state.ExitCode, stdout)
	}
}

func TestImageIsTaggedLatest(t *testing.T) {
	cli := sampletest.Docker(t)
	ref := sampletest.Image(t)
	if !strings.HasPrefix(ref, samples.Repository+":") || len(ref) != len(samples.Repository)+1+12 {
		t.Fatalf("image reference %q is not %s:<12 hex digits>", ref, samples.Repository)
	}
	a, err := cli.ImageInspect(t.Context(), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	b, err := cli.ImageInspect(t.Context(), samples.Image)
	if err != nil {
		t.Fatalf("inspect %s: %v", samples.Image, err)
	}
	if a.ID != b.ID {
		t.Fatalf("%s is %s but %s is %s", ref, a.ID, samples.Image, b.ID)
	}
	if got := b.Config.Cmd; len(got) != 1 || got[0] != "/bin/sh" {
		t.Errorf("image CMD = %q, want [/bin/sh]", got)
	}
}

// TestCleanupRemovesLabelledContainers checks the helper itself: a container
// left running is gone once the subtest that labelled it has ended.
func TestCleanupRemovesLabelledContainers(t *testing.T) {
	cli := sampletest.Docker(t)
	img := sampletest.Image(t)
	label := t.Name() + "-inner"
	var id string
	t.Run("leave a container running", func(t *testing.T) {
		sampletest.Cleanup(t, cli, label)
		c, err := cli.ContainerCreate(t.Context(), &container.Config{Image: img, Cmd: []string{"sleep", "300"},
			Labels: sampletest.Labels(label)}, nil, nil, nil, "")
		if err != nil {
			t.Fatalf("create container: %v", err)
		}
		id = c.ID
		if err := cli.ContainerStart(t.Context(), id, container.StartOptions{}); err != nil {
			t.Fatalf("start container %s: %v", id, err)
		}
	})
	if id == "" {
		t.FailNow()
	}
	if _, err := cli.ContainerInspect(t.Context(), id); !cerrdefs.IsNotFound(err) {
		cli.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true})
		t.Fatalf("container %s still there after cleanup (inspect error %v)", id, err)
	}
}
