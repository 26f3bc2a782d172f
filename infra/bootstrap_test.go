package main

// The instance bootstrap as rendered: user data, scripts, environment files and the systemd unit, checked as text and
// with shellcheck, then as they appear in the synthesized cfn-init metadata.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/serviceenv"
)

// shellcheck runs shellcheck on a script (the test target installs it when missing).
func shellcheck(t *testing.T, name, script string) {
	t.Helper()
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatalf("shellcheck is not installed (make -C infra test installs it: apt-get install shellcheck)")
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("shellcheck", "--shell=bash", "--severity=style", p).CombinedOutput()
	if err != nil {
		t.Errorf("shellcheck %s: %v\n%s", name, err, out)
	}
}

func TestBootstrapScriptsPassShellcheck(t *testing.T) {
	t.Run("user-data", func(t *testing.T) {
		shellcheck(t, "user-data", host.RenderUserData("us-east-1", "AircraftPlatform", "ServiceInstance32B5B598"))
	})
	for _, name := range host.Scripts {
		t.Run(name, func(t *testing.T) { shellcheck(t, name, host.BootstrapFile(name+".sh")) })
	}
}

func TestUserDataRunsCfnInitThenApply(t *testing.T) {
	ud := host.RenderUserData("eu-west-1", "AircraftAlice", "ServiceInstanceABC")
	for _, want := range []string{
		"#!/bin/bash\n",
		"set -euo pipefail",
		"/opt/aws/bin/cfn-init -v --region 'eu-west-1' --stack 'AircraftAlice' --resource 'ServiceInstanceABC' --configsets tools",
		"exec /usr/local/sbin/aircraft-apply",
	} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q:\n%s", want, ud)
		}
	}
	if !strings.Contains(ud, "trap 'fail $LINENO' ERR") || !strings.Contains(ud, `\"Status\":\"FAILURE\"`) {
		t.Errorf("user data does not fail the release's wait condition when it fails:\n%s", ud)
	}
	if strings.Contains(ud, "@") {
		t.Errorf("user data has an unreplaced placeholder:\n%s", ud)
	}
}

func TestApplySignalsTheReleaseWaitCondition(t *testing.T) {
	apply := host.BootstrapFile("aircraft-apply.sh")
	for _, want := range []string{"flock 9", "--configsets deploy", "aircraft-healthcheck", `aircraft-signal" "$status" "$wait_condition" "$handle"`} {
		if !strings.Contains(apply, want) {
			t.Errorf("aircraft-apply lacks %q", want)
		}
	}
	// The restore clears systemd's start limit first: a crash-looping release may have used up its starts, and the unit
	// would refuse to start the last good release.
	restore := apply[strings.Index(apply, "restoring release"):]
	if r, s := strings.Index(restore, "systemctl reset-failed aircraftd"), strings.Index(restore, "systemctl restart aircraftd"); r < 0 || r > s {
		t.Errorf("aircraft-apply restarts the last good release without reset-failed first")
	}
	signal := host.BootstrapFile("aircraft-signal.sh")
	if !strings.Contains(signal, `--exit-code "$status" --reason "$reason" --id "$id" "$handle"`) {
		t.Errorf("aircraft-signal does not signal the wait condition's URL with the status and reason:\n%s", signal)
	}
}

