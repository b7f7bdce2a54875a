package docker

import (
	"context"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// cleanup removes what the run created: containers (with their anonymous
// volumes), then the network and the task's volumes. It uses a context of
// its own so that it runs to the end when ctx is done; errors are logged,
// as there is no one left to return them to.
func (r *Runtime) cleanup(ctx context.Context, tr *taskRun) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, c := range tr.created {
		err := r.cli.ContainerRemove(ctx, c.id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			tr.log.Error().Err(err).Str("container", c.def.Name).Msg("remove container")
		}
	}
	if tr.networkID != "" {
		if err := r.cli.NetworkRemove(ctx, tr.networkID); err != nil && !cerrdefs.IsNotFound(err) {
			tr.log.Error().Err(err).Str("network", tr.network).Msg("remove network")
		}
	}
	for _, v := range tr.volumes {
		if err := r.cli.VolumeRemove(ctx, v, true); err != nil && !cerrdefs.IsNotFound(err) {
			tr.log.Error().Err(err).Str("volume", v).Msg("remove volume")
		}
	}
}
