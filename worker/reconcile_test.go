package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gantry-dev/gantry/jobs"
)

// answeringClaims are claims in memory that can also answer a delivery by
// its ack subject (Deliveries); ack subjects are "ack.<seq>" here. What
// happens is written to steps, with the leftovers' removals and the
// worker's heartbeats.
type answeringClaims struct {
	*memClaims
	mu    sync.Mutex
	steps *[]string
}

func (a *answeringClaims) step(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	*a.steps = append(*a.steps, s)
}

func (a *answeringClaims) AckSubjectSeq(s string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "ack."), 10, 64)
	return n, err == nil && strings.HasPrefix(s, "ack.") && n > 0
}

func (a *answeringClaims) NakDelivery(_ context.Context, s string) error {
	a.step("nak " + s)
	return nil
}

func (a *answeringClaims) AckDelivery(_ context.Context, s string) error {
	a.step("ack " + s)
	return nil
}

// stepLeftovers are leftovers whose removals are written to steps; those
// of the runs in fail fail.
type stepLeftovers struct {
	found []Leftover
	fail  map[string]bool
	steps *[]string
}

func (f *stepLeftovers) Leftovers(context.Context) ([]Leftover, error) { return f.found, nil }
func (f *stepLeftovers) RemoveLeftover(_ context.Context, l Leftover) error {
	if f.fail[l.RunID] {
		return errors.New("daemon said no")
	}
	*f.steps = append(*f.steps, "remove "+l.RunID)
	return nil
}

type stepPresence struct{ steps *[]string }

func (p stepPresence) Beat(context.Context, jobs.WorkerInfo) error {
	*p.steps = append(*p.steps, "beat")
	return nil
}
func (p stepPresence) Leave(context.Context, string) error { return nil }

// TestReconcileHandsBackTheJobOfAStoppedAttempt: a restarted worker that
// stops an attempt its earlier life left running hands its job back at
// once (a nak on the ack subject its containers kept), after stopping the
// containers and after a heartbeat of its new life (so that a worker that
// takes the job does not take the earlier life for alive), but only while
// the run's claim says the earlier life still held that delivery: a nak
// goes by the job message alone, and would hand back the job that another
// worker took once the lease ran out. The job of an attempt that ended
// while the worker was down is acknowledged once its end is stored, on
// the same terms. Containers without the subject (an older gantry), or
// that could not be removed, leave the job to its lease, as before.
func TestReconcileHandsBackTheJobOfAStoppedAttempt(t *testing.T) {
	running := func(ack string) Leftover {
		return Leftover{RunID: "r", Attempt: 1, Running: true, AckSubject: ack,
			Containers: []jobs.ContainerResult{{Name: "main"}}}
	}
	code := 2
	exited := Leftover{RunID: "r", Attempt: 1, AckSubject: "ack.7",
		Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code}}}
	stageDone := Leftover{RunID: "r", Attempt: 1, Staged: true, AckSubject: "ack.7",
		Containers: []jobs.ContainerResult{{Name: "main", ExitCode: new(int)}}}
	held := &claim{Attempt: 1, Worker: "w1", Seq: 7, Job: 1}
	for _, tt := range []struct {
		name     string
		claim    *claim
		lo       Leftover
		failRm   bool
		want     []string
		wantDone bool // the claim is marked done
	}{
		{name: "running, still held", claim: held, lo: running("ack.7"),
			want: []string{"remove r", "beat", "nak ack.7"}},
		{name: "stage succeeded, outputs not stored", claim: held, lo: stageDone,
			want: []string{"remove r", "beat", "nak ack.7"}},
		{name: "taken over by another worker once the lease ran out",
			claim: &claim{Attempt: 2, Worker: "w2", Seq: 7, Job: 1, Losses: 1}, lo: running("ack.7"),
			want: []string{"remove r", "beat"}},
		{name: "taken over by this worker's own next delivery",
			claim: &claim{Attempt: 2, Worker: "w1", Seq: 7, Job: 1, Losses: 1}, lo: running("ack.7"),
			want: []string{"remove r", "beat"}},
		{name: "handed back before the crash",
			claim: &claim{Attempt: 1, Worker: "w1", Seq: 7, Job: 1, HandedBack: true}, lo: running("ack.7"),
			want: []string{"remove r", "beat"}},
		{name: "ended", claim: &claim{Attempt: 1, Worker: "w1", Seq: 7, Job: 1, Done: true}, lo: running("ack.7"),
			want: []string{"remove r", "beat"}},
		{name: "another job message", claim: &claim{Attempt: 1, Worker: "w1", Seq: 9, Job: 1}, lo: running("ack.7"),
			want: []string{"remove r", "beat"}},
		{name: "no claim", lo: running("ack.7"), want: []string{"remove r", "beat"}},
		{name: "containers of an older gantry", claim: held, lo: running(""), want: []string{"remove r", "beat"}},
		{name: "not an ack subject", claim: held, lo: running("_INBOX.x"), want: []string{"remove r", "beat"}},
		{name: "containers not removed", claim: held, lo: running("ack.7"), failRm: true, want: nil},
		{name: "exited, reported", claim: held, lo: exited, want: []string{"ack ack.7", "remove r"}, wantDone: true},
		{name: "exited, taken over", claim: &claim{Attempt: 2, Worker: "w2", Seq: 7, Job: 1, Losses: 1}, lo: exited,
			want: []string{"remove r"}},
		{name: "exited, handed back", claim: &claim{Attempt: 1, Worker: "w1", Seq: 7, Job: 1, HandedBack: true}, lo: exited,
			want: []string{"remove r"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var steps []string
			cl := &answeringClaims{memClaims: &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}, steps: &steps}
			if tt.claim != nil {
				data, _ := json.Marshal(tt.claim)
				if _, err := cl.PutClaim(ctx, "r", data, 0); err != nil {
					t.Fatal(err)
				}
			}
			lo := &stepLeftovers{found: []Leftover{tt.lo}, fail: map[string]bool{"r": tt.failRm}, steps: &steps}
			w := New("w1", "default", nil, nil, &fakeReporter{}, WithLeftovers(lo), WithClaims(cl),
				WithPresence(stepPresence{&steps}, 0))
			if err := w.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(steps, tt.want) {
				t.Fatalf("steps %q, want %q", steps, tt.want)
			}
			if c := cl.get("r"); tt.claim != nil && c.Done != (tt.wantDone || tt.claim.Done) {
				t.Fatalf("claim after reconcile: %+v", c)
			}
		})
	}
}

