package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DataBucket is the one object-store bucket that carries files between
// pipeline stages. Objects are named <pipeline run>/<stage>/<path>, with a
// manifest per stage run at <pipeline run>/<stage>/.manifests/<run>: one
// bucket (one stream) however many pipelines run, as DESIGN.md asks.
const DataBucket = "gantry-data"

// DefaultDataRetention is how long stage files are kept after their
// pipeline run ended.
const DefaultDataRetention = 7 * 24 * time.Hour

// DataBucketSlack is added to the retention to make the bucket's own TTL:
// the server deletes a pipeline run's files when its retention ends
// (DeletePipelineRuns); the TTL only catches files no run accounts for,
// and must not take those of a run still going. It counts from when a
// file was written, not from its run's end, so it is long: a stage's
// files are there for its downstream stages for 30 days and the retention
// (a day was the slack before, and with --data-retention 1h a pipeline
// run longer than 25 hours lost its upstream files).
const DataBucketSlack = 30 * 24 * time.Hour

// Stager moves the files of pipeline stages through the object store. It
// is safe for concurrent use.
type Stager struct {
	js       jetstream.JetStream
	ttl      time.Duration
	replicas int

	mu  sync.Mutex
	obs jetstream.ObjectStore
}

// NewStager returns a stager over JetStream for a data retention (0 means
// DefaultDataRetention; the bucket's TTL is retention + DataBucketSlack)
// with the given replica count (0 means 1).
func NewStager(js jetstream.JetStream, retention time.Duration, replicas int) *Stager {
	if retention <= 0 {
		retention = DefaultDataRetention
	}
	return &Stager{js: js, ttl: retention + DataBucketSlack, replicas: max(replicas, 1)}
}

// bucket opens the bucket on first use, creating it if no one has. The
// server owns its configuration (EnsureBucket): a worker uses the bucket
// as it finds it, so that its default retention does not undo the
// server's.
func (s *Stager) bucket(ctx context.Context) (jetstream.ObjectStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obs != nil {
		return s.obs, nil
	}
	obs, err := s.js.ObjectStore(ctx, DataBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = s.createBucket(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	s.obs = obs
	return obs, nil
}

// EnsureBucket creates the bucket or brings its retention and replicas to
// the stager's; the server calls it at start.
func (s *Stager) EnsureBucket(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	obs, err := s.createBucket(ctx)
	if err != nil {
		return fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	s.obs = obs
	return nil
}

func (s *Stager) createBucket(ctx context.Context) (jetstream.ObjectStore, error) {
	return ensure(ctx, jetstream.ObjectStoreConfig{
		Bucket:      DataBucket,
		Description: "gantry: files passed between pipeline stages",
		TTL:         s.ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
	}, jetstream.ErrBucketExists, s.js.CreateObjectStore, s.js.CreateOrUpdateObjectStore) // queue.go
}

func stagePrefix(pipelineRun, stage string) string { return pipelineRun + "/" + stage + "/" }

func manifestName(pipelineRun, stage, runID string) string {
	return stagePrefix(pipelineRun, stage) + ".manifests/" + runID
}

// Put stores every regular file under dir as an output of one attempt of
// a run of a stage, then its manifest, so that a reader never sees a
// manifest naming files not yet stored. Putting again (a retry) replaces
// both; a retry that stores nothing deletes the manifest before it.
func (s *Stager) Put(ctx context.Context, pipelineRun, stage, runID string, attempt int, dir string) error {
	obs, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		meta := jetstream.ObjectMeta{Name: stagePrefix(pipelineRun, stage) + rel}
		if info, err := d.Info(); err == nil && info.Mode()&0o111 != 0 {
			// A program a stage built runs in the next one.
			meta.Metadata = map[string]string{modeKey: "0755"}
		}
		if _, err := obs.Put(ctx, meta, f); err != nil {
			return fmt.Errorf("store %s: %w", rel, err)
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("stage %s outputs: %w", stage, err)
	}
	if len(files) == 0 {
		// Nothing to hand on: no manifest either, which Get reads as a run
		// that stored nothing. An object store put costs several round
		// trips (up to 10 ms here), on the critical path of every stage hop.
		// An earlier attempt may have left one (its end was never stored).
		if attempt > 1 {
			if err := obs.Delete(ctx, manifestName(pipelineRun, stage, runID)); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return fmt.Errorf("stage %s outputs: an earlier attempt's manifest: %w", stage, err)
			}
		}
		return nil
	}
	data, _ := json.Marshal(files)
	if _, err := obs.PutBytes(ctx, manifestName(pipelineRun, stage, runID), data); err != nil {
		return fmt.Errorf("stage %s outputs: manifest: %w", stage, err)
	}
	return nil
}

// minReadRate is the slowest a stage file may come from the object store:
// a read is given a minute and a second per MiB of the file. Without a
// deadline of its own, nats.go gives a whole object JetStream's default
// timeout (5 s), which capped what a stage could pass on at what the
// machine reads in 5 s.
const minReadRate = 1 << 20 // bytes a second

// modeKey is the object metadata that marks a stage file executable.
const modeKey = "gantry-mode"

// getFile reads one object into dst within a deadline that grows with its
// size (minReadRate), readable by all and executable if it was stored so.
func getFile(ctx context.Context, obs jetstream.ObjectStore, name, dst string) error {
	info, err := obs.GetInfo(ctx, name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(info.Size/minReadRate)*time.Second)
	defer cancel()
	if err := obs.GetFile(ctx, name, dst); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if info.Metadata[modeKey] == "0755" {
		mode = 0o755
	}
	return os.Chmod(dst, mode)
}

// Get writes into dir the files the given runs of a stage stored. A run
// without a manifest stored nothing.
func (s *Stager) Get(ctx context.Context, pipelineRun, stage string, runIDs []string, dir string) error {
	obs, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	for _, id := range runIDs {
		data, err := obs.GetBytes(ctx, manifestName(pipelineRun, stage, id))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stage %s inputs: manifest of run %s: %w", stage, id, err)
		}
		var files []string
		if err := json.Unmarshal(data, &files); err != nil {
			return fmt.Errorf("stage %s inputs: manifest of run %s: %w", stage, id, err)
		}
		for _, rel := range files {
			clean := path.Clean("/" + rel)[1:]
			if clean == "" || strings.HasPrefix(clean, "../") {
				continue
			}
			dst := filepath.Join(dir, filepath.FromSlash(clean))
			if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
				return err
			}
			if err := getFile(ctx, obs, stagePrefix(pipelineRun, stage)+rel, dst); err != nil {
				return fmt.Errorf("stage %s inputs: %s: %w", stage, rel, err)
			}
		}
	}
	return nil
}
