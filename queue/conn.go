package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultURL is where every gantry command looks for NATS unless told.
const DefaultURL = "nats://127.0.0.1:4222"

// ConnOptions say how to reach and authenticate to NATS.
type ConnOptions struct {
	URL            string
	Name           string
	User, Password string
	Token          string
	Creds          string // a .creds file (JWT + nkey seed)
	NKeyFile       string // an nkey seed file
	TLSCA          string
	TLSCert        string
	TLSKey         string
	// Timeout bounds the first connection; 0 means 5 seconds.
	Timeout time.Duration
	// Reconnect keeps retrying forever after the first connection is lost,
	// as long-running roles want; CLI commands leave it off.
	Reconnect bool
	// InProcess, when set, connects straight to an in-process server
	// (embedded NATS) instead of through URL: no socket and no TLS, auth
	// as usual.
	InProcess nats.InProcessConnProvider
	// InboxPrefix replaces the replies' inbox prefix (_INBOX), as gantry's
	// long-running roles do (RoleInboxPrefix).
	InboxPrefix string
}

// RoleInboxPrefix is the inbox prefix of gantry's long-running roles (up,
// server, worker). A submit-only user may subscribe to _INBOX.> for the
// replies to its own requests, which would otherwise hand it every job a
// worker fetches (a task's command and environment; secrets' values are
// read at the worker, not carried) and every submission and report the
// server takes.
const RoleInboxPrefix = "_GANTRY_INBOX"

// Dial connects to NATS. Its errors say what to check.
func Dial(ctx context.Context, o ConnOptions) (*nats.Conn, error) {
	url := o.URL
	if url == "" {
		url = DefaultURL
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	// One without the other failed as "open : no such file or
	// directory" (a certificate without its key) or was dropped unsaid (a
	// key without its certificate).
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both (env GANTRY_NATS_TLS_CERT, GANTRY_NATS_TLS_KEY)")
	}
	opts := []nats.Option{nats.Name(o.Name), nats.Timeout(timeout)}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.InProcess != nil {
		opts = append(opts, nats.InProcessServer(o.InProcess))
		// An in-process connection skips TLS; a tls:// URL would make
		// the client insist on it.
		url = strings.Replace(url, "tls://", "nats://", 1)
	}
	if o.Reconnect {
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
	} else {
		opts = append(opts, nats.MaxReconnects(3))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		url := RedactURL(url) // errors end up in terminals and CI logs
		switch {
		case errors.Is(err, nats.ErrNoServers):
			return nil, fmt.Errorf("cannot reach NATS at %s: is `gantry up` running? (set --nats or GANTRY_NATS_URL)", url)
		case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired):
			return nil, fmt.Errorf("NATS at %s refused the credentials: check --user/--password, --creds or --token", url)
		case errors.Is(err, nats.ErrNoInfoReceived):
			return nil, fmt.Errorf("%s does not look like a NATS server: it did not greet as NATS does (set --nats or GANTRY_NATS_URL)", url)
		}
		// A NATS server greets a client at once; an HTTP server, waiting
		// for a request, says nothing, and the read timed out with Go's
		// words (read tcp ...: i/o timeout).
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && tlsTrouble(err, o) == "" {
			return nil, fmt.Errorf("%s does not look like a NATS server: it said nothing within %s, where NATS greets at once (an HTTP port? set --nats or GANTRY_NATS_URL)", url, timeout)
		}
		if msg := tlsTrouble(err, o); msg != "" {
			return nil, fmt.Errorf("TLS with NATS at %s failed: %s", url, msg)
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}

// tlsTrouble says in words what to check when err is a TLS failure, or ""
// when it is not one.
func tlsTrouble(err error, o ConnOptions) string {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	text := err.Error()
	switch {
	case errors.As(err, &unknown) || (errors.As(err, &verify) && strings.Contains(text, "unknown authority")):
		if o.TLSCA == "" {
			return "the server's certificate is signed by an unknown authority: give its CA with --tls-ca (env GANTRY_NATS_TLS_CA)"
		}
		return fmt.Sprintf("the server's certificate is not signed by the CA in %s (--tls-ca)", o.TLSCA)
	case errors.As(err, &hostname):
		return fmt.Sprintf("the server's certificate does not name this host: %v", hostname)
	case errors.As(err, &invalid):
		return fmt.Sprintf("the server's certificate is not valid: %v", invalid)
	case errors.Is(err, nats.ErrSecureConnRequired):
		return "the server requires TLS: give --tls-ca (env GANTRY_NATS_TLS_CA)"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "the server does not speak TLS: drop --tls-ca, --tls-cert and --tls-key"
	case errors.As(err, &alert) || strings.Contains(text, "certificate required") || strings.Contains(text, "bad certificate"),
		// With TLS 1.3 the server checks the client's certificate after the
		// handshake completes on the client's side: depending on timing the
		// refusal reaches the client as an alert or as the connection closed
		// under its first read or write.
		strings.Contains(text, "connection closed by remote after TLS handshake"):
		if o.TLSCert == "" {
			return "the server requires a client certificate: give --tls-cert and --tls-key"
		}
		return fmt.Sprintf("the server refused the client certificate %s: %v", o.TLSCert, err)
	case strings.Contains(text, "tls:") || strings.Contains(text, "x509:"):
		return err.Error()
	}
	return ""
}

// RedactURL is s, a NATS URL or a comma-separated list of them as --nats
// takes, with the password (or the token) in each masked: for errors and
// listings, which end up in terminals and logs.
func RedactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		scheme := strings.Index(p, "://")
		at := strings.LastIndex(p, "@")
		if scheme < 0 || at < scheme {
			continue
		}
		info := p[scheme+3 : at]
		masked := "xxxxx" // a token
		if user, _, ok := strings.Cut(info, ":"); ok {
			masked = user + ":xxxxx"
		}
		parts[i] = p[:scheme+3] + masked + p[at:]
	}
	return strings.Join(parts, ",")
}
