package queue

import (
	"bytes"
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

	"github.com/gantry-dev/gantry/jobs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DataBucket is the one object-store bucket that carries files between
// pipeline stages. Objects are named <pipeline run>/<stage>/<run>/<path>,
// with a manifest per stage run at <pipeline run>/<stage>/.manifests/<run>:
// one bucket (one stream) however many pipelines run, as DESIGN.md asks.
// (Before, files were <pipeline run>/<stage>/<path>, so the runs of an
// array stage overwrote each other's files of the same name; manifests of
// that layout are still read.)
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

	mu       sync.Mutex
	obs      jetstream.ObjectStore
	stream   jetstream.Stream // the bucket's
	leftover []string         // subjects of chunks putObject could not purge
}

// NewStager returns a stager over JetStream for a data retention (0 means
// DefaultDataRetention; the bucket's TTL is retention + DataBucketSlack)
// with the given replica count: 0 keeps the bucket's if it exists, and
// makes it with the replicas of the jobs stream if not (see bucket), R1
// where that does not exist either. A worker, which is not told the
// count, passes 0.
func NewStager(js jetstream.JetStream, retention time.Duration, replicas int) *Stager {
	if retention <= 0 {
		retention = DefaultDataRetention
	}
	return &Stager{js: js, ttl: retention + DataBucketSlack, replicas: max(replicas, 0)}
}

// bucket opens the bucket on first use, creating it if no one has. The
// server owns its configuration (EnsureBucket): a worker uses the bucket
// as it finds it, so that its default retention does not undo the
// server's. The bucket is missing where the server's EnsureBucket failed
// at its start (it tries again in the background, and its retention then
// replaces the default one a worker gave the bucket) or an operator
// deleted it; a worker that makes it then gives it the replicas of the
// jobs stream, which the server made with its --replicas (or an operator
// scaled by hand): it made it R1, and a server with --replicas 3 left it
// so until its next start.
//
// The handle reads by direct get if the bucket's stream allowed it when
// opened (dataStreamConfig); forget drops it.
func (s *Stager) bucket(ctx context.Context) (jetstream.ObjectStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obs != nil {
		return s.obs, nil
	}
	obs, err := s.js.ObjectStore(ctx, DataBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		var n int
		if n, err = replicasFor(ctx, s.js, StreamJobs, s.replicas); err != nil { // queue.go
			return nil, fmt.Errorf("object store %s: %w", DataBucket, err)
		}
		_, err = s.js.CreateStream(ctx, s.dataStreamConfig(n))
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // made meanwhile, by the server or another worker
			obs, err = s.js.ObjectStore(ctx, DataBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	s.obs = obs
	return obs, nil
}

// forget drops the handles of the bucket and its stream, for the next use
// to open them again: a handle opened when the bucket's stream allowed
// direct gets asks for them, which no one answers once the server turned
// them off (EnsureBucket, after the bucket became R3).
func (s *Stager) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs, s.stream = nil, nil
}

// dataStream returns the bucket's stream, which putObject and the
// deletions purge, asking JetStream for it on first use only: a stage's
// hop waits for each round trip.
func (s *Stager) dataStream(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return s.stream, nil
	}
	stream, err := s.js.Stream(ctx, dataStreamName)
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	s.stream = stream
	return stream, nil
}

// keepLeftover notes the subject of chunks that putObject could not purge
// (NATS was down), for the next store to purge.
func (s *Stager) keepLeftover(chunks string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leftover = append(s.leftover, chunks)
}

// purgeLeftovers purges the chunks that earlier stores could not: those of
// a store that NATS restarting cut short, which the worker's next try
// replaces, would otherwise stay for the bucket's TTL (37 days by
// default), a copy of a stage's outputs per failed try. Those it cannot
// purge either it keeps for the next store.
func (s *Stager) purgeLeftovers(ctx context.Context, stream jetstream.Stream) {
	s.mu.Lock()
	subjects := s.leftover
	s.leftover = nil
	s.mu.Unlock()
	for i, subj := range subjects {
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			s.mu.Lock()
			s.leftover = append(s.leftover, subjects[i:]...)
			s.mu.Unlock()
			return
		}
	}
}

