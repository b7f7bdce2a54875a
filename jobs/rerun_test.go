package jobs

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// rerunTask has a non-essential sidecar first: a nameless override of a
// rerun goes to main, the first essential container.
var rerunTask = TaskDefinition{Family: "etl", Revision: 3, ContainerDefinitions: []ContainerDefinition{
	{Name: "sidecar", Image: "busybox", Essential: ptr(false)},
	{Name: "main", Image: "busybox", Environment: []KeyValue{{Name: "A", Value: "task"}}},
}}

// submitted is a run as a submission with every field made it.
func submitted() *Run {
	return &Run{RunID: "01old", Status: StatusFailed, TaskDefinition: "etl:3", Cluster: "etl", TargetWorker: "w1",
		Priority: PriorityLow, IdempotencyKey: "old-key", Tags: map[string]string{"team": "data", "from-td": "yes"},
		DependsOn: []DependencyState{{RunID: "01dep", Condition: CondComplete, Status: StatusFailed}},
		Pool:      "warehouse",
		Spec: RunSpec{Task: rerunTask,
			Overrides: &Overrides{ContainerOverrides: []ContainerOverride{{Name: "main", Command: []string{"etl", "--day=1"},
				Environment: []KeyValue{{Name: "A", Value: "run"}, {Name: "B", Value: "run"}}, CPU: ptr(512), Memory: ptr(256)}}},
			TimeoutSeconds: 60, ActiveDeadlineSeconds: 600,
			RetryStrategy: &RetryStrategy{Attempts: 3, EvaluateOnExit: []EvaluateOnExit{{OnExitCode: "2", Action: ActionExit}},
				Backoff: &Backoff{InitialSeconds: 5}}}}
}

func TestRerunSubmissionCopiesTheRun(t *testing.T) {
	r := submitted()
	got := RerunRequest{RunID: r.RunID}.Submission(r, &r.Spec.Task)
	want := &SubmitRequest{Cluster: "etl", Worker: "w1", Overrides: r.Spec.Overrides, TimeoutSeconds: 60,
		ActiveDeadlineSeconds: 600, Priority: PriorityLow, RetryStrategy: r.Spec.RetryStrategy,
		Tags:      TagsOf(map[string]string{"team": "data", "from-td": "yes"}),
		DependsOn: []RunDependency{{RunID: "01dep", Condition: CondComplete}}, Pool: "warehouse"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rerun submission\n got %+v\nwant %+v", got, want)
	}
	// Nothing shared: changing the rerun's changes nothing of the run's.
	got.Overrides.ContainerOverrides[0].Environment[0].Value = "changed"
	got.Overrides.ContainerOverrides[0].Command[0] = "changed"
	got.RetryStrategy.Attempts = 9
	if r.Spec.Overrides.ContainerOverrides[0].Environment[0].Value != "run" || r.Spec.Overrides.ContainerOverrides[0].Command[0] != "etl" ||
		r.Spec.RetryStrategy.Attempts != 3 {
		t.Errorf("the rerun's submission shares the run's: %+v %+v", r.Spec.Overrides, r.Spec.RetryStrategy)
	}
	if got.IdempotencyKey != "" || got.Stage != nil || got.TaskDefinition != nil {
		t.Errorf("key %q, stage %+v, taskDefinition %s: want none", got.IdempotencyKey, got.Stage, got.TaskDefinition)
	}
}

// TestRerunPoolLeftOutOrEmpty: a rerun request without pool keeps the
// run's; "pool": "" takes the rerun out of it (as a submission's "" is
// no pool, and an empty gantry rerun --pool), the way out of a pool deleted
// since.
func TestRerunPoolLeftOutOrEmpty(t *testing.T) {
	r := submitted()
	for body, want := range map[string]string{
		`{"runId":"01old"}`:                   "warehouse",
		`{"runId":"01old","pool":""}`:         "",
		`{"runId":"01old","pool":"gpu-pool"}`: "gpu-pool",
	} {
		var q RerunRequest
		if err := json.Unmarshal([]byte(body), &q); err != nil {
			t.Fatal(err)
		}
		if err := q.Validate(); err != nil {
			t.Errorf("%s: %v", body, err)
		}
		if got := q.Submission(r, &r.Spec.Task); got.Pool != want {
			t.Errorf("%s: pool %q, want %q", body, got.Pool, want)
		}
	}
}

