package main

// The stack's lifecycle: a first create that waits for its data stores, stages that decide what survives, app releases
// that change no IAM and are gated even when the instance is replaced, and changes that must not replace the instance.
// The instance side of a release (gate, rollback) is proven by test/release.

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aircraftdata/platform/infra/appbuild"
	"github.com/aircraftdata/platform/infra/config"
	"github.com/aircraftdata/platform/infra/datastores"
	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/single"
)

func TestFirstCreateWaitsForTheDataStores(t *testing.T) {
	s := stackOf(t, "default")
	instance := s.One(t, "AWS::EC2::Instance")
	deps := list(instance.Raw["DependsOn"])
	var stores []string
	for _, typ := range []string{"AWS::RDS::DBInstance", "AWS::DocDB::DBInstance"} {
		for _, r := range s.Resources(typ) {
			stores = append(stores, r.ID)
		}
	}
	if len(stores) < 2 {
		t.Fatalf("data stores %v", stores)
	}
	for _, id := range stores {
		if !slices.Contains(deps, any(id)) {
			t.Errorf("the instance does not wait for %s (DependsOn %v): aircraftd's first start would race it", id, deps)
		}
	}
	// The wait: long enough for the first boot (tools, agent, Elastic IP, a gate of gateSeconds).
	wait := s.One(t, "AWS::CloudFormation::WaitCondition")
	handle := s.One(t, "AWS::CloudFormation::WaitConditionHandle")
	if wait.Props["Timeout"] != "1200" || !refTo(wait.Props["Handle"], handle.ID) || wait.Props["Count"] != float64(1) {
		t.Errorf("wait condition %s", jsonOf(wait.Props))
	}
	if host.GateSeconds < 120 || host.GateSeconds*2 > single.WaitTimeoutSeconds {
		t.Errorf("gate %d s within a wait of %d s", host.GateSeconds, single.WaitTimeoutSeconds)
	}
	// The signal URL reaches the instance through the tools config, which the user data installs first.
	tools, _, _ := initConfig(t, s, "tools")
	if f := tools[host.WaitHandlePath]; f == nil || !refTo(f["content"], handle.ID) || f["mode"] != "000600" {
		t.Errorf("%s: %v", host.WaitHandlePath, f)
	}
	if env := joinedText(tools[host.DeployEnvPath]["content"]); !strings.Contains(env, "GATE_SECONDS=180\n") {
		t.Errorf("deploy.env:\n%s", env)
	}
}

func TestStagesAreExplicit(t *testing.T) {
	for name, prod := range map[string]bool{"default": false, "prod": true} {
		t.Run(name, func(t *testing.T) {
			s := stackOf(t, name)
			art := s.Manifest["artifacts"].(map[string]any)[s.Config.StackName].(map[string]any)
			props, _ := art["properties"].(map[string]any)
			if got := props["terminationProtection"] == true; got != prod {
				t.Errorf("termination protection %v", props["terminationProtection"])
			}
			db := s.One(t, "AWS::RDS::DBInstance")
			doc := s.One(t, "AWS::DocDB::DBCluster")
			if db.Props["DeletionProtection"] != prod || doc.Props["DeletionProtection"] != prod {
				t.Errorf("deletion protection: RDS %v, DocumentDB %v", db.Props["DeletionProtection"], doc.Props["DeletionProtection"])
			}
			backups := db.Props["BackupRetentionPeriod"].(float64)
			if prod && (backups < 7 || doc.Props["BackupRetentionPeriod"].(float64) < 7) {
				t.Errorf("prod keeps %v days of backups", backups)
			}
			bucket := s.Resource(t, s.bucketID(t))
			autoDelete := len(s.Resources("Custom::S3AutoDeleteObjects")) > 0
			if (bucket.Raw["DeletionPolicy"] == "Retain") != prod || autoDelete == prod {
				t.Errorf("bucket DeletionPolicy %v, auto-delete %v", bucket.Raw["DeletionPolicy"], autoDelete)
			}
			// The service log group: retained in prod under a generated name (a redeploy after a destroy does not
			// collide with it); named and deleted in dev.
			for _, lg := range s.Resources("AWS::Logs::LogGroup") {
				name := strOf(lg.Props["LogGroupName"])
				if isMetricsEvents(lg) {
					continue // the agent's metric events: TestAgentPublishesServedMetricsWithBoundedDimensions
				}
				if isPipelineLogs(lg) {
					continue // operational, deleted with the stack in every stage: TestPipelineInBothModes
				}
				if strings.HasPrefix(name, "/aws/rds/") {
					if lg.Raw["DeletionPolicy"] != "Delete" {
						t.Errorf("the PostgreSQL log group %s outlives the stack: a redeploy would collide with it", name)
					}
					continue
				}
				if prod && (lg.Raw["DeletionPolicy"] != "Retain" || name != "") {
					t.Errorf("prod service log group: DeletionPolicy %v, name %q", lg.Raw["DeletionPolicy"], name)
				}
				if !prod && (lg.Raw["DeletionPolicy"] != "Delete" || name != "/aircraft/AircraftPlatform/service") {
					t.Errorf("dev service log group: DeletionPolicy %v, name %q", lg.Raw["DeletionPolicy"], name)
				}
			}
		})
	}
	if _, err := config.FromContext(map[string]any{"stage": "prod", "backupRetentionDays": "3"}); err == nil {
		t.Error("prod with 3 days of backups accepted")
	}
}