// EnsureBucket creates the bucket or brings its retention and replicas to
// the stager's (its replicas are kept when the stager's are 0), and turns
// direct gets off on a replicated one (dataStreamConfig); the server calls
// it at start.
func (s *Stager) EnsureBucket(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := replicasFor(ctx, s.js, dataStreamName, s.replicas) // queue.go
	if err != nil {
		return fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	stream, err := ensure(ctx, s.dataStreamConfig(n), jetstream.ErrStreamNameAlreadyInUse, s.js.CreateStream, s.js.CreateOrUpdateStream)
	if err != nil {
		return fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	obs, err := s.js.ObjectStore(ctx, DataBucket)
	if err != nil {
		return fmt.Errorf("object store %s: %w", DataBucket, err)
	}
	s.obs, s.stream = obs, stream
	return nil
}

// dataStreamName is the bucket's stream's, as nats.go names an object
// store's.
const dataStreamName = "OBJ_" + DataBucket

// dataStreamConfig is the configuration of the bucket's stream: the one
// nats.go gives an object store's (jetstream.ObjectStoreConfig has no
// say in AllowDirect), but with direct gets only on an R1 bucket. Any
// replica answers a direct get, the nearest first, and a follower applies
// a write only after the leader acknowledged it: a downstream stage whose
// worker was connected to a follower read, right after its upstream
// stored its files, no manifest (a run that stored nothing) or an
// earlier attempt's. Without direct gets, nats.go reads an object's
// meta message (manifest, file info) from the stream's leader; its
// chunks come through a consumer, which waits for them. An R1 bucket's
// one replica is its leader, and a direct get there was 20 µs faster at
// the median here, its 99th percentile several times.
func (s *Stager) dataStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        dataStreamName,
		Description: "gantry: files passed between pipeline stages",
		Subjects:    []string{chunkPrefix + ">", metaPrefix + ">"}, // objects_put.go, objects_delete.go
		MaxAge:      s.ttl,
		MaxBytes:    -1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Discard:     jetstream.DiscardNew,
		AllowRollup: true,
		AllowDirect: replicas <= 1,
	}
}

func stagePrefix(pipelineRun, stage string) string { return pipelineRun + "/" + stage + "/" }

func manifestName(pipelineRun, stage, runID string) string {
	return stagePrefix(pipelineRun, stage) + ".manifests/" + runID
}

// A manifest is the JSON list of the objects one run of a stage stored,
// each named after stagePrefix: "<run>/<path>". In the first layout the
// entries were the paths alone. A worker of that layout reads this one's
// manifests, with each run's files under a directory named by the run.

// StageClashError is two runs of a stage that stored different files of
// one name: the stages downstream would get only one of them.
type StageClashError struct {
	Stage, File string
	Runs        [2]string
}

func (e *StageClashError) Error() string {
	return fmt.Sprintf("stage %s inputs: runs %s and %s of stage %s both wrote %s, with different contents: "+
		"each run of an array stage must name its files apart (with $GANTRY_ARRAY_INDEX, say), or one would be lost",
		e.Stage, e.Runs[0], e.Runs[1], e.Stage, e.File)
}

// Put stores every regular file under dir as an output of one attempt of
// a run of a stage, then its manifest, so that a reader never sees a
// manifest naming files not yet stored. Putting again (a retry) replaces
// both; a retry that stores nothing deletes the manifest before it.
//
// An error that a later try may not meet (NATS restarting, a JetStream
// leader election: see transient) has a Transient method that returns
// true. Each chunk of a file has JetStream's default timeout to be stored
// (putObject); nothing bounds a whole file.
func (s *Stager) Put(ctx context.Context, pipelineRun, stage, runID string, attempt int, dir string) error {
	if err := s.reopened(func() error { return s.put(ctx, pipelineRun, stage, runID, attempt, dir) }); err != nil {
		if transient(err) {
			return &transientError{err}
		}
		return err
	}
	return nil
}

