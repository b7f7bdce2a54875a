package docker

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

var _ worker.Leftovers = (*Runtime)(nil)

// objectLister lists networks and volumes; *client.Client has it. Without
// it, leftovers' networks and volumes are left to `docker system prune`.
type objectLister interface {
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
}

// ownFilter selects what this runtime created: gantry.run plus every label
// given WithLabels (the worker's id among them).
func (r *Runtime) ownFilter(extra ...string) filters.Args {
	f := filters.NewArgs(filters.Arg("label", LabelRun))
	for k, v := range r.labels {
		f.Add("label", k+"="+v)
	}
	for _, l := range extra {
		f.Add("label", l)
	}
	return f
}

// Leftovers lists the attempts whose containers carry this runtime's
// labels, with how each container ended (a nil exit code while it runs).
// Call it before running anything: it cannot tell an earlier life's
// containers from this one's.
func (r *Runtime) Leftovers(ctx context.Context) ([]worker.Leftover, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: r.ownFilter()})
	if err != nil {
		return nil, fmt.Errorf("list leftover containers: %w", err)
	}
	byAttempt := map[string]*worker.Leftover{}
	for _, s := range list {
		run, att := s.Labels[LabelRun], s.Labels[LabelAttempt]
		n, _ := strconv.Atoi(att)
		key := run + "/" + att
		lo := byAttempt[key]
		if lo == nil {
			lo = &worker.Leftover{RunID: run, Attempt: n}
			byAttempt[key] = lo
		}
		if s.Labels[LabelStaged] != "" {
			lo.Staged = true
		}
		if a := s.Labels[LabelAckSubject]; a != "" && lo.AckSubject == "" {
			lo.AckSubject = a
		}
		res := jobs.ContainerResult{Name: s.Labels[LabelContainer]}
		switch s.State {
		case container.StateRunning, container.StateRestarting, container.StatePaused:
			lo.Running = true
			res.Reason = "Still running when the worker restarted"
		case container.StateCreated:
			// Created, never started: the worker stopped while setting
			// the attempt up, or while this container waited on another
			// (dependsOn). The attempt did not end; it is lost, not failed.
			lo.Running = true
			res.Reason = "Not started when the worker restarted"
		default:
			info, err := r.cli.ContainerInspect(ctx, s.ID)
			if err == nil && info.State != nil {
				code := info.State.ExitCode
				res.ExitCode, res.OOMKilled = &code, info.State.OOMKilled
				if res.OOMKilled {
					res.Reason = reasonOOM
				}
			} else {
				res.Reason = "Exited while the worker was down"
			}
		}
		lo.Containers = append(lo.Containers, res)
	}
	out := make([]worker.Leftover, 0, len(byAttempt))
	for _, lo := range byAttempt {
		sort.Slice(lo.Containers, func(i, j int) bool { return lo.Containers[i].Name < lo.Containers[j].Name })
		out = append(out, *lo)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].RunID < out[j].RunID || (out[i].RunID == out[j].RunID && out[i].Attempt < out[j].Attempt)
	})
	return out, nil
}

// RemoveLeftover stops the attempt's containers (SIGTERM, SIGKILL after
// their stop timeout), removes them with their anonymous volumes, then the
// attempt's network and volumes.
func (r *Runtime) RemoveLeftover(ctx context.Context, lo worker.Leftover) error {
	sel := r.ownFilter(LabelRun+"="+lo.RunID, LabelAttempt+"="+strconv.Itoa(lo.Attempt))
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: sel})
	if err != nil {
		return fmt.Errorf("list containers of %s/%d: %w", lo.RunID, lo.Attempt, err)
	}
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, s := range list {
		if s.State == container.StateRunning || s.State == container.StatePaused || s.State == container.StateRestarting {
			// nil timeout: the container's own StopTimeout, set at create.
			if err := r.cli.ContainerStop(ctx, s.ID, container.StopOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				r.log.Warn().Err(err).Str("container", s.ID).Msg("stop leftover container")
			}
		}
		if err := r.cli.ContainerRemove(ctx, s.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			keep(fmt.Errorf("remove container %s: %w", s.ID, err))
		}
	}
	ol, ok := r.cli.(objectLister)
	if !ok {
		return firstErr
	}
	if nets, err := ol.NetworkList(ctx, network.ListOptions{Filters: sel}); err == nil {
		for _, n := range nets {
			if err := r.cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
				keep(fmt.Errorf("remove network %s: %w", n.Name, err))
			}
		}
	}
	if vols, err := ol.VolumeList(ctx, volume.ListOptions{Filters: sel}); err == nil {
		for _, v := range vols.Volumes {
			if err := r.cli.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
				keep(fmt.Errorf("remove volume %s: %w", v.Name, err))
			}
		}
	}
	return firstErr
}
