package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultURL is where every gantry command looks for NATS unless told.
const DefaultURL = "nats://127.0.0.1:4222"

// ConnOptions say how to reach and authenticate to NATS.
type ConnOptions struct {
	URL            string
	Name           string
	User, Password string
	Token          string
	Creds          string // a .creds file (JWT + nkey seed)
	NKeyFile       string // an nkey seed file
	TLSCA          string
	TLSCert        string
	TLSKey         string
	// Timeout bounds the first connection; 0 means 5 seconds.
	Timeout time.Duration
	// Reconnect keeps retrying forever after the first connection is lost,
	// as long-running roles want; CLI commands leave it off.
	Reconnect bool
}

// Dial connects to NATS. Its errors say what to check.
func Dial(ctx context.Context, o ConnOptions) (*nats.Conn, error) {
	url := o.URL
	if url == "" {
		url = DefaultURL
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	opts := []nats.Option{nats.Name(o.Name), nats.Timeout(timeout)}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKeyFile != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.Reconnect {
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
	} else {
		opts = append(opts, nats.MaxReconnects(3))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		switch {
		case errors.Is(err, nats.ErrNoServers):
			return nil, fmt.Errorf("cannot reach NATS at %s: is `gantry up` running? (set --nats or GANTRY_NATS_URL)", url)
		case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired):
			return nil, fmt.Errorf("NATS at %s refused the credentials: check --user/--password, --creds or --token", url)
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}
