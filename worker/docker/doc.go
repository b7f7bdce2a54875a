// Package docker is the worker's container runtime on the Docker Engine API.
//
// It owns everything one attempt of a task needs on a Docker host: the
// images (pulled as the task's pull policy says), a user-defined bridge
// network when the task has several containers, scratch volumes and
// checked host bind mounts, the containers themselves with their labels and
// safe defaults, their output (attached before start and split into lines),
// waiting for the essential containers, stopping on cancel and removing all
// of it afterwards.
//
// One file per lifecycle step: image.go, network.go, volume.go,
// container.go, logs.go, run.go (start, wait, stop) and cleanup.go.
package docker
