package jobs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// ecsTaskDef is shaped like a task definition written for ECS, with the
// fields that only mean something on AWS.
const ecsTaskDef = `{
  "family": "web",
  "taskRoleArn": "arn:aws:iam::123456789012:role/web",
  "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "1 vCPU",
  "memory": "2 GB",
  "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
  "volumes": [
    {"name": "scratch", "host": {}},
    {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local", "labels": {"a": "b"}}}
  ],
  "containerDefinitions": [
    {
      "name": "db",
      "image": "postgres:16",
      "essential": false,
      "memoryReservation": 256,
      "healthCheck": {"command": ["CMD-SHELL", "pg_isready"], "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 10},
      "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web"}},
      "secrets": [{"name": "POSTGRES_PASSWORD", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/web/db-password"}]
    },
    {
      "name": "app",
      "image": "nginx:1.27",
      "cpu": 512,
      "memory": 512,
      "entryPoint": ["/docker-entrypoint.sh"],
      "command": ["nginx", "-g", "daemon off;"],
      "environment": [{"name": "MODE", "value": "prod"}],
      "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"}],
      "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": false}],
      "volumesFrom": [{"sourceContainer": "db", "readOnly": true}],
      "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
      "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
      "linuxParameters": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["MKNOD"]}, "initProcessEnabled": true,
        "sharedMemorySize": 64, "tmpfs": [{"containerPath": "/tmp", "size": 32, "mountOptions": ["noexec"]}]},
      "readonlyRootFilesystem": true,
      "stopTimeout": 10,
      "startTimeout": 60,
      "links": ["db:database"],
      "hostname": "app",
      "extraHosts": [{"hostname": "metadata", "ipAddress": "10.0.0.1"}],
      "dnsServers": ["1.1.1.1"],
      "dockerLabels": {"team": "web"},
      "workingDirectory": "/srv",
      "user": "1000:1000",
      "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hub"}
    }
  ],
  "tags": [{"key": "team", "value": "web"}]
}`

func TestDecodeECSTaskDefinition(t *testing.T) {
	td, warn, err := DecodeTaskDefinition([]byte(ecsTaskDef))
	if err != nil {
		t.Fatal(err)
	}
	want := Warnings{
		"ignored fields that only mean something on AWS: containerDefinitions[0].logConfiguration, " +
			"containerDefinitions[1].portMappings[0].appProtocol, containerDefinitions[1].portMappings[0].name, " +
			"containerDefinitions[1].repositoryCredentials, executionRoleArn, requiresCompatibilities, runtimePlatform, taskRoleArn",
		`networkMode "awsvpc": the task gets a bridge network of its own, as with "bridge"`,
	}
	if strings.Join(warn, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warn, "\n"), strings.Join(want, "\n"))
	}
	if len(td.Tags) != 1 || td.Tags[0].Key != "team" || td.Tags[0].Value != "web" {
		t.Errorf("tags %+v, want team=web kept for propagateTags", td.Tags)
	}
	app := td.ContainerDefinitions[1]
	if app.PortMappings[0].HostPort != 8080 || app.Ulimits[0].HardLimit != 4096 || !app.LinuxParameters.InitProcessEnabled ||
		app.DependsOn[0].Condition != DepHealthy || app.Links[0] != "db:database" || td.Volumes[1].DockerVolumeConfiguration.Driver != "local" {
		t.Errorf("fields lost: %+v", app)
	}
	if cpu, _ := td.CPUUnits(); cpu != 1024 {
		t.Errorf("cpu = %d, want 1024", cpu)
	}
	if mem, _ := td.MemoryMiB(); mem != 2048 {
		t.Errorf("memory = %d, want 2048", mem)
	}
	// What gantry stores and describes registers again, unchanged.
	data, _ := json.Marshal(RegisteredTaskDefinition{TaskDefinition: *td, Status: TaskDefActive})
	again, _, err := DecodeTaskDefinition(data)
	if err != nil {
		t.Fatalf("describe output does not register again: %v", err)
	}
	a, _ := json.Marshal(again)
	b, _ := json.Marshal(td)
	if string(a) != string(b) {
		t.Errorf("round trip changed the task definition:\n%s\n%s", a, b)
	}
}

