// Package host is what every instance of the service runs, in both modes: the aircraftd binary, the bootstrap scripts,
// units and environment files with their paths on the instance, and the Session Manager grant.
package host

// The instance side of a deploy, as plain text: the user data, the two environment files (the service's made by package
// serviceenv) and the static scripts and units under bootstrap/. Nothing here calls CDK, so the rendering is tested
// (and shellchecked) without a synth. Values may be CDK token strings; CloudFormation substitutes them at deploy time.

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/aircraftdata/platform/infra/envfile"
	"github.com/aircraftdata/platform/infra/observability"
	"github.com/aircraftdata/platform/infra/serviceenv"
)

//go:embed bootstrap
var bootstrapFS embed.FS

// Paths on the instance.
const (
	BinaryPath     = "/opt/aircraft/bin/aircraftd"
	ServiceEnvPath = "/etc/aircraft/aircraftd.env"
	DeployEnvPath  = "/etc/aircraft/deploy.env"
	WaitHandlePath = "/etc/aircraft/wait-handle" // signal URL of the release's wait condition
	CABundlePath   = serviceenv.CABundlePath
	TLSCertPath    = serviceenv.TLSCertPath
	TLSKeyPath     = serviceenv.TLSKeyPath
	StateDir       = serviceenv.StateDir
	ServiceLogPath = "/var/log/aircraft/aircraftd.log"
	Sbin           = "/usr/local/sbin"
)

// BootstrapFile returns a static file of bootstrap/.
func BootstrapFile(name string) string {
	b, err := bootstrapFS.ReadFile("bootstrap/" + name)
	if err != nil {
		panic(err) // embedded at build time: a missing name is a programming error
	}
	return string(b)
}

// Scripts installed into /usr/local/sbin by config set "tools", by name.
var Scripts = []string{"aircraft-apply", "aircraft-signal", "aircraft-healthcheck", "aircraft-gencert"}

// RenderUserData is the instance's user data: install cfn-init's tools, then run aircraft-apply.
func RenderUserData(region, stack, resource string) string {
	return strings.NewReplacer("@REGION@", region, "@STACK@", stack, "@RESOURCE@", resource).
		Replace(BootstrapFile("user-data.sh"))
}

// GateSeconds is how long a release's gate waits for /api/v1/ready: aircraftd waits up to a minute for each data store
// at start, and an ACME certificate is issued on the first request.
const GateSeconds = 180

// DeploySettings is what the scripts need to know about the stack and the release.
type DeploySettings struct {
	Region, Stack, Resource string // where cfn-init reads the metadata: region, stack name, instance logical id
	Release                 string // id of this release (binary and configuration)
	WaitCondition           string // logical id of the wait condition of this release
	TLSMode                 string
	ElasticIP               string
	Domain                  string // the ACME domain ("" when self-signed)
	CertParameter           string // SSM parameter for the self-signed certificate ("" with ACME)
}

// DeployEnvironment is /etc/aircraft/deploy.env, sourced by the aircraft-* scripts.
func DeployEnvironment(d DeploySettings) map[string]string {
	return map[string]string{
		"CFN_REGION":     d.Region,
		"CFN_STACK":      d.Stack,
		"CFN_RESOURCE":   d.Resource,
		"RELEASE":        d.Release,
		"WAIT_CONDITION": d.WaitCondition,
		"TLS_MODE":       d.TLSMode,
		"ELASTIC_IP":     d.ElasticIP,
		"DOMAIN":         d.Domain,
		"CERT_PARAMETER": d.CertParameter,
		"TLS_CERT_FILE":  TLSCertPath,
		"TLS_KEY_FILE":   TLSKeyPath,
		"GATE_SECONDS":   fmt.Sprint(GateSeconds),
	}
}

// RenderEnv renders one of the instance's environment files (package envfile: sorted, values systemd and bash read
// alike). Values may be CDK token strings.
func RenderEnv(title string, env map[string]string) (string, error) {
	return envfile.Render(title+"\nWritten by cfn-init from the CDK app in infra/ - changes here are overwritten by the next deploy.", env)
}

// CfnHupConfig is /etc/cfn/cfn-hup.conf: poll the stack every minute.
func CfnHupConfig(stackID, region string) string {
	return fmt.Sprintf("[main]\nstack=%s\nregion=%s\ninterval=1\nverbose=true\n", stackID, region)
}

// CfnHupHook is /etc/cfn/hooks.d/aircraft.conf: run aircraft-apply when the instance's cfn-init metadata changes.
func CfnHupHook(resource string) string {
	return fmt.Sprintf("[aircraft-release]\ntriggers=post.update\npath=Resources.%s.Metadata.AWS::CloudFormation::Init\naction=%s/aircraft-apply\nrunas=root\n",
		resource, Sbin)
}

// CloudWatchAgentConfig ships the service log and the deploy logs to the stack's log group; with a namespace, it also
// reports the root volume's free space there (observability.DiskMetrics).
func CloudWatchAgentConfig(logGroup, namespace string) map[string]any {
	file := func(path, stream string) map[string]any {
		return map[string]any{"file_path": path, "log_group_name": logGroup, "log_stream_name": "{instance_id}/" + stream}
	}
	config := map[string]any{
		"agent": map[string]any{"run_as_user": "root"},
		"logs": map[string]any{"logs_collected": map[string]any{"files": map[string]any{"collect_list": []any{
			file(ServiceLogPath, "aircraftd"),
			file("/var/log/cfn-init.log", "cfn-init"),
			file("/var/log/cfn-hup.log", "cfn-hup"),
			file("/var/log/aircraft-user-data.log", "user-data"),
		}}}},
	}
	if namespace != "" {
		config["metrics"] = observability.DiskMetrics(namespace)
	}
	return config
}

// StaticFilesDigest hashes the embedded scripts and units, which are part of every release.
func StaticFilesDigest() string {
	h := sha256.New()
	entries, _ := bootstrapFS.ReadDir("bootstrap")
	for _, e := range entries {
		h.Write([]byte(e.Name() + "\x00" + BootstrapFile(e.Name()) + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}
