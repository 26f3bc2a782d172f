package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/serviceenv"
)

// ReleaseProps configures the deployment of app/ onto the service instance.
type ReleaseProps struct {
	Service       *Service
	BinaryPath    string // linux binary of aircraftd for Service.Arch (see ServiceBinary)
	Environment   serviceenv.Settings
	CertParameter string   // SSM parameter of the self-signed certificate; "" with ACME
	SecretArns    []string // secrets the service reads (kms:Decrypt through Secrets Manager for these only)
}

// Release is the deployment of app/: the aircraftd binary as an S3 asset, installed with its environment and a
// hardened systemd unit by cfn-init, so that `cdk deploy` alone brings the service up.
//
// Updates happen in place: a changed binary or configuration changes the instance's cfn-init metadata only; cfn-hup
// on the instance notices within a minute and runs aircraft-apply, which installs it, restarts aircraftd (a second
// or two without service) and signals this release's wait condition once the service is healthy. Every release has
// its own wait condition (its logical id carries the release id), so `cdk deploy` waits for the new release to be
// healthy, and a failed one rolls the stack back - cfn-hup then re-applies the previous metadata.
type Release struct {
	constructs.Construct
	ID            string // release id: hash of the binary and everything installed with it
	Binary        awss3assets.Asset
	WaitCondition awscdk.CfnWaitCondition
	Handle        awscdk.CfnWaitConditionHandle
}

