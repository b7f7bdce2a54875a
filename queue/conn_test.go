package queue

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestTLSTroubleNamesTheMissingClientCertificate: with TLS 1.3 a server
// that wants a client certificate refuses it after the client's side of the
// handshake is done, so the client sees an alert, an EOF or a broken pipe
// depending on timing. Every form must tell the user what to give.
func TestTLSTroubleNamesTheMissingClientCertificate(t *testing.T) {
	closed := func(cause error) error {
		return fmt.Errorf("%w: connection closed by remote after TLS handshake: %w", nats.ErrTLS, cause)
	}
	for _, err := range []error{
		errors.New("remote error: tls: certificate required"),
		closed(io.EOF),
		closed(fmt.Errorf("write tcp 127.0.0.1:1->127.0.0.1:2: %w", syscall.EPIPE)),
		closed(fmt.Errorf("read tcp 127.0.0.1:1->127.0.0.1:2: %w", syscall.ECONNRESET)),
	} {
		got := tlsTrouble(err, ConnOptions{TLSCA: "ca.pem"})
		if !strings.Contains(got, "requires a client certificate: give --tls-cert and --tls-key") {
			t.Errorf("%v: %q", err, got)
		}
		got = tlsTrouble(err, ConnOptions{TLSCA: "ca.pem", TLSCert: "me.pem", TLSKey: "me.key"})
		if !strings.Contains(got, "refused the client certificate me.pem") {
			t.Errorf("%v with a certificate: %q", err, got)
		}
	}
	if got := tlsTrouble(errors.New("dial tcp: connection refused"), ConnOptions{}); got != "" {
		t.Errorf("not a TLS failure: %q", got)
	}
}

// TestDialSomethingElseThanNATS: --nats pointing at an HTTP port gave
// "read tcp ...: i/o timeout" after the timeout; a port that answers
// otherwise, "protocol exception, INFO not received". Both say the address
// does not look like a NATS server.
func TestDialSomethingElseThanNATS(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(web.Close)
	ssh, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the listener is closed: cleanups run last first
	t.Cleanup(func() { ssh.Close() })
	wg.Go(func() {
		for {
			c, err := ssh.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
			c.Close()
		}
	})
	for _, tt := range []struct{ url, want string }{
		{"nats://" + web.Listener.Addr().String(), "does not look like a NATS server: it said nothing within 300ms"},
		{"nats://" + ssh.Addr().String(), "does not look like a NATS server: it did not greet as NATS does"},
	} {
		_, err := Dial(t.Context(), ConnOptions{URL: tt.url, Timeout: 300 * time.Millisecond})
		if err == nil || !strings.HasPrefix(err.Error(), tt.url+" "+tt.want) {
			t.Errorf("Dial %s: %v, want %q", tt.url, err, tt.want)
		}
		if ue := (*UnreachableError)(nil); errors.As(err, &ue) {
			t.Errorf("Dial %s: %v is an UnreachableError: a long-running role would wait for what waiting does not cure", tt.url, err)
		}
	}
}

// TestDialUnreachable: where nothing accepts the connection, Dial's error
// is an UnreachableError (which the long-running roles wait out), saying
// what it said before.
func TestDialUnreachable(t *testing.T) {
	const url = "nats://127.0.0.1:1"
	_, err := Dial(t.Context(), ConnOptions{URL: url, Timeout: time.Second})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.URL != url || !errors.Is(err, nats.ErrNoServers) {
		t.Fatalf("Dial %s: %#v, want an UnreachableError", url, err)
	}
	const want = "cannot reach NATS at " + url + ": is `gantry up` running? (set --nats or GANTRY_NATS_URL)"
	if err.Error() != want {
		t.Errorf("Dial %s: %q, want %q", url, err, want)
	}
}

// TestDialClientCertificateNeedsItsKey: --tls-cert without --tls-key
// failed as "error loading client certificate: open : no such file or
// directory", and --tls-key without --tls-cert was dropped unsaid; both
// say the two go together, before any connection is tried.
func TestDialClientCertificateNeedsItsKey(t *testing.T) {
	for _, o := range []ConnOptions{
		{URL: "nats://127.0.0.1:1", TLSCert: "client.pem"},
		{URL: "nats://127.0.0.1:1", TLSKey: "client-key.pem"},
	} {
		_, err := Dial(t.Context(), o)
		if err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key go together") {
			t.Errorf("cert %q key %q: %v", o.TLSCert, o.TLSKey, err)
		}
	}
}

// TestDialErrorsHideTheCredentials: an error of Dial printed the URL as
// given, password and all ("cannot reach NATS at nats://op:s3cret@..."),
// into terminals and CI logs.
func TestDialErrorsHideTheCredentials(t *testing.T) {
	for _, url := range []string{"nats://op:s3cret@127.0.0.1:1", "nats://s3cret@127.0.0.1:1", "nats://127.0.0.1:1, nats://op:s3cret@127.0.0.1:2"} {
		_, err := Dial(t.Context(), ConnOptions{URL: url, Timeout: time.Second})
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("%s: %v", url, err)
		}
	}
	for in, want := range map[string]string{
		"nats://op:pw@h:4222":                "nats://op:xxxxx@h:4222",
		"tls://t0k@h:4222":                   "tls://xxxxx@h:4222",
		"nats://h:4222":                      "nats://h:4222",
		"nats://a:p1@h1:4222, nats://a:p@h2": "nats://a:xxxxx@h1:4222, nats://a:xxxxx@h2",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