func TestRerunSubmissionRequestWins(t *testing.T) {
	r := submitted()
	q := RerunRequest{RunID: r.RunID, Cluster: "gpu", Priority: PriorityHigh, TimeoutSeconds: 5, ActiveDeadlineSeconds: 50,
		Attempts: 5, Tags: TagList{{Key: "team", Value: "ml"}, {Key: "new", Value: "1"}}, PropagateTags: PropagateTaskDefinition,
		DependsOn: []RunDependency{{RunID: "01other", Condition: CondSuccess}}, Pool: ptr("gpu-pool"), IdempotencyKey: "k",
		Overrides: &Overrides{ContainerOverrides: []ContainerOverride{{Environment: []KeyValue{{Name: "B", Value: "rerun"}}, Memory: ptr(1024)}}}}
	got := q.Submission(r, &r.Spec.Task)
	if got.Cluster != "gpu" || got.Worker != "" {
		t.Errorf("cluster %q worker %q: want gpu and no worker (w1 is in cluster etl)", got.Cluster, got.Worker)
	}
	if got.Priority != PriorityHigh || got.TimeoutSeconds != 5 || got.ActiveDeadlineSeconds != 50 || got.Pool != "gpu-pool" ||
		got.IdempotencyKey != "k" || got.PropagateTags != PropagateTaskDefinition {
		t.Errorf("submission %+v: want the request's priority, timeouts, pool, key and propagateTags", got)
	}
	if rs := got.RetryStrategy; rs.Attempts != 5 || len(rs.EvaluateOnExit) != 1 || rs.Backoff == nil || rs.Backoff.InitialSeconds != 5 {
		t.Errorf("retry strategy %+v: want 5 attempts and the run's rules and backoff", rs)
	}
	if want := TagsOf(map[string]string{"team": "ml", "from-td": "yes", "new": "1"}); !reflect.DeepEqual(got.Tags, want) {
		t.Errorf("tags %v, want %v", got.Tags, want)
	}
	if !reflect.DeepEqual(got.DependsOn, q.DependsOn) {
		t.Errorf("dependsOn %v, want the request's %v", got.DependsOn, q.DependsOn)
	}
	// The request's override comes after the run's, named for main.
	td, err := r.Spec.Task.WithOverrides(got.Overrides)
	if err != nil {
		t.Fatal(err)
	}
	main := td.ContainerDefinitions[1]
	if !slices.Equal(main.Environment, []KeyValue{{Name: "A", Value: "run"}, {Name: "B", Value: "rerun"}}) ||
		main.Memory != 1024 || main.CPU != 512 || !slices.Equal(main.Command, []string{"etl", "--day=1"}) {
		t.Errorf("main with the rerun's overrides: %+v", main)
	}
	if sc := td.ContainerDefinitions[0]; len(sc.Environment) != 0 || sc.Memory != 0 {
		t.Errorf("the sidecar was changed: %+v", sc)
	}
	if q.Worker = "w9"; q.Submission(r, &r.Spec.Task).Worker != "w9" {
		t.Error("a worker given with a cluster is not kept")
	}
	if rs := (RerunRequest{Attempts: 2}).Submission(&Run{Spec: RunSpec{Task: rerunTask}}, &rerunTask).RetryStrategy; rs == nil || rs.Attempts != 2 {
		t.Errorf("attempts on a run without retry strategy: %+v", rs)
	}
}

// TestRerunSubmissionOfAStageRun: the variables tying a run to its
// pipeline run go, the scheduled time and the array index stay.
func TestRerunSubmissionOfAStageRun(t *testing.T) {
	r := submitted()
	r.Spec.Stage = &StageContext{PipelineRunID: "pr-1", Stage: "extract", ArrayIndex: ptr(2)}
	r.Spec.Overrides.ContainerOverrides = append(r.Spec.Overrides.ContainerOverrides, ContainerOverride{Environment: []KeyValue{
		{Name: "GANTRY_PIPELINE", Value: "etl"}, {Name: "GANTRY_PIPELINE_RUN_ID", Value: "pr-1"}, {Name: "GANTRY_STAGE", Value: "extract"},
		{Name: "GANTRY_ARRAY_INDEX", Value: "2"}, {Name: "AWS_BATCH_JOB_ARRAY_INDEX", Value: "2"}, {Name: "GANTRY_ARRAY_SIZE", Value: "3"},
		{Name: "GANTRY_SCHEDULED_TIME", Value: "2026-01-01T02:00:00Z"}, {Name: "GANTRY_TRIGGERED_BY", Value: "pr-0"}}})
	got := RerunRequest{RunID: r.RunID}.Submission(r, &r.Spec.Task)
	if got.Stage != nil {
		t.Errorf("stage %+v: a rerun is no stage's run", got.Stage)
	}
	cos := got.Overrides.ContainerOverrides
	if len(cos) != 2 || cos[1].Name != "" {
		t.Fatalf("overrides %+v", cos)
	}
	var names []string
	for _, kv := range cos[1].Environment {
		names = append(names, kv.Name)
	}
	if want := "GANTRY_ARRAY_INDEX AWS_BATCH_JOB_ARRAY_INDEX GANTRY_ARRAY_SIZE GANTRY_SCHEDULED_TIME"; strings.Join(names, " ") != want {
		t.Errorf("the stage's variables in the rerun: %v, want %s", names, want)
	}
	if len(r.Spec.Overrides.ContainerOverrides[1].Environment) != 8 {
		t.Errorf("the run's own overrides lost variables: %+v", r.Spec.Overrides.ContainerOverrides[1])
	}
	// A stage's run with only the pipeline's variables has no override left.
	r.Spec.Overrides = &Overrides{ContainerOverrides: []ContainerOverride{{Environment: []KeyValue{{Name: "GANTRY_STAGE", Value: "x"}}}}}
	if o := (RerunRequest{}).Submission(r, &r.Spec.Task).Overrides; o != nil {
		t.Errorf("overrides %+v, want none", o)
	}
	// A plain run's GANTRY_STAGE is its submitter's: kept.
	r.Spec.Stage = nil
	if o := (RerunRequest{}).Submission(r, &r.Spec.Task).Overrides; o == nil || len(o.ContainerOverrides[0].Environment) != 1 {
		t.Errorf("a plain run's own GANTRY_STAGE was dropped: %+v", o)
	}
}

