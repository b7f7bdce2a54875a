package docker

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry/jobs"
)

func TestStartErrorSaysWhichCommand(t *testing.T) {
	c := &ctr{def: jobs.ContainerDefinition{Name: "main", Image: "gantry/samples:latest"}}
	const shim = "Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "
	tests := []struct {
		daemon, want string
	}{
		{shim + `exec: "python3": executable file not found in $PATH: unknown`,
			`command "python3" not found in image gantry/samples:latest: no such program in the image's $PATH; check the container's command and entryPoint, and that the image has the program`},
		{shim + `exec: "/bin/bash": stat /bin/bash: no such file or directory: unknown`,
			`command "/bin/bash" not found in image gantry/samples:latest: no such file; check the container's command and entryPoint, and that the image has the program`},
		{shim + `exec: "/etc/passwd": permission denied: unknown`,
			`command "/etc/passwd" in image gantry/samples:latest cannot be run: permission denied (not an executable file); check the container's command and entryPoint, and that the image has the program`},
		{shim + `exec: "/run.sh": no such file or directory: unknown`,
			`command "/run.sh" in image gantry/samples:latest cannot be run: no such file or directory (a script whose #! interpreter the image lacks?); check the container's command and entryPoint, and that the image has the program`},
		{"Error response from daemon: crun: executable file `python3` not found in $PATH: No such file or directory: OCI runtime attempted to invoke a command that was not found",
			`command "python3" not found in image gantry/samples:latest: no such program in the image's $PATH; check the container's command and entryPoint, and that the image has the program`},
		{"Error response from daemon: driver failed programming external connectivity on endpoint gantry-01m9-1-web (be94): Bind for 0.0.0.0:8080 failed: port is already allocated",
			"host port 8080 (portMappings hostPort) is already in use on the worker's host, by another run or program; leave hostPort out (or 0) to let Docker pick a free one, shown by gantry describe"},
		{"Error response from daemon: failed to set up container networking: driver failed programming external connectivity on endpoint x: failed to bind host port for 0.0.0.0:8080:172.17.0.2:80/tcp: address already in use: listen tcp4 0.0.0.0:8080: bind: address already in use",
			"host port 8080 (portMappings hostPort) is already in use on the worker's host, by another run or program; leave hostPort out (or 0) to let Docker pick a free one, shown by gantry describe"},
		// Anything else is the daemon's error as it is.
		{"Error response from daemon: driver failed programming external connectivity", "Error response from daemon: driver failed programming external connectivity"},
		{shim + `exec: "x": something new: unknown`, shim + `exec: "x": something new: unknown`},
	}
	for _, tt := range tests {
		daemon := errors.New(tt.daemon)
		err := startError(c, daemon)
		if err.Error() != tt.want {
			t.Errorf("startError(%q)\n got %q\nwant %q", tt.daemon, err, tt.want)
		}
		if !errors.Is(err, daemon) {
			t.Errorf("startError(%q) = %v: does not wrap the daemon's error", tt.daemon, err)
		}
	}
	if startError(c, nil) != nil {
		t.Error("startError(nil) is not nil")
	}
}

// FuzzStartError: whatever the daemon says, startError keeps its error
// underneath, and names the program when it rewrites the message.
func FuzzStartError(f *testing.F) {
	f.Add(`OCI runtime create failed: exec: "python3": executable file not found in $PATH: unknown`)
	f.Add(`exec: "/bin/bash": stat /bin/bash: no such file or directory`)
	f.Add("crun: executable file `x` not found in $PATH")
	f.Add(`exec: "": permission denied`)
	f.Add("Bind for 0.0.0.0:8080 failed: port is already allocated")
	c := &ctr{def: jobs.ContainerDefinition{Name: "main", Image: "img"}}
	f.Fuzz(func(t *testing.T, msg string) {
		daemon := errors.New(msg)
		err := startError(c, daemon)
		if !errors.Is(err, daemon) {
			t.Fatalf("startError(%q) = %v: does not wrap the daemon's error", msg, err)
		}
		if err != daemon && !strings.HasPrefix(err.Error(), "command ") && !strings.HasPrefix(err.Error(), "host port ") {
			t.Fatalf("startError(%q) = %q: rewritten without naming the command or the port", msg, err)
		}
	})
}