func TestDestroyNeedsAStackName(t *testing.T) {
	cmd := exec.Command("make", "-s", "-C", filepath.Join(repo, "infra"), "destroy")
	cmd.Env = append(os.Environ(), "STACK=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "make destroy STACK=") {
		t.Errorf("make destroy without STACK: %v\n%s", err, out)
	}
	out, err = exec.Command("make", "-n", "--no-print-directory", "-C", filepath.Join(repo, "infra"), "destroy", "STACK=AircraftAlice").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "destroy -c stackName=AircraftAlice") || !strings.HasSuffix(strings.TrimSpace(string(out)), " AircraftAlice") {
		t.Errorf("make -n destroy STACK=AircraftAlice: %v\n%s", err, out)
	}
}

func TestDeployWorkflowDeploysProd(t *testing.T) {
	wf := readDoc(t, ".github/workflows/deploy.yml")
	var deploy string
	for line := range strings.Lines(wf) {
		if strings.Contains(line, "make -C infra deploy") {
			deploy = line
		}
	}
	if !strings.Contains(deploy, "-c stage=prod") {
		t.Errorf("the deploy workflow does not deploy stage=prod: %q", deploy)
	}
}

// An app-only change: the IAM of the stack is identical (so `cdk deploy` asks no approval), and only the release
// differs - the instance's metadata, the release's signal and wait condition, the ReleaseId output.
func TestAppOnlyChangeIsNoIAMChange(t *testing.T) {
	a := synth(t, nil, fakeBinary(t, "aircraftd build A"))
	b := synth(t, nil, fakeBinary(t, "aircraftd build B"))
	ra, rb := a.Template["Resources"].(map[string]any), b.Template["Resources"].(map[string]any)
	var changed []string
	for id, r := range ra {
		typ := r.(map[string]any)["Type"].(string)
		other, ok := rb[id]
		switch {
		case !ok:
			changed = append(changed, "-"+typ)
		case jsonOf(r) != jsonOf(other):
			if strings.HasPrefix(typ, "AWS::IAM::") {
				t.Errorf("IAM resource %s changes with the app:\n%s\n%s", id, jsonOf(r), jsonOf(other))
			}
			changed = append(changed, "~"+typ)
		}
	}
	for id, r := range rb {
		if _, ok := ra[id]; !ok {
			changed = append(changed, "+"+r.(map[string]any)["Type"].(string))
		}
	}
	slices.Sort(changed)
	want := []string{"+AWS::CloudFormation::WaitCondition", "+AWS::CloudFormation::WaitConditionHandle",
		"-AWS::CloudFormation::WaitCondition", "-AWS::CloudFormation::WaitConditionHandle", "~AWS::EC2::Instance"}
	if !slices.Equal(changed, want) {
		t.Errorf("resources that change with the app: %v, want %v", changed, want)
	}
	ia, ib := a.One(t, "AWS::EC2::Instance"), b.One(t, "AWS::EC2::Instance")
	if jsonOf(ia.Props) != jsonOf(ib.Props) {
		t.Error("instance properties change with the app")
	}
	// The read grant names the stack's asset prefix, where both releases' binaries are.
	stmts, _ := a.roleStatements(t)
	for _, st := range stmts {
		if slices.Contains(st.Actions, "s3:GetObject") && strings.Contains(st.Resources[0], "cdk-hnb659fds-assets") &&
			!strings.HasSuffix(st.Resources[0], "/"+host.AssetPrefix("AircraftPlatform")+"*") {
			t.Errorf("release read grant %v", st.Resources)
		}
	}
	for _, s := range []*Synth{a, b} {
		if !strings.Contains(string(s.AssetsRaw), `"objectKey": "`+host.AssetPrefix("AircraftPlatform")) {
			t.Errorf("assets are not under the stack's prefix:\n%.600s", s.AssetsRaw)
		}
	}
	// What `cdk deploy` asks approval for (--require-approval broadening): the CLI's own security diff of release B
	// against release A's template finds nothing; against a configuration with other grants, it does.
	if code, out := securityDiff(t, b, a); code != 0 {
		t.Errorf("cdk diff --security-only between two app builds: exit %d\n%s", code, out)
	}
	if code, out := securityDiff(t, stackOf(t, "externalMongo"), a); code == 0 {
		t.Errorf("cdk diff --security-only sees no change of grants (the check cannot fail):\n%s", out)
	}
}

