package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

func no() *bool { f := false; return &f }

func resultOf(t *testing.T, res []jobs.ContainerResult, name string) jobs.ContainerResult {
	t.Helper()
	for _, c := range res {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no result for container %s in %+v", name, res)
	return jobs.ContainerResult{}
}

// TestRunDependsOnAllConditions starts containers in the order their
// dependsOn asks, each one writing its name to a scratch volume they share.
func TestRunDependsOnAllConditions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mount := []jobs.MountPoint{{SourceVolume: "shared", ContainerPath: "/shared"}}
	task := e.task(t,
		jobs.ContainerDefinition{Name: "main", MountPoints: mount, Command: sh("echo main >> /shared/order; cat /shared/order"),
			DependsOn: []jobs.ContainerDep{{ContainerName: "setup", Condition: jobs.DepComplete},
				{ContainerName: "init", Condition: jobs.DepSuccess}, {ContainerName: "side", Condition: jobs.DepStart},
				{ContainerName: "db", Condition: jobs.DepHealthy}}},
		jobs.ContainerDefinition{Name: "init", Essential: no(), MountPoints: mount, Command: sh("sleep 0.5; echo init >> /shared/order")},
		jobs.ContainerDefinition{Name: "setup", Essential: no(), MountPoints: mount, Command: sh("echo setup >> /shared/order; exit 2"),
			DependsOn: []jobs.ContainerDep{{ContainerName: "init", Condition: jobs.DepSuccess}}},
		jobs.ContainerDefinition{Name: "side", Essential: no(), MountPoints: mount, Command: sh("echo side >> /shared/order; sleep 300"),
			DependsOn: []jobs.ContainerDep{{ContainerName: "setup", Condition: jobs.DepComplete}}},
		jobs.ContainerDefinition{Name: "db", Essential: no(), MountPoints: mount,
			Command:     sh("sleep 1; touch /tmp/ready; echo db >> /shared/order; sleep 300"),
			HealthCheck: &jobs.HealthCheck{Command: []string{"CMD-SHELL", "test -f /tmp/ready"}, Interval: 5, Timeout: 2, Retries: 3}},
	)
	task.Def.Volumes = []jobs.Volume{{Name: "shared"}}
	sink := &recordSink{}
	start := time.Now()
	res := mustRun(t, testCtx(t, 2*time.Minute), e, task, sink)
	t.Logf("ran in %s", time.Since(start))
	if c := resultOf(t, res.Containers, "main"); exitCode(t, c) != 0 {
		t.Fatalf("main: %+v", c)
	}
	order := sink.get("main", "stdout")
	if len(order) != 5 || order[4] != "main" || slices.Index(order, "init") > slices.Index(order, "setup") ||
		slices.Index(order, "setup") > slices.Index(order, "side") || !slices.Contains(order, "db") {
		t.Errorf("order %q: want init, setup, then side and db, then main", order)
	}
	// The sidecars were stopped when the essential container exited.
	for _, name := range []string{"side", "db"} {
		if c := resultOf(t, res.Containers, name); !strings.HasPrefix(c.Reason, "Stopped: essential container main exited") {
			t.Errorf("%s: reason %q", name, c.Reason)
		}
	}
}

func TestRunUnmetDependencyStopsTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	t.Run("SUCCESS of a container that failed", func(t *testing.T) {
		t.Parallel()
		task := e.task(t,
			jobs.ContainerDefinition{Name: "migrate", Essential: no(), Command: sh("exit 3")},
			jobs.ContainerDefinition{Name: "sidecar", Essential: no(), Command: sh("sleep 300")},
			jobs.ContainerDefinition{Name: "app", Command: sh("echo should not run"),
				DependsOn: []jobs.ContainerDep{{ContainerName: "migrate", Condition: jobs.DepSuccess}}})
		res := mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
		app := resultOf(t, res.Containers, "app")
		want := "DependencyNotMet: container app did not start: container migrate exited with code 3 and the condition is SUCCESS"
		if app.ExitCode != nil || app.Reason != want {
			t.Errorf("app: %+v, want reason %q", app, want)
		}
		if c := resultOf(t, res.Containers, "sidecar"); !strings.Contains(c.Reason, "migrate exited with code 3") {
			t.Errorf("sidecar was not stopped with the reason: %+v", c)
		}
	})
	t.Run("startTimeout of the container waited for HEALTHY", func(t *testing.T) {
		t.Parallel()
		task := e.task(t,
			jobs.ContainerDefinition{Name: "db", Essential: no(), Command: sh("sleep 300"), StartTimeout: 2,
				HealthCheck: &jobs.HealthCheck{Command: []string{"CMD-SHELL", "false"}, Interval: 30, Retries: 3}},
			jobs.ContainerDefinition{Name: "app", Command: sh("echo should not run"),
				DependsOn: []jobs.ContainerDep{{ContainerName: "db", Condition: jobs.DepHealthy}}})
		start := time.Now()
		res := mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
		app := resultOf(t, res.Containers, "app")
		if want := "container db was not HEALTHY within its startTimeout=2s"; app.ExitCode != nil || !strings.Contains(app.Reason, want) {
			t.Errorf("app: %+v, want a reason saying %q", app, want)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("took %v: db's startTimeout of 2s did not end the wait", took)
		}
	})
}

// TestRunStopsDependentsFirst stops a task whose main depends on app and
// app on db: as ECS reverses dependsOn on shutdown, each container gets
// SIGTERM only after those depending on it have exited, as the daemon's
// kill and die events show.
func TestRunStopsDependentsFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	on := func(name string) []jobs.ContainerDep {
		return []jobs.ContainerDep{{ContainerName: name, Condition: jobs.DepStart}}
	}
	task := e.task(t,
		jobs.ContainerDefinition{Name: "db", Essential: no(), Command: sh("sleep 300"), StopTimeout: 10},
		jobs.ContainerDefinition{Name: "app", Essential: no(), Command: sh("sleep 300"), StopTimeout: 10, DependsOn: on("db")},
		jobs.ContainerDefinition{Name: "main", Command: sh("echo ready; sleep 300"), StopTimeout: 10, DependsOn: on("app")},
	)
	evCtx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	msgs, errs := e.cli.Events(evCtx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("label", testLabel+"="+e.label),
		filters.Arg("event", "kill"), filters.Arg("event", "die"))})

	sink := &readySink{ready: make(chan struct{})}
	ctx, cancel := context.WithCancelCause(testCtx(t, time.Minute))
	go func() {
		<-sink.ready
		cancel(errors.New("stopped by the test"))
	}()
	start := time.Now()
	res := mustRun(t, ctx, e, task, sink)
	t.Logf("stopped in %v", time.Since(start))
	for _, c := range res.Containers {
		if !strings.HasPrefix(c.Reason, "Stopped: stopped by the test") {
			t.Errorf("%s: reason %q", c.Name, c.Reason)
		}
	}

	var seen []string // "kill app", "die app", ...
	deadline := time.After(10 * time.Second)
	for dies := 0; dies < 3; {
		select {
		case m := <-msgs:
			seen = append(seen, string(m.Action)+" "+m.Actor.Attributes[LabelContainer])
			if m.Action == events.ActionDie {
				dies++
			}
		case err := <-errs:
			t.Fatalf("events: %v", err)
		case <-deadline:
			t.Fatalf("events so far: %q", seen)
		}
	}
	t.Logf("events: %q", seen)
	at := func(ev string) int {
		i := slices.Index(seen, ev)
		if i < 0 {
			t.Fatalf("no %q in %q", ev, seen)
		}
		return i
	}
	if at("die main") > at("kill app") || at("die app") > at("kill db") {
		t.Errorf("events %q: want main, then app, then db stopped, each after the one depending on it exited", seen)
	}
}

func TestRunVolumesFromAndLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t,
		jobs.ContainerDefinition{Name: "writer", Essential: no(), Command: sh("echo from-writer > /data/file"),
			MountPoints: []jobs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/data"}}},
		jobs.ContainerDefinition{Name: "web", Essential: no(), Command: []string{"httpd", "8080", "via-link"}},
		jobs.ContainerDefinition{Name: "reader", Links: []string{"web:website"},
			VolumesFrom: []jobs.VolumeFrom{{SourceContainer: "writer", ReadOnly: true}},
			Command:     sh("cat /data/file; touch /data/x 2>/dev/null || echo read-only; until fetch http://website:8080/; do sleep 0.2; done"),
			DependsOn:   []jobs.ContainerDep{{ContainerName: "writer", Condition: jobs.DepSuccess}, {ContainerName: "web", Condition: jobs.DepStart}}},
	)
	task.Def.Volumes = []jobs.Volume{{Name: "scratch", Host: &jobs.HostVolume{}}}
	sink := &recordSink{}
	res := mustRun(t, testCtx(t, time.Minute), e, task, sink)
	if c := resultOf(t, res.Containers, "reader"); exitCode(t, c) != 0 {
		t.Fatalf("reader: %+v %q", c, sink.get("reader", "stderr"))
	}
	equal(t, "reader stdout", sink.get("reader", "stdout"), []string{"from-writer", "read-only", "via-link"})
}

// TestRunVolumesFromLaterContainer takes volumes from, and links to,
// containers defined after the one naming them: ECS creates (and, for a
// link, starts) those first, where Docker refuses to create a container
// whose volumesFrom names one that does not exist yet.
func TestRunVolumesFromLaterContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t,
		jobs.ContainerDefinition{Name: "reader", Links: []string{"web:website"},
			VolumesFrom: []jobs.VolumeFrom{{SourceContainer: "writer"}},
			Command:     sh("cat /data/file; until fetch http://website:8080/; do sleep 0.2; done"),
			DependsOn:   []jobs.ContainerDep{{ContainerName: "writer", Condition: jobs.DepSuccess}}},
		jobs.ContainerDefinition{Name: "writer", Essential: no(), Command: sh("echo hi > /data/file"),
			MountPoints: []jobs.MountPoint{{SourceVolume: "scratch", ContainerPath: "/data"}}},
		jobs.ContainerDefinition{Name: "web", Essential: no(), Command: []string{"httpd", "8080", "via-link"}},
	)
	task.Def.Volumes = []jobs.Volume{{Name: "scratch"}}
	if err := task.Def.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	sink := &recordSink{}
	res := mustRun(t, testCtx(t, time.Minute), e, task, sink)
	if c := resultOf(t, res.Containers, "reader"); exitCode(t, c) != 0 {
		t.Fatalf("reader: %+v %q", c, sink.get("reader", "stderr"))
	}
	equal(t, "reader stdout", sink.get("reader", "stdout"), []string{"hi", "via-link"})
}

func TestRunContainerSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "db"), 0o755)
	os.WriteFile(filepath.Join(dir, "db", "password"), []byte("s3cret-from-file\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "db-creds-AbCdEf"), []byte(`{"username": "etl-from-json", "password": "x"}`), 0o600)
	e := newEnv(t, WithSecretsDir(dir), WithSecretEnv("GANTRY_TEST_SECRET_*"))
	e.rt.ecs.getenv = func(k string) (string, bool) {
		if k == "GANTRY_TEST_SECRET_TOKEN" {
			return "s3cret-from-env", true
		}
		return "", false
	}
	task := e.task(t, jobs.ContainerDefinition{
		Name:       "main",
		EntryPoint: []string{"sh", "-c"},
		Command: []string{`ulimit -Hn; ulimit -u; ulimit -Hu; pwd; hostname; echo "$PW $TOKEN $PLAIN $DBUSER"; grep -c 10.1.2.3 /etc/hosts;
			touch /rootfile 2>/dev/null || echo rootfs-read-only; echo ok > /scratch/f && cat /scratch/f`},
		Environment: []jobs.KeyValue{{Name: "PLAIN", Value: "plain"}},
		Secrets: []jobs.Secret{{Name: "PW", ValueFrom: "arn:aws:ssm:eu-west-1:123456789012:parameter/db/password"}, {Name: "TOKEN", ValueFrom: "env:GANTRY_TEST_SECRET_TOKEN"},
			{Name: "DBUSER", ValueFrom: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-creds-AbCdEf:username::"}},
		// Go raises its own soft nofile limit at start, so only the hard one
		// says what the container got.
		Ulimits:                []jobs.Ulimit{{Name: "nofile", SoftLimit: 1234, HardLimit: 2345}, {Name: "nproc", SoftLimit: 777, HardLimit: 999}},
		WorkingDirectory:       "/tmp",
		Hostname:               "etl-host",
		ExtraHosts:             []jobs.HostEntry{{Hostname: "warehouse", IPAddress: "10.1.2.3"}},
		ReadonlyRootFilesystem: true,
		LinuxParameters: &jobs.LinuxParameters{InitProcessEnabled: true, SharedMemorySize: 16,
			Tmpfs: []jobs.Tmpfs{{ContainerPath: "/scratch", Size: 8}}},
		DockerLabels: map[string]string{"team": "etl"},
		User:         "1000:1000",
	})
	sink := &recordSink{}
	res := mustRun(t, testCtx(t, time.Minute), e, task, sink)
	if exitCode(t, res.Containers[0]) != 0 {
		t.Fatalf("exit: %+v, stderr %q", res.Containers[0], sink.get("main", "stderr"))
	}
	equal(t, "stdout", sink.get("main", "stdout"), []string{"2345", "777", "999", "/tmp", "etl-host",
		"s3cret-from-file s3cret-from-env plain etl-from-json", "1", "rootfs-read-only", "ok"})
}

// inspectOnStart inspects the task's container name once the task has
// started, before it is removed.
func inspectOnStart(t *testing.T, e *env, task *worker.Task, name string) *container.InspectResponse {
	t.Helper()
	info := &container.InspectResponse{}
	task.Started = func([]jobs.ContainerResult) {
		got, err := e.cli.ContainerInspect(context.Background(), "gantry-"+task.RunID+"-1-"+name)
		if err != nil {
			t.Errorf("inspect %s: %v", name, err)
			return
		}
		*info = got
	}
	return info
}

// TestRunDockerFields runs ECS fields that Docker has too: they reach the
// container's configuration, not dropped as if only AWS knew them.
func TestRunDockerFields(t *testing.T) {
	t.Parallel()
	t.Run("terminal, stdin, IPC and security options", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		task := e.task(t, jobs.ContainerDefinition{Name: "main", Interactive: true, PseudoTerminal: true,
			// docker-default is the profile Docker loads where AppArmor runs.
			DockerSecurityOptions: []string{"no-new-privileges", "apparmor:docker-default"},
			Command:               sh("[ -t 1 ] && echo tty; [ -e /dev/shm ] || echo no-shm; echo to-stderr >&2")})
		task.Def.PidMode, task.Def.IpcMode = "task", "none"
		if err := task.Def.Validate(); err != nil {
			t.Fatal(err)
		}
		info := inspectOnStart(t, e, task, "main")
		sink := &recordSink{}
		res := mustRun(t, testCtx(t, time.Minute), e, task, sink)
		if c := res.Containers[0]; exitCode(t, c) != 0 {
			t.Fatalf("got %+v", c)
		}
		// A terminal's output is one stream, its lines without the \r.
		equal(t, "stdout", sink.get("main", "stdout"), []string{"tty", "no-shm", "to-stderr"})
		if info.Config == nil || !info.Config.Tty || !info.Config.OpenStdin || info.Config.AttachStdin {
			t.Errorf("config: %+v", info.Config)
		}
		if hc := info.HostConfig; hc == nil || hc.IpcMode != "none" ||
			strings.Join(hc.SecurityOpt, " ") != "no-new-privileges apparmor=docker-default" {
			t.Errorf("host config: %+v", hc)
		}
	})
	t.Run("host namespaces on a worker that allows them", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, WithAllowPrivileged(true))
		task := e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("true")})
		task.Def.PidMode, task.Def.IpcMode = "host", "host"
		info := inspectOnStart(t, e, task, "main")
		mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
		if hc := info.HostConfig; hc == nil || hc.PidMode != "host" || hc.IpcMode != "host" {
			t.Errorf("host config: %+v", hc)
		}
	})
}

func TestRunRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name string
		def  jobs.ContainerDefinition
		want string
	}{
		{"privileged", jobs.ContainerDefinition{Name: "main", Privileged: true, Command: sh("true")},
			"privileged: this worker does not run privileged containers; start it with --allow-privileged to allow them"},
		{"capability", jobs.ContainerDefinition{Name: "main", Command: sh("true"),
			LinuxParameters: &jobs.LinuxParameters{Capabilities: &jobs.KernelCapabilities{Add: []string{"SYS_ADMIN"}}}},
			"linuxParameters.capabilities.add: SYS_ADMIN is beyond Docker's default capabilities; start the worker with --allow-privileged to allow it"},
		{"secret from an unshared variable", jobs.ContainerDefinition{Name: "main", Command: sh("true"),
			Secrets: []jobs.Secret{{Name: "X", ValueFrom: "env:HOME"}}},
			"secrets[0] (X): env:HOME: this worker does not share that variable; start it with --secret-env HOME"},
		{"secret file without a directory", jobs.ContainerDefinition{Name: "main", Command: sh("true"),
			Secrets: []jobs.Secret{{Name: "X", ValueFrom: "file:x"}}},
			"secrets[0] (X): file:x: this worker has no secrets directory; start it with --secrets-dir DIR"},
		{"AppArmor off", jobs.ContainerDefinition{Name: "main", Command: sh("true"),
			DockerSecurityOptions: []string{"apparmor:unconfined"}},
			"dockerSecurityOptions: apparmor:unconfined may loosen the container's confinement; start the worker with --allow-privileged to allow it"},
		{"SELinux type other than Docker's", jobs.ContainerDefinition{Name: "main", Command: sh("true"),
			DockerSecurityOptions: []string{"label:type:container_runtime_t"}},
			"dockerSecurityOptions: label:type:container_runtime_t may loosen the container's confinement; start the worker with --allow-privileged"},
		{"another MCS level", jobs.ContainerDefinition{Name: "main", Command: sh("true"),
			DockerSecurityOptions: []string{"label:level:s0:c100,c200"}},
			"dockerSecurityOptions: label:level:s0:c100,c200 may loosen the container's confinement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.rt.Run(testCtx(t, time.Minute), e.task(t, tt.def), &recordSink{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
	for _, mode := range []string{"pidMode", "ipcMode"} {
		t.Run(mode+" host", func(t *testing.T) {
			task := e.task(t, jobs.ContainerDefinition{Name: "main", Command: sh("true")})
			if mode == "pidMode" {
				task.Def.PidMode = "host"
			} else {
				task.Def.IpcMode = "host"
			}
			want := mode + ": host shares the host's namespace; start the worker with --allow-privileged to allow it"
			if _, err := e.rt.Run(testCtx(t, time.Minute), task, &recordSink{}); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want it to say %q", err, want)
			}
		})
	}
	t.Run("privileged on a worker that allows it", func(t *testing.T) {
		e := newEnv(t, WithAllowPrivileged(true))
		res, err := e.rt.Run(testCtx(t, time.Minute), e.task(t, jobs.ContainerDefinition{Name: "main", Privileged: true,
			Command: sh("ls /dev | grep -c . ")}), &recordSink{})
		if err != nil && strings.Contains(err.Error(), "unable to apply caps") {
			// Some daemons (this sandbox's among them) cannot start a
			// privileged container at all. The request still went through:
			// the refusal is the daemon's, not the worker's policy.
			if strings.Contains(err.Error(), "--allow-privileged") {
				t.Fatalf("the worker refused although it allows privileged containers: %v", err)
			}
			t.Logf("the daemon itself cannot run privileged containers: %v", err)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if exitCode(t, res.Containers[0]) != 0 {
			t.Fatalf("%+v", res.Containers[0])
		}
	})
}

func TestRunTaskMemoryBoundsContainer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t, jobs.ContainerDefinition{Name: "main", Command: []string{"sh", "-c", "sleep 1; exec alloc 256"}})
	task.Def.Memory = "32"
	res := mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
	if c := res.Containers[0]; exitCode(t, c) != 137 || !c.OOMKilled {
		t.Fatalf("got %+v, want an OOM kill under the task's 32 MiB", c)
	}
}