// The ECS fields that Docker has too are kept for the worker, not dropped
// as if they meant something only on AWS.
func TestDecodeDockerFields(t *testing.T) {
	td, warn, err := DecodeTaskDefinition([]byte(`{"family": "f", "pidMode": "host", "ipcMode": "none",
		"inferenceAccelerators": [{"deviceName": "d1", "deviceType": "eia2.medium"}],
		"containerDefinitions": [{"name": "main", "image": "i",
		  "dockerSecurityOptions": ["no-new-privileges", "apparmor:etl-profile", "label=level:s0:c100,c200"],
		  "interactive": true, "pseudoTerminal": true, "restartPolicy": {"enabled": false},
		  "resourceRequirements": [{"type": "InferenceAccelerator", "value": "d1"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Warnings{
		"ignored fields that only mean something on AWS: inferenceAccelerators",
		"ignored InferenceAccelerator resource requirements (Amazon Elastic Inference, only on AWS): containerDefinitions[0].resourceRequirements[0]",
	}
	if strings.Join(warn, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warn, "\n"), strings.Join(want, "\n"))
	}
	c := td.ContainerDefinitions[0]
	if td.PidMode != "host" || td.IpcMode != "none" || !c.Interactive || !c.PseudoTerminal || len(c.DockerSecurityOptions) != 3 ||
		c.RestartPolicy == nil || c.RestartPolicy.Enabled {
		t.Errorf("fields lost: %+v %+v", td, c)
	}
	// "task" in a task of one container is that container's own namespace.
	if _, _, err := DecodeTaskDefinition([]byte(`{"family": "f", "pidMode": "task", "ipcMode": "task",
		"containerDefinitions": [{"name": "main", "image": "i"}]}`)); err != nil {
		t.Errorf("task namespaces of one container: %v", err)
	}
}

func TestDecodeAcceptsDescribeOutput(t *testing.T) {
	td, _, err := DecodeTaskDefinition([]byte(`{"taskDefinition": {"family": "f", "revision": 3, "status": "ACTIVE",
		"containerDefinitions": [{"name": "main", "image": "busybox"}]}}`))
	if err != nil || td.Family != "f" {
		t.Fatalf("got %+v, %v", td, err)
	}
}

func TestDecodeMalformedTaskDefinitions(t *testing.T) {
	const base = `"family": "f", "containerDefinitions": [{"name": "main", "image": "busybox"`
	tests := []struct {
		name, json string
		want       []string
	}{
		{"not JSON", `{"family": "f",`, []string{"task definition: invalid JSON: unexpected end of input"}},
		{"syntax error", "{\n  \"family\": \"f\"\n  \"x\": 1}", []string{
			`task definition: invalid JSON at line 3, column 3: invalid character '"' after object key:value pair`}},
		{"array", `[]`, []string{"task definition: want a JSON object, got an array"}},
		{"trailing data", `{"family": "f"} {}`, []string{"task definition: unexpected data after the JSON object"}},
		{"misspelled container field", `{` + base + `, "memmory": 512}]}`, []string{
			`containerDefinitions[0].memmory: unknown field; did you mean "memory"?`}},
		{"misspelled task field", `{` + base + `}], "volumnes": []}`, []string{
			`volumnes: unknown field; did you mean "volumes"?`}},
		{"wrong case", `{` + base + `, "Essential": true}]}`, []string{
			`containerDefinitions[0].Essential: unknown field; did you mean "essential"?`}},
		{"unknown without a near field", `{` + base + `, "flux": {"a": 1}}]}`, []string{
			`containerDefinitions[0].flux: unknown field`}},
		{"nested unknown", `{` + base + `, "healthCheck": {"command": ["CMD", "true"], "intervall": 5}}]}`, []string{
			`containerDefinitions[0].healthCheck.intervall: unknown field; did you mean "interval"?`}},
		{"wrong kinds", `{"family": 7, "containerDefinitions": [{"name": "main", "image": "busybox", "memory": "512", "essential": "yes", "command": "echo"}]}`, []string{
			`containerDefinitions[0].command: want an array, got the string "echo"`,
			`containerDefinitions[0].essential: want true or false, got the string "yes"`,
			`containerDefinitions[0].memory: want a number, got the string "512"`,
			`family: want a string, got the number 7`,
		}},
		{"fraction", `{` + base + `, "cpu": 0.5}]}`, []string{`containerDefinitions[0].cpu: 0.5: want a whole number`}},
		{"every problem at once", `{"family": "bad family!", "containerDefinitions": [
			{"name": "db", "image": "postgres", "essential": true},
			{"name": "app", "image": "", "memory": 4, "memoryReservation": 8,
			 "dependsOn": [{"containerName": "db", "condition": "SUCCESS"}, {"containerName": "nope", "condition": "START"},
			               {"containerName": "db", "condition": "READY"}],
			 "mountPoints": [{"sourceVolume": "data", "containerPath": "data"}],
			 "ulimits": [{"name": "files", "softLimit": 10, "hardLimit": 5}],
			 "portMappings": [{"containerPort": 0, "protocol": "sctp"}],
			 "healthCheck": {"command": ["curl", "x"], "interval": 1},
			 "linuxParameters": {"capabilities": {"add": ["SYS_ADMN"]}, "tmpfs": [{"containerPath": "/t", "size": 0}]},
			 "secrets": [{"name": "PW", "valueFrom": "file:../etc/shadow"}],
			 "links": ["ghost"], "dnsServers": ["dns.example"], "stopTimeout": 600,
			 "dockerLabels": {"gantry.run": "x"}}]}`, []string{
			`family: "bad family!": use letters, digits, '-' and '_' (at most 255)`,
			`containerDefinitions[1].image: required`,
			`containerDefinitions[1].memory: 4 MiB is below Docker's minimum of 6 MiB`,
			`containerDefinitions[1].mountPoints[0].sourceVolume: no volume "data" in volumes`,
			`containerDefinitions[1].mountPoints[0].containerPath: "data": must be an absolute path`,
			`containerDefinitions[1].memoryReservation: 8 MiB is above memory (4 MiB)`,
			`containerDefinitions[1].stopTimeout: 600: at most 120 seconds`,
			`containerDefinitions[1].secrets[0].valueFrom: "file:../etc/shadow": want a relative path without ".."`,
			`containerDefinitions[1].dependsOn[0].condition: SUCCESS cannot target the essential container "db" (it would stop the task when it exits); mark it "essential": false`,
			`containerDefinitions[1].dependsOn[1].containerName: no container "nope" in the task definition`,
			`containerDefinitions[1].dependsOn[2].condition: "READY": want START, COMPLETE, SUCCESS or HEALTHY`,
			`containerDefinitions[1].healthCheck.command: "curl": the first element must be CMD or CMD-SHELL`,
			`containerDefinitions[1].healthCheck.interval: 1: want 5 to 300 seconds`,
			`containerDefinitions[1].ulimits[0].name: "files": want one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack`,
			`containerDefinitions[1].ulimits[0].softLimit: 10 is above hardLimit 5`,
			`containerDefinitions[1].linuxParameters.capabilities.add[0]: "SYS_ADMN": not a capability ECS knows (did you mean "SYS_ADMIN"?)`,
			`containerDefinitions[1].linuxParameters.tmpfs[0].size: 0: want a size in MiB above 0`,
			`containerDefinitions[1].portMappings[0].containerPort: 0: want 1 to 65535`,
			`containerDefinitions[1].portMappings[0].protocol: "sctp": want tcp or udp`,
			`containerDefinitions[1].links[0]: no container "ghost" in the task definition`,
			`containerDefinitions[1].dnsServers[0]: "dns.example": want an IP address`,
			`containerDefinitions[1].dockerLabels: "gantry.run": labels starting with "gantry." are gantry's own`,
		}},
		{"dependency cycle", `{"family": "f", "containerDefinitions": [
			{"name": "a", "image": "i", "dependsOn": [{"containerName": "b", "condition": "START"}]},
			{"name": "b", "image": "i", "essential": false, "dependsOn": [{"containerName": "a", "condition": "START"}]}]}`, []string{
			`containerDefinitions: dependsOn has a cycle: a → b → a`}},
		{"empty label key", `{` + base + `, "dockerLabels": {"": "x", "team": "etl"}}]}`, []string{
			`containerDefinitions[0].dockerLabels: a label key is empty`}},
		{"volumesFrom cycle", `{"family": "f", "containerDefinitions": [
			{"name": "a", "image": "i", "volumesFrom": [{"sourceContainer": "b"}]},
			{"name": "b", "image": "i", "essential": false, "volumesFrom": [{"sourceContainer": "a"}]}]}`, []string{
			`containerDefinitions: volumesFrom and links have a cycle (each names a container to create first): a → b → a`}},
		{"volumesFrom and links cycle", `{"family": "f", "containerDefinitions": [
			{"name": "a", "image": "i", "links": ["b:bee"]},
			{"name": "b", "image": "i", "essential": false, "volumesFrom": [{"sourceContainer": "c"}]},
			{"name": "c", "image": "i", "essential": false, "links": ["a"]}]}`, []string{
			`containerDefinitions: volumesFrom and links have a cycle (each names a container to create first): a → b → c → a`}},
		{"dependsOn and volumesFrom cycles", `{"family": "f", "containerDefinitions": [
			{"name": "a", "image": "i", "dependsOn": [{"containerName": "b", "condition": "START"}]},
			{"name": "b", "image": "i", "essential": false, "dependsOn": [{"containerName": "a", "condition": "START"}]},
			{"name": "c", "image": "i", "essential": false, "volumesFrom": [{"sourceContainer": "d"}]},
			{"name": "d", "image": "i", "essential": false, "volumesFrom": [{"sourceContainer": "c"}]}]}`, []string{
			`containerDefinitions: dependsOn has a cycle: a → b → a`,
			`containerDefinitions: volumesFrom and links have a cycle (each names a container to create first): c → d → c`}},
		{"dependsOn and links cycle", `{"family": "f", "containerDefinitions": [
			{"name": "a", "image": "i", "links": ["b"]},
			{"name": "b", "image": "i", "essential": false, "dependsOn": [{"containerName": "a", "condition": "START"}]}]}`, []string{
			`containerDefinitions: dependsOn and links have a cycle (a link's target starts first): a → b → a`}},
		{"what Docker cannot do as ECS does", `{"family": "f", "pidMode": "task", "ipcMode": "shareable", "containerDefinitions": [
			{"name": "a", "image": "i", "dockerSecurityOptions": ["seccomp:unconfined", "credentialspec:file://gmsa.json", "apparmor:"],
			 "resourceRequirements": [{"type": "GPU", "value": "1"}, {"type": "FPGA", "value": "1"}],
			 "restartPolicy": {"enabled": true, "restartAttemptPeriod": 60}},
			{"name": "b", "image": "i"}]}`, []string{
			`pidMode: "task" cannot be honoured for a task of 2 containers: Docker shares a namespace only through one container's, which ends when that container exits; leave pidMode out for a namespace per container`,
			`ipcMode: "shareable": want host, task or none`,
			`containerDefinitions[0].dockerSecurityOptions[0]: "seccomp:unconfined": want no-new-privileges, apparmor:PROFILE or label:VALUE`,
			`containerDefinitions[0].dockerSecurityOptions[1]: "credentialspec:file://gmsa.json": credential specs are for Windows containers, and gantry runs Linux ones`,
			`containerDefinitions[0].dockerSecurityOptions[2]: "apparmor:": want no-new-privileges, apparmor:PROFILE or label:VALUE`,
			`containerDefinitions[0].resourceRequirements[0]: GPU: gantry's workers do not hand out GPUs, and the container would run without one`,
			`containerDefinitions[0].resourceRequirements[1].type: "FPGA": want GPU or InferenceAccelerator`,
			`containerDefinitions[0].restartPolicy.enabled: gantry does not restart a container within its task; leave restartPolicy out, or use the run's retryStrategy to run the task again`,
		}},
		{"healthy without a health check", `{"family": "f", "containerDefinitions": [
			{"name": "a", "image": "i", "dependsOn": [{"containerName": "b", "condition": "HEALTHY"}]},
			{"name": "b", "image": "i"}]}`, []string{
			`containerDefinitions[0].dependsOn[0].condition: HEALTHY needs a healthCheck on container "b"`}},
		{"task limits", `{"family": "f", "cpu": "256", "memory": "lots", "networkMode": "host", "containerDefinitions": [
			{"name": "a", "image": "i", "cpu": 512}]}`, []string{
			`networkMode: "host" is not supported: every task runs on a bridge network of its own; use "bridge" or "awsvpc"`,
			`memory: "lots": want MiB ("2048") or GB ("2 GB")`,
			`cpu: the containers ask for 512 CPU units in all, more than the task's 256`}},
		{"task cpu below ECS's range", `{"family": "f", "cpu": "8", "containerDefinitions": [{"name": "a", "image": "i"}]}`, []string{
			`cpu: "8" is 8 CPU units: want 128 (0.125 vCPU) to 196608 (192 vCPUs), as ECS takes on EC2`}},
		{"task cpu in vCPUs below ECS's range", `{"family": "f", "cpu": "0.05 vCPU", "containerDefinitions": [{"name": "a", "image": "i"}]}`, []string{
			`cpu: "0.05 vCPU" is 51 CPU units: want 128 (0.125 vCPU) to 196608 (192 vCPUs), as ECS takes on EC2`}},
		{"task cpu zero", `{"family": "f", "cpu": 0, "containerDefinitions": [{"name": "a", "image": "i"}]}`, []string{
			`cpu: "0" is 0 CPU units: want 128 (0.125 vCPU) to 196608 (192 vCPUs), as ECS takes on EC2`}},
		{"task cpu above ECS's range", `{"family": "f", "cpu": "193 vCPU", "containerDefinitions": [{"name": "a", "image": "i"}]}`, []string{
			`cpu: "193 vCPU" is 197632 CPU units: want 128 (0.125 vCPU) to 196608 (192 vCPUs), as ECS takes on EC2`}},
		{"volume both kinds", `{"family": "f", "volumes": [{"name": "v", "host": {"sourcePath": "/srv"},
			"dockerVolumeConfiguration": {"scope": "task", "autoprovision": true}}], "containerDefinitions": [{"name": "a", "image": "i"}]}`, []string{
			`volumes[0]: give host or dockerVolumeConfiguration, not both`,
			`volumes[0].dockerVolumeConfiguration.autoprovision: only a shared volume can be autoprovisioned`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeTaskDefinition([]byte(tt.json))
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
			var fe *FieldError
			if strings.Contains(tt.want[0], ": ") && !strings.HasPrefix(tt.want[0], "task definition:") && !errors.As(err, &fe) {
				t.Errorf("not a FieldError: %T", err)
			}
		})
	}
}

