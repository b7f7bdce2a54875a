package worker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// queueSource hands out leases from a channel; a nak puts the lease back.
type queueSource struct {
	leases chan *queueLease
	mu     sync.Mutex
	naks   []time.Duration
}

func (s *queueSource) Next(ctx context.Context) (Lease, error) {
	select {
	case l := <-s.leases:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *queueSource) nakCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.naks)
}

type queueLease struct {
	src    *queueSource
	job    jobs.Job
	acked  chan struct{}
	seq    uint64    // the job message's stream sequence, 0: unknown
	ackErr error     // what Ack returns
	stored time.Time // when the job was queued; zero: unknown
}

func (l *queueLease) Job() jobs.Job                 { return l.job }
func (l *queueLease) Delivered() uint64             { return 1 }
func (l *queueLease) Seq() uint64                   { return l.seq }
func (l *queueLease) Stored() time.Time             { return l.stored }
func (l *queueLease) InProgress() error             { return nil }
func (l *queueLease) Ack(ctx context.Context) error { close(l.acked); return l.ackErr }
func (l *queueLease) Nak(d time.Duration) error {
	l.src.mu.Lock()
	l.src.naks = append(l.src.naks, d)
	l.src.mu.Unlock()
	go func() { l.src.leases <- l }()
	return nil
}

func sized(id string, memory int) jobs.Job {
	j := job(id)
	j.Spec.Task.ContainerDefinitions[0].Memory = memory
	return j
}

func TestPlace(t *testing.T) {
	capa := jobs.Resources{CPU: 2048, Memory: 512, Slots: 4}
	tests := []struct {
		name        string
		inUse, need jobs.Resources
		want        verdict
	}{
		{"empty worker", jobs.Resources{}, jobs.Resources{Memory: 400, Slots: 1}, fits},
		{"memory taken", jobs.Resources{Memory: 400, Slots: 1}, jobs.Resources{Memory: 400, Slots: 1}, fitsLater},
		{"slots taken", jobs.Resources{Slots: 4}, jobs.Resources{Slots: 1}, fitsLater},
		{"cpu taken", jobs.Resources{CPU: 2000, Slots: 1}, jobs.Resources{CPU: 100, Slots: 1}, fitsLater},
		{"more memory than the worker has", jobs.Resources{}, jobs.Resources{Memory: 32000, Slots: 1}, fitsNever},
		{"more cpu than the worker has", jobs.Resources{}, jobs.Resources{CPU: 4096, Slots: 1}, fitsNever},
		{"no size", jobs.Resources{Memory: 512, Slots: 1}, jobs.Resources{Slots: 1}, fits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := place(capa, tt.inUse, tt.need); got != tt.want {
				t.Fatalf("place = %d, want %d", got, tt.want)
			}
		})
	}
	if got := place(jobs.Resources{Slots: 1}, jobs.Resources{}, jobs.Resources{Memory: 1 << 20, Slots: 1}); got != fits {
		t.Fatalf("unbounded memory: %d", got)
	}
}

