package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// httpAddrRE finds the address of the HTTP API in a role's log, where
// --http 127.0.0.1:0 picked a free port.
var httpAddrRE = regexp.MustCompile(`HTTP API ready\b.*\baddr=(\S+)`)

// httpAddrFromLog waits for the role logging to log to say where its HTTP
// API listens.
func httpAddrFromLog(t *testing.T, log *syncBuffer) string {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if m := httpAddrRE.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"HTTP API ready\" in the log:\n%s", log)
		}
	}
}

// httpsClient is a client that trusts the CA in the file ca (the system's
// roots when empty), with cfg's other settings.
func httpsClient(t *testing.T, ca string, cfg *tls.Config) *http.Client {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AppendCertsFromPEM(b)
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// clientCert is the TLS client certificate in the files cert and key.
func clientCert(t *testing.T, cert, key string) []tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return []tls.Certificate{pair}
}

// apiGet GETs url with c and the header's name/value pairs and returns
// the status and the body.
func apiGet(c *http.Client, url string, header ...string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// checkHTTPS checks an HTTP API served over TLS at addr with pki's server
// certificate and asking for the credentials in auth (a header name and
// value): a client with the CA gets answers, one without it or with only
// TLS 1.1 is refused in the handshake, and plain HTTP gets no answer of
// the API.
func checkHTTPS(t *testing.T, addr string, pki *testPKI, auth ...string) {
	t.Helper()
	base := "https://" + addr
	c := httpsClient(t, pki.ca, nil)
	waitHTTPSRuns(t, c, base, auth...)
	if code, body, err := apiGet(c, base+"/api/runs/nope", auth...); err != nil || code != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
		t.Errorf("GET /api/runs/nope over HTTPS: %d %q %v", code, body, err)
	}
	if code, body, err := apiGet(c, base+"/api/runs"); err != nil || code != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthenticated"`) {
		t.Errorf("GET /api/runs over HTTPS without credentials: %d %q %v", code, body, err)
	}
	if code, body, err := apiGet(c, base+"/healthz"); err != nil || code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz over HTTPS: %d %q %v", code, body, err)
	}
	var unknown x509.UnknownAuthorityError
	if _, _, err := apiGet(httpsClient(t, pki.otherCA, nil), base+"/healthz"); !errors.As(err, &unknown) {
		t.Errorf("a client with another CA: %v; want an unknown authority", err)
	}
	old := httpsClient(t, pki.ca, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if _, _, err := apiGet(old, base+"/healthz"); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("a TLS 1.1 client: %v; want a refusal of the protocol version", err)
	}
	// Go's server answers plain HTTP on a TLS port with a 400 of its own,
	// and no more.
	code, body, err := apiGet(&http.Client{Timeout: time.Minute}, "http://"+addr+"/api/runs?all=true", auth...)
	if err == nil && (code != http.StatusBadRequest || strings.Contains(body, `"runs"`)) {
		t.Errorf("plain HTTP to the HTTPS port: %d %q", code, body)
	}
}

// waitHTTPSRuns waits for GET /api/runs with c and the header to answer
// 200 with runs: the HTTP API may come up before the gantry server answers
// it (503); any other answer fails at once.
func waitHTTPSRuns(t *testing.T, c *http.Client, base string, header ...string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		code, body, err := apiGet(c, base+"/api/runs?all=true", header...)
		if err == nil && code == http.StatusOK && strings.Contains(body, `"runs":`) {
			return
		}
		if err != nil || code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("GET %s/api/runs: %d %q %v", base, code, body, err)
		}
	}
}

// TestServerServesHTTPS: `gantry server --http ADDR --http-tls-cert
// --http-tls-key` serves the HTTP API over HTTPS only, asking for NATS's
// operator credentials as over HTTP; it does not warn of credentials in
// clear. No Docker needed.
func TestServerServesHTTPS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	// GODEBUG=tls10server=1 lowers Go's own floor to TLS 1.0: the HTTP
	// API keeps its TLS 1.2 all the same.
	p := startProcEnv(t, []string{"GODEBUG=tls10server=1"}, "server", "--embedded-nats", "--nats-port", "0", "--data", t.TempDir(),
		"--user", "op", "--password", "pw",
		"--http", "127.0.0.1:0", "--http-tls-cert", pki.serverCert, "--http-tls-key", pki.serverKey)
	addr := httpAddrFromLog(t, p.log)
	checkHTTPS(t, addr, pki, "Authorization", "Basic b3A6cHc=") // op:pw
	if log := p.log.String(); !strings.Contains(log, "tls=true") || strings.Contains(log, "in clear") {
		t.Errorf("log:\n%s", log)
	}
}

