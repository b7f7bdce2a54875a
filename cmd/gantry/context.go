package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gantry-dev/gantry/queue"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Named contexts: how to reach one gantry deployment's NATS, kept in a
// config file so that `gantry context use prod` switches every command at
// once. Precedence, highest first: a flag, its GANTRY_* environment
// variable, the current context (--context or GANTRY_CONTEXT names another),
// the built-in default.

// contextConfig is the config file.
type contextConfig struct {
	Current  string                 `yaml:"current,omitempty"`
	Contexts map[string]*natsTarget `yaml:"contexts,omitempty"`
}

// natsTarget is one context.
type natsTarget struct {
	NATS     string `yaml:"nats,omitempty"`
	Creds    string `yaml:"creds,omitempty"`
	User     string `yaml:"user,omitempty"`
	Password string `yaml:"password,omitempty"`
	Token    string `yaml:"token,omitempty"`
	NKey     string `yaml:"nkey,omitempty"`
	TLSCA    string `yaml:"tlsCA,omitempty"`
	TLSCert  string `yaml:"tlsCert,omitempty"`
	TLSKey   string `yaml:"tlsKey,omitempty"`
	// InboxPrefix is --inbox-prefix.
	InboxPrefix string `yaml:"inboxPrefix,omitempty"`
}

// connFlags maps each connection flag to its environment variable and its
// field in a context.
var connFlags = []struct {
	flag, env string
	field     func(*natsTarget) *string
	conn      func(*queue.ConnOptions) *string
	file      bool // a path, saved absolute
}{
	{"nats", "GANTRY_NATS_URL", func(t *natsTarget) *string { return &t.NATS }, func(o *queue.ConnOptions) *string { return &o.URL }, false},
	{"creds", "GANTRY_NATS_CREDS", func(t *natsTarget) *string { return &t.Creds }, func(o *queue.ConnOptions) *string { return &o.Creds }, true},
	{"user", "GANTRY_NATS_USER", func(t *natsTarget) *string { return &t.User }, func(o *queue.ConnOptions) *string { return &o.User }, false},
	{"password", "GANTRY_NATS_PASSWORD", func(t *natsTarget) *string { return &t.Password }, func(o *queue.ConnOptions) *string { return &o.Password }, false},
	{"token", "GANTRY_NATS_TOKEN", func(t *natsTarget) *string { return &t.Token }, func(o *queue.ConnOptions) *string { return &o.Token }, false},
	{"nkey", "GANTRY_NATS_NKEY", func(t *natsTarget) *string { return &t.NKey }, func(o *queue.ConnOptions) *string { return &o.NKeyFile }, true},
	{"tls-ca", "GANTRY_NATS_TLS_CA", func(t *natsTarget) *string { return &t.TLSCA }, func(o *queue.ConnOptions) *string { return &o.TLSCA }, true},
	{"tls-cert", "GANTRY_NATS_TLS_CERT", func(t *natsTarget) *string { return &t.TLSCert }, func(o *queue.ConnOptions) *string { return &o.TLSCert }, true},
	{"tls-key", "GANTRY_NATS_TLS_KEY", func(t *natsTarget) *string { return &t.TLSKey }, func(o *queue.ConnOptions) *string { return &o.TLSKey }, true},
	{"inbox-prefix", "GANTRY_NATS_INBOX_PREFIX", func(t *natsTarget) *string { return &t.InboxPrefix }, func(o *queue.ConnOptions) *string { return &o.InboxPrefix }, false},
}

func configPath() string {
	if p := os.Getenv("GANTRY_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "gantry", "config.yaml")
}

func loadContexts() (*contextConfig, error) {
	cfg := &contextConfig{Contexts: map[string]*natsTarget{}}
	data, err := os.ReadFile(configPath())
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", configPath(), err)
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]*natsTarget{}
	}
	return cfg, nil
}

