package docker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gantry-dev/gantry/jobs"
)

// healthPoll is how often the health of containers that others wait for
// is looked at. Docker checks health every interval (5 s at least), so
// polling faster only shortens the wait after a check.
const healthPoll = 250 * time.Millisecond

// deps decides when each container of a task may start, following ECS's
// dependsOn: START once the target started, COMPLETE once it exited,
// SUCCESS once it exited 0, HEALTHY once its health check passed; a link
// waits for its target's START, as ECS starts a link's target first. A
// dependency that can never be met (the target failed, exited before it was
// healthy, went unhealthy, or did not reach a COMPLETE, SUCCESS or HEALTHY
// condition within its own startTimeout, counted from its start, as ECS
// does) is reported so that the task stops with a reason naming it. Only
// Run's goroutine uses it.
type deps struct {
	tr      *taskRun
	byName  map[string]*ctr
	needs   map[*ctr][]jobs.ContainerDep // dependsOn, and START of each link's target
	gone    map[*ctr]bool                // will never start (failed or abandoned)
	healthy map[*ctr]bool                // passed a health check once
	health  map[*ctr]string              // last health status seen
}

func newDeps(tr *taskRun) *deps {
	d := &deps{tr: tr, byName: map[string]*ctr{}, needs: map[*ctr][]jobs.ContainerDep{}, gone: map[*ctr]bool{},
		healthy: map[*ctr]bool{}, health: map[*ctr]string{}}
	for _, c := range tr.containers {
		d.byName[c.def.Name] = c
		d.needs[c] = c.def.DependsOn
		// ECS starts the target of a link before the container linking to
		// it, as if it said START.
		for _, name := range c.def.LinkTargets() {
			if name != c.def.Name && !slices.ContainsFunc(d.needs[c], func(dep jobs.ContainerDep) bool { return dep.ContainerName == name }) {
				d.needs[c] = append(slices.Clip(d.needs[c]), jobs.ContainerDep{ContainerName: name, Condition: jobs.DepStart})
			}
		}
	}
	return d
}

func (d *deps) pending(c *ctr) bool { return !c.started && !d.gone[c] }

// ready returns the containers that may start now, in definition order:
// those whose dependencies are met, up to the first container whose
// dependencies can never be met. When no ready container comes before
// such a container, it marks that container and returns instead the
// reason, which names it and the dependency. This is what starting the
// first ready container again and again would start before meeting the
// unmet one, as gantry did one container at a time: the containers that
// start once these have are ready in a later call.
func (d *deps) ready(now time.Time) (wave []*ctr, unmet string) {
	for _, c := range d.tr.containers {
		if !d.pending(c) {
			continue
		}
		ok, why := d.check(c, now)
		if why != "" {
			if len(wave) > 0 {
				return wave, ""
			}
			return nil, d.giveUp(c, why)
		}
		if ok {
			wave = append(wave, c)
		}
	}
	return wave, ""
}

// check reports whether every dependency of c is met now or, when one of
// them never will be, why.
func (d *deps) check(c *ctr, now time.Time) (ok bool, never string) {
	ok = true
	for _, dep := range d.needs[c] {
		met, why := d.met(dep)
		if why == "" && !met {
			why = d.timedOut(dep, now)
		}
		if why != "" {
			return false, why
		}
		ok = ok && met
	}
	return ok, ""
}

// timedOut says why dep, not met yet, never will be when its target's
// startTimeout has passed since the target started. As in ECS, the
// timeout is the target's, and a START dependency is met by the start.
func (d *deps) timedOut(dep jobs.ContainerDep, now time.Time) string {
	t := d.byName[dep.ContainerName]
	if t == nil || dep.Condition == jobs.DepStart || t.def.StartTimeout <= 0 || !t.started || t.exited {
		return ""
	}
	if now.Sub(t.startedAt) < time.Duration(t.def.StartTimeout)*time.Second {
		return ""
	}
	return fmt.Sprintf("container %s was not %s within its startTimeout=%ds", t.def.Name, dep.Condition, t.def.StartTimeout)
}

func (d *deps) giveUp(c *ctr, why string) string {
	d.gone[c] = true
	c.reason = fmt.Sprintf("DependencyNotMet: container %s did not start: %s", c.def.Name, why)
	return c.reason
}

// met reports whether dep holds now, or why it never will.
func (d *deps) met(dep jobs.ContainerDep) (ok bool, never string) {
	t := d.byName[dep.ContainerName]
	if t == nil {
		return false, fmt.Sprintf("no container %s in the task", dep.ContainerName)
	}
	if d.gone[t] {
		return false, fmt.Sprintf("container %s never started and the condition is %s", t.def.Name, dep.Condition)
	}
	code := -1
	if t.exited && t.result.ExitCode != nil {
		code = *t.result.ExitCode
	}
	switch dep.Condition {
	case jobs.DepStart:
		return t.started, ""
	case jobs.DepComplete:
		return t.exited, ""
	case jobs.DepSuccess:
		if t.exited && code != 0 {
			return false, fmt.Sprintf("container %s exited with code %d and the condition is SUCCESS", t.def.Name, code)
		}
		return t.exited, ""
	case jobs.DepHealthy:
		if d.healthy[t] {
			return true, ""
		}
		if t.exited {
			return false, fmt.Sprintf("container %s exited (code %d) before it was healthy and the condition is HEALTHY", t.def.Name, code)
		}
		if d.health[t] == "unhealthy" {
			return false, fmt.Sprintf("container %s is unhealthy and the condition is HEALTHY", t.def.Name)
		}
		return false, ""
	}
	return false, fmt.Sprintf("unknown condition %q", dep.Condition)
}

// waiting reports whether a pending container waits on health or on a
// start timeout, which only the passing of time can settle.
func (d *deps) waiting() bool {
	for _, c := range d.tr.containers {
		if !d.pending(c) {
			continue
		}
		for _, dep := range d.needs[c] {
			if dep.Condition == jobs.DepHealthy {
				return true
			}
			if t := d.byName[dep.ContainerName]; t != nil && dep.Condition != jobs.DepStart && t.def.StartTimeout > 0 {
				return true
			}
		}
	}
	return false
}

// abandon marks every pending container as never to start, with reason.
func (d *deps) abandon(reason string) {
	for _, c := range d.tr.containers {
		if d.pending(c) {
			d.gone[c] = true
			if c.reason == "" {
				c.reason = reason
			}
		}
	}
}

// checkHealth reads the health status of the running containers that a
// pending container needs HEALTHY.
func (r *Runtime) checkHealth(ctx context.Context, d *deps) {
	for _, c := range d.tr.containers {
		if !d.pending(c) {
			continue
		}
		for _, dep := range d.needs[c] {
			t := d.byName[dep.ContainerName]
			if dep.Condition != jobs.DepHealthy || t == nil || !t.started || t.exited || d.healthy[t] {
				continue
			}
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			info, err := r.cli.ContainerInspect(ictx, t.id)
			cancel()
			if err != nil || info.State == nil || info.State.Health == nil {
				continue
			}
			d.health[t] = info.State.Health.Status
			if info.State.Health.Status == "healthy" {
				d.healthy[t] = true
				d.tr.log.Debug().Str("container", t.def.Name).Msg("healthy")
			}
		}
	}
}
