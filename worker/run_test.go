package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// fakeSource hands out the leases it is given, then blocks.
type fakeSource struct{ leases chan *fakeLease }

func (s *fakeSource) Next(ctx context.Context) (Lease, error) {
	select {
	case l := <-s.leases:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type fakeLease struct {
	job       jobs.Job
	delivered uint64
	acked     chan struct{}
}

func (l *fakeLease) Job() jobs.Job                 { return l.job }
func (l *fakeLease) Delivered() uint64             { return l.delivered }
func (l *fakeLease) InProgress() error             { return nil }
func (l *fakeLease) Ack(ctx context.Context) error { close(l.acked); return nil }
func (l *fakeLease) Nak(time.Duration) error       { return nil }

// fakeReporter records events.
type fakeReporter struct {
	mu       sync.Mutex
	events   []jobs.Event
	batches  [][]jobs.Status // the statuses of each PublishEvents call
	canceled map[string]string
	asked    int // Canceled calls
}

func (r *fakeReporter) PublishEvents(ctx context.Context, evs ...*jobs.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var batch []jobs.Status
	for _, ev := range evs {
		r.events = append(r.events, *ev)
		batch = append(batch, ev.Status)
	}
	r.batches = append(r.batches, batch)
	return nil
}

func (r *fakeReporter) Logs(string, int) LogStream { return nopLogs{} }

func (r *fakeReporter) Canceled(ctx context.Context, runID string) (bool, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	reason, ok := r.canceled[runID]
	return ok, reason, nil
}

func (r *fakeReporter) last() jobs.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1]
}

type nopLogs struct{}

func (nopLogs) Line(string, string, []byte)  {}
func (nopLogs) Piece(string, string, []byte) {}
func (nopLogs) End(string, string, []byte)   {}
func (nopLogs) Close(context.Context) error  { return nil }

// fakeRuntime ends each task as its function says.
type fakeRuntime func(ctx context.Context, t *Task) (*Result, error)

func (f fakeRuntime) Run(ctx context.Context, t *Task, _ LogSink) (*Result, error) {
	if t.Started != nil {
		t.Started(nil)
	}
	return f(ctx, t)
}

func exited(code int) *Result {
	return &Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code}}}
}

func job(id string) jobs.Job {
	return jobs.Job{RunID: id, Attempt: 1, Cluster: "default", Spec: jobs.RunSpec{Task: jobs.TaskDefinition{
		Family: "f", ContainerDefinitions: []jobs.ContainerDefinition{{Name: "main", Image: "img"}}}}}
}

// runOne runs a worker until it has handled one job, and returns its final event.
func runOne(t *testing.T, j jobs.Job, delivered uint64, rt Runtime, rep *fakeReporter, during func(w *Worker), opts ...Option) jobs.Event {
	t.Helper()
	src := &fakeSource{leases: make(chan *fakeLease, 1)}
	w := New("w1", "default", src, rt, rep, append([]Option{WithGracePeriod(5 * time.Second)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	lease := &fakeLease{job: j, delivered: delivered, acked: make(chan struct{})}
	src.leases <- lease
	if during != nil {
		during(w)
	}
	select {
	case <-lease.acked:
	case <-time.After(10 * time.Second):
		t.Fatal("job not acked")
	}
	cancel()
	<-done
	return rep.last()
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		rt       fakeRuntime
		status   jobs.Status
		exit     *int
		stopCode string
	}{
		{"success", func(context.Context, *Task) (*Result, error) { return exited(0), nil }, jobs.StatusSucceeded, intp(0), ""},
		{"failure", func(context.Context, *Task) (*Result, error) { return exited(3), nil }, jobs.StatusFailed, intp(3), jobs.StopEssentialExited},
		{"cannot start", func(context.Context, *Task) (*Result, error) { return nil, errors.New("image missing") },
			jobs.StatusFailed, nil, jobs.StopFailedToStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &fakeReporter{}
			ev := runOne(t, job("r1"), 1, tt.rt, rep, nil)
			if ev.Status != tt.status || ev.StopCode != tt.stopCode || (ev.ExitCode == nil) != (tt.exit == nil) ||
				(tt.exit != nil && *ev.ExitCode != *tt.exit) {
				t.Fatalf("final event %+v", ev)
			}
			statuses := []jobs.Status{}
			for _, e := range rep.events {
				statuses = append(statuses, e.Status)
				if e.Seq < 1 || e.Worker != "w1" || e.Source != jobs.SourceWorker {
					t.Fatalf("event %+v", e)
				}
			}
			if statuses[0] != jobs.StatusStarting || statuses[1] != jobs.StatusRunning {
				t.Fatalf("statuses %v", statuses)
			}
		})
	}
}

func TestFirstFailedEssentialContainerGivesTheExitCode(t *testing.T) {
	j := job("r1")
	no := false
	j.Spec.Task.ContainerDefinitions = []jobs.ContainerDefinition{
		{Name: "side", Image: "i", Essential: &no}, {Name: "a", Image: "i"}, {Name: "b", Image: "i"}}
	rt := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		return &Result{Containers: []jobs.ContainerResult{
			{Name: "side", ExitCode: intp(9)}, {Name: "a", ExitCode: intp(0)}, {Name: "b", ExitCode: intp(4)}}}, nil
	})
	if ev := runOne(t, j, 1, rt, &fakeReporter{}, nil); *ev.ExitCode != 4 {
		t.Fatalf("exit %d, want 4 (the non-essential container's 9 does not count)", *ev.ExitCode)
	}
}

