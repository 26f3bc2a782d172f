package single

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/observability"
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

// Release is the deployment of app/: the aircraftd binary as an S3 asset, installed with its environment and a hardened
// systemd unit by cfn-init, so that `cdk deploy` alone brings the service up.
//
// Updates happen in place: a changed binary or configuration changes the instance's cfn-init metadata only; cfn-hup on
// the instance notices within a minute and runs aircraft-apply, which installs it, restarts aircraftd (a second or two
// without service) and signals this release's wait condition once the service is healthy. Every release has its own
// wait condition (its logical id carries the release id), so `cdk deploy` waits for the new release to be healthy, and
// a failed one rolls the stack back - cfn-hup then re-applies the previous metadata.
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
	binarySHA, err := host.FileSHA256(props.BinaryPath)
	if err != nil {
		panic(err)
	}
	caBundle := awss3assets.NewAsset(this, jsii.String("RdsCaBundle"), &awss3assets.AssetProps{Path: jsii.String(host.Must(host.RDSCABundle()))})

	serviceEnv := host.Must(host.RenderEnv("Environment of aircraftd (docs/CONTRACT.md)", serviceenv.Environment(props.Environment)))
	cwAgent := host.CloudWatchAgentConfig(*service.LogGroup.LogGroupName(), observability.MetricsNamespace(stack))
	observability.GrantPutMetrics(service.Role, observability.MetricsNamespace(stack))
	observability.NewServiceMetrics(this, "ServiceMetricsEvents", service.Role, observability.MetricsNamespace(stack)).AddTo(cwAgent)
	deploy := host.DeploySettings{
		Region:        *awscdk.Aws_REGION(),
		Stack:         *awscdk.Aws_STACK_NAME(),
		Resource:      *instance.LogicalId(),
		TLSMode:       props.Environment.TLSMode,
		ElasticIP:     deref(service.ElasticIP),
		Domain:        props.Environment.Domain,
		CertParameter: props.CertParameter,
	}

	// The release id covers the binary and everything cfn-init installs (tokens resolved to their CloudFormation
	// references), but not the files naming the release itself - and the instance's properties, so that an instance
	// that is replaced (or stopped and started for a new type) is gated too: a new wait condition, which the new
	// instance's first boot signals.
	releaseID := host.HashJSON(binarySHA, host.StaticFilesDigest(), host.RDSCABundleSHA256, stack.Resolve(map[string]any{
		"env":      serviceEnv,
		"deploy":   host.DeployEnvironment(deploy),
		"agent":    cwAgent,
		"scrape":   observability.PrometheusScrapeConfig(),
		"instance": instanceProperties(instance),
	}))

	// The gate of this release: a wait condition with a signal URL (a signal through the URL carries the reason of a
	// failure into the stack events), created after the instance and its Elastic IP.
	handle := awscdk.NewCfnWaitConditionHandle(this, jsii.String("Signal"+releaseID), &awscdk.CfnWaitConditionHandleProps{})
	wait := awscdk.NewCfnWaitCondition(this, jsii.String("Healthy"+releaseID), &awscdk.CfnWaitConditionProps{
		Handle:  handle.Ref(),
		Timeout: jsii.String(fmt.Sprint(WaitTimeoutSeconds)),
		Count:   jsii.Number(1),
	})
	wait.AddResourceDependency(instance, jsii.String("the release runs on this instance"))
	wait.AddResourceDependency(service.Association, jsii.String("the health check uses the Elastic IP"))
	deploy.Release = releaseID
	deploy.WaitCondition = *wait.LogicalId()
	deployEnv := host.Must(host.RenderEnv("Stack, release and TLS settings of the aircraft-* scripts", host.DeployEnvironment(deploy)))

	tools := releaseTools(deployEnv, handle, instance)
	app := releaseApp(binary, caBundle, serviceEnv, cwAgent)
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
	// Attach writes the metadata and its S3 authentication. The user data it would add is discarded: the instance has
	// its own (bootstrap/user-data.sh), and no creation policy, since the wait condition takes the signal. The role is
	// passed without policy updates so that the grants below are exactly what the instance needs.
	init.Attach(instance, &awsec2.AttachInitOptions{
		InstanceRole: service.Role.WithoutPolicyUpdates(nil),
		Platform:     awsec2.OperatingSystemType_LINUX,
		UserData:     awsec2.UserData_ForLinux(nil),
	})
	grantRelease(service.Role, binary, *stack.StackName(), props.SecretArns)

	return &Release{Construct: this, ID: releaseID, Binary: binary, WaitCondition: wait, Handle: handle}
}

// rootFile is the owner and mode of a file cfn-init writes; a change of it restarts the service when restart is set.
func rootFile(mode string, restart awsec2.InitServiceRestartHandle) *awsec2.InitFileOptions {
	o := &awsec2.InitFileOptions{Mode: jsii.String(mode), Owner: jsii.String("root"), Group: jsii.String("root")}
	if restart != nil {
		o.ServiceRestartHandles = &[]awsec2.InitServiceRestartHandle{restart}
	}
	return o
}

