package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"
	"unicode"

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
	// InboxFallback, with InboxPrefix, makes Dial check that NATS lets the
	// user subscribe under InboxPrefix (one round trip) and, where it
	// refuses, connect again with NATS's default prefix (_INBOX): the
	// CLI's way (CLIInboxPrefix) to keep its replies from users who may
	// subscribe to _INBOX.> without failing for those users themselves.
	InboxFallback bool
	// InboxCheck, with InboxPrefix, makes Dial check that NATS lets the
	// user subscribe under InboxPrefix, and fail with an *InboxRefusedError
	// where it does not: replies there would never come, and requests
	// would time out as if no gantry server answered.
	InboxCheck bool
	// InboxChoice, where InboxPrefix is the user's own choice, says where
	// the user made it ("--inbox-prefix"), for errors.
	InboxChoice string
}

// DefaultInboxPrefix is NATS's own inbox prefix, which clients use unless
// told otherwise.
const DefaultInboxPrefix = "_INBOX"

// InboxRefusedError is Dial's error when NATS refuses the user the
// subscriptions under the inbox prefixes it tried, so that no reply to a
// request could reach it.
type InboxRefusedError struct {
	URL      string   // redacted
	Prefixes []string // tried, in order
	Choice   string   // where the last prefix was chosen, if the user chose it
}

func (e *InboxRefusedError) Error() string {
	if e.Choice != "" {
		return fmt.Sprintf("NATS at %s refuses your user the replies under %s (%s): its permissions must allow subscribing to %s.>",
			e.URL, e.Prefixes[len(e.Prefixes)-1], e.Choice, e.Prefixes[len(e.Prefixes)-1])
	}
	return fmt.Sprintf("NATS at %s refuses your user the replies under %s: if its permissions allow another prefix (subscribe PREFIX.>), give it with --inbox-prefix PREFIX (env GANTRY_NATS_INBOX_PREFIX)",
		e.URL, strings.Join(e.Prefixes, " and "))
}

// CheckInboxPrefix reports what is wrong with p as an inbox prefix: NATS
// puts replies on subjects p.<id>.<id>, so p is one or more tokens
// without wildcards or spaces.
func CheckInboxPrefix(p string) error {
	if p == "" {
		return errors.New("empty")
	}
	for _, tok := range strings.Split(p, ".") {
		switch {
		case tok == "":
			return fmt.Errorf("%q has an empty token (a leading, trailing or doubled dot)", p)
		case tok == "*" || tok == ">" || strings.ContainsAny(tok, "*>"):
			return fmt.Errorf("%q has a wildcard (* or >): give the prefix alone, as in _INBOX_APP1", p)
		case strings.ContainsFunc(tok, unicode.IsSpace) || strings.ContainsRune(tok, 0):
			return fmt.Errorf("%q has white space or a NUL", p)
		}
	}
	return nil
}

// RoleInboxPrefix is the inbox prefix of gantry's long-running roles (up,
// server, worker). A submit-only user may subscribe to _INBOX.> for the
// replies to its own requests, which would otherwise hand it every job a
// worker fetches (a task's command and environment; secrets' values are
// read at the worker, not carried) and every submission and report the
// server takes.
const RoleInboxPrefix = "_GANTRY_INBOX"

