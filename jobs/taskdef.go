package jobs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MinMemoryMiB is the least memory limit Docker takes, in MiB: a
// container's or a task's memory below it is refused.
const MinMemoryMiB = 6

// KeyValue is an ECS name/value pair, used for environment variables.
type KeyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ContainerDefinition is one container of an ECS task definition. Only the
// fields gantry acts on are typed here; the ECS issue widens it.
type ContainerDefinition struct {
	Name              string       `json:"name"`
	Image             string       `json:"image"`
	Command           []string     `json:"command,omitempty"`
	EntryPoint        []string     `json:"entryPoint,omitempty"`
	Environment       []KeyValue   `json:"environment,omitempty"`
	Essential         *bool        `json:"essential,omitempty"`
	CPU               int          `json:"cpu,omitempty"`
	Memory            int          `json:"memory,omitempty"`
	MemoryReservation int          `json:"memoryReservation,omitempty"`
	WorkingDirectory  string       `json:"workingDirectory,omitempty"`
	User              string       `json:"user,omitempty"`
	StopTimeout       int          `json:"stopTimeout,omitempty"`
	MountPoints       []MountPoint `json:"mountPoints,omitempty"`

	// The rest of ECS's container definition, in ecs.go's terms.
	Secrets                []Secret          `json:"secrets,omitempty"`
	DependsOn              []ContainerDep    `json:"dependsOn,omitempty"`
	HealthCheck            *HealthCheck      `json:"healthCheck,omitempty"`
	VolumesFrom            []VolumeFrom      `json:"volumesFrom,omitempty"`
	Ulimits                []Ulimit          `json:"ulimits,omitempty"`
	ReadonlyRootFilesystem bool              `json:"readonlyRootFilesystem,omitempty"`
	Privileged             bool              `json:"privileged,omitempty"`
	LinuxParameters        *LinuxParameters  `json:"linuxParameters,omitempty"`
	StartTimeout           int               `json:"startTimeout,omitempty"`
	PortMappings           []PortMapping     `json:"portMappings,omitempty"`
	Links                  []string          `json:"links,omitempty"`
	Hostname               string            `json:"hostname,omitempty"`
	ExtraHosts             []HostEntry       `json:"extraHosts,omitempty"`
	DNSServers             []string          `json:"dnsServers,omitempty"`
	DNSSearchDomains       []string          `json:"dnsSearchDomains,omitempty"`
	DockerLabels           map[string]string `json:"dockerLabels,omitempty"`
	DisableNetworking      bool              `json:"disableNetworking,omitempty"`
	SystemControls         []SystemControl   `json:"systemControls,omitempty"`
	DockerSecurityOptions  []string          `json:"dockerSecurityOptions,omitempty"`
	Interactive            bool              `json:"interactive,omitempty"`
	PseudoTerminal         bool              `json:"pseudoTerminal,omitempty"`
	// ResourceRequirements and RestartPolicy are typed to be refused
	// where they ask what a worker cannot do (ecs.go).
	ResourceRequirements []ResourceRequirement `json:"resourceRequirements,omitempty"`
	RestartPolicy        *RestartPolicy        `json:"restartPolicy,omitempty"`
}

// MountPoint mounts a task volume into a container.
type MountPoint struct {
	SourceVolume  string `json:"sourceVolume"`
	ContainerPath string `json:"containerPath"`
	ReadOnly      bool   `json:"readOnly,omitempty"`
}

// Volume is a task volume: a bind mount of Host.SourcePath, or, without a
// source path, a scratch volume that lives as long as the task.
type Volume struct {
	Name string      `json:"name"`
	Host *HostVolume `json:"host,omitempty"`
	// DockerVolumeConfiguration makes it a Docker volume (ecs.go).
	DockerVolumeConfiguration *DockerVolumeConfiguration `json:"dockerVolumeConfiguration,omitempty"`
}

// HostVolume names a directory of the worker's host.
type HostVolume struct {
	SourcePath string `json:"sourcePath,omitempty"`
}

// IsEssential reports whether the task stops when this container stops.
// ECS treats a container as essential unless it says otherwise.
func (c ContainerDefinition) IsEssential() bool { return c.Essential == nil || *c.Essential }

