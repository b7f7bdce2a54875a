package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStatusAndTimezoneDidYouMean: a misspelt status or time zone is
// refused, before connecting, with what it likely stands for.
func TestStatusAndTimezoneDidYouMean(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte("name: p\nschedule: {cron: '0 2 * * *', timezone: Europe/Pari}\nstages: [{name: a, taskDefinition: t}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nats := []string{"--nats", "nats://127.0.0.1:1"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ps", "--status", "FAILD"},
			`gantry: --status: status "FAILD": want one of QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELED; did you mean "FAILED"?`},
		{[]string{"events", "--status", "runing"},
			`invalid --status "runing": want one of QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELED, PENDING; did you mean "RUNNING"?`},
		{[]string{"webhook", "add", "ops", "--url", "https://example.com/h", "--on", "FAILED,CANCELLED"},
			`--on: "CANCELLED": not an end status: want SUCCEEDED, FAILED or CANCELED; did you mean "CANCELED"?`},
		{[]string{"schedule", "create", "--task", "t", "--cron", "0 2 * * *", "--timezone", "Europe/Pari"},
			`gantry: --timezone: "Europe/Pari": not an IANA time zone; did you mean "Europe/Paris"?`},
		{[]string{"pipeline", "validate", file},
			`schedule.timezone: "Europe/Pari": not an IANA time zone; did you mean "Europe/Paris"?`},
	} {
		_, stderr, code := gantryCmd(context.Background(), append(c.args, nats...)...)
		if !strings.Contains(stderr, c.want) || code == 0 || strings.Contains(stderr, "127.0.0.1:1") {
			t.Errorf("gantry %s: exit %d, stderr %q; want it to say %q before connecting", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}
