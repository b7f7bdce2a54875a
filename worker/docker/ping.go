package docker

import (
	"context"

	"github.com/docker/docker/api/types"

	"github.com/gantry-dev/gantry/worker"
)

// pinger is the part of the Docker client that tells whether the daemon
// answers; *client.Client has it. A Client without it is taken to answer.
type pinger interface {
	Ping(ctx context.Context) (types.Ping, error)
}

var _ worker.Pinger = (*Runtime)(nil)

// Ping asks the Docker daemon whether it answers (worker.Pinger): its
// error says why not, as the client words it ("Cannot connect to the
// Docker daemon at unix:///var/run/docker.sock. Is the docker daemon
// running?").
func (r *Runtime) Ping(ctx context.Context) error {
	p, ok := r.cli.(pinger)
	if !ok {
		return nil
	}
	_, err := p.Ping(ctx)
	return err
}
