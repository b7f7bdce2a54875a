package queue

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

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