func TestGencertUsesIMDSv2AndPublishesOnlyTheCertificate(t *testing.T) {
	s := host.BootstrapFile("aircraft-gencert.sh")
	for _, want := range []string{
		"X-aws-ec2-metadata-token-ttl-seconds", // IMDSv2 session token
		"http://169.254.169.254/latest/meta-data/$1", "imds public-ipv4", "imds public-hostname",
		`aircraftd gencert -cert "$TLS_CERT_FILE" -key "$TLS_KEY_FILE" -hosts "$hosts"`,
		`runuser -u aircraftd`,
		`aws ssm put-parameter --region "$CFN_REGION" --name "$CERT_PARAMETER"`,
		`--value "file://$TLS_CERT_FILE"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("aircraft-gencert lacks %q", want)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "put-parameter") || strings.Contains(line, "--value") {
			if strings.Contains(line, "KEY") {
				t.Errorf("the key must never be published: %q", line)
			}
		}
	}
}

func TestSystemdUnitIsHardenedAndBindsLowPortsUnprivileged(t *testing.T) {
	unit := host.BootstrapFile("aircraftd.service")
	settings := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for key, want := range map[string]string{
		"User":                    "aircraftd",
		"Group":                   "aircraftd",
		"ExecStart":               host.BinaryPath,
		"EnvironmentFile":         host.ServiceEnvPath,
		"Restart":                 "always",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges":         "yes",
		"StateDirectory":          "aircraft aircraft/downloads aircraft/acme",
		"LogsDirectory":           "aircraft",
		"StandardOutput":          "append:" + host.ServiceLogPath,
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectControlGroups":    "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"RestrictNamespaces":      "yes",
		"RestrictSUIDSGID":        "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"SystemCallFilter":        "@system-service",
		"WantedBy":                "multi-user.target",
	} {
		if got := settings[key]; !slices.Contains(got, want) {
			t.Errorf("%s=%v, want %s", key, got, want)
		}
	}
	if slices.Contains(settings["User"], "root") {
		t.Error("aircraftd must not run as root")
	}
	// systemd-analyze verify when this machine has systemd (it needs the binary to exist: use a stand-in).
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		dir := t.TempDir()
		fake := filepath.Join(dir, "aircraftd")
		os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755)
		os.WriteFile(filepath.Join(dir, "aircraftd.env"), nil, 0o644)
		u := strings.NewReplacer(host.BinaryPath, fake, host.ServiceEnvPath, filepath.Join(dir, "aircraftd.env")).Replace(unit)
		p := filepath.Join(dir, "aircraftd.service")
		os.WriteFile(p, []byte(u), 0o644)
		if out, err := exec.Command("systemd-analyze", "verify", "--man=no", p).CombinedOutput(); err != nil &&
			!strings.Contains(string(out), "System has not been booted with systemd") {
			t.Logf("systemd-analyze verify (informational): %v\n%s", err, out)
		}
	}
}

func TestServiceEnvironmentFollowsTheContract(t *testing.T) {
	base := serviceenv.Settings{
		Region: "us-east-1", Bucket: "aircraft-data-x", DBSecretArn: "arn:db", MongoSecretArn: "arn:mongo",
		DocumentDB: true, APITokenSecretArn: "arn:token", TLSMode: "selfsigned",
	}
	env := serviceenv.Environment(base)
	for k, want := range map[string]string{
		"HTTP_ADDR": ":443", "AWS_REGION": "us-east-1", "S3_BUCKET": "aircraft-data-x",
		"DB_SECRET_ARN": "arn:db", "DB_NAME": "aircraft_db", "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": host.CABundlePath,
		"MONGODB_URL_SECRET_ARN": "arn:mongo", "MONGODB_TLS_CA_FILE": host.CABundlePath, "API_TOKEN_SECRET_ARN": "arn:token",
		"TLS_CERT_FILE": host.TLSCertPath, "TLS_KEY_FILE": host.TLSKeyPath, "DOWNLOAD_PATH": "/var/lib/aircraft/downloads",
	} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
	// Secrets are read from Secrets Manager at start: never a secret value in the environment.
	for _, k := range []string{"DB_PASSWORD", "DATABASE_URL", "MONGODB_URL", "API_TOKEN", "TLS_DISABLE", "S3_ENDPOINT"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s must not be set on the instance", k)
		}
	}
	// Every variable is a setting of the service: one of the names of .env.example, which the app's config package
	// renders from its table of settings (and checks in its tests).
	example, err := os.ReadFile(filepath.Join(repo, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(?:# )?([A-Z][A-Z0-9_]*)=`).FindAllSubmatch(example, -1) {
		settings[string(m[1])] = true
	}
	if len(settings) < 20 {
		t.Fatalf(".env.example names %d settings; want the service's whole table", len(settings))
	}
	acme := base
	acme.TLSMode, acme.Domain, acme.AcmeEmail, acme.DocumentDB = "acme", "api.example.com", "ops@example.com", false
	for _, e := range []map[string]string{env, serviceenv.Environment(acme)} {
		for k := range e {
			if !settings[k] {
				t.Errorf("%s is no setting of the service (.env.example, app/internal/config)", k)
			}
		}
	}
	a := serviceenv.Environment(acme)
	if _, ok := env["REDIRECT_ADDR"]; ok {
		t.Error("self-signed mode listens on port 80, which its security group closes")
	}
	if a["ACME_DOMAIN"] != "api.example.com" || a["REDIRECT_ADDR"] != ":80" || a["ACME_EMAIL"] != "ops@example.com" || a["ACME_CACHE_DIR"] == "" {
		t.Errorf("acme environment: %v", a)
	}
	if _, ok := a["TLS_CERT_FILE"]; ok {
		t.Error("acme mode must not set TLS_CERT_FILE")
	}
	if _, ok := a["MONGODB_TLS_CA_FILE"]; ok {
		t.Error("an external MongoDB does not use the RDS CA bundle")
	}
}

