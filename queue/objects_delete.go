package queue

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// DeletePipelineRuns deletes every object of the given pipeline runs (all
// their stages' files and manifests) and returns how many it deleted.
// Deleting what is gone already is no error, so a sweep that died midway
// can simply run again. Object-store deletes leave a marker per object;
// those are purged too, so that nothing of the runs stays in the bucket.
func (s *Stager) DeletePipelineRuns(ctx context.Context, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	obs, err := s.bucket(ctx)
	if err != nil {
		return 0, err
	}
	stream, err := s.dataStream(ctx) // objects.go
	if err != nil {
		return 0, err
	}
	names, err := objectNames(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", DataBucket, err)
	}
	prefixes := make([]string, len(ids))
	for i, id := range ids {
		prefixes[i] = id + "/"
	}
	n := 0
	for _, name := range names {
		if !hasAnyPrefix(name, prefixes) {
			continue
		}
		if err := deleteObject(ctx, obs, stream, name); err != nil { // backups.go
			return n, err
		}
		n++
	}
	return n, nil
}

// metaPrefix begins the subject of each object's meta message in the
// bucket's stream; the object's name, base64 (URL alphabet), ends it.
const metaPrefix = "$O." + DataBucket + ".M."

// objectNames lists the objects of the bucket, deleted ones whose marker
// is left included, by the subjects of their meta messages: one request.
// ObjectStore.List watches the bucket until it has seen every object that
// was there when it began, so an object deleted meanwhile (by another
// sweep, or the bucket's TTL) kept it waiting for ever, and with it every
// later deletion of expired stage data.
func objectNames(ctx context.Context, stream jetstream.Stream) ([]string, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(metaPrefix+">"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		name, err := base64.URLEncoding.DecodeString(strings.TrimPrefix(subj, metaPrefix))
		if err != nil {
			continue // not an object's: nothing of ours to delete
		}
		names = append(names, string(name))
	}
	slices.Sort(names)
	return names, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
