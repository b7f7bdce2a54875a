package worker

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// queuedClaims is memClaims that also says which job messages are still
// queued (JobQueue) and which runs ended (RunEnds), and counts the claims
// written.
type queuedClaims struct {
	memClaims
	qmu    sync.Mutex
	queued map[uint64]bool
	ended  map[string]bool
	err    error // of JobQueued
	endErr error // of RunEnded
	puts   int
}

func newQueuedClaims(queued ...uint64) *queuedClaims {
	c := &queuedClaims{memClaims: memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}, queued: map[uint64]bool{}}
	for _, s := range queued {
		c.queued[s] = true
	}
	return c
}

func (c *queuedClaims) PutClaim(ctx context.Context, id string, data []byte, rev uint64) (uint64, error) {
	c.qmu.Lock()
	c.puts++
	c.qmu.Unlock()
	return c.memClaims.PutClaim(ctx, id, data, rev)
}

func (c *queuedClaims) JobQueued(_ context.Context, seq uint64) (bool, error) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.queued[seq], c.err
}

func (c *queuedClaims) RunEnded(_ context.Context, runID string) (bool, error) {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.ended[runID], c.endErr
}

func (c *queuedClaims) store(t *testing.T, id string, cl claim) {
	t.Helper()
	data, _ := json.Marshal(cl)
	c.data[id], c.rev[id] = data, 1
}

// deliverOnce hands worker w1 one delivery of j with stream sequence seq
// and returns the events it reported and the attempt its runtime ran (0:
// none) once the delivery is acked or handed back.
func deliverOnce(t *testing.T, j jobs.Job, seq uint64, ackErr error, cl Claims) (evs []jobs.Event, ran int, src *queueSource) {
	t.Helper()
	rep := &fakeReporter{}
	var mu sync.Mutex
	rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
		mu.Lock()
		ran = task.Attempt
		mu.Unlock()
		return exited(0), nil
	})
	src = &queueSource{leases: make(chan *queueLease, 1)}
	w := New("w1", "default", src, rt, rep, WithClaims(cl))
	runLease(w, src, &queueLease{src: src, job: j, acked: make(chan struct{}), seq: seq, ackErr: ackErr})
	rep.mu.Lock()
	defer rep.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	return append([]jobs.Event(nil), rep.events...), ran, src
}

// An attempt whose job the queue confirms acknowledged leaves its claim as
// it was written: one claim write per run, not two.
func TestAckedJobNeedsNoDoneMark(t *testing.T) {
	cl := newQueuedClaims(7)
	evs, ran, _ := deliverOnce(t, job("r"), 7, nil, cl)
	if ran != 1 || evs[len(evs)-1].Status != jobs.StatusSucceeded {
		t.Fatalf("ran attempt %d, events %+v", ran, evs)
	}
	if c := cl.get("r"); c.Done || c.Attempt != 1 || c.Seq != 7 || c.Worker != "w1" {
		t.Fatalf("claim after the run: %+v, want attempt 1 of job 7, not marked done", c)
	}
	if cl.puts != 1 {
		t.Fatalf("%d claim writes, want 1", cl.puts)
	}
}

// A failed ack leaves the job queued, to be handed out again: the claim is
// marked done so that the redelivery is only acknowledged.
func TestFailedAckMarksClaimDone(t *testing.T) {
	cl := newQueuedClaims(7)
	deliverOnce(t, job("r"), 7, errors.New("nats: timeout"), cl)
	if c := cl.get("r"); !c.Done || c.Attempt != 1 || c.Seq != 7 {
		t.Fatalf("claim after a failed ack: %+v, want attempt 1 done", c)
	}
	evs, ran, _ := deliverOnce(t, job("r"), 7, nil, cl)
	if ran != 0 || len(evs) != 0 {
		t.Fatalf("the redelivery ran attempt %d and reported %+v, want it only acknowledged", ran, evs)
	}
}

