package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"
)

// startNATSOnly is a NATS whose server stopped: the test starts its own
// servers (startRun).
func startNATSOnly(t *testing.T) *apiEnv {
	t.Helper()
	e := startAPI(t)
	e.stop()
	return e
}

// running is a server a test started with startRun.
type running struct {
	srv   *Server
	store string // its store's file
	logs  *syncBuffer
	nc    *nats.Conn
	done  chan error // Run's error, once it returned
	err   error      // Run's error, once wait read it
	stop  func() error
}

// startRun runs a server on NATS at url, with a store of its own in
// dir, once start is closed (nil: at once). It stops when the test ends.
func startRun(t *testing.T, url string, qopts []queue.Option, dir string, start <-chan struct{}, opts ...Option) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := storage.Open(ctx, filepath.Join(dir, "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, nats.UserInfo(opUser, opPass))
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(nc, qopts...)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{store: db.Path(), logs: &syncBuffer{}, nc: nc, done: make(chan error, 1)}
	r.srv = New(db, q, append([]Option{WithLogger(zerolog.New(r.logs))}, opts...)...)
	go func() {
		if start != nil {
			<-start
		}
		r.done <- r.srv.Run(ctx)
	}()
	var stopped bool
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			r.err = <-r.done
			nc.Close()
			db.Close()
		}
		return r.err
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// wait waits for r's Run to return, and returns its error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case r.err = <-r.done:
		r.done <- r.err // for stop
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("the server on %s did not stop:\n%s", r.store, r.logs)
		return nil
	}
}

// startTwo starts two servers at the same moment (a barrier), each on a
// store of its own, and returns the one that runs and the one that ended
// first (its error in err, and sent back on done for stop); fails with
// none when neither ended within 30 s.
func startTwo(t *testing.T, url string, qopts []queue.Option, none string, opts ...Option) (winner, loser *running) {
	t.Helper()
	start := make(chan struct{})
	a := startRun(t, url, qopts, t.TempDir(), start, opts...)
	b := startRun(t, url, qopts, t.TempDir(), start, opts...)
	close(start)
	select {
	case a.err = <-a.done:
		loser, winner = a, b
	case b.err = <-b.done:
		loser, winner = b, a
	case <-time.After(30 * time.Second):
		t.Fatal(none)
	}
	loser.done <- loser.err // for stop
	return winner, loser
}

// raceServers starts two servers at the same moment (a barrier), each
// on a store of its own, rounds times: exactly one serves, the other is
// refused naming it; the one that served releases the lease as it stops.
func raceServers(t *testing.T, url string, rounds int, qopts ...queue.Option) {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(opUser, opPass))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	q, err := queue.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	byLease := 0
	for round := range rounds {
		winner, loser := startTwo(t, url, qopts, fmt.Sprintf("round %d: neither server was refused", round))
		var another *AnotherServerError
		if !errors.As(loser.err, &another) {
			t.Fatalf("round %d: the second server: %v, want it refused\nits log:\n%s", round, loser.err, loser.logs)
		}
		if another.Store != "" { // refused by the lease, not the ping
			byLease++
			if another.Store != winner.store || !strings.Contains(another.Error(), "store "+winner.store) {
				t.Fatalf("round %d: refusal %q does not name the server that runs, on %s", round, another, winner.store)
			}
		}
		waitForAPI(t, nc)
		select {
		case err := <-winner.done:
			t.Fatalf("round %d: neither server serves: the first ended too: %v\n%s", round, err, winner.logs)
		default:
		}
		if err := winner.stop(); err != nil {
			t.Fatalf("round %d: server: %v", round, err)
		}
		if l, err := q.ReadLease(context.Background()); err != nil || l != nil {
			t.Fatalf("round %d: the lease after the server stopped: %+v, %v; want it released", round, l, err)
		}
	}
	// With the barrier, the second one pings before the first answers:
	// the lease refuses it. (A round the ping refused is not an error.)
	if byLease == 0 {
		t.Errorf("no round of %d was decided by the lease", rounds)
	}
	t.Logf("%d of %d rounds decided by the lease, the others by the ping", byLease, rounds)
}

