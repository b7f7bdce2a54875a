package queue

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/natstest"
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