// volumesFrom and dependsOn pointing opposite ways are no cycle: ECS
// creates the source of the volumes first and starts the other first.
func TestDecodeVolumesFromAgainstDependsOn(t *testing.T) {
	_, _, err := DecodeTaskDefinition([]byte(`{"family": "f", "containerDefinitions": [
		{"name": "reader", "image": "i", "volumesFrom": [{"sourceContainer": "writer"}]},
		{"name": "writer", "image": "i", "essential": false, "dependsOn": [{"containerName": "reader", "condition": "START"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
}

func TestDecodeTaskCPUBounds(t *testing.T) {
	for _, tt := range []struct {
		cpu   string
		units int
	}{{"128", 128}, {"0.125 vCPU", 128}, {"196608", 196608}, {"192 vCPU", 196608}} {
		td, _, err := DecodeTaskDefinition([]byte(`{"family": "f", "cpu": "` + tt.cpu + `", "containerDefinitions": [{"name": "a", "image": "i"}]}`))
		if err != nil {
			t.Errorf("cpu %q: %v", tt.cpu, err)
			continue
		}
		if n, _ := td.CPUUnits(); n != tt.units {
			t.Errorf("cpu %q = %d units, want %d", tt.cpu, n, tt.units)
		}
	}
}

func TestParseSecretRef(t *testing.T) {
	tests := []struct {
		in   string
		want SecretRef
	}{
		{"env:DB_PASSWORD", SecretRef{Source: SecretEnv, Name: "DB_PASSWORD"}},
		{"file:db/password", SecretRef{Source: SecretFile, Name: "db/password"}},
		{"db-password", SecretRef{Source: SecretFile, Name: "db-password"}},
		{"/web/db-password", SecretRef{Source: SecretFile, Name: "web/db-password"}},
		{"arn:aws:ssm:eu-west-1:123456789012:parameter/web/db-password", SecretRef{Source: SecretFile, Name: "web/db-password"}},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:web-db-AbCdEf", SecretRef{Source: SecretFile, Name: "web-db-AbCdEf"}},
		// The json-key picks one key of a JSON secret: it is not dropped.
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:web-db-AbCdEf:password::",
			SecretRef{Source: SecretFile, Name: "web-db-AbCdEf", JSONKey: "password"}},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:web-db-AbCdEf:password:AWSCURRENT:",
			SecretRef{Source: SecretFile, Name: "web-db-AbCdEf", JSONKey: "password"}},
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:web-db-AbCdEf:::", SecretRef{Source: SecretFile, Name: "web-db-AbCdEf"}},
	}
	for _, tt := range tests {
		got, err := ParseSecretRef(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSecretRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "env:", "file:../x", "file:a/../../x", "arn:aws:s3:::bucket/key", "arn:aws:secretsmanager:r:a:nope",
		"arn:aws:secretsmanager:r:a:secret:n:k:stage:id:more"} {
		if _, err := ParseSecretRef(bad); err == nil {
			t.Errorf("ParseSecretRef(%q): no error", bad)
		}
	}
}

// A version of a Secrets Manager secret other than the current one cannot
// be read from the worker's secrets file: refused at register, not run
// with the current value.
func TestDecodeSecretVersionRefused(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-creds"
	for _, tt := range []struct{ valueFrom, want string }{
		{arn + ":password:AWSPREVIOUS:", `containerDefinitions[0].secrets[0].valueFrom: "` + arn +
			`:password:AWSPREVIOUS:": version-stage AWSPREVIOUS cannot be honoured: the worker reads the secret from a file under its --secrets-dir, which holds one version, taken as AWSCURRENT; leave version-stage empty`},
		{arn + "::AWSCURRENT:0f1e2d3c-aaaa-bbbb-cccc-123456789012", `containerDefinitions[0].secrets[0].valueFrom: "` + arn +
			`::AWSCURRENT:0f1e2d3c-aaaa-bbbb-cccc-123456789012": version-id 0f1e2d3c-aaaa-bbbb-cccc-123456789012 cannot be honoured: the worker reads the secret from a file under its --secrets-dir, which holds one version, taken as AWSCURRENT; leave version-id empty`},
	} {
		_, _, err := DecodeTaskDefinition([]byte(`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i",
			"secrets": [{"name": "PW", "valueFrom": "` + tt.valueFrom + `"}]}]}`))
		if err == nil || err.Error() != tt.want {
			t.Errorf("err = %v\nwant %s", err, tt.want)
		}
	}
}

