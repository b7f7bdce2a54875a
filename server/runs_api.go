package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/gantry-dev/gantry/storage"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// maxListScan bounds the runs one runs.list request reads to fill a page
// when filters the store does not index (family, cluster, worker) skip
// most of them; the reply's next cursor lets the client go on.
const maxListScan = 10000

// listRuns answers runs.list: statuses and tags are filtered by the store, the
// other filters here, page by page, newest first. The creation-time
// bounds become run id bounds, since run ids are ULIDs of that time.
func (s *Server) listRuns(ctx context.Context, req ListRequest) (*ListReply, error) {
	limit := req.Limit
	switch {
	case limit <= 0:
		limit = 100
	case limit > 1000:
		limit = 1000 // at most a page of 1000; next goes on
	}
	statuses := make([]jobs.Status, 0, len(req.Statuses))
	for _, st := range req.Statuses {
		parsed, err := jobs.ParseStatus(string(st)) // "queued" is QUEUED
		if err != nil {
			return nil, jobs.Invalid("statuses: " + err.Error())
		}
		statuses = append(statuses, parsed)
	}
	if len(statuses) == 0 && !req.All {
		statuses = []jobs.Status{jobs.StatusQueued, jobs.StatusStarting, jobs.StatusRunning}
	}
	family := req.TaskDefinition
	if family != "" {
		if _, _, err := jobs.ParseRef(family); err != nil {
			return nil, jobs.Invalid("taskDefinition: " + err.Error())
		}
	}
	if err := checkTagFilter(req.Tags, req.TagKeys); err != nil {
		return nil, err
	}
	f := storage.RunFilter{Statuses: statuses, Tags: req.Tags, TagKeys: req.TagKeys,
		ArrayJobID: req.ArrayJobID, HideArrayChildren: req.ArrayJobID == ""}
	before := req.Before
	if req.ArrayJobID != "" && before != "" {
		// An array's children come by index: the cursor is the last
		// child of the previous page, the next page those after it.
		i, ok := jobs.ArrayChildIndex(req.ArrayJobID, before)
		if !ok {
			return nil, jobs.Invalid(fmt.Sprintf("before: %q is not a child of array run %s: with arrayJobId, give the next of "+
				"the previous page, a child's id (%s, %s, ...)", before, req.ArrayJobID,
				jobs.ArrayChildID(req.ArrayJobID, 0), jobs.ArrayChildID(req.ArrayJobID, 1)))
		}
		f.FromIndex, before = i+1, ""
	}
	if req.CreatedBefore != nil {
		if b := timeID(*req.CreatedBefore); before == "" || b < before {
			before = b
		}
	}
	f.Before = before
	var after string
	if req.CreatedAfter != nil {
		after = timeID(*req.CreatedAfter)
	}
	match := func(r *jobs.Run) bool {
		switch {
		case family != "" && r.TaskDefinition != family && !strings.HasPrefix(r.TaskDefinition, family+":"):
			return false
		case req.Cluster != "" && r.Cluster != req.Cluster:
			return false
		case req.Worker != "" && r.Worker != req.Worker:
			return false
		}
		return true
	}
	reply := &ListReply{Runs: []jobs.Run{}}
	scanned := 0
	for {
		page := limit - len(reply.Runs)
		if page < 100 {
			page = 100
		}
		f.Limit = page
		runs, err := s.db.ListRuns(ctx, f)
		if err != nil {
			return nil, err
		}
		for i := range runs {
			r := &runs[i]
			scanned++
			if after != "" && r.RunID < after {
				return reply, nil // older than the bound: nothing further matches (an array's children are all as old)
			}
			f.Next(r)
			if !match(r) {
				if scanned >= maxListScan {
					reply.Next = r.RunID
					return reply, nil
				}
				continue
			}
			reply.Runs = append(reply.Runs, *r)
			if len(reply.Runs) == limit {
				if i < len(runs)-1 || len(runs) == page {
					reply.Next = r.RunID
				}
				return reply, nil
			}
		}
		if len(runs) < page {
			return reply, nil
		}
	}
}

