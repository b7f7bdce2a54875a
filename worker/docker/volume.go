package docker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"github.com/gantry-dev/gantry/jobs"
)

// hostPaths checks every host volume of td against the allowed directories
// and returns the resolved path of each, by volume name. It creates nothing,
// so a refused task leaves nothing behind.
func (r *Runtime) hostPaths(td *jobs.TaskDefinition) (map[string]string, error) {
	paths := map[string]string{}
	var errs []error
	for i, v := range td.Volumes {
		if v.Host == nil || v.Host.SourcePath == "" {
			continue
		}
		p, err := r.allowHostPath(v.Host.SourcePath)
		if err != nil {
			errs = append(errs, fmt.Errorf("volumes[%d].host.sourcePath: %w", i, err))
			continue
		}
		paths[v.Name] = p
	}
	return paths, errors.Join(errs...)
}

// allowHostPath returns p with its symlinks resolved if it lies under one of
// the allowed directories. The check is made on the resolved path, so
// neither ".." nor a symlink can lead out of an allowed directory.
func (r *Runtime) allowHostPath(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("host path %q must be absolute", p)
	}
	resolved, err := resolveExisting(filepath.Clean(p))
	if err != nil {
		return "", fmt.Errorf("host path %q: %w", p, err)
	}
	// The resolved path goes into a "src:dst:mode" bind spec.
	if strings.ContainsAny(resolved, ":,") {
		return "", fmt.Errorf("host path %q: ':' and ',' are not supported in host paths", p)
	}
	for _, dir := range r.allowedHostPaths {
		if within(resolved, dir) {
			return resolved, nil
		}
	}
	if len(r.allowedHostPaths) == 0 {
		return "", fmt.Errorf("host path %q is not allowed: this worker allows no host paths; start it with --allow-host-path DIR to allow a directory", p)
	}
	return "", fmt.Errorf("host path %q is not allowed: it is not under %s; start the worker with --allow-host-path DIR to allow another directory",
		p, strings.Join(r.allowedHostPaths, ", "))
}

// resolveExisting resolves the symlinks of the longest existing prefix of the
// clean absolute path p and appends the rest, which Docker will create.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		resolved, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(resolved, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", err
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether the clean path p is dir or lies under it.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(os.PathSeparator))
}

// createVolumes creates a Docker volume for each task volume without a host
// path and returns their names by task volume name. Each one is recorded in
// res as soon as it exists, so cleanup removes it even if a later one fails.
func (r *Runtime) createVolumes(ctx context.Context, tr *taskRun) error {
	for _, v := range tr.task.Def.Volumes {
		if v.Host != nil && v.Host.SourcePath != "" {
			continue
		}
		if v.DockerVolumeConfiguration != nil { // ecs_volume.go
			if err := r.dockerVolume(ctx, tr, v); err != nil {
				return err
			}
			continue
		}
		name := tr.prefix + "-" + v.Name
		vol, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{
			Name:   name,
			Driver: "local",
			Labels: r.objectLabels(tr.task),
		})
		if err != nil {
			return fmt.Errorf("create volume %s: %w", name, err)
		}
		tr.volumes = append(tr.volumes, vol.Name)
		tr.scratch[v.Name] = vol.Name
	}
	return nil
}

// mounts returns the binds and mounts of one container.
func (tr *taskRun) mounts(c jobs.ContainerDefinition) (binds []string, mounts []mount.Mount) {
	for _, b := range tr.task.Binds {
		binds = append(binds, b.Spec())
	}
	for _, mp := range c.MountPoints {
		if host, ok := tr.hostPaths[mp.SourceVolume]; ok {
			// A bind spec rather than a mount, so that Docker creates a
			// missing source directory as ECS documents.
			mode := "rw"
			if mp.ReadOnly {
				mode = "ro"
			}
			binds = append(binds, host+":"+mp.ContainerPath+":"+mode)
			continue
		}
		mounts = append(mounts, mount.Mount{
			Type:     mount.TypeVolume,
			Source:   tr.scratch[mp.SourceVolume],
			Target:   mp.ContainerPath,
			ReadOnly: mp.ReadOnly,
		})
	}
	return binds, mounts
}
