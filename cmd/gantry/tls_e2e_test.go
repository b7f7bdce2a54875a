package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/samples/sampletest"
)

// testPKI is a CA with a server certificate for the loopback addresses and
// a client certificate, written as PEM files in a temporary directory.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCA                                          string // a CA that signed nothing here
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	serial := int64(1)
	sign := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, der
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		c, der := sign(&x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil, &k.PublicKey, k)
		return c, k, der
	}
	caCert, caKey, caDER := newCA("gantry test CA")
	_, _, otherDER := newCA("another CA")
	p := &testPKI{ca: write("ca.pem", "CERTIFICATE", caDER), otherCA: write("other-ca.pem", "CERTIFICATE", otherDER)}

	sk := newKey()
	_, sDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "gantry nats"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, caCert, &sk.PublicKey, caKey)
	p.serverCert, p.serverKey = write("server.pem", "CERTIFICATE", sDER), write("server-key.pem", "EC PRIVATE KEY", keyDER(sk))

	ck := newKey()
	_, cDER := sign(&x509.Certificate{Subject: pkix.Name{CommonName: "gantry client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, caCert, &ck.PublicKey, caKey)
	p.clientCert, p.clientKey = write("client.pem", "CERTIFICATE", cDER), write("client-key.pem", "EC PRIVATE KEY", keyDER(ck))
	return p
}

// natsURL is the URL the instance's CLI commands use.
func (in *instance) natsURL() string {
	for _, e := range in.env {
		if v, ok := strings.CutPrefix(e, "GANTRY_NATS_URL="); ok {
			return v
		}
	}
	in.t.Fatal("no GANTRY_NATS_URL")
	return ""
}

// wantRefused checks that a CLI command fails with a one-line gantry error
// (exit 125) that says want.
func wantRefused(t *testing.T, env []string, want string, args ...string) {
	t.Helper()
	_, errOut, code := runBin(t, env, args...)
	if code != exitGantryError || !strings.Contains(errOut, want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("gantry %v: exit %d, stderr %q; want 125 and one line saying %q", args, code, errOut, want)
	}
}

// TestUpServesTLS: `gantry up --tls-server-cert/--tls-server-key` serves
// NATS over TLS only; a client with the CA runs tasks, one without it (or
// with another CA) gets a one-line error that names the flag to give.
func TestUpServesTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	in := startUpEnv(t, []string{"GANTRY_NATS_TLS_CA=" + pki.ca},
		"--tls-server-cert", pki.serverCert, "--tls-server-key", pki.serverKey)
	if out, errOut, code := in.gantry("run", "--image", in.image, "--", "echo", "over tls"); code != 0 || out != "over tls\n" {
		t.Fatalf("run with the CA: exit %d %q %s", code, out, errOut)
	}
	url := in.natsURL()
	wantRefused(t, append(os.Environ(), "GANTRY_NATS_URL="+url), "give its CA with --tls-ca", "ps")
	wantRefused(t, append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_TLS_CA="+pki.otherCA), "is not signed by the CA in", "ps")
	wantRefused(t, os.Environ(), "--tls-server-cert and --tls-server-key go together",
		"up", "--data", t.TempDir(), "--nats-port", "0", "--tls-server-cert", pki.serverCert)
}

// TestServerAndWorkerOverMutualTLS: `gantry server --embedded-nats` asks
// every client for a certificate of its CA; a `gantry worker` with one runs
// tasks, a client without one is refused.
func TestServerAndWorkerOverMutualTLS(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	cli := sampletest.Docker(t)
	image := sampletest.Image(t)
	label := fmt.Sprintf("e2e-mtls%d", time.Now().UnixNano()%100000)
	sampletest.Cleanup(t, cli, label)
	_, url := startEmbeddedServer(t, t.TempDir(),
		"--tls-server-cert", pki.serverCert, "--tls-server-key", pki.serverKey, "--tls-client-ca", pki.ca)
	tlsEnv := []string{"GANTRY_NATS_URL=" + url, "GANTRY_NATS_TLS_CA=" + pki.ca,
		"GANTRY_NATS_TLS_CERT=" + pki.clientCert, "GANTRY_NATS_TLS_KEY=" + pki.clientKey}
	in := &instance{t: t, env: append(os.Environ(), tlsEnv...), image: image}
	waitFor(t, "the server", func() bool { _, _, code := in.gantry("ps"); return code == 0 })
	w := startProc(t, "worker", "--nats", url, "--tls-ca", pki.ca, "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey,
		"--id", label, "--container-label", sampletest.LabelKey+"="+label)
	waitFor(t, "the worker", func() bool { return len(in.workers()) == 1 })
	if out, errOut, code := in.gantry("run", "--image", image, "--", "echo", "mutual"); code != 0 || out != "mutual\n" {
		t.Fatalf("run: exit %d %q %s\n%s", code, out, errOut, w.log)
	}
	wantRefused(t, append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_TLS_CA="+pki.ca), "requires a client certificate", "ps")
	wantRefused(t, append(os.Environ(), "GANTRY_NATS_URL="+url), "give its CA with --tls-ca", "ps")
}

// TestUpTokenAuth: `gantry up --token` refuses clients without the token
// or with a wrong one.
func TestUpTokenAuth(t *testing.T) {
	t.Parallel()
	in := startUpEnv(t, []string{"GANTRY_NATS_TOKEN=t0ken"}, "--token", "t0ken")
	if out, errOut, code := in.gantry("run", "--image", in.image, "--", "echo", "token ok"); code != 0 || out != "token ok\n" {
		t.Fatalf("run with the token: exit %d %q %s", code, out, errOut)
	}
	url := in.natsURL()
	wantRefused(t, append(os.Environ(), "GANTRY_NATS_URL="+url), "asks for credentials and none were given", "ps")
	wantRefused(t, append(os.Environ(), "GANTRY_NATS_URL="+url, "GANTRY_NATS_TOKEN=wrong"), "refused the credentials", "ps")
	if r := in.describe(in.lastRun()); r.Status != jobs.StatusSucceeded {
		t.Fatalf("run: %s", r.Status)
	}
}

// lastRun is the id of the newest run.
func (in *instance) lastRun() string {
	in.t.Helper()
	out, errOut, code := in.gantry("ps", "--all", "-o", "json")
	var runs []jobs.Run
	if err := json.Unmarshal([]byte(out), &runs); code != 0 || err != nil || len(runs) == 0 {
		in.t.Fatalf("ps --all -o json: exit %d %v %s%s", code, err, out, errOut)
	}
	return runs[0].RunID
}

// TestServeTLSFlagsNameTheFileAtFault: a client CA file with no
// certificate in it failed as the NATS server's "failed to parse root ca
// certificate", naming neither flag nor file; a key that is not the
// certificate's did not name the flags; and an expired server certificate
// was served, every client then refusing it. Each is refused before
// anything starts, naming the flag and the file.
func TestServeTLSFlagsNameTheFileAtFault(t *testing.T) {
	pki := newTestPKI(t)
	expired, expiredKey := writeExpiredCert(t)
	for _, c := range []struct {
		f    serveTLSFlags
		want string
	}{
		{serveTLSFlags{cert: pki.serverCert, key: pki.serverKey, clientCA: pki.ca}, ""},
		{serveTLSFlags{cert: pki.serverCert, key: pki.clientKey}, "--tls-server-cert " + pki.serverCert + " and --tls-server-key " + pki.clientKey + ": tls: private key does not match"},
		{serveTLSFlags{cert: pki.serverCert, key: pki.serverKey, clientCA: pki.serverKey}, "--tls-client-ca " + pki.serverKey + ": no PEM certificate in it"},
		{serveTLSFlags{cert: pki.serverCert, key: pki.serverKey, clientCA: pki.ca + ".nope"}, "--tls-client-ca: open " + pki.ca + ".nope"},
		{serveTLSFlags{cert: expired, key: expiredKey}, "--tls-server-cert " + expired + " expired on "},
	} {
		err := c.f.validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v; want %q", c.f, err, c.want)
		}
	}
}

// writeExpiredCert writes a self-signed certificate that expired a day ago
// and its key, as PEM files.
func writeExpiredCert(t *testing.T) (cert, key string) {
	t.Helper()
	cert = filepath.Join(t.TempDir(), "expired.pem")
	key = cert + ".key"
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "old"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