func TestCancelStopsTheRun(t *testing.T) {
	started := make(chan struct{})
	rt := fakeRuntime(func(ctx context.Context, _ *Task) (*Result, error) {
		close(started)
		<-ctx.Done()
		return exited(143), nil
	})
	ev := runOne(t, job("r1"), 1, rt, &fakeReporter{}, func(w *Worker) {
		<-started
		if !w.Cancel("r1", "Stopped by user") {
			t.Error("Cancel did not find the run")
		}
	})
	if ev.Status != jobs.StatusCanceled || ev.StopCode != jobs.StopUserInitiated || ev.StoppedReason != "Stopped by user" {
		t.Fatalf("final event %+v", ev)
	}
}

func TestTimeout(t *testing.T) {
	j := job("r1")
	j.Spec.TimeoutSeconds = 1
	rt := fakeRuntime(func(ctx context.Context, _ *Task) (*Result, error) {
		<-ctx.Done()
		return exited(143), nil
	})
	ev := runOne(t, j, 1, rt, &fakeReporter{}, nil)
	if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopTimeout || ev.StoppedReason != "Task timed out: attempt ran longer than timeoutSeconds=1" {
		t.Fatalf("final event %+v", ev)
	}
}

// TestTimeoutBeyondTheBoundIsNoTimeout: a job queued before the server
// refused timeoutSeconds above jobs.MaxDurationSeconds runs without a
// timeout; its seconds overflowed time.Duration and timed it out at once.
func TestTimeoutBeyondTheBoundIsNoTimeout(t *testing.T) {
	j := job("r1")
	j.Spec.TimeoutSeconds = 9999999999
	rt := fakeRuntime(func(ctx context.Context, _ *Task) (*Result, error) {
		if ctx.Err() != nil {
			return exited(143), nil
		}
		return exited(0), nil
	})
	ev := runOne(t, j, 1, rt, &fakeReporter{}, nil)
	if ev.Status != jobs.StatusSucceeded {
		t.Fatalf("final event %+v", ev)
	}
}

func TestCanceledBeforeStartNeverRuns(t *testing.T) {
	rt := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		t.Error("the runtime ran a canceled job")
		return exited(0), nil
	})
	rep := &fakeReporter{canceled: map[string]string{"r1": "not wanted"}}
	ev := runOne(t, job("r1"), 1, rt, rep, nil)
	if ev.Status != jobs.StatusCanceled || len(rep.events) != 1 {
		t.Fatalf("events %+v", rep.events)
	}
}

