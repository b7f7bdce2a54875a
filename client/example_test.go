package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/gantry-dev/gantry/server"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go"
)

// startGantry starts an embedded NATS server and a gantry server (no
// worker: runs stay QUEUED) and returns a connection to it. A program
// would connect to a running `gantry up` instead:
//
//	nc, err := nats.Connect("nats://127.0.0.1:4222")
func startGantry() (*nats.Conn, func()) { return startGantryWith(embedded.Options{}, nil) }

// startGantryWith starts NATS with o and connects the server and the
// returned connection with opts.
func startGantryWith(o embedded.Options, opts []nats.Option) (*nats.Conn, func()) {
	dir, err := os.MkdirTemp("", "gantry-example")
	if err != nil {
		log.Fatal(err)
	}
	o.StoreDir = filepath.Join(dir, "js")
	ns, err := embedded.Start(o)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db, err := storage.Open(ctx, filepath.Join(dir, "gantry.db"))
	if err != nil {
		log.Fatal(err)
	}
	srvConn, err := nats.Connect(ns.ClientURL(), nats.UserInfo(o.User, o.Password))
	if err != nil {
		log.Fatal(err)
	}
	q, err := queue.New(srvConn)
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := server.New(db, q).Run(ctx); err != nil {
			log.Print(err)
		}
	}()
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := nc.Request("gantry.api.runs.list", nil, time.Second); err == nil {
			break
		}
	}
	return nc, func() {
		nc.Close()
		cancel()
		<-done
		db.Close()
		srvConn.Close()
		ns.Shutdown()
		os.RemoveAll(dir)
	}
}

const helloTaskDef = `{"family": "hello", "containerDefinitions": [
  {"name": "main", "image": "gantry/samples:latest", "command": ["echo", "hello"], "memory": 64}]}`

func Example() {
	nc, stop := startGantry()
	defer stop()
	ctx := context.Background()
	c, err := client.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	td, _, err := c.RegisterTaskDef(ctx, []byte(helloTaskDef))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("registered", td.Ref())
	ref := []byte(strconv.Quote(td.Family)) // "family[:rev]", or an inline task definition
	r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: ref, IdempotencyKey: "example-1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.TaskDefinition, r.Status)
	again, _ := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: ref, IdempotencyKey: "example-1"})
	fmt.Println("same run:", again.RunID == r.RunID)
	stopped, err := c.Stop(ctx, r.RunID, "changed my mind")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stopped.Status, stopped.StoppedReason)
	// Output:
	// registered hello:1
	// hello:1 QUEUED
	// same run: true
	// CANCELED changed my mind
}

func ExampleAPIError() {
	nc, stop := startGantry()
	defer stop()
	c, _ := client.New(nc)
	_, err := c.Get(context.Background(), "01jzzzzzzzzzzzzzzzzzzzzzzz")
	fmt.Println("not found:", errors.Is(err, client.ErrNotFound))
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println("code:", apiErr.Code)
	}
	// Output:
	// not found: true
	// code: not_found
}

func ExampleClient_DeletePipeline() {
	nc, stop := startGantry()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(nc)
	if _, _, err := c.RegisterTaskDef(ctx, []byte(helloTaskDef)); err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.ApplyPipeline(ctx, []byte("name: nightly\nschedule: {cron: '0 2 * * *'}\nstages: [{name: hello, taskDefinition: hello}]\n")); err != nil {
		log.Fatal(err)
	}
	pr, err := c.RunPipeline(ctx, "nightly", nil) // no worker here: it stays active
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.DeletePipeline(ctx, "nightly", false)
	fmt.Println("refused while a run is active:", errors.Is(err, client.ErrFailedPrecondition))
	d, err := c.DeletePipeline(ctx, "nightly", true) // force: stop the active runs
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted:", d.Deleted, "stopped:", len(d.Stopped))
	_, err = c.DescribePipeline(ctx, "nightly", 0)
	fmt.Println("gone:", errors.Is(err, client.ErrNotFound))
	past, err := c.GetPipelineRun(ctx, pr.PipelineRunID) // the history stays
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(past.Pipeline, past.Status)
	// Output:
	// refused while a run is active: true
	// deleted: true stopped: 1
	// gone: true
	// nightly CANCELED
}

func ExampleClient_List() {
	nc, stop := startGantry()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(nc)
	c.RegisterTaskDef(ctx, []byte(helloTaskDef))
	for range 3 {
		c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"hello"`)})
	}
	// Page through every run of the family, two at a time.
	o := client.ListOptions{All: true, TaskDefinition: "hello", Limit: 2}
	for page := 1; ; page++ {
		runs, next, err := c.List(ctx, o)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("page %d: %d runs\n", page, len(runs))
		if next == "" {
			break
		}
		o.Before = next
	}
	// Output:
	// page 1: 2 runs
	// page 2: 1 runs
}

func ExampleClient_SubmitDurable() {
	nc, stop := startGantry()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := client.New(nc)
	c.RegisterTaskDef(ctx, []byte(helloTaskDef))
	// Published on gantry.submit: had the server been down, the run would
	// be created when it came back.
	r, err := c.SubmitDurable(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"hello"`)}, "order-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Status, r.IdempotencyKey)
	// Output:
	// QUEUED msgid:order-42
}

// Wait needs a worker, and so Docker: this example is only compiled.
func ExampleClient_Wait() {
	nc, _ := nats.Connect(nats.DefaultURL)
	c, _ := client.New(nc)
	ctx := context.Background()
	r, err := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"hello"`)})
	if err != nil {
		log.Fatal(err)
	}
	r, err = c.Wait(ctx, r.RunID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.Status, *r.ExitCode)
}

// Follow prints a run's status changes and its output as they come.
func ExampleClient_Follow() {
	nc, _ := nats.Connect(nats.DefaultURL)
	c, _ := client.New(nc)
	ctx := context.Background()
	r, _ := c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`"hello"`)})
	r, err := c.Follow(ctx, r.RunID, client.FollowOptions{
		Events: func(ev jobs.Event) { fmt.Println("status:", ev.Status) },
		Logs: func(b *jobs.LogBatch) error {
			for _, l := range b.Lines {
				fmt.Printf("%s| %s\n", b.Container, l.Text)
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ended", r.Status)
}
