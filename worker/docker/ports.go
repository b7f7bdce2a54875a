package docker

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/docker/docker/api/types/container"

	"github.com/gantry-dev/gantry/jobs"
)

// networkBindings are the host ports the daemon published for a started
// container, as ECS reports them (the port Docker picked for a hostPort of
// 0 among them), in container port order. Ports the image exposes but the
// task did not map have no binding and are left out.
func networkBindings(info container.InspectResponse) []jobs.NetworkBinding {
	if info.NetworkSettings == nil {
		return nil
	}
	var out []jobs.NetworkBinding
	for port, binds := range info.NetworkSettings.Ports {
		for _, b := range binds {
			host, err := strconv.Atoi(b.HostPort)
			if err != nil {
				continue
			}
			out = append(out, jobs.NetworkBinding{BindIP: cmp.Or(b.HostIP, "0.0.0.0"), ContainerPort: port.Int(),
				HostPort: host, Protocol: port.Proto()})
		}
	}
	slices.SortFunc(out, func(a, b jobs.NetworkBinding) int {
		return cmp.Or(cmp.Compare(a.ContainerPort, b.ContainerPort), cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.BindIP, b.BindIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	return out
}