// CLIInboxPrefix is the inbox prefix of the gantry CLI where its user may
// subscribe under it (operators); others (the submit role, whose
// permissions name _INBOX.> only) fall back to _INBOX (InboxFallback). It
// is not RoleInboxPrefix, so that a user narrowed to a role's permissions
// (a worker's, with _GANTRY_INBOX.>) does not see operators' replies.
const CLIInboxPrefix = "_GANTRY_CLI"

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
	dialer := &ctxDialer{ctx: ctx, timeout: timeout}
	if o.InProcess == nil {
		opts = append(opts, nats.SetCustomDialer(dialer))
	}
	nc, err := nats.Connect(url, opts...)
	if err == nil && !dialer.connected() {
		nc.Close()
		nc, err = nil, context.Cause(ctx)
	}
	if err != nil && ctx.Err() != nil {
		// A signal (or a caller's deadline) while connecting: say so,
		// not what the connection cut short made of it.
		return nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(url), context.Cause(ctx))
	}
	if err != nil {
		url := RedactURL(url) // errors end up in terminals and CI logs
		var dnsErr *net.DNSError
		switch {
		case errors.Is(err, nats.ErrNoServers):
			return nil, &UnreachableError{URL: url, err: err}
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			// A compose service's name resolves only once it runs.
			return nil, &UnreachableError{URL: url, Unresolved: dnsErr.Name, err: err}
		case hostDown(err):
			// Before the case of a peer that said nothing, which this
			// one also is a timeout of: its connection was never made.
			down := "no answer from its host within " + timeout.String()
			if !isTimeoutErr(err) {
				down = "its host is unreachable (" + unwrapAll(err).Error() + ")"
			}
			return nil, &UnreachableError{URL: url, Down: down, err: err}
		case errors.Is(err, syscall.ECONNRESET):
			// A NATS server starting (or stopping) accepts a connection
			// and resets it before it greets: the next try may be
			// greeted, as once the server is up it would.
			return nil, &UnreachableError{URL: url, Down: "it reset the connection before greeting (a NATS server starting or stopping)", err: err}
		case errors.Is(err, nats.ErrAuthorization) && !o.hasCredentials(url):
			// "refused the credentials" sent a user who gave none
			// looking for a typo in credentials it never had.
			return nil, fmt.Errorf("NATS at %s asks for credentials and none were given: give --user and --password, --token, --creds or --nkey (env GANTRY_NATS_USER and GANTRY_NATS_PASSWORD, GANTRY_NATS_TOKEN, GANTRY_NATS_CREDS, GANTRY_NATS_NKEY)", url)
		case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired):
			return nil, fmt.Errorf("NATS at %s refused the credentials: check --user/--password, --token, --creds or --nkey", url)
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
	if (o.InboxFallback || o.InboxCheck) && o.InboxPrefix != "" {
		ok, err := maySubscribe(ctx, nc, nc.NewInbox()+".*", timeout)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("connect to NATS at %s: check the inbox prefix %s: %w", RedactURL(url), o.InboxPrefix, err)
		}
		switch {
		case ok:
		case o.InboxFallback:
			// The prefix is fixed for a connection's life: connect anew,
			// to check the default one too.
			nc.Close()
			tried := o.InboxPrefix
			o.InboxPrefix, o.InboxFallback, o.InboxCheck, o.InboxChoice = DefaultInboxPrefix, false, true, ""
			nc, err := Dial(ctx, o)
			var refused *InboxRefusedError
			if errors.As(err, &refused) {
				refused.Prefixes = append([]string{tried}, refused.Prefixes...)
			}
			return nc, err
		default:
			nc.Close()
			return nil, &InboxRefusedError{URL: RedactURL(url), Prefixes: []string{o.InboxPrefix}, Choice: o.InboxChoice}
		}
	}
	return nc, nil
}

// hasCredentials reports whether o, or the user info of rawURL, gives NATS
// any credentials.
func (o ConnOptions) hasCredentials(rawURL string) bool {
	if o.User != "" || o.Password != "" || o.Token != "" || o.Creds != "" || o.NKeyFile != "" {
		return true
	}
	// nats://user:pass@host or nats://token@host, one URL or several.
	for _, u := range strings.Split(rawURL, ",") {
		if _, rest, ok := strings.Cut(u, "://"); ok {
			u = rest
		}
		if strings.Contains(u, "@") {
			return true
		}
	}
	return false
}

