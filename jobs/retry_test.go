package jobs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"2", "2", true}, {"2", "20", false}, {"*", "", true}, {"1*", "137", true}, {"?3?", "137", true},
		{"Essential*", "Essential container in task exited", true}, {"*OutOfMemory*", "x: OutOfMemoryError: y", true},
		{"a*b*c", "a-b-b-c", true}, {"a*b*c", "a-b-b-", false}, {"Host*", "host down", false},
	}
	for _, tt := range tests {
		if got := Glob(tt.p, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v", tt.p, tt.s, got)
		}
	}
}

func TestShouldRetryFirstMatchWins(t *testing.T) {
	rs := &RetryStrategy{Attempts: 3, EvaluateOnExit: []EvaluateOnExit{
		{OnExitCode: "2", Action: "RETRY"},
		{OnExitCode: "1", Action: "EXIT"},
		{OnReason: "OutOfMemory*", Action: "exit"},
		{OnStatusReason: "Task timed out*", OnExitCode: "*", Action: "RETRY"},
	}}
	code := func(c int) *int { return &c }
	tests := []struct {
		name string
		a    Attempt
		want bool
	}{
		{"exit 2 retries", Attempt{ExitCode: code(2)}, true},
		{"exit 1 exits", Attempt{ExitCode: code(1)}, false},
		{"OOM exits", Attempt{ExitCode: code(137), Containers: []ContainerResult{{Name: "m", Reason: "OutOfMemoryError: killed"}}}, false},
		{"timeout retries", Attempt{ExitCode: code(143), StoppedReason: "Task timed out: x"}, true},
		{"no rule matches: retry", Attempt{ExitCode: code(9)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rs.ShouldRetry(&tt.a); got != tt.want {
				t.Fatalf("ShouldRetry = %v", got)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	b := &Backoff{InitialSeconds: 2, MaxSeconds: 10, Multiplier: 3}
	for n, want := range map[int]time.Duration{1: 2 * time.Second, 2: 6 * time.Second, 3: 10 * time.Second, 9: 10 * time.Second} {
		if lo, hi := b.Delay(n, 0), b.Delay(n, 0.999999); lo != want/2 || hi > want || hi < want-time.Millisecond {
			t.Errorf("retry %d: delay in [%s, %s], want [%s, %s]", n, lo, hi, want/2, want)
		}
	}
	if d := (*Backoff)(nil).Delay(1, 1); d != time.Second {
		t.Errorf("default first delay %s", d)
	}
	// Seconds past time.Duration's range (292 years) converted to a
	// negative delay: the retry came at once. Validation refuses them; a
	// strategy stored before waits the bound.
	huge := &Backoff{InitialSeconds: 1e12, MaxSeconds: 1e13}
	if d := huge.Delay(1, 0.5); d <= 0 || d > MaxDurationSeconds*time.Second {
		t.Errorf("delay of a huge backoff: %s", d)
	}
	err := (&RetryStrategy{Attempts: 2, Backoff: huge}).validate("retryStrategy.")
	if err == nil || !strings.Contains(err.Error(), "retryStrategy.backoff.initialSeconds: 1e+12: must be at most 1576800000") ||
		!strings.Contains(err.Error(), "retryStrategy.backoff.maxSeconds: 1e+13: must be at most") {
		t.Errorf("validation of a huge backoff: %v", err)
	}
}

func TestRetryWaitsForBackoffAndDeadline(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	code := 4
	newRun := func(deadline *time.Time) *Run {
		return &Run{RunID: "r", Status: StatusFailed, Spec: RunSpec{Deadline: deadline,
			RetryStrategy: &RetryStrategy{Attempts: 3, Backoff: &Backoff{InitialSeconds: 10}}},
			Attempts: []Attempt{{Attempt: 1, Status: StatusFailed, ExitCode: &code, StopCode: StopEssentialExited}}}
	}
	r := newRun(nil)
	if !r.Retry(now) {
		t.Fatal("no retry")
	}
	nb := r.Current().NotBefore
	if nb == nil || nb.Before(now.Add(5*time.Second)) || nb.After(now.Add(10*time.Second)) {
		t.Fatalf("notBefore %v, want within [now+5s, now+10s]", nb)
	}
	// The reason says the time is to come, with the backoff that sets it.
	delay := nb.Sub(now).Round(100 * time.Millisecond)
	want := fmt.Sprintf("retry 1 of 2 after attempt 1 failed (EssentialContainerExited): backoff %s, queued after %s",
		delay, nb.UTC().Format("2006-01-02T15:04:05.0Z07:00"))
	if r.StatusReason != want {
		t.Errorf("reason %q, want %q", r.StatusReason, want)
	}
	soon := now.Add(3 * time.Second)
	if r := newRun(&soon); r.Retry(now) {
		t.Fatal("retried past the deadline")
	}
}

func TestWorkerLostEventOpensRedeliveryAttempt(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &Run{RunID: "r", Status: StatusQueued, Attempts: []Attempt{{Attempt: 1, Status: StatusQueued}}}
	r.Apply(Event{Attempt: 1, Seq: 1, Status: StatusRunning, Worker: "w0", Time: t0})
	lost := Event{Attempt: 1, Seq: 1 << 30, Status: StatusFailed, StopCode: StopWorkerLost, Worker: "w0", Redelivered: true, Time: t0}
	if !r.Apply(lost) || r.Apply(lost) {
		t.Fatal("WorkerLost not applied once")
	}
	if r.Status != StatusQueued || len(r.Attempts) != 2 || !r.Attempts[1].Redelivery || r.Attempts[0].StopCode != StopWorkerLost {
		t.Fatalf("run %+v", r)
	}
	code := 0
	r.Apply(Event{Attempt: 2, Seq: 1, Status: StatusSucceeded, Worker: "w1", ExitCode: &code, Time: t0})
	if r.Status != StatusSucceeded || r.Tries() != 1 || r.Worker != "w1" {
		t.Fatalf("run %+v", r)
	}
}

func TestDemand(t *testing.T) {
	s := RunSpec{Task: TaskDefinition{ContainerDefinitions: []ContainerDefinition{{Name: "a", Memory: 300, CPU: 256},
		{Name: "b", MemoryReservation: 100}}}}
	if d := s.Demand(); d != (Resources{CPU: 256, Memory: 400, Slots: 1}) {
		t.Fatalf("demand %+v", d)
	}
	s.Task.CPU, s.Task.Memory = "1 vCPU", "2 GB"
	if d := s.Demand(); d != (Resources{CPU: 1024, Memory: 2048, Slots: 1}) {
		t.Fatalf("task-size demand %+v", d)
	}
}

// TestLostReportsThatNeverCameAreFilledIn: the chaos test's run. Worker
// w0 runs attempt 1; w1 takes the job over as attempt 2 and is killed
// before its report of attempt 1's loss is stored; w2 takes it over as
// attempt 3, reports attempt 2 lost and runs attempt 3 to its end. The
// run records attempts 1 and 2 lost and ends as attempt 3 did: before,
// every event of w2's was dropped as of an attempt the run did not have,
// and the run stayed RUNNING as attempt 1 forever.
func TestLostReportsThatNeverCameAreFilledIn(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 11, 29, 0, 0, time.UTC)
	r := &Run{RunID: "r", Status: StatusQueued, Attempts: []Attempt{{Attempt: 1, Status: StatusQueued}}}
	r.Apply(Event{Attempt: 1, Seq: 1, Status: StatusRunning, Worker: "w0", Source: SourceWorker, Time: t0})
	lost2 := Event{Attempt: 2, Seq: 1 << 30, Status: StatusFailed, StopCode: StopWorkerLost, Worker: "w1", Redelivered: true,
		Source: SourceWorker, Time: t0.Add(5 * time.Second), StoppedReason: "worker w1 stopped renewing the lease"}
	if !r.Apply(lost2) {
		t.Fatalf("the loss of attempt 2 changed nothing: %+v", r.Attempts)
	}
	if r.Status != StatusQueued || len(r.Attempts) != 3 || !r.Attempts[2].Redelivery {
		t.Fatalf("after attempt 2's loss: %s, attempts %+v", r.Status, r.Attempts)
	}
	for i, a := range r.Attempts[:2] {
		if a.Status != StatusFailed || a.StopCode != StopWorkerLost {
			t.Errorf("attempt %d %s %s, want FAILED WorkerLost", i+1, a.Status, a.StopCode)
		}
	}
	if a := r.Attempts[0]; a.Worker != "w0" || !strings.Contains(a.StoppedReason, "worker w0 was taken for lost") ||
		!strings.Contains(a.StoppedReason, "did not reach the server") {
		t.Errorf("attempt 1 filled in as %+v", a)
	}
	if a := r.Attempts[1]; a.Worker != "w1" || a.StoppedReason != lost2.StoppedReason {
		t.Errorf("attempt 2 %+v, want w1's loss as reported", a)
	}
	code := 0
	for _, e := range []Event{{Attempt: 3, Seq: 1, Status: StatusStarting}, {Attempt: 3, Seq: 2, Status: StatusRunning},
		{Attempt: 3, Seq: 3, Status: StatusSucceeded, ExitCode: &code}} {
		e.Worker, e.Source, e.Time = "w2", SourceWorker, t0.Add(6*time.Second)
		if !r.Apply(e) {
			t.Fatalf("attempt 3's %s changed nothing", e.Status)
		}
	}
	if r.Status != StatusSucceeded || r.Worker != "w2" || r.Tries() != 1 {
		t.Fatalf("run %s by %s after %d tries, want SUCCEEDED by w2 after 1", r.Status, r.Worker, r.Tries())
	}
	// The loss report that was thought lost comes after all: nothing changes.
	late := Event{Attempt: 1, Seq: 1 << 30, Status: StatusFailed, StopCode: StopWorkerLost, Worker: "w0", Redelivered: true, Source: SourceWorker, Time: t0}
	if r.Apply(late) {
		t.Errorf("the late loss report of attempt 1 changed the run: %+v", r.Attempts)
	}

	// Two losses in a row whose reports never came, the second worker's
	// start unreported too: the reasons say whose each was, as far as known.
	g := &Run{RunID: "g", Status: StatusRunning, Attempts: []Attempt{{Attempt: 1, Status: StatusRunning, Worker: "w0", Seq: 2}}}
	if !g.Apply(Event{Attempt: 3, Seq: 1, Status: StatusStarting, Worker: "w2", Source: SourceWorker, Time: t0}) {
		t.Fatalf("attempt 3's start two attempts past the run's last changed nothing: %+v", g.Attempts)
	}
	if len(g.Attempts) != 3 || g.Status != StatusStarting || g.Attempts[2].Worker != "w2" {
		t.Fatalf("run %s, attempts %+v", g.Status, g.Attempts)
	}
	if r0, r1 := g.Attempts[0].StoppedReason, g.Attempts[1].StoppedReason; !strings.HasPrefix(r0, "worker w0 was taken for lost") ||
		!strings.HasPrefix(r1, "its worker was taken for lost") {
		t.Errorf("reasons %q and %q", r0, r1)
	}

	// The server's own events never fill in: they follow what it stored.
	s := &Run{RunID: "s", Status: StatusRunning, Attempts: []Attempt{{Attempt: 1, Status: StatusRunning, Worker: "w0"}}}
	if s.Apply(Event{Attempt: 2, Seq: 1, Status: StatusRunning, Source: SourceServer, Time: t0}) || len(s.Attempts) != 1 {
		t.Errorf("a server event of an attempt the run does not have changed it: %+v", s.Attempts)
	}
	// Nor does a run that ended: the attempt after its last is recorded
	// after the end (lateAttempt), one past that is dropped.
	e := &Run{RunID: "e", Status: StatusSucceeded, Attempts: []Attempt{{Attempt: 1, Status: StatusSucceeded, Worker: "w0"}}}
	if e.Apply(Event{Attempt: 3, Seq: 1, Status: StatusRunning, Source: SourceWorker, Worker: "w2", Time: t0}) || len(e.Attempts) != 1 {
		t.Errorf("an ended run took an attempt two past its last: %+v", e.Attempts)
	}
}