func NewRelease(scope constructs.Construct, id string, props *ReleaseProps) *Release {
	this := constructs.NewConstruct(scope, &id)
	stack := awscdk.Stack_Of(this)
	service := props.Service
	instance := service.Instance.Node().DefaultChild().(awsec2.CfnInstance)

	binary := awss3assets.NewAsset(this, jsii.String("Binary"), &awss3assets.AssetProps{Path: jsii.String(props.BinaryPath)})
	binarySHA, err := fileSHA256(props.BinaryPath)
	if err != nil {
		panic(err)
	}
	caBundle := awss3assets.NewAsset(this, jsii.String("RdsCaBundle"), &awss3assets.AssetProps{Path: jsii.String(must(RDSCABundle()))})

	serviceEnv := must(renderEnv("Environment of aircraftd (docs/CONTRACT.md)", serviceenv.Environment(props.Environment)))
	cwAgent := CloudWatchAgentConfig(*service.LogGroup.LogGroupName(), metricsNamespace(stack))
	grantPutMetrics(service.Role, metricsNamespace(stack))
	NewServiceMetrics(this, "ServiceMetricsEvents", service.Role, metricsNamespace(stack)).AddTo(cwAgent)
	deploy := DeploySettings{
		Region:        *awscdk.Aws_REGION(),
		Stack:         *awscdk.Aws_STACK_NAME(),
		Resource:      *instance.LogicalId(),
		TLSMode:       props.Environment.TLSMode,
		ElasticIP:     deref(service.ElasticIP),
		Domain:        props.Environment.Domain,
		CertParameter: props.CertParameter,
	}

	// The release id covers the binary and everything cfn-init installs (tokens resolved to their CloudFormation
	// references), but not the files naming the release itself - and the instance's properties, so that an
	// instance that is replaced (or stopped and started for a new type) is gated too: a new wait condition, which
	// the new instance's first boot signals.
	releaseID := hashJSON(binarySHA, staticFilesDigest(), RDSCABundleSHA256, stack.Resolve(map[string]any{
		"env":      serviceEnv,
		"deploy":   DeployEnvironment(deploy),
		"agent":    cwAgent,
		"scrape":   PrometheusScrapeConfig(),
		"instance": instanceProperties(instance),
	}))

	// The gate of this release: a wait condition with a signal URL (a signal through the URL carries the reason of a
	// failure into the stack events), created after the instance and its Elastic IP.
	handle := awscdk.NewCfnWaitConditionHandle(this, jsii.String("Signal"+releaseID), &awscdk.CfnWaitConditionHandleProps{})
	wait := awscdk.NewCfnWaitCondition(this, jsii.String("Healthy"+releaseID), &awscdk.CfnWaitConditionProps{
		Handle:  handle.Ref(),
		Timeout: jsii.String(fmt.Sprint(waitTimeoutSeconds)),
		Count:   jsii.Number(1),
	})
	wait.AddResourceDependency(instance, jsii.String("the release runs on this instance"))
	wait.AddResourceDependency(service.Association, jsii.String("the health check uses the Elastic IP"))
	deploy.Release = releaseID
	deploy.WaitCondition = *wait.LogicalId()
	deployEnv := must(renderEnv("Stack, release and TLS settings of the aircraft-* scripts", DeployEnvironment(deploy)))

	restart := awsec2.NewInitServiceRestartHandle()
	root := func(mode string, restarts bool) *awsec2.InitFileOptions {
		o := &awsec2.InitFileOptions{Mode: jsii.String(mode), Owner: jsii.String("root"), Group: jsii.String("root")}
		if restarts {
			o.ServiceRestartHandles = &[]awsec2.InitServiceRestartHandle{restart}
		}
		return o
	}

	tools := []awsec2.InitElement{
		awsec2.InitFile_FromString(jsii.String(deployEnvPath), jsii.String(deployEnv), root("000644", false)),
		awsec2.InitFile_FromString(jsii.String(waitHandlePath), handle.Ref(), root("000600", false)),
		awsec2.InitFile_FromString(jsii.String("/etc/cfn/cfn-hup.conf"), jsii.String(CfnHupConfig(*awscdk.Aws_STACK_ID(), *awscdk.Aws_REGION())), root("000400", false)),
		awsec2.InitFile_FromString(jsii.String("/etc/cfn/hooks.d/aircraft.conf"), jsii.String(CfnHupHook(*instance.LogicalId())), root("000400", false)),
		awsec2.InitFile_FromString(jsii.String("/etc/systemd/system/cfn-hup.service"), jsii.String(bootstrapFile("cfn-hup.service")), root("000644", false)),
	}
	for _, name := range scripts {
		tools = append(tools, awsec2.InitFile_FromString(jsii.String(sbin+"/"+name), jsii.String(bootstrapFile(name+".sh")), root("000755", false)))
	}
	tools = append(tools,
		awsec2.InitCommand_ShellCommand(jsii.String("systemctl daemon-reload"), &awsec2.InitCommandOptions{Key: jsii.String("10-daemon-reload")}),
		// cfn-hup is not restarted on changes: it may be running this very deploy. It reads its files at start.
		awsec2.InitService_Enable(jsii.String("cfn-hup"), &awsec2.InitServiceOptions{ServiceManager: awsec2.ServiceManager_SYSTEMD}),
	)

	app := []awsec2.InitElement{
		awsec2.InitFile_FromExistingAsset(jsii.String(binaryPath), binary, root("000755", true)),
		awsec2.InitFile_FromString(jsii.String(serviceEnvPath), jsii.String(serviceEnv), root("000644", true)),
		awsec2.InitFile_FromString(jsii.String("/etc/systemd/system/aircraftd.service"), jsii.String(bootstrapFile("aircraftd.service")), root("000644", true)),
		awsec2.InitFile_FromExistingAsset(jsii.String(caBundlePath), caBundle, root("000644", true)),
		awsec2.InitFile_FromString(jsii.String("/etc/logrotate.d/aircraftd"), jsii.String(bootstrapFile("aircraftd.logrotate")), root("000644", false)),
		awsec2.InitFile_FromObject(jsii.String("/opt/aws/amazon-cloudwatch-agent/etc/aircraft.json"), &cwAgent, root("000644", false)),
		awsec2.InitFile_FromString(jsii.String(scrapeConfigPath), jsii.String(PrometheusScrapeConfig()), root("000644", false)),
		awsec2.InitCommand_ShellCommand(jsii.String("useradd --system --user-group --home-dir "+stateDir+" --no-create-home --shell /sbin/nologin aircraftd"),
			&awsec2.InitCommandOptions{Key: jsii.String("10-user"), TestCmd: jsii.String("! id aircraftd")}),
		awsec2.InitCommand_ShellCommand(jsii.String("dnf install -y amazon-cloudwatch-agent"),
			&awsec2.InitCommandOptions{Key: jsii.String("20-cloudwatch-agent"), TestCmd: jsii.String("! rpm -q amazon-cloudwatch-agent")}),
		awsec2.InitCommand_ShellCommand(jsii.String(sbin+"/aircraft-gencert"), &awsec2.InitCommandOptions{Key: jsii.String("30-certificate")}),
		awsec2.InitCommand_ShellCommand(jsii.String("systemctl daemon-reload"), &awsec2.InitCommandOptions{Key: jsii.String("40-daemon-reload")}),
		awsec2.InitCommand_ShellCommand(jsii.String("/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/aircraft.json"),
			&awsec2.InitCommandOptions{Key: jsii.String("50-ship-logs")}),
		awsec2.InitService_Enable(jsii.String("aircraftd"), &awsec2.InitServiceOptions{
			ServiceManager: awsec2.ServiceManager_SYSTEMD, ServiceRestartHandle: restart,
		}),
	}

	init := awsec2.CloudFormationInit_FromConfigSets(&awsec2.ConfigSetProps{
		ConfigSets: &map[string]*[]*string{
			"tools":  jsii.Strings("tools"),        // user data, before the first aircraft-apply
			"deploy": jsii.Strings("tools", "app"), // aircraft-apply: every release
		},
		Configs: &map[string]awsec2.InitConfig{
			"tools": awsec2.NewInitConfig(&tools),
			"app":   awsec2.NewInitConfig(&app),
		},
	})
	// Attach writes the metadata and its S3 authentication. The user data it would add is discarded: the instance
	// has its own (bootstrap/user-data.sh), and no creation policy, since the wait condition takes the signal. The
	// role is passed without policy updates so that the grants below are exactly what the instance needs.
	init.Attach(instance, &awsec2.AttachInitOptions{
		InstanceRole: service.Role.WithoutPolicyUpdates(nil),
		Platform:     awsec2.OperatingSystemType_LINUX,
		UserData:     awsec2.UserData_ForLinux(nil),
	})
	grantReleaseAssets(service.Role, binary, *stack.StackName())
	grantDecryptSecrets(service.Role, props.SecretArns)
	service.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("ReadMetadataAndSignal"),
		// DescribeStackResources: the user data finds the wait condition to fail when it cannot install the tools.
		Actions:   jsii.Strings("cloudformation:DescribeStackResource", "cloudformation:DescribeStackResources", "cloudformation:SignalResource"),
		Resources: jsii.Strings(*awscdk.Aws_STACK_ID()),
	}))

	return &Release{Construct: this, ID: releaseID, Binary: binary, WaitCondition: wait, Handle: handle}
}

