package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpHidesSecretDefaults: --help shows no password or token that
// flags take from GANTRY_* variables (a help pasted into an issue would
// carry it), while the flags still take them; the URL's default stays.
func TestHelpHidesSecretDefaults(t *testing.T) {
	const secret = "s3cret-from-env"
	for _, v := range []string{"GANTRY_NATS_PASSWORD", "GANTRY_NATS_TOKEN", "GANTRY_SUBMIT_PASSWORD", "GANTRY_HTTP_TOKEN"} {
		t.Setenv(v, secret)
	}
	t.Setenv("GANTRY_NATS_URL", "nats://127.0.0.1:4999")
	for _, args := range [][]string{{"--help"}, {"up", "--help"}, {"server", "--help"}, {"ps", "--help"}, {"pipeline", "validate", "--help"}} {
		var out, errb bytes.Buffer
		if code := runWith(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("gantry %v: exit %d: %s", args, code, errb.String())
		}
		help := out.String()
		if strings.Contains(help, secret) {
			t.Errorf("gantry %s shows the secret:\n%s", strings.Join(args, " "), help)
		}
		if !strings.Contains(help, `(default "nats://127.0.0.1:4999")`) {
			t.Errorf("gantry %s lost --nats's default:\n%s", strings.Join(args, " "), help)
		}
	}
	root := newRoot()
	if err := root.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"password", "token"} {
		if got := root.PersistentFlags().Lookup(name).Value.String(); got != secret {
			t.Errorf("--%s is %q, want the environment's", name, got)
		}
	}
	up, _, err := root.Find([]string{"up"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"submit-password", "http-token"} {
		if got := up.Flags().Lookup(name).Value.String(); got != secret {
			t.Errorf("up --%s is %q, want the environment's", name, got)
		}
	}
}
