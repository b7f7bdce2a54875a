package embedded

import "github.com/nats-io/nats-server/v2/server"

// The two roles of an embedded NATS server with auth on.
//
//   - The operator (Options.User) may do everything: the server and workers
//     connect as it, and so do people who run `gantry` commands of every kind.
//   - The submitter (Options.SubmitUser) may only submit runs and follow
//     them: publish to gantry.submit, request gantry.api.runs.submit,
//     gantry.api.runs.status and gantry.api.pipelines.status, subscribe to
//     gantry.events.> and gantry.logs.>, and read those two streams by
//     direct get (which is how `gantry run` and `gantry logs -f` follow a
//     run). Any other subject is refused by NATS with a permissions
//     violation.
//
// runs.status, not runs.get: run ids are on gantry.events.runs.>, the
// server answers whoever asks (NATS does not say who), and runs.get's
// run carries its spec, the command and environment of its task, the
// operator's runs' too. runs.status shows the run without it, and
// pipelines.status a pipeline run without its spec and parameters (which
// is how `gantry logs pr-...` finds the stages' runs).
//
// Nor runs.rerun, for the same reason: it runs another user's spec again
// (an inline task definition, the submission's environment), to which
// an environment override of the rerun's own (a shell's BASH_ENV, say)
// can give a command of the submitter's, whose logs the submitter reads.
//
// The submitter receives its replies under _INBOX, and so reads every reply
// sent there; gantry's roles (queue.RoleInboxPrefix) and the operator's CLI
// (queue.CLIInboxPrefix) receive theirs under prefixes it may not
// subscribe to: add none of them here.
//
// The submitter may make no JetStream consumer: NATS does not check the
// subject a consumer delivers to against its creator's permissions, so a
// push consumer could copy stored events into any subject, gantry's own
// streams and buckets included. A direct get answers only the requester.

// SubmitPermissions are the NATS permissions of the submit-only role.
func SubmitPermissions() *server.Permissions {
	var pub []string
	pub = append(pub,
		"gantry.submit",
		"gantry.api.runs.submit",
		"gantry.api.runs.status",
		"gantry.api.pipelines.status",
		"$JS.API.INFO",
	)
	for _, stream := range []string{"GANTRY_EVENTS", "GANTRY_LOGS"} {
		pub = append(pub,
			"$JS.API.STREAM.INFO."+stream,
			"$JS.API.DIRECT.GET."+stream,
			"$JS.API.STREAM.MSG.GET."+stream, // the leader's last word (direct.go)
		)
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>", "gantry.events.>", "gantry.logs.>"}},
	}
}

// users returns the operator and the submitter as NATS users; the operator
// has no restriction.
func users(o Options) []*server.User {
	return []*server.User{
		{Username: o.User, Password: o.Password},
		{Username: o.SubmitUser, Password: o.SubmitPassword, Permissions: SubmitPermissions()},
	}
}