// TestRunContainerCPUBeyondKernelShares runs a container whose cpu is above
// the 262144 CPU shares the kernel takes: ECS's agent passes it as 262144,
// where Docker itself fails the start.
func TestRunContainerCPUBeyondKernelShares(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	task := e.task(t, jobs.ContainerDefinition{Name: "main", CPU: 300000, Command: sh("true")})
	res := mustRun(t, testCtx(t, time.Minute), e, task, &recordSink{})
	if c := res.Containers[0]; exitCode(t, c) != 0 {
		t.Fatalf("got %+v", c)
	}
}

func TestRunDockerVolumeConfiguration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shared := "gantry-test-shared-" + strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-"))
	t.Cleanup(func() { e.cli.VolumeRemove(context.Background(), shared, true) })
	def := func(script string) *jobs.TaskDefinition {
		return &jobs.TaskDefinition{Family: "test", Volumes: []jobs.Volume{
			{Name: "tmp", DockerVolumeConfiguration: &jobs.DockerVolumeConfiguration{Scope: jobs.ScopeTask, Driver: "local", Labels: map[string]string{"k": "v"}}},
			{Name: shared, DockerVolumeConfiguration: &jobs.DockerVolumeConfiguration{Scope: jobs.ScopeShared, Autoprovision: true}},
		}, ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: e.image, Command: sh(script),
			MountPoints: []jobs.MountPoint{{SourceVolume: "tmp", ContainerPath: "/tmp/t"}, {SourceVolume: shared, ContainerPath: "/shared"}}}}}
	}
	first := e.task(t)
	first.Def = *def("echo kept > /shared/f; echo gone > /tmp/t/f")
	mustRun(t, testCtx(t, time.Minute), e, first, &recordSink{})
	second := e.task(t)
	second.Def = *def("cat /shared/f; ls /tmp/t")
	sink := &recordSink{}
	mustRun(t, testCtx(t, time.Minute), e, second, sink)
	equal(t, "second run", sink.get("main", "stdout"), []string{"kept"})

	missing := e.task(t)
	missing.Def = *def("true")
	missing.Def.Volumes[1].DockerVolumeConfiguration.Autoprovision = false
	missing.Def.Volumes[1].Name = shared + "-missing"
	missing.Def.ContainerDefinitions[0].MountPoints[1].SourceVolume = shared + "-missing"
	if _, err := e.rt.Run(testCtx(t, time.Minute), missing, &recordSink{}); err == nil || !strings.Contains(err.Error(), "autoprovision is false") {
		t.Fatalf("err = %v", err)
	}
}
