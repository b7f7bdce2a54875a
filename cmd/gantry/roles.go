package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	dockerclient "github.com/docker/docker/client"
	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/storage"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/worker/docker"
	"github.com/gantry-dev/gantry/workerq"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/term"
)

// workerFlags are the flags of `gantry worker`, shared by `gantry up`.
type workerFlags struct {
	id, cluster    string
	slots          int
	allowHostPaths []string
	pull           string
	grace          time.Duration
	dockerWait     time.Duration
	objectLabels   []string
	fleet          fleetFlags // workerfleet.go
	ecs            ecsFlags   // ecsflags.go
	// waitDocker makes the worker wait for a Docker daemon that does not
	// answer yet (gantry worker), rather than fail at once (gantry up).
	waitDocker bool
}

func (f *workerFlags) add(c *cobra.Command) {
	host, _ := os.Hostname()
	c.Flags().StringVar(&f.id, "id", sanitizeID(host), "worker id: stable across restarts of this host's worker")
	c.Flags().StringVar(&f.cluster, "cluster", "default", "cluster this worker takes runs of")
	c.Flags().IntVar(&f.slots, "slots", 4, "runs this worker runs at once")
	c.Flags().StringArrayVar(&f.allowHostPaths, "allow-host-path", nil, "directory under which task volumes may bind-mount host paths (repeatable)")
	c.Flags().StringVar(&f.pull, "pull", "missing", "when to pull images: missing, always or never")
	durationVar(c.Flags(), &f.grace, "grace", 30*time.Second, "on SIGTERM, how long running tasks may go on before they are stopped and their jobs handed back to the queue")
	durationVar(c.Flags(), &f.dockerWait, "docker-wait", docker.DefaultDaemonWait, "how long a running task whose Docker daemon went away (a restart, with live-restore keeping its containers) waits for it to answer again before the task fails as lost (0: fails at once)")
	c.Flags().StringArrayVar(&f.objectLabels, "container-label", nil, "extra K=V label on every container, volume and network the worker creates (tests use it)")
	c.Flags().MarkHidden("container-label")
	f.fleet.add(c)
	f.ecs.add(c)
}

func (f *workerFlags) labels() map[string]string {
	m := map[string]string{}
	for _, kv := range f.objectLabels {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

var notIDChars = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func sanitizeID(s string) string {
	s = notIDChars.ReplaceAllString(s, "-")
	if s == "" {
		return "worker"
	}
	return s
}

func (f *workerFlags) validate() error {
	switch worker.PullPolicy(f.pull) {
	case worker.PullMissing, worker.PullAlways, worker.PullNever:
	default:
		return fmt.Errorf("--pull %q: want missing, always or never", f.pull)
	}
	if f.slots < 1 {
		return fmt.Errorf("--slots %d: must be at least 1", f.slots)
	}
	if f.dockerWait < 0 {
		return fmt.Errorf("--docker-wait %v: must not be negative", f.dockerWait)
	}
	if notIDChars.MatchString(f.id) || f.id == "" {
		return fmt.Errorf("--id %q: use letters, digits, '-' and '_'", f.id)
	}
	if notIDChars.MatchString(f.cluster) || f.cluster == "" {
		return fmt.Errorf("--cluster %q: use letters, digits, '-' and '_'", f.cluster)
	}
	if err := f.fleet.validate(); err != nil {
		return err
	}
	for _, p := range f.allowHostPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("--allow-host-path %q: must be an absolute path", p)
		}
	}
	return nil
}

func newLogger(level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	// Colour only on a terminal: a redirected log (up.log) stays plain text.
	plain := !term.IsTerminal(int(os.Stderr.Fd())) || os.Getenv("NO_COLOR") != ""
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: plain}).Level(lvl).With().Timestamp().Logger(), nil
}

// dockerUnreachable says why a worker's first ping of the Docker daemon
// at host failed, and what to do: a daemon not running (or not there), a
// socket the worker's user may not open, or whatever else the ping said
// (a TLS certificate, an API error). "Is it running?" for all of them
// sent a worker without the socket's group to look at a running daemon.
func dockerUnreachable(host string, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("cannot reach the Docker daemon at %s: permission denied: run the worker as a user of the socket's group "+
			"(usually docker: usermod -aG docker USER, then log in again) or as root, or set DOCKER_HOST to a daemon it may use", host)
	case dockerDown(err):
		return fmt.Errorf("cannot reach the Docker daemon at %s: is it running? (set DOCKER_HOST to point elsewhere)", host)
	}
	return fmt.Errorf("cannot reach the Docker daemon at %s: %w (set DOCKER_HOST to point elsewhere)", host, err)
}

