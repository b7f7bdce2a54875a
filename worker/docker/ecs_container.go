package docker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/gantry-dev/gantry/jobs"
)

// dockerDefaultCaps are the capabilities Docker gives a container; adding
// one of them back is harmless, adding any other needs --allow-privileged.
var dockerDefaultCaps = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
	"MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// applyECS maps the ECS container fields beyond the basic ones onto the
// container's configuration. It refuses what the worker does not allow
// (privileges, secrets it may not read) with a reason naming the field and
// the flag that would allow it. Secret values go into the environment only:
// no error or log line carries them.
func (r *Runtime) applyECS(tr *taskRun, c *ctr, cfg *container.Config, hc *container.HostConfig) error {
	d := c.def
	var errs []error
	refuse := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if len(d.Secrets) > 0 {
		secretEnv := make([]string, 0, len(d.Secrets))
		for i, s := range d.Secrets {
			v, err := r.secret(s)
			if err != nil {
				refuse(fmt.Sprintf("secrets[%d] (%s)", i, s.Name), "%v", err)
				continue
			}
			secretEnv = append(secretEnv, s.Name+"="+v)
		}
		// After the definition's environment, before gantry's variables.
		n := len(d.Environment)
		cfg.Env = slices.Concat(cfg.Env[:n:n], secretEnv, cfg.Env[n:])
	}

	if h := d.HealthCheck; h != nil && len(h.Command) > 0 {
		secs := func(v, def int) time.Duration {
			if v == 0 {
				v = def
			}
			return time.Duration(v) * time.Second
		}
		retries := h.Retries
		if retries == 0 {
			retries = jobs.DefaultHealthRetries
		}
		cfg.Healthcheck = &container.HealthConfig{
			Test:        h.Command,
			Interval:    secs(h.Interval, jobs.DefaultHealthInterval),
			Timeout:     secs(h.Timeout, jobs.DefaultHealthTimeout),
			Retries:     retries,
			StartPeriod: time.Duration(h.StartPeriod) * time.Second,
		}
	}

	for _, vf := range d.VolumesFrom {
		spec := tr.prefix + "-" + vf.SourceContainer
		if vf.ReadOnly {
			spec += ":ro"
		}
		hc.VolumesFrom = append(hc.VolumesFrom, spec)
	}
	for _, u := range d.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.SoftLimit, Hard: u.HardLimit})
	}
	hc.ReadonlyRootfs = d.ReadonlyRootFilesystem
	if d.Privileged {
		if !r.ecs.allowPrivileged {
			refuse("privileged", "this worker does not run privileged containers; start it with --allow-privileged to allow them")
		}
		hc.Privileged = true
	}
	if lp := d.LinuxParameters; lp != nil {
		if caps := lp.Capabilities; caps != nil {
			for _, cap := range caps.Add {
				if !slices.Contains(dockerDefaultCaps, cap) && !r.ecs.allowPrivileged {
					refuse("linuxParameters.capabilities.add", "%s is beyond Docker's default capabilities; start the worker with --allow-privileged to allow it", cap)
				}
				hc.CapAdd = append(hc.CapAdd, cap)
				hc.CapDrop = slices.DeleteFunc(hc.CapDrop, func(s string) bool { return s == cap })
			}
			for _, cap := range caps.Drop {
				if !slices.Contains(hc.CapDrop, cap) {
					hc.CapDrop = append(hc.CapDrop, cap)
				}
			}
		}
		for _, dev := range lp.Devices {
			if !r.ecs.allowPrivileged {
				refuse("linuxParameters.devices", "%s: host devices need a worker started with --allow-privileged", dev.HostPath)
			}
			perms := ""
			for _, p := range dev.Permissions {
				perms += p[:1] // read, write, mknod → r, w, m
			}
			if perms == "" {
				perms = "rwm"
			}
			hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: dev.HostPath,
				PathInContainer: cmp.Or(dev.ContainerPath, dev.HostPath), CgroupPermissions: perms})
		}
		if lp.InitProcessEnabled {
			yes := true
			hc.Init = &yes
		}
		if lp.SharedMemorySize > 0 {
			hc.ShmSize = int64(lp.SharedMemorySize) << 20
		}
		for _, t := range lp.Tmpfs {
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			hc.Tmpfs[t.ContainerPath] = strings.Join(append([]string{"size=" + strconv.Itoa(t.Size) + "m"}, t.MountOptions...), ",")
		}
		if lp.MaxSwap != nil && hc.Memory > 0 {
			hc.MemorySwap = hc.Memory + int64(*lp.MaxSwap)<<20
		}
		if lp.Swappiness != nil {
			s := int64(*lp.Swappiness)
			hc.MemorySwappiness = &s
		}
	}
	if len(d.PortMappings) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		hc.PortBindings = nat.PortMap{}
		for _, pm := range d.PortMappings {
			port := nat.Port(fmt.Sprintf("%d/%s", pm.ContainerPort, cmp.Or(pm.Protocol, "tcp")))
			cfg.ExposedPorts[port] = struct{}{}
			host := ""
			if pm.HostPort > 0 {
				host = strconv.Itoa(pm.HostPort)
			}
			hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostPort: host})
		}
	}
	cfg.Hostname = d.Hostname
	for _, h := range d.ExtraHosts {
		hc.ExtraHosts = append(hc.ExtraHosts, h.Hostname+":"+h.IPAddress)
	}
	hc.DNS = d.DNSServers
	hc.DNSSearch = d.DNSSearchDomains
	for k, v := range d.DockerLabels {
		if _, taken := cfg.Labels[k]; !taken {
			cfg.Labels[k] = v
		}
	}
	cfg.NetworkDisabled = d.DisableNetworking
	// ECS's interactive and pseudoTerminal are docker run's -i and -t: stdin
	// stays open (nothing writes to it) and the output is a terminal's,
	// one stream, which watch copies as stdout.
	cfg.OpenStdin = d.Interactive
	cfg.Tty = d.PseudoTerminal
	for _, o := range d.DockerSecurityOptions {
		key, value, ok := jobs.SecurityOption(o)
		switch {
		case !ok || key == "credentialspec":
			refuse("dockerSecurityOptions", "%q: want no-new-privileges, apparmor:PROFILE or label:VALUE", o)
			continue
		case key == "no-new-privileges":
			continue // every container has it
		case !slices.Contains(confined, key+":"+value) && !r.ecs.allowPrivileged:
			refuse("dockerSecurityOptions", "%s may loosen the container's confinement; start the worker with --allow-privileged to allow it", o)
		}
		hc.SecurityOpt = append(hc.SecurityOpt, key+"="+value)
	}
	r.namespaces(tr, &errs, hc)
	for _, sc := range d.SystemControls {
		if hc.Sysctls == nil {
			hc.Sysctls = map[string]string{}
		}
		hc.Sysctls[sc.Namespace] = sc.Value
	}
	r.taskLimits(tr, c, hc)
	return errors.Join(errs...)
}