// The same files as the instance receives them: the metadata in the synthesized template.
func TestRenderedMetadataInstallsTheRelease(t *testing.T) {
	s := stackOf(t, "default")
	files, commands, services := initConfig(t, s, "app")
	for path, mode := range map[string]string{
		host.BinaryPath: "000755", host.ServiceEnvPath: "000644", "/etc/systemd/system/aircraftd.service": "000644", host.CABundlePath: "000644",
	} {
		f, ok := files[path]
		if !ok {
			t.Errorf("config app does not install %s", path)
			continue
		}
		if f["mode"] != mode || f["owner"] != "root" {
			t.Errorf("%s: mode %v owner %v", path, f["mode"], f["owner"])
		}
	}
	if src := joinedText(files[host.BinaryPath]["source"]); !strings.Contains(src, "cdk-hnb659fds-assets-") {
		t.Errorf("binary source %s is not the CDK asset bucket", src)
	}
	if src := joinedText(files[host.CABundlePath]["source"]); !strings.Contains(src, "cdk-hnb659fds-assets-") || strings.Contains(src, "truststore") {
		t.Errorf("CA bundle from %s, want the shipped asset", src)
	}
	if unit := joinedText(files["/etc/systemd/system/aircraftd.service"]["content"]); unit != host.BootstrapFile("aircraftd.service") {
		t.Error("the unit in the metadata differs from bootstrap/aircraftd.service")
	}
	env := joinedText(files[host.ServiceEnvPath]["content"])
	for _, want := range []string{"HTTP_ADDR=:443\n", "DB_SSLMODE=verify-full\n", "DB_SSLROOTCERT=" + host.CABundlePath + "\n",
		"MONGODB_TLS_CA_FILE=" + host.CABundlePath + "\n", "AWS_REGION=${AWS::Region}\n", "TLS_CERT_FILE=" + host.TLSCertPath + "\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("aircraftd.env lacks %q:\n%s", want, env)
		}
	}
	keys := []string{}
	for k := range commands {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"10-user", "20-cloudwatch-agent", "30-certificate", "40-daemon-reload", "50-ship-logs"}; !slices.Equal(keys, want) {
		t.Errorf("commands %v, want %v (cfn-init runs them in key order)", keys, want)
	}
	svc := services["aircraftd"]
	if svc["enabled"] != true || svc["ensureRunning"] != true {
		t.Errorf("aircraftd service: %v", svc)
	}
	restartOn := list(svc["files"])
	for _, f := range []string{host.BinaryPath, host.ServiceEnvPath, "/etc/systemd/system/aircraftd.service"} {
		if !slices.Contains(restartOn, any(f)) {
			t.Errorf("aircraftd is not restarted when %s changes", f)
		}
	}

	tools, _, toolServices := initConfig(t, s, "tools")
	for _, name := range host.Scripts {
		f := tools[host.Sbin+"/"+name]
		if f == nil || f["mode"] != "000755" || joinedText(f["content"]) != host.BootstrapFile(name+".sh") {
			t.Errorf("%s is not installed verbatim with mode 0755", name)
		}
	}
	hook := joinedText(tools["/etc/cfn/hooks.d/aircraft.conf"]["content"])
	instance := s.One(t, "AWS::EC2::Instance")
	if !strings.Contains(hook, "path=Resources."+instance.ID+".Metadata.AWS::CloudFormation::Init") ||
		!strings.Contains(hook, "action=/usr/local/sbin/aircraft-apply") {
		t.Errorf("cfn-hup hook:\n%s", hook)
	}
	if toolServices["cfn-hup"]["enabled"] != true || toolServices["cfn-hup"]["files"] != nil {
		t.Errorf("cfn-hup must run, and must not be restarted by a deploy it runs: %v", toolServices["cfn-hup"])
	}
	deployEnv := joinedText(tools[host.DeployEnvPath]["content"])
	wait := s.One(t, "AWS::CloudFormation::WaitCondition")
	for _, want := range []string{"CFN_RESOURCE=" + instance.ID + "\n", "WAIT_CONDITION=" + wait.ID + "\n", "TLS_MODE=selfsigned\n", "CFN_STACK=${AWS::StackName}\n"} {
		if !strings.Contains(deployEnv, want) {
			t.Errorf("deploy.env lacks %q:\n%s", want, deployEnv)
		}
	}

	// The inline shell of cfn-init (commands and their tests) passes shellcheck too.
	for config, cmds := range map[string]map[string]map[string]any{"app": commands, "tools": toolCommands(t, s)} {
		for key, c := range cmds {
			for _, field := range []string{"command", "test"} {
				if sh, ok := c[field].(string); ok {
					shellcheck(t, config+"-"+key+"-"+field, "#!/bin/bash\n"+sh+"\n")
				}
			}
		}
	}

	ud := joinedText(instance.Props["UserData"])
	if want := host.RenderUserData("${AWS::Region}", "${AWS::StackName}", instance.ID); strings.TrimRight(ud, "\n") != strings.TrimRight(want, "\n") {
		t.Errorf("user data in the template:\n%s\nwant:\n%s", ud, want)
	}
}

