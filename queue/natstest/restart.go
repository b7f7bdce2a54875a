package natstest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Restartable is one NATS server with JetStream on a file store that a
// test stops and starts again on the same port and store, as `gantry up`
// restarting: its clients reconnect to it and find their streams.
type Restartable struct {
	// URL is the server's client URL, the same across restarts.
	URL string

	t          testing.TB
	opts       *natsserver.Options
	mu         sync.Mutex
	ns         *natsserver.Server
	stopped    bool // the test ended: no restart any more
	restarting sync.WaitGroup
}

// StartRestartable starts the server on a free loopback port with its
// store in a temporary directory; it stops when the test ends.
func StartRestartable(t testing.TB) *Restartable {
	t.Helper()
	p := holdPort(t)
	r := &Restartable{t: t, URL: fmt.Sprintf("nats://127.0.0.1:%d", p.port),
		opts: &natsserver.Options{ServerName: "restartable", Host: "127.0.0.1", Port: p.port,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	p.release()
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A restart asked for from a callback that outlived the test
		// (a subscription's) must not Add while this waits.
		r.mu.Lock()
		r.stopped = true
		r.mu.Unlock()
		r.restarting.Wait()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.ns.Shutdown()
	})
	return r
}

func (r *Restartable) start() error {
	ns, err := natsserver.NewServer(r.opts)
	if err != nil {
		return err
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("NATS server on %s not ready within 30 s", r.URL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = ns
	return nil
}

// RestartAfter stops the server now and, in the background, starts it
// again after down. It is safe to call from any goroutine; the test's end
// waits for the start. Once the test has ended it does nothing.
func (r *Restartable) RestartAfter(down time.Duration) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.ns.Shutdown()
	r.restarting.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.restarting.Done()
		time.Sleep(down)
		if err := r.start(); err != nil {
			r.t.Error(err)
		}
	}()
}