func TestGantryEnvironment(t *testing.T) {
	var env map[string]string
	rt := fakeRuntime(func(_ context.Context, task *Task) (*Result, error) {
		env = map[string]string{}
		for _, kv := range task.Env {
			env[kv.Name] = kv.Value
		}
		return exited(0), nil
	})
	runOne(t, job("r7"), 1, rt, &fakeReporter{}, nil)
	if env["GANTRY_RUN_ID"] != "r7" || env["GANTRY_ATTEMPT"] != "1" || env["GANTRY_WORKER"] != "w1" {
		t.Fatalf("env %v", env)
	}
}

func intp(i int) *int { return &i }

func TestUnmetDependencyIsAFailedStart(t *testing.T) {
	j := job("r1")
	j.Spec.Task.ContainerDefinitions = []jobs.ContainerDefinition{{Name: "migrate", Image: "i"}, {Name: "app", Image: "i"}}
	rt := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		return &Result{Containers: []jobs.ContainerResult{{Name: "migrate", ExitCode: intp(0)},
			{Name: "app", Reason: "DependencyNotMet: container migrate exited with code 3"}}}, nil
	})
	ev := runOne(t, j, 1, rt, &fakeReporter{}, nil)
	if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopFailedToStart || ev.ExitCode != nil ||
		ev.StoppedReason != "Task failed to start: app: DependencyNotMet: container migrate exited with code 3" {
		t.Fatalf("final event %+v", ev)
	}
}

// A short attempt is reported in one piece; a long one says it started
// before it ends; with no linger each event goes alone.
func TestReportsHoldEventsUntilTheNextOrTheLinger(t *testing.T) {
	quick := fakeRuntime(func(context.Context, *Task) (*Result, error) { return exited(0), nil })
	slow := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		time.Sleep(300 * time.Millisecond)
		return exited(0), nil
	})
	all := []jobs.Status{jobs.StatusStarting, jobs.StatusRunning, jobs.StatusSucceeded}
	tests := []struct {
		name   string
		rt     fakeRuntime
		linger time.Duration
		want   [][]jobs.Status
	}{
		{"quick", quick, time.Minute, [][]jobs.Status{all}},
		{"slow", slow, 20 * time.Millisecond, [][]jobs.Status{all[:2], all[2:]}},
		{"no linger", quick, 0, [][]jobs.Status{all[:1], all[1:2], all[2:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := &fakeReporter{}
			runOne(t, job("r1"), 1, tt.rt, rep, nil, WithReportLinger(tt.linger))
			rep.mu.Lock()
			defer rep.mu.Unlock()
			if fmt.Sprint(rep.batches) != fmt.Sprint(tt.want) {
				t.Fatalf("reports %v, want %v", rep.batches, tt.want)
			}
			for i, ev := range rep.events {
				if ev.Seq != i+1 {
					t.Fatalf("event %d has seq %d", i, ev.Seq)
				}
			}
		})
	}
}

// Two essential containers, proxy defined first. main exits 3; gantry then
// stops proxy, which exits 143 (as the Docker runtime reports it, see
// the Docker runtime). The run's exit code is
// the code of the container that failed (3), not of the one gantry killed
// because of it.
func TestExitCodeIsTheFailedContainersNotTheOneStopped(t *testing.T) {
	j := job("r1")
	j.Spec.Task.ContainerDefinitions = []jobs.ContainerDefinition{{Name: "proxy", Image: "i"}, {Name: "main", Image: "i"}}
	rt := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		return &Result{Containers: []jobs.ContainerResult{
			{Name: "proxy", ExitCode: intp(143), Reason: "Stopped: essential container main exited"},
			{Name: "main", ExitCode: intp(3), Reason: "Essential container exited"}}}, nil
	})
	ev := runOne(t, j, 1, rt, &fakeReporter{}, nil)
	if ev.StoppedReason != "Essential container in task exited" {
		t.Errorf("reason %q", ev.StoppedReason)
	}
	if *ev.ExitCode != 3 {
		t.Fatalf("exit %d (%s), want 3: main failed; proxy was only stopped because of it", *ev.ExitCode, ev.StoppedReason)
	}
}

