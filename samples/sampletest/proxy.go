package sampletest

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/client"
)

// DaemonProxy serves a unix socket of its own that forwards every
// connection to the Docker daemon's. Killed, it closes its socket and
// every connection through it: to a client of that socket, the daemon
// went away.
type DaemonProxy struct {
	path, target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	waits map[net.Conn]net.Conn // a client's connection that carried a wait, to the daemon's
	hold  *hold                 // requests held back (Hold), or nil
	wg    sync.WaitGroup
}

// hold is a Hold: the requests it holds back, and its state.
type hold struct {
	pat          string
	held, gate   chan struct{} // closed at the first request held, and at release
	heldOnce     sync.Once
	releasedOnce sync.Once
}

func (h *hold) release() { h.releasedOnce.Do(func() { close(h.gate) }) }

// Hold holds back, from now on, every request whose start holds pat (a
// path: "/containers/create"), as a daemon that takes its time would,
// until release is called (Kill calls it too). held is closed when the
// first such request is held.
func (p *DaemonProxy) Hold(pat string) (held <-chan struct{}, release func()) {
	h := &hold{pat: pat, held: make(chan struct{}), gate: make(chan struct{})}
	p.mu.Lock()
	if p.hold != nil {
		p.hold.release()
	}
	p.hold = h
	p.mu.Unlock()
	return h.held, h.release
}

// requestWatch passes a client's requests on to the daemon, noting the
// connection of the proxy's as a wait's when one goes through it.
type requestWatch struct {
	p      *DaemonProxy
	client net.Conn
	daemon net.Conn
}

func (w requestWatch) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	if w.p.waits != nil && bytes.Contains(b, []byte("/wait?")) {
		w.p.waits[w.client] = w.daemon
	}
	h := w.p.hold
	w.p.mu.Unlock()
	if h != nil && bytes.Contains(b, []byte(h.pat)) {
		h.heldOnce.Do(func() { close(h.held) })
		<-h.gate
	}
	return w.daemon.Write(b)
}

// BreakWaits closes the connections that have carried a container wait,
// and only those: to the client, its wait broke while the daemon is there.
func (p *DaemonProxy) BreakWaits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c, d := range p.waits {
		c.Close()
		d.Close()
		delete(p.waits, c)
		n++
	}
	return n
}

// StartDaemonProxy starts a proxy to the daemon cli talks to, skipping the
// test when that is not a unix socket.
func StartDaemonProxy(t *testing.T, cli *client.Client) *DaemonProxy {
	t.Helper()
	target, ok := strings.CutPrefix(cli.DaemonHost(), "unix://")
	if !ok {
		// CI's daemon is on its unix socket; there the test must run.
		if os.Getenv("GANTRY_REQUIRE_DOCKER") == "1" {
			t.Fatalf("the Docker daemon is at %s, not on a unix socket, and GANTRY_REQUIRE_DOCKER=1", cli.DaemonHost())
		}
		t.Skipf("the Docker daemon is at %s, not on a unix socket", cli.DaemonHost())
	}
	// A socket path must be short (108 bytes): not under t.TempDir().
	dir, err := os.MkdirTemp("", "gantry-proxy-")
	if err != nil {
		t.Fatal(err)
	}
	p := &DaemonProxy{path: filepath.Join(dir, "docker.sock"), target: target}
	t.Cleanup(func() { p.Kill(); os.RemoveAll(dir) })
	p.Start(t)
	return p
}

// Path is the proxy's socket: a Docker client of unix://<Path> talks to
// the daemon through it.
func (p *DaemonProxy) Path() string { return p.path }

// Start serves the proxy's socket again, after Kill: the daemon is back.
func (p *DaemonProxy) Start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.conns, p.waits = ln, map[net.Conn]bool{}, map[net.Conn]net.Conn{}
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("unix", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[d] = true, true
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(requestWatch{p, c, d}, c); d.Close() })
			p.wg.Go(func() { io.Copy(c, d); c.Close() })
		}
	})
}

// Kill stops the proxy as a daemon's end would: its socket goes, and so
// does every connection through it.
func (p *DaemonProxy) Kill() {
	p.mu.Lock()
	if p.hold != nil {
		p.hold.release()
	}
	if p.ln != nil {
		p.ln.Close() // removes the socket file too
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns, p.waits = nil, nil
	p.mu.Unlock()
	p.wg.Wait()
}
