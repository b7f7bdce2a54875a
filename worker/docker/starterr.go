package docker

import (
	"fmt"
	"regexp"
	"strings"
)

// plainStartError is a container start the daemon refused because the
// program to run is not in the image or cannot be run, or because a host
// port it publishes is taken, said in a user's words: the daemon's own
// (`failed to create shim task: OCI runtime create failed: runc create
// failed: ...`) buries the program's name. The daemon's error stays
// underneath, for errors.Is and errors.As.
type plainStartError struct {
	msg string
	err error
}

func (e *plainStartError) Error() string { return e.msg }
func (e *plainStartError) Unwrap() error { return e.err }

// execFailure finds the program and what went wrong in the OCI runtime's
// words: runc's `exec: "python3": executable file not found in $PATH` and
// `exec: "/bin/bash": stat /bin/bash: no such file or directory`, crun's
// "executable file `python3` not found in $PATH".
var execFailure = regexp.MustCompile("exec: \"([^\"]*)\": (.*)|executable file `([^`]*)` (not found in \\$PATH)")

// portTaken finds the host port of a start the daemon refused because
// something holds it: "Bind for 0.0.0.0:8080 failed: port is already
// allocated" (another container), "listen tcp4 0.0.0.0:8080: bind: address
// already in use" (another program).
var portTaken = regexp.MustCompile(`Bind for (\S+):(\d+) failed: port is already allocated|listen tcp\d? (\S+):(\d+): bind: address already in use`)

// startError is err, from starting container c, said plainly when it is a
// command the image cannot run or a host port that is taken; any other
// error is returned as it is.
func startError(c *ctr, err error) error {
	if err == nil {
		return nil
	}
	if m := portTaken.FindStringSubmatch(err.Error()); m != nil {
		port := m[2] + m[4]
		return &plainStartError{msg: fmt.Sprintf("host port %s (portMappings hostPort) is already in use on the worker's host, by another run or program; "+
			"leave hostPort out (or 0) to let Docker pick a free one, shown by gantry describe", port), err: err}
	}
	m := execFailure.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	prog, why := m[1], m[2]
	if m[3] != "" {
		prog, why = m[3], m[4]
	}
	var problem string
	switch {
	case strings.Contains(why, "not found in $PATH"):
		problem = fmt.Sprintf("command %q not found in image %s: no such program in the image's $PATH", prog, c.def.Image)
	case strings.HasPrefix(why, "stat ") && strings.Contains(why, "no such file or directory"):
		problem = fmt.Sprintf("command %q not found in image %s: no such file", prog, c.def.Image)
	case strings.Contains(why, "no such file or directory"):
		// The file is there: the interpreter its #! line names is not.
		problem = fmt.Sprintf("command %q in image %s cannot be run: no such file or directory (a script whose #! interpreter the image lacks?)", prog, c.def.Image)
	case strings.Contains(why, "permission denied"):
		problem = fmt.Sprintf("command %q in image %s cannot be run: permission denied (not an executable file)", prog, c.def.Image)
	case strings.Contains(why, "is a directory"):
		problem = fmt.Sprintf("command %q in image %s cannot be run: it is a directory", prog, c.def.Image)
	default:
		return err
	}
	return &plainStartError{msg: problem + "; check the container's command and entryPoint, and that the image has the program", err: err}
}