// TestUpServesHTTPS: the same of `gantry up`, with --http-token.
func TestUpServesHTTPS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	in := startUp(t, "--http", "127.0.0.1:0", "--http-token", "ht",
		"--http-tls-cert", pki.serverCert, "--http-tls-key", pki.serverKey)
	checkHTTPS(t, httpAddrFromLog(t, in.log), pki, "Authorization", "Bearer ht")
}

// TestHTTPSClientCertificates: with --http-tls-client-ca, /api/ asks for a
// client certificate of that CA besides the credentials; /healthz stays
// open; a certificate of another CA fails the handshake.
func TestHTTPSClientCertificates(t *testing.T) {
	t.Parallel()
	pki, other := newTestPKI(t), newTestPKI(t)
	p := startProc(t, "server", "--embedded-nats", "--nats-port", "0", "--data", t.TempDir(),
		"--http", "127.0.0.1:0", "--http-token", "ht",
		"--http-tls-cert", pki.serverCert, "--http-tls-key", pki.serverKey, "--http-tls-client-ca", pki.ca)
	base := "https://" + httpAddrFromLog(t, p.log)
	withCert := httpsClient(t, pki.ca, &tls.Config{Certificates: clientCert(t, pki.clientCert, pki.clientKey)})
	bearer := []string{"Authorization", "Bearer ht"}
	waitHTTPSRuns(t, withCert, base, bearer...)
	if code, body, err := apiGet(withCert, base+"/api/runs"); err != nil || code != http.StatusUnauthorized || !strings.Contains(body, "--http-token") {
		t.Errorf("with the certificate, without the token: %d %q %v", code, body, err)
	}
	noCert := httpsClient(t, pki.ca, nil)
	if code, body, err := apiGet(noCert, base+"/api/runs", bearer...); err != nil || code != http.StatusUnauthorized ||
		!strings.Contains(body, "asks for a client certificate signed by the CA of --http-tls-client-ca") {
		t.Errorf("with the token, without a certificate: %d %q %v", code, body, err)
	}
	if code, _, err := apiGet(noCert, base+"/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz without a certificate: %d %v", code, err)
	}
	// The web UI asks for both too.
	if code, body, err := apiGet(noCert, base+"/ui/", bearer...); err != nil || code != http.StatusUnauthorized ||
		!strings.Contains(body, "asks for a client certificate signed by the CA of --http-tls-client-ca") {
		t.Errorf("/ui/ with the token, without a certificate: %d %q %v", code, body, err)
	}
	if code, body, err := apiGet(withCert, base+"/ui/", bearer...); err != nil || code != http.StatusOK || !strings.Contains(body, "<h1>Runs</h1>") {
		t.Errorf("/ui/ with the certificate and the token: %d %q %v", code, body, err)
	}
	otherCert := httpsClient(t, pki.ca, &tls.Config{Certificates: clientCert(t, other.clientCert, other.clientKey)})
	if code, body, err := apiGet(otherCert, base+"/api/runs", bearer...); err == nil || !strings.Contains(err.Error(), "tls: ") {
		t.Errorf("with a certificate of another CA: %d %q %v; want a TLS error", code, body, err)
	}
}

