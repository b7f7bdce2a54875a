package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/natstest"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// TestDialHostThatDoesNotAnswer: a NATS host that is down (or a firewall
// that drops the connection) made the connection time out, and Dial said
// the peer "does not look like a NATS server: it said nothing within 5s
// (an HTTP port?)", which a long-running role did not wait for. It is an
// UnreachableError saying the host did not answer.
func TestDialHostThatDoesNotAnswer(t *testing.T) {
	url := "nats://" + natstest.SilentAddr(t)
	_, err := Dial(t.Context(), ConnOptions{URL: url, Timeout: 300 * time.Millisecond})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.URL != url {
		t.Fatalf("Dial %s: %v, want an UnreachableError", url, err)
	}
	want := "cannot reach NATS at " + url + ": no answer from its host within 300ms: is it up, and does a firewall let the connection through? (set --nats or GANTRY_NATS_URL)"
	if err.Error() != want {
		t.Errorf("Dial %s: %q, want %q", url, err, want)
	}
}

// TestDialEndsWithItsContext: nats.Connect takes no context, and a
// command signalled while it connected to a host that did not answer, or
// to a peer that said nothing, went on for the whole connect timeout. Dial
// ends when its context does, saying why, whether the connection is not
// made yet or made and waiting for NATS's greeting.
func TestDialEndsWithItsContext(t *testing.T) {
	t.Parallel()
	mute, err := net.Listen("tcp", "127.0.0.1:0") // accepts, says nothing
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := mute.Accept()
			if err != nil {
				return // closed at the end of the test
			}
			conns = append(conns, c)
		}
	}()
	for _, c := range []struct{ name, addr string }{
		{"host that does not answer", natstest.SilentAddr(t)},
		{"peer that says nothing", mute.Addr().String()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			url := "nats://" + c.addr
			signalled := errors.New("interrupt signal received")
			ctx, cancel := context.WithCancelCause(t.Context())
			time.AfterFunc(200*time.Millisecond, func() { cancel(signalled) })
			start := time.Now()
			nc, err := Dial(ctx, ConnOptions{URL: url, Timeout: time.Minute})
			if err == nil {
				nc.Close()
				t.Fatalf("Dial %s connected", url)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Dial %s took %s after its context ended", url, d-200*time.Millisecond)
			}
			want := "connect to NATS at " + url + ": interrupt signal received"
			if !errors.Is(err, signalled) || err.Error() != want {
				t.Errorf("Dial %s: %q, want %q", url, err, want)
			}
		})
	}
}

// TestDialedConnectionOutlivesItsContext: the context bounds the connect,
// not the connection it made.
func TestDialedConnectionOutlivesItsContext(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	ctx, cancel := context.WithCancel(t.Context())
	nc, err := Dial(ctx, ConnOptions{URL: ns.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cancel()
	if _, err := nc.RTT(); err != nil {
		t.Errorf("the connection after its context ended: %v", err)
	}
}

// TestHostDown: the failures of a connection never made because its host
// is down or cannot be routed to are told from those of a peer that was
// reached and said nothing, which is up and not NATS.
func TestHostDown(t *testing.T) {
	dial := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	for _, c := range []struct {
		name string
		err  error
		down bool
	}{
		{"dial timeout", dial(timeoutErr{}), true},
		{"no route to host", dial(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), true},
		{"network unreachable", fmt.Errorf("nats: %w", dial(os.NewSyscallError("connect", syscall.ENETUNREACH))), true},
		{"refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), false},
		{"read timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := hostDown(c.err); got != c.down {
				t.Errorf("hostDown(%v) = %v, want %v", c.err, got, c.down)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
