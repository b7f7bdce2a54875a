//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// refusingPort is a port on 127.0.0.1 where connections are refused until
// a NATS server listens there: a socket bound to it, not listening, holds
// it for the test, and with SO_REUSEADDR on both (Go's listeners set it)
// Linux lets a listener bind it too. Unlike a port found free and closed,
// no other process can take it in between.
func refusingPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// startNATSOn starts an embedded NATS server on port of 127.0.0.1.
func startNATSOn(t *testing.T, port int, o embedded.Options) {
	t.Helper()
	o.StoreDir, o.Port = t.TempDir(), port
	ns, err := embedded.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
}

// wantCleanStop sends SIGTERM to p and wants it to exit 0.
func wantCleanStop(t *testing.T, ctx context.Context, p *gantryProc) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("gantry %s stopped while waiting for NATS: exit code %d, want 0:\n%s", p.cmd.Args[1], code, p.log.String())
		}
	case <-ctx.Done():
		p.fail(t, "gantry "+p.cmd.Args[1]+" did not stop on SIGTERM while waiting for NATS")
	}
}

// TestServerWaitsForNATS: a server started before NATS (compose, systemd)
// exited 125, "cannot reach NATS". It waits, saying so with the URL's
// password masked, and is ready once NATS accepts; stopped while it
// waits, it stops cleanly.
func TestServerWaitsForNATS(t *testing.T) {
	t.Parallel()
	port := refusingPort(t)
	url := fmt.Sprintf("nats://op:s3cret@127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	waiting := startServer(t, "--nats", url, "--log-level", "info")
	stopped := startServer(t, "--nats", url, "--log-level", "info")
	want := fmt.Sprintf("waiting for NATS at nats://op:xxxxx@127.0.0.1:%d to accept connections", port)
	waiting.waitLog(t, ctx, want)
	stopped.waitLog(t, ctx, want)
	wantCleanStop(t, ctx, stopped)

	startNATSOn(t, port, embedded.Options{User: "op", Password: "s3cret"})
	waiting.waitLog(t, ctx, "connected to NATS")
	waiting.waitLog(t, ctx, "server ready")
	if strings.Contains(waiting.log.String(), "s3cret") {
		t.Errorf("the server's log shows the password:\n%s", waiting.log.String())
	}
}

// TestWorkerStoppedWhileWaitingForNATS: a worker started before NATS
// waits for it, saying so, and stops cleanly on SIGTERM; it needs no
// Docker until NATS has answered.
func TestWorkerStoppedWhileWaitingForNATS(t *testing.T) {
	t.Parallel()
	port := refusingPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := startGantry(t, "worker", "--nats", fmt.Sprintf("nats://127.0.0.1:%d", port), "--id", "e2e-waitnats-stopped")
	w.waitLog(t, ctx, fmt.Sprintf("waiting for NATS at nats://127.0.0.1:%d to accept connections", port))
	wantCleanStop(t, ctx, w)
}

// TestWorkerWaitsForNATS: a worker started before NATS and its server
// exited 125, "cannot reach NATS". It waits for NATS, then for the
// server's streams, and is then ready.
func TestWorkerWaitsForNATS(t *testing.T) {
	t.Parallel()
	cli := sampletest.Docker(t)
	label := fmt.Sprintf("e2e-waitnats%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)
	port := refusingPort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := startGantry(t, "worker", "--nats", url, "--id", label, "--grace", "5s",
		"--container-label", sampletest.LabelKey+"="+label)
	w.waitLog(t, ctx, "waiting for NATS at "+url+" to accept connections")
	startNATSOn(t, port, embedded.Options{})
	w.waitLog(t, ctx, "connected to NATS")
	w.waitLog(t, ctx, "waiting for a gantry server to create the streams")
	startServer(t, "--nats", url)
	w.waitLog(t, ctx, "worker ready")
}

// TestWorkerWaitsForItsNATSHostToResolve: a NATS host name that does not
// resolve yet (a compose service not started) is waited for as a refused
// port is; a CLI command reports it at once.
func TestWorkerWaitsForItsNATSHostToResolve(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A name with an empty label: Go's resolver answers "no such host"
	// for it without asking a DNS server, so the test needs none, and
	// it takes the path a compose service's name takes before it runs.
	const host = "gantry-nats..invalid"
	const url = "nats://" + host + ":4222"
	w := startGantry(t, "worker", "--nats", url, "--id", "e2e-waitnats-dns")
	w.waitLog(t, ctx, "waiting for the NATS host "+host+" ("+url+") to resolve")
	wantCleanStop(t, ctx, w)
	_, errOut, code := runBin(t, append(os.Environ(), "GANTRY_NATS_URL="), "ps", "--nats", url)
	if want := "cannot reach NATS at " + url + ": the host " + host + " does not resolve"; code != exitGantryError || !strings.Contains(errOut, want) {
		t.Errorf("gantry ps: exit %d, want %d saying %q:\n%s", code, exitGantryError, want, errOut)
	}
}

// TestRolesDoNotWaitForNATSThatRefusesOrIsNotNATS: what waiting does not
// cure ends the server and the worker at once (125) with the message it
// had: credentials NATS refuses, a port that is not NATS. CLI commands do
// not wait for an unreachable NATS either.
func TestRolesDoNotWaitForNATSThatRefusesOrIsNotNATS(t *testing.T) {
	t.Parallel()
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), User: "op", Password: "op-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	unreachable := fmt.Sprintf("nats://127.0.0.1:%d", refusingPort(t))
	env := append(os.Environ(), "GANTRY_NATS_URL=", "GANTRY_REPLICAS=")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--data", t.TempDir(), "--nats", ns.ClientURL(), "--user", "op", "--password", "wrong"}, "refused the credentials"},
		{[]string{"worker", "--nats", ns.ClientURL(), "--user", "op", "--password", "wrong"}, "refused the credentials"},
		{[]string{"server", "--data", t.TempDir(), "--nats", "nats://" + web.Listener.Addr().String()}, "does not look like a NATS server"},
		{[]string{"worker", "--nats", "nats://" + web.Listener.Addr().String()}, "does not look like a NATS server"},
		{[]string{"ps", "--nats", unreachable}, "cannot reach NATS at " + unreachable},
		{[]string{"run", "--nats", unreachable, "-d", "--image", "busybox", "--", "true"}, "cannot reach NATS at " + unreachable},
	} {
		_, errOut, code := runBin(t, env, c.args...)
		if code != exitGantryError || !strings.Contains(errOut, c.want) {
			t.Errorf("gantry %s: exit %d, want %d saying %q:\n%s", strings.Join(c.args, " "), code, exitGantryError, c.want, errOut)
		}
	}
}