// pingDocker checks that the Docker daemon answers. With wait (gantry
// worker) it waits for one that is not up yet (not running, its socket
// not made yet: systemd or a booting host may start the worker before
// Docker, as before NATS), saying so every few seconds, as the worker
// waits for NATS; without (gantry up, which waits for nothing), and for
// a failure waiting does not cure (a socket the user may not open, TLS),
// it fails at once. It returns ctx's error when ctx ends first.
func pingDocker(ctx context.Context, cli *dockerclient.Client, wait bool, log zerolog.Logger) error {
	ping := func(ctx context.Context) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := cli.Ping(pctx)
		return err
	}
	if !wait {
		if err := ping(ctx); err != nil {
			return dockerUnreachable(cli.DaemonHost(), err)
		}
		return nil
	}
	waited := false
	err := queue.Wait{
		For: func(err error) string {
			if !dockerDown(err) {
				return ""
			}
			return "the Docker daemon at " + cli.DaemonHost() + " to answer"
		},
		Warn: func(what string, err error) {
			log.Warn().Msg("waiting for " + what + " (is it running? set DOCKER_HOST to point elsewhere)")
			waited = true
		},
	}.Retry(ctx, ping)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return dockerUnreachable(cli.DaemonHost(), err)
	}
	if waited {
		log.Info().Str("docker", cli.DaemonHost()).Msg("the Docker daemon answers")
	}
	return nil
}

// dockerDown reports whether err, of a ping, says the daemon is not
// there or does not answer, which waiting may cure.
func dockerDown(err error) bool {
	return !errors.Is(err, os.ErrPermission) &&
		(dockerclient.IsErrConnectionFailed(err) || errors.Is(err, context.DeadlineExceeded))
}

