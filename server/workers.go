package server

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
)

// WorkersListRequest filters the worker list.
type WorkersListRequest struct {
	Cluster string `json:"cluster,omitempty"`
}

// WorkersListReply lists the live workers.
type WorkersListReply struct {
	Workers []jobs.WorkerInfo `json:"workers"`
}

// WorkerRequest names one worker.
type WorkerRequest struct {
	ID string `json:"id"`
}

func (s *Server) apiWorkersList(ctx context.Context, data []byte) (any, error) {
	var req WorkersListRequest
	if len(data) > 0 {
		if err := decode(data, &req); err != nil {
			return nil, err
		}
	}
	all, err := s.q.Workers(ctx)
	if err != nil {
		return nil, err
	}
	out := WorkersListReply{Workers: []jobs.WorkerInfo{}}
	for _, w := range all {
		if req.Cluster == "" || w.Cluster == req.Cluster {
			out.Workers = append(out.Workers, w)
		}
	}
	return out, nil
}

// workerID decodes a WorkerRequest and checks its id.
func workerID(data []byte) (string, error) {
	var req WorkerRequest
	if err := decode(data, &req); err != nil {
		return "", err
	}
	if req.ID == "" {
		return "", jobs.Invalid("id: required")
	}
	if !workerIDRe.MatchString(req.ID) || strings.HasPrefix(req.ID, ".") || strings.HasSuffix(req.ID, ".") || strings.Contains(req.ID, "..") {
		// A worker's id is a key of the fleet's buckets: none is like this.
		return "", jobs.Invalid(fmt.Sprintf("id %q: not a worker id (letters, digits and -_./= only)", req.ID))
	}
	return req.ID, nil
}

func (s *Server) worker(ctx context.Context, data []byte) (*jobs.WorkerInfo, error) {
	id, err := workerID(data)
	if err != nil {
		return nil, err
	}
	w, err := s.q.Worker(ctx, id)
	if errors.Is(err, queue.ErrNoWorker) {
		return nil, jobs.NotFound(fmt.Sprintf("worker %s: not live (no heartbeat in the last %s); `gantry workers ls` lists those that are",
			id, queue.PresenceTTL))
	}
	return w, err
}

func (s *Server) apiWorkersGet(ctx context.Context, data []byte) (any, error) {
	return s.worker(ctx, data)
}

// apiWorkersDrain tells a worker to take nothing new; it finishes what it
// runs. The setting outlives the worker's restarts until it is activated,
// and may be given for a worker that is not live (a host down for
// maintenance): the worker reads it when it starts.
func (s *Server) apiWorkersDrain(ctx context.Context, data []byte) (any, error) {
	return s.setDrain(ctx, data, true)
}

// apiWorkersActivate undoes a drain.
func (s *Server) apiWorkersActivate(ctx context.Context, data []byte) (any, error) {
	return s.setDrain(ctx, data, false)
}

// setDrain records the drain setting of a worker, live or not (it is a
// key of its own bucket, which the worker watches from its start), and
// replies the worker as it is now: DRAINING still, for one that stops
// (Stopping), which takes no run again before it restarts; for one that
// is not live (NotLive), the state it starts in.
func (s *Server) setDrain(ctx context.Context, data []byte, drain bool) (any, error) {
	id, err := workerID(data)
	if err != nil {
		return nil, err
	}
	w, err := s.q.Worker(ctx, id)
	if errors.Is(err, queue.ErrNoWorker) {
		w, err = &jobs.WorkerInfo{ID: id, NotLive: true}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.q.SetDrain(ctx, id, drain); err != nil {
		return nil, err
	}
	w.State = jobs.WorkerActive
	if drain || w.Stopping {
		w.State = jobs.WorkerDraining
	}
	s.cfg.log.Info().Str("worker", id).Bool("draining", drain).Bool("stopping", w.Stopping).Bool("live", !w.NotLive).
		Msg("worker drain setting recorded")
	return w, nil
}

// workerIDRe is what a key of the fleet's buckets may be (nats.go's KV).
var workerIDRe = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)