// confined are the AppArmor and SELinux options a worker takes without
// --allow-privileged: Docker's own confinement. Any other profile, type,
// user, role or level may take a container out of it (unconfined, spc_t,
// another container's MCS level, ...), which only the host's owner can
// judge, as for privileged containers.
var confined = []string{"apparmor:docker-default", "label:type:container_t"}

// namespaces applies the task's pidMode and ipcMode. Validation leaves
// "task" only to a task of one container, whose own namespaces are the
// task's. The host's namespaces are allowed as privileged containers are.
func (r *Runtime) namespaces(tr *taskRun, errs *[]error, hc *container.HostConfig) {
	td := &tr.task.Def
	host := func(field string) {
		if !r.ecs.allowPrivileged {
			*errs = append(*errs, fmt.Errorf("%s: host shares the host's namespace; start the worker with --allow-privileged to allow it", field))
		}
	}
	if td.PidMode == jobs.NamespaceHost {
		host("pidMode")
		hc.PidMode = "host"
	}
	switch td.IpcMode {
	case jobs.NamespaceHost:
		host("ipcMode")
		hc.IpcMode = "host"
	case jobs.NamespaceNone:
		hc.IpcMode = "none"
	case jobs.NamespaceTask:
		hc.IpcMode = "private"
	}
}

