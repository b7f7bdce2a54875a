package jobs

import (
	"slices"
	"strings"
	"testing"
)

// TestPipelineFieldsOfKubernetesAndNomad: a CronJob's or a Nomad job's
// fields in a pipeline file are refused as unknown, each error saying
// what to write instead, with the value carried over where it can be.
func TestPipelineFieldsOfKubernetesAndNomad(t *testing.T) {
	_, err := ParsePipeline([]byte(`name: p
concurrencyPolicy: Forbid
successfulJobsHistoryLimit: 3
periodic: {cron: "0 2 * * *"}
schedule: {cron: "0 2 * * *", prohibit_overlap: true, failedJobsHistoryLimit: 1, time_zone: Europe/Paris}
stages:
  - name: extract
    taskDefinition: t
    backoffLimit: 3
    completions: 5
    parallelism: 2
    activeDeadlineSeconds: 600
    ttlSecondsAfterFinished: 100
    podFailurePolicy: {rules: []}
    nodeSelector: {disk: ssd}
    Affinity: {}
    restart: {attempts: 2}
    arrayProperties: {size: 3}
`))
	want := []string{
		`concurrencyPolicy: unknown field; it goes under schedule: schedule: {cron: "0 2 * * *", concurrencyPolicy: ...}`,
		`successfulJobsHistoryLimit: unknown field; gantry keeps every run, its logs and its attempts; the server's --run-retention`,
		`periodic: unknown field; use schedule: {cron: "0 2 * * *", timezone: Europe/Paris, concurrencyPolicy: Forbid}`,
		`schedule.prohibit_overlap: unknown field; use concurrencyPolicy: Forbid`,
		`schedule.failedJobsHistoryLimit: unknown field; gantry keeps every run`,
		`schedule.time_zone: unknown field; did you mean "timezone"?`,
		`stages[0](extract).backoffLimit: unknown field; use retryStrategy: {attempts: 4}: attempts counts every try`,
		`stages[0](extract).completions: unknown field; use arraySize: 5: one run per index, each seeing GANTRY_ARRAY_INDEX`,
		`stages[0](extract).parallelism: unknown field; an array stage's runs all start as workers have room: to run at most N at once, create a pool`,
		`stages[0](extract).activeDeadlineSeconds: unknown field; a stage's timeoutSeconds bounds each attempt`,
		`stages[0](extract).ttlSecondsAfterFinished: unknown field; the server's --run-retention`,
		`stages[0](extract).podFailurePolicy: unknown field; use retryStrategy.evaluateOnExit: [{onExitCode: "42", action: EXIT}]`,
		`stages[0](extract).nodeSelector: unknown field; use constraints: [disk=ssd]`,
		`stages[0](extract).Affinity: unknown field; there are no soft preferences`,
		`stages[0](extract).restart: unknown field; a failed task is run again as a new attempt`,
		`stages[0](extract).arrayProperties: unknown field; use arraySize: 3: a stage's array is its runs, ` +
			`each seeing GANTRY_ARRAY_INDEX (the submit JSON's arrayProperties makes an array run outside pipelines)`,
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ParsePipeline: %v\nwant %q", err, w)
		}
	}
	// A backoffLimit that is no count gets the rule, not a wrong number.
	_, err = ParsePipeline([]byte("name: p\nstages: [{name: a, taskDefinition: t, backoffLimit: x}]\n"))
	if w := "use retryStrategy: {attempts: N}: attempts counts every try (backoffLimit + 1)"; err == nil || !strings.Contains(err.Error(), w) {
		t.Errorf("ParsePipeline: %v\nwant %q", err, w)
	}
}

// TestStageContainerFieldsSayWhereTheyGo: an Argo step or an Airflow
// DockerOperator rewritten gives a stage image, command and env of its
// own; each is refused saying where it goes, command too, which had no
// hint where image had one.
func TestStageContainerFieldsSayWhereTheyGo(t *testing.T) {
	_, err := ParsePipeline([]byte("name: p\nstages: [{name: a, image: busybox, command: [echo, hi], env: [{name: K, value: V}]}]\n"))
	for _, want := range []string{
		`stages[0](a).image: unknown field; a stage runs a task definition: taskDefinition: FAMILY[:REV], or one inline`,
		`stages[0](a).command: unknown field; a stage's command is its task definition's: containerDefinitions: [{name: main, image: ..., command: [...]}] inline, ` +
			`or, over a registered one's, overrides: {containerOverrides: [{name: main, command: [...]}]}`,
		`stages[0](a).env: unknown field; environment is the task definition's`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePipeline: %v\nwant %q", err, want)
		}
	}
}

// TestScheduleAsAString: a CronJob's schedule: "0 2 * * *" is refused
// naming the field and the object to write, not with encoding/json's
// message about Go types.
func TestScheduleAsAString(t *testing.T) {
	_, err := ParsePipeline([]byte("name: p\nschedule: \"0 2 * * *\"\nstages: [{name: a, taskDefinition: t}]\n"))
	want := `schedule: "0 2 * * *": want an object, schedule: {cron: "0 2 * * *"}`
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go struct") {
		t.Fatalf("ParsePipeline: %v\nwant %q", err, want)
	}
}

