package queue

import (
	"context"
	"net"
	"sync"
	"time"
)

// ctxDialer makes Dial's connections under its ctx: nats.Connect takes no
// context, and a NATS host that drops the connection (down, or behind a
// firewall) held a command signalled while it connected for the whole
// connect timeout. A dial ends when ctx does; a connection made closes
// when ctx ends before Dial has returned (while TLS and NATS's greeting
// go on), which ends nats.Connect. Once Dial has its connection
// (connected), the connections nats.go makes again after losing it are
// no longer tied to ctx: they outlive the connect.
type ctxDialer struct {
	ctx     context.Context
	timeout time.Duration // of each dial, as nats.Timeout's

	mu      sync.Mutex
	settled bool          // connected was called
	stops   []func() bool // unties the connections made so far from ctx
}

// Dial is nats.CustomDialer's.
func (d *ctxDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	if d.settled {
		ctx = context.Background()
	}
	d.mu.Unlock()
	nd := net.Dialer{Timeout: d.timeout}
	conn, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.settled {
		d.stops = append(d.stops, context.AfterFunc(d.ctx, func() { conn.Close() }))
	}
	return conn, nil
}

// connected unties the connections made so far from ctx and the later
// ones too. It reports false where ctx ended first: the connection may
// have been closed under nats.go.
func (d *ctxDialer) connected() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.settled = true
	ok := true
	for _, stop := range d.stops {
		if !stop() {
			ok = false
		}
	}
	d.stops = nil
	return ok && d.ctx.Err() == nil
}
