package jobs

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The parts of Amazon ECS's container definition that the fields added to
// ContainerDefinition use. Each means in gantry what it means in ECS on EC2
// with the bridge network mode; worker/docker maps them onto Docker.

// Secret is an environment variable whose value the worker reads when the
// container is created: ValueFrom is "env:NAME" (a variable of the worker's
// environment it was told to share), "file:PATH" (a file under the worker's
// secrets directory), or an SSM parameter or Secrets Manager ARN or
// parameter name, looked up as a file under that directory (a Secrets
// Manager ARN's json-key picks one key of the JSON object the file holds;
// ParseSecretRef). The value never enters the run's spec, events or logs.
type Secret struct {
	Name      string `json:"name"`
	ValueFrom string `json:"valueFrom"`
}

// Dependency conditions of ContainerDep, as ECS names them.
const (
	DepStart    = "START"
	DepComplete = "COMPLETE"
	DepSuccess  = "SUCCESS"
	DepHealthy  = "HEALTHY"
)

// ContainerDep says that a container starts only once ContainerName has
// reached Condition.
type ContainerDep struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"`
}

// HealthCheck is a container's health check; durations are in seconds and
// zero means ECS's default (interval 30, timeout 5, retries 3, no start
// period).
type HealthCheck struct {
	Command     []string `json:"command"`
	Interval    int      `json:"interval,omitempty"`
	Timeout     int      `json:"timeout,omitempty"`
	Retries     int      `json:"retries,omitempty"`
	StartPeriod int      `json:"startPeriod,omitempty"`
}

// Health check defaults, as ECS has them.
const (
	DefaultHealthInterval = 30
	DefaultHealthTimeout  = 5
	DefaultHealthRetries  = 3
)

// VolumeFrom mounts every volume of another container of the task.
type VolumeFrom struct {
	SourceContainer string `json:"sourceContainer"`
	ReadOnly        bool   `json:"readOnly,omitempty"`
}

// Ulimit is a resource limit of the container's processes.
type Ulimit struct {
	Name      string `json:"name"`
	SoftLimit int64  `json:"softLimit"`
	HardLimit int64  `json:"hardLimit"`
}

// LinuxParameters are ECS's Linux-specific container settings.
type LinuxParameters struct {
	Capabilities       *KernelCapabilities `json:"capabilities,omitempty"`
	Devices            []Device            `json:"devices,omitempty"`
	InitProcessEnabled bool                `json:"initProcessEnabled,omitempty"`
	// SharedMemorySize is the size of /dev/shm in MiB.
	SharedMemorySize int     `json:"sharedMemorySize,omitempty"`
	Tmpfs            []Tmpfs `json:"tmpfs,omitempty"`
	// MaxSwap is the swap the container may use beyond Memory, in MiB.
	MaxSwap    *int `json:"maxSwap,omitempty"`
	Swappiness *int `json:"swappiness,omitempty"`
}

// KernelCapabilities are added to or dropped from Docker's default set.
type KernelCapabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// Device exposes a host device to the container.
type Device struct {
	HostPath      string   `json:"hostPath"`
	ContainerPath string   `json:"containerPath,omitempty"`
	Permissions   []string `json:"permissions,omitempty"`
}

// Tmpfs is a tmpfs mount; Size is in MiB.
type Tmpfs struct {
	ContainerPath string   `json:"containerPath"`
	Size          int      `json:"size"`
	MountOptions  []string `json:"mountOptions,omitempty"`
}