func TestRerunRequestValidate(t *testing.T) {
	q := RerunRequest{Attempts: 11, Priority: "urgent", Cluster: "a b", TimeoutSeconds: -1,
		Overrides: &Overrides{ContainerOverrides: []ContainerOverride{{Name: "main"}, {Name: "main", Command: []string{"sh"}}}},
		Tags:      TagList{{Key: "gantry:x", Value: "1"}}, PropagateTags: "SERVICE", Pool: ptr("bad pool"),
		DependsOn: []RunDependency{{RunID: "x", Condition: "sometimes"}}}
	err := q.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"runId: required", "attempts: 11: must be between 1 and 10",
		"overrides.containerOverrides[1].command: a rerun runs the command its run ran", "priority", "cluster",
		"timeoutSeconds", "tags[0].key", "propagateTags", "pool", "dependsOn[0]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := (RerunRequest{RunID: "01x", Attempts: 3, Priority: PriorityHigh}).Validate(); err != nil {
		t.Errorf("a good request: %v", err)
	}
}

// TestSubmitFieldsHaveARerunDecision fails when a field is added to
// submissions: decide what gantry rerun does with it (RerunRequest and
// Submission, rerun.go), then add it here.
func TestSubmitFieldsHaveARerunDecision(t *testing.T) {
	decided := []string{
		"taskDefinition", "cluster", "worker", "overrides", "timeoutSeconds", "priority", "retryStrategy",
		"tags", "propagateTags", "dependsOn", "pool", "activeDeadlineSeconds",
		"constraints",     // kept, the request's replacing them key by key
		"idempotencyKey",  // the rerun's own, never the run's
		"stage",           // dropped: a rerun is a plain run
		"arrayProperties", // an array run's rerun is an array of its size; a child's a plain run, its index kept
	}
	typ := reflect.TypeFor[SubmitRequest]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if !slices.Contains(decided, name) {
			t.Errorf("SubmitRequest.%s (%s): what does a rerun do with it? (jobs/rerun.go)", typ.Field(i).Name, name)
		}
	}
}

// FuzzRerunRequest: a request that validates never carries a command,
// makes a submission that validates, and leaves the run as it was.
func FuzzRerunRequest(f *testing.F) {
	f.Add([]byte(`{"runId":"01x"}`))
	f.Add([]byte(`{"runId":"01x","latest":true,"cluster":"gpu","priority":"high","attempts":3,"tags":{"a":"b"}}`))
	f.Add([]byte(`{"runId":"01x","overrides":{"containerOverrides":[{"environment":[{"name":"A","value":"1"}],"memory":64}]}}`))
	f.Add([]byte(`{"runId":"01x","overrides":{"containerOverrides":[{"name":"main","command":["env"]}]}}`))
	f.Add([]byte(`{"runId":"","attempts":11,"priority":"urgent","pool":"bad pool","tags":[{"key":"gantry:x"}]}`))
	f.Add([]byte(`{"runId":"01x","dependsOn":[{"runId":"01y","condition":"failure"}],"timeoutSeconds":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var q RerunRequest
		if json.Unmarshal(data, &q) != nil || q.Validate() != nil {
			return
		}
		if q.Overrides != nil {
			for _, co := range q.Overrides.ContainerOverrides {
				if co.Command != nil {
					t.Fatalf("accepted a command: %+v", co)
				}
			}
		}
		r := submitted()
		before, _ := json.Marshal(r)
		sub := q.Submission(r, &r.Spec.Task)
		// Only the count of the run's tags and the request's together
		// can be too many.
		if err := sub.Validate(); err != nil && !strings.HasPrefix(err.Error(), "tags: ") {
			t.Fatalf("a valid request made a submission that is not: %v\n%+v", err, sub)
		}
		if after, _ := json.Marshal(r); string(after) != string(before) {
			t.Fatalf("the submission changed the run:\n%s\n%s", before, after)
		}
	})
}