// TestHTTPTLSFlagsAreChecked: `gantry up` and `gantry server` refuse
// --http-tls-* that could not serve: one of the pair alone, a key that is
// not the certificate's, a missing file, an expired certificate, a client
// CA with no certificate, or any of them without --http. Each is refused
// before anything starts, naming the flag and the file.
func TestHTTPTLSFlagsAreChecked(t *testing.T) {
	t.Setenv("GANTRY_CONFIG", filepath.Join(t.TempDir(), "config.yaml"))
	pki := newTestPKI(t)
	expired, expiredKey := writeExpiredCert(t)
	const addr = "127.0.0.1:0"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--http", addr, "--http-tls-cert", pki.serverCert}, "--http-tls-cert and --http-tls-key go together"},
		{[]string{"--http", addr, "--http-tls-key", pki.serverKey}, "--http-tls-cert and --http-tls-key go together"},
		{[]string{"--http", addr, "--http-tls-client-ca", pki.ca}, "--http-tls-client-ca needs --http-tls-cert and --http-tls-key"},
		{[]string{"--http", addr, "--http-tls-cert", pki.serverCert, "--http-tls-key", pki.clientKey},
			"--http-tls-cert " + pki.serverCert + " and --http-tls-key " + pki.clientKey + ": tls: private key does not match public key"},
		{[]string{"--http", addr, "--http-tls-cert", pki.serverCert + ".nope", "--http-tls-key", pki.serverKey},
			"--http-tls-cert " + pki.serverCert + ".nope and --http-tls-key " + pki.serverKey + ": open " + pki.serverCert + ".nope: no such file or directory"},
		{[]string{"--http", addr, "--http-tls-cert", expired, "--http-tls-key", expiredKey},
			"--http-tls-cert " + expired + " expired on "},
		{[]string{"--http", addr, "--http-tls-cert", pki.serverCert, "--http-tls-key", pki.serverKey, "--http-tls-client-ca", pki.serverKey},
			"--http-tls-client-ca " + pki.serverKey + ": no PEM certificate in it"},
		{[]string{"--http", addr, "--http-tls-cert", pki.serverCert, "--http-tls-key", pki.serverKey, "--http-tls-client-ca", pki.ca + ".nope"},
			"--http-tls-client-ca: open " + pki.ca + ".nope: no such file or directory"},
		{[]string{"--http-tls-cert", pki.serverCert, "--http-tls-key", pki.serverKey},
			"--http-tls-cert and --http-tls-key are for the HTTP API's TLS, and the HTTP API is off: give --http ADDR too"},
		{[]string{"--http-tls-client-ca", pki.ca}, "--http-tls-client-ca is for the HTTP API's TLS, and the HTTP API is off: give --http ADDR too"},
	} {
		for _, role := range [][]string{
			{"up", "--nats-port", "0", "--id", fmt.Sprintf("test-http-tls-%d", time.Now().UnixNano())},
			{"server", "--embedded-nats", "--nats-port", "0"},
		} {
			data := t.TempDir()
			args := append(append(role, "--data", data), c.args...)
			root := newRoot()
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			root.SetArgs(args)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := root.ExecuteContext(ctx)
			cancel()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("gantry %v: %v; want %q", args, err, c.want)
			}
			if _, err := os.Stat(filepath.Join(data, "nats.url")); err == nil {
				t.Errorf("gantry %v started NATS", args)
			}
		}
	}
	// As the user sees it: one line, exit 125.
	wantRefused(t, os.Environ(), "--http-tls-cert and --http-tls-key go together",
		"up", "--data", t.TempDir(), "--nats-port", "0", "--http", addr, "--http-tls-cert", pki.serverCert)
}

// TestPlainHTTPWarnsOfCredentialsInClear: an HTTP API that asks for
// credentials over plain HTTP on an address other hosts can reach says at
// start that they cross the network in clear, and how to serve HTTPS; on
// loopback, or asking for nothing, it says nothing.
func TestPlainHTTPWarnsOfCredentialsInClear(t *testing.T) {
	basic := httpAuth{user: "op", password: "pw"}
	for _, c := range []struct {
		addr string
		auth httpAuth
		want string
	}{
		{"0.0.0.0:8080", basic, "its requests carry the NATS operator's user and password (Basic auth) across the network in clear"},
		{"[::]:8080", httpAuth{token: "ht", httpToken: true}, "its requests carry the --http-token across the network in clear"},
		{"192.0.2.7:8080", httpAuth{token: "nt"}, "its requests carry the NATS token across the network in clear"},
		{"127.0.0.1:8080", basic, ""},
		{"[::1]:8080", basic, ""},
		{"0.0.0.0:8080", httpAuth{}, ""},
	} {
		a, err := net.ResolveTCPAddr("tcp", c.addr)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		warnPlainHTTP(zerolog.New(&buf), a, c.auth)
		got := buf.String()
		switch {
		case c.want == "" && got != "":
			t.Errorf("%s %+v: warned %s", c.addr, c.auth, got)
		case c.want != "" && (!strings.Contains(got, c.want) || !strings.Contains(got, "serve HTTPS with --http-tls-cert and --http-tls-key") ||
			!strings.Contains(got, `"level":"warn"`)):
			t.Errorf("%s %+v: %q; want a warning saying %q", c.addr, c.auth, got, c.want)
		}
	}
}

// TestHTTPSHandshakeErrorsAreLogged: net/http printed a failed TLS
// handshake to stderr as an unstructured line of its own; it goes to the
// role's log, at debug.
func TestHTTPSHandshakeErrorsAreLogged(t *testing.T) {
	pki := newTestPKI(t)
	cfg, err := (&httpTLSFlags{cert: pki.serverCert, key: pki.serverKey}).config(&cobra.Command{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nc := embeddedNATS(t)
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- httpServe("127.0.0.1:0", nc, httpAuth{}, cfg, zerolog.New(zerolog.ConsoleWriter{Out: log, NoColor: true}))(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	base := "https://" + httpAddrFromLog(t, log)
	if _, _, err := apiGet(httpsClient(t, pki.otherCA, nil), base+"/healthz"); err == nil {
		t.Fatal("a client with another CA got an answer")
	}
	for deadline := time.Now().Add(time.Minute); !regexp.MustCompile(`DBG http: TLS handshake error from .* role=http`).MatchString(log.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no handshake error in the log:\n%s", log)
		}
	}
}