// PortMapping publishes a container port on the worker's host. HostPort 0
// lets Docker pick a free port, as ECS's bridge mode does.
type PortMapping struct {
	ContainerPort int    `json:"containerPort"`
	HostPort      int    `json:"hostPort,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
}

// HostEntry is a line added to the container's /etc/hosts.
type HostEntry struct {
	Hostname  string `json:"hostname"`
	IPAddress string `json:"ipAddress"`
}

// SystemControl is a namespaced kernel parameter (sysctl).
type SystemControl struct {
	Namespace string `json:"namespace"`
	Value     string `json:"value"`
}

// Resource types of ResourceRequirement, as ECS names them.
const (
	ResourceGPU                  = "GPU"
	ResourceInferenceAccelerator = "InferenceAccelerator"
)

// ResourceRequirement asks for GPUs or an Elastic Inference accelerator.
// Workers hand out neither: a GPU request is refused at register, so that
// the container does not run without it; an accelerator, which exists only
// on AWS, is ignored with a warning as the task's inferenceAccelerators are.
type ResourceRequirement struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// RestartPolicy is ECS's restart of a container within its task. Gantry
// does not restart containers in place: an enabled policy is refused at
// register (retryStrategy runs the task again).
type RestartPolicy struct {
	Enabled              bool  `json:"enabled"`
	IgnoredExitCodes     []int `json:"ignoredExitCodes,omitempty"`
	RestartAttemptPeriod int   `json:"restartAttemptPeriod,omitempty"`
}

// Namespace modes of pidMode and ipcMode.
const (
	NamespaceHost = "host"
	NamespaceTask = "task"
	NamespaceNone = "none"
)

// Docker volume scopes.
const (
	ScopeTask   = "task"
	ScopeShared = "shared"
)

// DockerVolumeConfiguration makes a task volume a Docker volume: scope task
// (the default) lives as long as the task; scope shared is named after the
// volume, outlives the task and is created when missing only with
// Autoprovision.
type DockerVolumeConfiguration struct {
	Scope         string            `json:"scope,omitempty"`
	Autoprovision bool              `json:"autoprovision,omitempty"`
	Driver        string            `json:"driver,omitempty"`
	DriverOpts    map[string]string `json:"driverOpts,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// IsShared reports whether the volume outlives the task.
func (v Volume) IsShared() bool {
	return v.DockerVolumeConfiguration != nil && v.DockerVolumeConfiguration.Scope == ScopeShared
}

// CPUUnits returns the task-level cpu in CPU units (1024 = one CPU), 0 when
// unset. ECS takes "1024" or "1 vCPU".
func (td TaskDefinition) CPUUnits() (int, error) {
	s := strings.TrimSpace(td.CPU)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q: must not be negative", td.CPU)
		}
		return n, nil
	}
	num, unit := splitUnit(s)
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || !strings.EqualFold(unit, "vcpu") {
		return 0, fmt.Errorf("%q: want CPU units (\"1024\") or vCPUs (\"1 vCPU\")", td.CPU)
	}
	return int(f * 1024), nil
}

// MemoryMiB returns the task-level memory in MiB, 0 when unset. ECS takes
// "2048" (MiB) or "2 GB".
func (td TaskDefinition) MemoryMiB() (int, error) {
	s := strings.TrimSpace(td.Memory)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("%q: must not be negative", td.Memory)
		}
		return n, nil
	}
	num, unit := splitUnit(s)
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q: want MiB (\"2048\") or GB (\"2 GB\")", td.Memory)
	}
	switch strings.ToLower(unit) {
	case "gb", "gib":
		return int(f * 1024), nil
	case "mb", "mib":
		return int(f), nil
	}
	return 0, fmt.Errorf("%q: want MiB (\"2048\") or GB (\"2 GB\")", td.Memory)
}

func splitUnit(s string) (num, unit string) {
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		return s, ""
	}
	return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
}

// Limits ECS puts on task and container fields.
const (
	// minTaskCPU and maxTaskCPU bound the task-level cpu on EC2. Well
	// below the minimum (about 10 units), the kernel refuses the CPU quota
	// Docker makes of it when the container starts.
	minTaskCPU     = 128
	maxTaskCPU     = 196608
	maxStopTimeout = 120
	maxPort        = 65535
)

