package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/embedded"
)

// TestServerLeaseAcrossProcesses: two `gantry server`s started at once
// against one NATS both ran, each the writer of its own store. One
// serves; the other exits 125 naming it. Killed (SIGKILL), the one that
// served leaves its lease: a server on another data directory waits for
// it to lapse, saying so, and takes it over (it was refused, and had to be
// started again); one stopped while it waits exits 0. Killed in turn, that
// one started again on its own data directory takes its lease at once;
// stopped cleanly, it releases it.
func TestServerLeaseAcrossProcesses(t *testing.T) {
	t.Parallel()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	server := func(dir string) *gantryProc {
		return startGantry(t, "server", "--nats", ns.ClientURL(), "--data", dir, "--log-level", "info")
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	procs := []*gantryProc{server(dirs[0]), server(dirs[1])}
	var winner, loser int
	select {
	case <-procs[0].exited:
		winner, loser = 1, 0
	case <-procs[1].exited:
		winner, loser = 0, 1
	case <-ctx.Done():
		t.Fatalf("both servers run:\n%s\n%s", procs[0].log, procs[1].log)
	}
	first := procs[winner]
	first.waitLog(t, ctx, "server ready")
	// The lease names its store; the ping, when the first answered it
	// already, its pid.
	pid := "pid " + strconv.Itoa(first.cmd.Process.Pid)
	if code, log := procs[loser].cmd.ProcessState.ExitCode(), procs[loser].log.String(); code != exitGantryError ||
		!strings.Contains(log, "another gantry server already serves this NATS (host ") || !strings.Contains(log, pid) {
		t.Fatalf("the second server: exit code %d, want %d, naming the first (%s):\n%s", code, exitGantryError, pid, log)
	}

	_ = first.cmd.Process.Kill() // SIGKILL: its lease stays
	<-first.exited
	host, _ := os.Hostname()
	waiting := fmt.Sprintf("waiting for the lease of the gantry server on host %s (%s, store %s) to lapse: "+
		"it has not renewed for ", host, pid, filepath.Join(dirs[winner], "gantry.db"))
	stopped := server(t.TempDir())
	stopped.waitLog(t, ctx, waiting)
	wantCleanStop(t, ctx, stopped)
	elsewhereDir := t.TempDir()
	elsewhere := server(elsewhereDir)
	elsewhere.waitLog(t, ctx, waiting)
	elsewhere.waitLog(t, ctx, "replaced a stale server lease: its holder had not renewed it for")
	elsewhere.waitLog(t, ctx, "server ready")
	_ = elsewhere.cmd.Process.Kill()
	<-elsewhere.exited

	again := server(elsewhereDir)
	again.waitLog(t, ctx, "took over the server lease left by this store's previous server, which no longer runs")
	again.waitLog(t, ctx, "server ready")
	wantCleanStop(t, ctx, again)

	// Stopped cleanly, it released the lease: the next server, anywhere,
	// starts at once.
	next := server(t.TempDir())
	next.waitLog(t, ctx, "server ready")
	wantCleanStop(t, ctx, next)
}