// Same task, but main succeeds: proxy, essential by ECS's default, is
// stopped by gantry and exits 143. That does not fail the run.
func TestEssentialSidecarStoppedAfterSuccessDoesNotFailTheRun(t *testing.T) {
	j := job("r2")
	j.Spec.Task.ContainerDefinitions = []jobs.ContainerDefinition{{Name: "main", Image: "i"}, {Name: "proxy", Image: "i"}}
	rt := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		return &Result{Containers: []jobs.ContainerResult{
			{Name: "main", ExitCode: intp(0), Reason: "Essential container exited"},
			{Name: "proxy", ExitCode: intp(143), Reason: "Stopped: essential container main exited"}}}, nil
	})
	ev := runOne(t, j, 1, rt, &fakeReporter{}, nil)
	if ev.Status != jobs.StatusSucceeded {
		t.Fatalf("status %s exit %d (%s): main succeeded; proxy only got gantry's SIGTERM", ev.Status, *ev.ExitCode, ev.StoppedReason)
	}
}

// slowLogs takes d to store what it was given, as a LogWriter does when
// JetStream is slow (finish waits up to a minute).
type slowLogs struct{ d time.Duration }

func (slowLogs) Line(string, string, []byte)  {}
func (slowLogs) Piece(string, string, []byte) {}
func (slowLogs) End(string, string, []byte)   {}
func (s slowLogs) Close(ctx context.Context) error {
	select {
	case <-time.After(s.d):
	case <-ctx.Done():
	}
	return nil
}

type slowLogReporter struct {
	fakeReporter
	d time.Duration
}

func (r *slowLogReporter) Logs(string, int) LogStream { return slowLogs{r.d} }

// The end of an attempt is decided when the runtime returns: a task that
// exited 0 is not reported timed out or shut down because the timeout or
// the grace period ran out while its logs were being stored.
func TestEndIsDecidedWhenTheRuntimeReturns(t *testing.T) {
	tests := []struct {
		name    string
		timeout int // the job's timeoutSeconds
		grace   time.Duration
		// after is done once the runtime returned, while the logs are
		// stored; shutdown cancels Run's ctx.
		after func(w *Worker, shutdown func())
	}{
		{"timeout", 1, time.Minute, func(*Worker, func()) {}},
		{"grace over", 0, 500 * time.Millisecond, func(_ *Worker, shutdown func()) { shutdown() }},
		{"stop", 0, time.Minute, func(w *Worker, _ func()) { w.Cancel("r1", "Stopped by user") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rep := &slowLogReporter{d: 30 * time.Second}
				j := job("r1")
				j.Spec.TimeoutSeconds = tt.timeout
				ran := make(chan struct{})
				rt := fakeRuntime(func(context.Context, *Task) (*Result, error) {
					close(ran)
					return exited(0), nil
				})
				src := &fakeSource{leases: make(chan *fakeLease, 1)}
				w := New("w1", "default", src, rt, rep, WithGracePeriod(tt.grace))
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- w.Run(ctx) }()
				lease := &fakeLease{job: j, delivered: 1, acked: make(chan struct{})}
				src.leases <- lease
				<-ran
				synctest.Wait() // the worker stores the logs
				tt.after(w, cancel)
				<-lease.acked
				cancel()
				<-done
				if ev := rep.last(); ev.Status != jobs.StatusSucceeded {
					t.Fatalf("the container exited 0 before anything stopped it; reported %s %s %q", ev.Status, ev.StopCode, ev.StoppedReason)
				}
			})
		})
	}
}

// setupRuntime takes setupFor in its setup steps, reporting them, then
// starts the task and runs it until ctx ends. Stopped before its
// container started, it returns what worker/docker does: no exit codes.
type setupRuntime struct {
	steps    []SetupStep
	pull     bool // a pull goes on during the first step
	setupFor time.Duration
	// untilStopped makes the setup last until ctx ends.
	untilStopped bool
	// stoppedDuringSetup is closed if ctx ended before the task started.
	stoppedDuringSetup chan struct{}
}

