package docker

import (
	"slices"
	"time"
)

// shutdown orders the stop of a task's running containers as ECS reverses
// dependsOn: a container is stopped only once the containers that depend
// on it have stopped, each with its own stop timeout. A dependent that
// will not stop cannot hold the others for long: once the sum of the stop
// timeouts of the containers being stopped has passed since the shutdown
// began, every container still held back is stopped. Only Run's goroutine
// uses it.
type shutdown struct {
	held     []*ctr
	causes   map[*ctr]string
	deadline time.Time
}

// add holds back c, to be stopped with cause, and pushes the deadline out
// by its stop timeout.
func (s *shutdown) add(c *ctr, cause string, timeout time.Duration, now time.Time) {
	if s.causes == nil {
		s.causes = map[*ctr]string{}
		s.deadline = now
	}
	if _, ok := s.causes[c]; ok {
		return
	}
	s.held = append(s.held, c)
	s.causes[c] = cause
	s.deadline = s.deadline.Add(timeout)
}

// ready takes out of the held containers those to stop now, with their
// causes: those none of whose dependents in cs still runs, or all once
// the deadline has passed. Containers that exited meanwhile are dropped.
func (s *shutdown) ready(cs []*ctr, now time.Time) (stop []*ctr, causes []string) {
	late := !now.Before(s.deadline)
	s.held = slices.DeleteFunc(s.held, func(c *ctr) bool {
		switch {
		case c.exited:
			return true
		case late || !dependentRunning(cs, c):
			stop = append(stop, c)
			causes = append(causes, s.causes[c])
			return true
		}
		return false
	})
	return stop, causes
}

// waiting reports whether a container is held back.
func (s *shutdown) waiting() bool { return len(s.held) > 0 }

// dependentRunning reports whether a running container of cs depends on c.
func dependentRunning(cs []*ctr, c *ctr) bool {
	for _, o := range cs {
		if o == c || !o.started || o.exited {
			continue
		}
		for _, d := range o.def.DependsOn {
			if d.ContainerName == c.def.Name {
				return true
			}
		}
	}
	return false
}