func (s *Stager) put(ctx context.Context, pipelineRun, stage, runID string, attempt int, dir string) error {
	obs, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	var (
		files  []string
		stream jetstream.Stream // once a file is to be stored
	)
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
		meta := jetstream.ObjectMeta{Name: stagePrefix(pipelineRun, stage) + runID + "/" + rel}
		if info, err := d.Info(); err == nil && info.Mode()&0o111 != 0 {
			// A program a stage built runs in the next one.
			meta.Metadata = map[string]string{modeKey: "0755"}
		}
		if stream == nil {
			if stream, err = s.dataStream(ctx); err != nil {
				return err
			}
		}
		if err := putObject(ctx, s.js, obs, stream, meta, f, s.keepLeftover); err != nil { // objects_put.go
			return fmt.Errorf("store %s: %w", rel, explainFull(err))
		}
		if len(files) == 0 {
			// After a store whose chunks were all acknowledged: the stream
			// has stored what was sent before them, a failed store's late
			// chunks too.
			s.purgeLeftovers(ctx, stream)
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
	for i, rel := range files {
		files[i] = runID + "/" + rel
	}
	data, _ := json.Marshal(files)
	if _, err := obs.PutBytes(ctx, manifestName(pipelineRun, stage, runID), data); err != nil {
		return fmt.Errorf("stage %s outputs: manifest: %w", stage, explainFull(err))
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
// without a manifest stored nothing. Runs of an array stage share the
// directory: a file that several stored is written once if they stored
// the same bytes, and is a *StageClashError if not, but for
// jobs.StageOutputsFile, whose lines are joined in the runs' order.
func (s *Stager) Get(ctx context.Context, pipelineRun, stage string, runIDs []string, dir string) error {
	return s.reopened(func() error { return s.get(ctx, pipelineRun, stage, runIDs, dir) })
}

func (s *Stager) get(ctx context.Context, pipelineRun, stage string, runIDs []string, dir string) error {
	obs, err := s.bucket(ctx)
	if err != nil {
		return err
	}
	type source struct{ run, object string }
	var order []string // the files, in the order first stored
	sources := map[string][]source{}
	for _, id := range runIDs {
		data, err := obs.GetBytes(ctx, manifestName(pipelineRun, stage, id))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stage %s inputs: manifest of run %s: %w", stage, id, err)
		}
		var entries []string
		if err := json.Unmarshal(data, &entries); err != nil {
			return fmt.Errorf("stage %s inputs: manifest of run %s: %w", stage, id, err)
		}
		for _, entry := range entries {
			rel := strings.TrimPrefix(entry, id+"/") // the first layout has no run directory
			clean := path.Clean("/" + rel)[1:]
			if clean == "" || strings.HasPrefix(clean, "../") {
				continue
			}
			if sources[clean] == nil {
				order = append(order, clean)
			}
			sources[clean] = append(sources[clean], source{id, stagePrefix(pipelineRun, stage) + entry})
		}
	}
	for _, rel := range order {
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			return err
		}
		srcs := sources[rel]
		if rel == jobs.StageOutputsFile && len(srcs) > 1 {
			names := make([]string, len(srcs))
			for i, src := range srcs {
				names[i] = src.object
			}
			if err := joinFiles(ctx, obs, names, dst); err != nil {
				return fmt.Errorf("stage %s inputs: %s: %w", stage, rel, err)
			}
			continue
		}
		if len(srcs) > 1 {
			first, err := obs.GetInfo(ctx, srcs[0].object)
			if err != nil {
				return fmt.Errorf("stage %s inputs: %s: %w", stage, rel, err)
			}
			for _, other := range srcs[1:] {
				info, err := obs.GetInfo(ctx, other.object)
				if err != nil {
					return fmt.Errorf("stage %s inputs: %s: %w", stage, rel, err)
				}
				if info.Digest != first.Digest || info.Size != first.Size {
					return &StageClashError{Stage: stage, File: rel, Runs: [2]string{srcs[0].run, other.run}}
				}
			}
		}
		if err := getFile(ctx, obs, srcs[0].object, dst); err != nil {
			return fmt.Errorf("stage %s inputs: %s: %w", stage, rel, err)
		}
	}
	return nil
}

// reopened calls f, and once more with the bucket opened again (forget)
// when f asked for a direct get that no one answered: the server turned
// direct gets off after the stager opened the bucket.
func (s *Stager) reopened(f func() error) error {
	err := f()
	if errors.Is(err, nats.ErrNoResponders) {
		s.forget()
		err = f()
	}
	return err
}

// joinFiles writes the objects into dst one after another, with a line
// break between any two.
func joinFiles(ctx context.Context, obs jetstream.ObjectStore, names []string, dst string) error {
	var joined []byte
	for _, name := range names {
		data, err := obs.GetBytes(ctx, name)
		if err != nil {
			return err
		}
		joined = append(joined, data...)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			joined = append(joined, '\n')
		}
	}
	return os.WriteFile(dst, joined, 0o644)
}

