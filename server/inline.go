package server

import (
	"sync"

	"github.com/gantry-dev/gantry/jobs"
)

// Services that submit through the API often send the same inline task
// definition again and again, varying only the overrides, which travel
// outside it. Parsing it (strictly, field by field, with ECS's rules) was
// the dearest step of a submission; the parsed definitions of the last
// few hundred distinct documents are kept. A definition is never changed
// in place (WithOverrides copies), so the copies handed out may share it.
type inlineCache struct {
	mu sync.Mutex
	m  map[string]*jobs.TaskDefinition // by the document's bytes
}

// inlineCacheSize bounds the cache; when full it starts afresh.
const inlineCacheSize = 512

// taskRef is req.TaskRef with inline definitions cached.
func (s *Server) taskRef(req *jobs.SubmitRequest) (string, *jobs.TaskDefinition, error) {
	raw := req.TaskDefinition
	if req.Stage != nil {
		// A stage's run, from a stored pipeline (fromOutside refuses a
		// stage's context from anyone else): read as stored.
		return req.StoredTaskRef()
	}
	if len(raw) == 0 || raw[0] != '{' {
		return req.TaskRef()
	}
	c := &s.inline
	c.mu.Lock()
	td := c.m[string(raw)]
	c.mu.Unlock()
	if td != nil {
		return "", td, nil
	}
	ref, td, err := req.TaskRef()
	if err != nil || td == nil {
		return ref, td, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= inlineCacheSize {
		c.m = make(map[string]*jobs.TaskDefinition, inlineCacheSize)
	}
	c.m[string(raw)] = td
	c.mu.Unlock()
	return "", td, nil
}
