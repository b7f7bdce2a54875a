// Package embedded starts the in-process NATS server with JetStream that
// `gantry up` runs, so that the queue package and its clients need not
// link the server.
package embedded

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the in-process NATS server of `gantry up`.
type Options struct {
	// StoreDir holds JetStream's file store.
	StoreDir string
	// Host and Port to listen on; Port 0 picks a free one.
	Host string
	Port int
	// User and Password, when set, are required of every client.
	User, Password string
	// Token, when set, is required of every client instead.
	Token string
	// SubmitUser and SubmitPassword, when set with User and Password, add
	// a user who may only submit and follow runs (roles.go); User becomes
	// the operator, who may do everything.
	SubmitUser, SubmitPassword string
	// SyncAlways makes JetStream fsync every write: nothing is lost on a
	// power cut, at a large cost in throughput. By default JetStream syncs
	// every two minutes, which survives a process crash but not power loss.
	SyncAlways bool
	// TLSCert and TLSKey, when set, make the server speak TLS only: every
	// client must connect with TLS and trust the certificate's CA.
	TLSCert, TLSKey string
	// TLSClientCA, when set with TLSCert, also requires every client to
	// present a certificate signed by this CA (mutual TLS). In-process
	// connections (the roles of `gantry up`) skip TLS altogether.
	TLSClientCA string
	// Log, when set, receives the server's warnings and errors (a store
	// that cannot write: a full disk, say); they are dropped otherwise.
	Log func(level Level, msg string)
}

// Level is the level of a message of the NATS server.
type Level string

// Levels of Options.Log.
const (
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// logger passes on the NATS server's warnings and errors; its notices,
// many at every start, and its debug output are dropped.
type logger func(level Level, msg string)

func (l logger) Noticef(string, ...any) {}
func (l logger) Debugf(string, ...any)  {}
func (l logger) Tracef(string, ...any)  {}
func (l logger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		return // about configuration files; gantry's passwords come from flags
	}
	l(LevelWarn, msg)
}
func (l logger) Errorf(format string, v ...any) { l(LevelError, fmt.Sprintf(format, v...)) }
func (l logger) Fatalf(format string, v ...any) { l(LevelError, fmt.Sprintf(format, v...)) }

// Start starts a NATS server with JetStream and waits until it
// accepts connections. The caller shuts it down.
func Start(o Options) (*server.Server, error) {
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName: "gantry",
		Host:       host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		MaxPayload: 8 << 20,
		NoSigs:     true,
		NoLog:      true,
		Username:   o.User,
		Password:   o.Password,
	}
	if o.Token != "" {
		opts.Authorization = o.Token
	}
	if o.SubmitUser != "" {
		if o.User == "" || o.Token != "" || o.SubmitUser == o.User {
			return nil, fmt.Errorf("embedded nats: a submit-only user needs an operator user (--user/--password) of another name, and no token")
		}
		opts.Users = users(o)
		opts.Username, opts.Password = "", ""
	}
	if o.Port < 0 || o.Port > 65535 {
		// Not a port: portFree said such a port "is in use".
		return nil, fmt.Errorf("embedded nats: port %d: want 1 to 65535, or 0 for a free one (--nats-port)", o.Port)
	}
	if o.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if err := o.tls(opts); err != nil {
		return nil, err
	}
	if o.SyncAlways {
		opts.SyncAlways = true
	}
	if o.Port > 0 && !portFree(host, o.Port) {
		return nil, fmt.Errorf("embedded nats: port %d on %s is in use; pick another with --nats-port", o.Port, host)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if o.Log != nil {
		ns.SetLogger(logger(o.Log), false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 15s")
	}
	return ns, nil
}

// tls turns on TLS in opts as o asks.
func (o Options) tls(opts *server.Options) error {
	switch {
	case o.TLSCert == "" && o.TLSKey == "" && o.TLSClientCA == "":
		return nil
	case o.TLSCert == "" || o.TLSKey == "":
		return fmt.Errorf("embedded nats: --tls-server-cert and --tls-server-key go together")
	}
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: o.TLSCert, KeyFile: o.TLSKey,
		CaFile: o.TLSClientCA, Verify: o.TLSClientCA != ""})
	if err != nil {
		return fmt.Errorf("embedded nats: TLS: %w", err)
	}
	opts.TLS, opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = true, tc, o.TLSClientCA != "", 5
	return nil
}

func portFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
