// Command gantry runs batch and ETL jobs as containers: the all-in-one
// `gantry up`, the `server` and `worker` roles, and the CLI that submits
// runs and reads their status and logs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/queue"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes of gantry itself; an attached run exits with its task's code.
const (
	exitGantryError = 125 // as docker run
	exitTimeout     = 124 // as timeout(1): the run hit its timeoutSeconds
)

// exitError ends the process with a code after printing its message, if any.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// globals are the flags every command shares.
type globals struct {
	conn    queue.ConnOptions
	context string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// The first signal asks for a clean stop, which may wait for running
		// tasks (--grace) or the server; a second one takes the signal's
		// default action and ends the process at once (a worker started
		// again reconciles what it left). Commands that catch the second
		// one themselves (an attached run detaches) say so themselves.
		stop()
		time.Sleep(2 * time.Second)
		if longRunning.Load() {
			fmt.Fprintln(os.Stderr, "gantry: stopping; interrupt again to quit at once")
		}
	}()
	os.Exit(run(ctx, os.Args[1:]))
}

// longRunning is set by the commands that serve (up, server, worker): a
// second signal ends them at once, and they say so.
var longRunning atomic.Bool

func run(ctx context.Context, args []string) int {
	return runWith(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// runWith runs gantry with args on these streams and returns its exit
// code, having told its error on stderr.
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := singleDashLongFlag(root, args); err != nil {
		return exitCode(ctx, err, stderr)
	}
	return exitCode(ctx, root.ExecuteContext(ctx), stderr)
}

// singleDashLongFlag refuses a long flag written with one dash, as Go's
// flag package takes them: pflag reads -detach as -d -e tach, and the
// user was told `--env "tach": want K=V`; -follow as -f -o llow, -timeout
// as an unknown 't'.
func singleDashLongFlag(root *cobra.Command, args []string) error {
	c, _, err := root.Find(args)
	if err != nil {
		return nil // cobra says what is wrong
	}
	for _, a := range args {
		if a == "--" {
			return nil
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if c.Flags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil {
			return fmt.Errorf("%s: write --%s: one dash takes one-letter flags, a group of them in one (see '%s --help')", a, name, c.CommandPath())
		}
	}
	return nil
}

// exitInterrupted is what a command stopped by SIGINT or SIGTERM exits
// with: 128+SIGINT, as a shell reports a program Ctrl-C ended (gantry
// logs -f, gantry wait...). Commands for which an interrupt is a normal
// end (gantry events, gantry up) return nil and exit 0.
const exitInterrupted = 130

// exitCode tells err, if any, on stderr and gives the process's exit code.
func exitCode(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "gantry:", ee.err)
		}
		return ee.code
	}
	if cause := context.Cause(ctx); cause != nil && (errors.Is(err, context.Canceled) || errors.Is(err, cause)) {
		// Said only when it says more than that a signal came
		// ("stopped waiting (terminated); the runs go on").
		if msg := err.Error(); msg != cause.Error() && msg != context.Canceled.Error() {
			fmt.Fprintln(stderr, "gantry:", msg)
		}
		return exitInterrupted
	}
	fmt.Fprintln(stderr, "gantry:", err)
	return exitGantryError
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "gantry",
		Short: "Run batch and ETL jobs as containers, queued in NATS JetStream",
		Long: `gantry runs batch and ETL jobs as Docker containers.

Start everything on one machine with 'gantry up' (embedded NATS, server and a
worker), then submit runs:

  gantry run --image gantry/samples:latest -- sh -c 'echo hello'
  gantry run -d --image gantry/samples:latest -- sleep 5
  gantry ps --all
  gantry describe RUN -o json
  gantry logs -f RUN
  gantry wait RUN

Every command finds NATS through --nats or GANTRY_NATS_URL
(default ` + queue.DefaultURL + `).

Exit codes: 0 on success; an attached 'gantry run' exits with its task's
exit code; 124 when the run timed out; 1 when 'validate' or '--dry-run' found
problems; 125 when gantry itself failed; 130 when Ctrl-C ended 'logs -f' or
'wait'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// gantry --version, as docker --version: what gantry version prints.
		Version: version,
	}
	root.SetVersionTemplate("gantry {{.Version}}\n")
	root.InitDefaultVersionFlag()
	root.Flags().Lookup("version").Usage = "print gantry's version, as gantry version does"
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w%s (see '%s --help')", err, flagHint(c, err), c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.conn.URL, "nats", envOr("GANTRY_NATS_URL", queue.DefaultURL), "NATS server URL (env GANTRY_NATS_URL)")
	pf.StringVar(&g.conn.Creds, "creds", os.Getenv("GANTRY_NATS_CREDS"), "NATS credentials file (env GANTRY_NATS_CREDS)")
	pf.StringVar(&g.conn.User, "user", os.Getenv("GANTRY_NATS_USER"), "NATS user (env GANTRY_NATS_USER)")
	pf.StringVar(&g.conn.Password, "password", os.Getenv("GANTRY_NATS_PASSWORD"), "NATS password (env GANTRY_NATS_PASSWORD)")
	pf.StringVar(&g.conn.Token, "token", os.Getenv("GANTRY_NATS_TOKEN"), "NATS token (env GANTRY_NATS_TOKEN)")
	pf.StringVar(&g.conn.TLSCA, "tls-ca", os.Getenv("GANTRY_NATS_TLS_CA"), "CA certificate to verify NATS's TLS (env GANTRY_NATS_TLS_CA)")
	pf.StringVar(&g.conn.TLSCert, "tls-cert", os.Getenv("GANTRY_NATS_TLS_CERT"), "client certificate for NATS's TLS (env GANTRY_NATS_TLS_CERT)")
	pf.StringVar(&g.conn.TLSKey, "tls-key", os.Getenv("GANTRY_NATS_TLS_KEY"), "key of --tls-cert (env GANTRY_NATS_TLS_KEY)")
	pf.StringVar(&g.context, "context", os.Getenv("GANTRY_CONTEXT"), "use this saved context instead of the current one (env GANTRY_CONTEXT)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if !connects(cmd) {
			return nil
		}
		return g.applyContext(cmd.Flags())
	}
	pf.StringVar(&g.conn.NKeyFile, "nkey", os.Getenv("GANTRY_NATS_NKEY"), "NATS nkey seed file (env GANTRY_NATS_NKEY)")
	pf.StringVar(&g.conn.InboxPrefix, "inbox-prefix", os.Getenv("GANTRY_NATS_INBOX_PREFIX"),
		"subject prefix to receive NATS replies under, for a NATS user allowed only its own (subscribe PREFIX.>); by default commands use _GANTRY_CLI, or _INBOX where NATS refuses that, and server and worker _GANTRY_INBOX (env GANTRY_NATS_INBOX_PREFIX)")
	root.AddCommand(
		newUpCmd(g), newServerCmd(g), newWorkerCmd(g),
		newRunCmd(g), newRerunCmd(g), newPsCmd(g), newDescribeCmd(g), newLogsCmd(g), newStopCmd(g), newWaitCmd(g), newEventsCmd(g),
		newWorkersCmd(g), newPoolCmd(g), newWebhookCmd(g), newBackupCmd(g),
		newTaskdefCmd(g),
		newPipelineCmd(g), newScheduleCmd(g),
		newVersionCmd(), newBenchCmd(), newContextCmd(g),
	)
	addCompletions(root, g) // completion.go
	refuseUnknownSubcommands(root)
	usageOnArgErrors(root)
	hideSecretDefaults(root)
	return root
}

// secretFlags are the flags whose value is a secret: their default, read
// from the environment, is kept out of --help.
var secretFlags = []string{"password", "token", "submit-password", "http-token"}

// hideSecretDefaults keeps the secrets that flags take by default from
// GANTRY_* variables out of every command's --help, which would
// otherwise print them as (default "...") for anyone to paste into an
// issue. The flags keep the value.
func hideSecretDefaults(c *cobra.Command) {
	for _, fs := range []*pflag.FlagSet{c.PersistentFlags(), c.Flags()} {
		for _, name := range secretFlags {
			if f := fs.Lookup(name); f != nil {
				f.DefValue = ""
			}
		}
	}
	for _, sub := range c.Commands() {
		hideSecretDefaults(sub)
	}
}

// usageOnArgErrors adds the usage line to cobra's errors about the number
// of arguments, which say neither which command nor what it takes
// ("accepts 1 arg(s), received 0").
func usageOnArgErrors(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return fmt.Errorf("%w; usage: %s", err, strings.TrimSuffix(cmd.UseLine(), " [flags]"))
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageOnArgErrors(sub)
	}
}

// flagHint suggests, for an unknown long flag, the command's flag it most
// likely stands for ("; did you mean --status?" for --stauts), as task
// definitions' unknown fields and the HTTP API's query parameters do; ""
// for any other error, or when no flag is close.
func flagHint(c *cobra.Command, err error) string {
	name, ok := strings.CutPrefix(err.Error(), "unknown flag: --")
	if !ok {
		return ""
	}
	var names []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, f.Name)
		}
	})
	if n := jobs.Nearest(name, names); n != "" {
		return fmt.Sprintf("; did you mean --%s?", n)
	}
	return ""
}

// refuseUnknownSubcommands makes 'gantry taskdef regster x.json' an error:
// cobra checks the subcommand only under the root, and a group such as
// taskdef printed its help and exited 0 for a command it does not have,
// which a script took for success. Without arguments a group still
// prints its help. The root gets the same one-line error, where cobra's
// own took four lines ("Did you mean this?" and a list).
func refuseUnknownSubcommands(root *cobra.Command) {
	// A group so made runnable shows "gantry taskdef [flags]" above
	// "gantry taskdef [command]" in its usage. A usage template of our own
	// could drop that line, but cobra's templates call methods by name,
	// which keeps every exported method of the binary from the linker's
	// dead-code elimination: 6 MB more binary.
	for _, c := range append([]*cobra.Command{root}, root.Commands()...) {
		if !c.HasSubCommands() || c.Runnable() {
			continue
		}
		if c == root {
			refuseUnknownHelpTopics(root)
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			hint := ""
			cmd.SuggestionsMinimumDistance = 2 // as cobra's for the root
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				hint = fmt.Sprintf("; did you mean %q?", s[0])
				if len(s) > 1 {
					hint = fmt.Sprintf("; did you mean %q or %q?", s[0], s[1])
				}
			}
			return fmt.Errorf("unknown command %q for %q%s (see '%s --help')", args[0], cmd.CommandPath(), hint, cmd.CommandPath())
		}
	}
}

// refuseUnknownHelpTopics keeps 'gantry help bogus' an error once the
// root takes arguments (and so finds itself for any topic it has not):
// cobra's help would print the root's help for it and exit 0.
func refuseUnknownHelpTopics(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, h := range root.Commands() {
		if h.Name() != "help" || h.Run == nil {
			continue
		}
		show := h.Run
		h.Run = nil
		h.RunE = func(cmd *cobra.Command, args []string) error {
			if target, _, err := root.Find(args); err == nil && target == root && len(args) > 0 {
				return fmt.Errorf("unknown help topic %q (see 'gantry --help')", strings.Join(args, " "))
			}
			show(cmd, args)
			return nil
		}
	}
}

// connects reports whether cmd may talk to NATS, and so needs the selected
// context. The others work whatever it is: a GANTRY_CONTEXT naming a context
// since removed must not lock the user out of 'gantry context ls' and
// 'context use', which its error points to, nor out of help, version and
// the completion script a shell's profile sources.
func connects(cmd *cobra.Command) bool {
	if !cmd.HasParent() {
		return false // the root runs only to print its help or refuse a command it has not
	}
	top := cmd // the command under the root
	for top.HasParent() && top.Parent().HasParent() {
		top = top.Parent()
	}
	switch top.Name() {
	case "context", "version", "help", "completion":
		return false
	}
	return true
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// connect dials NATS for a CLI command and returns a client.
func (g *globals) connect(ctx context.Context) (*nats.Conn, *client.Client, error) {
	o := g.conn
	o.Name = "gantry-cli"
	// Replies out of the sight of submit-only users (who may read
	// _INBOX.>) for a user who may receive them elsewhere; a submitter's
	// own CLI falls back to _INBOX.
	o, err := withInbox(o, queue.CLIInboxPrefix, true)
	if err != nil {
		return nil, nil, err
	}
	nc, err := queue.Dial(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	// A publish NATS refuses comes back as the request's own error
	// ("NATS refused SUBJECT: ..."), which the command prints: nats.go's
	// default handler would print the raw violation before it.
	if prev := nc.ErrorHandler(); prev != nil {
		nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if sub == nil && errors.Is(err, nats.ErrPermissionViolation) {
				return
			}
			prev(nc, sub, err)
		})
	}
	c, err := client.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, c, nil
}

// withInbox sets where o's replies come: under the prefix the user gave
// (--inbox-prefix), which Dial checks NATS lets the user subscribe to, so
// that a refusal is said at once rather than as requests timing out; or
// else under def, falling back to _INBOX (checked the same way) where
// NATS refuses def if fallback is set. A role's default prefix is not
// checked: a user refused it is refused a role's JetStream requests too,
// and that error says what to do (give it the operator's rights).
func withInbox(o queue.ConnOptions, def string, fallback bool) (queue.ConnOptions, error) {
	if o.InboxPrefix != "" {
		if err := queue.CheckInboxPrefix(o.InboxPrefix); err != nil {
			return o, fmt.Errorf("--inbox-prefix: %w", err)
		}
		o.InboxCheck, o.InboxChoice = true, "--inbox-prefix"
		return o, nil
	}
	o.InboxPrefix, o.InboxFallback = def, fallback
	return o, nil
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print gantry's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "gantry", version)
		},
	}
}

var version = "dev"
