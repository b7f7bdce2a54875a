package docker

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/network"
)

// createNetwork gives a task of several containers a bridge network of its
// own, on which each container is reachable by its name. A task of one
// container stays on the default bridge: creating a network costs time and
// it would have no one to talk to.
func (r *Runtime) createNetwork(ctx context.Context, tr *taskRun) error {
	if len(tr.task.Def.ContainerDefinitions) < 2 {
		return nil
	}
	name := tr.prefix
	resp, err := r.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		Labels: r.objectLabels(tr.task),
	})
	if err != nil {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	tr.network, tr.networkID = name, resp.ID
	return nil
}

// endpoints joins a container to the task's network under its name.
func (tr *taskRun) endpoints(containerName string) *network.NetworkingConfig {
	if tr.network == "" {
		return nil
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		tr.network: {NetworkID: tr.networkID, Aliases: append([]string{containerName}, tr.linkAliases(containerName)...)},
	}}
}
