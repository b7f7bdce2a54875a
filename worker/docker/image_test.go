package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/gantry-dev/gantry/worker"
)

// missingImages is a Client without any image whose pulls answer with
// body. Other methods are not called.
type missingImages struct {
	Client
	body io.ReadCloser
}

func (c missingImages) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	return image.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
}

func (c missingImages) ImagePull(ctx context.Context, ref string, _ image.PullOptions) (io.ReadCloser, error) {
	return c.body, nil
}

func (c missingImages) ImageList(context.Context, image.ListOptions) ([]image.Summary, error) {
	return nil, nil
}

// blockingBody never ends until closed, as a stuck daemon's stream would.
type blockingBody struct{ closed chan struct{} }

func (b blockingBody) Read([]byte) (int, error) { <-b.closed; return 0, io.ErrClosedPipe }
func (b blockingBody) Close() error {
	select {
	case <-b.closed:
	default:
		close(b.closed)
	}
	return nil
}

func TestPullStreamErrors(t *testing.T) {
	body := `{"status":"Pulling from library/x"}` + "\n" +
		`{"errorDetail":{"message":"manifest for x:v9 not found: manifest unknown"},"error":"manifest for x:v9 not found: manifest unknown"}` + "\n"
	r := New(missingImages{body: io.NopCloser(strings.NewReader(body))})
	err := r.ensureImage(t.Context(), "x:v9", worker.PullMissing, nil)
	if !errors.Is(err, worker.ErrImageNotFound) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Fatalf("got %v, want ErrImageNotFound saying manifest unknown", err)
	}
}

// unreachableRegistry is a Client without any image but those listed in
// tags (which it does not find by name), whose pulls fail with err, as the
// daemon's do when it cannot reach the registry.
type unreachableRegistry struct {
	Client
	err  error
	tags []string
}

func (c unreachableRegistry) ImageList(context.Context, image.ListOptions) ([]image.Summary, error) {
	return []image.Summary{{RepoTags: c.tags}, {RepoTags: []string{"<none>:<none>"}}}, nil
}

func (c unreachableRegistry) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	return image.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("no such image: " + ref)
}

func (c unreachableRegistry) ImagePull(context.Context, string, image.PullOptions) (io.ReadCloser, error) {
	return nil, c.err
}

// TestPullErrorsReadPlainly: a run's stopped reason is the error as it
// stands. It ended in Go's HTTP client's words and the sentinel's
// (Get "https://registry-1.docker.io/v2/": dial tcp: lookup ... no such
// host: worker: image not found); it says the image is not on the host and
// could not be pulled, and why in short.
func TestPullErrorsReadPlainly(t *testing.T) {
	for _, tt := range []struct{ daemon, want string }{
		{`Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.255.255.53:53: no such host`,
			`cannot reach registry-1.docker.io: no such host`},
		{`Error response from daemon: Get "https://registry.local:5000/v2/": dial tcp 10.1.2.3:5000: connect: connection refused`,
			`cannot reach registry.local:5000: connection refused`},
		{`Error response from daemon: Get "https://registry.local/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)`,
			`cannot reach registry.local: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)`},
		{`Error response from daemon: pull access denied for nosuch/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`,
			`pull access denied for nosuch/x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied`},
	} {
		r := New(unreachableRegistry{err: errors.New(tt.daemon)})
		err := r.ensureImage(t.Context(), "nosuch/x:1", worker.PullMissing, nil)
		want := `image "nosuch/x:1" is not on this worker's host and could not be pulled: ` + tt.want
		if !errors.Is(err, worker.ErrImageNotFound) || err.Error() != want {
			t.Errorf("pull failing with %q:\n got %v\nwant %s (wrapping ErrImageNotFound)", tt.daemon, err, want)
		}
	}
	err := New(unreachableRegistry{}).ensureImage(t.Context(), "nosuch/x:1", worker.PullNever, nil)
	if want := `image "nosuch/x:1" is not on this worker's host and the pull policy is never`; !errors.Is(err, worker.ErrImageNotFound) || err.Error() != want {
		t.Errorf("pull policy never: got %v, want %s", err, want)
	}
}