func TestWorkerRunsOnlyWhatFits(t *testing.T) {
	src := &queueSource{leases: make(chan *queueLease, 10)}
	var (
		mu            sync.Mutex
		running, most int
		release       = make(chan struct{})
		started       = make(chan string, 2)
	)
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		started <- task.RunID
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return exited(0), nil
	})
	w := New("w1", "default", src, rt, &fakeReporter{}, WithCapacity(0, 512), WithSlots(4), WithNakDelays(time.Second, 5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	a := &queueLease{src: src, job: sized("a", 400), acked: make(chan struct{})}
	b := &queueLease{src: src, job: sized("b", 400), acked: make(chan struct{})}
	big := &queueLease{src: src, job: sized("big", 32000), acked: make(chan struct{})}
	src.leases <- a
	first := <-started
	src.leases <- b
	src.leases <- big
	for src.nakCount() < 4 { // b and big go back while the first runs
		time.Sleep(time.Millisecond)
	}
	if info := w.Info(); info.InUse.Memory != 400 || info.InUse.Slots != 1 || len(info.Runs) != 1 || info.Runs[0] != first {
		t.Fatalf("info while %s runs: %+v", first, info)
	}
	release <- struct{}{}
	second := <-started
	release <- struct{}{}
	<-a.acked
	<-b.acked
	cancel()
	<-done
	if first == second || most != 1 {
		t.Fatalf("ran %s then %s, %d at once; want a and b one at a time", first, second, most)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	sawNever := false
	for _, d := range src.naks {
		sawNever = sawNever || d == 5*time.Second
	}
	if !sawNever {
		t.Fatalf("the 32000 MiB job was never handed back with the longer delay: %v", src.naks[:min(10, len(src.naks))])
	}
}

func TestDrainTakesNothingNew(t *testing.T) {
	src := &queueSource{leases: make(chan *queueLease, 10)}
	ran := make(chan string, 1)
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) { ran <- task.RunID; return exited(0), nil })
	w := New("w1", "default", src, rt, &fakeReporter{})
	w.Drain(true)
	if st := w.Info().State; st != jobs.WorkerDraining {
		t.Fatalf("state %s", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	l := &queueLease{src: src, job: job("a"), acked: make(chan struct{})}
	src.leases <- l
	select {
	case id := <-ran:
		t.Fatalf("draining worker ran %s", id)
	case <-time.After(50 * time.Millisecond):
	}
	w.Drain(false)
	<-l.acked
	cancel()
	<-done
}

// memClaims is a claim store in memory.
type memClaims struct {
	mu   sync.Mutex
	data map[string][]byte
	rev  map[string]uint64
}

func (m *memClaims) Claim(_ context.Context, id string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[id], m.rev[id], nil
}

func (m *memClaims) PutClaim(_ context.Context, id string, data []byte, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rev[id] != rev {
		return 0, ErrClaimConflict
	}
	m.data[id], m.rev[id] = data, rev+1
	return rev + 1, nil
}

func (m *memClaims) get(id string) claim {
	m.mu.Lock()
	defer m.mu.Unlock()
	var c claim
	json.Unmarshal(m.data[id], &c)
	return c
}

func TestRedeliveryOfLostAttemptRunsTheNext(t *testing.T) {
	tests := []struct {
		name       string
		stored     *claim
		jobAttempt int
		wantLost   bool
		wantRun    int // attempt run, 0 for none
		giveUp     bool
	}{
		{"first delivery", nil, 1, false, 1, false},
		{"retry published by the server", &claim{Attempt: 1, Worker: "w0", Done: true}, 2, false, 2, false},
		{"worker lost", &claim{Attempt: 1, Worker: "w0"}, 1, true, 2, false},
		{"lost twice", &claim{Attempt: 2, Worker: "w0", Losses: 1}, 1, true, 3, false},
		{"late redelivery of a finished attempt", &claim{Attempt: 2, Worker: "w0", Done: true}, 1, false, 0, false},
		{"late redelivery of a job the server replaced", &claim{Attempt: 2, Worker: "w0", Job: 2}, 1, false, 0, false},
		{"too many losses", &claim{Attempt: 6, Worker: "w0", Losses: MaxLosses}, 1, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
			if tt.stored != nil {
				data, _ := json.Marshal(tt.stored)
				cl.data["r"], cl.rev["r"] = data, 1
			}
			rep := &fakeReporter{}
			ran := 0
			rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) { ran = task.Attempt; return exited(0), nil })
			src := &queueSource{leases: make(chan *queueLease, 1)}
			w := New("w1", "default", src, rt, rep, WithClaims(cl))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			j := job("r")
			j.Attempt = tt.jobAttempt
			l := &queueLease{src: src, job: j, acked: make(chan struct{})}
			src.leases <- l
			<-l.acked
			cancel()
			<-done
			if ran != tt.wantRun {
				t.Fatalf("ran attempt %d, want %d", ran, tt.wantRun)
			}
			rep.mu.Lock()
			evs := append([]jobs.Event(nil), rep.events...)
			rep.mu.Unlock()
			if tt.wantLost {
				if len(evs) == 0 || evs[0].StopCode != jobs.StopWorkerLost || evs[0].Attempt != tt.stored.Attempt ||
					evs[0].Worker != "w0" || evs[0].Seq != lostSeq || evs[0].Redelivered == tt.giveUp {
					t.Fatalf("first event %+v, want WorkerLost of attempt %d", evs, tt.stored.Attempt)
				}
				evs = evs[1:]
			}
			for i, ev := range evs {
				if ev.Attempt != tt.wantRun || ev.Seq != i+1 {
					t.Fatalf("event %d: attempt %d seq %d, want attempt %d seq %d", i, ev.Attempt, ev.Seq, tt.wantRun, i+1)
				}
			}
			if c := cl.get("r"); tt.wantRun > 0 && (!c.Done || c.Attempt != tt.wantRun || c.Worker != "w1") {
				t.Fatalf("claim after the run: %+v", c)
			}
		})
	}
}

