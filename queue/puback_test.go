package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PutClaim writes claims as kv.Create and kv.Update would: a second
// first claim and a claim at a stale revision conflict, and a run whose
// claim was deleted can be claimed again.
func TestPutClaimRevisions(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	rev, err := q.PutClaim(ctx, "r1", []byte(`{"attempt":1}`), 0)
	if err != nil || rev == 0 {
		t.Fatalf("first claim: rev %d, %v", rev, err)
	}
	if _, err := q.PutClaim(ctx, "r1", []byte(`{"attempt":1,"worker":"w2"}`), 0); !errors.Is(err, ErrClaimConflict) {
		t.Fatalf("second first claim: %v; want ErrClaimConflict", err)
	}
	next, err := q.PutClaim(ctx, "r1", []byte(`{"attempt":2}`), rev)
	if err != nil || next <= rev {
		t.Fatalf("claim at its revision: rev %d, %v", next, err)
	}
	if _, err := q.PutClaim(ctx, "r1", []byte(`{"attempt":3}`), rev); !errors.Is(err, ErrClaimConflict) {
		t.Fatalf("claim at a stale revision: %v; want ErrClaimConflict", err)
	}
	data, got, err := q.Claim(ctx, "r1")
	if err != nil || got != next || string(data) != `{"attempt":2}` {
		t.Fatalf("claim read back: %s at %d, %v; want attempt 2 at %d", data, got, err, next)
	}

	kv, err := q.bucket(ctx, claimsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	again, err := q.PutClaim(ctx, "r1", []byte(`{"attempt":1}`), 0)
	if err != nil || again <= next {
		t.Fatalf("first claim of a deleted key: rev %d, %v", again, err)
	}
}

// A publish that no stream takes fails as jetstream.PublishMsg's does,
// after asking again while a stream might be being elected.
func TestPublishSyncWithoutStream(t *testing.T) {
	q := newQueue(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := q.publishSync(ctx, &nats.Msg{Subject: "gantry.nowhere", Data: []byte("x")})
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("publish to no stream: %v; want ErrNoStreamResponse", err)
	}
	ack, err := q.publishSync(ctx, &nats.Msg{Subject: ReportSubject, Data: []byte("[]")})
	if err != nil || ack.Stream == "" || ack.Sequence == 0 {
		t.Fatalf("publish to the reports stream: %+v, %v", ack, err)
	}
}

func TestDecodePubAck(t *testing.T) {
	ack, err := decodePubAck([]byte(`{"stream":"GANTRY_JOBS","seq":42,"duplicate":true}`))
	if err != nil || ack.Stream != "GANTRY_JOBS" || ack.Sequence != 42 || !ack.Duplicate {
		t.Fatalf("ack: %+v, %v", ack, err)
	}
	_, err = decodePubAck([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}`))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence || !isWrongLastSeq(err) {
		t.Fatalf("error answer: %v; want the API error 10071", err)
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("error answer: %v; want it to match ErrKeyExists by code, as nats.go's does", err)
	}
	for _, bad := range []string{``, `{}`, `{"seq":1}`, `not json`} {
		if _, err := decodePubAck([]byte(bad)); !errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Errorf("%q: %v; want ErrInvalidJSAck", bad, err)
		}
	}
}

func FuzzDecodePubAck(f *testing.F) {
	f.Add([]byte(`{"stream":"S","seq":1}`))
	f.Add([]byte(`{"error":{"code":503,"err_code":10039,"description":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ack, err := decodePubAck(data)
		if (ack == nil) == (err == nil) {
			t.Fatalf("ack %v and error %v", ack, err)
		}
		if ack != nil && ack.Stream == "" {
			t.Fatalf("ack without a stream: %+v", ack)
		}
	})
}

// A publish whose ctx has no deadline gives up after the JetStream
// context's default timeout, as jetstream.PublishMsg (and so kv.Create and
// kv.Update, which PutClaim used) does: a reply that never comes (a
// subscriber that takes the message and answers nothing, an answer lost
// as a connection drops) must not hold the server's advance or a worker's
// claim for ever. Before, publishSync waited on ctx alone.
func TestPublishSyncWithoutDeadlineTimesOut(t *testing.T) {
	q := newQueue(t)
	js, err := jetstream.New(q.nc, jetstream.WithDefaultTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	q.js = js
	silent, err := q.nc.SubscribeSync("gantry.silent")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	if err := q.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := q.publishSync(context.Background(), &nats.Msg{Subject: "gantry.silent", Data: []byte("x")})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("publish with no answer: %v; want the default timeout's context.DeadlineExceeded", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publish with no answer and no deadline still waiting after 30s; want it to give up after the default timeout (200ms)")
	}
}

// A stream refuses a write at a stale revision with 10071, or, when it
// is replicated, 10164: PutClaim takes both for a conflict, and nothing
// else.
func TestIsWrongLastSeq(t *testing.T) {
	for _, tc := range []struct {
		answer string
		want   bool
	}{
		{`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}`, true},
		{`{"error":{"code":400,"err_code":10164,"description":"wrong last sequence"}}`, true},
		{`{"error":{"code":503,"err_code":10039,"description":"jetstream not enabled for account"}}`, false},
		{`{"stream":"KV_gantry-claims","seq":4}`, false},
	} {
		_, err := decodePubAck([]byte(tc.answer))
		if got := isWrongLastSeq(err); got != tc.want {
			t.Errorf("%s: isWrongLastSeq(%v) = %v, want %v", tc.answer, err, got, tc.want)
		}
		if got := isWrongLastSeq(fmt.Errorf("claim of run r1: %w", err)); err != nil && got != tc.want {
			t.Errorf("%s wrapped: %v, want %v", tc.answer, got, tc.want)
		}
	}
}

// A peer that resets the connection before it greets (a NATS server
// starting or stopping) is unreachable for now, which the long-running
// roles wait out, not a failure they stop on.
func TestDialResetIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0) // close with a reset
			c.Close()
		}
	}()
	_, err = Dial(context.Background(), ConnOptions{URL: "nats://" + ln.Addr().String(), Timeout: 2 * time.Second})
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(ue.Down, "reset the connection") {
		t.Fatalf("a peer that resets: %v (%T); want an UnreachableError saying it reset the connection", err, err)
	}
}
