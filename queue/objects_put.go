package queue

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// putWindow bounds the chunks of a stage file sent to NATS and not yet
// acknowledged: 64 of 128 KiB, 8 MiB. nats.go's ObjectStore.Put sends up
// to 4,000 (500 MiB) without waiting, more than a stream queues on its
// way to the store (128 MiB by default): NATS dropped the rest ("429 too
// many requests") or acknowledged them later than JetStream's timeout, so
// no stage could pass on a file of much more than 128 MiB (here a GiB
// failed after 3 to 10 s; nats.go issue 1908). With the window, an ack
// waits for at most 8 MiB to be stored before it.
const putWindow = 64

// chunkSize is the size of an object's chunks, nats.go's default.
const chunkSize = 128 << 10

// chunkPrefix begins the subject of an object's chunks in the bucket's
// stream; the NUID of one store of the object ends it.
const chunkPrefix = "$O." + DataBucket + ".C."

// putObject stores what r holds as the object meta.Name, replacing the
// one of that name, as ObjectStore.Put does and in its format (chunks on
// a subject of their own, then the object's meta message, which replaces
// the last; then the old chunks are purged), so that ObjectStore reads it,
// but with at most putWindow chunks awaiting their acks. Each ack may take
// JetStream's default timeout; nothing bounds the whole file. A store that
// fails purges the chunks it sent, and passes them to leftover, by their
// subject, for a later store to purge again (Stager.purgeLeftovers):
// chunks of its sent as NATS went away can be stored after the purge, and
// nothing else would remove them before the bucket's TTL. So are the
// replaced object's chunks when their purge fails.
func putObject(ctx context.Context, js jetstream.JetStream, obs jetstream.ObjectStore, stream jetstream.Stream,
	meta jetstream.ObjectMeta, r io.Reader, leftover func(chunks string)) (err error) {
	old, err := obs.GetInfo(ctx, meta.Name, jetstream.GetObjectInfoShowDeleted())
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return err
	}
	var (
		mu   sync.Mutex
		perr error // the first chunk NATS did not store
	)
	timeout := js.Options().DefaultTimeout
	pub, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(putWindow),
		jetstream.WithPublishAsyncTimeout(timeout),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			mu.Lock()
			defer mu.Unlock()
			if perr == nil {
				perr = err
			}
		}))
	if err != nil {
		return err
	}
	defer pub.CleanupPublisher()
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return perr
	}
	id := nuid.Next()
	chunks := chunkPrefix + id
	purge := func() {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		select {
		case <-pub.PublishAsyncComplete():
		case <-pctx.Done():
		}
		_ = stream.Purge(pctx, jetstream.WithPurgeSubject(chunks))
		// Kept for the next store to purge again even when this purge
		// went through: chunks sent while NATS was away, flushed when
		// the connection comes back, wait in the stream's own queue,
		// which the purge (a JetStream API request) can overtake; they
		// are stored after it.
		leftover(chunks)
	}
	defer func() { // runs before CleanupPublisher
		if err != nil {
			purge()
		}
	}()
	// A slot frees once an ack comes or times out.
	stall := jetstream.WithStallWait(timeout + timeout/2)
	// A chunk that finds no stream (NATS restarting, its JetStream not up
	// yet) fails the store rather than being sent again 250 ms later, as
	// nats.go does: stored after the chunks sent meanwhile, it would
	// scramble the object (a digest mismatch when read), and sent after
	// the store failed and its chunks were purged, it would stay in the
	// bucket. The worker stores the whole file again.
	once := jetstream.WithRetryAttempts(0)

	meta.Opts = &jetstream.ObjectMetaOptions{ChunkSize: chunkSize}
	info := jetstream.ObjectInfo{ObjectMeta: meta, Bucket: DataBucket, NUID: id}
	// One buffer for every chunk: PublishMsgAsync copies a chunk into the
	// connection's buffer before it returns, and nothing sends it again
	// (once).
	h, buf := sha256.New(), make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := io.ReadFull(r, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return rerr
		}
		if n > 0 {
			h.Write(buf[:n])
			if _, err := pub.PublishMsgAsync(&nats.Msg{Subject: chunks, Data: buf[:n]}, stall, once); err != nil {
				return err
			}
			if err := failed(); err != nil {
				return err
			}
			info.Size += uint64(n)
			info.Chunks++
		}
		if rerr != nil {
			break
		}
	}
	info.Digest = "SHA-256=" + base64.URLEncoding.EncodeToString(h.Sum(nil))
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	m := nats.NewMsg(metaPrefix + base64.URLEncoding.EncodeToString([]byte(meta.Name))) // objects_delete.go
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = data
	if _, err := pub.PublishMsgAsync(m, stall, once); err != nil {
		return err
	}
	select {
	case <-pub.PublishAsyncComplete():
		if err := failed(); err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if old != nil && !old.Deleted {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(chunkPrefix+old.NUID)); err != nil {
			leftover(chunkPrefix + old.NUID)
		}
	}
	return nil
}