func TestSampleTaskDefinitionsDecode(t *testing.T) {
	files, _ := filepath.Glob("../samples/taskdefs/*.json")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := DecodeTaskDefinition(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzDecodeTaskDefinition(f *testing.F) {
	f.Add([]byte(`{"taskDefinition":{"family":"f","containerDefinitions":[{"name":"m","image":"i"}]},"tags":[{"key":"gantry:x"},{"key":"a","value":"b"}]}`))
	f.Add([]byte(ecsTaskDef))
	f.Add([]byte(`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memmory": 5}]}`))
	f.Add([]byte(`{"taskDefinition": {"family": "f"}}`))
	f.Add([]byte(`{"family": "f", "cpu": 1, "memory": "1.5 GB", "containerDefinitions": [{"name": "a", "image": "i",
		"dependsOn": [{"containerName": "a", "condition": "START"}], "ulimits": [null], "linuxParameters": {"maxSwap": -1}}]}`))
	f.Add([]byte(`[1, "x", null]`))
	f.Add([]byte(`{"family": "f", "containerDefinitions": [{"name": "a", "image": "i"}], "placementConstraints": [
		{"type": "memberOf", "expression": "attribute:disk == ssd"}, {"type": "distinctInstance"}, 3,
		{"type": "memberOf", "expression": "attribute:disk != ssd", "x": 1}]}`))
	f.Add([]byte(`{"family": "f", "pidMode": "task", "ipcMode": "none", "containerDefinitions": [{"name": "a", "image": "i",
		"dockerSecurityOptions": ["label:level:s0"], "interactive": true, "pseudoTerminal": false, "restartPolicy": {"enabled": false},
		"resourceRequirements": [{"type": "InferenceAccelerator", "value": "d"}], "links": ["b"]}, {"name": "b", "image": "i"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, _, err := DecodeTaskDefinition(data)
		// Read as stored, what decodes strictly reads the same, and
		// anything else that is one JSON object reads without an error.
		stored, serr := DecodeStoredTaskDefinition(data)
		if td != nil && (serr != nil || !reflect.DeepEqual(stored, td)) {
			t.Fatalf("read as stored: %+v, %v; strictly %+v", stored, serr, td)
		}
		if serr != nil && stored != nil {
			t.Fatal("a stored task definition with an error")
		}
		if err != nil {
			if td != nil {
				t.Fatal("a task definition with an error")
			}
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error")
			}
			return
		}
		// A task definition that decodes is valid, and survives its own
		// JSON unchanged: that is how the registry stores it.
		if verr := td.Validate(); verr != nil {
			t.Fatalf("decoded but invalid: %v", verr)
		}
		out, err := json.Marshal(td)
		if err != nil {
			t.Fatal(err)
		}
		again, _, err := DecodeTaskDefinition(out)
		if err != nil {
			t.Fatalf("own JSON does not decode: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed it:\n%s\n%s", out, out2)
		}
	})
}

// TestTaskDefinitionTags: a task definition's tags are kept, those
// describe-task-definition --include TAGS puts beside it included, and
// checked as a run's are, each problem named.
func TestTaskDefinitionTags(t *testing.T) {
	td, _, err := DecodeTaskDefinition([]byte(`{"taskDefinition": {"family": "f",
		"containerDefinitions": [{"name": "m", "image": "i"}]}, "tags": [{"key": "team", "value": "data"}]}`))
	if err != nil || len(td.Tags) != 1 || td.Tags.Map()["team"] != "data" {
		t.Fatalf("describe output's tags: %+v, %v", td, err)
	}
	_, _, err = DecodeTaskDefinition([]byte(`{"family": "f", "containerDefinitions": [{"name": "m", "image": "i"}],
		"tags": [{"key": "gantry:x", "value": "y"}, {"key": "ok", "value": "a,b"}]}`))
	for _, want := range []string{`tags[0].key: key "gantry:x": the prefixes`, `tags[1].value: value "a,b": character ',' not allowed`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad tags: %v\nwant %q", err, want)
		}
	}
}