// A delivery that finds another worker's claim of the same attempt, not
// marked done, asks the queue about that claim's job: gone means its
// worker acknowledged it after the end was stored (a late delivery); still
// queued means the worker was lost, and this delivery runs the next attempt.
func TestRedeliveryAsksTheQueue(t *testing.T) {
	tests := []struct {
		name     string
		queued   []uint64
		runEnded bool
		seq      uint64 // of the delivery; the claim names 7
		wantRun  int
		wantLost bool
	}{
		{"job acknowledged by its worker", nil, false, 7, 0, false},
		{"job still queued: worker lost", []uint64{7}, false, 7, 2, true},
		{"job still queued but the run ended: its worker went after storing the end, before the ack", []uint64{7}, true, 7, 0, false},
		{"another message of the job while the claimed one is queued: a duplicate", []uint64{7, 9}, false, 9, 0, false},
		{"another message of the job once the claimed one is acknowledged", []uint64{9}, false, 9, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newQueuedClaims(tt.queued...)
			cl.ended = map[string]bool{"r": tt.runEnded}
			cl.store(t, "r", claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7})
			evs, ran, src := deliverOnce(t, job("r"), tt.seq, nil, cl)
			if ran != tt.wantRun {
				t.Fatalf("ran attempt %d, want %d (events %+v)", ran, tt.wantRun, evs)
			}
			if n := src.nakCount(); n != 0 {
				t.Fatalf("delivery handed back %d times, want acknowledged", n)
			}
			lost := len(evs) > 0 && evs[0].StopCode == jobs.StopWorkerLost && evs[0].Attempt == 1 && evs[0].Worker == "w0"
			if lost != tt.wantLost || (!tt.wantLost && len(evs) != 0) {
				t.Fatalf("events %+v, want lost %v", evs, tt.wantLost)
			}
		})
	}
	t.Run("old claim without a sequence", func(t *testing.T) {
		// Written by an older worker, which marks claims done: not done is lost.
		cl := newQueuedClaims()
		cl.store(t, "r", claim{Attempt: 1, Worker: "w0", Job: 1})
		if _, ran, _ := deliverOnce(t, job("r"), 7, nil, cl); ran != 2 {
			t.Fatalf("ran attempt %d, want 2", ran)
		}
	})
}

// When the queue cannot say whether the other claim's job is queued, the
// delivery is handed back rather than guessed at.
func TestRedeliveryHandedBackWhenTheQueueDoesNotAnswer(t *testing.T) {
	t.Run("is the job queued", func(t *testing.T) {
		cl := newQueuedClaims()
		cl.err = errors.New("nats: timeout")
		handedBack(t, cl)
	})
	t.Run("has the run ended", func(t *testing.T) {
		cl := newQueuedClaims(7)
		cl.endErr = errors.New("nats: timeout")
		handedBack(t, cl)
	})
}

// handedBack checks that a delivery of run r's job, whose claim (attempt 1
// by w0, job sequence 7) cl cannot decide, is handed back unrun.
func handedBack(t *testing.T, cl *queuedClaims) {
	t.Helper()
	cl.store(t, "r", claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7})
	rt := fakeRuntime(func(context.Context, *Task) (*Result, error) {
		t.Error("ran a job whose claim could not be decided")
		return exited(0), nil
	})
	src := &queueSource{leases: make(chan *queueLease, 1)}
	w := New("w1", "default", src, rt, &fakeReporter{}, WithClaims(cl))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	src.leases <- &queueLease{src: src, job: job("r"), acked: make(chan struct{}), seq: 7}
	for src.nakCount() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}

