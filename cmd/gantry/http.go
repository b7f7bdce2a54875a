package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// httpServe returns a role serving a small read-only HTTP API on addr, or
// nil when addr is empty: GET /healthz, /api/runs and /api/runs/{id}, and
// the web UI under /ui/ (webui.go). The
// API asks what NATS asks of the operator (auth); it is HTTPS only with
// tlsConfig (httptls.go), plain HTTP when that is nil.
func httpServe(addr string, nc *nats.Conn, auth httpAuth, tlsConfig *tls.Config, log zerolog.Logger) func(context.Context) error {
	if addr == "" {
		return nil
	}
	return func(ctx context.Context) error {
		c, err := client.New(nc)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("--http %s: the address is in use; pick another", addr)
		}
		if err != nil {
			return fmt.Errorf("--http %s: %w", addr, err)
		}
		srv := &http.Server{Handler: httpHandler(c, nc, auth), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: httpIdleTimeout,
			TLSConfig: tlsConfig, ErrorLog: httpErrorLog(log)}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		log.Info().Str("addr", ln.Addr().String()).Bool("auth", auth.on()).Bool("tls", tlsConfig != nil).Msg("HTTP API ready")
		if tlsConfig == nil {
			warnPlainHTTP(log, ln.Addr(), auth)
			err = srv.Serve(ln)
		} else {
			err = srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		}
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// httpErrorLog passes net/http's own lines (a TLS handshake that failed,
// a handler's panic) to log, which printed them to stderr unstructured.
// A failed handshake is logged at debug: the client that failed it (one
// without the CA, a load balancer's TCP probe, a scanner) reports it.
func httpErrorLog(log zerolog.Logger) *stdlog.Logger {
	return stdlog.New(httpLogWriter{log.With().Str("role", "http").Logger()}, "", 0)
}

type httpLogWriter struct{ log zerolog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	if strings.Contains(msg, "TLS handshake error") {
		w.log.Debug().Msg(msg)
	} else {
		w.log.Warn().Msg(msg)
	}
	return len(p), nil
}

// warnPlainHTTP warns when the HTTP API asks for credentials over plain
// HTTP on an address other hosts can reach (0.0.0.0 and [::] are such):
// anyone on the way reads them. On loopback they stay on this host, as
// behind a TLS-terminating proxy on it.
func warnPlainHTTP(log zerolog.Logger, addr net.Addr, auth httpAuth) {
	if a, ok := addr.(*net.TCPAddr); !auth.on() || (ok && a.IP.IsLoopback()) {
		return
	}
	var secret string
	switch {
	case auth.user != "":
		secret = "the NATS operator's user and password (Basic auth)"
	case auth.httpToken:
		secret = "the --http-token"
	default:
		secret = "the NATS token"
	}
	log.Warn().Str("addr", addr.String()).Msgf("the HTTP API is plain HTTP on an address other hosts can reach: "+
		"its requests carry %s across the network in clear; serve HTTPS with --http-tls-cert and --http-tls-key "+
		"(or listen on 127.0.0.1 behind a TLS proxy)", secret)
}

// httpIdleTimeout closes a kept-alive connection that sent no request for
// that long. Without it (ReadTimeout is not set either) an idle connection
// was kept for ever: anyone who can reach --http, credentials or not, could
// hold the process's file descriptors, which the embedded NATS server and
// the store share, one request each.
var httpIdleTimeout = 2 * time.Minute

// errHTTPTokenWithoutHTTP refuses --http-token without --http, which
// serves nothing (GANTRY_HTTP_TOKEN alone is let be: it may be set for
// every command).
var errHTTPTokenWithoutHTTP = errors.New("--http-token is the token of the HTTP API, which is off: give --http ADDR too")

const httpAddrHelp = "address of the HTTP API, e.g. 127.0.0.1:8080 (off when empty; port 0 picks a free one, logged at start: HTTP API ready addr=...); plain HTTP unless --http-tls-cert and --http-tls-key are given"

// httpHelp is the paragraph of up's and server's help on the HTTP API.
const httpHelp = `With --http ADDR it serves a read-only HTTP API: /healthz, /api/runs and
/api/runs/{id} (an unknown query parameter is refused with 400, naming it,
as /api/runs?stauts=FAILED), and a read-only web UI at /ui/ (gantry up --http
127.0.0.1:8080, then open http://127.0.0.1:8080/ui/; a browser asks for the
user and password, or takes the token as the password). /api/ asks for what NATS asks of the operator (Basic auth
with --user/--password, Authorization: Bearer with --token), or for
--http-token instead. It is plain HTTP unless --http-tls-cert and
--http-tls-key are given: then HTTPS only (TLS 1.2 or later), and clients
give the CA (curl --cacert ca.pem https://ADDR/api/runs). Over plain HTTP
the credentials cross the network in clear: keep such an ADDR on 127.0.0.1
or behind a TLS proxy. --http-tls-client-ca also asks each /api/ request
for a client certificate of that CA (curl --cert/--key).`

const httpTokenHelp = "token the HTTP API asks for (Authorization: Bearer TOKEN) instead of NATS's operator credentials (env GANTRY_HTTP_TOKEN)"

// httpAuth is what the HTTP API asks of a request: the NATS operator's
// user and password (Basic auth) or token (Bearer); nothing when NATS
// asks nothing.
type httpAuth struct {
	user, password, token string
	httpToken             bool // token is --http-token's, not NATS's
	// clientCert asks /api/ requests for a certificate of
	// --http-tls-client-ca too (the handshake verified it).
	clientCert bool
}

// httpAuthFor is the HTTP API's auth for a role connected with o: the
// --http-token when one is given, else what NATS asks of the operator (its
// user and password, from the flags or the URL, or its token). NATS auth
// the HTTP API cannot mirror (a creds or nkey file, client certificates)
// needs a --http-token: the API is not served open beside it.
func httpAuthFor(o queue.ConnOptions, token string, clientCerts bool) (httpAuth, error) {
	if token != "" {
		return httpAuth{token: token, httpToken: true}, nil
	}
	switch {
	case o.User != "":
		return httpAuth{user: o.User, password: o.Password}, nil
	case o.Token != "":
		return httpAuth{token: o.Token}, nil
	}
	// --nats may list a cluster's servers, comma-separated (spaces
	// allowed), as NATS takes them: parsed whole, "a, b" failed and "a,b"
	// read only a's credentials, and the API was served open beside a
	// NATS that asks for them.
	for _, s := range strings.Split(o.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.User == nil {
			continue
		}
		if pw, ok := u.User.Password(); ok {
			return httpAuth{user: u.User.Username(), password: pw}, nil
		}
		return httpAuth{token: u.User.Username()}, nil
	}
	if o.Creds != "" || o.NKeyFile != "" || o.TLSCert != "" || clientCerts {
		return httpAuth{}, errors.New("--http: NATS asks for a creds or nkey file or a client certificate, which the HTTP API cannot check: " +
			"give --http-token TOKEN, which it asks for instead (Authorization: Bearer TOKEN), or leave --http off")
	}
	return httpAuth{}, nil
}

func (a httpAuth) on() bool { return a.user != "" || a.token != "" || a.clientCert }

// asks says what a refused request should have carried.
func (a httpAuth) asks() string {
	switch {
	case a.user != "":
		return "the HTTP API asks for the NATS operator's user and password (Basic auth)"
	case a.httpToken:
		return "the HTTP API asks for the token given with --http-token (Authorization: Bearer TOKEN)"
	}
	return "the HTTP API asks for the NATS token (Authorization: Bearer TOKEN)"
}

// allows reports whether r carries the credentials a asks for.
func (a httpAuth) allows(r *http.Request) bool {
	same := func(x, y string) bool { return subtle.ConstantTimeCompare([]byte(x), []byte(y)) == 1 }
	switch {
	case a.user != "":
		u, p, ok := r.BasicAuth()
		userOK, passOK := same(u, a.user), same(p, a.password) // both, whatever the first gives
		return ok && userOK && passOK
	case a.token != "":
		// The scheme is case-insensitive (RFC 9110): curl and browsers
		// send "Bearer", some clients "bearer".
		scheme, t, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		return ok && strings.EqualFold(scheme, "Bearer") && same(t, a.token)
	}
	return true
}

// httpHandler serves the HTTP API and the web UI with c; /healthz (and
// the UI's style sheet) need no credentials.
func httpHandler(c *client.Client, nc *nats.Conn, auth httpAuth) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if nc.IsConnected() {
			w.Write([]byte("ok\n"))
			return
		}
		http.Error(w, "nats disconnected", http.StatusServiceUnavailable)
	})
	api := http.NewServeMux()
	api.HandleFunc("GET /api/runs", func(w http.ResponseWriter, r *http.Request) {
		o, err := listQuery(r.URL.Query())
		if err != nil {
			writeJSON(w, nil, err)
			return
		}
		runs, next, err := c.List(r.Context(), o)
		writeJSON(w, map[string]any{"runs": runs, "next": next}, err)
	})
	api.HandleFunc("GET /api/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := checkQuery("/api/runs/{id}", r.URL.Query(), nil); err != nil {
			writeJSON(w, nil, err)
			return
		}
		run, err := c.Get(r.Context(), r.PathValue("id"))
		writeJSON(w, run, err)
	})
	// Every answer of /api/ is JSON, refusals too: the mux's own 404 and
	// 405 are plain text, which a client decoding {"error":...} chokes on.
	for _, path := range []string{"/api/runs", "/api/runs/{id}"} {
		api.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, nil, &jobs.Error{Code: codeMethodNotAllowed, Message: fmt.Sprintf("%s %s: the HTTP API is read-only: use GET", r.Method, r.URL.Path)})
		})
	}
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, nil, &jobs.Error{Code: jobs.CodeNotFound, Message: fmt.Sprintf("%s: no such endpoint (the HTTP API has /api/runs and /api/runs/{id})", r.URL.Path)})
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if auth.clientCert && !hasClientCert(r) {
			writeJSON(w, nil, &jobs.Error{Code: codeUnauthenticated, Message: clientCertAsked})
			return
		}
		if !auth.allows(r) {
			if auth.user != "" {
				w.Header().Set("WWW-Authenticate", `Basic realm="gantry"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
			}
			writeJSON(w, nil, &jobs.Error{Code: codeUnauthenticated, Message: auth.asks()})
			return
		}
		api.ServeHTTP(w, r)
	})
	ui := newWebUI(c, nc) // webui.go
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/", http.StatusFound)
	})
	mux.HandleFunc("GET /ui/style.css", ui.style) // no secret in it: the sign-in page has it too
	mux.Handle("/ui/", ui.guard(auth))
	return mux
}

// clientCertAsked is the refusal of a request without the client
// certificate --http-tls-client-ca asks for.
const clientCertAsked = "the HTTP API asks for a client certificate signed by the CA of --http-tls-client-ca (curl --cert CERT --key KEY)"

// hasClientCert reports whether r came with a certificate the TLS
// handshake verified.
func hasClientCert(r *http.Request) bool { return r.TLS != nil && len(r.TLS.VerifiedChains) > 0 }

// codeUnauthenticated is the code of a request without the credentials
// the HTTP API asks for (HTTP only: NATS refuses such clients itself).
const codeUnauthenticated = "unauthenticated"

// codeMethodNotAllowed is the code of a request with another method than
// GET (HTTP only: the NATS API has no methods).
const codeMethodNotAllowed = "method_not_allowed"

// listParams are the query parameters of /api/runs (listQuery).
var listParams = []string{"all", "array", "before", "cluster", "family", "limit", "status", "tag", "worker"}

// checkQuery refuses the parameters of q that endpoint does not take,
// naming each one (and the known one it likely meant) and those it takes:
// a typo (?stauts=FAILED) was ignored, and the answer was for no filter.
func checkQuery(endpoint string, q url.Values, known []string) error {
	var unknown []string
	for k := range q {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	msgs := make([]string, len(unknown))
	for i, k := range unknown {
		msgs[i] = fmt.Sprintf("unknown query parameter %q", k)
		if s := jobs.Nearest(k, known); s != "" {
			msgs[i] += fmt.Sprintf(" (did you mean %q?)", s)
		}
	}
	takes := "takes no query parameters"
	if len(known) > 0 {
		takes = "takes " + strings.Join(known, ", ")
	}
	return jobs.Invalid(strings.Join(msgs, "; ") + "; " + endpoint + " " + takes)
}

// listQuery reads runs.list's filters from /api/runs's query (listParams):
// all, status (repeated or comma-separated), family, cluster, worker,
// limit, before, tag (repeated: tag=team=data, or tag=team for any value),
// array (an array run's children, whatever their status, as gantry ps --array).
// It refuses other parameters, and names every problem at once.
func listQuery(q url.Values) (client.ListOptions, error) { return listQueryOf("/api/runs", q) }

// listQueryOf is listQuery for the endpoint its refusals name.
func listQueryOf(endpoint string, q url.Values) (client.ListOptions, error) {
	o := client.ListOptions{Before: q.Get("before"), TaskDefinition: q.Get("family"), Cluster: q.Get("cluster"), Worker: q.Get("worker"),
		ArrayJobID: q.Get("array")}
	if o.ArrayJobID != "" {
		o.All = true // its children, ended or not, as gantry ps --array
	}
	var problems []string
	if err := checkQuery(endpoint, q, listParams); err != nil {
		problems = append(problems, err.Error())
	}
	if v := q.Get("all"); v != "" {
		all, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("all=%q: want true or false", v))
		}
		o.All = all
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			problems = append(problems, fmt.Sprintf("limit=%q: want a positive number", v))
		}
		o.Limit = n
	}
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			s, err := jobs.ParseStatus(st)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			o.Statuses = append(o.Statuses, s)
		}
	}
	if len(o.Statuses) > 0 {
		o.All = true // a status asked for is shown, ended or not
	}
	if err := tagFilters(&o, q["tag"]); err != nil { // completion.go
		problems = append(problems, "tag="+err.Error())
	}
	if len(problems) > 0 {
		return o, jobs.Invalid(strings.Join(problems, "; "))
	}
	return o, nil
}

// httpError is the API error code of err and the HTTP status it is
// answered with.
func httpError(err error) (code string, status int) {
	code = jobs.ErrorCode(err)
	// No server, or one that did not answer in time, is unavailable
	// (503, worth retrying), as the NATS API says of its own timeouts.
	if errors.Is(err, client.ErrNoServer) || (code == jobs.CodeInternal &&
		(errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded))) {
		code = jobs.CodeUnavailable
	}
	status = server.HTTPStatus(code)
	switch code {
	case codeUnauthenticated:
		status = http.StatusUnauthorized
	case codeMethodNotAllowed:
		status = http.StatusMethodNotAllowed
	}
	return code, status
}

func writeJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code, status := httpError(err)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"error": jobs.Error{Code: code, Message: err.Error()}})
		return
	}
	json.NewEncoder(w).Encode(v)
}
