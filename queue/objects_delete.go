package queue

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
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
	infos, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", DataBucket, err)
	}
	prefixes := make([]string, len(ids))
	for i, id := range ids {
		prefixes[i] = id + "/"
	}
	stream, err := s.js.Stream(ctx, "OBJ_"+DataBucket)
	if err != nil {
		return 0, fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	n := 0
	for _, info := range infos {
		if !hasAnyPrefix(info.Name, prefixes) {
			continue
		}
		if err := obs.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return n, fmt.Errorf("delete %s: %w", info.Name, err)
		}
		meta := "$O." + DataBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(info.Name))
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(meta)); err != nil {
			return n, fmt.Errorf("purge %s: %w", info.Name, err)
		}
		n++
	}
	return n, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