func TestDeadlinePassedBeforeStart(t *testing.T) {
	past := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	j := job("r")
	j.Spec.ActiveDeadlineSeconds, j.Spec.Deadline = 60, &past
	rep := &fakeReporter{}
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
		t.Error("ran a run past its deadline")
		return exited(0), nil
	})
	ev := runOne(t, j, 1, rt, rep, nil)
	if ev.Status != jobs.StatusFailed || ev.StopCode != jobs.StopTimeout {
		t.Fatalf("event %+v", ev)
	}
}

func TestDockerSocketRefused(t *testing.T) {
	for _, p := range []string{"/var/run/docker.sock", "/var/run", "/run", "/", "/var/run/../run/docker.sock"} {
		def := jobs.TaskDefinition{Volumes: []jobs.Volume{{Name: "v", Host: &jobs.HostVolume{SourcePath: p}}}}
		if err := refuseDockerSocket(&def); err == nil {
			t.Errorf("%s: not refused", p)
		}
	}
	def := jobs.TaskDefinition{Volumes: []jobs.Volume{{Name: "v", Host: &jobs.HostVolume{SourcePath: "/srv/data"}}}}
	if err := refuseDockerSocket(&def); err != nil {
		t.Errorf("/srv/data: %v", err)
	}
}

func TestReconcileReportsFinishedAndStopsRunning(t *testing.T) {
	code := 3
	lo := &fakeLeftovers{found: []Leftover{
		{RunID: "done", Attempt: 1, Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code}}},
		{RunID: "live", Attempt: 2, Running: true, Containers: []jobs.ContainerResult{{Name: "main"}}},
		// A stage's attempt that exited 0: its outputs were never stored.
		{RunID: "stage", Attempt: 1, Staged: true, Containers: []jobs.ContainerResult{{Name: "main", ExitCode: new(int)}}},
		// One that failed stores none: it is reported as it ended.
		{RunID: "stage-failed", Attempt: 1, Staged: true, Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code}}},
	}}
	rep := &fakeReporter{}
	w := New("w1", "default", nil, nil, rep, WithLeftovers(lo))
	if err := w.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rep.events) != 2 || rep.events[0].RunID != "done" || rep.events[0].Status != jobs.StatusFailed ||
		*rep.events[0].ExitCode != 3 || rep.events[0].Seq != reconcileSeq || rep.events[1].RunID != "stage-failed" {
		t.Fatalf("events %+v", rep.events)
	}
	if len(lo.removed) != 4 {
		t.Fatalf("removed %v, want all four", lo.removed)
	}
}

// TestReconcileLeavesAHandedBackClaim: the containers of an attempt the
// worker handed back before it was killed (stopped by its shutdown, the
// claim marked handed back, then a second signal) are removed, but the
// claim is not marked done: its job is to run the next attempt. Marked
// done, the job's next delivery was acknowledged as stale and the run
// waited QUEUED until the server published the job again.
func TestReconcileLeavesAHandedBackClaim(t *testing.T) {
	ctx := context.Background()
	code := 143
	cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
	data, _ := json.Marshal(claim{Attempt: 1, Worker: "w1", Seq: 7, HandedBack: true})
	if _, err := cl.PutClaim(ctx, "r", data, 0); err != nil {
		t.Fatal(err)
	}
	lo := &fakeLeftovers{found: []Leftover{{RunID: "r", Attempt: 1,
		Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code, Reason: StoppedPrefix + "shutdown"}}}}}
	w := New("w1", "default", nil, nil, &fakeReporter{}, WithLeftovers(lo), WithClaims(cl))
	if err := w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if c := cl.get("r"); c.Done || !c.HandedBack {
		t.Fatalf("claim after reconcile: %+v, want it still handed back, not done", c)
	}
	if len(lo.removed) != 1 {
		t.Fatalf("removed %v", lo.removed)
	}
}