// TestReconcileWithoutAnsweringClaims: claims that cannot answer a
// delivery leave the job to its lease, as before.
func TestReconcileWithoutAnsweringClaims(t *testing.T) {
	ctx := context.Background()
	cl := &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}
	data, _ := json.Marshal(claim{Attempt: 1, Worker: "w1", Seq: 7, Job: 1})
	if _, err := cl.PutClaim(ctx, "r", data, 0); err != nil {
		t.Fatal(err)
	}
	lo := &fakeLeftovers{found: []Leftover{{RunID: "r", Attempt: 1, Running: true, AckSubject: "ack.7"}}}
	w := New("w1", "default", nil, nil, &fakeReporter{}, WithLeftovers(lo), WithClaims(cl))
	if err := w.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if len(lo.removed) != 1 {
		t.Fatalf("removed %v", lo.removed)
	}
}

// failingClaims are answering claims whose reads fail (readErr), or whose
// writes do (putErr).
type failingClaims struct {
	*answeringClaims
	readErr, putErr error
}

func (f *failingClaims) Claim(ctx context.Context, id string) ([]byte, uint64, error) {
	if f.readErr != nil {
		return nil, 0, f.readErr
	}
	return f.answeringClaims.Claim(ctx, id)
}

func (f *failingClaims) PutClaim(ctx context.Context, id string, data []byte, rev uint64) (uint64, error) {
	if f.putErr != nil && rev != 0 {
		return 0, f.putErr
	}
	return f.answeringClaims.PutClaim(ctx, id, data, rev)
}

// TestReconcileSaysWhenItCannotReadTheClaim: a claim that cannot be read
// (or, for an attempt reported ended, marked done) leaves the job to its
// lease, answered neither way; the log says so with the error, rather
// than that the earlier life no longer held the job.
func TestReconcileSaysWhenItCannotReadTheClaim(t *testing.T) {
	code := 2
	running := Leftover{RunID: "r", Attempt: 1, Running: true, AckSubject: "ack.7",
		Containers: []jobs.ContainerResult{{Name: "main"}}}
	exited := Leftover{RunID: "r", Attempt: 1, AckSubject: "ack.7",
		Containers: []jobs.ContainerResult{{Name: "main", ExitCode: &code}}}
	for _, tt := range []struct {
		name            string
		lo              Leftover
		readErr, putErr error
		wantLog         string
	}{
		{"running, claim unreadable", running, errors.New("kv read timed out"), nil,
			"cannot tell whether this worker's earlier life still held the job"},
		{"exited, claim unreadable", exited, errors.New("kv read timed out"), nil,
			"cannot mark the reported attempt done"},
		{"exited, claim not written", exited, nil, errors.New("kv write timed out"),
			"mark the reported attempt done"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var steps []string
			ac := &answeringClaims{memClaims: &memClaims{data: map[string][]byte{}, rev: map[string]uint64{}}, steps: &steps}
			data, _ := json.Marshal(claim{Attempt: 1, Worker: "w1", Seq: 7, Job: 1})
			if _, err := ac.PutClaim(ctx, "r", data, 0); err != nil {
				t.Fatal(err)
			}
			cl := &failingClaims{answeringClaims: ac, readErr: tt.readErr, putErr: tt.putErr}
			var logs strings.Builder
			lo := &stepLeftovers{found: []Leftover{tt.lo}, fail: map[string]bool{}, steps: &steps}
			w := New("w1", "default", nil, nil, &fakeReporter{}, WithLeftovers(lo), WithClaims(cl),
				WithPresence(stepPresence{&steps}, 0), WithLogger(zerolog.New(&logs)))
			if err := w.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			for _, s := range steps {
				if strings.HasPrefix(s, "nak ") || strings.HasPrefix(s, "ack ") {
					t.Errorf("steps %q: answered a delivery it could not tell it held", steps)
				}
			}
			err := tt.readErr
			if err == nil {
				err = tt.putErr
			}
			if !strings.Contains(logs.String(), tt.wantLog) || !strings.Contains(logs.String(), err.Error()) {
				t.Errorf("log does not say %q with %q:\n%s", tt.wantLog, err, logs.String())
			}
			if strings.Contains(logs.String(), "no longer held") {
				t.Errorf("log says the earlier life no longer held the job, which nobody could tell:\n%s", logs.String())
			}
		})
	}
}