// checkTagFilter collects the problems of runs.list's tag filters, each
// naming its field: tags["k"], tagKeys[i].
func checkTagFilter(tags map[string]string, keys []string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		path := fmt.Sprintf("tags[%q]", k)
		if err := jobs.CheckTagKey(path, k); err != nil {
			errs = append(errs, err)
		}
		if err := jobs.CheckTagValue(path, tags[k]); err != nil {
			errs = append(errs, err)
		}
	}
	for i, k := range keys {
		if err := jobs.CheckTagKey(fmt.Sprintf("tagKeys[%d]", i), k); err != nil {
			errs = append(errs, err)
		}
	}
	// A run has at most MaxTags tags: a filter on more keys matches none,
	// and each key is one more condition of the query (thousands came
	// through the HTTP API's ?tag=, as long as a URL may be).
	distinct := maps.Clone(tags)
	for _, k := range keys {
		if _, ok := distinct[k]; !ok {
			if distinct == nil {
				distinct = map[string]string{}
			}
			distinct[k] = ""
		}
	}
	if len(distinct) > jobs.MaxTags {
		errs = append(errs, fmt.Errorf("tags and tagKeys: %d keys: a run has at most %d tags, so no run could match", len(distinct), jobs.MaxTags))
	}
	if len(errs) > 0 {
		return jobs.Invalid(errors.Join(errs...).Error())
	}
	return nil
}

// timeID is the smallest run id of runs created at t: ids below it are of
// runs created before.
func timeID(t time.Time) string {
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(t))
	return strings.ToLower(id.String())
}

// LogsRequest asks where a run's logs are.
type LogsRequest struct {
	RunID string `json:"runId"`
	// Container limits the reply to one container.
	Container string `json:"container,omitempty"`
}

// LogsReply says where a run's logs are in JetStream: read them from the
// stream with a consumer filtered on Subject (or a container's), and
// follow new ones by subscribing to it.
type LogsReply struct {
	RunID   string `json:"runId"`
	Stream  string `json:"stream"`
	Subject string `json:"subject"`
	// Messages counts the log messages (batches of lines) stored so far.
	Messages uint64 `json:"messages"`
	// LastSequence is the stream sequence of the run's latest log message, 0
	// when there is none: a reader that got this far has every line written
	// so far.
	LastSequence uint64         `json:"lastSequence"`
	Containers   []LogsPosition `json:"containers"`
	// Ended is true once the run has ended: no more lines will come.
	Ended bool `json:"ended"`
}

// LogsPosition is where one container's logs are.
type LogsPosition struct {
	Container    string `json:"container"`
	Subject      string `json:"subject"`
	Messages     uint64 `json:"messages"`
	LastSequence uint64 `json:"lastSequence"`
}

func (s *Server) apiLogs(ctx context.Context, data []byte) (any, error) {
	var req LogsRequest
	if err := decode(data, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, jobs.Invalid("runId: required")
	}
	if strings.ContainsAny(req.Container, ".*> \t") {
		return nil, jobs.Invalid(fmt.Sprintf("container %q: not a container name", req.Container))
	}
	r, err := s.db.GetRun(ctx, req.RunID)
	if err != nil {
		return nil, s.explainPruned(err, req.RunID) // history.go
	}
	subject := queue.LogSubject(r.RunID, req.Container)
	reply := LogsReply{RunID: r.RunID, Stream: queue.StreamLogs, Subject: subject,
		Containers: []LogsPosition{}, Ended: r.Status.Terminal()}
	stream, err := s.q.JetStream().Stream(ctx, queue.StreamLogs)
	if err != nil {
		return nil, &jobs.Error{Code: jobs.CodeUnavailable, Message: "log stream: " + err.Error()}
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, &jobs.Error{Code: jobs.CodeUnavailable, Message: "log stream: " + err.Error()}
	}
	prefix := "gantry.logs." + r.RunID + "."
	for subj, n := range info.State.Subjects {
		pos := LogsPosition{Container: strings.TrimPrefix(subj, prefix), Subject: subj, Messages: n}
		m, err := stream.GetLastMsgForSubject(ctx, subj)
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, &jobs.Error{Code: jobs.CodeUnavailable, Message: "log stream: " + err.Error()}
		}
		if m != nil {
			pos.LastSequence = m.Sequence
		}
		reply.Messages += n
		reply.LastSequence = max(reply.LastSequence, pos.LastSequence)
		reply.Containers = append(reply.Containers, pos)
	}
	sort.Slice(reply.Containers, func(i, j int) bool { return reply.Containers[i].Container < reply.Containers[j].Container })
	return reply, nil
}