// runWorker runs a worker on nc until ctx is done. With reg, it registers
// the worker's metrics there.
func runWorker(ctx context.Context, nc *nats.Conn, f *workerFlags, log zerolog.Logger, reg prometheus.Registerer) error {
	cli, err := docker.NewClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := pingDocker(ctx, cli, f.waitDocker, log); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for Docker
		}
		return err
	}
	q, err := queue.New(nc, queue.WithAckWait(f.fleet.lease), queue.WithLogger(log.With().Str("role", "worker").Logger()))
	if err != nil {
		return err
	}
	// A worker started beside a fresh NATS cluster and its server finds
	// JetStream unable to answer until the cluster has its leader, then
	// no streams until the server has made them: it waits for both,
	// saying so when what it waits for changes and every queue.WarnEvery,
	// and trying again every second, to be ready soon after the server.
	var cons *queue.JobConsumer
	wait := queue.Wait{
		For: func(err error) string {
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				return "a gantry server to create the streams"
			}
			return queue.WaitingFor(err)
		},
		Warn: func(what string, err error) {
			ev := log.Warn()
			if !errors.Is(err, jetstream.ErrStreamNotFound) {
				ev = ev.Err(err)
			}
			ev.Msg("waiting for " + what)
		},
		Min: time.Second, Max: time.Second,
	}
	err = wait.Retry(ctx, func(ctx context.Context) (err error) {
		cons, err = q.Jobs(ctx, f.cluster, f.id)
		return err
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	defer cons.Close()
	log = log.With().Str("worker", f.id).Str("cluster", f.cluster).Logger()
	objLabels := f.labels()
	objLabels[workerLabel] = f.id // reconciliation finds this worker's containers by it
	rt := docker.New(cli, append([]docker.Option{docker.WithAllowedHostPaths(f.allowHostPaths...), docker.WithLogger(log),
		docker.WithLabels(objLabels), docker.WithDaemonWait(f.dockerWait)}, f.ecs.options()...)...)
	w := worker.New(f.id, f.cluster, workerq.Source{C: cons}, rt, workerq.Reporter{Q: q},
		append([]worker.Option{worker.WithSlots(f.slots), worker.WithPullPolicy(worker.PullPolicy(f.pull)),
			worker.WithLeaseRenewal(q.AckWait() / 3), worker.WithGracePeriod(f.grace), worker.WithLogger(log),
			worker.WithLeftovers(rt), worker.WithStager(workerStager(q), "")},
			f.fleet.options(ctx, cli, q, log)...)...)
	if reg != nil {
		reg.MustRegister(workerCollector{id: f.id, cluster: f.cluster, w: w, rt: rt})
	}
	// The drain bucket is made by the first role to use it, here often
	// just after the cluster elected its leader, when a new stream's own
	// election can still time the request out: that too is waited for.
	err = wait.Retry(ctx, func(ctx context.Context) error { return q.WatchDrain(ctx, f.id, w.Drain) })
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return err
	}
	sub, err := q.SubscribeCancels(func(c queue.CancelMsg) {
		if w.Cancel(c.RunID, c.Reason) {
			log.Info().Str("run", c.RunID).Msg("stopping run on request")
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	log.Info().Int("slots", f.slots).Msg("worker ready")
	return w.Run(ctx)
}

// workerStager is the stager of a worker's stage files. A worker is not
// told the replica count, and gives none (0): it never changes the stage
// data bucket, and where it must make it (the server could not) it takes
// the replicas of the server's streams (queue.NewStager). With 1, as
// before, it made the bucket R1 on a cluster where the server makes R3.
func workerStager(q *queue.Queue) *queue.Stager { return queue.NewStager(q.JetStream(), 0, 0) }

// tuneServerGC trades memory for CPU in a process that runs the server.
// Under load the server allocates mostly short-lived buffers (JSON, NATS
// messages, SQLite rows); GOGC=400 lets the heap grow to five times what
// is live before the collector runs, so it runs a fifth as often.
//
// That is cheap for a small heap and not for a large one: an embedded NATS
// server keeps every stored subject in memory (each run's event subject
// and claim key, for their 7 days), about 115 MB for a week of a million
// runs, and five times that is more than a server should hold. Nor does
// the heap give back to the system what it grew to while it stays under
// its goal. So a soft limit (GOMEMLIMIT) follows the live heap: 192 MiB,
// or five eighths more than the live heap (at least 80 MiB more) once that
// is more. A small heap gets GOGC=400; a large one less than the default's
// two-fold (which let the heap of a week of a million runs reach 280 MiB
// under load, and the process over 300 MB), and never the collector
// running without pause that a limit below the live heap brings (a fixed
// 512 MiB did, past a million runs). The limit counts all the runtime's
// memory, so the heap's own room is some 20 MB less.
//
// The live heap is read every second, and the limit follows the least of
// the last liveWindow readings: a collection that ends while the server
// is busy counts as live what was allocated while it marked, tens of MB
// that the next one frees, and a limit that followed each reading grew
// with every burst. It never falls below a quarter over the latest
// reading, so a heap that does grow is not collected without pause.
// GOGC and GOMEMLIMIT, when set, win.
func tuneServerGC(ctx context.Context) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(gcLimit(0, 0))
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var live liveReadings
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				debug.SetMemoryLimit(live.limit(sample[0].Value.Uint64()))
			}
		}
	}()
}

// releaseRecovery hands back to the system what the embedded NATS
// server's start left behind: recovering its streams reads each one's
// index whole (about 90 MB for a week of a million runs) and drops it, and
// the heap kept those pages resident, to be counted in the process's size
// until the collector's scavenger gave them back minutes later.
func releaseRecovery() { debug.FreeOSMemory() }

// liveWindow is how many readings of the live heap, a second apart, the
// memory limit follows the least of.
const liveWindow = 5

// liveReadings holds the last liveWindow readings of the live heap.
type liveReadings struct {
	recent [liveWindow]uint64
	n      int // readings taken so far
}

// limit records the reading latest and returns the memory limit for it
// and the readings before it.
func (r *liveReadings) limit(latest uint64) int64 {
	r.recent[r.n%liveWindow] = latest
	r.n++
	least := latest
	for _, v := range r.recent[:min(r.n, liveWindow)] {
		least = min(least, v)
	}
	return gcLimit(least, latest)
}

// gcLimit is the soft memory limit for a live heap whose least recent
// reading is least and whose latest is latest.
func gcLimit(least, latest uint64) int64 {
	const floor, room = 192 << 20, 80 << 20
	least, latest = min(least, 1<<50), min(latest, 1<<50)
	return max(floor, int64(least+max(least*5/8, room)), int64(latest+latest/4))
}