// UnreachableError is Dial's error when no NATS server at URL accepted
// the connection (refused, or none listening), its host name does not
// resolve (a compose service not started yet), or its host does not
// answer or cannot be routed to (down, rebooting, or a firewall dropping
// the connection): one that may pass as NATS comes up, which the
// long-running roles wait out and CLI commands report. Refused
// credentials, TLS failures and a peer that is not NATS are other errors:
// waiting does not cure them.
type UnreachableError struct {
	URL string // redacted
	// Unresolved is the host name that does not resolve, if that is why.
	Unresolved string
	// Down says why the connection was never made, where its host did
	// not answer in time or could not be reached.
	Down string
	err  error
}

func (e *UnreachableError) Error() string {
	switch {
	case e.Unresolved != "":
		return fmt.Sprintf("cannot reach NATS at %s: the host %s does not resolve (set --nats or GANTRY_NATS_URL)", e.URL, e.Unresolved)
	case e.Down != "":
		return fmt.Sprintf("cannot reach NATS at %s: %s: is it up, and does a firewall let the connection through? (set --nats or GANTRY_NATS_URL)", e.URL, e.Down)
	}
	return fmt.Sprintf("cannot reach NATS at %s: is `gantry up` running? (set --nats or GANTRY_NATS_URL)", e.URL)
}

// hostDown reports whether err is a connection that was never made
// because its host did not answer in time (a host that is down drops
// nothing and answers nothing; so does a firewall that drops) or could
// not be routed to. A connection made to a peer that then said nothing
// is a timeout too, but of a read, not a dial: that peer is up and is not
// NATS.
func hostDown(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		return false
	}
	return oe.Timeout() || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// isTimeoutErr reports whether err is a network timeout.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapAll is the innermost error err wraps: for a dial's, the system's
// words ("no route to host") without the addresses the URL already says.
func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

func (e *UnreachableError) Unwrap() error { return e.err }

// probeRefusal matches a NATS server's log line on its refusal of the
// subscription Dial checks CLIInboxPrefix with: "Subscription Violation -
// Subject "_GANTRY_CLI.<nuid>.*", SID 1".
var probeRefusal = regexp.MustCompile(`Subscription Violation - Subject "` + regexp.QuoteMeta(CLIInboxPrefix) + `\.[0-9A-Za-z]+\.\*", SID `)

// IsInboxCheckRefusal reports whether line, from a NATS server's log, is
// its refusal of the subscription with which Dial checks CLIInboxPrefix:
// expected at every CLI command of a user who may not use it (the submit
// role), where other refused subscriptions, _GANTRY_CLI.> included, may
// be someone's prying.
func IsInboxCheckRefusal(line string) bool { return probeRefusal.MatchString(line) }

// maySubscribe reports whether NATS lets nc subscribe to subject, which
// should be unique to this call: it subscribes, waits for the server's
// PONG, and unsubscribes. A refused subscription is not an error.
func maySubscribe(ctx context.Context, nc *nats.Conn, subject string, timeout time.Duration) (bool, error) {
	refusal := fmt.Sprintf("Subscription to %q", subject) // as nats-server words it
	isRefusal := func(err error) bool {
		return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), refusal)
	}
	// nats.go's default error handler prints every refusal on stderr: the
	// expected one would alarm a submitter at each command. The handler is
	// read when the error is processed, before the PONG, so the filter
	// has it and the default is back for what follows.
	prev := nc.ErrorHandler()
	nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if !isRefusal(err) && prev != nil {
			prev(nc, sub, err)
		}
	})
	defer nc.SetErrorHandler(prev)
	// Not SubscribeSync: its channel of 64 Ki messages took 0.7 ms to make.
	sub, err := nc.Subscribe(subject, func(*nats.Msg) {})
	if err != nil {
		return false, err
	}
	defer sub.Unsubscribe() // sent with the next flush: no wait
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := nc.FlushWithContext(fctx); err != nil {
		return false, err
	}
	// The server processes a connection's protocol in order: it answers a
	// refused SUB with -ERR before it answers the PING. nats.go's reader
	// records the -ERR as the connection's last error before it handles
	// the PONG that ended the flush, so the refusal, if any, is there now.
	return !isRefusal(nc.LastError()), nil
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
