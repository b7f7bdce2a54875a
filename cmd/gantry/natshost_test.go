package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/queue"
	"github.com/rs/zerolog"
)

// TestNATSHostIsChecked: --nats-host takes an IP address, and one that
// other hosts can reach only where NATS asks for credentials.
func TestNATSHostIsChecked(t *testing.T) {
	for _, tc := range []struct {
		host, user, token string
		want              string // in the error; "" for none
	}{
		{host: "127.0.0.1"},
		{host: "::1"},
		{host: "0.0.0.0", user: "op"},
		{host: "10.0.0.5", token: "t"},
		{host: "0.0.0.0", want: `--nats-host 0.0.0.0: other hosts could reach the embedded NATS server, which asks for no credentials: give --user and --password (or --token)`},
		{host: "::", want: "--nats-host ::: other hosts"},
		{host: "gantry-1", user: "op", want: `--nats-host "gantry-1": want an IP address`},
		{host: "", want: `--nats-host "": want an IP address`},
	} {
		g := &globals{conn: queue.ConnOptions{User: tc.user, Password: tc.user, Token: tc.token}}
		err := natsHostFlag{tc.host}.check(g)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("--nats-host %q (user %q, token %q): %v, want it taken", tc.host, tc.user, tc.token, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("--nats-host %q (user %q, token %q): %v, want %q", tc.host, tc.user, tc.token, err, tc.want)
		}
	}
}

// TestEmbeddedNATSListensOnNATSHost: the embedded NATS server listened
// on 127.0.0.1 alone, whatever the deployment, so workers on other hosts
// waited for ever. It listens on --nats-host, warns when that is plain
// NATS other hosts can reach, and DATA/nats.url gives a URL of this host
// for an address of every interface.
func TestEmbeddedNATSListensOnNATSHost(t *testing.T) {
	for _, tc := range []struct {
		host     string
		loopback bool
	}{
		{"127.0.0.1", true},
		{"0.0.0.0", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			dir := t.TempDir()
			var logs bytes.Buffer
			g := &globals{conn: queue.ConnOptions{User: "op", Password: "pw"}}
			ns, stop, err := startEmbedded(dir, natsHostFlag{tc.host}, 0, g, false, &submitterFlags{}, &serveTLSFlags{}, zerolog.New(&logs))
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			addr := ns.Addr().(*net.TCPAddr)
			if addr.IP.IsLoopback() != tc.loopback || (!tc.loopback && !addr.IP.IsUnspecified()) {
				t.Errorf("--nats-host %s: NATS listens on %s", tc.host, addr)
			}
			u, err := os.ReadFile(filepath.Join(dir, "nats.url"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(u), "nats://127.0.0.1:") {
				t.Errorf("--nats-host %s: DATA/nats.url says %q, want a URL of 127.0.0.1", tc.host, u)
			}
			warned := strings.Contains(logs.String(), "plain NATS on an address other hosts can reach")
			if warned == tc.loopback {
				t.Errorf("--nats-host %s without TLS: warned %v; log:\n%s", tc.host, warned, logs.String())
			}
		})
	}
}
