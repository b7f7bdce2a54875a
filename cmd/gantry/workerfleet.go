package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/worker"
	"github.com/gantry-dev/gantry/workerq"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// workerLabel marks every container, network and volume with the id of the
// worker that created it, so that a restarted worker finds its own.
const workerLabel = "gantry.worker"

// fleetFlags are the worker's flags about its place in the cluster:
// capacity, labels, presence, lease.
type fleetFlags struct {
	labels            []string
	cpu, memory       int
	lease, heartbeat  time.Duration
	allowDockerSocket bool
}

func (f *fleetFlags) add(c *cobra.Command) {
	c.Flags().StringArrayVar(&f.labels, "label", nil, "K=V label shown in gantry workers ls; runs with --constraint K=V (or K) go only to workers with it (repeatable; key letters, digits and - _ . /, value also : @ +)")
	c.Flags().IntVar(&f.cpu, "cpu", 0, "CPU units this worker offers, 1024 per CPU (default: all of the Docker host's)")
	c.Flags().IntVar(&f.memory, "memory", 0, "memory in MiB this worker offers (default: all of the Docker host's)")
	c.Flags().BoolVar(&f.allowDockerSocket, "allow-docker-socket", false, "let tasks bind-mount the Docker socket (gives them the host)")
	durationVar(c.Flags(), &f.heartbeat, "heartbeat", queue.PresenceTTL/3, "how often the worker tells it is alive")
	c.Flags().MarkHidden("heartbeat")
	addLeaseFlag(c, &f.lease)
}

// addLeaseFlag adds the hidden --lease flag: the ack wait of jobs, after
// which a silent worker's job goes to another. Tests shorten it.
func addLeaseFlag(c *cobra.Command, d *time.Duration) {
	def := 30 * time.Second
	if v, err := jobs.ParseDuration(os.Getenv("GANTRY_LEASE")); err == nil && v > 0 {
		def = v
	}
	durationVar(c.Flags(), d, "lease", def, "how long a job stays with a worker that stopped renewing it (env GANTRY_LEASE)")
	c.Flags().MarkHidden("lease")
}

func (f *fleetFlags) validate() error {
	var errs []error
	// Every label must be one a constraint can ask for: the same
	// characters and lengths (jobs.ParseLabel), one value a key.
	given := map[string]string{}
	for _, kv := range f.labels {
		k, _, err := jobs.ParseLabel(kv)
		if err != nil {
			errs = append(errs, fmt.Errorf("--label %w%s", err, oneFlagEach("--label", kv, func(p string) bool {
				_, _, err := jobs.ParseLabel(p)
				return err == nil
			})))
			continue
		}
		if prev, ok := given[k]; ok && prev != kv {
			errs = append(errs, fmt.Errorf("--label %q: label %s given already (--label %q): a worker's label has one value", kv, k, prev))
			continue
		}
		given[k] = kv
	}
	if f.cpu < 0 {
		errs = append(errs, fmt.Errorf("--cpu %d: must not be negative", f.cpu))
	}
	if f.memory < 0 {
		errs = append(errs, fmt.Errorf("--memory %d: must not be negative", f.memory))
	}
	if f.lease < time.Second {
		errs = append(errs, fmt.Errorf("--lease %s: at least 1s", f.lease))
	}
	if f.heartbeat <= 0 || f.heartbeat > queue.PresenceTTL/2 {
		errs = append(errs, fmt.Errorf("--heartbeat %s: between 0 and %s", f.heartbeat, queue.PresenceTTL/2))
	}
	return errors.Join(errs...)
}

// options are the worker's options for its place in the fleet; capacity
// not given by flags is the Docker host's.
func (f *fleetFlags) options(ctx context.Context, cli *client.Client, q *queue.Queue, log zerolog.Logger) []worker.Option {
	cpu, mem := f.cpu, f.memory
	if cpu == 0 || mem == 0 {
		hostCPU, hostMem := runtime.NumCPU()*1024, 0
		ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if info, err := cli.Info(ictx); err == nil {
			hostCPU, hostMem = info.NCPU*1024, int(info.MemTotal>>20)
		} else {
			log.Warn().Err(err).Msg("docker info: capacity from this host instead")
		}
		cancel()
		if cpu == 0 {
			cpu = hostCPU
		}
		if mem == 0 {
			mem = hostMem
		}
	}
	labels := map[string]string{}
	for _, kv := range f.labels {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	host, _ := os.Hostname()
	log.Info().Int("cpu", cpu).Int("memory", mem).Msg("capacity")
	return []worker.Option{
		worker.WithCapacity(cpu, mem),
		worker.WithHost(host, labels),
		worker.WithPresence(q, f.heartbeat),
		worker.WithClaims(workerq.Claims{Q: q}),
		worker.WithDockerSocketAllowed(f.allowDockerSocket),
	}
}

// requireAuthPair checks the auth flags of a role that starts NATS itself.
func requireAuthPair(g *globals) error {
	c := g.conn
	switch {
	case (c.User == "") != (c.Password == ""):
		return errors.New("--user and --password go together: give both to turn on NATS auth")
	case c.User != "" && c.Token != "":
		return errors.New("--token and --user/--password exclude each other: pick one")
	case c.NKeyFile != "" || c.Creds != "":
		// They are how a client proves who it is; the embedded server has
		// no user of that kind, and its roles failed to connect with "nats:
		// nkeys not supported by the server".
		return errors.New("the embedded NATS server asks for --user/--password or --token, not an nkey or creds file: " +
			"drop --nkey and --creds (or GANTRY_NATS_NKEY and GANTRY_NATS_CREDS, or the current context's: see 'gantry context ls')")
	}
	return nil
}

var _ worker.Presence = (*queue.Queue)(nil)
