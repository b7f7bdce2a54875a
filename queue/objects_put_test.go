package queue

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestPutObjectReadsAsObjectStorePut: what putObject stores reads back
// with nats.go's ObjectStore (GetInfo, Get, List, Watch) as what
// ObjectStore.Put stores: the same info but for the NUID and time, the
// same meta message fields, for the empty file, a file of whole chunks
// and one past them, names with spaces, unicode and deep paths, and the
// executable mode's metadata. Storing each again leaves only the chunks of
// the objects there.
func TestPutObjectReadsAsObjectStorePut(t *testing.T) {
	q := newQueue(t)
	js := q.JetStream()
	s := NewStager(js, 0, 1)
	ctx := context.Background()
	obs, err := s.bucket(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := s.dataStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{7})
	data := func(n int) []byte { b := make([]byte, n); rng.Read(b); return b }
	cases := []struct {
		name string
		data []byte
		mode bool
	}{
		{"empty", nil, false},
		{"one byte", []byte{1}, false},
		{"two chunks", data(2 * chunkSize), false},
		{"a/b/c/d/e/f/deep path.bin", data(chunkSize + 1), false},
		{"ünïcødé 名前 ✓.txt", data(100), false},
		{"bin/tool", data(3000), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			meta := func(prefix string) jetstream.ObjectMeta {
				m := jetstream.ObjectMeta{Name: prefix + c.name}
				if c.mode {
					m.Metadata = map[string]string{modeKey: "0755"}
				}
				return m
			}
			for range 2 { // the second replaces the first
				if err := putObject(ctx, js, obs, stream, meta("ours/"), bytes.NewReader(c.data), s.keepLeftover); err != nil {
					t.Fatal(err)
				}
				if _, err := obs.Put(ctx, meta("nats/"), bytes.NewReader(c.data)); err != nil {
					t.Fatal(err)
				}
			}
			ours, err := obs.GetInfo(ctx, "ours/"+c.name)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := obs.GetInfo(ctx, "nats/"+c.name)
			if err != nil {
				t.Fatal(err)
			}
			if ours.ModTime.IsZero() || time.Since(ours.ModTime) > time.Minute {
				t.Errorf("mtime %s, want the store's time", ours.ModTime)
			}
			same := func(i *jetstream.ObjectInfo) jetstream.ObjectInfo {
				o := *i
				o.Name, o.NUID, o.ModTime = "", "", time.Time{}
				return o
			}
			a, _ := json.Marshal(same(ours))
			b, _ := json.Marshal(same(theirs))
			if !bytes.Equal(a, b) {
				t.Errorf("putObject's info\n%s\nObjectStore.Put's\n%s", a, b)
			}
			// The meta messages as stored, field by field.
			raw := func(name string) map[string]any {
				msg, err := stream.GetLastMsgForSubject(ctx, metaPrefix+base64.URLEncoding.EncodeToString([]byte(name)))
				if err != nil {
					t.Fatal(err)
				}
				if msg.Header.Get(jetstream.MsgRollup) != jetstream.MsgRollupSubject {
					t.Errorf("%s: meta message headers %v, want %s: %s", name, msg.Header, jetstream.MsgRollup, jetstream.MsgRollupSubject)
				}
				var m map[string]any
				if err := json.Unmarshal(msg.Data, &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
			rours, rtheirs := raw("ours/"+c.name), raw("nats/"+c.name)
			if k1, k2 := slices.Sorted(maps.Keys(rours)), slices.Sorted(maps.Keys(rtheirs)); !slices.Equal(k1, k2) {
				t.Errorf("meta message fields %v, ObjectStore.Put's %v", k1, k2)
			}
			res, err := obs.Get(ctx, "ours/"+c.name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(res)
			res.Close()
			if err != nil || !bytes.Equal(got, c.data) {
				t.Errorf("read back %d of %d bytes, equal: %v (%v)", len(got), len(c.data), bytes.Equal(got, c.data), err)
			}
		})
	}
	// List and Watch see every object; the bucket holds the chunks of
	// those alone.
	want := map[string]bool{}
	for _, c := range cases {
		want["ours/"+c.name], want["nats/"+c.name] = true, true
	}
	infos, err := obs.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed, nuids := map[string]bool{}, map[string]bool{}
	for _, i := range infos {
		listed[i.Name] = true
		nuids[chunkPrefix+i.NUID] = true
	}
	if !maps.Equal(listed, want) {
		t.Errorf("List: %v, want %v", listed, want)
	}
	w, err := obs.Watch(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	watched := map[string]bool{}
	for i := range w.Updates() {
		if i == nil {
			break
		}
		watched[i.Name] = true
	}
	if !maps.Equal(watched, want) {
		t.Errorf("Watch: %v, want %v", watched, want)
	}
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter(chunkPrefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	for subj, n := range si.State.Subjects {
		if !nuids[subj] {
			t.Errorf("%d chunks on %s, of no object", n, subj)
		}
	}
}