// StageOutputs returns every key set in the outputs.env files the given
// runs of a stage stored, read by the rules the worker reads them with
// (jobs.ParseOutputs), in the runs' order: the last line setting a key
// wins, as in the joined file a downstream stage gets. A key no run set
// is absent. A file that does not parse, or that a manifest lists but the
// bucket lacks, is an invalid_argument error naming the run: reading it
// again would not help. It reads one manifest per run, as Get does, and
// the outputs.env it lists: all the keys at once, as a reader wanting
// several would otherwise read every object once for each.
func (s *Stager) StageOutputs(ctx context.Context, pipelineRun, stage string, runIDs []string) (values map[string]string, err error) {
	err = s.reopened(func() error {
		values, err = s.stageOutputs(ctx, pipelineRun, stage, runIDs)
		return err
	})
	return values, err
}

func (s *Stager) stageOutputs(ctx context.Context, pipelineRun, stage string, runIDs []string) (map[string]string, error) {
	obs, err := s.bucket(ctx)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for _, id := range runIDs {
		data, err := obs.GetBytes(ctx, manifestName(pipelineRun, stage, id))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stage %s outputs: manifest of run %s: %w", stage, id, err)
		}
		var entries []string
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, fmt.Errorf("stage %s outputs: manifest of run %s: %w", stage, id, err)
		}
		for _, entry := range entries {
			rel := strings.TrimPrefix(entry, id+"/") // the first layout has no run directory
			if path.Clean("/" + rel)[1:] != jobs.StageOutputsFile {
				continue
			}
			b, err := obs.GetBytes(ctx, stagePrefix(pipelineRun, stage)+entry)
			if errors.Is(err, jetstream.ErrObjectNotFound) {
				return nil, jobs.Invalid(fmt.Sprintf("stage %s: run %s stored a %s that is gone", stage, id, jobs.StageOutputsFile))
			}
			if err != nil {
				return nil, fmt.Errorf("stage %s outputs: %s of run %s: %w", stage, jobs.StageOutputsFile, id, err)
			}
			kvs, err := jobs.ParseOutputs(bytes.NewReader(b))
			if err != nil {
				return nil, jobs.Invalid(fmt.Sprintf("stage %s: %s of run %s: %v", stage, jobs.StageOutputsFile, id, err))
			}
			for _, kv := range kvs {
				values[kv.Name] = kv.Value
			}
		}
	}
	return values, nil
}