// grantReleaseAssets lets role read the release's files under the stack's own prefix of the CDK asset bucket
// (assetPrefix), not by object key: a new binary is then no IAM change, and `cdk deploy` does not ask for approval of
// an app release. A customer-managed key may encrypt the asset bucket (`cdk bootstrap --bootstrap-customer-key`):
// decrypt through S3 only, for that bucket's objects only. Both the single instance and the fleet use it.
func grantReleaseAssets(role awsiam.IRole, binary awss3assets.Asset, stackName string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadReleaseAssets"),
		Actions:   jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(fmt.Sprintf("arn:%s:s3:::%s/%s*", *awscdk.Aws_PARTITION(), *binary.S3BucketName(), assetPrefix(stackName))),
	}))
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DecryptReleaseAssets"),
		Actions:   jsii.Strings("kms:Decrypt"),
		Resources: jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"kms:ViaService": fmt.Sprintf("s3.%s.amazonaws.com", *awscdk.Aws_REGION())},
			"StringLike":   map[string]any{"kms:EncryptionContext:aws:s3:arn": fmt.Sprintf("arn:%s:s3:::%s*", *awscdk.Aws_PARTITION(), *binary.S3BucketName())},
		},
	}))
}

// grantDecryptSecrets lets role decrypt the secrets it reads when a customer-managed key encrypts one (an external
// MongoDB secret may be): through Secrets Manager only, for those secrets only. Both the single instance and the
// fleet use it.
func grantDecryptSecrets(role awsiam.IRole, secretArns []string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DecryptSecrets"),
		Actions:   jsii.Strings("kms:Decrypt"),
		Resources: jsii.Strings("*"),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{
				"kms:ViaService":                  fmt.Sprintf("secretsmanager.%s.amazonaws.com", *awscdk.Aws_REGION()),
				"kms:EncryptionContext:SecretARN": secretArns,
			},
		},
	}))
}