// runServer opens the store under dataDir and serves on nc until ctx is done.
// With syncAll every commit of the store reaches the disk before it returns.
// The streams and buckets it makes have the given replicas; with 0 those
// that exist keep theirs (queue.WithReplicas).
//
// qopts are further options of the queue: the log stream's limits.
func runServer(ctx context.Context, nc *nats.Conn, dataDir string, log zerolog.Logger, lease time.Duration, syncAll bool, replicas int,
	qopts []queue.Option, opts ...server.Option) error {
	tuneServerGC(ctx)
	var dbOpts []storage.OpenOption
	if syncAll {
		dbOpts = append(dbOpts, storage.SyncEveryCommit())
	}
	db, err := storage.Open(ctx, filepath.Join(dataDir, "gantry.db"), dbOpts...)
	if err != nil {
		return err
	}
	defer db.Close()
	q, err := queue.New(nc, append([]queue.Option{queue.WithAckWait(lease), queue.WithReplicas(replicas),
		queue.WithLogger(log.With().Str("role", "server").Logger())}, qopts...)...)
	if err != nil {
		return err
	}
	opts = append([]server.Option{server.WithLogger(log.With().Str("role", "server").Logger())}, opts...)
	if dataDirLocks { // the caller locked dataDir (openDataDir) for the process's life
		opts = append(opts, server.WithStoreLock())
	}
	return server.New(db, q, opts...).Run(ctx)
}

func ensureStreams(ctx context.Context, nc *nats.Conn) error {
	q, err := queue.New(nc)
	if err != nil {
		return err
	}
	return q.EnsureStreams(ctx)
}

func defaultDataDir() string {
	if d := os.Getenv("GANTRY_DATA"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "gantry")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "gantry")
	}
	return ".gantry"
}

