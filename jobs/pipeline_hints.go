package jobs

import (
	"fmt"
	"reflect"
	"strings"
)

// A pipeline file is often a Kubernetes CronJob or Job, or a Nomad
// periodic or batch job, rewritten. Their fields that a pipeline has under
// another name or shape are refused as any unknown field, but the error
// says what to write instead (stages[0](load).backoffLimit: unknown
// field; use retryStrategy: {attempts: 4} ...), where the nearest field's
// name would send the user nowhere useful.

// historyHint answers a CronJob's history limits: gantry deletes by age.
const historyHint = "gantry keeps every run, its logs and its attempts; the server's --run-retention " +
	"(gantry up/server --run-retention 720h) deletes the runs that ended longer ago than that, by age, not by count"

// scheduleHint answers a schedule's field given at the top of the file,
// where a CronJob's spec has it beside its schedule.
func scheduleHint(field string) func(any) string {
	return func(any) string {
		return fmt.Sprintf("it goes under schedule: schedule: {cron: \"0 2 * * *\", %s: ...}", field)
	}
}

// pipelineFieldHints say, by the type of the object a key is in, what to
// write instead of a field of Kubernetes or Nomad; v is the key's value.
// Keys are matched without regard to case.
var pipelineFieldHints = map[reflect.Type]map[string]func(v any) string{
	reflect.TypeFor[Pipeline](): {
		"concurrencyPolicy":          scheduleHint("concurrencyPolicy"),
		"suspend":                    scheduleHint("suspend"),
		"startingDeadlineSeconds":    scheduleHint("startingDeadlineSeconds"),
		"timeZone":                   scheduleHint("timezone"),
		"successfulJobsHistoryLimit": hint(historyHint),
		"failedJobsHistoryLimit":     hint(historyHint),
		"periodic": hint(`use schedule: {cron: "0 2 * * *", timezone: Europe/Paris, concurrencyPolicy: Forbid} ` +
			`(Nomad's cron, time_zone, and prohibit_overlap: true as Forbid)`),
		"parameterized": hint(`declare the parameters with their defaults, parameters: {region: eu}, ` +
			`and start a run with gantry pipeline run NAME --param region=us (Nomad's dispatch -meta)`),
		"meta": hint(`use parameters: {K: default}, set per run with gantry pipeline run NAME --param K=V`),
		"ttlSecondsAfterFinished": hint(`the server's --run-retention deletes every run that ended longer ago ` +
			`(one setting for all runs, at least 1h)`),
		"activeDeadlineSeconds": hint(`use timeoutSeconds: it bounds each run of the pipeline, from its start`),
	},
	reflect.TypeFor[Schedule](): {
		"prohibit_overlap":           hint(`use concurrencyPolicy: Forbid (a fire while a run is active is skipped)`),
		"prohibitOverlap":            hint(`use concurrencyPolicy: Forbid (a fire while a run is active is skipped)`),
		"successfulJobsHistoryLimit": hint(historyHint),
		"failedJobsHistoryLimit":     hint(historyHint),
		"schedule":                   hint(`use cron: "0 2 * * *"`),
		"crons":                      hint(`one cron per schedule: use cron: "0 2 * * *" (a pipeline has one schedule)`),
		"enabled":                    hint(`use suspend: true to stop the fires, suspend: false (the default) to let them go`),
	},
	reflect.TypeFor[Stage](): {
		"backoffLimit": func(v any) string {
			if n, ok := v.(float64); ok && n >= 0 && n == float64(int(n)) {
				return fmt.Sprintf("use retryStrategy: {attempts: %d}: attempts counts every try, "+
					"Kubernetes' backoffLimit only the retries", int(n)+1)
			}
			return "use retryStrategy: {attempts: N}: attempts counts every try (backoffLimit + 1)"
		},
		"completions": func(v any) string {
			n := "N"
			if f, ok := v.(float64); ok && f == float64(int(f)) {
				n = fmt.Sprint(int(f))
			}
			return fmt.Sprintf("use arraySize: %s: one run per index, each seeing GANTRY_ARRAY_INDEX "+
				"(an Indexed Job's JOB_COMPLETION_INDEX)", n)
		},
		"completionMode": hint(`an array stage is always indexed: arraySize: N, each run seeing GANTRY_ARRAY_INDEX`),
		"parallelism": hint(`an array stage's runs all start as workers have room: to run at most N at once, ` +
			`create a pool (gantry pool set NAME --slots N) and give the stage pool: NAME`),
		"count": hint(`use arraySize: N (each run sees GANTRY_ARRAY_INDEX)`),
		// AWS Batch's SubmitJob field, which a run's submission takes.
		"arrayProperties": func(v any) string {
			n := "N"
			if m, ok := v.(map[string]any); ok {
				if f, ok := m["size"].(float64); ok && f == float64(int(f)) {
					n = fmt.Sprint(int(f))
				}
			}
			return fmt.Sprintf("use arraySize: %s: a stage's array is its runs, each seeing GANTRY_ARRAY_INDEX "+
				"(the submit JSON's arrayProperties makes an array run outside pipelines)", n)
		},
		"activeDeadlineSeconds": hint(`a stage's timeoutSeconds bounds each attempt, from its container's start; ` +
			`timeoutSeconds at the top of the file bounds the whole pipeline run`),
		"ttlSecondsAfterFinished": hint(`the server's --run-retention deletes every run that ended longer ago ` +
			`(one setting for all runs, at least 1h)`),
		"podFailurePolicy": hint(`use retryStrategy.evaluateOnExit: [{onExitCode: "42", action: EXIT}] ` +
			`(FailJob as EXIT; the first rule that matches wins, no match retries)`),
		"restartPolicy": hint(`a failed task is run again as a new attempt, not restarted in place: ` +
			`use retryStrategy: {attempts: N}`),
		"restart": hint(`a failed task is run again as a new attempt, not restarted in place: ` +
			`use retryStrategy: {attempts: N, backoff: {initialSeconds: 15}}`),
		"reschedule": hint(`use retryStrategy: {attempts: N, backoff: {initialSeconds: 30, multiplier: 2, maxSeconds: 3600}}; ` +
			`an attempt lost with its worker is run again elsewhere without counting`),
		"nodeSelector": hint(`use constraints: [disk=ssd] (labels of gantry worker --label)`),
		"constraint":   hint(`use constraints: [disk=ssd, "zone!=eu-1"] (labels of gantry worker --label)`),
		"affinity": hint(`there are no soft preferences: constraints: [K=V] is a hard rule, ` +
			`only workers with the label take the runs`),
		"resources": hint(`CPU and memory are the task definition's: cpu (1024 units a CPU) and memory (MiB), ` +
			`or per stage overrides: {containerOverrides: [{name: main, cpu: 512, memory: 256}]}`),
		"image": hint(`a stage runs a task definition: taskDefinition: FAMILY[:REV], or one inline: ` +
			`taskDefinition: {family: x, containerDefinitions: [{name: main, image: ...}]}`),
		// Argo's and Airflow's DockerOperator's command, written beside image.
		"command": hint(`a stage's command is its task definition's: containerDefinitions: [{name: main, image: ..., command: [...]}] ` +
			`inline, or, over a registered one's, overrides: {containerOverrides: [{name: main, command: [...]}]}`),
		"args": hint(`a stage's command is its task definition's: containerDefinitions: [{name: main, image: ..., command: [...]}] ` +
			`inline, or, over a registered one's, overrides: {containerOverrides: [{name: main, command: [...]}]}`),
		"env": hint(`environment is the task definition's: containerDefinitions: [{name: main, environment: [{name: K, value: V}]}] ` +
			`inline, or overrides: {containerOverrides: [{name: main, environment: [{name: K, value: V}]}]}`),
		"environment": hint(`environment is the task definition's: containerDefinitions: [{name: main, environment: [{name: K, value: V}]}] ` +
			`inline, or overrides: {containerOverrides: [{name: main, environment: [{name: K, value: V}]}]}`),
	},
}

// fieldHint is the hint for key k, of value v, in an object of type t, or
// "" when it has none.
func fieldHint(t reflect.Type, k string, v any) string {
	for name, h := range pipelineFieldHints[t] {
		if strings.EqualFold(name, k) {
			return h(v)
		}
	}
	return ""
}