// securityDiff runs the pinned CDK CLI, offline: `cdk diff --security-only --fail` of the stack in s's assembly against
// base's template. Exit 0: no security-related change.
func securityDiff(t *testing.T, s, base *Synth) (int, string) {
	t.Helper()
	tmpl := filepath.Join(base.Dir, s.Config.StackName+".template.json")
	cmd := exec.Command(filepath.Join(repo, "infra", "node_modules", ".bin", "cdk"), "--no-notices", "diff", "--app", s.Dir,
		"--template", tmpl, "--security-only", "--fail", s.Config.StackName)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "CDK_DISABLE_VERSION_CHECK=1", "CDK_DISABLE_CLI_TELEMETRY=true")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	} else if err != nil {
		t.Fatalf("cdk diff: %v\n%s", err, out)
	}
	return 0, string(out)
}

// A replaced instance (here: a new instance type, which stops and starts it) gets a new wait condition, which its boot
// signals: it is gated like a release.
func TestInstanceChangeIsGated(t *testing.T) {
	bin := fakeBinary(t, "aircraftd same build")
	a := synth(t, nil, bin)
	b := synth(t, map[string]any{"instanceType": "t3.micro"}, bin)
	if a.One(t, "AWS::CloudFormation::WaitCondition").ID == b.One(t, "AWS::CloudFormation::WaitCondition").ID {
		t.Error("an instance change keeps the wait condition: the new instance would not be gated")
	}
	// A rule change of its security group changes nothing on the instance.
	c := synth(t, map[string]any{"allowedCidr": "203.0.113.0/24"}, bin)
	if a.One(t, "AWS::CloudFormation::WaitCondition").ID != c.One(t, "AWS::CloudFormation::WaitCondition").ID {
		t.Error("a security group rule change makes a new release")
	}
}

// The instance's security groups are a plain SecurityGroupIds list (an update without interruption), never a
// NetworkInterfaces block (whose every change replaces the instance); no configuration changes its properties.
func TestSecurityGroupChangeKeepsTheInstance(t *testing.T) {
	base := stackOf(t, "default").One(t, "AWS::EC2::Instance")
	if _, ok := base.Props["NetworkInterfaces"]; ok {
		t.Fatalf("the instance has a NetworkInterfaces block: %s", jsonOf(base.Props["NetworkInterfaces"]))
	}
	if !refTo(list(base.Props["SecurityGroupIds"])[0], stackOf(t, "default").serviceSG(t)) {
		t.Errorf("SecurityGroupIds %v", base.Props["SecurityGroupIds"])
	}
	for _, name := range []string{"acme", "narrow", "externalMongo"} {
		if got := stackOf(t, name).One(t, "AWS::EC2::Instance"); jsonOf(got.Props) != jsonOf(base.Props) {
			t.Errorf("%s: the instance's properties differ from the default's", name)
		}
	}
	// The public subnets give the instance its address until the Elastic IP is associated.
	for _, sub := range stackOf(t, "default").subnets(true) {
		if stackOf(t, "default").Resource(t, sub).Props["MapPublicIpOnLaunch"] != true {
			t.Errorf("public subnet %s does not map a public IP", sub)
		}
	}
}

func TestRDSCABundleIsShippedWithItsChecksum(t *testing.T) {
	p, err := host.RDSCABundle()
	if err != nil {
		t.Fatal(err)
	}
	rest, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !c.IsCA || !strings.HasPrefix(c.Subject.CommonName, "Amazon RDS ") || c.NotAfter.Before(time.Now()) {
			t.Errorf("%s: CA %v, until %s", c.Subject.CommonName, c.IsCA, c.NotAfter)
		}
		subjects = append(subjects, c.Subject.CommonName)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		t.Error("the bundle has text that is not a certificate")
	}
	for _, want := range []string{"Amazon RDS us-east-1 Root CA RSA2048 G1", "Amazon RDS eu-west-1 Root CA ECC384 G1"} {
		if !slices.Contains(subjects, want) {
			t.Errorf("the bundle lacks %s", want)
		}
	}
	if !strings.Contains(readDoc(t, "docs/infra.md"), host.RDSCABundleSHA256) {
		t.Error("docs/infra.md does not give the bundle's checksum")
	}
}

