package samples

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// Image is the moving tag of the samples image; BuildImage points it at the
// image it returns.
const Image = "gantry/samples:latest"

// Repository is the image repository BuildImage tags into.
const Repository = "gantry/samples"

// Applets lists the commands of the box binary; the image links each one to
// /bin/box. A test in samples/box keeps this list in step with the binary.
var Applets = []string{
	"alloc", "bigline", "cat", "cp", "date", "echo", "env", "false", "fetch", "grep",
	"head", "hostname", "httpd", "lines", "ls", "mkdir", "mv", "printenv", "pwd", "rm",
	"seq", "sh", "sleep", "sort", "tail", "tee", "touch", "tr", "true", "ulimit", "uniq",
	"wc", "yes",
}

// Packages built into the image, with the name each binary gets in /bin.
const (
	boxPackage = "github.com/gantry-dev/gantry/samples/box"
	etlPackage = "github.com/gantry-dev/gantry/samples/etl"
)

// epoch is the modification time of every file in the image, so that the same
// binaries always give the same tar and so the same tag.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildImage builds the samples image and returns its content-addressed
// reference, gantry/samples:<first 12 hex digits of the tar's SHA-256>, after
// pointing [Image] at it. It compiles the binaries with the go command (which
// must be on PATH, or in GOROOT) for the daemon's architecture; when an image
// with the same reference exists it is reused instead of imported again.
// Progress lines go to progress, which may be nil. Calling it concurrently,
// even from several processes, is safe: the last tag wins and all tags name
// identical content.
func BuildImage(ctx context.Context, cli *client.Client, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	ver, err := cli.ServerVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("build samples image: docker version: %w", err)
	}
	if ver.Os != "" && ver.Os != "linux" {
		return "", fmt.Errorf("build samples image: docker runs %s containers, need linux", ver.Os)
	}
	arch := cmp.Or(ver.Arch, runtime.GOARCH)

	dir, err := os.MkdirTemp("", "gantry-samples-")
	if err != nil {
		return "", fmt.Errorf("build samples image: %w", err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(progress, "building box and gantry-etl for linux/%s\n", arch)
	if err := buildBinaries(ctx, dir, arch); err != nil {
		return "", fmt.Errorf("build samples image: %w", err)
	}
	layer, err := packLayer(dir)
	if err != nil {
		return "", fmt.Errorf("build samples image: %w", err)
	}
	sum := sha256.Sum256(layer)
	ref := Repository + ":" + hex.EncodeToString(sum[:])[:12]

	if _, err := cli.ImageInspect(ctx, ref); err == nil {
		fmt.Fprintf(progress, "image %s is up to date\n", ref)
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	} else {
		fmt.Fprintf(progress, "importing %s (%d bytes)\n", ref, len(layer))
		if err := importLayer(ctx, cli, layer, ref, progress); err != nil {
			return "", err
		}
	}
	if err := cli.ImageTag(ctx, ref, Image); err != nil {
		return "", fmt.Errorf("tag image %s as %s: %w", ref, Image, err)
	}
	return ref, nil
}

// importLayer imports the file system layer as image ref.
func importLayer(ctx context.Context, cli *client.Client, layer []byte, ref string, progress io.Writer) error {
	body, err := cli.ImageImport(ctx,
		image.ImportSource{Source: bytes.NewReader(layer), SourceName: "-"},
		ref,
		image.ImportOptions{
			Message: "gantry samples: box and gantry-etl",
			Changes: []string{"ENV PATH=/bin", `CMD ["/bin/sh"]`},
		})
	if err != nil {
		return fmt.Errorf("import image %s: %w", ref, err)
	}
	defer body.Close()
	// The reply is a JSON message stream; a failure shows only there.
	if err := jsonmessage.DisplayJSONMessagesStream(body, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("import image %s: %w", ref, err)
	}
	fmt.Fprintf(progress, "imported %s\n", ref)
	return nil
}

// buildBinaries writes the static binaries box and gantry-etl into dir.
func buildBinaries(ctx context.Context, dir, arch string) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	for _, b := range []struct{ pkg, name string }{{boxPackage, "box"}, {etlPackage, "gantry-etl"}} {
		cmd := exec.CommandContext(ctx, goCommand(), "build", "-trimpath", "-buildvcs=false",
			"-ldflags=-s -w", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// goCommand is the go tool on PATH, else the one of the running toolchain.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// moduleRoot finds the gantry module: from this file's directory when the
// sources are where they were compiled from, else from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	var dirs []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dirs = append(dirs, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err != nil {
			continue
		}
		cmd := exec.CommandContext(ctx, goCommand(), "env", "GOMOD")
		cmd.Dir = d
		out, err := cmd.Output()
		if err != nil {
			continue
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			continue
		}
		data, err := os.ReadFile(gomod)
		if err != nil || !bytes.Contains(data, []byte("module github.com/gantry-dev/gantry\n")) {
			continue
		}
		return filepath.Dir(gomod), nil
	}
	return "", ErrNoSource
}

// ErrNoSource says BuildImage found no gantry source to build the image's
// binaries from: it runs from inside a checkout of the module.
var ErrNoSource = errors.New("samples: cannot find the github.com/gantry-dev/gantry module; run from inside it")

// packLayer returns the image's file system as a tar: /bin/box with a link
// per applet, /bin/gantry-etl, /tmp (1777), /data (0777), /root and a
// minimal /etc/passwd and /etc/group so that "user": "nobody" resolves.
func packLayer(binDir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Format = epoch, tar.FormatPAX
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("pack %s: %w", h.Name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("pack %s: %w", h.Name, err)
		}
		return nil
	}
	dir := func(name string, mode int64) error {
		return add(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}, nil)
	}
	file := func(name string, mode int64, data []byte) error {
		return add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, data)
	}

	for _, d := range []struct {
		name string
		mode int64
	}{{"bin", 0o755}, {"data", 0o777}, {"etc", 0o755}, {"root", 0o700}, {"tmp", 0o1777}} {
		if err := dir(d.name, d.mode); err != nil {
			return nil, err
		}
	}
	for _, name := range []string{"box", "gantry-etl"} {
		data, err := os.ReadFile(filepath.Join(binDir, name))
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", name, err)
		}
		if err := file("bin/"+name, 0o755, data); err != nil {
			return nil, err
		}
	}
	for _, a := range Applets {
		if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "box", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pack layer: %w", err)
	}
	return buf.Bytes(), nil
}
