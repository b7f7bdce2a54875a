package client_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// TestDryRuns: DryRunPipeline and DryRunTaskDef say what an apply and a
// register would do and store nothing; a refused file is the server's
// invalid_argument.
func TestDryRuns(t *testing.T) {
	nc, stop := startGantry()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(nc)
	if _, _, err := c.RegisterTaskDef(ctx, []byte(helloTaskDef)); err != nil {
		t.Fatal(err)
	}
	const v1 = "name: p\nstages: [{name: a, taskDefinition: hello}]\n"
	dry, err := c.DryRunPipeline(ctx, []byte(v1))
	if err != nil || !dry.Changed || dry.Pipeline.Version != 1 || len(dry.Changes) != 0 {
		t.Fatalf("dry run of a new pipeline: %+v, %v", dry, err)
	}
	if ps, _ := c.ListPipelines(ctx); len(ps) != 0 {
		t.Fatalf("the dry run stored %+v", ps)
	}
	if _, _, err := c.ApplyPipeline(ctx, []byte(v1)); err != nil {
		t.Fatal(err)
	}
	dry, err = c.DryRunPipeline(ctx, []byte(strings.Replace(v1, "hello}", "hello, timeoutSeconds: 60}", 1)))
	if err != nil || !dry.Changed || dry.Pipeline.Version != 2 || len(dry.Changes) != 1 || dry.Changes[0] != "stages[0](a).timeoutSeconds: added 60" {
		t.Fatalf("dry run of a change: %+v, %v", dry, err)
	}
	if _, err := c.DryRunPipeline(ctx, []byte("name: q\nstages: [{name: a, taskDefinition: nosuch}]\n")); !errors.Is(err, client.ErrInvalidArgument) ||
		!strings.Contains(err.Error(), "stages[0](a).taskDefinition: task definition family nosuch is not registered") {
		t.Fatalf("dry run of an unknown task definition: %v", err)
	}

	td, err := c.DryRunTaskDef(ctx, []byte(helloTaskDef))
	if err != nil || td.TaskDefinition.Ref() != "hello:2" || td.IdenticalTo != "hello:1" {
		t.Fatalf("dry run of the same task definition: %+v, %v", td, err)
	}
	if _, err := c.DryRunTaskDef(ctx, []byte(`{"family":"hello","containerDefinitions":[{"name":"main"}]}`)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("dry run of a task definition without an image: %v", err)
	}
	if _, err := c.DryRunTaskDef(ctx, []byte(`{"family":`)); err == nil || !strings.Contains(err.Error(), "task definition") {
		t.Fatalf("dry run of broken JSON: %v", err)
	}
	if reg, _, err := c.RegisterTaskDef(ctx, []byte(helloTaskDef)); err != nil || reg.Ref() != "hello:2" {
		t.Fatalf("the register after the dry runs: %v, %v", reg, err)
	}
}

// TestDryRunAgainstAnOldServer: a server whose pipelines.apply does not
// know dryRun would apply the file; the client finds that out from the
// service's description and sends nothing.
func TestDryRunAgainstAnOldServer(t *testing.T) {
	ns, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The old server's service, as it described itself.
	var applied atomic.Int32
	svc, err := micro.AddService(nc, micro.Config{Name: "gantry", Version: "0.9.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	err = svc.AddGroup("gantry.api").AddEndpoint("pipelines_apply", micro.HandlerFunc(func(r micro.Request) {
		applied.Add(1)
		r.Respond([]byte(`{"pipeline":{"name":"p","version":1},"changed":true}`))
	}), micro.WithEndpointSubject("pipelines.apply"),
		micro.WithEndpointMetadata(map[string]string{"request_schema": `{"type":"object","properties":{"data":{"type":"string"}}}`}))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(nc)
	_, err = c.DryRunPipeline(context.Background(), []byte("name: p\nstages: [{name: a, taskDefinition: hello}]\n"))
	if err == nil || !strings.Contains(err.Error(), "too old for dry runs") {
		t.Fatalf("dry run against an old server: %v", err)
	}
	if n := applied.Load(); n != 0 {
		t.Fatalf("the old server got %d applies", n)
	}
}