// A job message handed out again while the worker of its claim still runs
// it (a NATS server killed with SIGKILL comes back without the consumer's
// latest deliveries) is left to that worker: neither run, nor reported,
// acknowledged or handed back. Taken for lost, its next attempt ran beside
// the live one, or after the run's end (seen in the chaos test: attempt 1
// ended SUCCEEDED on a live worker while another ran attempt 2). A worker
// restarted since its claim, silent, no longer listing the run, missing
// from the fleet, or a fleet that cannot be read: lost, as before.
func TestRedeliveryWhileItsWorkerRunsIt(t *testing.T) {
	now := time.Now().UTC()
	claimed := now.Add(-3 * time.Second)
	w0 := func(started, beat time.Time, runs ...string) jobs.WorkerInfo {
		return jobs.WorkerInfo{ID: "w0", Cluster: "default", StartedAt: started, LastHeartbeat: beat, Runs: runs}
	}
	tests := []struct {
		name     string
		fleet    []jobs.WorkerInfo
		err      error
		wantLost bool
	}{
		{"beating since its claim, listing the run", []jobs.WorkerInfo{w0(now.Add(-time.Minute), now.Add(-time.Second), "q", "r")}, nil, false},
		{"beating, not since its claim", []jobs.WorkerInfo{w0(now.Add(-time.Minute), claimed.Add(-time.Second))}, nil, false},
		{"restarted since its claim", []jobs.WorkerInfo{w0(claimed.Add(time.Second), now.Add(-time.Second))}, nil, true},
		{"silent for more than two heartbeats", []jobs.WorkerInfo{w0(now.Add(-time.Minute), now.Add(-11*time.Second), "r")}, nil, true},
		{"beating since its claim without the run", []jobs.WorkerInfo{w0(now.Add(-time.Minute), now.Add(-time.Second), "q")}, nil, true},
		{"not in the fleet", []jobs.WorkerInfo{{ID: "w2", StartedAt: now.Add(-time.Minute), LastHeartbeat: now, Runs: []string{"r"}}}, nil, true},
		{"fleet unreadable", nil, errors.New("nats: timeout"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newQueuedClaims(7)
			cl.store(t, "r", claim{Attempt: 1, Worker: "w0", Job: 1, Seq: 7, Time: claimed})
			fleet := &fleetPresence{}
			fleet.set(tt.err, tt.fleet...)
			rep := &fakeReporter{}
			var mu sync.Mutex
			ran := 0
			rt := fakeRuntime(func(ctx context.Context, task *Task) (*Result, error) {
				mu.Lock()
				ran = task.Attempt
				mu.Unlock()
				return exited(0), nil
			})
			src := &queueSource{leases: make(chan *queueLease, 1)}
			w := New("w1", "default", src, rt, rep, WithClaims(cl), WithPresence(fleet, 5*time.Second))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			l := &queueLease{src: src, job: job("r"), acked: make(chan struct{}), seq: 7}
			src.leases <- l
			acked := false
			if tt.wantLost {
				select {
				case <-l.acked:
					acked = true
				case <-time.After(30 * time.Second):
					t.Fatal("the delivery was not acknowledged after its attempt")
				}
			} else {
				// Decided once the fleet was read and the delivery let go
				// (or, wrongly, once it was run and acknowledged).
				waitFor(t, func() bool {
					fleet.mu.Lock()
					read := fleet.lists > 0
					fleet.mu.Unlock()
					select {
					case <-l.acked:
						return true
					default:
						return read && len(w.Running()) == 0
					}
				})
				select {
				case <-l.acked:
					acked = true
				default:
				}
			}
			cancel()
			<-done
			rep.mu.Lock()
			evs := append([]jobs.Event(nil), rep.events...)
			rep.mu.Unlock()
			mu.Lock()
			defer mu.Unlock()
			if tt.wantLost {
				if ran != 2 || len(evs) == 0 || evs[0].StopCode != jobs.StopWorkerLost || evs[0].Attempt != 1 || evs[0].Worker != "w0" {
					t.Fatalf("ran attempt %d, events %+v; want attempt 2, after reporting w0's attempt 1 lost", ran, evs)
				}
				return
			}
			if ran != 0 || len(evs) != 0 || acked || src.nakCount() != 0 {
				t.Fatalf("ran attempt %d, events %+v, acknowledged %v, handed back %d times; want the delivery left alone", ran, evs, acked, src.nakCount())
			}
			if c := cl.get("r"); c.Attempt != 1 || c.Worker != "w0" {
				t.Fatalf("claim %+v, want w0's attempt 1 as it was", c)
			}
		})
	}
}
