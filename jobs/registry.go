package jobs

import (
	"fmt"
	"time"
)

// Statuses of a registered task definition revision, as ECS has them.
const (
	TaskDefActive   = "ACTIVE"
	TaskDefInactive = "INACTIVE"
)

// RegisteredTaskDefinition is one revision of a family in the registry: the
// task definition with its revision set, and what the registry adds. Its
// JSON is that of ECS's describe-task-definition.
type RegisteredTaskDefinition struct {
	TaskDefinition
	Status         string     `json:"status"`
	RegisteredAt   time.Time  `json:"registeredAt"`
	DeregisteredAt *time.Time `json:"deregisteredAt,omitempty"`
}

// inactiveError says that a deregistered revision cannot start runs.
func inactiveError(ref string) error {
	return &Error{Code: CodeFailedPrecond, Message: fmt.Sprintf(
		"task definition %s is INACTIVE (deregistered): it cannot start new runs; register a new revision or run an ACTIVE one", ref)}
}

// CheckRunnable refuses a revision that may not start new runs.
func (r *RegisteredTaskDefinition) CheckRunnable() error {
	if r.Status != TaskDefActive {
		return inactiveError(r.Ref())
	}
	return nil
}