func newUpCmd(g *globals) *cobra.Command {
	var (
		dataDir, httpAddr, logLevel string
		httpToken                   string
		natsPort                    int
		natsHost                    natsHostFlag // natshost.go
		syncAlways                  bool
		wf                          workerFlags
		retention                   time.Duration  // retention.go
		history                     historyFlags   // retention.go
		submitter                   submitterFlags // auth_roles.go
		serveTLS                    serveTLSFlags  // servetls.go
		httpTLS                     httpTLSFlags   // httptls.go
		mf                          metricsFlag    // metrics.go
	)
	c := &cobra.Command{
		Use:   "up",
		Short: "Run everything on this machine: embedded NATS JetStream, the server and a worker",
		Long: `up starts an embedded NATS server with JetStream (its files under --data),
the gantry server (SQLite under --data) and one worker that runs tasks on the
local Docker daemon. Stop it with Ctrl-C or SIGTERM: the worker stops taking
runs and lets running ones finish within --grace, then stops them and hands
their jobs back to the queue; the server answers until the worker is done,
and from the first signal starts nothing of its own accord: no schedule
fires, and no next stage, triggered pipeline or waiting pipeline run
starts; the next start starts them. A second Ctrl-C or SIGTERM ends it at
once.

Other gantry commands reach it at nats://127.0.0.1:<nats-port>; workers and
clients on other hosts too with --nats-host 0.0.0.0 (which needs --user and
--password or --token, and warns without --tls-server-cert). With
--user/--password (or --token) NATS requires them of every client; with
--tls-server-cert and --tls-server-key it speaks TLS only, and clients give
the CA with --tls-ca (and --tls-cert/--tls-key when --tls-client-ca asks for
client certificates). With --metrics it serves Prometheus metrics of the
server and the worker at http://ADDR/metrics.

` + httpHelp,
		Example: `  gantry up --data /tmp/g &
  gantry up --nats-port 4333 --allow-host-path /srv/etl
  gantry up --metrics 127.0.0.1:9180
  gantry up --user op --password "$PW" --http 0.0.0.0:8443 \
    --http-tls-cert web.pem --http-tls-key web-key.pem
  curl --cacert ca.pem -u op:"$PW" https://gantry.example:8443/api/runs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDataRetention(retention); err != nil {
				return err
			}
			if err := history.check(cmd); err != nil {
				return err
			}
			if err := wf.validate(); err != nil {
				return err
			}
			if err := requireAuthPair(g); err != nil {
				return err
			}
			if err := natsHost.check(g); err != nil {
				return err
			}
			if err := submitter.validate(g); err != nil {
				return err
			}
			if err := serveTLS.validate(); err != nil {
				return err
			}
			hauth, htls, err := httpSetup(cmd, g, httpAddr, httpToken, &serveTLS, &httpTLS)
			if err != nil {
				return err
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			unlock, err := openDataDir(dataDir)
			if err != nil {
				return err
			}
			defer unlock()
			metrics, err := mf.listen()
			if err != nil {
				return err
			}
			defer metrics.close()
			ns, stopNATS, err := startEmbedded(dataDir, natsHost, natsPort, g, syncAlways, &submitter, &serveTLS, log)
			if err != nil {
				return err
			}
			defer stopNATS()
			o := g.conn
			// The roles in this process connect in-process: no socket,
			// and no TLS to verify against a CA they may not have.
			o.URL, o.Name, o.Reconnect, o.InProcess = ns.ClientURL(), "gantry-up", true, ns
			// Its operator may subscribe anywhere: --inbox-prefix, meant
			// for narrowed users of a NATS of one's own, is not needed.
			o.InboxPrefix = queue.RoleInboxPrefix
			nc, err := queue.Dial(cmd.Context(), o)
			if err != nil {
				return err
			}
			defer nc.Close()
			logConnEvents(nc, log)
			if err := ensureStreams(cmd.Context(), nc); err != nil {
				return err
			}
			// The server outlives the worker's drain: during --grace, ps,
			// stop and attached runs still get answers, and the ends of the
			// runs that finish are recorded. It stops with the worker, or
			// at once when a role failed.
			serverLife, endServer := context.WithCancel(context.WithoutCancel(cmd.Context()))
			defer endServer()
			return serveAll(cmd.Context(), log,
				func(ctx context.Context) error {
					stop := context.AfterFunc(ctx, func() {
						if cmd.Context().Err() == nil {
							endServer() // another role failed
						}
					})
					defer stop()
					// It starts nothing of its own accord from the signal
					// on (schedules, triggers, waiting pipeline runs,
					// next stages): no run the worker, draining, would
					// not take; the next start starts them.
					return runServer(serverLife, nc, dataDir, log, wf.fleet.lease, syncAlways, 1, history.queueOptions(cmd),
						append(serverMetrics(metrics), server.WithDataRetention(retention), server.WithRunRetention(history.runRetention),
							server.WithStartsUntil(cmd.Context().Done()))...)
				},
				func(ctx context.Context) error {
					defer endServer()
					return runWorker(ctx, nc, &wf, log, metrics.registerer())
				},
				httpServe(httpAddr, nc, hauth, htls, log), metrics.role(serverLife, log))
		},
	}
	c.Flags().StringVar(&dataDir, "data", defaultDataDir(), "directory for the store and JetStream's files (env GANTRY_DATA)")
	c.Flags().IntVar(&natsPort, "nats-port", 4222, "port of the embedded NATS server on --nats-host; 0 picks a free one, written to DATA/nats.url (other commands: export GANTRY_NATS_URL=$(cat DATA/nats.url))")
	natsHost.add(c)
	c.Flags().StringVar(&httpAddr, "http", "", httpAddrHelp)
	c.Flags().StringVar(&httpToken, "http-token", os.Getenv("GANTRY_HTTP_TOKEN"), httpTokenHelp)
	c.Flags().BoolVar(&syncAlways, "sync-always", false, "fsync every write of JetStream and of the store: survives power loss, much slower")
	submitter.add(c)
	serveTLS.add(c)
	httpTLS.add(c)
	addDataRetentionFlag(c, &retention)
	history.add(c)
	c.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	mf.add(c)
	wf.add(c)
	return c
}

// httpSetup checks the flags of --http and returns the authentication
// and the TLS configuration its web UI and API serve with.
func httpSetup(cmd *cobra.Command, g *globals, httpAddr, httpToken string, serveTLS *serveTLSFlags, httpTLS *httpTLSFlags) (httpAuth, *tls.Config, error) {
	var hauth httpAuth
	if httpAddr != "" {
		var err error
		if hauth, err = httpAuthFor(g.conn, httpToken, serveTLS.clientCA != ""); err != nil {
			return httpAuth{}, nil, err
		}
	} else if cmd.Flags().Changed("http-token") {
		return httpAuth{}, nil, errHTTPTokenWithoutHTTP
	}
	htls, err := httpTLS.config(cmd, httpAddr)
	if err != nil {
		return httpAuth{}, nil, err
	}
	hauth.clientCert = httpTLS.clientCA != ""
	return hauth, htls, nil
}

// openDataDir makes the data directory if need be and locks it against
// a second server or gantry up on it, until unlock.
func openDataDir(dir string) (unlock func(), err error) {
	if err := makeDataDir(dir); err != nil {
		return nil, err
	}
	return lockDataDir(dir)
}

// startEmbedded starts the embedded NATS server of gantry up and gantry
// server --embedded-nats, its JetStream files under dataDir, and writes
// its URL to DATA/nats.url: scripts started with --nats-port 0 learn the
// port there. stop removes the file and shuts the server down.
func startEmbedded(dataDir string, host natsHostFlag, port int, g *globals, syncAlways bool, submitter *submitterFlags, serveTLS *serveTLSFlags, log zerolog.Logger) (ns *natsserver.Server, stop func(), err error) {
	host.warnPlain(log, serveTLS)
	eo := embedded.Options{StoreDir: filepath.Join(dataDir, "jetstream"), Host: host.host,
		Port: port, User: g.conn.User, Password: g.conn.Password, Token: g.conn.Token, SyncAlways: syncAlways,
		SubmitUser: submitter.user, SubmitPassword: submitter.password, Log: natsLog(log)}
	serveTLS.apply(&eo)
	if ns, err = embedded.Start(eo); err != nil {
		return nil, nil, err
	}
	releaseRecovery()
	urlFile := filepath.Join(dataDir, "nats.url")
	url := host.localURL(ns.ClientURL())
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o644); err != nil {
		ns.Shutdown()
		return nil, nil, fmt.Errorf("write %s: %w", urlFile, err)
	}
	log.Info().Str("nats", url).Str("host", host.host).Str("data", dataDir).Msg("embedded NATS ready")
	return ns, func() {
		os.Remove(urlFile)
		ns.Shutdown()
	}, nil
}

// serverMetrics is the option that registers the server's metrics at the
// endpoint, none when --metrics is off.
func serverMetrics(e *metricsEndpoint) []server.Option {
	if reg := e.registerer(); reg != nil {
		return []server.Option{server.WithMetrics(reg)}
	}
	return nil
}

// natsLog passes the embedded NATS server's warnings and errors (a store
// that can no longer write, say) to log.
func natsLog(log zerolog.Logger) func(embedded.Level, string) {
	log = log.With().Str("role", "nats").Logger()
	return func(level embedded.Level, msg string) {
		switch {
		case queue.IsInboxCheckRefusal(msg), client.IsGetRefusal(msg):
			// A submit-only user's CLI command checking its inbox
			// prefix, or reading a run (runs.get, then runs.status):
			// one at each, not a fault.
			log.Debug().Msg(msg)
		case level == embedded.LevelError:
			log.Error().Msg(msg)
		default:
			log.Warn().Msg(msg)
		}
	}
}

// serveAll runs the roles until ctx is done or one fails.
func serveAll(ctx context.Context, log zerolog.Logger, roles ...func(context.Context) error) error {
	longRunning.Store(true)
	grp, gctx := errgroup.WithContext(ctx)
	for _, r := range roles {
		if r == nil {
			continue
		}
		grp.Go(func() error { return r(gctx) })
	}
	err := grp.Wait()
	if ctx.Err() != nil {
		log.Info().Msg("stopped")
		return nil
	}
	return err
}

func newServerCmd(g *globals) *cobra.Command {
	var (
		dataDir, httpAddr, logLevel string
		httpToken                   string
		embeddedNATS, syncAlways    bool
		natsPort, replicas          int
		natsHost                    natsHostFlag // natshost.go
		lease                       time.Duration
		retention                   time.Duration  // retention.go
		history                     historyFlags   // retention.go
		submitter                   submitterFlags // auth_roles.go
		serveTLS                    serveTLSFlags  // servetls.go
		httpTLS                     httpTLSFlags   // httptls.go
		mf                          metricsFlag    // metrics.go
	)
	c := &cobra.Command{
		Use:   "server",
		Short: "Run the gantry server (API, event application, SQLite store)",
		Long: `server runs the control plane against the NATS deployment named by --nats.
It is the single writer of the SQLite store under --data. With --embedded-nats
it starts its own NATS server with JetStream instead, on 127.0.0.1: give
--nats-host 0.0.0.0 (with --user/--password or --token, and best with
--tls-server-cert) for workers on other hosts to reach it. With --metrics it
serves Prometheus metrics at http://ADDR/metrics.

Started before NATS accepts connections (or before its host name resolves,
or while its host is down), it waits for it, saying so every few seconds;
refused credentials, TLS failures or an address that is not NATS end it at
once.

At start it makes gantry's streams and buckets, with --replicas replicas; without
--replicas those that exist keep theirs and new ones get 1. While JetStream
cannot answer yet (a NATS cluster still electing its leader) it waits, saying
so every few seconds, until it can or the server is stopped; a refusal (a NATS
user without the rights), a configuration JetStream rejects or a NATS server
without JetStream (started without -js) ends it at once.

A NATS deployment has one gantry server. Before it changes anything it takes
the server lease (key "lease" of the KV bucket gantry_server) and renews it
every 5s. While another server holds it, it stops (exit 125), naming that one,
once that one shows it runs: it answers NATS, or renews its lease. A holder
that does neither (killed, its host lost) is waited for, saying so every few
seconds, until its lease is 15s old, then taken over; one left by a server
killed on this --data is taken over at once. A server that loses its lease
(taken over, deleted) stops (exit 125).

` + httpHelp,
		Example: `  gantry server --nats nats://nats.internal:4222 --creds op.creds \
    --http 0.0.0.0:8443 --http-token "$TOKEN" --http-tls-cert web.pem --http-tls-key web-key.pem
  curl --cacert ca.pem -H "Authorization: Bearer $TOKEN" https://gantry.example:8443/api/runs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDataRetention(retention); err != nil {
				return err
			}
			if err := history.check(cmd); err != nil {
				return err
			}
			if err := checkReplicas(cmd, replicas); err != nil {
				return err
			}
			if replicas > 1 && embeddedNATS {
				return errors.New("--replicas needs a NATS cluster: the embedded NATS server is a single node")
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			hauth, htls, err := httpSetup(cmd, g, httpAddr, httpToken, &serveTLS, &httpTLS)
			if err != nil {
				return err
			}
			unlock, err := openDataDir(dataDir)
			if err != nil {
				return err
			}
			defer unlock()
			metrics, err := mf.listen()
			if err != nil {
				return err
			}
			defer metrics.close()
			o := g.conn
			o.Name, o.Reconnect = "gantry-server", true
			if o, err = withInbox(o, queue.RoleInboxPrefix, false); err != nil {
				return err
			}
			if embeddedNATS {
				if err := requireAuthPair(g); err != nil {
					return err
				}
				if err := natsHost.check(g); err != nil {
					return err
				}
				if err := submitter.validate(g); err != nil {
					return err
				}
				if err := serveTLS.validate(); err != nil {
					return err
				}
				ns, stopNATS, err := startEmbedded(dataDir, natsHost, natsPort, g, syncAlways, &submitter, &serveTLS, log)
				if err != nil {
					return err
				}
				defer stopNATS()
				o.URL, o.InProcess = ns.ClientURL(), ns
			} else if submitter.user != "" || submitter.password != "" || serveTLS.cert != "" || serveTLS.key != "" ||
				serveTLS.clientCA != "" || cmd.Flags().Changed("nats-port") || cmd.Flags().Changed("nats-host") {
				// Without the check, --tls-client-ca (say) was ignored unsaid.
				return errors.New("--submit-user, --submit-password, --tls-server-cert, --tls-server-key, --tls-client-ca, --nats-port and --nats-host " +
					"configure the embedded NATS server: give --embedded-nats too")
			}
			nc, err := dialRole(cmd.Context(), o, log)
			if errors.Is(err, context.Canceled) {
				return nil // stopped while waiting for NATS
			}
			if err != nil {
				return err
			}
			defer nc.Close()
			// The metrics are served until the server has stopped.
			serverLife, endServer := context.WithCancel(context.WithoutCancel(cmd.Context()))
			defer endServer()
			return serveAll(cmd.Context(), log,
				func(ctx context.Context) error {
					defer endServer()
					return runServer(ctx, nc, dataDir, log, lease, syncAlways, replicas, history.queueOptions(cmd),
						append(serverMetrics(metrics), server.WithDataRetention(retention), server.WithRunRetention(history.runRetention))...)
				},
				httpServe(httpAddr, nc, hauth, htls, log), metrics.role(serverLife, log))
		},
	}
	c.Flags().StringVar(&dataDir, "data", defaultDataDir(), "directory of the SQLite store (env GANTRY_DATA)")
	c.Flags().StringVar(&httpAddr, "http", "", httpAddrHelp)
	c.Flags().StringVar(&httpToken, "http-token", os.Getenv("GANTRY_HTTP_TOKEN"), httpTokenHelp)
	c.Flags().BoolVar(&embeddedNATS, "embedded-nats", false, "start an embedded NATS server instead of connecting to --nats")
	c.Flags().IntVar(&replicas, "replicas", envInt("GANTRY_REPLICAS", 0), "replicas of gantry's JetStream streams and buckets: 3 on a three-node NATS cluster, so that losing a node loses nothing; "+
		"without it those that exist keep theirs (as an operator may have set them) and new ones get 1 (env GANTRY_REPLICAS)")
	c.Flags().BoolVar(&syncAlways, "sync-always", false, "fsync every write of the store (and of the embedded NATS server's JetStream): survives power loss, much slower")
	submitter.add(c)
	serveTLS.add(c)
	httpTLS.add(c)
	addDataRetentionFlag(c, &retention)
	history.add(c)
	addLeaseFlag(c, &lease)
	c.Flags().IntVar(&natsPort, "nats-port", 4222, "port of the embedded NATS server on --nats-host with --embedded-nats; 0 picks a free one (written to DATA/nats.url)")
	natsHost.add(c)
	mf.add(c)
	c.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return c
}

