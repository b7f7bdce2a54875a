package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestServerReplicatesItsStreams: `gantry server --replicas 3` on a
// three-node NATS cluster makes gantry's streams and buckets R3, as the
// README's way past one machine has them; before the flag they were R1
// whatever the cluster.
func TestServerReplicatesItsStreams(t *testing.T) {
	urls := strings.Join(natstest.Cluster(t), ",")
	cmd := exec.Command(gantryBin, "server", "--nats", urls, "--replicas", "3", "--data", t.TempDir(), "--log-level", "warn")
	cmd.Env = append(os.Environ(), "GANTRY_NATS_URL=")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	// Three in-process nodes under -race on a busy machine make each R3
	// stream in seconds; the stage data bucket comes last, after the
	// server's other start-up work.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, name := range []string{"GANTRY_JOBS", "GANTRY_EVENTS", "GANTRY_LOGS", "GANTRY_REPORTS", "GANTRY_SUBMIT",
		"KV_gantry_canceled", "OBJ_gantry-data"} {
		for {
			// Each ask gets its own few seconds: a stream whose group has
			// not yet elected its leader leaves the request unanswered,
			// and one ask with the whole deadline waited it all out.
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := js.Stream(actx, name)
			acancel()
			if err == nil {
				if n := s.CachedInfo().Config.Replicas; n != 3 {
					t.Errorf("stream %s has %d replicas, want 3", name, n)
				}
				break
			}
			select {
			case <-exited:
				t.Fatalf("gantry server exited (%v) before stream %s was made:\n%s", waitErr, name, stderr.String())
			case <-ctx.Done():
				// The goroutines of a server that hangs say where.
				_ = cmd.Process.Signal(syscall.SIGQUIT)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
				}
				t.Fatalf("stream %s: %v\n%s", name, err, stderr.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}