func (c *contextConfig) save() error {
	p := configPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	// Contexts may hold passwords: readable by the user alone. WriteFile
	// keeps the mode of a file that exists (one made by hand or by an
	// editor may be world-readable): narrow it before writing.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("config %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// applyContext fills the connection options that neither a flag nor the
// environment set from the selected context.
func (g *globals) applyContext(flags *pflag.FlagSet) error {
	cfg, err := loadContexts()
	if err != nil {
		return err
	}
	name := g.context
	if name == "" {
		name = cfg.Current
	}
	if name == "" {
		return nil
	}
	t, ok := cfg.Contexts[name]
	if !ok {
		return fmt.Errorf("context %q is not defined in %s (see 'gantry context ls')", name, configPath())
	}
	for _, f := range connFlags {
		if v := *f.field(t); v != "" && !flags.Changed(f.flag) && os.Getenv(f.env) == "" {
			*f.conn(&g.conn) = v
		}
	}
	return nil
}

func newContextCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "context",
		Short: "Name the gantry deployments you talk to, and switch between them",
		Long: `A context names how to reach one deployment's NATS (URL, credentials, TLS).
They live in ` + "`$GANTRY_CONFIG`" + ` or ~/.config/gantry/config.yaml. A flag or its
GANTRY_* variable still wins over the current context; --context NAME (or
GANTRY_CONTEXT) picks another for one command.`,
		Example: `  gantry context add prod --nats nats://nats.prod:4222 --creds ~/prod.creds
  gantry context use prod
  gantry context ls`,
	}
	c.AddCommand(&cobra.Command{
		Use:   "add NAME",
		Short: "Save the connection flags given with it as a context",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if notIDChars.MatchString(args[0]) {
				return fmt.Errorf("context name %q: use letters, digits, '-' and '_'", args[0])
			}
			cfg, err := loadContexts()
			if err != nil {
				return err
			}
			t := &natsTarget{}
			for _, f := range connFlags {
				if fl := cmd.Flags().Lookup(f.flag); fl != nil && fl.Changed {
					v := fl.Value.String()
					if f.file && v != "" {
						// Saved as given, a relative path was read from
						// whatever directory a later command ran in.
						if v, err = filepath.Abs(v); err != nil {
							return fmt.Errorf("--%s: %w", f.flag, err)
						}
					}
					*f.field(t) = v
				}
			}
			if t.NATS == "" {
				return errors.New("give at least --nats URL")
			}
			cfg.Contexts[args[0]] = t
			if cfg.Current == "" {
				cfg.Current = args[0]
			}
			if err := cfg.save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "context %s saved in %s\n", args[0], configPath())
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:               "use NAME",
		Short:             "Make NAME the current context",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadContexts()
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return fmt.Errorf("no context %q (see 'gantry context ls')", args[0])
			}
			cfg.Current = args[0]
			return cfg.save()
		},
	})
	c.AddCommand(&cobra.Command{
		Use:               "rm NAME",
		Short:             "Forget a context",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadContexts()
			if err != nil {
				return err
			}
			if _, ok := cfg.Contexts[args[0]]; !ok {
				return fmt.Errorf("no context %q", args[0])
			}
			delete(cfg.Contexts, args[0])
			if cfg.Current == args[0] {
				cfg.Current = ""
			}
			return cfg.save()
		},
	})
	var lsOut output
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the contexts; * marks the current one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadContexts()
			if err != nil {
				return err
			}
			names := make([]string, 0, len(cfg.Contexts))
			for n := range cfg.Contexts {
				names = append(names, n)
			}
			slices.Sort(names)
			// Names and URLs only: credentials stay in the file.
			type listed struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				NATS    string `json:"nats"`
			}
			list := make([]listed, 0, len(names))
			for _, n := range names {
				// A password or token in the URL stays in the file, in
				// each URL of a list too (url.Parse read "a,b" as one, and
				// masked only a's).
				natsURL := queue.RedactURL(cfg.Contexts[n].NATS)
				list = append(list, listed{Name: n, Current: n == cfg.Current, NATS: natsURL})
			}
			return lsOut.write(cmd.OutOrStdout(), list, func(w io.Writer) error {
				if len(list) == 0 {
					// An empty table read as a command that did nothing.
					fmt.Fprintln(cmd.ErrOrStderr(), "gantry: no context saved: commands take --nats (or GANTRY_NATS_URL); gantry context add NAME --nats URL saves one")
				}
				for _, l := range list {
					mark := " "
					if l.Current {
						mark = "*"
					}
					fmt.Fprintf(w, "%s %s\t%s\n", mark, l.Name, l.NATS)
				}
				return nil
			})
		},
	}
	addOutputFlag(ls, &lsOut)
	c.AddCommand(ls)
	return c
}

func completeContexts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	cfg, err := loadContexts()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
