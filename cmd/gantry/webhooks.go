package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry/client"
	"github.com/gantry-dev/gantry/jobs"
	"github.com/spf13/cobra"
)

func newWebhookCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "webhook",
		Short: "POST the ends of runs and pipeline runs to HTTP endpoints (add, ls, delete, test)",
		Long: `A webhook is a URL the server POSTs a JSON event to when a run or a pipeline
run ends with one of its statuses (--on, FAILED by default), as EventBridge
rules or Airflow's on_failure_callback do. --kind, --pipeline, --family,
--tag and --no-array-children narrow the ends it hears of: different
filters must all hold, repeated values of one filter are alternatives.

Delivery is at least once: each end is stored with its deliveries in one
transaction, so a crash loses none, but a receiver may get an end twice;
X-Gantry-Event-Id tells them apart. An answer other than 2xx is tried again,
5s later then doubling up to 10m, for 24h; then the delivery is counted
failed ('gantry webhook ls') and logged. With --secret-file every body is
signed: X-Gantry-Signature: sha256=<hex HMAC-SHA256 of the body>.

An http:// URL sends the events unencrypted: prefer https:// beyond the host.
Only operators may add, list, delete and test webhooks.`,
		Example: `  gantry webhook add oncall --url https://hooks.example.com/gantry --secret-file ./hook.secret
  gantry webhook add sales --url https://chat.example.com/x --on FAILED,SUCCEEDED --pipeline daily-sales
  gantry webhook test oncall
  gantry webhook ls
  gantry webhook delete sales`,
	}
	c.AddCommand(newWebhookAddCmd(g), newWebhookLsCmd(g), newWebhookDeleteCmd(g), newWebhookTestCmd(g))
	return c
}

// webhookAddFlags are the flags of gantry webhook add.
type webhookAddFlags struct {
	url, on, kind, secretFile string
	pipelines, families       []string
	tags                      []string
	noArrayChildren           bool
}

// spec checks the flags before connecting, every problem at once, and
// returns the hook to add.
func (f *webhookAddFlags) spec(name string) (client.WebhookSpec, error) {
	spec := client.WebhookSpec{Name: name, URL: f.url, Pipelines: f.pipelines, Families: f.families}
	var errs []error
	if err := jobs.CheckWebhookName("NAME", name); err != nil {
		errs = append(errs, err)
	}
	if err := jobs.CheckWebhookURL("--url", f.url); err != nil {
		errs = append(errs, err)
	}
	on, err := jobs.ParseWebhookStatuses("--on", f.on)
	if err != nil {
		errs = append(errs, err)
	}
	spec.On = on
	if spec.Kind, err = jobs.ParseWebhookKind("--kind", f.kind); err != nil {
		errs = append(errs, err)
	}
	if f.noArrayChildren {
		spec.ArrayChildren = new(false)
		if err := jobs.CheckWebhookArrayChildren("--no-array-children", spec.Kind); err != nil {
			errs = append(errs, err)
		}
	}
	if tags, err := tagFlags(f.tags); err != nil { // run.go
		errs = append(errs, err)
	} else {
		spec.Tags = tags.Map()
	}
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--secret-file: %w", err))
		case strings.TrimRight(string(b), "\r\n") == "":
			errs = append(errs, fmt.Errorf("--secret-file %s: empty: the secret is the file's content", f.secretFile))
		default:
			spec.Secret = strings.TrimRight(string(b), "\r\n")
		}
	}
	// The rest (pipeline and family names, tags) as the server checks it.
	h := jobs.Webhook{Name: "x", URL: "http://x", Kind: spec.Kind, Pipelines: f.pipelines, Families: f.families, Tags: spec.Tags}
	if err := h.Validate(); err != nil {
		errs = append(errs, err)
	}
	return spec, errors.Join(errs...)
}

