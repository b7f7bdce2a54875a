package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// envApplet is env [-i] [NAME=VALUE...] [COMMAND [ARG...]].
func envApplet(p *proc, args []string) error {
	args = args[1:]
	env := slices.Clone(p.env)
	if len(args) > 0 && (args[0] == "-i" || args[0] == "-") {
		env, args = nil, args[1:]
	}
	for len(args) > 0 && strings.Contains(args[0], "=") {
		env = append(env, args[0])
		args = args[1:]
	}
	if len(args) == 0 {
		return writeLines(p.stdout, env)
	}
	child := *p
	child.env = env
	if _, ok := applets[args[0]]; ok {
		return exitCode(run(&child, args))
	}
	return execCommand(&child, args)
}

// exitCode turns a code already reported by run into an error.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return exitStatus(code)
}

func printenv(p *proc, args []string) error {
	if len(args) == 1 {
		return writeLines(p.stdout, p.env)
	}
	missing := false
	for _, name := range args[1:] {
		v, ok := p.lookupEnv(name)
		if !ok {
			missing = true
			continue
		}
		fmt.Fprintln(p.stdout, v)
	}
	if missing {
		return exitStatus(1)
	}
	return nil
}

func pwd(p *proc, _ []string) error {
	_, err := fmt.Fprintln(p.stdout, p.dir)
	return err
}

func hostname(p *proc, _ []string) error {
	h, err := os.Hostname()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(p.stdout, h)
	return err
}

// ls [-lad1] [PATH...]: names one per line; -l adds mode, size and time;
// -d lists directories themselves.
func ls(p *proc, args []string) error {
	opts, paths, err := getopt(args[1:], "lad1", "")
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	w := bufio.NewWriter(p.stdout)
	defer w.Flush()
	failed := false
	show := func(name string, fi fs.FileInfo) {
		if has(opts, 'l') {
			fmt.Fprintf(w, "%s %10d %s %s\n", fi.Mode(), fi.Size(), fi.ModTime().Format("2006-01-02 15:04"), name)
		} else {
			fmt.Fprintln(w, name)
		}
	}
	for i, path := range paths {
		fi, err := os.Stat(p.path(path))
		if err != nil {
			p.errorf("ls: %v", err)
			failed = true
			continue
		}
		if !fi.IsDir() || has(opts, 'd') {
			show(path, fi)
			continue
		}
		entries, err := os.ReadDir(p.path(path))
		if err != nil {
			p.errorf("ls: %v", err)
			failed = true
			continue
		}
		if len(paths) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s:\n", path)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") && !has(opts, 'a') {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			show(e.Name(), info)
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

func mkdir(p *proc, args []string) error {
	opts, dirs, err := getopt(args[1:], "p", "")
	if err != nil {
		return err
	}
	if len(dirs) == 0 {
		return usageError("mkdir [-p] DIR...")
	}
	for _, d := range dirs {
		if has(opts, 'p') {
			err = os.MkdirAll(p.path(d), 0o777)
		} else {
			err = os.Mkdir(p.path(d), 0o777)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func rm(p *proc, args []string) error {
	opts, paths, err := getopt(args[1:], "rRf", "")
	if err != nil {
		return err
	}
	recursive, force := has(opts, 'r') || has(opts, 'R'), has(opts, 'f')
	if len(paths) == 0 && !force {
		return usageError("rm [-rf] PATH...")
	}
	failed := false
	for _, path := range paths {
		full := p.path(path)
		if recursive {
			if _, err := os.Lstat(full); err != nil && !force {
				p.errorf("rm: %v", err)
				failed = true
				continue
			}
			err = os.RemoveAll(full)
		} else {
			err = os.Remove(full)
			if force && errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
		}
		if err != nil {
			p.errorf("rm: %v", err)
			failed = true
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

// target returns where SRC goes for cp/mv: into DST when DST is a directory.
func target(p *proc, src, dst string) string {
	if fi, err := os.Stat(p.path(dst)); err == nil && fi.IsDir() {
		return filepath.Join(p.path(dst), filepath.Base(src))
	}
	return p.path(dst)
}

// cp [-r] SRC... DST.
func cp(p *proc, args []string) error {
	opts, paths, err := getopt(args[1:], "rRpaf", "")
	if err != nil {
		return err
	}
	if len(paths) < 2 {
		return usageError("cp [-r] SRC... DST")
	}
	dst := paths[len(paths)-1]
	for _, src := range paths[:len(paths)-1] {
		fi, err := os.Stat(p.path(src))
		if err != nil {
			return err
		}
		to := target(p, src, dst)
		if fi.IsDir() {
			if !has(opts, 'r') && !has(opts, 'R') && !has(opts, 'a') {
				return fmt.Errorf("%s is a directory (not copied without -r)", src)
			}
			if err := os.CopyFS(to, os.DirFS(p.path(src))); err != nil {
				return fmt.Errorf("copy %s: %w", src, err)
			}
			continue
		}
		if err := copyFile(p.path(src), to, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

// mv SRC... DST, falling back to copy and remove across file systems.
func mv(p *proc, args []string) error {
	_, paths, err := getopt(args[1:], "f", "")
	if err != nil {
		return err
	}
	if len(paths) < 2 {
		return usageError("mv SRC... DST")
	}
	dst := paths[len(paths)-1]
	for _, src := range paths[:len(paths)-1] {
		to := target(p, src, dst)
		if err := os.Rename(p.path(src), to); err != nil {
			var le *os.LinkError
			fi, serr := os.Stat(p.path(src))
			if !errors.As(err, &le) || serr != nil || fi.IsDir() {
				return err
			}
			if err := copyFile(p.path(src), to, fi.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Remove(p.path(src)); err != nil {
				return err
			}
		}
	}
	return nil
}

func touch(p *proc, args []string) error {
	_, files, err := getopt(args[1:], "c", "")
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageError("touch FILE...")
	}
	now := time.Now()
	for _, f := range files {
		full := p.path(f)
		if err := os.Chtimes(full, now, now); err == nil {
			continue
		}
		fh, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE, 0o666)
		if err != nil {
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return nil
}

// date [-u] [+FORMAT] with the common strftime verbs.
func date(p *proc, args []string) error {
	opts, rest, err := getopt(args[1:], "uR", "")
	if err != nil {
		return err
	}
	now := time.Now()
	if has(opts, 'u') {
		now = now.UTC()
	}
	out := now.Format("Mon Jan _2 15:04:05 MST 2006")
	if has(opts, 'R') {
		out = now.Format(time.RFC1123Z)
	}
	if len(rest) > 0 {
		f, ok := strings.CutPrefix(rest[0], "+")
		if !ok || len(rest) > 1 {
			return usageError("date [-u] [+FORMAT]")
		}
		out = strftime(now, f)
	}
	_, err = fmt.Fprintln(p.stdout, out)
	return err
}

// strftime formats t with %Y %m %d %H %M %S %s %N %F %T %z %Z %j %a %b %%.
func strftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 's':
			fmt.Fprintf(&b, "%d", t.Unix())
		case 'N':
			fmt.Fprintf(&b, "%09d", t.Nanosecond())
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'Z':
			b.WriteString(t.Format("MST"))
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'b':
			b.WriteString(t.Format("Jan"))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}