// kms:Decrypt for customer-managed keys, only through S3 (the asset bucket) and Secrets Manager (the stack's secrets).
func TestDecryptOnlyThroughItsServices(t *testing.T) {
	want := map[string]int{"default": 2, "externalMongo": 2, "loadBalanced": 2, "loadBalancedDNS": 2}
	for name := range want {
		external := name == "externalMongo" || name == "loadBalancedDNS"
		s := stackOf(t, name)
		var kms int
		for _, p := range s.Resources("AWS::IAM::Policy") {
			for _, st := range list(p.Props["PolicyDocument"].(map[string]any)["Statement"]) {
				st := st.(map[string]any)
				if !strings.Contains(jsonOf(st["Action"]), "kms:") {
					continue
				}
				kms++
				cond := jsonOf(st["Condition"])
				if st["Action"] != "kms:Decrypt" || !strings.Contains(cond, "kms:ViaService") || !strings.Contains(cond, "kms:EncryptionContext:") {
					t.Errorf("%s: %s", name, jsonOf(st))
				}
				if strings.Contains(cond, "secretsmanager") && external && !strings.Contains(cond, "mongo-uri-AbCdEf") {
					t.Errorf("%s: the external MongoDB secret cannot be decrypted: %s", name, cond)
				}
			}
		}
		if kms != want[name] {
			t.Errorf("%s: %d kms statements, want %d", name, kms, want[name])
		}
	}
}

func TestEngineVersionsArePinned(t *testing.T) {
	s := stackOf(t, "default")
	db := s.One(t, "AWS::RDS::DBInstance")
	if db.Props["EngineVersion"] != datastores.PostgresMajor || db.Props["DBInstanceClass"] != "db.t3.micro" {
		t.Errorf("RDS %v on %v", db.Props["EngineVersion"], db.Props["DBInstanceClass"])
	}
	if db.Props["MaxAllocatedStorage"] != float64(datastores.MaxStorageGiB) || jsonOf(db.Props["EnableCloudwatchLogsExports"]) != `["postgresql"]` {
		t.Errorf("RDS storage autoscaling %v, log exports %v", db.Props["MaxAllocatedStorage"], db.Props["EnableCloudwatchLogsExports"])
	}
	if doc := s.One(t, "AWS::DocDB::DBCluster"); doc.Props["EngineVersion"] != "5.0.0" {
		t.Errorf("DocumentDB %v", doc.Props["EngineVersion"])
	}
	doc := readDoc(t, "docs/infra.md")
	for _, want := range []string{"describe-orderable-db-instance-options --engine postgres", "describe-orderable-db-instance-options --engine docdb"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/infra.md lacks the check %q", want)
		}
	}
}

func TestGitIgnoresGeneratedFiles(t *testing.T) {
	for _, p := range []string{"infra/.build/x", "infra/.cache/x", "infra/cdk.out/x", "infra/cdk-outputs.json",
		"infra/node_modules/x", "test/awsstack/.test-data/x", ".dev/x"} {
		if err := exec.Command("git", "-C", repo, "check-ignore", "-q", p).Run(); err != nil {
			t.Errorf("%s is not ignored", p)
		}
	}
}

// The shipped binary is built by the Go release pinned in go.work, which CI installs (setup-go reads go.work): a laptop
// and CI build the same bytes.
func TestReleaseBinaryUsesThePinnedToolchain(t *testing.T) {
	tc, err := appbuild.Toolchain(filepath.Join(repo, "go.work"))
	if err != nil || !strings.HasPrefix(tc, "go1.") {
		t.Fatalf("go.work toolchain %q (%v)", tc, err)
	}
	if os.Getenv(appbuild.BinaryOverrideEnv) != "" {
		t.Skip("AIRCRAFTD_BINARY: a prebuilt binary")
	}
	out, err := exec.Command("go", "version", serviceBinary(t, "amd64")).CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), ": "+tc) {
		t.Errorf("go version of the release binary: %s (%v), want %s", out, err, tc)
	}
	for _, wf := range []string{"ci.yml", "deploy.yml", "cdk-diff.yml"} {
		for line := range strings.Lines(readDoc(t, ".github/workflows/"+wf)) {
			if strings.Contains(line, "go-version") && !strings.Contains(line, "go-version-file: go.work") {
				t.Errorf("%s: %s", wf, strings.TrimSpace(line))
			}
		}
	}
}

