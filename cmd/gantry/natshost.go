package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// natsHostFlag is --nats-host of up and server --embedded-nats: the
// address the embedded NATS server listens on. It was 127.0.0.1 alone,
// so a worker on another host waited for ever for a NATS it could never
// reach ("waiting for NATS at nats://gantry-1:4222 to accept
// connections"): a server with its own NATS served this host only.
type natsHostFlag struct{ host string }

func (f *natsHostFlag) add(c *cobra.Command) {
	c.Flags().StringVar(&f.host, "nats-host", "127.0.0.1",
		"IP address the embedded NATS server listens on: 127.0.0.1 serves this host only; 0.0.0.0 (or this host's address) "+
			"lets workers and clients on other hosts connect, and needs --user/--password or --token (and --tls-server-cert with --tls-server-key, else it warns)")
}

// remote reports whether other hosts can reach the address.
func (f natsHostFlag) remote() bool { return !net.ParseIP(f.host).IsLoopback() }

// check refuses a host that is not an IP address, and an address other
// hosts can reach where NATS asks no credentials: anyone there could
// take jobs (their environment) and submit runs.
func (f natsHostFlag) check(g *globals) error {
	if net.ParseIP(f.host) == nil {
		return fmt.Errorf("--nats-host %q: want an IP address of this host, such as 127.0.0.1 (this host only), 0.0.0.0 (every interface) or 10.0.0.5", f.host)
	}
	if f.remote() && g.conn.User == "" && g.conn.Token == "" {
		return fmt.Errorf("--nats-host %s: other hosts could reach the embedded NATS server, which asks for no credentials: "+
			"give --user and --password (or --token) too, which its clients then give", f.host)
	}
	return nil
}

// warnPlain warns when other hosts reach NATS without TLS: the
// credentials, jobs and logs cross the network in clear.
func (f natsHostFlag) warnPlain(log zerolog.Logger, tls *serveTLSFlags) {
	if f.remote() && tls.cert == "" {
		log.Warn().Str("host", f.host).Msg("the embedded NATS server speaks plain NATS on an address other hosts can reach: " +
			"the credentials, jobs and log lines cross the network in clear; serve TLS with --tls-server-cert and --tls-server-key")
	}
}

// localURL is the URL, on this host, of the embedded NATS server whose
// own URL is u: for 0.0.0.0 or ::, its loopback address, which a TLS
// certificate for the host is more likely to name than 0.0.0.0, and
// which DATA/nats.url then gives.
func (f natsHostFlag) localURL(u string) string {
	ip := net.ParseIP(f.host)
	if ip == nil || !ip.IsUnspecified() {
		return u
	}
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	lo := "127.0.0.1"
	if ip.To4() == nil {
		lo = "::1"
	}
	pu.Host = net.JoinHostPort(lo, pu.Port())
	return pu.String()
}
