package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/gantry-dev/gantry/samples/sampletest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// gantryStreams are the streams of gantry's streams and buckets.
var gantryStreams = []string{"GANTRY_JOBS", "GANTRY_EVENTS", "GANTRY_LOGS", "GANTRY_REPORTS", "GANTRY_SUBMIT",
	"KV_gantry_canceled", "KV_gantry_workers", "KV_gantry_worker_drain", "KV_gantry_claims", "OBJ_gantry-data"}

// TestServerReplicatesItsStreams: `gantry server --replicas 3` on a
// three-node NATS cluster makes gantry's streams and buckets R3, as the
// README's way past one machine has them; before the flag they were R1
// whatever the cluster.
func TestServerReplicatesItsStreams(t *testing.T) {
	t.Parallel()
	urls := strings.Join(natstest.Cluster(t), ",")
	srv := startServer(t, "--nats", urls, "--replicas", "3", "--log-level", "warn")
	// Three in-process nodes under -race on a busy machine make each R3
	// stream in seconds; the stage data bucket comes last, after the
	// server's other start-up work.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The server lease's bucket too, which the server makes before the
	// others (server/lease.go).
	for _, name := range append(gantryStreams, "KV_gantry_server") {
		if n := streamReplicas(t, ctx, srv, urls, name); n != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, n)
		}
	}
}

// TestServerKeepsHandScaledReplicas: `gantry server` without --replicas
// (nor GANTRY_REPLICAS) keeps the replicas of the streams that exist,
// which an operator may have raised by hand: it set them back to 1 at
// every start.
func TestServerKeepsHandScaledReplicas(t *testing.T) {
	t.Parallel()
	urls := strings.Join(natstest.Cluster(t), ",")
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	q, err := queue.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A server made them before, R1; the operator scaled them to R3.
	// Each ask gets its own few seconds: a stream whose group has not
	// yet elected its leader leaves the request unanswered, and one ask
	// with the whole deadline waited it all out. Without a deadline of
	// their own, the requests of EnsureStreams each get the JetStream
	// client's default, as in a server.
	mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	defer context.AfterFunc(ctx, stop)()
	natstest.Eventually(t, ctx, "make the streams", func(context.Context) error {
		if err := q.EnsureStreams(mctx); err != nil {
			return err
		}
		return queue.NewStager(js, 0, 0).EnsureBucket(mctx)
	})
	for _, name := range gantryStreams {
		natstest.ScaleStream(t, ctx, js, name, 3)
	}
	srv := startServer(t, "--nats", urls, "--log-level", "info")
	srv.waitLog(t, ctx, "server ready") // after the streams and the stage data bucket
	for _, name := range gantryStreams {
		if n := streamReplicas(t, ctx, srv, urls, name); n != 3 {
			t.Errorf("stream %s has %d replicas, want the 3 it was given by hand", name, n)
		}
	}
}

// TestServerWaitsForTheClusterLeader: a server started beside a NATS
// cluster whose nodes are still coming up (systemd, compose) finds no
// JetStream meta leader; it exited (125). It waits, saying so, and is
// ready once the cluster has its leader; stopped while it waits, it stops
// cleanly. A node without a leader answers nothing for its first 10
// seconds, then "JetStream system temporarily unavailable": the server
// waits through both.
func TestServerWaitsForTheClusterLeader(t *testing.T) {
	t.Parallel()
	c := natstest.NewCluster(t)
	c.Start(t, 0) // one node of three: no quorum, no leader
	urls := strings.Join(c.URLs, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	waiting := startServer(t, "--nats", urls, "--log-level", "info")
	stopped := startServer(t, "--nats", urls, "--log-level", "info")
	waiting.waitLog(t, ctx, "waiting for")
	stopped.waitLog(t, ctx, "waiting for")
	_ = stopped.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-stopped.exited:
		if code := stopped.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("gantry server stopped while waiting: exit code %d, want 0:\n%s", code, stopped.log.String())
		}
	case <-ctx.Done():
		t.Fatalf("gantry server did not stop on SIGTERM while waiting:\n%s", stopped.log.String())
	}

	waiting.waitLog(t, ctx, "waiting for the NATS cluster to elect its JetStream meta leader")
	c.Start(t, 1)
	c.Start(t, 2)
	waiting.waitLog(t, ctx, "server ready")
}

// TestWorkerWaitsForTheClusterLeader: a worker started beside a fresh
// NATS cluster and its server waits for the cluster's JetStream leader,
// then for the server's streams, and is then ready. It waited for the
// streams, but exited (125) while the cluster had no leader.
func TestWorkerWaitsForTheClusterLeader(t *testing.T) {
	t.Parallel()
	cli := sampletest.Docker(t)
	label := fmt.Sprintf("e2e-waitleader%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)
	c := natstest.NewCluster(t)
	c.Start(t, 0) // one node of three: no quorum, no leader
	urls := strings.Join(c.URLs, ",")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := startGantry(t, "worker", "--nats", urls, "--id", label, "--grace", "5s",
		"--container-label", sampletest.LabelKey+"="+label)
	w.waitLog(t, ctx, "waiting for JetStream")
	c.Start(t, 1)
	c.Start(t, 2)
	w.waitLog(t, ctx, "waiting for a gantry server to create the streams")
	startServer(t, "--nats", urls)
	w.waitLog(t, ctx, "worker ready")
}

// TestWorkerFailsAtOnceOnARefusal: waiting as it does for JetStream, a
// worker whose NATS user may not make its consumers (NATS does not answer
// a refused request, which times out as one not answered yet) ends with a
// message saying so, not a wait.
func TestWorkerFailsAtOnceOnARefusal(t *testing.T) {
	t.Parallel()
	sampletest.Docker(t)
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), User: "op", Password: "op-pw",
		SubmitUser: "app", SubmitPassword: "app-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := startGantry(t, "worker", "--nats", ns.ClientURL(), "--user", "app", "--password", "app-pw",
		"--id", fmt.Sprintf("e2e-refused%d", time.Now().UnixNano()%100000))
	select {
	case <-w.exited:
	case <-ctx.Done():
		w.fail(t, "gantry worker did not exit")
	}
	const want = "NATS refused a JetStream request of gantry's"
	if code := w.cmd.ProcessState.ExitCode(); code != exitGantryError || !strings.Contains(w.log.String(), want) {
		t.Errorf("gantry worker: exit code %d, want %d, saying %q:\n%s", code, exitGantryError, want, w.log.String())
	}
}

