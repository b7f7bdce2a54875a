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