var ulimitNames = []string{"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

// Capabilities are the names ECS accepts in linuxParameters.capabilities.
var Capabilities = []string{"ALL", "AUDIT_CONTROL", "AUDIT_WRITE", "BLOCK_SUSPEND", "CHOWN",
	"DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
	"LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT",
	"SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE",
	"SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM"}

// validateECS checks the fields beyond the basic ones, ECS's rules first.
func (td TaskDefinition) validateECS(bad func(path, format string, args ...any)) {
	switch td.NetworkMode {
	case "", "bridge", "awsvpc", "default":
	case "host", "none":
		bad("networkMode", "%q is not supported: every task runs on a bridge network of its own; use \"bridge\" or \"awsvpc\"", td.NetworkMode)
	default:
		bad("networkMode", "%q: want bridge, awsvpc, host or none", td.NetworkMode)
	}
	td.validateNamespaces(bad)
	taskCPU, err := td.CPUUnits()
	if err != nil {
		bad("cpu", "%s", err.Error())
	} else if strings.TrimSpace(td.CPU) != "" && (taskCPU < minTaskCPU || taskCPU > maxTaskCPU) {
		bad("cpu", "%q is %d CPU units: want %d (0.125 vCPU) to %d (192 vCPUs), as ECS takes on EC2", td.CPU, taskCPU, minTaskCPU, maxTaskCPU)
	}
	taskMem, err := td.MemoryMiB()
	if err != nil {
		bad("memory", "%s", err.Error())
	} else if taskMem > 0 && taskMem < MinMemoryMiB {
		bad("memory", "%d MiB is below Docker's minimum of %d MiB", taskMem, MinMemoryMiB)
	}
	for i, v := range td.Volumes {
		p := fmt.Sprintf("volumes[%d]", i)
		dvc := v.DockerVolumeConfiguration
		if dvc == nil {
			continue
		}
		if v.Host != nil {
			bad(p, "give host or dockerVolumeConfiguration, not both")
		}
		switch dvc.Scope {
		case "", ScopeTask:
			if dvc.Autoprovision {
				bad(p+".dockerVolumeConfiguration.autoprovision", "only a shared volume can be autoprovisioned")
			}
		case ScopeShared:
		default:
			bad(p+".dockerVolumeConfiguration.scope", "%q: want task or shared", dvc.Scope)
		}
	}

	byName := map[string]ContainerDefinition{}
	for _, c := range td.ContainerDefinitions {
		if _, dup := byName[c.Name]; !dup {
			byName[c.Name] = c
		}
	}
	sumCPU, sumMem := 0, 0
	hostPorts := map[string]string{}
	for i, c := range td.ContainerDefinitions {
		p := fmt.Sprintf("containerDefinitions[%d]", i)
		sumCPU += c.CPU
		sumMem += max(c.Memory, c.MemoryReservation)
		if c.Memory > 0 && c.MemoryReservation > c.Memory {
			bad(p+".memoryReservation", "%d MiB is above memory (%d MiB)", c.MemoryReservation, c.Memory)
		}
		if c.StopTimeout > maxStopTimeout {
			bad(p+".stopTimeout", "%d: at most %d seconds", c.StopTimeout, maxStopTimeout)
		}
		if c.StartTimeout < 0 {
			bad(p+".startTimeout", "must not be negative")
		} else if c.StartTimeout > MaxDurationSeconds {
			bad(p+".startTimeout", "%s", tooLong(c.StartTimeout))
		}
		if c.WorkingDirectory != "" && !strings.HasPrefix(c.WorkingDirectory, "/") {
			bad(p+".workingDirectory", "%q: must be an absolute path", c.WorkingDirectory)
		}
		for j, kv := range c.Environment {
			if kv.Name == "" || strings.Contains(kv.Name, "=") {
				bad(fmt.Sprintf("%s.environment[%d].name", p, j), "%q: want a variable name without '='", kv.Name)
			}
		}
		for j, s := range c.Secrets {
			sp := fmt.Sprintf("%s.secrets[%d]", p, j)
			if s.Name == "" || strings.Contains(s.Name, "=") {
				bad(sp+".name", "%q: want a variable name without '='", s.Name)
			}
			if _, err := ParseSecretRef(s.ValueFrom); err != nil {
				bad(sp+".valueFrom", "%s", err.Error())
			}
		}
		for j, d := range c.DependsOn {
			dp := fmt.Sprintf("%s.dependsOn[%d]", p, j)
			target, ok := byName[d.ContainerName]
			switch {
			case d.ContainerName == c.Name:
				bad(dp+".containerName", "a container cannot depend on itself")
			case !ok:
				bad(dp+".containerName", "no container %q in the task definition", d.ContainerName)
			}
			switch d.Condition {
			case DepStart:
			case DepComplete, DepSuccess:
				if ok && target.IsEssential() {
					bad(dp+".condition", "%s cannot target the essential container %q (it would stop the task when it exits); mark it \"essential\": false", d.Condition, d.ContainerName)
				}
			case DepHealthy:
				if ok && target.HealthCheck == nil {
					bad(dp+".condition", "HEALTHY needs a healthCheck on container %q", d.ContainerName)
				}
			default:
				bad(dp+".condition", "%q: want START, COMPLETE, SUCCESS or HEALTHY", d.Condition)
			}
		}
		if hc := c.HealthCheck; hc != nil {
			hp := p + ".healthCheck"
			if len(hc.Command) < 2 && !(len(hc.Command) == 1 && hc.Command[0] == "NONE") {
				bad(hp+".command", "want [\"CMD-SHELL\", \"script\"] or [\"CMD\", \"program\", \"args\"...]")
			} else if hc.Command[0] != "CMD" && hc.Command[0] != "CMD-SHELL" && hc.Command[0] != "NONE" {
				bad(hp+".command", "%q: the first element must be CMD or CMD-SHELL", hc.Command[0])
			}
			inRange(bad, hp+".interval", hc.Interval, 5, 300)
			inRange(bad, hp+".timeout", hc.Timeout, 2, 60)
			inRange(bad, hp+".retries", hc.Retries, 1, 10)
			if hc.StartPeriod < 0 || hc.StartPeriod > 300 {
				bad(hp+".startPeriod", "%d: want 0 to 300 seconds", hc.StartPeriod)
			}
		}
		for j, vf := range c.VolumesFrom {
			vp := fmt.Sprintf("%s.volumesFrom[%d].sourceContainer", p, j)
			if vf.SourceContainer == c.Name {
				bad(vp, "a container cannot take volumes from itself")
			} else if _, ok := byName[vf.SourceContainer]; !ok {
				bad(vp, "no container %q in the task definition", vf.SourceContainer)
			}
		}
		seenUlimit := map[string]bool{}
		for j, u := range c.Ulimits {
			up := fmt.Sprintf("%s.ulimits[%d]", p, j)
			switch {
			case !slices.Contains(ulimitNames, u.Name):
				bad(up+".name", "%q: want one of %s", u.Name, strings.Join(ulimitNames, ", "))
			case seenUlimit[u.Name]:
				bad(up+".name", "%q is set twice", u.Name)
			}
			seenUlimit[u.Name] = true
			if u.SoftLimit < 0 || u.HardLimit < 0 {
				bad(up, "limits must not be negative")
			} else if u.SoftLimit > u.HardLimit {
				bad(up+".softLimit", "%d is above hardLimit %d", u.SoftLimit, u.HardLimit)
			}
		}
		if lp := c.LinuxParameters; lp != nil {
			validateLinux(bad, p+".linuxParameters", lp, c.Memory)
		}
		for j, pm := range c.PortMappings {
			pp := fmt.Sprintf("%s.portMappings[%d]", p, j)
			if pm.ContainerPort < 1 || pm.ContainerPort > maxPort {
				bad(pp+".containerPort", "%d: want 1 to %d", pm.ContainerPort, maxPort)
			}
			if pm.HostPort < 0 || pm.HostPort > maxPort {
				bad(pp+".hostPort", "%d: want 0 (any free port) to %d", pm.HostPort, maxPort)
			}
			proto := pm.Protocol
			if proto == "" {
				proto = "tcp"
			}
			if proto != "tcp" && proto != "udp" {
				bad(pp+".protocol", "%q: want tcp or udp", pm.Protocol)
			}
			if pm.HostPort > 0 {
				key := fmt.Sprintf("%d/%s", pm.HostPort, proto)
				if prev, dup := hostPorts[key]; dup {
					bad(pp+".hostPort", "%s is also mapped by %s", key, prev)
				}
				hostPorts[key] = pp
			}
		}
		for j, l := range c.Links {
			lp := fmt.Sprintf("%s.links[%d]", p, j)
			name, alias, hasAlias := strings.Cut(l, ":")
			switch {
			case name == c.Name:
				bad(lp, "a container cannot link to itself")
			case !validName(name):
				bad(lp, "%q: want NAME or NAME:ALIAS", l)
			default:
				if _, ok := byName[name]; !ok {
					bad(lp, "no container %q in the task definition", name)
				}
			}
			if hasAlias && !validHostname(alias) {
				bad(lp, "alias %q: use letters, digits, '-' and '.'", alias)
			}
		}
		if c.Hostname != "" && !validHostname(c.Hostname) {
			bad(p+".hostname", "%q: use letters, digits, '-' and '.' (at most 253)", c.Hostname)
		}
		for j, h := range c.ExtraHosts {
			hp := fmt.Sprintf("%s.extraHosts[%d]", p, j)
			if !validHostname(h.Hostname) {
				bad(hp+".hostname", "%q: use letters, digits, '-' and '.'", h.Hostname)
			}
			if _, err := netip.ParseAddr(h.IPAddress); err != nil {
				bad(hp+".ipAddress", "%q: want an IP address", h.IPAddress)
			}
		}
		for j, s := range c.DNSServers {
			if _, err := netip.ParseAddr(s); err != nil {
				bad(fmt.Sprintf("%s.dnsServers[%d]", p, j), "%q: want an IP address", s)
			}
		}
		for k := range c.DockerLabels {
			switch {
			case k == "":
				bad(p+".dockerLabels", "a label key is empty")
			case strings.HasPrefix(k, "gantry."):
				bad(p+".dockerLabels", "%q: labels starting with \"gantry.\" are gantry's own", k)
			}
		}
		for j, sc := range c.SystemControls {
			if sc.Namespace == "" {
				bad(fmt.Sprintf("%s.systemControls[%d].namespace", p, j), "required")
			}
		}
		for j, o := range c.DockerSecurityOptions {
			validateSecurityOption(bad, fmt.Sprintf("%s.dockerSecurityOptions[%d]", p, j), o)
		}
		for j, rr := range c.ResourceRequirements {
			rp := fmt.Sprintf("%s.resourceRequirements[%d]", p, j)
			switch rr.Type {
			case ResourceGPU:
				bad(rp, "GPU: gantry's workers do not hand out GPUs, and the container would run without one")
			case ResourceInferenceAccelerator:
			default:
				bad(rp+".type", "%q: want GPU or InferenceAccelerator", rr.Type)
			}
		}
		if rp := c.RestartPolicy; rp != nil && rp.Enabled {
			bad(p+".restartPolicy.enabled", "gantry does not restart a container within its task; "+
				"leave restartPolicy out, or use the run's retryStrategy to run the task again")
		}
	}
	if taskCPU > 0 && sumCPU > taskCPU {
		bad("cpu", "the containers ask for %d CPU units in all, more than the task's %d", sumCPU, taskCPU)
	}
	if taskMem > 0 && sumMem > taskMem {
		bad("memory", "the containers ask for %d MiB in all, more than the task's %d MiB", sumMem, taskMem)
	}
	// ECS creates the source of volumesFrom and the target of a link first
	// and starts a link's target first: they order containers as dependsOn
	// does, and no order fits a cycle.
	dependsOn := func(c ContainerDefinition) []string {
		var out []string
		for _, d := range c.DependsOn {
			out = append(out, d.ContainerName)
		}
		return out
	}
	sources := func(c ContainerDefinition) []string {
		var out []string
		for _, vf := range c.VolumesFrom {
			out = append(out, vf.SourceContainer)
		}
		return append(out, c.LinkTargets()...)
	}
	startCycle := depCycle(td.ContainerDefinitions, dependsOn)
	if startCycle != nil {
		bad("containerDefinitions", "dependsOn has a cycle: %s", strings.Join(startCycle, " → "))
	}
	createCycle := depCycle(td.ContainerDefinitions, sources)
	if createCycle != nil {
		bad("containerDefinitions", "volumesFrom and links have a cycle (each names a container to create first): %s", strings.Join(createCycle, " → "))
	}
	if startCycle == nil && createCycle == nil {
		// A cycle through links alone was reported with volumesFrom.
		if cycle := depCycle(td.ContainerDefinitions, func(c ContainerDefinition) []string {
			return append(dependsOn(c), c.LinkTargets()...)
		}); cycle != nil {
			bad("containerDefinitions", "dependsOn and links have a cycle (a link's target starts first): %s", strings.Join(cycle, " → "))
		}
	}
}

// LinkTargets are the containers c links to, without their aliases.
func (c ContainerDefinition) LinkTargets() []string {
	out := make([]string, 0, len(c.Links))
	for _, l := range c.Links {
		name, _, _ := strings.Cut(l, ":")
		out = append(out, name)
	}
	return out
}

// validateNamespaces checks pidMode and ipcMode. Docker shares a
// namespace among containers only by joining one container's, which ends
// with that container; ECS keeps it in a container of its own that
// outlives the task, which gantry does not run. So "task" holds for a task
// of one container (its namespace is the task's) and is refused for more.
func (td TaskDefinition) validateNamespaces(bad func(path, format string, args ...any)) {
	for _, f := range []struct{ path, v, want string }{
		{"pidMode", td.PidMode, "host or task"},
		{"ipcMode", td.IpcMode, "host, task or none"},
	} {
		switch f.v {
		case "", NamespaceHost:
		case NamespaceNone:
			if f.path == "pidMode" {
				bad(f.path, "%q: want %s", f.v, f.want)
			}
		case NamespaceTask:
			if len(td.ContainerDefinitions) > 1 {
				bad(f.path, "%q cannot be honoured for a task of %d containers: Docker shares a namespace only through one "+
					"container's, which ends when that container exits; leave %s out for a namespace per container",
					f.v, len(td.ContainerDefinitions), f.path)
			}
		default:
			bad(f.path, "%q: want %s", f.v, f.want)
		}
	}
}

// SecurityOption splits an ECS dockerSecurityOptions entry: "no-new-privileges",
// "apparmor:PROFILE" or "label:VALUE" ('=' is taken for ':', as Docker has
// it). ok is false for any other.
func SecurityOption(o string) (key, value string, ok bool) {
	if o == "no-new-privileges" {
		return o, "", true
	}
	i := strings.IndexAny(o, ":=")
	if i < 0 {
		return "", "", false
	}
	key, value = o[:i], o[i+1:]
	switch key {
	case "apparmor", "label", "credentialspec":
		return key, value, value != ""
	}
	return "", "", false
}

func validateSecurityOption(bad func(path, format string, args ...any), path, o string) {
	key, _, ok := SecurityOption(o)
	switch {
	case !ok:
		bad(path, "%q: want no-new-privileges, apparmor:PROFILE or label:VALUE", o)
	case key == "credentialspec":
		bad(path, "%q: credential specs are for Windows containers, and gantry runs Linux ones", o)
	}
}

func inRange(bad func(path, format string, args ...any), path string, v, lo, hi int) {
	if v != 0 && (v < lo || v > hi) {
		bad(path, "%d: want %d to %d seconds", v, lo, hi)
	}
}

func validateLinux(bad func(path, format string, args ...any), p string, lp *LinuxParameters, memory int) {
	if caps := lp.Capabilities; caps != nil {
		for j, name := range caps.Add {
			if !slices.Contains(Capabilities, name) {
				bad(fmt.Sprintf("%s.capabilities.add[%d]", p, j), "%q: not a capability ECS knows (%s)", name, nearestHint(name, Capabilities))
			}
		}
		for j, name := range caps.Drop {
			if !slices.Contains(Capabilities, name) {
				bad(fmt.Sprintf("%s.capabilities.drop[%d]", p, j), "%q: not a capability ECS knows (%s)", name, nearestHint(name, Capabilities))
			}
		}
	}
	for j, d := range lp.Devices {
		if !strings.HasPrefix(d.HostPath, "/") {
			bad(fmt.Sprintf("%s.devices[%d].hostPath", p, j), "%q: must be an absolute path", d.HostPath)
		}
		for _, perm := range d.Permissions {
			if perm != "read" && perm != "write" && perm != "mknod" {
				bad(fmt.Sprintf("%s.devices[%d].permissions", p, j), "%q: want read, write or mknod", perm)
			}
		}
	}
	if lp.SharedMemorySize < 0 {
		bad(p+".sharedMemorySize", "must not be negative")
	}
	for j, t := range lp.Tmpfs {
		tp := fmt.Sprintf("%s.tmpfs[%d]", p, j)
		if !strings.HasPrefix(t.ContainerPath, "/") {
			bad(tp+".containerPath", "%q: must be an absolute path", t.ContainerPath)
		}
		if t.Size <= 0 {
			bad(tp+".size", "%d: want a size in MiB above 0", t.Size)
		}
		for _, o := range t.MountOptions {
			if strings.ContainsAny(o, ",") || o == "" {
				bad(tp+".mountOptions", "%q: one option per element", o)
			}
		}
	}
	if lp.MaxSwap != nil {
		if *lp.MaxSwap < 0 {
			bad(p+".maxSwap", "must not be negative")
		} else if memory == 0 {
			bad(p+".maxSwap", "needs the container's memory to be set")
		}
	}
	if lp.Swappiness != nil && (*lp.Swappiness < 0 || *lp.Swappiness > 100) {
		bad(p+".swappiness", "%d: want 0 to 100", *lp.Swappiness)
	}
}

func nearestHint(name string, candidates []string) string {
	if s := Nearest(name, candidates); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "see linuxParameters in the ECS documentation"
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '.' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// depCycle returns a cycle of the containers that edges says each one
// needs first, first container repeated at the end, or nil.
func depCycle(cs []ContainerDefinition, edges func(ContainerDefinition) []string) []string {
	names := make([]string, len(cs))
	deps := map[string][]string{}
	for i, c := range cs {
		names[i] = c.Name
		deps[c.Name] = append(deps[c.Name], edges(c)...)
	}
	return findCycle(names, func(n string) []string { return deps[n] })
}

// Secret sources of ParseSecretRef.
const (
	SecretEnv  = "env"
	SecretFile = "file"
)

// SecretRef is where a secret's value comes from.
type SecretRef struct {
	// Source is SecretEnv or SecretFile.
	Source string
	// Name is the worker's variable (SecretEnv) or the path of a file
	// under the worker's secrets directory (SecretFile).
	Name string
	// JSONKey, the json-key of a Secrets Manager ARN, makes the value
	// that of this key of the JSON object the file holds.
	JSONKey string
}

// secretCurrent is the version stage of a Secrets Manager secret's
// current version, the one a secrets file holds.
const secretCurrent = "AWSCURRENT"

// ParseSecretRef tells where a secret's value comes from: a variable of
// the worker's environment ("env:NAME") or a file under the worker's
// secrets directory ("file:PATH"). SSM parameter and Secrets Manager ARNs,
// and bare parameter names, map to files named after the parameter or
// secret, so that ECS task definitions work unchanged. A Secrets Manager
// ARN's json-key is kept in JSONKey; a version-stage other than AWSCURRENT
// or a version-id is refused, as a file holds one version.
func ParseSecretRef(valueFrom string) (SecretRef, error) {
	v := valueFrom
	var name, jsonKey string
	switch {
	case v == "":
		return SecretRef{}, fmt.Errorf("required: env:NAME, file:PATH or an SSM or Secrets Manager ARN")
	case strings.HasPrefix(v, "env:"):
		name = strings.TrimPrefix(v, "env:")
		if name == "" || strings.ContainsAny(name, "= \t\n") {
			return SecretRef{}, fmt.Errorf("%q: want env:NAME", v)
		}
		return SecretRef{Source: SecretEnv, Name: name}, nil
	case strings.HasPrefix(v, "file:"):
		name = strings.TrimPrefix(v, "file:")
	case strings.HasPrefix(v, "arn:"):
		// arn:aws:ssm:REGION:ACCOUNT:parameter/NAME or
		// arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key:stage:version]
		parts := strings.SplitN(v, ":", 7)
		if len(parts) < 6 {
			return SecretRef{}, fmt.Errorf("%q: not an ARN", v)
		}
		switch parts[2] {
		case "ssm":
			name = strings.TrimPrefix(parts[5], "parameter")
			if len(parts) == 7 {
				name += ":" + parts[6]
			}
		case "secretsmanager":
			fields := []string{}
			if len(parts) == 7 {
				fields = strings.Split(parts[6], ":")
			}
			if parts[5] != "secret" || len(fields) == 0 || len(fields) > 4 {
				return SecretRef{}, fmt.Errorf("%q: want arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key:version-stage:version-id]", v)
			}
			fields = append(fields, "", "", "")
			name, jsonKey = fields[0], fields[1]
			if stage := fields[2]; stage != "" && stage != secretCurrent {
				return SecretRef{}, fmt.Errorf("%q: version-stage %s cannot be honoured: the worker reads the secret from a file under its --secrets-dir, which holds one version, taken as %s; leave version-stage empty", v, stage, secretCurrent)
			}
			if id := fields[3]; id != "" {
				return SecretRef{}, fmt.Errorf("%q: version-id %s cannot be honoured: the worker reads the secret from a file under its --secrets-dir, which holds one version, taken as %s; leave version-id empty", v, id, secretCurrent)
			}
		default:
			return SecretRef{}, fmt.Errorf("%q: only SSM parameter and Secrets Manager ARNs name secrets", v)
		}
	default:
		name = v
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || strings.Contains(name, "\x00") || slices.Contains(strings.Split(name, "/"), "..") {
		return SecretRef{}, fmt.Errorf("%q: want a relative path without \"..\"", v)
	}
	return SecretRef{Source: SecretFile, Name: name, JSONKey: jsonKey}, nil
}
