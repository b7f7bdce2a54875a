package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/spf13/cobra"
)

// serveTLSFlags turn on TLS in the embedded NATS server of `gantry up` and
// `gantry server --embedded-nats`. Clients then connect with --tls-ca (and
// --tls-cert/--tls-key when --tls-client-ca asks for client certificates).
type serveTLSFlags struct {
	cert, key, clientCA string
}

func (f *serveTLSFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.cert, "tls-server-cert", os.Getenv("GANTRY_TLS_SERVER_CERT"),
		"serve NATS over TLS only, with this certificate (PEM; needs --tls-server-key) (env GANTRY_TLS_SERVER_CERT)")
	c.Flags().StringVar(&f.key, "tls-server-key", os.Getenv("GANTRY_TLS_SERVER_KEY"),
		"key of --tls-server-cert (env GANTRY_TLS_SERVER_KEY)")
	c.Flags().StringVar(&f.clientCA, "tls-client-ca", os.Getenv("GANTRY_TLS_CLIENT_CA"),
		"require every NATS client to present a certificate signed by this CA (mutual TLS) (env GANTRY_TLS_CLIENT_CA)")
}

func (f *serveTLSFlags) validate() error {
	switch {
	case (f.cert == "") != (f.key == ""):
		return errors.New("--tls-server-cert and --tls-server-key go together")
	case f.clientCA != "" && f.cert == "":
		return errors.New("--tls-client-ca needs --tls-server-cert and --tls-server-key")
	case f.cert == "":
		return nil
	}
	// Read them here to name the flag at fault: the NATS server's own
	// words ("failed to parse root ca certificate") name neither the flag
	// nor the file, and it serves an expired certificate that every
	// client then refuses.
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return fmt.Errorf("--tls-server-cert %s and --tls-server-key %s: %w", f.cert, f.key, err)
	}
	if now := time.Now(); now.After(pair.Leaf.NotAfter) {
		return fmt.Errorf("--tls-server-cert %s expired on %s: every client would refuse it; renew it",
			f.cert, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if f.clientCA != "" {
		data, err := os.ReadFile(f.clientCA)
		if err != nil {
			return fmt.Errorf("--tls-client-ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(data) {
			return fmt.Errorf("--tls-client-ca %s: no PEM certificate in it (want the CA that signs the clients' certificates)", f.clientCA)
		}
	}
	return nil
}

// apply sets the TLS options of the embedded server.
func (f *serveTLSFlags) apply(o *embedded.Options) {
	o.TLSCert, o.TLSKey, o.TLSClientCA = f.cert, f.key, f.clientCA
}