// TestRolesFailAtOnceWithoutJetStream: against a NATS server started
// without JetStream (nats-server without -js) the server and the worker
// waited for ever, saying "waiting for JetStream: no NATS server answers
// its API", as for a cluster electing its leader; CLI commands said no
// gantry server answers. All end at once (125) saying what to do.
func TestRolesFailAtOnceWithoutJetStream(t *testing.T) {
	t.Parallel()
	sampletest.Docker(t) // the worker asks Docker before NATS's JetStream
	url := natstest.WithoutJetStream(t, "")
	want := "NATS at " + url + " has no JetStream: start nats-server with JetStream enabled (-js, or jetstream {} in its configuration)"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"server", "--data", t.TempDir(), "--nats", url},
		{"worker", "--nats", url, "--id", "e2e-nojs"},
	} {
		p := startGantry(t, args...)
		select {
		case <-p.exited:
		case <-ctx.Done():
			p.fail(t, "gantry "+args[0]+" did not exit")
		}
		if code := p.cmd.ProcessState.ExitCode(); code != exitGantryError || !strings.Contains(p.log.String(), want) {
			t.Errorf("gantry %s: exit code %d, want %d, saying %q:\n%s", args[0], code, exitGantryError, want, p.log.String())
		}
	}
	env := append(os.Environ(), "GANTRY_NATS_URL=", "GANTRY_REPLICAS=")
	for _, args := range [][]string{
		{"ps", "--nats", url},
		{"run", "--nats", url, "-d", "--image", "busybox", "--", "true"},
		{"run", "--nats", url, "--image", "busybox", "--", "true"},
		{"logs", "--nats", url, "-f", "01kbz4m2d1j0vq3f5zq2r7w1xq"},
	} {
		_, errOut, code := runBin(t, env, args...)
		if code != exitGantryError || !strings.Contains(errOut, want) {
			t.Errorf("gantry %s: exit %d, want %d saying %q:\n%s", strings.Join(args, " "), code, exitGantryError, want, errOut)
		}
	}
}

// TestWorkerWaitsForANATSHostThatDoesNotAnswer: a NATS host that is down
// (or a firewall dropping the connection) let the connection time out,
// and the worker exited 125 saying the address "does not look like a NATS
// server (an HTTP port?)". It waits, saying the host does not answer, and
// stops cleanly on SIGTERM; a CLI command says so and exits 125.
func TestWorkerWaitsForANATSHostThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url := "nats://" + natstest.SilentAddr(t)
	w := startGantry(t, "worker", "--nats", url, "--id", "e2e-waitnats-silent")
	w.waitLog(t, ctx, "waiting for NATS at "+url+" to answer (no answer from its host within 5s)")
	wantCleanStop(t, ctx, w)
	_, errOut, code := runBin(t, append(os.Environ(), "GANTRY_NATS_URL="), "ps", "--nats", url)
	if want := "cannot reach NATS at " + url + ": no answer from its host within 5s"; code != exitGantryError || !strings.Contains(errOut, want) {
		t.Errorf("gantry ps: exit %d, want %d saying %q:\n%s", code, exitGantryError, want, errOut)
	}
}

// TestCLIEndsAtOnceOnASignalWhileConnecting: SIGTERM or Ctrl-C while a
// command connected to a NATS host that does not answer ended it only
// when the connect timed out, 5s later, saying the host did not answer.
// It ends at once, saying it was stopped while connecting.
func TestCLIEndsAtOnceOnASignalWhileConnecting(t *testing.T) {
	t.Parallel()
	url := "nats://" + natstest.SilentAddr(t)
	cmd := exec.Command(gantryBin, "ps", "--nats", url)
	cmd.Env = append(os.Environ(), "GANTRY_NATS_URL=", "GANTRY_CONTEXT=")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	// Signalled once it dials: its socket is open.
	for dialing := false; !dialing; time.Sleep(20 * time.Millisecond) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
		for _, fd := range fds {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", cmd.Process.Pid, fd.Name()))
			dialing = dialing || strings.HasPrefix(link, "socket:")
		}
		select {
		case <-exited:
			t.Fatalf("gantry ps exited before it dialed: %s", stderr.String())
		default:
		}
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("gantry ps did not end within 10s of SIGTERM")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gantry ps ended %s after SIGTERM, want at once", d)
	}
	want := "gantry: connect to NATS at " + url + ": terminated signal received\n"
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted || stderr.String() != want {
		t.Errorf("gantry ps, signalled while connecting: exit %d, stderr %q; want %d, %q", code, stderr.String(), exitInterrupted, want)
	}
}
