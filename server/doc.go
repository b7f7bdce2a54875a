// Package server is gantry's control plane: the NATS micro service
// "gantry" with its request/reply API under gantry.api., the consumer that
// applies worker events to the store and re-queues retries, and the
// consumer of durable submissions on gantry.submit.
package server
