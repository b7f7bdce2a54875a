package docker

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// ManagedContainer is a container that a Runtime created, as the Docker
// daemon lists it.
type ManagedContainer struct {
	ID        string
	Name      string
	RunID     string
	Attempt   int
	Container string
	// State is Docker's: created, running, exited, ...
	State string
}

// ListManaged lists every container carrying the gantry.run label, running
// or not, so that a worker can find what a previous life left behind.
func (r *Runtime) ListManaged(ctx context.Context) ([]ManagedContainer, error) {
	list, err := r.cli.ContainerList(ctx, container.ListOptions{
		All:     true,
		Filters: filters.NewArgs(filters.Arg("label", LabelRun)),
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]ManagedContainer, 0, len(list))
	for _, s := range list {
		m := ManagedContainer{
			ID:        s.ID,
			RunID:     s.Labels[LabelRun],
			Container: s.Labels[LabelContainer],
			State:     string(s.State),
		}
		m.Attempt, _ = strconv.Atoi(s.Labels[LabelAttempt])
		if len(s.Names) > 0 {
			m.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		out = append(out, m)
	}
	return out, nil
}