// TestReconcileSweepsStageDirs: the attempt directories a killed worker
// left are removed once its containers are, those of another worker on
// the host are not.
func TestReconcileSweepsStageDirs(t *testing.T) {
	base := t.TempDir()
	mine := filepath.Join(base, "w1", "r1-1-123", "out")
	theirs := filepath.Join(base, "w2", "r2-1-456", "out")
	for _, d := range []string{mine, theirs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "part.csv"), []byte("x\n"), 0o644)
	}
	lo := &fakeLeftovers{found: []Leftover{{RunID: "r1", Attempt: 1, Running: true, Staged: true}}}
	w := New("w1", "default", nil, nil, &fakeReporter{}, WithLeftovers(lo), WithStager(&memStager{}, base))
	if err := w.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.bg.Wait()
	if _, err := os.Stat(filepath.Join(base, "w1", "r1-1-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("this worker's leftover stage directory: %v, want it removed", err)
	}
	if _, err := os.Stat(filepath.Join(theirs, "part.csv")); err != nil {
		t.Errorf("another worker's stage directory: %v, want it kept", err)
	}
	// A new attempt's directory sits under the worker's own.
	job := jobs.Job{RunID: "r3", Attempt: 1, Spec: jobs.RunSpec{Stage: &jobs.StageContext{PipelineRunID: "pr", Stage: "s"}}}
	st, err := w.stageIn(context.Background(), job, &Task{})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(st.dir) != filepath.Join(base, "w1") {
		t.Errorf("attempt directory %s, want it under %s", st.dir, filepath.Join(base, "w1"))
	}
	st.remove()

	// A worker that stops removes its directory once empty.
	w = New("w1", "default", &fakeSource{leases: make(chan *fakeLease)}, fakeRuntime(nil), &fakeReporter{},
		WithStager(&memStager{}, base))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Run(ctx)
	if _, err := os.Stat(filepath.Join(base, "w1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stopped worker's stage directory: %v, want it removed", err)
	}
}

type fakeLeftovers struct {
	found   []Leftover
	removed []string
}

func (f *fakeLeftovers) Leftovers(context.Context) ([]Leftover, error) { return f.found, nil }
func (f *fakeLeftovers) RemoveLeftover(_ context.Context, l Leftover) error {
	f.removed = append(f.removed, l.RunID)
	return nil
}

// countingPresence records when the worker beats.
type countingPresence struct {
	mu    sync.Mutex
	beats []time.Time
	left  bool
}

func (p *countingPresence) Beat(context.Context, jobs.WorkerInfo) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.beats = append(p.beats, time.Now())
	return nil
}

func (p *countingPresence) Leave(ctx context.Context, _ string) error {
	if err := ctx.Err(); err != nil {
		return err // as a real request would
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.left = true
	return nil
}

// TestWorkerLeavesAfterItsLifeEnded: when the grace period ran out, the
// worker's life (the heartbeat's context) ends before the heartbeat stops;
// the worker still leaves the list, rather than stay listed ACTIVE with
// its old runs until its presence expires.
func TestWorkerLeavesAfterItsLifeEnded(t *testing.T) {
	p := &countingPresence{}
	w := New("w1", "default", &fakeSource{leases: make(chan *fakeLease)}, fakeRuntime(nil), &fakeReporter{},
		WithPresence(p, time.Hour))
	life, end := context.WithCancel(context.Background())
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); w.heartbeat(life, stop) }()
	end()
	close(stop)
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.left {
		t.Fatal("the worker did not leave the list once its life had ended")
	}
}