// releaseTools is cfn-init's config "tools": the aircraft-* scripts, the release's settings and wait condition handle,
// and cfn-hup, which runs aircraft-apply when the instance's metadata changes.
func releaseTools(deployEnv string, handle awscdk.CfnWaitConditionHandle, instance awsec2.CfnInstance) []awsec2.InitElement {
	tools := []awsec2.InitElement{
		awsec2.InitFile_FromString(jsii.String(host.DeployEnvPath), jsii.String(deployEnv), rootFile("000644", nil)),
		awsec2.InitFile_FromString(jsii.String(host.WaitHandlePath), handle.Ref(), rootFile("000600", nil)),
		awsec2.InitFile_FromString(jsii.String("/etc/cfn/cfn-hup.conf"), jsii.String(host.CfnHupConfig(*awscdk.Aws_STACK_ID(), *awscdk.Aws_REGION())), rootFile("000400", nil)),
		awsec2.InitFile_FromString(jsii.String("/etc/cfn/hooks.d/aircraft.conf"), jsii.String(host.CfnHupHook(*instance.LogicalId())), rootFile("000400", nil)),
		awsec2.InitFile_FromString(jsii.String("/etc/systemd/system/cfn-hup.service"), jsii.String(host.BootstrapFile("cfn-hup.service")), rootFile("000644", nil)),
	}
	for _, name := range host.Scripts {
		tools = append(tools, awsec2.InitFile_FromString(jsii.String(host.Sbin+"/"+name), jsii.String(host.BootstrapFile(name+".sh")), rootFile("000755", nil)))
	}
	tools = append(tools,
		awsec2.InitCommand_ShellCommand(jsii.String("systemctl daemon-reload"), &awsec2.InitCommandOptions{Key: jsii.String("10-daemon-reload")}),
		// cfn-hup is not restarted on changes: it may be running this very deploy. It reads its files at start.
		awsec2.InitService_Enable(jsii.String("cfn-hup"), &awsec2.InitServiceOptions{ServiceManager: awsec2.ServiceManager_SYSTEMD}),
	)

	return tools
}

// releaseApp is cfn-init's config "app": the binary, its environment, unit and CA bundle (a change of which restarts
// it), log rotation and the CloudWatch agent.
func releaseApp(binary, caBundle awss3assets.Asset, serviceEnv string, cwAgent map[string]any) []awsec2.InitElement {
	restart := awsec2.NewInitServiceRestartHandle()
	return []awsec2.InitElement{
		awsec2.InitFile_FromExistingAsset(jsii.String(host.BinaryPath), binary, rootFile("000755", restart)),
		awsec2.InitFile_FromString(jsii.String(host.ServiceEnvPath), jsii.String(serviceEnv), rootFile("000644", restart)),
		awsec2.InitFile_FromString(jsii.String("/etc/systemd/system/aircraftd.service"), jsii.String(host.BootstrapFile("aircraftd.service")), rootFile("000644", restart)),
		awsec2.InitFile_FromExistingAsset(jsii.String(host.CABundlePath), caBundle, rootFile("000644", restart)),
		awsec2.InitFile_FromString(jsii.String("/etc/logrotate.d/aircraftd"), jsii.String(host.BootstrapFile("aircraftd.logrotate")), rootFile("000644", nil)),
		awsec2.InitFile_FromObject(jsii.String("/opt/aws/amazon-cloudwatch-agent/etc/aircraft.json"), &cwAgent, rootFile("000644", nil)),
		awsec2.InitFile_FromString(jsii.String(observability.ScrapeConfigPath), jsii.String(observability.PrometheusScrapeConfig()), rootFile("000644", nil)),
		awsec2.InitCommand_ShellCommand(jsii.String("useradd --system --user-group --home-dir "+host.StateDir+" --no-create-home --shell /sbin/nologin aircraftd"),
			&awsec2.InitCommandOptions{Key: jsii.String("10-user"), TestCmd: jsii.String("! id aircraftd")}),
		awsec2.InitCommand_ShellCommand(jsii.String("dnf install -y amazon-cloudwatch-agent"),
			&awsec2.InitCommandOptions{Key: jsii.String("20-cloudwatch-agent"), TestCmd: jsii.String("! rpm -q amazon-cloudwatch-agent")}),
		awsec2.InitCommand_ShellCommand(jsii.String(host.Sbin+"/aircraft-gencert"), &awsec2.InitCommandOptions{Key: jsii.String("30-certificate")}),
		awsec2.InitCommand_ShellCommand(jsii.String("systemctl daemon-reload"), &awsec2.InitCommandOptions{Key: jsii.String("40-daemon-reload")}),
		awsec2.InitCommand_ShellCommand(jsii.String("/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/aircraft.json"),
			&awsec2.InitCommandOptions{Key: jsii.String("50-ship-logs")}),
		awsec2.InitService_Enable(jsii.String("aircraftd"), &awsec2.InitServiceOptions{
			ServiceManager: awsec2.ServiceManager_SYSTEMD, ServiceRestartHandle: restart,
		}),
	}
}

// grantRelease lets the instance's role read the release's files and secrets, its stack's metadata, and signal the wait
// condition.
func grantRelease(role awsiam.IRole, binary awss3assets.Asset, stackName string, secretArns []string) {
	host.GrantReleaseAssets(role, binary, stackName)
	host.GrantDecryptSecrets(role, secretArns)
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("ReadMetadataAndSignal"),
		// DescribeStackResources: the user data finds the wait condition to fail when it cannot install the tools.
		Actions:   jsii.Strings("cloudformation:DescribeStackResource", "cloudformation:DescribeStackResources", "cloudformation:SignalResource"),
		Resources: jsii.Strings(*awscdk.Aws_STACK_ID()),
	}))
}

// WaitTimeoutSeconds is how long CloudFormation waits for a release's signal. The first boot takes the longest: the
// instance starts once RDS and DocumentDB are available (it depends on them), then installs its tools and the
// CloudWatch agent (1-3 min), waits for its Elastic IP in IMDS (at most 5 min), and gates the release (at most
// gateSeconds); cfn-hup takes up to a minute to notice a later release.
const WaitTimeoutSeconds = 20 * 60

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

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
