package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue/embedded"
	"github.com/nats-io/nats.go"
)

// TestWaitSeesAnEndBetweenItsReadAndItsFollowing: a run that ends after
// Wait read it (not ended) and before Wait follows its events is seen to
// end at once, from its events, not at the next of Wait's polls (here
// never), for an operator and for a submit-only user (who reads the run by
// runs.status and the events by direct get).
func TestWaitSeesAnEndBetweenItsReadAndItsFollowing(t *testing.T) {
	o := embedded.Options{User: "op", Password: "op-pw", SubmitUser: "sub", SubmitPassword: "sub-pw"}
	op, stop := startGantryWith(o, []nats.Option{nats.UserInfo("op", "op-pw")})
	defer stop()
	sub, err := nats.Connect(op.ConnectedUrl(), nats.UserInfo("sub", "sub-pw"), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	oc, _ := client.New(op)
	sc, _ := client.New(sub)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client.SetWaitHooks(t.Cleanup, time.Hour, func(runID string) {
		// The run ends, its end stored, before Wait follows it.
		if _, err := oc.Stop(ctx, runID, "ended in between"); err != nil {
			t.Error(err)
		}
		for {
			r, err := oc.Get(ctx, runID)
			if err != nil || r.Status.Terminal() {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	for _, c := range []struct {
		who string
		c   *client.Client
	}{{"operator", oc}, {"submitter", sc}} {
		t.Run(c.who, func(t *testing.T) {
			// No worker: the run stays queued until stopped.
			r, err := c.c.Submit(ctx, &jobs.SubmitRequest{TaskDefinition: []byte(`{"family":"f","containerDefinitions":[{"name":"main","image":"i"}]}`)})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var seen []jobs.Status
			got, err := c.c.WaitFunc(wctx, r.RunID, func(ev jobs.Event) { seen = append(seen, ev.Status) })
			if err != nil || got.Status != jobs.StatusCanceled || got.StoppedReason != "ended in between" {
				t.Fatalf("Wait: %v %+v, want the run CANCELED", err, got)
			}
			if len(seen) == 0 || seen[len(seen)-1] != jobs.StatusCanceled {
				t.Errorf("statuses seen %v, want them to end with CANCELED", seen)
			}
		})
	}
}
