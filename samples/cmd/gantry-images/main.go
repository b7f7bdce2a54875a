// Command gantry-images builds the samples image (gantry/samples) in the local
// Docker daemon and prints its reference; "make images" runs it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/samples"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "gantry-images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	ref, err := samples.BuildImage(ctx, cli, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Println(ref)
	fmt.Println(samples.Image)
	return nil
}