// taskLimits applies the task-level cpu and memory. Docker has no limit
// shared by several containers, so each container without a memory limit
// of its own gets what the task has left after the containers that have
// one, and each container is held to the task's CPUs. A one-container task
// is bounded exactly; in a larger one no single container exceeds the task.
func (r *Runtime) taskLimits(tr *taskRun, c *ctr, hc *container.HostConfig) {
	td := &tr.task.Def
	if mem, err := td.MemoryMiB(); err == nil && mem > 0 && c.def.Memory == 0 {
		left := mem
		for _, o := range td.ContainerDefinitions {
			left -= o.Memory
		}
		if left >= 6 {
			hc.Memory = int64(left) << 20
			hc.MemorySwap = hc.Memory
		}
	}
	if cpu, err := td.CPUUnits(); err == nil && cpu > 0 {
		hc.NanoCPUs = int64(cpu) * 1e9 / 1024
	}
}

// secret reads the value a secret's valueFrom names, as the worker allows.
func (r *Runtime) secret(s jobs.Secret) (string, error) {
	ref, err := jobs.ParseSecretRef(s.ValueFrom)
	if err != nil {
		return "", err
	}
	name := ref.Name
	switch ref.Source {
	case jobs.SecretEnv:
		if !r.ecs.envAllowed(name) {
			return "", fmt.Errorf("env:%s: this worker does not share that variable; start it with --secret-env %s", name, name)
		}
		getenv := r.ecs.getenv
		if getenv == nil {
			getenv = os.LookupEnv
		}
		v, ok := getenv(name)
		if !ok {
			return "", fmt.Errorf("env:%s: not set in the worker's environment", name)
		}
		return v, nil
	}
	if r.ecs.secretsDir == "" {
		return "", fmt.Errorf("%s: this worker has no secrets directory; start it with --secrets-dir DIR", s.ValueFrom)
	}
	p := filepath.Join(r.ecs.secretsDir, filepath.FromSlash(name))
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s: no file %s under the secrets directory %s", s.ValueFrom, name, r.ecs.secretsDir)
		}
		return "", fmt.Errorf("%s: cannot read it", s.ValueFrom)
	}
	if !within(resolved, r.ecs.secretsDir) {
		return "", fmt.Errorf("%s: leads out of the secrets directory %s", s.ValueFrom, r.ecs.secretsDir)
	}
	data, err := os.ReadFile(resolved)
	if err != nil {
		// The error names the path only, never any content.
		return "", fmt.Errorf("%s: cannot read %s", s.ValueFrom, name)
	}
	if ref.JSONKey != "" {
		return jsonKey(data, ref.JSONKey, s.ValueFrom, name)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r"), nil
}

// jsonKey is the value of key in the JSON object data, as ECS takes one
// key of a Secrets Manager secret: a string as it is, any other value as
// its JSON text. Errors name the secret and the key, never any content
// (nor the JSON decoder's error, which quotes it).
func jsonKey(data []byte, key, valueFrom, file string) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return "", fmt.Errorf("%s: %s is not a JSON object, so it has no key %q", valueFrom, file, key)
	}
	raw, ok := obj[key]
	if !ok {
		return "", fmt.Errorf("%s: the JSON object in %s has no key %q", valueFrom, file, key)
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str, nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw), nil
	}
	return b.String(), nil
}
