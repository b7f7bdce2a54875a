package docker

import (
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/gantry-dev/gantry/jobs"
)

func TestNetworkBindings(t *testing.T) {
	info := container.InspectResponse{NetworkSettings: &container.NetworkSettings{NetworkSettingsBase: container.NetworkSettingsBase{
		Ports: nat.PortMap{
			"8080/tcp": {{HostIP: "0.0.0.0", HostPort: "49153"}, {HostIP: "::", HostPort: "49153"}},
			"53/udp":   {{HostIP: "", HostPort: "5353"}},
			"9000/tcp": nil, // exposed by the image, not mapped
		}}}}
	want := []jobs.NetworkBinding{
		{BindIP: "0.0.0.0", ContainerPort: 53, HostPort: 5353, Protocol: "udp"},
		{BindIP: "0.0.0.0", ContainerPort: 8080, HostPort: 49153, Protocol: "tcp"},
		{BindIP: "::", ContainerPort: 8080, HostPort: 49153, Protocol: "tcp"},
	}
	if got := networkBindings(info); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got := networkBindings(container.InspectResponse{}); got != nil {
		t.Fatalf("no network settings: %+v", got)
	}
}