// checkReplicas checks --replicas (or GANTRY_REPLICAS) where it was given;
// not given, it is 0: the streams keep their replicas (queue.WithReplicas).
func checkReplicas(cmd *cobra.Command, replicas int) error {
	env := os.Getenv("GANTRY_REPLICAS")
	switch {
	case cmd.Flags().Changed("replicas"):
	case env != "":
		if _, err := strconv.Atoi(env); err != nil {
			return fmt.Errorf("GANTRY_REPLICAS=%q: want 1 to 5 (3 on a three-node NATS cluster)", env)
		}
	default:
		return nil
	}
	if replicas < 1 || replicas > 5 {
		return fmt.Errorf("--replicas %d: want 1 to 5 (3 on a three-node NATS cluster)", replicas)
	}
	return nil
}

// envInt is the integer in the environment variable name, or def when it
// is unset or not an integer (checkReplicas refuses one that is not).
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func newWorkerCmd(g *globals) *cobra.Command {
	var (
		wf       workerFlags
		mf       metricsFlag // metrics.go
		logLevel string
	)
	c := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker agent that takes runs from NATS and runs them on the local Docker daemon",
		Long: `worker joins a cluster (--cluster) and runs up to --slots runs at once on this
host's Docker daemon. It needs only NATS and Docker: no database. With
--metrics it serves Prometheus metrics at http://ADDR/metrics.

Started before them, it waits for NATS to accept connections, its host
name to resolve or its host to answer (saying so every few seconds; refused
credentials, TLS failures or an address that is not NATS end it at once),
for a NATS cluster's JetStream leader and then for the streams a gantry
server makes, saying what it waits for every few seconds. A NATS server
without JetStream (started without -js) ends it at once. It then waits for
the Docker daemon to answer in the same way (not running yet, or its socket
not there yet); a socket its user may not open ends it at once, saying so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := wf.validate(); err != nil {
				return err
			}
			wf.waitDocker = true
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			metrics, err := mf.listen()
			if err != nil {
				return err
			}
			defer metrics.close()
			o := g.conn
			o.Name, o.Reconnect = "gantry-worker-"+wf.id, true
			if o, err = withInbox(o, queue.RoleInboxPrefix, false); err != nil {
				return err
			}
			nc, err := dialRole(cmd.Context(), o, log)
			if errors.Is(err, context.Canceled) {
				return nil // stopped while waiting for NATS
			}
			if err != nil {
				return err
			}
			defer nc.Close()
			longRunning.Store(true)
			// The metrics are served until the worker has stopped: through
			// its --grace too.
			err = metrics.alongside(cmd.Context(), log, func(ctx context.Context) error {
				return runWorker(ctx, nc, &wf, log, metrics.registerer())
			})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	wf.add(c)
	mf.add(c)
	c.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return c
}

// makeDataDir creates the data directory of up and server. Its error
// names the flag, which Go's own ("mkdir /srv/g: permission denied")
// did not.
func makeDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("--data %s: %w: give a directory this user may create and write (or set GANTRY_DATA)", dir, err)
	}
	return nil
}