// TestServerFailsAtOnceWhereWaitingCannotHelp: a NATS user without the
// rights (NATS does not answer a refused request: it timed out, and the
// server said "context deadline exceeded"), or replicas a single NATS
// server cannot have, end the server with a message saying why, not a
// wait.
func TestServerFailsAtOnceWhereWaitingCannotHelp(t *testing.T) {
	t.Parallel()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), User: "op", Password: "op-pw",
		SubmitUser: "app", SubmitPassword: "app-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "app", "--password", "app-pw"}, "NATS refused a JetStream request of gantry's"},
		{[]string{"--user", "op", "--password", "op-pw", "--replicas", "3"}, "replicas > 1 not supported in non-clustered mode"},
	} {
		srv := startServer(t, append([]string{"--nats", ns.ClientURL(), "--log-level", "info"}, c.args...)...)
		select {
		case <-srv.exited:
		case <-ctx.Done():
			t.Fatalf("gantry server %v did not exit:\n%s", c.args, srv.log.String())
		}
		if code := srv.cmd.ProcessState.ExitCode(); code != exitGantryError || !strings.Contains(srv.log.String(), c.want) {
			t.Errorf("gantry server %v: exit code %d, want %d, saying %q:\n%s", c.args, code, exitGantryError, c.want, srv.log.String())
		}
	}
}

// gantryProc is a gantry process under test.
type gantryProc struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{} // closed once it exited
	err    error         // cmd.Wait's, once exited is closed
}

// startServer starts `gantry server` with args in a fresh data directory.
func startServer(t *testing.T, args ...string) *gantryProc {
	t.Helper()
	return startGantry(t, append([]string{"server", "--data", t.TempDir()}, args...)...)
}

// startGantry starts gantry with args, without the environment's NATS URL
// or replica count. SIGTERM stops it when the test ends.
func startGantry(t *testing.T, args ...string) *gantryProc {
	t.Helper()
	p := &gantryProc{cmd: exec.Command(gantryBin, args...), log: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "GANTRY_NATS_URL=", "GANTRY_REPLICAS=")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitLog waits until the process's log says s, and fails the test if it
// exits or ctx ends first.
func (p *gantryProc) waitLog(t *testing.T, ctx context.Context, s string) {
	t.Helper()
	for !strings.Contains(p.log.String(), s) {
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before it logged %q:\n%s", p.cmd.Args[1], p.err, s, p.log.String())
		case <-ctx.Done():
			p.fail(t, "no "+s+" in the log")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fail fails the test with the process's log, and its goroutines, which a
// process that hangs says where with (SIGQUIT).
func (p *gantryProc) fail(t *testing.T, why string) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	t.Fatalf("%s:\n%s", why, p.log.String())
}

// streamReplicas is the replica count of a stream, which the server p
// makes: it fails the test if p exits or ctx ends first.
func streamReplicas(t *testing.T, ctx context.Context, p *gantryProc, urls, name string) int {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-p.exited:
			stop()
		case <-wctx.Done():
		}
	}()
	n, err := natstest.StreamReplicas(wctx, js, name)
	if err == nil {
		return n
	}
	select {
	case <-p.exited:
		t.Fatalf("gantry server exited (%v) before stream %s was made:\n%s", p.err, name, p.log.String())
	default:
	}
	p.fail(t, err.Error())
	return 0
}

// TestWorkerStagerKeepsTheServersReplicas: a worker that finds no stage
// data bucket (the server's making it failed at start, or an operator
// deleted it) made it R1 on a cluster whose streams the server made R3,
// and the bucket stayed R1 until the server's next start. It now takes
// the replicas of the server's streams.
func TestWorkerStagerKeepsTheServersReplicas(t *testing.T) {
	t.Parallel()
	urls := strings.Join(natstest.Cluster(t), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc, err := queue.Dial(ctx, queue.ConnOptions{URL: urls})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv, err := queue.New(nc, queue.WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	// As in a server, the requests get the JetStream client's own
	// timeout (natstest.Eventually's 2 s left a stream's group too little
	// to elect its leader under -race).
	mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	defer context.AfterFunc(ctx, stop)()
	natstest.Eventually(t, ctx, "make the streams", func(context.Context) error { return srv.EnsureStreams(mctx) })

	wq, err := queue.New(nc) // as runWorker's: no replica count
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "part-0.csv"), []byte("a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := workerStager(wq)
	natstest.Eventually(t, ctx, "store a stage's files", func(context.Context) error {
		return st.Put(mctx, "pr-1", "extract", "run0", 1, out)
	})
	n, err := natstest.StreamReplicas(ctx, srv.JetStream(), "OBJ_"+queue.DataBucket)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("the worker made the stage data bucket with %d replicas, want the server's streams' 3", n)
	}
}
