package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"
)

// submitterFlags add a submit-only user to `gantry up`'s embedded NATS
// (queue/embedded/roles.go says what it may do).
type submitterFlags struct {
	user, password string
}

func (f *submitterFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.user, "submit-user", os.Getenv("GANTRY_SUBMIT_USER"),
		"add a NATS user who may only submit runs and follow them (needs --user/--password, the operator) (env GANTRY_SUBMIT_USER)")
	c.Flags().StringVar(&f.password, "submit-password", os.Getenv("GANTRY_SUBMIT_PASSWORD"),
		"password of --submit-user (env GANTRY_SUBMIT_PASSWORD)")
}

func (f *submitterFlags) validate(g *globals) error {
	switch {
	case f.user == "" && f.password == "":
		return nil
	case f.user == "" || f.password == "":
		return errors.New("--submit-user and --submit-password go together")
	case g.conn.User == "" || g.conn.Token != "":
		return errors.New("--submit-user needs an operator: give --user and --password too")
	case f.user == g.conn.User:
		return errors.New("--submit-user must differ from --user")
	}
	return nil
}