// Pull request code (the CDK app, npm's install scripts) runs only in a job without an OIDC token; the job that holds
// one runs the base branch's code and reads the assembly as data. The e2e job declares the environment its role's trust
// needs.
func TestPullRequestCodeNeverMeetsCredentials(t *testing.T) {
	jobs := workflowJobs(readDoc(t, ".github/workflows/cdk-diff.yml"))
	if len(jobs) != 2 {
		t.Fatalf("jobs %v", slices.Collect(maps.Keys(jobs)))
	}
	for name, body := range jobs {
		credentials := strings.Contains(body, "id-token: write")
		runsPRCode := strings.Contains(body, "infra synth") || !strings.Contains(body, "ref: ${{ github.event.pull_request.base.sha }}")
		if credentials && runsPRCode {
			t.Errorf("job %s holds an OIDC token and runs pull request code:\n%s", name, body)
		}
	}
	if !strings.Contains(jobs["synth"], "infra synth") || strings.Contains(jobs["synth"], "id-token") || !strings.Contains(jobs["diff"], "download-artifact") {
		t.Error("the synth job must synthesize without credentials and the diff job read its assembly")
	}
	if wf := readDoc(t, ".github/workflows/cdk-diff.yml"); !strings.Contains(wf, "\npermissions: {}\n") {
		t.Error("cdk-diff grants workflow-wide permissions")
	}
	deploy := workflowJobs(readDoc(t, ".github/workflows/deploy.yml"))
	for job, env := range map[string]string{"deploy": "production", "e2e": "e2e"} {
		if !strings.Contains(deploy[job], "environment: "+env) {
			t.Errorf("deploy.yml job %s does not declare environment %s", job, env)
		}
	}
	// Production after the AWS suite, and both after CI passed on main.
	if !strings.Contains(deploy["deploy"], "needs: [gate, e2e]") || !strings.Contains(deploy["e2e"], "needs: gate") {
		t.Error("deploy.yml: production must need the e2e suite, and both the gate")
	}
	doc := readDoc(t, "docs/infra.md")
	for _, want := range []string{"cloudformation:GetTemplate", "cloudformation:DescribeStacks", "environment:production"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/infra.md does not document %s", want)
		}
	}
}

// workflowJobs splits a workflow's text into its jobs (two-space indented keys under jobs:).
func workflowJobs(wf string) map[string]string {
	jobs := map[string]string{}
	_, after, _ := strings.Cut(wf, "\njobs:\n")
	name := ""
	for line := range strings.Lines(after) {
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(strings.TrimSpace(line), ":") {
			name = strings.TrimSuffix(strings.TrimSpace(line), ":")
		}
		jobs[name] += line
	}
	delete(jobs, "")
	return jobs
}

// An account at its VPC quota deploys into an existing VPC: no VPC, subnets or endpoint of the stack's own; the
// instance in its public subnet, the databases in its isolated ones; cdk-nag still clean.
func TestExistingVpc(t *testing.T) {
	s := synth(t, map[string]any{"vpcId": "vpc-0a1b2c3d4e5f60718", "availabilityZones": "us-east-1a, us-east-1b",
		"publicSubnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2", "isolatedSubnetIds": "subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2"},
		fakeBinary(t, "aircraftd in an existing VPC"))
	for _, typ := range []string{"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::VPCEndpoint", "AWS::EC2::InternetGateway"} {
		if n := len(s.Resources(typ)); n != 0 {
			t.Errorf("%d %s in an existing VPC", n, typ)
		}
	}
	if got := s.One(t, "AWS::EC2::Instance").Props["SubnetId"]; got != "subnet-0aaaaaaaaaaaaaaa1" {
		t.Errorf("instance subnet %v", got)
	}
	for _, typ := range []string{"AWS::RDS::DBSubnetGroup", "AWS::DocDB::DBSubnetGroup"} {
		if got := jsonOf(s.One(t, typ).Props["SubnetIds"]); got != `["subnet-0bbbbbbbbbbbbbbb1","subnet-0bbbbbbbbbbbbbbb2"]` {
			t.Errorf("%s subnets %s", typ, got)
		}
	}
	for _, sg := range s.Resources("AWS::EC2::SecurityGroup") {
		if sg.Props["VpcId"] != "vpc-0a1b2c3d4e5f60718" {
			t.Errorf("%s in %v", sg.ID, sg.Props["VpcId"])
		}
	}
	for _, e := range s.annotations("aws:cdk:error") {
		t.Errorf("cdk-nag: %s", e)
	}
}