func newWebhookAddCmd(g *globals) *cobra.Command {
	var (
		f   webhookAddFlags
		out output
	)
	c := &cobra.Command{
		Use:   "add NAME --url URL [--on STATUS,...] [--kind runs|pipelineRuns] [--pipeline P]... [--family F]... [--tag K=V]... [--no-array-children] [--secret-file F]",
		Short: "Add a webhook",
		Long: `add stores a webhook: from now on the server POSTs to URL the end of every run
and pipeline run that passes its filters. --on takes SUCCEEDED, FAILED and
CANCELED, comma-separated (FAILED by default). A stage's run that fails
fails its pipeline run too: --kind runs keeps only runs (stage runs
included), --kind pipelineRuns only pipeline runs; without it the hook
hears of both. --pipeline keeps the pipeline runs of that pipeline and the
runs of its stages; --family keeps the runs of that task definition family
(never a pipeline run); --tag K=V keeps the runs and pipeline runs tagged
so. An array run (gantry run --array-size N) tells of each child's end and
then of its own: --no-array-children leaves the children out, and the
parent's end, which counts them and names the first that failed, is the
one POST of an array (the runs of a pipeline's array stage have no parent
run and are told as any stage's run; --kind pipelineRuns hears of their
pipeline run alone).
The secret, when given, is the content of --secret-file without its
final newline; it is never shown again.

Check what the endpoint answers with 'gantry webhook test NAME'.`,
		Example: `  head -c 32 /dev/urandom | base64 > hook.secret
  gantry webhook add oncall --url https://hooks.example.com/gantry --secret-file hook.secret
  gantry webhook add etl-all --url http://10.0.0.5:8080/ --on FAILED,CANCELED,SUCCEEDED --family extract --family load
  gantry webhook add data-team --url https://hooks.example.com/data --tag team=data
  gantry webhook add sales-alerts --url https://chat.example.com/x --pipeline daily-sales --kind pipelineRuns
  gantry webhook add oncall-arrays --url https://hooks.example.com/oncall --no-array-children`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := f.spec(args[0])
			if err != nil {
				return err
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*jobs.Webhook, error) {
				h, err := c.AddWebhook(ctx, spec)
				if err == nil {
					notePipelinesMissing(ctx, cmd.ErrOrStderr(), c, h)
				}
				return h, err
			}, func(w io.Writer, h *jobs.Webhook) error {
				return webhooksTable(w, []jobs.WebhookInfo{{Webhook: *h}}, time.Now())
			})
		},
	}
	c.Flags().StringVar(&f.url, "url", "", "the http:// or https:// URL to POST to (required)")
	c.Flags().StringVar(&f.on, "on", "FAILED", "end statuses to send, comma-separated: SUCCEEDED, FAILED, CANCELED")
	c.Flags().StringVar(&f.kind, "kind", "", "only runs or only pipeline runs: runs|pipelineRuns (both when left out)")
	c.Flags().StringArrayVar(&f.pipelines, "pipeline", nil, "only the runs of this pipeline and of its stages (repeatable: any of them)")
	c.Flags().StringArrayVar(&f.families, "family", nil, "only the runs of this task definition family (repeatable: any of them)")
	c.Flags().StringArrayVar(&f.tags, "tag", nil, "only the runs and pipeline runs with tag K=V (repeatable: all of them)")
	c.Flags().BoolVar(&f.noArrayChildren, "no-array-children", false, "leave out the children of array runs: an array's end is its parent's alone")
	c.Flags().StringVar(&f.secretFile, "secret-file", "", "sign every body with the secret in this file (X-Gantry-Signature: sha256=HMAC)")
	addOutputFlag(c, &out)
	return c
}

// notePipelinesMissing says which of a new hook's --pipeline names no
// pipeline: the hook is kept (the pipeline may be applied later), but a
// typo would otherwise leave it silent for good.
func notePipelinesMissing(ctx context.Context, w io.Writer, c *client.Client, h *jobs.Webhook) {
	for _, p := range h.Pipelines {
		if _, err := c.DescribePipeline(ctx, p, 0); errors.Is(err, client.ErrNotFound) {
			fmt.Fprintf(w, "gantry: note: no pipeline %s (gantry pipeline ls lists them): webhook %s hears of its runs once one is applied\n", p, h.Name)
		}
	}
}

func newWebhookLsCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "ls",
		Short: "List the webhooks and how their deliveries fare",
		Long: `ls lists every webhook: its URL, the statuses and filters it hears of, its
last try of a real delivery (when, and the HTTP status or the error; not
'gantry webhook test', which is not recorded), how many deliveries are
PENDING (waiting for their first try or a retry) and how many FAILED (given
up after 24h of retries). -o json has the counts of deliveries too.`,
		Example: "  gantry webhook ls\n  gantry webhook ls -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) ([]jobs.WebhookInfo, error) {
				return c.Webhooks(ctx)
			}, func(w io.Writer, hooks []jobs.WebhookInfo) error { return webhooksTable(w, hooks, time.Now()) })
		},
	}
	addOutputFlag(c, &out)
	return c
}

// webhooksTable is the table of `gantry webhook ls`.
func webhooksTable(w io.Writer, hooks []jobs.WebhookInfo, now time.Time) error {
	fmt.Fprintln(w, "NAME\tURL\tON\tFILTERS\tLAST\tPENDING\tFAILED")
	for _, h := range hooks {
		on := make([]string, len(h.On))
		for i, s := range h.On {
			on[i] = string(s)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", h.Name, h.URL, strings.Join(on, ","), webhookFilters(&h.Webhook),
			lastTry(h.Last, now), h.Pending, h.Failed)
	}
	return nil
}

