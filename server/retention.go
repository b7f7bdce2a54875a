package server

import (
	"context"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/queue"
	"github.com/rs/zerolog"
)

// WithDataRetention sets how long the files pipeline stages pass along
// (the object-store bucket queue.DataBucket) are kept after their pipeline
// run ended; 0 means queue.DefaultDataRetention.
func WithDataRetention(d time.Duration) Option { return func(c *config) { c.dataRetention = d } }

// retention is the configured data retention with its default.
func (s *Server) retention() time.Duration {
	if s.cfg.dataRetention > 0 {
		return s.cfg.dataRetention
	}
	return queue.DefaultDataRetention
}

// retentionEvery is how often the server looks for pipeline runs whose
// files are due for deletion: a quarter of the retention, between a
// second and a minute.
func retentionEvery(retention time.Duration) time.Duration {
	return min(max(retention/4, time.Second), time.Minute)
}

// startDataRetention brings the bucket's TTL to the retention (plus
// queue.DataBucketSlack, so that it only catches files no run accounts
// for) and its replicas to the server's, and deletes the files of every
// pipeline run that ended more than the retention ago, and the backups
// no client took (backup.go), until ctx is done. Should the bucket fail to be made at start, it is tried again in the
// background (ensureBucket).
func (s *Server) startDataRetention(ctx context.Context, wg *sync.WaitGroup) {
	log := s.cfg.log.With().Str("role", "retention").Logger()
	if err := s.pipes.data.EnsureBucket(ctx); err != nil && ctx.Err() == nil {
		wg.Go(func() { s.ensureBucket(ctx, log, err) })
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(retentionEvery(s.retention()))
		defer t.Stop()
		for {
			if _, err := s.sweepData(ctx); err != nil && ctx.Err() == nil {
				log.Error().Err(err).Msg("delete expired stage data")
			}
			if err := s.sweepBackups(ctx); err != nil && ctx.Err() == nil { // backup.go
				log.Error().Err(err).Msg("delete expired backups")
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// bucketRetryMax bounds the pause between two tries of a stage data
// bucket that could not be made, and so how often a failure that lasts is
// logged.
const bucketRetryMax = time.Minute

// ensureBucket tries again, with backoff, to make the stage data bucket
// with the server's retention and replicas, after it failed with err at
// start, until it is made or ctx is done. Left to itself, a failure that
// passes (JetStream not answering yet, a cluster electing its leader)
// lasted until the server's next start: a worker makes a missing bucket,
// but with the default retention, as it is not told the server's. Every
// failure is tried again, not only those queue.WaitingFor names: what
// does not pass on its own (an operator's stream over the bucket's
// subjects, say) is logged until someone mends it.
func (s *Server) ensureBucket(ctx context.Context, log zerolog.Logger, err error) {
	atStart := err
	try := func(ctx context.Context) error {
		if err := atStart; err != nil { // said and waited on as the others are
			atStart = nil
			return err
		}
		return s.pipes.data.EnsureBucket(ctx)
	}
	err = queue.Wait{
		For: func(err error) string {
			if what := queue.WaitingFor(err); what != "" {
				return what
			}
			return "JetStream to accept it"
		},
		Warn: func(what string, err error) {
			log.Error().Err(err).Msg("create the stage data bucket; trying again, waiting for " + what)
		},
		Max: bucketRetryMax,
	}.Retry(ctx, try)
	if err == nil {
		log.Info().Stringer("retention", s.retention()).Msg("created the stage data bucket, after failing at start")
	}
}

// sweepData deletes the stage files of the pipeline runs whose retention
// ended and records that it did, a batch at a time; it returns how many
// runs it cleared. The objects go first: a crash before the record only
// makes the next sweep delete nothing again.
func (s *Server) sweepData(ctx context.Context) (int, error) {
	const batch = 200
	total := 0
	for {
		n, err := s.sweepBatch(ctx, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// sweepBatch deletes the stage files of at most batch runs whose
// retention ended. A retry waits meanwhile (retry.go): one that came
// between the choice of the runs and their deletion would find the files
// of the stages it keeps gone.
func (s *Server) sweepBatch(ctx context.Context, batch int) (int, error) {
	s.pipes.sweep.Lock()
	defer s.pipes.sweep.Unlock()
	now := s.cfg.now()
	ids, err := s.db.PipelineRunsWithData(ctx, now.Add(-s.retention()), batch)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	n, err := s.pipes.data.DeletePipelineRuns(ctx, ids)
	if err != nil {
		return 0, err
	}
	if err := s.db.MarkPipelineRunDataDeleted(ctx, ids, now); err != nil {
		return 0, err
	}
	s.cfg.log.Info().Int("pipelineRuns", len(ids)).Int("objects", n).Msg("deleted stage data past its retention")
	return len(ids), nil
}