// TaskDefinition is an Amazon ECS task definition.
type TaskDefinition struct {
	Family               string                `json:"family"`
	Revision             int                   `json:"revision,omitempty"`
	ContainerDefinitions []ContainerDefinition `json:"containerDefinitions"`
	CPU                  string                `json:"cpu,omitempty"`
	Memory               string                `json:"memory,omitempty"`
	Volumes              []Volume              `json:"volumes,omitempty"`
	// NetworkMode is accepted as ECS has it; every task gets a bridge
	// network of its own whatever it says (ecs.go).
	NetworkMode string `json:"networkMode,omitempty"`
	// PidMode and IpcMode are ECS's process and IPC namespaces of the
	// task's containers (ecs.go).
	PidMode string `json:"pidMode,omitempty"`
	IpcMode string `json:"ipcMode,omitempty"`
	// Tags are ECS's task definition tags (ECS's list of {key, value}):
	// a run started with propagateTags TASK_DEFINITION carries them, under
	// its own (tags.go).
	Tags TagList `json:"tags,omitempty"`
	// PlacementConstraints are ECS's, those of type memberOf on a worker
	// label (attribute:K == V, attribute:K != V) only (constraints.go):
	// the definition's runs go to the workers whose labels satisfy them.
	PlacementConstraints []PlacementConstraint `json:"placementConstraints,omitempty"`
}

// Ref is the family:revision a run names, or "inline" for an unregistered one.
func (td TaskDefinition) Ref() string {
	if td.Revision == 0 {
		return td.Family
	}
	return td.Family + ":" + strconv.Itoa(td.Revision)
}

// ParseTaskDefinition decodes an ECS task definition and validates it.
// It is DecodeTaskDefinition without the warnings.
func ParseTaskDefinition(data []byte) (*TaskDefinition, error) {
	td, _, err := DecodeTaskDefinition(data)
	return td, err
}

// Validate collects every problem of the task definition, each naming its
// field path.
func (td TaskDefinition) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if td.Family == "" {
		bad("family", "required")
	} else if !validName(td.Family) {
		bad("family", "%q: use letters, digits, '-' and '_' (at most 255)", td.Family)
	}
	if len(td.ContainerDefinitions) == 0 {
		bad("containerDefinitions", "at least one container is required")
	}
	if err := td.Tags.Validate("tags"); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	errs = append(errs, td.validatePlacement()...) // constraints.go
	volumes := map[string]bool{}
	for i, v := range td.Volumes {
		p := fmt.Sprintf("volumes[%d]", i)
		switch {
		case !validName(v.Name):
			bad(p+".name", "%q: use letters, digits, '-' and '_'", v.Name)
		case volumes[v.Name]:
			bad(p+".name", "%q is used twice", v.Name)
		}
		volumes[v.Name] = true
		if v.Host != nil && v.Host.SourcePath != "" && !strings.HasPrefix(v.Host.SourcePath, "/") {
			bad(p+".host.sourcePath", "%q: must be an absolute path", v.Host.SourcePath)
		}
	}
	seen := map[string]bool{}
	essential := false
	for i, c := range td.ContainerDefinitions {
		p := fmt.Sprintf("containerDefinitions[%d]", i)
		switch {
		case c.Name == "":
			bad(p+".name", "required")
		case !validName(c.Name):
			bad(p+".name", "%q: use letters, digits, '-' and '_'", c.Name)
		case seen[c.Name]:
			bad(p+".name", "%q is used twice", c.Name)
		}
		seen[c.Name] = true
		if c.Image == "" {
			bad(p+".image", "required")
		}
		if c.CPU < 0 {
			bad(p+".cpu", "must not be negative")
		}
		if c.Memory < 0 {
			bad(p+".memory", "must not be negative")
		} else if c.Memory > 0 && c.Memory < MinMemoryMiB {
			bad(p+".memory", "%d MiB is below Docker's minimum of %d MiB", c.Memory, MinMemoryMiB)
		}
		if c.MemoryReservation < 0 {
			bad(p+".memoryReservation", "must not be negative")
		}
		if c.StopTimeout < 0 {
			bad(p+".stopTimeout", "must not be negative")
		}
		if c.IsEssential() {
			essential = true
		}
		for j, m := range c.MountPoints {
			mp := fmt.Sprintf("%s.mountPoints[%d]", p, j)
			if !volumes[m.SourceVolume] {
				bad(mp+".sourceVolume", "no volume %q in volumes", m.SourceVolume)
			}
			if !strings.HasPrefix(m.ContainerPath, "/") {
				bad(mp+".containerPath", "%q: must be an absolute path", m.ContainerPath)
			}
		}
	}
	if len(td.ContainerDefinitions) > 0 && !essential {
		bad("containerDefinitions", "at least one container must be essential")
	}
	td.validateECS(bad)
	return errors.Join(errs...)
}

// validName reports whether s is usable as a family or container name and as
// a NATS subject token.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ParseRef splits "family[:revision]"; revision 0 means the latest.
func ParseRef(ref string) (family string, revision int, err error) {
	family, rev, ok := strings.Cut(ref, ":")
	if !validName(family) {
		return "", 0, fmt.Errorf("task definition %q: want family[:revision]", ref)
	}
	if !ok {
		return family, 0, nil
	}
	revision, err = strconv.Atoi(rev)
	if err != nil || revision < 1 {
		return "", 0, fmt.Errorf("task definition %q: revision must be a positive number", ref)
	}
	return family, revision, nil
}

// FieldError is a validation problem of one field.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }
