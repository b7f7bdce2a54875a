package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// httpTLSFlags serve the HTTP API of `gantry up` and `gantry server` over
// HTTPS. They are apart from --tls-server-cert, and do not default to it:
// that certificate is the embedded NATS server's, which listens on
// 127.0.0.1 only, while --http may face the network under other names;
// `gantry server` against an outside NATS has none; and an API that
// turned to HTTPS by itself when NATS did would break its plain-HTTP
// clients. Give the same files to both where their names fit.
type httpTLSFlags struct {
	cert, key, clientCA string
}

var httpTLSFlagNames = tlsFlagNames{"--http-tls-cert", "--http-tls-key", "--http-tls-client-ca"}

func (f *httpTLSFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.cert, "http-tls-cert", os.Getenv("GANTRY_HTTP_TLS_CERT"),
		"serve the HTTP API over HTTPS only, with this certificate (PEM, any intermediates after it; needs --http-tls-key); "+
			"its names must cover the address clients use (env GANTRY_HTTP_TLS_CERT)")
	c.Flags().StringVar(&f.key, "http-tls-key", os.Getenv("GANTRY_HTTP_TLS_KEY"),
		"key of --http-tls-cert (env GANTRY_HTTP_TLS_KEY)")
	c.Flags().StringVar(&f.clientCA, "http-tls-client-ca", os.Getenv("GANTRY_HTTP_TLS_CLIENT_CA"),
		"ask every /api/ request for a client certificate signed by this CA (mutual TLS), besides the credentials; "+
			"/healthz stays open (env GANTRY_HTTP_TLS_CLIENT_CA)")
}

// config checks the flags against --http's address and returns the HTTP
// API's TLS configuration, nil when it is plain HTTP. The flags without
// --http are refused, as --http-token is; their GANTRY_HTTP_TLS_*
// variables alone are let be, as they may be set for every command.
func (f *httpTLSFlags) config(c *cobra.Command, httpAddr string) (*tls.Config, error) {
	if httpAddr == "" {
		var given []string
		for _, name := range []string{"http-tls-cert", "http-tls-key", "http-tls-client-ca"} {
			if c.Flags().Changed(name) {
				given = append(given, "--"+name)
			}
		}
		switch len(given) {
		case 0:
			return nil, nil
		case 1:
			return nil, fmt.Errorf("%s is for the HTTP API's TLS, and the HTTP API is off: give --http ADDR too", given[0])
		}
		return nil, fmt.Errorf("%s and %s are for the HTTP API's TLS, and the HTTP API is off: give --http ADDR too",
			strings.Join(given[:len(given)-1], ", "), given[len(given)-1])
	}
	pair, pool, err := loadServeTLS(httpTLSFlagNames, f.cert, f.key, f.clientCA)
	if err != nil || pair == nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*pair}}
	if pool != nil {
		// Asked for in the handshake, not required there: /healthz stays
		// open to load balancers' probes, as it does without credentials,
		// and httpHandler refuses an /api/ request that brought none.
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}
