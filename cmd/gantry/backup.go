package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

func newBackupCmd(g *globals) *cobra.Command {
	var (
		force   bool
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "backup FILE [--force]",
		Short: "Write a consistent copy of the server's store (runs, pipelines, schedules...) to FILE",
		Long: `backup asks the server for a snapshot of its SQLite store, taken while it runs
(VACUUM INTO: event application goes on meanwhile), and writes it to FILE.
The snapshot travels over NATS through the data bucket, so the server may be
on another host; its size and SHA-256 are checked end to end and printed.
FILE is written whole or not at all (a temporary file beside it, renamed),
and an existing FILE is kept unless --force is given. Only operators may.

To restore: stop the server, put the file as DATA/gantry.db (DATA being its
--data directory), remove DATA/gantry.db-wal and DATA/gantry.db-shm, start
it. A backup holds what SQLite holds: task definitions, runs and their
history, pipelines and their runs, schedules, pools and webhooks. It does
not hold what is in JetStream: queued jobs, logs, stage files. See the
README's "Backup and restore".`,
		Example: `  gantry backup /var/backups/gantry-$(date +%F).db
  gantry backup --nats nats://ops.example.com:4222 --creds op.creds nightly.db --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			tmp, err := backupTarget(path, force)
			if err != nil {
				return err
			}
			placed := false
			defer func() {
				if !placed {
					tmp.Close()
					os.Remove(tmp.Name())
				}
			}()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			nc, c, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer nc.Close()
			p := &byteProgress{w: cmd.ErrOrStderr(), tty: styleOf(cmd.ErrOrStderr()).tty}
			b, err := c.Backup(ctx, tmp, p.show)
			p.end()
			if err != nil {
				return err
			}
			if err := placeFile(tmp, path, force); err != nil {
				return err
			}
			placed = true
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d bytes (%s), sha256 %s\n", path, b.Size, mib(b.Size), b.SHA256)
			fmt.Fprintf(cmd.ErrOrStderr(), "snapshot of %s taken at %s in %dms; restore it as DATA/%s\n",
				b.DBFile, b.CreatedAt.Format(time.RFC3339), b.SnapshotMillis, b.DBFile)
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	durationVar(c.Flags(), &timeout, "timeout", 30*time.Minute, "give up after this long (snapshot and transfer)")
	return c
}

// backupTarget checks, before anything is asked of the server, that the
// backup can be written to path, and returns the temporary file it is
// written to first: in path's directory, so that the rename is atomic.
func backupTarget(path string, force bool) (*os.File, error) {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return nil, fmt.Errorf("FILE %s is a directory: name the file to write", path)
	case err == nil && !force:
		return nil, fmt.Errorf("FILE %s exists: give --force to replace it", path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("FILE %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return nil, fmt.Errorf("FILE %s: cannot write there: %w", path, err)
	}
	return tmp, nil
}

// placeFile syncs tmp and puts it at path: replacing what is there with
// force, else refusing a file made there meanwhile.
func placeFile(tmp *os.File, path string, force bool) error {
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if force {
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("FILE %s: %w", path, err)
		}
	} else {
		// A link fails if path exists, where a rename would replace it.
		if err := os.Link(tmp.Name(), path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("FILE %s was made while the backup was written: give --force to replace it", path)
			}
			return fmt.Errorf("FILE %s: %w", path, err)
		}
		os.Remove(tmp.Name())
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil { // the rename itself survives a power cut
		d.Sync()
		d.Close()
	}
	return nil
}

// byteProgress tells how much of a transfer is done, on stderr: one line
// rewritten on a terminal, a line every tenth elsewhere; nothing for a
// transfer under progressMin.
type byteProgress struct {
	w    io.Writer
	tty  bool
	last int64 // the tenth (or hundredth on a terminal) last shown
	open bool  // a terminal line waits for its end
}

const progressMin = 8 << 20

func (p *byteProgress) show(done, total int64) {
	if total < progressMin {
		return
	}
	steps := int64(10)
	if p.tty {
		steps = 100
	}
	step := done * steps / total
	if step == p.last && done != total {
		return
	}
	p.last = step
	line := fmt.Sprintf("backup: %s / %s", mib(done), mib(total))
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", line)
		p.open = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *byteProgress) end() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// mib shows a size in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
