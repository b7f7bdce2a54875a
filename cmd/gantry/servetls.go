package main

import (
	"crypto/tls"
	"crypto/x509"
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
	_, _, err := loadServeTLS(natsTLSFlagNames, f.cert, f.key, f.clientCA)
	return err
}

// tlsFlagNames are the names of the flags that give a listener's
// certificate, key and client CA, for the errors that name them.
type tlsFlagNames struct{ cert, key, clientCA string }

var natsTLSFlagNames = tlsFlagNames{"--tls-server-cert", "--tls-server-key", "--tls-client-ca"}

// loadServeTLS reads a listener's certificate and key and its client CA
// (nil without one), given by the flags n; all empty is TLS off. What no
// client would accept is refused here, naming the flag and the file.
func loadServeTLS(n tlsFlagNames, cert, key, clientCA string) (*tls.Certificate, *x509.CertPool, error) {
	switch {
	case (cert == "") != (key == ""):
		return nil, nil, fmt.Errorf("%s and %s go together", n.cert, n.key)
	case clientCA != "" && cert == "":
		return nil, nil, fmt.Errorf("%s needs %s and %s", n.clientCA, n.cert, n.key)
	case cert == "":
		return nil, nil, nil
	}
	// Read them here to name the flag at fault: the NATS server's own
	// words ("failed to parse root ca certificate") name neither the flag
	// nor the file, and it serves an expired certificate that every
	// client then refuses.
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s and %s %s: %w", n.cert, cert, n.key, key, err)
	}
	if now := time.Now(); now.After(pair.Leaf.NotAfter) {
		return nil, nil, fmt.Errorf("%s %s expired on %s: every client would refuse it; renew it",
			n.cert, cert, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if clientCA == "" {
		return &pair, nil, nil
	}
	data, err := os.ReadFile(clientCA)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", n.clientCA, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, nil, fmt.Errorf("%s %s: no PEM certificate in it (want the CA that signs the clients' certificates)", n.clientCA, clientCA)
	}
	return &pair, pool, nil
}

// apply sets the TLS options of the embedded server.
func (f *serveTLSFlags) apply(o *embedded.Options) {
	o.TLSCert, o.TLSKey, o.TLSClientCA = f.cert, f.key, f.clientCA
}