func webhookFilters(h *jobs.Webhook) string {
	var parts []string
	if h.Kind != "" {
		parts = append(parts, "kind="+h.Kind)
	}
	for _, p := range h.Pipelines {
		parts = append(parts, "pipeline="+p)
	}
	for _, f := range h.Families {
		parts = append(parts, "family="+f)
	}
	for _, k := range slices.Sorted(maps.Keys(h.Tags)) {
		parts = append(parts, "tag:"+k+"="+h.Tags[k])
	}
	if !h.HearsArrayChildren() {
		parts = append(parts, "no-array-children")
	}
	if h.Signed {
		parts = append(parts, "signed")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func lastTry(t *jobs.WebhookTry, now time.Time) string {
	if t == nil {
		return "-"
	}
	what := fmt.Sprint(t.Status)
	if t.Error != "" {
		what = t.Error
		if r := []rune(what); len(r) > 40 {
			what = string(r[:40]) + "…"
		}
	}
	return what + " " + ago(t.At, now)
}

// webhookTestNotRecorded is gantry webhook test's note on stderr.
const webhookTestNotRecorded = "gantry: note: a test is not recorded: gantry webhook ls shows real deliveries only, and its LAST stays as they left it"

// webhookTestedText prints the answer to gantry webhook test: the status,
// why it does not deliver, then the start of the body (once: the error
// of an answer that is not 2xx repeats its first line).
func webhookTestedText(w io.Writer, t *client.WebhookTested) error {
	switch {
	case t.Delivered:
		fmt.Fprintf(w, "POST %s: %d (delivered)\n", t.URL, t.Status)
	case t.Status >= 300 && t.Status < 400:
		fmt.Fprintf(w, "POST %s: %d %s (not delivered: redirects are not followed)\n", t.URL, t.Status, http.StatusText(t.Status))
	case t.Status != 0:
		fmt.Fprintf(w, "POST %s: %d %s (not delivered: only a 2xx answer delivers)\n", t.URL, t.Status, http.StatusText(t.Status))
	default:
		fmt.Fprintf(w, "POST %s: %s\n", t.URL, t.Error)
	}
	if body := strings.TrimRight(t.Body, "\n"); body != "" {
		fmt.Fprintln(w, body)
	}
	return nil
}

func newWebhookDeleteCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a webhook and drop its pending deliveries",
		Example: "  gantry webhook delete oncall",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := jobs.CheckWebhookName("NAME", args[0]); err != nil {
				return err
			}
			return show(cmd, g, out, func(ctx context.Context, c *client.Client) (*client.WebhookDeleted, error) {
				return c.DeleteWebhook(ctx, args[0])
			}, func(w io.Writer, d *client.WebhookDeleted) error {
				_, err := fmt.Fprintf(w, "webhook %s deleted (%d pending deliveries dropped)\n", d.Name, d.Dropped)
				return err
			})
		},
	}
	addOutputFlag(c, &out)
	return c
}

func newWebhookTestCmd(g *globals) *cobra.Command {
	var out output
	c := &cobra.Command{
		Use:   "test NAME",
		Short: "POST a sample event to a webhook now and show the answer",
		Long: `test has the server POST a sample event (a FAILED run of sample:1, with an
event id test/...) to the webhook's URL, signed as deliveries are, and
prints the answer's status and the start of its body. Nothing is recorded,
and a note on stderr says so: 'gantry webhook ls' is about real
deliveries (its LAST, PENDING and FAILED, and the metrics, count the ends
of runs, which a sample is not), so a test leaves LAST as they left it. An
answer 2xx ends the hook's backoff: its waiting deliveries go at once. It
exits 1 when the answer is not 2xx.`,
		Example: "  gantry webhook test oncall",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := jobs.CheckWebhookName("NAME", args[0]); err != nil {
				return err
			}
			var tested *client.WebhookTested
			err := show(cmd, g, out, func(ctx context.Context, c *client.Client) (*client.WebhookTested, error) {
				var err error
				tested, err = c.TestWebhook(ctx, args[0])
				return tested, err
			}, webhookTestedText)
			if err == nil {
				// webhook ls leaves a test out: say so, or its LAST, -
				// or a real delivery's, reads as if the test went
				// nowhere.
				fmt.Fprintln(cmd.ErrOrStderr(), webhookTestNotRecorded)
			}
			if err == nil && !tested.Delivered {
				return &exitError{code: 1} // printed already
			}
			return err
		},
	}
	addOutputFlag(c, &out)
	return c
}
