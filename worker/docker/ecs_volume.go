package docker

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/volume"

	"github.com/gantry-dev/gantry/jobs"
)

// dockerVolume provides a task volume with a dockerVolumeConfiguration. A
// task-scoped one is created for the task and removed after it, like a
// scratch volume but with the driver, options and labels asked for. A
// shared one is the Docker volume of that name, which outlives the task: it
// must exist unless autoprovision is set, and is never removed here.
func (r *Runtime) dockerVolume(ctx context.Context, tr *taskRun, v jobs.Volume) error {
	dvc := v.DockerVolumeConfiguration
	labels := maps.Clone(dvc.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if !v.IsShared() {
		maps.Copy(labels, r.objectLabels(tr.task))
		name := tr.prefix + "-" + v.Name
		vol, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: cmp.Or(dvc.Driver, "local"),
			DriverOpts: dvc.DriverOpts, Labels: labels})
		if err != nil {
			return fmt.Errorf("create volume %s: %w", name, err)
		}
		tr.volumes = append(tr.volumes, vol.Name)
		tr.scratch[v.Name] = vol.Name
		return nil
	}
	_, err := r.cli.VolumeInspect(ctx, v.Name)
	switch {
	case err == nil:
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect volume %s: %w", v.Name, err)
	case !dvc.Autoprovision:
		return fmt.Errorf("shared volume %s does not exist and autoprovision is false: create it with `docker volume create %s` or set \"autoprovision\": true", v.Name, v.Name)
	default:
		// The worker's labels (not the run's: the volume outlives it).
		maps.Copy(labels, r.labels)
		if _, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: v.Name, Driver: cmp.Or(dvc.Driver, "local"),
			DriverOpts: dvc.DriverOpts, Labels: labels}); err != nil {
			return fmt.Errorf("create shared volume %s: %w", v.Name, err)
		}
		tr.log.Info().Str("volume", v.Name).Msg("shared volume created")
	}
	tr.scratch[v.Name] = v.Name
	return nil
}

// linkAliases are the names other containers reach name by through their
// links ("name:alias"): on the task's network every container sees them.
func (tr *taskRun) linkAliases(name string) []string {
	var out []string
	for _, c := range tr.task.Def.ContainerDefinitions {
		for _, l := range c.Links {
			if target, alias, ok := strings.Cut(l, ":"); ok && target == name && alias != name {
				out = append(out, alias)
			}
		}
	}
	return out
}
