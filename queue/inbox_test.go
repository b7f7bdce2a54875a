package queue

import (
	"errors"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/queue/natstest"
	"github.com/nats-io/nats.go"
)

// rolesServer starts an embedded NATS server with an operator (op) and a
// submit-only user (app), whose permissions name _INBOX.> only, and
// records its log.
func rolesServer(t *testing.T) (url string, log func() []string) {
	t.Helper()
	var mu sync.Mutex
	var lines []string
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), User: "op", Password: "op-pw",
		SubmitUser: "app", SubmitPassword: "app-pw", Log: func(_ embedded.Level, msg string) {
			mu.Lock()
			lines = append(lines, msg)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), lines...)
	}
}

// TestDialInboxFallback: with InboxFallback, a user who may subscribe under
// the prefix gets its replies there; the submit role, refused it, gets a
// working connection with NATS's default _INBOX.
func TestDialInboxFallback(t *testing.T) {
	url, serverLog := rolesServer(t)
	responder, err := Dial(t.Context(), ConnOptions{URL: url, User: "op", Password: "op-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer responder.Close()
	// gantry.api.runs.status: a subject the submit role may request.
	if _, err := responder.Subscribe("gantry.api.runs.status", func(m *nats.Msg) { m.Respond([]byte("ok " + m.Reply)) }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user, password, prefix string
	}{
		{"op", "op-pw", CLIInboxPrefix + "."},
		{"app", "app-pw", "_INBOX."},
	} {
		nc, err := Dial(t.Context(), ConnOptions{URL: url, User: tt.user, Password: tt.password,
			InboxPrefix: CLIInboxPrefix, InboxFallback: true})
		if err != nil {
			t.Fatalf("%s: %v", tt.user, err)
		}
		defer nc.Close()
		if got := nc.NewInbox(); !strings.HasPrefix(got, tt.prefix) {
			t.Errorf("%s: inbox %s, want the prefix %s", tt.user, got, tt.prefix)
		}
		m, err := nc.Request("gantry.api.runs.status", nil, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: request: %v", tt.user, err)
		}
		if want := "ok " + tt.prefix; !strings.HasPrefix(string(m.Data), want) {
			t.Errorf("%s: reply %q, want it to start %q", tt.user, m.Data, want)
		}
	}
	// The submitter's refused check is in the server's log, and known as
	// the check; a refusal of the whole prefix is not.
	var checks int
	for _, line := range serverLog() {
		if IsInboxCheckRefusal(line) {
			checks++
		}
	}
	if checks != 1 {
		t.Errorf("%d log lines are refusals of the inbox check, want 1: %q", checks, serverLog())
	}
	pry := `cid:7 - "v1.56.0:go" - Subscription Violation - Subject "_GANTRY_CLI.>", SID 1`
	if IsInboxCheckRefusal(pry) {
		t.Errorf("%q taken for the inbox check", pry)
	}
}

// TestMaySubscribeKeepsQuiet: the check's expected refusal does not reach
// the connection's error handler (nats.go's default prints every refusal
// on stderr); the refusals after it do.
func TestMaySubscribeKeepsQuiet(t *testing.T) {
	url, _ := rolesServer(t)
	errs := make(chan error, 10)
	nc, err := nats.Connect(url, nats.UserInfo("app", "app-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, tt := range []struct {
		subject string
		want    bool
	}{
		{CLIInboxPrefix + ".abc.*", false},
		{"_INBOX.abc.*", true},
		{RoleInboxPrefix + ".abc.*", false},
	} {
		ok, err := maySubscribe(t.Context(), nc, tt.subject, 5*time.Second)
		if err != nil || ok != tt.want {
			t.Errorf("maySubscribe %s: %v, %v; want %v", tt.subject, ok, err, tt.want)
		}
	}
	// Errors reach the handler in order: once this one has, the checks'
	// would have too.
	if _, err := nc.SubscribeSync("gantry.jobs.>"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	err = <-errs
	if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"gantry.jobs.>"`) {
		t.Errorf("the handler got %v first, want the refusal of gantry.jobs.>", err)
	}
	select {
	case err := <-errs:
		t.Errorf("and then %v", err)
	default:
	}
}

// BenchmarkDialInbox measures what the inbox check costs a CLI command's
// connection (loopback TCP, no TLS): one round trip for a user who may use
// CLIInboxPrefix, a second connection for one who may not.
func BenchmarkDialInbox(b *testing.B) {
	ns, err := embedded.Start(embedded.Options{StoreDir: b.TempDir(), User: "op", Password: "op-pw",
		SubmitUser: "app", SubmitPassword: "app-pw"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ns.Shutdown)
	for _, bb := range []struct {
		name     string
		user     string
		fallback bool
	}{
		{"operator/_INBOX", "op", false},
		{"operator/checked", "op", true},
		{"submitter/_INBOX", "app", false},
		{"submitter/checked", "app", true},
	} {
		b.Run(bb.name, func(b *testing.B) {
			o := ConnOptions{URL: ns.ClientURL(), User: bb.user, Password: bb.user + "-pw"}
			if bb.fallback {
				o.InboxPrefix, o.InboxFallback = CLIInboxPrefix, true
			}
			for b.Loop() {
				nc, err := Dial(b.Context(), o)
				if err != nil {
					b.Fatal(err)
				}
				nc.Close()
			}
		})
	}
}

// ownPrefixServer starts a NATS server whose user app may subscribe to
// replies under _INBOX_APP1 only, as docs/nats-api.md suggests for
// applications that must not read each other's replies.
func ownPrefixServer(t *testing.T) string {
	t.Helper()
	return natstest.Start(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Users: []*natsserver.User{{Username: "app", Password: "app-pw", Permissions: &natsserver.Permissions{
			Publish:   &natsserver.SubjectPermission{Allow: []string{"echo"}},
			Subscribe: &natsserver.SubjectPermission{Allow: []string{"_INBOX_APP1.>"}},
		}}, {Username: "op", Password: "op-pw"}}}).ClientURL()
}

// TestDialInboxRefused: a user refused both the CLI's prefix and _INBOX
// gets an error that names them and --inbox-prefix, not requests that
// time out as if no gantry server answered; with the prefix it is allowed
// (InboxCheck) it gets its replies; a prefix it chose and is refused is
// named with where it was chosen.
func TestDialInboxRefused(t *testing.T) {
	url := ownPrefixServer(t)
	responder, err := Dial(t.Context(), ConnOptions{URL: url, User: "op", Password: "op-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer responder.Close()
	if _, err := responder.Subscribe("echo", func(m *nats.Msg) { m.Respond([]byte(m.Reply)) }); err != nil {
		t.Fatal(err)
	}
	responder.Flush()

	_, err = Dial(t.Context(), ConnOptions{URL: url, User: "app", Password: "app-pw", InboxPrefix: CLIInboxPrefix, InboxFallback: true})
	var refused *InboxRefusedError
	if !errors.As(err, &refused) || strings.Join(refused.Prefixes, ",") != CLIInboxPrefix+",_INBOX" ||
		!strings.Contains(err.Error(), "under _GANTRY_CLI and _INBOX") || !strings.Contains(err.Error(), "--inbox-prefix PREFIX") {
		t.Errorf("refused both prefixes: %v", err)
	}

	nc, err := Dial(t.Context(), ConnOptions{URL: url, User: "app", Password: "app-pw", InboxPrefix: "_INBOX_APP1", InboxCheck: true, InboxChoice: "--inbox-prefix"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m, err := nc.Request("echo", nil, 10*time.Second)
	if err != nil {
		t.Fatalf("request with its own prefix: %v", err)
	}
	if !strings.HasPrefix(string(m.Data), "_INBOX_APP1.") {
		t.Errorf("request with its own prefix: replied to %q", m.Data)
	}

	_, err = Dial(t.Context(), ConnOptions{URL: url, User: "app", Password: "app-pw", InboxPrefix: "_INBOX_APP2", InboxCheck: true, InboxChoice: "--inbox-prefix"})
	if want := "refuses your user the replies under _INBOX_APP2 (--inbox-prefix): its permissions must allow subscribing to _INBOX_APP2.>"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a prefix chosen and refused: %v, want %q", err, want)
	}
}

func TestCheckInboxPrefix(t *testing.T) {
	for p, want := range map[string]string{
		"_INBOX_APP1": "", "apps.etl.inbox": "", "_INBOX": "",
		"":          "empty",
		"a..b":      "empty token",
		".a":        "empty token",
		"a.":        "empty token",
		"_INBOX.>":  "wildcard",
		"a.*.b":     "wildcard",
		"a>":        "wildcard",
		"my inbox":  "white space",
		"tab\there": "white space",
	} {
		err := CheckInboxPrefix(p)
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("CheckInboxPrefix(%q) = %v, want %q", p, err, want)
		}
	}
}

// FuzzCheckInboxPrefix: a prefix CheckInboxPrefix accepts makes inboxes
// NATS takes as subjects to subscribe to.
func FuzzCheckInboxPrefix(f *testing.F) {
	for _, s := range []string{"_INBOX_APP1", "a.b", "a..b", "x.>", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckInboxPrefix(p) != nil {
			return
		}
		o := nats.GetDefaultOptions()
		if err := nats.CustomInboxPrefix(p)(&o); err != nil {
			t.Fatalf("accepted %q, which nats.go refuses: %v", p, err)
		}
		if subj := p + ".abc.*"; !subjectValid(subj) {
			t.Fatalf("accepted %q, which makes the subject %q NATS does not take", p, subj)
		}
	})
}

// subjectValid is the NATS server's rule for a subscription subject
// (nats-server's IsValidSubject), which its client package keeps to
// itself.
func subjectValid(s string) bool { return natsserver.IsValidSubject(s) }
