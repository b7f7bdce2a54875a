//go:build tools

// Package tools pins the dependencies the project's packages grow into.
package tools

import (
	_ "github.com/docker/docker/client"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/nats-io/nats.go/micro"
	_ "github.com/oklog/ulid/v2"
	_ "github.com/robfig/cron/v3"
	_ "github.com/rs/zerolog"
	_ "github.com/spf13/cobra"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite"
	_ "mvdan.cc/sh/v3/interp"
)