// TestMissingImageNamesANearOne: a misspelt image names the host's image
// whose name is close, a name without a tag read as :latest; a name close
// to none is told as before.
func TestMissingImageNamesANearOne(t *testing.T) {
	tags := []string{"gantry/samples:latest", "gantry/samples:2dc88fc8cf27", "postgres:16"}
	for ref, want := range map[string]string{
		"gantry/sampels:latest": `; did you mean "gantry/samples:latest", an image on this host?`,
		"gantry/sampels":        `; did you mean "gantry/samples:latest", an image on this host?`,
		"postgre:16":            `; did you mean "postgres:16", an image on this host?`,
		"ubuntu:22.04":          `: cannot reach registry-1.docker.io: no such host`,
	} {
		r := New(unreachableRegistry{err: errors.New(`Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host`), tags: tags})
		for _, policy := range []worker.PullPolicy{worker.PullMissing, worker.PullNever} {
			err := r.ensureImage(t.Context(), ref, policy, nil)
			if policy == worker.PullNever {
				want = strings.Replace(want, ": cannot reach registry-1.docker.io: no such host", " and the pull policy is never", 1)
			}
			if !errors.Is(err, worker.ErrImageNotFound) || !strings.HasSuffix(fmt.Sprint(err), want) {
				t.Errorf("%s, pull policy %s: %v; want it to end %q", ref, policy, err, want)
			}
		}
	}
}

func TestPullHonoursContext(t *testing.T) {
	r := New(missingImages{body: blockingBody{closed: make(chan struct{})}})
	ctx, cancel := context.WithTimeoutCause(t.Context(), 100*time.Millisecond, errors.New("pull took too long"))
	defer cancel()
	err := r.ensureImage(ctx, "x:v9", worker.PullAlways, nil)
	if err == nil || !strings.Contains(err.Error(), "pull took too long") || errors.Is(err, worker.ErrImageNotFound) {
		t.Fatalf("got %v, want the context's cause", err)
	}
}

// presentImage is a Client that has every image and counts its inspects.
type presentImage struct {
	Client
	inspects *int
}

func (c presentImage) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	*c.inspects++
	return image.InspectResponse{}, nil
}

func TestImageFoundOnceIsNotInspectedAgain(t *testing.T) {
	var inspects int
	r := New(presentImage{inspects: &inspects})
	for _, policy := range []worker.PullPolicy{worker.PullMissing, worker.PullNever, worker.PullMissing} {
		if err := r.ensureImage(t.Context(), "x:v1", policy, nil); err != nil {
			t.Fatalf("policy %s: %v", policy, err)
		}
	}
	if err := r.ensureImage(t.Context(), "y:v1", worker.PullMissing, nil); err != nil {
		t.Fatal(err)
	}
	if inspects != 2 {
		t.Errorf("inspected %d times, want once for each of two images", inspects)
	}
	// Once create has found the image gone, the next task inspects it again.
	if !r.images.forget("x:v1") {
		t.Fatal("x:v1 was not remembered")
	}
	if err := r.ensureImage(t.Context(), "x:v1", worker.PullMissing, nil); err != nil || inspects != 3 {
		t.Errorf("after forget: %v, %d inspects; want a third inspect", err, inspects)
	}
}

func TestPresentImagesAreBounded(t *testing.T) {
	var p presentImages
	for i := range maxPresentImages + 10 {
		p.add(fmt.Sprintf("img:%d", i))
	}
	if n := len(p.refs); n > maxPresentImages {
		t.Errorf("remembers %d images, want at most %d", n, maxPresentImages)
	}
	if !p.has(fmt.Sprintf("img:%d", maxPresentImages+9)) {
		t.Error("the newest image is forgotten")
	}
}
