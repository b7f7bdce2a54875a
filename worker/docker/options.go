package docker

import (
	"maps"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// DefaultStopTimeout is how long a container has between SIGTERM and
// SIGKILL when its definition sets no stopTimeout, as in ECS.
const DefaultStopTimeout = 30 * time.Second

// Option configures a Runtime.
type Option func(*Runtime)

// WithAllowedHostPaths lets tasks bind-mount host paths under dirs (the
// worker's --allow-host-path flags). Without it no host path is allowed.
func WithAllowedHostPaths(dirs ...string) Option {
	return func(r *Runtime) {
		for _, d := range dirs {
			if d == "" {
				continue
			}
			d = filepath.Clean(d)
			// Resolve symlinks now so that a checked path compares with the
			// directory the allowed name really points to.
			if resolved, err := filepath.EvalSymlinks(d); err == nil {
				d = resolved
			}
			r.allowedHostPaths = append(r.allowedHostPaths, d)
		}
	}
}

// WithLogger sets the logger; the runtime adds run, attempt and container
// fields.
func WithLogger(l zerolog.Logger) Option {
	return func(r *Runtime) { r.log = l }
}

// WithDefaultStopTimeout sets the time between SIGTERM and SIGKILL for
// containers without a stopTimeout (DefaultStopTimeout otherwise).
func WithDefaultStopTimeout(d time.Duration) Option {
	return func(r *Runtime) {
		if d >= 0 {
			r.stopTimeoutDefault = d
		}
	}
}

// WithLabels adds labels to every container, network and volume the
// runtime creates (a worker's id, a test's name). The gantry.run,
// gantry.attempt and gantry.container labels cannot be overridden.
func WithLabels(labels map[string]string) Option {
	return func(r *Runtime) {
		if r.labels == nil {
			r.labels = map[string]string{}
		}
		maps.Copy(r.labels, labels)
	}
}