// TestServersStartedTogetherOneRuns: two servers started at the same
// moment against one NATS both found no one answering $SRV.PING.gantry
// and both ran, each the writer of its own store. The lease lets exactly
// one run; the other is refused, naming it.
func TestServersStartedTogetherOneRuns(t *testing.T) {
	e := startNATSOnly(t)
	raceServers(t, e.ns.ClientURL(), 20)
}

// TestServersStartedTogetherOneRunsR3: so on a three-node NATS cluster,
// the lease's bucket R3 as the others (--replicas 3), where JetStream
// reports a compare-and-set conflict with another code.
func TestServersStartedTogetherOneRunsR3(t *testing.T) {
	urls := natstest.Cluster(t)
	raceServers(t, strings.Join(urls, ","), 5, queue.WithReplicas(3))
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), "KV_gantry_server")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().Config.Replicas; n != 3 {
		t.Errorf("the lease's bucket has %d replicas, want 3 (--replicas 3)", n)
	}
}

// leaveLease writes a lease as a server that died holding it left it.
func leaveLease(t *testing.T, q *queue.Queue, h *holder) {
	t.Helper()
	data, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.CreateLease(context.Background(), data); err != nil {
		t.Fatal(err)
	}
}

// waitLog waits for r to log want, and fails the test if it stops first.
func (r *running) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(r.logs.String(), want); {
		select {
		case r.err = <-r.done:
			r.done <- r.err // for stop
			t.Fatalf("the server on %s stopped (%v) before it logged %q:\n%s", r.store, r.err, want, r.logs)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server on %s did not log %q:\n%s", r.store, want, r.logs)
		}
	}
}

// waitingFor is what a server logs while it waits for dead's lease.
func waitingFor(dead *holder) string {
	return fmt.Sprintf("waiting for the lease of the gantry server on host %s (pid %d, store %s) to lapse: "+
		"it has not renewed for ", dead.Host, dead.PID, dead.Store)
}

// lostHost is a server that died holding its lease, on a host lost.
var lostHost = &holder{ID: "dead", Host: "lost-host", PID: 4242, Version: "0.0.9", Store: "/var/lib/gantry/gantry.db",
	Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}

