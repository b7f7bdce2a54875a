package docker

import (
	"context"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// cleanup removes what the run created: containers (with their anonymous
// volumes), then the network and the task's volumes, which Docker keeps
// while a container uses them. It uses a context of its own so that it
// runs to the end when ctx is done; errors are logged, as there is no one
// left to return them to.
//
// Containers go at once (inParallel), as they were created, but in the
// reverse of the creation waves (createWaves): a container that takes
// volumes from another goes before its source. That is caution: Docker
// removes a shared anonymous volume with the last container that holds
// it, each remove releasing it then removing it unless it is still in
// use, and two removes at once could interleave those steps (20 at once
// on Docker 20.10 left nothing behind). Independent containers, the
// usual task, are one wave and lose nothing to it.
func (r *Runtime) cleanup(ctx context.Context, tr *taskRun) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	waves := createWaves(tr.created)
	for _, wave := range slices.Backward(waves) {
		inParallel(len(wave), func(i int) {
			c := wave[i]
			err := r.cli.ContainerRemove(ctx, c.id, container.RemoveOptions{Force: true, RemoveVolumes: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				tr.log.Error().Err(err).Str("container", c.def.Name).Msg("remove container")
			}
		})
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