func (r *setupRuntime) Run(ctx context.Context, t *Task, _ LogSink) (*Result, error) {
	for i, s := range r.steps {
		if t.Setup != nil {
			t.Setup(s)
		}
		if i == 0 && r.pull {
			t.Pulling(jobs.PullProgress{Image: "img"})
		}
	}
	select {
	case <-time.After(r.setupFor):
	case <-ctx.Done():
	}
	if r.untilStopped {
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		close(r.stoppedDuringSetup)
		return &Result{Containers: []jobs.ContainerResult{
			{Name: "main", Reason: "Stopped before start: " + context.Cause(ctx).Error()}}}, nil
	}
	t.Started([]jobs.ContainerResult{{Name: "main"}})
	<-ctx.Done()
	return &Result{Containers: []jobs.ContainerResult{{Name: "main", ExitCode: intp(143), Reason: StoppedPrefix + context.Cause(ctx).Error()}}}, nil
}

// An attempt's timeout counts from when its container starts, as AWS
// Batch's attemptDurationSeconds does: a create that takes longer than
// the timeout does not time the attempt out, the run after it does.
func TestTimeoutCountsFromTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := job("r1")
		j.Spec.TimeoutSeconds = 2
		rt := &setupRuntime{steps: []SetupStep{SetupImages, SetupCreating}, setupFor: 5 * time.Second, // within runOne's 10s
			stoppedDuringSetup: make(chan struct{})}
		rep := &fakeReporter{}
		ev := runOne(t, j, 1, rt, rep, nil)
		select {
		case <-rt.stoppedDuringSetup:
			t.Fatal("the attempt's timeout fired while its container was being created")
		default:
		}
		if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopTimeout ||
			ev.StoppedReason != "Task timed out: attempt ran longer than timeoutSeconds=2" || ev.ExitCode == nil || *ev.ExitCode != 143 {
			t.Fatalf("final event %+v", ev)
		}
		var running *jobs.Event
		for i := range rep.events {
			if rep.events[i].Status == jobs.StatusRunning {
				running = &rep.events[i]
			}
		}
		if running == nil {
			t.Fatalf("no RUNNING event: %+v", rep.events)
		}
		if ran := ev.Time.Sub(running.Time); ran != 2*time.Second {
			t.Fatalf("the attempt ran %s after it started, want its timeout of 2s", ran)
		}
	})
}

// A run's deadline bounds its attempt from the first, pulls and create
// included; one that passes before the container started is recorded as
// such: no exit code, no RUNNING (so no start time), and a reason that
// says what the attempt was doing.
func TestDeadlineBeforeTheContainerStarted(t *testing.T) {
	tests := []struct {
		name  string
		steps []SetupStep
		pull  bool
		want  string
	}{
		{"getting the image", []SetupStep{SetupImages}, false, "getting its image"},
		{"pulling", []SetupStep{SetupImages}, true, "pulling its image img"},
		{"creating", []SetupStep{SetupImages, SetupCreating}, false, "creating it"},
		{"starting", []SetupStep{SetupImages, SetupCreating, SetupStarting}, false, "starting it"},
		{"no step told", nil, false, "preparing it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				j := job("r1")
				j.Spec.TimeoutSeconds = 1                   // not armed: nothing started
				deadline := time.Now().Add(5 * time.Second) // within runOne's 10s
				j.Spec.ActiveDeadlineSeconds, j.Spec.Deadline = 5, &deadline
				rt := &setupRuntime{steps: tt.steps, pull: tt.pull, untilStopped: true, stoppedDuringSetup: make(chan struct{})}
				rep := &fakeReporter{}
				ev := runOne(t, j, 1, rt, rep, nil)
				want := "Task timed out: run went past activeDeadlineSeconds=5 before its container started (" + tt.want + ")"
				if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopTimeout || ev.StoppedReason != want || ev.ExitCode != nil {
					t.Fatalf("final event %+v\nwant reason %q and no exit code", ev, want)
				}
				if len(ev.Containers) != 1 || ev.Containers[0].ExitCode != nil {
					t.Fatalf("containers %+v", ev.Containers)
				}
				for _, e := range rep.events {
					if e.Status == jobs.StatusRunning {
						t.Fatalf("RUNNING reported for a container that never started: %+v", rep.events)
					}
				}
			})
		})
	}
}
