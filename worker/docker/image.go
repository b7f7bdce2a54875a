package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/gantry-dev/gantry/jobs"
	"github.com/gantry-dev/gantry/worker"
)

// pullPolicy is the task's pull policy, missing by default.
func pullPolicy(t *worker.Task) worker.PullPolicy {
	if t.PullPolicy == "" {
		return worker.PullMissing
	}
	return t.PullPolicy
}

// ensureImages makes every image of the task present as policy says, each
// image once, before anything is created.
func (r *Runtime) ensureImages(ctx context.Context, t *worker.Task) error {
	policy := pullPolicy(t)
	done := map[string]bool{}
	for _, c := range t.Def.ContainerDefinitions {
		if done[c.Image] {
			continue
		}
		done[c.Image] = true
		if err := r.ensureImage(ctx, c.Image, policy, t.Pulling); err != nil {
			return err
		}
	}
	return nil
}

// ensureImage makes ref present as policy says; progress, when set, hears
// how a pull goes.
func (r *Runtime) ensureImage(ctx context.Context, ref string, policy worker.PullPolicy, progress func(jobs.PullProgress)) error {
	switch policy {
	case worker.PullMissing, worker.PullNever:
		if r.images.has(ref) {
			return nil
		}
		_, err := r.cli.ImageInspect(ctx, ref)
		switch {
		case err == nil:
			r.images.add(ref)
			return nil
		case !cerrdefs.IsNotFound(err):
			return fmt.Errorf("inspect image %q: %w", ref, err)
		case policy == worker.PullNever:
			return r.nearImage(ctx, ref, &imageError{fmt.Sprintf("image %q is not on this worker's host and the pull policy is never", ref)})
		}
	case worker.PullAlways:
	default:
		return fmt.Errorf("pull policy %q: want missing, always or never", policy)
	}
	if err := r.pull(ctx, ref, progress); err != nil {
		var ie *imageError
		if errors.As(err, &ie) {
			return r.nearImage(ctx, ref, ie)
		}
		return err
	}
	r.images.add(ref)
	return nil
}

// nearImage is err, about the image ref that could not be had, naming an
// image of this host whose name is close to ref's, if there is one: a
// misspelt name (gantry/sampels:latest) is more often the cause than a
// registry. Listing the images is best effort: err as it is if it fails.
func (r *Runtime) nearImage(ctx context.Context, ref string, err *imageError) error {
	if ctx.Err() != nil {
		return err
	}
	images, lerr := r.cli.ImageList(ctx, image.ListOptions{})
	if lerr != nil {
		return err
	}
	var tags []string
	for _, im := range images {
		for _, t := range im.RepoTags {
			if t != "<none>:<none>" {
				tags = append(tags, t)
			}
		}
	}
	want := ref
	if !strings.Contains(path.Base(ref), ":") && !strings.Contains(ref, "@") {
		want += ":latest" // as the daemon reads a name without a tag
	}
	if near := jobs.Nearest(want, tags); near != "" && near != want {
		return &imageError{fmt.Sprintf("%s; did you mean %q, an image on this host?", err.msg, near)}
	}
	return err
}

// errImageGone says a container could not be created because its image,
// which the runtime had found before and so did not inspect, is gone
// (docker rmi since). createWave makes it present again and creates once
// more.
var errImageGone = errors.New("image removed since it was last used")

// presentImages are the images a runtime found or pulled. A task whose
// images are all here skips their inspects, a daemon round trip each
// (1–10 ms here) in every stage hop and every run. An image removed since
// is found out at create, as docker run finds a missing one (errImageGone).
type presentImages struct {
	mu   sync.Mutex
	refs map[string]struct{}
}

// maxPresentImages bounds what a long-lived worker remembers; when full it
// starts afresh, and the next task of each image inspects it again.
const maxPresentImages = 1024

func (p *presentImages) has(ref string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.refs[ref]
	return ok
}

func (p *presentImages) add(ref string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refs == nil || len(p.refs) >= maxPresentImages {
		p.refs = make(map[string]struct{})
	}
	p.refs[ref] = struct{}{}
}

// forget drops ref and reports whether it was there.
func (p *presentImages) forget(ref string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.refs[ref]
	delete(p.refs, ref)
	return ok
}

// pull pulls ref and reads the progress stream to its end: the daemon
// reports most failures (manifest unknown, denied) inside the stream, not as
// the call's error.
func (r *Runtime) pull(ctx context.Context, ref string, progress func(jobs.PullProgress)) error {
	r.log.Info().Str("image", ref).Msg("pulling image")
	rc, err := r.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return pullError(ctx, ref, err)
	}
	defer rc.Close()
	// The body is tied to ctx, but close it too so that a daemon that stops
	// writing without closing cannot hold the decoder past cancellation.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()

	dec := json.NewDecoder(rc)
	layers := newLayerProgress(ref)
	for {
		var msg jsonmessage.JSONMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				if progress != nil {
					progress(layers.done())
				}
				return nil
			}
			return pullError(ctx, ref, err)
		}
		if layers.update(&msg) && progress != nil {
			progress(layers.progress())
		}
		if msg.Error != nil {
			return pullError(ctx, ref, errors.New(msg.Error.Message))
		}
		if msg.ErrorMessage != "" { //nolint:staticcheck // older daemons set only this field
			return pullError(ctx, ref, errors.New(msg.ErrorMessage)) //nolint:staticcheck
		}
	}
}

// pullError says why ref could not be pulled. A cancelled pull reports the
// cancellation; any other failure means the image cannot be had here.
func pullError(ctx context.Context, ref string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("pull image %q: %w", ref, context.Cause(ctx))
	}
	return &imageError{fmt.Sprintf("image %q is not on this worker's host and could not be pulled: %s", ref, pullDetail(err.Error()))}
}

// imageError is an image neither present nor pullable. It is a run's
// stopped reason as it stands: it wraps worker.ErrImageNotFound without
// ending in its text.
type imageError struct{ msg string }

func (e *imageError) Error() string { return e.msg }
func (e *imageError) Unwrap() error { return worker.ErrImageNotFound }

// pullDetail shortens the daemon's reason for a failed pull to what a user
// can act on. A registry it could not reach comes as Go's HTTP client says
// it (Get "https://registry-1.docker.io/v2/": dial tcp: lookup
// registry-1.docker.io on 10.0.0.53:53: no such host): it is the registry's
// host and the last cause (cannot reach registry-1.docker.io: no such host).
// The registry's own answers (manifest unknown, denied) are kept.
func pullDetail(msg string) string {
	msg = strings.TrimPrefix(msg, "Error response from daemon: ")
	for _, verb := range []string{"Get", "Head", "Post"} {
		rest, ok := strings.CutPrefix(msg, verb+` "`)
		if !ok {
			continue
		}
		raw, cause, ok := strings.Cut(rest, `": `)
		if !ok {
			break
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			break
		}
		// The innermost cause is the last part, as Go's net, tls and
		// http packages nest them (dial tcp: lookup ...: no such host).
		if i := strings.LastIndex(cause, ": "); i >= 0 {
			cause = cause[i+2:]
		}
		return fmt.Sprintf("cannot reach %s: %s", u.Host, cause)
	}
	return msg
}
