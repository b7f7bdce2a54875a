// Package natstest starts NATS servers for tests beyond the single
// embedded one (queue/embedded): a three-node JetStream cluster.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster starts a three-node NATS cluster with JetStream on random
// loopback ports, waits until it has elected its JetStream leader, and
// returns the client URLs of its nodes. The nodes stop when the test ends.
func Cluster(t testing.TB) []string {
	t.Helper()
	c := NewCluster(t)
	for i := range c.URLs {
		c.Start(t, i)
	}
	c.WaitLeader(t)
	return c.URLs
}

// StagedCluster is a three-node NATS cluster with JetStream whose nodes a
// test starts one by one: with one node up the cluster has no quorum, so
// no JetStream meta leader, as a cluster whose nodes are still starting.
type StagedCluster struct {
	// URLs are the client URLs of the nodes, known before they start.
	URLs  []string
	opts  []*natsserver.Options
	ports [][2]*heldPort // each node's client and cluster ports until it starts
}

// NewCluster prepares a three-node cluster on random loopback ports
// without starting a node. The nodes started stop when the test ends.
func NewCluster(t testing.TB) *StagedCluster {
	t.Helper()
	c := &StagedCluster{}
	var routes []string
	for range 3 {
		client, cluster := holdPort(t), holdPort(t)
		c.ports = append(c.ports, [2]*heldPort{client, cluster})
		c.URLs = append(c.URLs, fmt.Sprintf("nats://127.0.0.1:%d", client.port))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", cluster.port))
	}
	for i, p := range c.ports {
		c.opts = append(c.opts, &natsserver.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1",
			Port: p[0].port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "gantry-test", Host: "127.0.0.1", Port: p[1].port},
			Routes:  natsserver.RoutesFromStr(strings.Join(routes, ","))})
	}
	return c
}

// Start starts node i and waits until it takes clients.
func (c *StagedCluster) Start(t testing.TB, i int) {
	t.Helper()
	ns, err := natsserver.NewServer(c.opts[i])
	if err != nil {
		t.Fatal(err)
	}
	c.ports[i][0].release()
	c.ports[i][1].release()
	ns.Start()
	t.Cleanup(ns.Shutdown)
	// A node of a cluster starting JetStream beside a busy test suite has
	// taken more than 10 s (CI, under the race detector).
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatalf("cluster node %d not ready within 30 s", i)
	}
}

// heldPort keeps a loopback port for a node until it starts: a port only
// picked, then left free, can be taken meanwhile as the local end of
// another connection (the nodes started first and the processes under
// test make many), and the node then cannot listen. Held, it closes every
// connection at once, as a node not started yet refuses them.
type heldPort struct {
	port int
	l    net.Listener
	done chan struct{} // closed once the accept loop ended
}

func holdPort(t testing.TB) *heldPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldPort{port: l.Addr().(*net.TCPAddr).Port, l: l, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	t.Cleanup(h.release)
	return h
}

// release frees the port; it may be called more than once.
func (h *heldPort) release() {
	h.l.Close()
	<-h.done
}

// WaitLeader waits until the cluster has elected its JetStream leader.
func (c *StagedCluster) WaitLeader(t testing.TB) {
	t.Helper()
	nc, err := nats.Connect(strings.Join(c.URLs, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NATS cluster has no JetStream leader: %v", err)
		}
	}
}

// Eventually calls f, with a context of 2 s of its own each time, until
// it succeeds, and fails the test if ctx ends first. Each try gets its
// own few seconds: a request to a stream or consumer whose group has not
// yet elected its leader goes unanswered, and one try with ctx's whole
// deadline waited it all out.
func Eventually(t testing.TB, ctx context.Context, what string, f func(context.Context) error) {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ScaleStream sets the stream name's replicas, as an operator scaling it
// by hand does, trying again (Eventually) until JetStream takes it.
func ScaleStream(t testing.TB, ctx context.Context, js jetstream.JetStream, name string, replicas int) {
	t.Helper()
	Eventually(t, ctx, "scale "+name, func(ctx context.Context) error {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return err
		}
		cfg := s.CachedInfo().Config
		cfg.Replicas = replicas
		_, err = js.UpdateStream(ctx, cfg)
		return err
	})
}

// DirectGetsOff turns direct gets off on the stream name, as on a
// stream made before they were on, or an R3 bucket of gantry's (whose
// reads go to the leader instead).
func DirectGetsOff(t testing.TB, ctx context.Context, js jetstream.JetStream, name string) {
	t.Helper()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowDirect = false
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
}

// StreamReplicas waits until the stream name exists and JetStream
// answers for it, and returns its replica count; or, if ctx ends first,
// the last failure.
func StreamReplicas(ctx context.Context, js jetstream.JetStream, name string) (int, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second) // as in Eventually
		s, err := js.Stream(actx, name)
		cancel()
		if err == nil {
			return s.CachedInfo().Config.Replicas, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("stream %s: %w", name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WithoutJetStream starts a NATS server without JetStream (nats-server
// without -js) on a random loopback port and returns its client URL. With
// cluster, it is a node of that cluster, alone: as one whose other nodes,
// with JetStream, have not started yet. It stops when the test ends.
func WithoutJetStream(t testing.TB, cluster string) string {
	t.Helper()
	o := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	if cluster != "" {
		o.ServerName = cluster + "-nojs"
		o.Cluster = natsserver.ClusterOpts{Name: cluster, Host: "127.0.0.1", Port: -1}
	}
	return Start(t, o).ClientURL()
}

// Start starts a NATS server of options o, waits until it accepts
// connections, and shuts it down when the test ends.
func Start(t testing.TB, o *natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	return ns
}

// AccountWithoutJetStream starts a NATS server with JetStream, on a
// random loopback port, where the account of user "nojs" (password
// "nojs") has none, and returns its client URL with that user's
// credentials. It stops when the test ends.
func AccountWithoutJetStream(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	err := os.WriteFile(conf, []byte(`listen: 127.0.0.1:-1
jetstream { store_dir: "`+filepath.ToSlash(dir)+`" }
accounts {
  JS: { jetstream: enabled, users: [{user: js, password: js}] }
  NOJS: { users: [{user: nojs, password: nojs}] }
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	o, err := natsserver.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	o.NoLog, o.NoSigs = true, true
	return strings.Replace(Start(t, o).ClientURL(), "nats://", "nats://nojs:nojs@", 1)
}
