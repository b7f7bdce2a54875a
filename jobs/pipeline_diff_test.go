package jobs

import (
	"slices"
	"strings"
	"testing"
)

func TestPipelineChanges(t *testing.T) {
	const base = `name: p
parameters: {day: "2026-01-01"}
schedule: {cron: "0 2 * * *"}
stages:
  - {name: extract, taskDefinition: extract:3, timeoutSeconds: 600}
  - {name: transform, taskDefinition: transform, dependsOn: [extract]}
  - {name: load, taskDefinition: load, dependsOn: [transform]}
`
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"same", base, nil},
		{"fields", strings.NewReplacer(`"0 2 * * *"`, `"0 3 * * *", suspend: true`, "extract:3", "extract:4",
			"timeoutSeconds: 600", "timeoutSeconds: 900", `day: "2026-01-01"`, `day: "2026-01-01", region: eu`).Replace(base),
			[]string{`parameters.region: added "eu"`, `schedule.cron: "0 2 * * *" -> "0 3 * * *"`, `schedule.suspend: added true`,
				`stages[0](extract).taskDefinition: "extract:3" -> "extract:4"`, `stages[0](extract).timeoutSeconds: 600 -> 900`}},
		{"stages added and removed", strings.Replace(base, "  - {name: load, taskDefinition: load, dependsOn: [transform]}\n",
			"  - {name: report, taskDefinition: report, dependsOn: [transform]}\n", 1),
			[]string{"stages[2](report): added", "stages[2](load): removed"}},
		{"order", "name: p\nparameters: {day: \"2026-01-01\"}\nschedule: {cron: \"0 2 * * *\"}\nstages:\n" +
			"  - {name: transform, taskDefinition: transform, dependsOn: [extract]}\n" +
			"  - {name: extract, taskDefinition: extract:3, timeoutSeconds: 600}\n" +
			"  - {name: load, taskDefinition: load, dependsOn: [transform]}\n",
			[]string{"stages: order changed"}},
		{"schedule removed, long value", "name: p\nparameters: {day: \"2026-01-01\"}\nstages:\n" +
			"  - {name: extract, taskDefinition: extract:3, timeoutSeconds: 600}\n" +
			"  - {name: transform, taskDefinition: transform, dependsOn: [extract, {stage: extract, condition: complete}, {stage: extract, condition: failure}]}\n" +
			"  - {name: load, taskDefinition: load, dependsOn: [transform]}\n",
			[]string{`schedule: removed (was {"cron":"0 2 * * *"})`, "stages[1](transform).dependsOn: changed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old, err := ParsePipeline([]byte(base))
			if err != nil {
				t.Fatal(err)
			}
			p, err := DecodePipeline([]byte(c.src))
			if err != nil {
				t.Fatal(err)
			}
			old.Version, p.Version = 3, 0 // never compared
			if got := PipelineChanges(old, p); !slices.Equal(got, c.want) {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
