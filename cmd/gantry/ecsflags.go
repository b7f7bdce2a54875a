package main

import (
	"github.com/gantry-dev/gantry/worker/docker"
	"github.com/spf13/cobra"
)

// ecsFlags are the worker flags that let task definitions use privileges
// and secrets.
type ecsFlags struct {
	allowPrivileged bool
	secretsDir      string
	secretEnv       []string
}

func (f *ecsFlags) add(c *cobra.Command) {
	c.Flags().BoolVar(&f.allowPrivileged, "allow-privileged", false,
		"run privileged containers, capabilities beyond Docker's defaults, host devices, the host's PID or IPC namespace "+
			"and AppArmor or SELinux options other than Docker's own (apparmor:docker-default, label:type:container_t) when task definitions ask")
	c.Flags().StringVar(&f.secretsDir, "secrets-dir", "",
		"directory of the files secrets' valueFrom \"file:PATH\" (or an SSM or Secrets Manager name) reads")
	c.Flags().StringArrayVar(&f.secretEnv, "secret-env", nil,
		"environment variable of the worker that secrets' valueFrom \"env:NAME\" may read; PREFIX* for several (repeatable)")
}

func (f *ecsFlags) options() []docker.Option {
	return []docker.Option{docker.WithAllowPrivileged(f.allowPrivileged), docker.WithSecretsDir(f.secretsDir),
		docker.WithSecretEnv(f.secretEnv...)}
}
