package docker

import (
	"path/filepath"
	"strings"
)

// ecsConfig is what a worker allows the ECS fields of its tasks to use.
type ecsConfig struct {
	allowPrivileged bool
	secretsDir      string
	secretEnv       []string // names, or prefixes ending in '*'
	getenv          func(string) (string, bool)
}

// WithAllowPrivileged lets tasks run privileged containers, add
// capabilities beyond Docker's default set and expose host devices (the
// worker's --allow-privileged). Without it such tasks fail to start, with a
// reason naming the field and the flag.
func WithAllowPrivileged(allow bool) Option {
	return func(r *Runtime) { r.ecs.allowPrivileged = allow }
}

// WithSecretsDir sets the directory that secrets' valueFrom "file:PATH"
// (and SSM or Secrets Manager names) are read under (--secrets-dir).
func WithSecretsDir(dir string) Option {
	return func(r *Runtime) {
		if dir != "" {
			dir = filepath.Clean(dir)
			if resolved, err := filepath.EvalSymlinks(dir); err == nil {
				dir = resolved
			}
		}
		r.ecs.secretsDir = dir
	}
}

// WithSecretEnv lets secrets' valueFrom "env:NAME" read the worker's
// environment variables with these names; a name ending in '*' is a prefix
// (--secret-env). No variable is shared otherwise: the worker's own
// credentials must not reach a task that asks for them.
func WithSecretEnv(names ...string) Option {
	return func(r *Runtime) { r.ecs.secretEnv = append(r.ecs.secretEnv, names...) }
}

func (c *ecsConfig) envAllowed(name string) bool {
	for _, n := range c.secretEnv {
		if p, ok := strings.CutSuffix(n, "*"); ok && strings.HasPrefix(name, p) || n == name {
			return true
		}
	}
	return false
}