// TestHeartbeatsTellChangesAtMostEveryGap: a worker whose jobs start and
// end in a burst beats for the changes at most once per beatGap, still
// beats for the last change, and leaves when it stops.
func TestHeartbeatsTellChangesAtMostEveryGap(t *testing.T) {
	p := &countingPresence{}
	w := New("w1", "default", &fakeSource{leases: make(chan *fakeLease)}, fakeRuntime(nil), &fakeReporter{},
		WithPresence(p, time.Hour))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); w.heartbeat(context.Background(), stop) }()
	start := time.Now()
	for time.Since(start) < 600*time.Millisecond { // a change every millisecond
		w.fl.notify()
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * beatGap) // the last change's beat
	close(stop)
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.beats); n < 2 || n > 5 {
		t.Fatalf("%d beats for 600 ms of changes, want the first and about one per %s", n, beatGap)
	}
	for i := 1; i < len(p.beats); i++ {
		if gap := p.beats[i].Sub(p.beats[i-1]); gap < beatGap {
			t.Fatalf("beats %d and %d only %s apart", i-1, i, gap)
		}
	}
	if !p.left {
		t.Fatal("the worker did not leave the list when it stopped")
	}
}

// TestWorkerTakesOnlyWhatItsLabelsMeet: a job whose constraints the
// worker's labels do not meet goes back to the queue, soon at first (a
// worker with the labels may be next), after the longer delay once it has
// come back often (no live worker may have them); a job they meet runs.
func TestWorkerTakesOnlyWhatItsLabelsMeet(t *testing.T) {
	src := &queueSource{leases: make(chan *queueLease, 10)}
	ran := make(chan string, 2)
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) { ran <- task.RunID; return exited(0), nil })
	w := New("w1", "default", src, rt, &fakeReporter{}, WithHost("h", map[string]string{"disk": "ssd"}),
		WithNakDelays(time.Second, 5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	constrained := func(id string, cs ...string) *queueLease {
		j := job(id)
		for _, s := range cs {
			c, err := jobs.ParseConstraint(s)
			if err != nil {
				t.Fatal(err)
			}
			j.Spec.Constraints = append(j.Spec.Constraints, c)
		}
		return &queueLease{src: src, job: j, acked: make(chan struct{})}
	}
	src.leases <- constrained("hdd", "disk=hdd")
	for src.nakCount() < 3 {
		time.Sleep(time.Millisecond)
	}
	ok := constrained("ssd", "disk=ssd", "zone!=eu-1")
	src.leases <- ok
	if got := <-ran; got != "ssd" {
		t.Fatalf("ran %s", got)
	}
	<-ok.acked
	cancel()
	<-done
	select {
	case id := <-ran:
		t.Fatalf("ran %s too", id)
	default:
	}
	src.mu.Lock()
	for _, d := range src.naks {
		if d != time.Second {
			t.Errorf("a first delivery handed back after %s, want the short delay", d)
		}
	}
	src.mu.Unlock()
	if st := w.Stats(); st.HandedBack.Unmatched < 3 || st.HandedBack.TooLarge != 0 || st.HandedBack.Busy != 0 {
		t.Errorf("hand-backs %+v", st.HandedBack)
	}
	// Without a fleet to read, deliveries decide.
	j := constrained("x", "disk=hdd").job
	for delivered, want := range map[uint64]time.Duration{1: time.Second, quickUnmatched: time.Second,
		quickUnmatched + 1: 5 * time.Second, 1000: 5 * time.Second} {
		if got := w.unmatchedDelay(context.Background(), j, delivered); got != want {
			t.Errorf("delivery %d handed back after %s, want %s", delivered, got, want)
		}
	}
}

// fleetPresence is a Presence that lists a fleet, as queue.Queue's does.
type fleetPresence struct {
	countingPresence
	mu      sync.Mutex
	workers []jobs.WorkerInfo
	err     error
	lists   int
}

func (p *fleetPresence) Workers(context.Context) ([]jobs.WorkerInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lists++
	return p.workers, p.err
}

func (p *fleetPresence) set(err error, ws ...jobs.WorkerInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.workers, p.err = ws, err
}

// TestUnmatchedDelayReadsTheFleet: a job this worker's labels do not meet
// goes back soon, however often it came back, while another live worker
// of the cluster meets its constraints: at once nearly when that worker
// has a free slot, after the busy delay when it has none; after the long
// delay from the first delivery when no live, undrained worker of the
// cluster whose runtime answers meets them (another cluster's does not
// count), and always for a job aimed at this worker. The fleet is read at
// most every peersEvery; a failed read falls back to counting deliveries.
func TestUnmatchedDelayReadsTheFleet(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	p := &fleetPresence{}
	w := New("w1", "etl", &queueSource{}, fakeRuntime(nil), &fakeReporter{}, WithHost("h", map[string]string{"disk": "hdd"}),
		WithNakDelays(time.Second, 5*time.Second), WithPresence(p, time.Hour), WithClock(clock))
	ctx := context.Background()
	ssd := jobs.Job{RunID: "r1", Attempt: 1, Cluster: "etl", Spec: jobs.RunSpec{Constraints: jobs.Constraints{{Key: "disk", Value: "ssd"}}}}
	aimed := ssd
	aimed.Worker = "w1"
	worker := func(id, cluster, disk string, inUse int) jobs.WorkerInfo {
		return jobs.WorkerInfo{ID: id, Cluster: cluster, Labels: map[string]string{"disk": disk}, State: jobs.WorkerActive,
			Capacity: jobs.Resources{Slots: 2}, InUse: jobs.Resources{Slots: inUse}}
	}
	draining := worker("w4", "etl", "ssd", 0)
	draining.State = jobs.WorkerDraining
	broken := worker("w5", "etl", "ssd", 0)
	broken.RuntimeError = "docker: connection refused"
	for _, tt := range []struct {
		name      string
		fleet     []jobs.WorkerInfo
		err       error
		delivered uint64
		want      time.Duration
	}{
		{"taker with a free slot", []jobs.WorkerInfo{worker("w1", "etl", "hdd", 0), worker("w2", "etl", "ssd", 1)}, nil, 1000, takerFreeDelay},
		{"taker busy", []jobs.WorkerInfo{worker("w2", "etl", "ssd", 2)}, nil, 1000, time.Second},
		{"no taker", []jobs.WorkerInfo{worker("w1", "etl", "hdd", 0), worker("w3", "other", "ssd", 0), draining, broken}, nil, 1, 5 * time.Second},
		{"fleet unreadable, early delivery", nil, errors.New("nats: timeout"), 1, time.Second},
		{"fleet unreadable, late delivery", nil, errors.New("nats: timeout"), quickUnmatched + 1, 5 * time.Second},
	} {
		p.set(tt.err, tt.fleet...)
		now = now.Add(peersEvery)
		if got := w.unmatchedDelay(ctx, ssd, tt.delivered); got != tt.want {
			t.Errorf("%s: handed back after %s, want %s", tt.name, got, tt.want)
		}
	}
	// A job aimed at this worker is handed to no other: the long delay,
	// whoever meets its constraints.
	p.set(nil, worker("w2", "etl", "ssd", 0))
	if got := w.unmatchedDelay(ctx, aimed, 1); got != 5*time.Second {
		t.Errorf("a job aimed at w1 handed back after %s, want 5s", got)
	}
	// Read at most every peersEvery: a change seen only after it.
	p.set(nil, worker("w2", "etl", "ssd", 0))
	now = now.Add(peersEvery)
	before := p.lists
	if got := w.unmatchedDelay(ctx, ssd, 1); got != takerFreeDelay {
		t.Fatalf("handed back after %s", got)
	}
	p.set(nil)
	now = now.Add(peersEvery / 2)
	if got := w.unmatchedDelay(ctx, ssd, 1); got != takerFreeDelay || p.lists != before+1 {
		t.Errorf("within peersEvery: %s after %d reads, want %s after 1", got, p.lists-before, takerFreeDelay)
	}
	now = now.Add(peersEvery / 2)
	if got := w.unmatchedDelay(ctx, ssd, 1); got != 5*time.Second || p.lists != before+2 {
		t.Errorf("after peersEvery: %s after %d reads, want 5s after 2", got, p.lists-before)
	}
}
