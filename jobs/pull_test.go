package jobs

import "testing"

func TestPullProgressString(t *testing.T) {
	tests := []struct {
		p    PullProgress
		want string
	}{
		{PullProgress{Image: "etl:3"}, "pulling image etl:3"},
		{PullProgress{Image: "etl:3", Layers: 5, LayersDone: 2}, "pulling image etl:3: 2 of 5 layers"},
		{PullProgress{Image: "etl:3", Layers: 5, LayersDone: 2, Current: 12_100_000, Total: 40_000_000},
			"pulling image etl:3: 12.1 MB of 40.0 MB, 2 of 5 layers"},
		{PullProgress{Image: "etl:3", Layers: 5, LayersDone: 5, Done: true}, "pulled image etl:3"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestApplyKeepsPullReasonAndBindings(t *testing.T) {
	r := newRun(0)
	pulling := ev(1, 2, StatusStarting)
	pulling.Pull = &PullProgress{Image: "etl:3", Layers: 2}
	pulling.StatusReason = pulling.Pull.String()
	r.Apply(ev(1, 1, StatusStarting))
	if !r.Apply(pulling) || r.StatusReason != "pulling image etl:3: 0 of 2 layers" {
		t.Fatalf("pulling: applied, reason %q", r.StatusReason)
	}
	running := ev(1, 3, StatusRunning)
	bindings := []NetworkBinding{{BindIP: "0.0.0.0", ContainerPort: 80, HostPort: 49153, Protocol: "tcp"}}
	running.Containers = []ContainerResult{{Name: "web", NetworkBindings: bindings}}
	r.Apply(running)
	if r.StatusReason != "" || len(r.Containers) != 1 || r.Containers[0].NetworkBindings[0].HostPort != 49153 ||
		len(r.Attempts[0].Containers) != 1 {
		t.Fatalf("running: reason %q containers %+v attempt %+v", r.StatusReason, r.Containers, r.Attempts[0].Containers)
	}
	done := ev(1, 4, StatusSucceeded)
	done.ExitCode = intp(0)
	done.Containers = []ContainerResult{{Name: "web", ExitCode: intp(0), NetworkBindings: bindings}}
	r.Apply(done)
	if r.Containers[0].ExitCode == nil || len(r.Containers[0].NetworkBindings) != 1 {
		t.Fatalf("ended: %+v", r.Containers)
	}
}