// TestDeadLeaseIsWaitedOut: a lease whose server died (killed, its host
// lost) refused a server started on another store while it was fresh,
// which had to be started again. The server waits, saying for whom and
// how long, and takes it over once it lapses, logging whom it replaced.
// Of two servers started together beside it, one takes it over and the
// other is refused, naming it, once it shows it runs.
func TestDeadLeaseIsWaitedOut(t *testing.T) {
	e := startNATSOnly(t)
	url, q := e.ns.ClientURL(), e.queue()
	// Long enough that a server started on a loaded machine still finds
	// the lease fresh, and waits: at 1 s one beside a CI run under load
	// found it lapsed already and took it over at once; at 3 s, one of
	// two started together (below, which checks no wait).
	const age = 3 * time.Second
	leaveLease(t, q, lostHost)

	r := startRun(t, url, nil, t.TempDir(), nil, withLeaseAge(2*age))
	r.waitLog(t, waitingFor(lostHost))
	r.waitLog(t, "and does not answer; taking over in ")
	r.waitLog(t, "replaced a stale server lease: its holder had not renewed it for")
	waitForAPI(t, e.op)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	leaveLease(t, q, lostHost)
	winner, loser := startTwo(t, url, nil, "both successors took over the dead server's lease", withLeaseAge(age))
	var another *AnotherServerError
	if !errors.As(loser.err, &another) || another.Store != winner.store || another.Alive == "" ||
		!strings.Contains(loser.err.Error(), ". It runs: ") {
		t.Fatalf("the second successor: %v, want it refused naming the first (store %s) and how it runs", loser.err, winner.store)
	}
	waitForAPI(t, e.op)
	// Whether it waited depends on how long the two took to start: the
	// wait is the first server's, above.
	if want := "replaced a stale server lease: its holder had not renewed it for"; !strings.Contains(winner.logs.String(), want) {
		t.Errorf("the successor's log does not say %q:\n%s", want, winner.logs)
	}
	if err := winner.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestStaleLeaseIsTakenOverOnce: a lease not renewed for its age when a
// server finds it is taken over at once, by one server of two started
// together; the other is refused once the first shows it runs.
func TestStaleLeaseIsTakenOverOnce(t *testing.T) {
	e := startNATSOnly(t)
	url, q := e.ns.ClientURL(), e.queue()
	const age = time.Second
	leaveLease(t, q, lostHost)
	// Stale by the NATS server's clock, which the servers ask.
	for {
		l, err := q.ReadLease(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if l.Age > age {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	winner, loser := startTwo(t, url, nil, "both successors took over the stale lease", withLeaseAge(age))
	var another *AnotherServerError
	if !errors.As(loser.err, &another) || another.Store != winner.store {
		t.Fatalf("the second successor: %v, want it refused naming the first (store %s)", loser.err, winner.store)
	}
	waitForAPI(t, e.op)
	for _, want := range []string{"replaced a stale server lease: its holder had not renewed it for", "lost-host"} {
		if !strings.Contains(winner.logs.String(), want) {
			t.Errorf("the successor's log does not say %q:\n%s", want, winner.logs)
		}
	}
	if strings.Contains(winner.logs.String(), "waiting for the lease") {
		t.Errorf("the successor waited for a stale lease:\n%s", winner.logs)
	}
	if err := winner.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRenewingHolderIsRefused: a holder that renews its lease but does
// not answer the ping (a server still starting, or applying migrations)
// is alive: the server waiting for its lease is refused once it sees the
// renewal, naming it and saying so, and leaves the lease to it.
func TestRenewingHolderIsRefused(t *testing.T) {
	e := startNATSOnly(t)
	q := e.queue()
	starting := &holder{ID: "starting", Host: "gantry-2", PID: 77, Version: "0.1.0", Store: "/srv/gantry/gantry.db",
		Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	leaveLease(t, q, starting)
	// An age no test waits out: only the renewal ends the wait.
	r := startRun(t, e.ns.ClientURL(), nil, t.TempDir(), nil, withLeaseAge(time.Minute))
	r.waitLog(t, waitingFor(starting))
	l, err := q.ReadLease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.UpdateLease(context.Background(), l.Holder, l.Revision); err != nil {
		t.Fatal(err)
	}
	err = r.wait(t)
	var another *AnotherServerError
	if !errors.As(err, &another) {
		t.Fatalf("a server beside a holder that renews: %v, want it refused", err)
	}
	for _, want := range []string{"another gantry server already serves this NATS (host gantry-2, pid 77, version 0.1.0, " +
		"store /srv/gantry/gantry.db, started 2026-03-01T12:00:00Z; its lease renewed ",
		"Stop that one first", ". It runs: it wrote its lease while this one waited ",
		"for it to lapse (a server that neither renews its lease nor answers, killed or on a host lost, is waited for " +
			"until its lease is 1m0s old, then taken over)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not say %q", err, want)
		}
	}
	if l2, err := q.ReadLease(context.Background()); err != nil || l2 == nil || string(l2.Holder) != string(l.Holder) {
		t.Errorf("the lease after the refusal: %+v, %v; want the holder's", l2, err)
	}
}

// TestAnsweringHolderIsRefused: a holder that starts to answer the ping
// while a server waits for its lease serves: the server is refused at
// once, naming it by its lease and saying it answers. One that answers
// but is not the lease's (an older gantry, which takes no lease) is
// named by its answer.
func TestAnsweringHolderIsRefused(t *testing.T) {
	e := startNATSOnly(t)
	q := e.queue()
	host, _ := os.Hostname()
	for _, c := range []struct {
		name, version string
		metadata      map[string]string
		want          string
	}{
		{"the lease's", "0.1.0", map[string]string{"host": host, "pid": "4343"},
			"(host " + host + ", pid 4343, version 0.1.0, store /srv/gantry/gantry.db, started 2026-03-01T12:00:00Z; " +
				"its lease renewed "},
		{"another", "0.0.1", map[string]string{"host": "old-host", "pid": "99"}, "(host old-host, pid 99, version 0.0.1; service id "},
	} {
		t.Run(c.name, func(t *testing.T) {
			serving := &holder{ID: "serving", Host: host, PID: 4343, Version: "0.1.0", Store: "/srv/gantry/gantry.db",
				Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			leaveLease(t, q, serving)
			t.Cleanup(func() {
				if l, err := q.ReadLease(context.Background()); err == nil && l != nil {
					_ = q.DeleteLease(context.Background(), l.Revision)
				}
			})
			r := startRun(t, e.ns.ClientURL(), nil, t.TempDir(), nil, withLeaseAge(time.Hour))
			r.waitLog(t, waitingFor(serving))
			svc, err := micro.AddService(e.op, micro.Config{Name: serviceName, Version: c.version, Metadata: c.metadata})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Stop()
			err = r.wait(t)
			var another *AnotherServerError
			if !errors.As(err, &another) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("a server beside a holder that answers: %v, want it refused saying %q", err, c.want)
			}
			if c.name == "the lease's" && !strings.Contains(err.Error(), ". It runs: it answers $SRV.PING.gantry (service id ") {
				t.Errorf("%v\ndoes not say it answers", err)
			}
		})
	}
}

// frozenLeases reports every lease as just written, as a NATS server
// whose clock is behind the one that wrote it would.
type frozenLeases struct{ leaseStore }

func (f frozenLeases) ReadLease(ctx context.Context) (*queue.Lease, error) {
	l, err := f.leaseStore.ReadLease(ctx)
	if l != nil {
		l.Age = 0
	}
	return l, err
}

// TestLeaseWaitEndsByItsOwnClock: a lease that the NATS server never
// sees lapse (its clock behind the one of the server that wrote it) is
// taken over once it was not written for its age by the waiting server's
// clock: its holder gave it up by then.
func TestLeaseWaitEndsByItsOwnClock(t *testing.T) {
	e := startNATSOnly(t)
	leaveLease(t, e.queue(), lostHost)
	r := startRun(t, e.ns.ClientURL(), nil, t.TempDir(), nil, withLeaseAge(time.Second),
		func(c *config) { c.leases = func(s leaseStore) leaseStore { return frozenLeases{s} } })
	r.waitLog(t, waitingFor(lostHost))
	r.waitLog(t, "replaced a stale server lease: its holder had not renewed it for")
	waitForAPI(t, e.op)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestStoppedWhileWaitingForLease: a server stopped (Ctrl-C) while it
// waits for a lease to lapse stops at once, cleanly, and leaves the
// lease as it was.
func TestStoppedWhileWaitingForLease(t *testing.T) {
	e := startNATSOnly(t)
	q := e.queue()
	leaveLease(t, q, lostHost)
	before, err := q.ReadLease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := startRun(t, e.ns.ClientURL(), nil, t.TempDir(), nil, withLeaseAge(time.Hour))
	r.waitLog(t, waitingFor(lostHost))
	if err := r.stop(); err != nil {
		t.Fatalf("stopped while waiting: %v, want nil", err)
	}
	if l, err := q.ReadLease(context.Background()); err != nil || l == nil || l.Revision != before.Revision {
		t.Errorf("the lease after the server stopped: %+v, %v; want it as it was (revision %d)", l, err, before.Revision)
	}
}

// TestRestartOnItsStoreTakesTheLeaseAtOnce: a server killed (SIGKILL)
// leaves its lease; the next one on its store, locked for it as
// cmd/gantry locks the data directory, takes it at once rather than
// wait for its age: the one that left it cannot run. A server on another
// store, or on a store not locked, waits for the lease to lapse.
func TestRestartOnItsStoreTakesTheLeaseAtOnce(t *testing.T) {
	e := startNATSOnly(t)
	url, q := e.ns.ClientURL(), e.queue()
	dir := t.TempDir()
	db, err := storage.Open(context.Background(), filepath.Join(dir, "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	killed := New(db, q, WithStoreLock()).leaseHolder()
	db.Close()
	killed.PID = 4242 // another process
	leaveLease(t, q, killed)

	// An age no test waits out: those that wait are stopped waiting.
	const age = time.Hour
	for name, c := range map[string]struct {
		dir  string
		opts []Option
	}{
		"another store":      {t.TempDir(), []Option{WithStoreLock()}},
		"its store unlocked": {dir, nil},
	} {
		t.Run(name, func(t *testing.T) {
			r := startRun(t, url, nil, c.dir, nil, append(c.opts, withLeaseAge(age))...)
			r.waitLog(t, waitingFor(killed))
			if err := r.stop(); err != nil {
				t.Fatalf("stopped while waiting: %v", err)
			}
		})
	}

	r := startRun(t, url, nil, dir, nil, WithStoreLock(), withLeaseAge(age))
	if bootID() == "" || fileID(r.store) == "" {
		// A system that tells no boot id or inode: it waits too.
		r.waitLog(t, waitingFor(killed))
		return
	}
	waitForAPI(t, e.op)
	const want = "took over the server lease left by this store's previous server, which no longer runs"
	if !strings.Contains(r.logs.String(), want) || !strings.Contains(r.logs.String(), "pid 4242") {
		t.Errorf("the restarted server's log does not say %q of pid 4242:\n%s", want, r.logs)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestLostLeaseStopsTheServer: a server whose lease another server took
// over, or that was deleted, no longer is the writer of its NATS's
// store: it stops, saying why, rather than go on as a second writer, and
// leaves the lease to its new holder.
func TestLostLeaseStopsTheServer(t *testing.T) {
	e := startNATSOnly(t)
	url, q := e.ns.ClientURL(), e.queue()
	other, err := json.Marshal(&holder{ID: "other", Host: "other-host", PID: 77, Version: Version, Store: "/srv/other.db"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		lose func(l *queue.Lease) error
		want string
	}{
		{"taken over", func(l *queue.Lease) error {
			_, err := q.UpdateLease(context.Background(), other, l.Revision)
			return err
		}, "lost the server lease: another gantry server took it over (host other-host, pid 77"},
		{"deleted", func(l *queue.Lease) error {
			return q.DeleteLease(context.Background(), l.Revision)
		}, "lost the server lease: it was deleted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := startRun(t, url, nil, t.TempDir(), nil, withLeaseAge(600*time.Millisecond))
			waitForAPI(t, e.op)
			for { // the server renews it meanwhile: again at its new revision
				l, err := q.ReadLease(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := c.lose(l); err == nil {
					break
				} else if !errors.Is(err, queue.ErrLeaseChanged) {
					t.Fatal(err)
				}
			}
			err := r.wait(t)
			var lost *LeaseLostError
			if !errors.As(err, &lost) || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), "so this one stops rather than be a second writer") {
				t.Fatalf("server: %v, want it stopped saying %q", err, c.want)
			}
			if !strings.Contains(r.logs.String(), "server stopping: it lost its lease") {
				t.Errorf("its log does not say it stops:\n%s", r.logs)
			}
			// Its API refuses what it had received, then is gone.
			for deadline := time.Now().Add(5 * time.Second); ; {
				m, err := e.op.Request("gantry.api.runs.list", nil, time.Second)
				if errors.Is(err, nats.ErrNoResponders) {
					break
				}
				if err != nil {
					t.Fatalf("its API after it stopped: %v, want no responders", err)
				}
				if m.Header.Get(micro.ErrorCodeHeader) != "503" || time.Now().After(deadline) {
					t.Fatalf("its API after it stopped: %v %q; want it refused, then no responders", m.Header, m.Data)
				}
			}
			l, err := q.ReadLease(context.Background())
			switch {
			case err != nil:
				t.Fatal(err)
			case c.name == "taken over" && (l == nil || string(l.Holder) != string(other)):
				t.Errorf("the lease after the server stopped: %+v, want the other server's", l)
			case l != nil && c.name == "deleted":
				t.Errorf("the lease after the server stopped: %s, want none", l.Holder)
			case l != nil:
				if err := q.DeleteLease(context.Background(), l.Revision); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// flakyLeases fails the renewals of the lease while failing is above 0
// (counting it down), or always when it is below, as a NATS server that
// does not answer does; with hang they wait for their ctx's end instead.
// renewed counts the renewals that went through.
type flakyLeases struct {
	leaseStore
	failing atomic.Int32
	hang    atomic.Bool
	renewed atomic.Int32
}

func (f *flakyLeases) UpdateLease(ctx context.Context, h []byte, rev uint64) (uint64, error) {
	if f.hang.Load() {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	if n := f.failing.Load(); n != 0 {
		if n > 0 {
			f.failing.Add(-1)
		}
		return 0, nats.ErrTimeout
	}
	next, err := f.leaseStore.UpdateLease(ctx, h, rev)
	if err == nil {
		f.renewed.Add(1)
	}
	return next, err
}

// TestLeaseRenewalRetries: a renewal that NATS does not answer is not a
// lost lease: the server tries again, and serves on once one goes
// through. Only one that fails until another server could take the lease
// over stops it.
func TestLeaseRenewalRetries(t *testing.T) {
	e := startNATSOnly(t)
	const age = 3 * time.Second
	t.Run("briefly", func(t *testing.T) {
		f := &flakyLeases{}
		r := startRun(t, e.ns.ClientURL(), nil, t.TempDir(), nil, withLeaseAge(age),
			func(c *config) { c.leases = func(s leaseStore) leaseStore { f.leaseStore = s; return f } })
		waitForAPI(t, e.op)
		before := f.renewed.Load()
		f.failing.Store(2)
		for f.failing.Load() > 0 || f.renewed.Load() == before {
			select {
			case err := <-r.done:
				t.Fatalf("the server stopped: %v\n%s", err, r.logs)
			case <-time.After(50 * time.Millisecond):
			}
		}
		if !strings.Contains(r.logs.String(), "could not renew the server lease; trying again until its age would lapse") {
			t.Errorf("its log does not say it tries again:\n%s", r.logs)
		}
		if err := r.stop(); err != nil {
			t.Fatalf("server: %v", err)
		}
	})
	for _, c := range []struct {
		name string
		fail func(f *flakyLeases)
		want error
	}{
		{"failing until the age lapses", func(f *flakyLeases) { f.failing.Store(-1) }, nats.ErrTimeout},
		// Each renewal ends by the give-up, not a renewal's interval later.
		{"hanging until the age lapses", func(f *flakyLeases) { f.hang.Store(true) }, context.DeadlineExceeded},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &flakyLeases{}
			c.fail(f)
			r := startRun(t, e.ns.ClientURL(), nil, t.TempDir(), nil, withLeaseAge(age),
				func(c *config) { c.leases = func(s leaseStore) leaseStore { f.leaseStore = s; return f } })
			err := r.wait(t)
			var lost *LeaseLostError
			const want = "lost the server lease: could not renew it for"
			if !errors.As(err, &lost) || !strings.Contains(err.Error(), want) || !errors.Is(err, c.want) {
				t.Fatalf("server: %v, want it stopped saying %q (%v)", err, want, c.want)
			}
			if lost.Unrenewed < age-age/6 || lost.Unrenewed >= age {
				t.Errorf("it stopped after %s unrenewed, want between %s and the age %s", lost.Unrenewed, age-age/6, age)
			}
			// Still its own (no one took it over), and NATS answers the
			// delete: the next server need not wait for the age.
			if l, err := e.queue().ReadLease(context.Background()); err != nil || l != nil {
				t.Errorf("the lease after the server stopped: %+v, %v; want it released", l, err)
			}
		})
	}
}

// TestLeaseBucketDeletedIsMadeAgain: a server whose lease bucket is
// deleted (an operator's nats kv del gantry_server, a JetStream store
// lost) makes it again at its next renewal and serves on, its lease
// written there: the bucket's handle was kept, every renewal failed with
// no responders, and the server stopped once its age was about to lapse.
func TestLeaseBucketDeletedIsMadeAgain(t *testing.T) {
	e := startNATSOnly(t)
	f := &flakyLeases{}
	r := startRun(t, e.ns.ClientURL(), nil, t.TempDir(), nil, withLeaseAge(3*time.Second),
		func(c *config) { c.leases = func(s leaseStore) leaseStore { f.leaseStore = s; return f } })
	waitForAPI(t, e.op)
	js, err := jetstream.New(e.op)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(context.Background(), "gantry_server"); err != nil {
		t.Fatal(err)
	}
	// Two renewals after the deletion: the second is one at the first's
	// revision in the bucket made again.
	for before := f.renewed.Load(); f.renewed.Load() < before+2; {
		select {
		case r.err = <-r.done:
			r.done <- r.err // for stop
			t.Fatalf("the server stopped: %v\n%s", r.err, r.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	l, err := e.queue().ReadLease(context.Background())
	if err != nil || l == nil || parseHolder(l.Holder).Store != r.store {
		t.Fatalf("the lease in the bucket made again: %+v, %v; want the server's", l, err)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("server: %v", err)
	}
}

// TestRestartOf: a lease is a dead server's only where both stores were
// locked, on one kernel since its boot, and it is the same file.
func TestRestartOf(t *testing.T) {
	me := holder{Locked: true, Boot: "b1", StoreFile: "1:2"}
	for _, c := range []struct {
		name string
		h    holder
		want bool
	}{
		{"same store, locked", holder{Locked: true, Boot: "b1", StoreFile: "1:2"}, true},
		{"its store unlocked", holder{Boot: "b1", StoreFile: "1:2"}, false},
		{"another boot", holder{Locked: true, Boot: "b2", StoreFile: "1:2"}, false},
		{"another file", holder{Locked: true, Boot: "b1", StoreFile: "1:3"}, false},
		{"no boot id", holder{Locked: true, StoreFile: "1:2"}, false},
	} {
		if got := me.restartOf(&c.h); got != c.want {
			t.Errorf("%s: restartOf = %v, want %v", c.name, got, c.want)
		}
	}
	unlocked := me
	unlocked.Locked = false
	if unlocked.restartOf(&me) {
		t.Error("a server whose store is not locked took over a lease at once")
	}
	if noBoot := (holder{Locked: true, StoreFile: "1:2"}); noBoot.restartOf(&holder{Locked: true, StoreFile: "1:2"}) {
		t.Error("two servers without a boot id: restartOf, want not")
	}
}

// FuzzParseHolder: whatever a lease holds (a holder of another version,
// one written by hand), the refusal names it and nothing panics.
func FuzzParseHolder(f *testing.F) {
	f.Add([]byte(`{"id":"x","host":"h","pid":1,"version":"0.1.0","store":"/d/gantry.db","started":"2026-03-01T12:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`"text"`))
	f.Add([]byte{0xff, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := parseHolder(data)
		if h.Host == "" {
			t.Fatalf("%q: no host to name", data)
		}
		if msg := h.refusal(time.Second, defaultLeaseAge, "it answers").Error(); !strings.Contains(msg, "another gantry server already serves this NATS (host ") {
			t.Fatalf("%q: refusal %q", data, msg)
		}
		_ = h.String()
	})
}

// TestLeaseHolderNamesThisServer: the lease says where the server runs
// and which store it writes.
func TestLeaseHolderNamesThisServer(t *testing.T) {
	e := startNATSOnly(t)
	db, err := storage.Open(context.Background(), filepath.Join(t.TempDir(), "gantry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := New(db, e.queue()).leaseHolder()
	host, _ := os.Hostname()
	if h.Host != host || h.PID != os.Getpid() || h.Store != db.Path() || h.Version != Version || h.ID == "" || h.Started.IsZero() {
		t.Errorf("holder %+v does not name this server", h)
	}
}