// cfnInit returns the stack's cfn-init metadata (AWS::CloudFormation::Init: its configs and configSets), from the one
// resource that carries it: the instance, or the fleet's Auto Scaling group.
func cfnInit(t *testing.T, s *Synth) map[string]any {
	t.Helper()
	var init map[string]any
	var on []string
	for id, r := range s.Template["Resources"].(map[string]any) {
		meta, _ := r.(map[string]any)["Metadata"].(map[string]any)
		if m, ok := meta["AWS::CloudFormation::Init"].(map[string]any); ok {
			init, on = m, append(on, id)
		}
	}
	if len(on) != 1 {
		t.Fatalf("want cfn-init metadata on one resource, have it on %v", on)
	}
	return init
}

// initConfig returns the files, commands and systemd services of one config of the stack's cfn-init metadata.
func initConfig(t *testing.T, s *Synth, name string) (files, commands, services map[string]map[string]any) {
	t.Helper()
	cfg, ok := cfnInit(t, s)[name].(map[string]any)
	if !ok {
		t.Fatalf("no cfn-init config %q", name)
	}
	conv := func(v any) map[string]map[string]any {
		out := map[string]map[string]any{}
		m, _ := v.(map[string]any)
		for k, x := range m {
			out[k], _ = x.(map[string]any)
		}
		return out
	}
	systemd, _ := cfg["services"].(map[string]any)
	return conv(cfg["files"]), conv(cfg["commands"]), conv(systemd["systemd"])
}

func toolCommands(t *testing.T, s *Synth) map[string]map[string]any {
	_, commands, _ := initConfig(t, s, "tools")
	return commands
}