// TestScheduleRefusesEventBridgeExpressions: an EventBridge rule's
// expression is refused saying what to write: its six fields end with a
// year where gantry's begin with seconds, so "0 2 * * ? *" would fire at
// minute 2 of every hour rather than at 02:00.
func TestScheduleRefusesEventBridgeExpressions(t *testing.T) {
	for expr, want := range map[string]string{
		"cron(0 2 * * ? *)":      `is EventBridge's cron() (minute hour day-of-month month day-of-week year): write "0 2 * * ?"`,
		"0 2 * * ? *":            `is an EventBridge cron (minute hour day-of-month month day-of-week year), which gantry would read with seconds first: write "0 2 * * ?"`,
		"0 2 ? * MON-FRI *":      `write "0 2 ? * MON-FRI"`,
		"0 2 * * ? 2027":         `write "0 2 * * ?" (gantry has no year field: 2027 cannot be kept)`,
		"cron(0 2 ? * 2-6 *)":    `write "0 2 ? * 2-6"; EventBridge numbers the days of week 1-7 from Sunday, cron 0-6: check "2-6", or write names (MON-FRI)`,
		"cron(0 2 * *)":          `is EventBridge's cron(): write its fields without cron(...)`,
		"rate(5 minutes)":        `is EventBridge's rate(): write "@every 5m"`,
		"rate(1 hour)":           `write "@every 1h"`,
		"rate(2 days)":           `write "@every 48h"`,
		"rate(5 fortnights)":     `is EventBridge's rate(): write @every and a duration`,
		"  cron( 0 2 * * ? * ) ": `write "0 2 * * ?"`,
	} {
		err := (&Schedule{Cron: expr}).Validate()
		if err == nil || !strings.Contains(err.Error(), "cron: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v\nwant %q", expr, err, want)
		}
	}
	// Gantry's own expressions, six fields with seconds first included,
	// are not taken for EventBridge's.
	for _, expr := range []string{"0 2 * * ?", "0 2 ? * MON-FRI", "*/10 * * * * *", "0 0 2 * * ?", "0 30 2 ? * *", "@every 5m", "@daily"} {
		if err := (&Schedule{Cron: expr}).Validate(); err != nil {
			t.Errorf("%q: %v", expr, err)
		}
	}
}

// FuzzEventBridgeCron: whatever the expression, the check does not panic,
// and an expression it refuses names what to write, which is accepted
// when it is one of gantry's own descriptors.
func FuzzEventBridgeCron(f *testing.F) {
	for _, s := range []string{"cron(0 2 * * ? *)", "rate(5 minutes)", "0 2 * * ? *", "0 0 2 * * ?", "rate(0 days)", "cron()", "RATE(1 Day)", "rate(-1 hour)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		msg := eventBridgeCron(expr)
		if msg == "" {
			return
		}
		if !strings.Contains(msg, "EventBridge") || !strings.Contains(msg, "write") {
			t.Fatalf("%q: %q", expr, msg)
		}
		if (&Schedule{Cron: expr}).Validate() == nil {
			t.Fatalf("%q refused by the check, accepted by Validate", expr)
		}
		if _, every, ok := strings.Cut(msg, `write "@every `); ok {
			d, _, _ := strings.Cut(every, `"`)
			if err := (&Schedule{Cron: "@every " + d}).Validate(); err != nil {
				t.Fatalf("%q: the suggested @every %s: %v", expr, d, err)
			}
		}
	})
}

// TestUnreadECSRunTaskFields: ECS RunTask's fields in a submission are
// named in its warnings with what to use instead; placementConstraints
// that gantry reads become the constraints to send.
func TestUnreadECSRunTaskFields(t *testing.T) {
	got := UnreadSubmitFields([]byte(`{"taskDefinition":"hello","startedBy":"ci-42","group":"family:hello","launchType":"EC2",
		"placementConstraints":[{"type":"memberOf","expression":"attribute:disk == ssd"},{"type":"memberOf","expression":"attribute:zone != eu-1"}],
		"placementStrategy":[{"type":"spread","field":"host"}],
		"overrides":{"cpu":"256","memory":"512","taskRoleArn":"arn:x","containerOverrides":[{"name":"main","memoryReservation":64}]}}`))
	want := []string{
		`group: not read; tag the run ("tags": {"group": "..."}) and find it with gantry ps --tag group=...`,
		`launchType: not read; it means something only on AWS: gantry runs the task on its workers' Docker`,
		`overrides.containerOverrides[0].memoryReservation: not read; use "memory" (MiB, the container's hard limit), or set memoryReservation in the task definition`,
		`overrides.cpu: not read; a task-level override is not read: give each container's, "containerOverrides": [{"name": "main", "cpu": 512}] (1024 units a CPU)`,
		`overrides.memory: not read; a task-level override is not read: give each container's, "containerOverrides": [{"name": "main", "memory": 512}] (MiB)`,
		`overrides.taskRoleArn: not read; it means something only on AWS: gantry runs the task on its workers' Docker`,
		`placementConstraints: not read; use "constraints": ["disk=ssd","zone!=eu-1"] (worker labels, gantry worker --label)`,
		`placementStrategy: not read; a worker of the cluster with room takes the run; there is no spread or binpack: "constraints" (["K=V"], worker labels) say which workers may`,
		`startedBy: not read; tag the run, "tags": {"startedBy": "ci-42"}, and find it with gantry ps --all --tag startedBy=ci-42 (ECS's list-tasks --started-by)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A placement gantry cannot read gets the general hint.
	got = UnreadSubmitFields([]byte(`{"placementConstraints":[{"type":"distinctInstance"}]}`))
	if w := `placementConstraints: not read; use "constraints" (["K=V", "K!=V"], worker labels); only memberOf with "attribute:K == V" or "attribute:K != V" maps to one`; !slices.Equal(got, []string{w}) {
		t.Errorf("got %q, want %q", got, w)
	}
}