// waitTimeoutSeconds is how long CloudFormation waits for a release's signal. The first boot takes the longest: the
// instance starts once RDS and DocumentDB are available (it depends on them), then installs its tools and the
// CloudWatch agent (1-3 min), waits for its Elastic IP in IMDS (at most 5 min), and gates the release (at most
// gateSeconds); cfn-hup takes up to a minute to notice a later release.
const waitTimeoutSeconds = 20 * 60

// assetPrefix is the stack's folder in the CDK asset bucket (see NewAircraftStack's synthesizer).
func assetPrefix(stackName string) string { return "aircraft/" + stackName + "/" }

// instanceProperties are the instance's properties whose change replaces the instance or stops and starts it
// (CloudFormation's AWS::EC2::Instance reference), tokens resolved to their CloudFormation references.
func instanceProperties(instance awsec2.CfnInstance) any {
	return awscdk.Stack_Of(instance).Resolve(map[string]any{
		"AvailabilityZone":    instance.AvailabilityZone(),
		"BlockDeviceMappings": instance.BlockDeviceMappings(),
		"ImageId":             instance.ImageId(),
		"InstanceType":        instance.InstanceType(),
		"NetworkInterfaces":   instance.NetworkInterfaces(),
		"PrivateIpAddress":    instance.PrivateIpAddress(),
		"SubnetId":            instance.SubnetId(),
		"UserData":            instance.UserData(),
	})
}

// staticFilesDigest hashes the embedded scripts and units, which are part of every release.
func staticFilesDigest() string {
	h := sha256.New()
	entries, _ := bootstrapFS.ReadDir("bootstrap")
	for _, e := range entries {
		h.Write([]byte(e.Name() + "\x00" + bootstrapFile(e.Name()) + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hashJSON is a short, stable id of values (maps are marshalled with sorted keys).
func hashJSON(values ...any) string {
	b, err := json.Marshal(values)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// The RDS certificate bundle (RDS and DocumentDB CAs), shipped from the repository with its checksum instead of
// being downloaded at every release: infra/rds-ca-bundle.pem. docs/infra.md says where it comes from and how to
// refresh it; the synth fails when the file does not match RDSCABundleSHA256.
const (
	rdsCABundleFile   = "rds-ca-bundle.pem"
	RDSCABundleSHA256 = "26edf290f2d57ebbd5273fb9463b763497a47c14a4712d73ce47da8dc4ad57dc"
)

// RDSCABundle returns the path of infra/rds-ca-bundle.pem after checking its checksum.
func RDSCABundle() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "infra", rdsCABundleFile)
	sum, err := fileSHA256(p)
	if err != nil {
		return "", err
	}
	if sum != RDSCABundleSHA256 {
		return "", fmt.Errorf("%s: SHA-256 %s, want %s (RDSCABundleSHA256 in infra/release.go)", p, sum, RDSCABundleSHA256)
	}
	return p, nil
}

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
