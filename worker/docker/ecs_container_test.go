package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

// A Secrets Manager ARN with a json-key gives the variable that key's
// value, as ECS does, not the whole JSON document.
func TestSecretJSONKey(t *testing.T) {
	dir := t.TempDir()
	const doc = `{"username": "etl", "password": "hunter2", "port": 5432, "tls": {"mode": "verify"}}` + "\n"
	os.WriteFile(filepath.Join(dir, "db-creds"), []byte(doc), 0o600)
	os.WriteFile(filepath.Join(dir, "plain"), []byte("hunter2\n"), 0o600)
	r := New(nil, WithSecretsDir(dir))
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
	tests := []struct {
		valueFrom, want string
	}{
		{arn + "db-creds:password::", "hunter2"},
		{arn + "db-creds:username:AWSCURRENT:", "etl"},
		{arn + "db-creds:port::", "5432"},
		{arn + "db-creds:tls::", `{"mode":"verify"}`},
		{arn + "db-creds", strings.TrimSuffix(doc, "\n")},
	}
	for _, tt := range tests {
		v, err := r.secret(jobs.Secret{Name: "V", ValueFrom: tt.valueFrom})
		if err != nil || v != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.valueFrom, v, err, tt.want)
		}
	}
	for _, tt := range []struct{ valueFrom, want string }{
		{arn + "db-creds:token::", arn + `db-creds:token::: the JSON object in db-creds has no key "token"`},
		{arn + "plain:password::", arn + `plain:password::: plain is not a JSON object, so it has no key "password"`},
	} {
		_, err := r.secret(jobs.Secret{Name: "V", ValueFrom: tt.valueFrom})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: err = %v, want %s", tt.valueFrom, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
}
