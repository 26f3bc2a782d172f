// Package fleet is the load-balanced mode (instances > 1): an Auto Scaling group of service instances (Fleet) and its
// rolling, gated release, the Application Load Balancer in front of it, and the EFS file system they share for
// downloads.
package fleet

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/observability"
	"github.com/aircraftdata/platform/infra/serviceenv"
)

// FleetProps configures the service instances of the load-balanced mode.
type FleetProps struct {
	Vpc              awsec2.IVpc
	InstanceType     string
	Instances        int // desired
	MinInstances     int
	MaxInstances     int
	DataBucket       awss3.IBucket
	LogGroupName     string
	LogRetentionDays int
	Stage            string
}

// Fleet is the Auto Scaling group box: instances like the single one (Amazon Linux 2023, IMDSv2 only with hop limit 1,
// encrypted gp3 root, no key pair - Session Manager) from a launch template, in the public subnets (no NAT gateway:
// they reach the AWS APIs directly) but admitting nothing from the internet: its security group admits the load
// balancer on 443 only (LoadBalancer.Serve) and lets out HTTPS plus what the stack connects it to. Its role has the
// single instance's read-only grants; the stack adds the secrets, SharedDownloads the mount, Release the deploy rights.
//
// Releases roll: ReleaseTo gives the launch template a user data naming the release, so a new release is a new launch
// template version, which the group's rolling update puts on one new instance at a time, each gated by its own
// readiness signal; see docs/infra.md.
type Fleet struct {
	constructs.Construct
	Group          awsautoscaling.AutoScalingGroup
	LaunchTemplate awsec2.LaunchTemplate
	SecurityGroup  awsec2.SecurityGroup
	Role           awsiam.Role
	LogGroup       awslogs.LogGroup
	Arch           string
}

// releaseTimeout is how long CloudFormation waits for an instance's readiness signal, at creation and per instance of a
// rolling update: boot, packages, the first connection to every data store.
const releaseTimeout = 15

func NewFleet(scope constructs.Construct, id string, props *FleetProps) *Fleet {
	this := constructs.NewConstruct(scope, &id)

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("aircraftd fleet: HTTPS in from the load balancer only; out HTTPS, the databases and EFS"),
		AllowAllOutbound: jsii.Bool(false),
	})
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("HTTPS: AWS APIs (S3, Secrets Manager, SSM, CloudFormation, Logs), RDS CA bundle, dnf"), nil)

	// The single instance's read-only grants (single/service.go), statement for statement.
	role := awsiam.NewRole(this, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Description: jsii.String("EC2-S3-Access: the aircraftd fleet reads the data bucket and its own secrets, and mounts the shared downloads"),
	})
	host.GrantReadData(role, props.DataBucket)
	host.GrantSessionManager(role)
	logs := host.NewServiceLogs(this, role, props.LogGroupName, props.LogRetentionDays, props.Stage)

	arch := host.InstanceArch(props.InstanceType)
	template := awsec2.NewLaunchTemplate(this, jsii.String("LaunchTemplate"), &awsec2.LaunchTemplateProps{
		InstanceType: awsec2.NewInstanceType(jsii.String(props.InstanceType)),
		// Resolved at each launch: new instances get the current AL2023 release; running ones are left alone.
		MachineImage:            host.ServiceImage(arch),
		SecurityGroup:           sg,
		Role:                    role,
		HttpEndpoint:            jsii.Bool(true),
		HttpTokens:              awsec2.LaunchTemplateHttpTokens_REQUIRED,
		HttpPutResponseHopLimit: jsii.Number(1),
		BlockDevices:            host.RootVolume(),
		UserData:                awsec2.UserData_ForLinux(&awsec2.LinuxUserDataOptions{Shebang: jsii.String("#!/bin/bash")}),
	})

	// Keep every instance during a rolling release (new first, then old), within maxInstances.
	inService := min(props.Instances, props.MaxInstances-1)
	group := awsautoscaling.NewAutoScalingGroup(this, jsii.String("Group"), &awsautoscaling.AutoScalingGroupProps{
		Vpc:             props.Vpc,
		VpcSubnets:      &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		LaunchTemplate:  template,
		MinCapacity:     jsii.Number(float64(props.MinInstances)),
		MaxCapacity:     jsii.Number(float64(props.MaxInstances)),
		DesiredCapacity: jsii.Number(float64(props.Instances)),
		// EC2 status, not the load balancer's readiness: a database outage makes every target unready, and replacing
		// instances would not bring it back. The load balancer stops routing to unready ones.
		HealthChecks: awsautoscaling.HealthChecks_Ec2(&awsautoscaling.Ec2HealthChecksOptions{
			GracePeriod: awscdk.Duration_Minutes(jsii.Number(releaseTimeout)),
		}),
		Signals: awsautoscaling.Signals_WaitForAll(&awsautoscaling.SignalsOptions{
			Timeout: awscdk.Duration_Minutes(jsii.Number(releaseTimeout)),
		}),
		UpdatePolicy: awsautoscaling.UpdatePolicy_RollingUpdate(&awsautoscaling.RollingUpdateOptions{
			MaxBatchSize:          jsii.Number(1),
			MinInstancesInService: jsii.Number(float64(inService)),
			// Nothing may start or stop instances behind the rollout's back.
			SuspendProcesses: &[]awsautoscaling.ScalingProcess{
				awsautoscaling.ScalingProcess_HEALTH_CHECK, awsautoscaling.ScalingProcess_REPLACE_UNHEALTHY,
				awsautoscaling.ScalingProcess_AZ_REBALANCE, awsautoscaling.ScalingProcess_ALARM_NOTIFICATION,
				awsautoscaling.ScalingProcess_SCHEDULED_ACTIONS,
			},
		}),
	})
	awscdk.Annotations_Of(group).AcknowledgeWarning(jsii.String("@aws-cdk/aws-autoscaling:desiredCapacitySet"),
		jsii.String("instances is the group's size, set by every deploy on purpose: the group has no scaling policy"))
	// New instances read the release with the role's current grants.
	group.Node().AddDependency(role)

	return &Fleet{Construct: this, Group: group, LaunchTemplate: template, SecurityGroup: sg, Role: role, LogGroup: logs,
		Arch: arch}
}

// AllowTo lets the fleet reach a database on its port: egress here, ingress on the database's security group.
func (f *Fleet) AllowTo(target awsec2.IConnectable, port int, what string) {
	target.Connections().AllowFrom(f.SecurityGroup, awsec2.Port_Tcp(jsii.Number(float64(port))),
		jsii.String(fmt.Sprintf("%s from the fleet", what)))
}

// AllowToNetwork lets the fleet out to the IPv4 network cidr on port (an external database).
func (f *Fleet) AllowToNetwork(cidr string, port int, what string) {
	f.SecurityGroup.AddEgressRule(awsec2.Peer_Ipv4(jsii.String(cidr)), awsec2.Port_Tcp(jsii.Number(float64(port))), jsii.String(what), nil)
}

// FleetReleaseProps configures the deployment of app/ onto the fleet.
type FleetReleaseProps struct {
	BinaryPath     string
	Environment    serviceenv.Settings
	FileSystemID   string
	AccessPointID  string
	TargetGroupArn string // the gate waits until the load balancer reports the instance healthy in this group
}

// ReleaseTo installs the app on every instance of the fleet: the binary as an S3 asset and its files as cfn-init
// metadata on the Auto Scaling group, installed at first boot by the launch template's user data, which names the
// release. It returns the release id.
func (f *Fleet) ReleaseTo(props *FleetReleaseProps) string {
	stack := awscdk.Stack_Of(f.Construct)
	group := f.Group.Node().DefaultChild().(awsautoscaling.CfnAutoScalingGroup)

	binary := awss3assets.NewAsset(f.Construct, jsii.String("Binary"), &awss3assets.AssetProps{Path: jsii.String(props.BinaryPath)})
	binarySHA := host.Must(host.FileSHA256(props.BinaryPath))
	caBundle := awss3assets.NewAsset(f.Construct, jsii.String("RdsCaBundle"), &awss3assets.AssetProps{Path: jsii.String(host.Must(host.RDSCABundle()))})
	env := host.Must(host.RenderEnv("Environment of aircraftd on the load-balanced fleet (docs/CONTRACT.md)", FleetEnvironment(props.Environment)))
	cwAgent := host.CloudWatchAgentConfig(*f.LogGroup.LogGroupName(), "") // downloads on EFS, not on the root volume
	observability.NewServiceMetrics(f.Construct, "ServiceMetricsEvents", f.Role, observability.MetricsNamespace(stack)).AddTo(cwAgent)
	mount := EFSMountLine(props.FileSystemID, props.AccessPointID)
	gateEnv := host.Must(host.RenderEnv("The fleet's release gate (aircraft-ready): where it asks the load balancer", map[string]string{
		"AWS_REGION": *awscdk.Aws_REGION(), "TARGET_GROUP_ARN": props.TargetGroupArn,
	}))

	root := func(mode string) *awsec2.InitFileOptions {
		return &awsec2.InitFileOptions{Mode: jsii.String(mode), Owner: jsii.String("root"), Group: jsii.String("root")}
	}
	command := func(key, cmd, test string) awsec2.InitElement {
		o := &awsec2.InitCommandOptions{Key: jsii.String(key)}
		if test != "" {
			o.TestCmd = jsii.String(test)
		}
		return awsec2.InitCommand_ShellCommand(jsii.String(cmd), o)
	}
	install := []awsec2.InitElement{
		awsec2.InitFile_FromExistingAsset(jsii.String(host.BinaryPath), binary, root("000755")),
		awsec2.InitFile_FromString(jsii.String(host.ServiceEnvPath), jsii.String(env), root("000644")),
		awsec2.InitFile_FromString(jsii.String("/etc/systemd/system/aircraftd.service"), jsii.String(host.BootstrapFile("aircraftd.service")), root("000644")),
		awsec2.InitFile_FromString(jsii.String(DownloadsDropInPath), jsii.String(DownloadsDropIn()), root("000644")),
		awsec2.InitFile_FromExistingAsset(jsii.String(host.CABundlePath), caBundle, root("000644")),
		awsec2.InitFile_FromString(jsii.String("/etc/logrotate.d/aircraftd"), jsii.String(host.BootstrapFile("aircraftd.logrotate")), root("000644")),
		awsec2.InitFile_FromObject(jsii.String("/opt/aws/amazon-cloudwatch-agent/etc/aircraft.json"), &cwAgent, root("000644")),
		awsec2.InitFile_FromString(jsii.String(observability.ScrapeConfigPath), jsii.String(observability.PrometheusScrapeConfig()), root("000644")),
		awsec2.InitFile_FromString(jsii.String(ReadyScriptPath), jsii.String(FleetbootFile("aircraft-ready.sh")), root("000755")),
		awsec2.InitFile_FromString(jsii.String(FleetGateEnvPath), jsii.String(gateEnv), root("000644")),
		command("10-user", fmt.Sprintf("useradd --system --uid %d --user-group --home-dir %s --no-create-home --shell /sbin/nologin aircraftd", fleetUID, host.StateDir), "! id aircraftd"),
		command("20-packages", "dnf install -y amazon-cloudwatch-agent amazon-efs-utils", "! rpm -q amazon-cloudwatch-agent amazon-efs-utils"),
		command("30-mount-downloads", fmt.Sprintf("mkdir -p %[1]s && echo \"%[2]s\" >> /etc/fstab && mount %[1]s", sharedDownloadsPath, mount),
			"! mountpoint -q "+sharedDownloadsPath),
		command("40-daemon-reload", "systemctl daemon-reload", ""),
		command("50-ship-logs", "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:/opt/aws/amazon-cloudwatch-agent/etc/aircraft.json", ""),
		awsec2.InitService_Enable(jsii.String("aircraftd"), &awsec2.InitServiceOptions{ServiceManager: awsec2.ServiceManager_SYSTEMD}),
	}
	// cfn-init starts services after commands: the gate is a config of its own, after the install.
	gate := []awsec2.InitElement{command("10-ready", ReadyScriptPath, "")}
	init := awsec2.CloudFormationInit_FromConfigSets(&awsec2.ConfigSetProps{
		ConfigSets: &map[string]*[]*string{"deploy": jsii.Strings("install", "gate")},
		Configs: &map[string]awsec2.InitConfig{
			"install": awsec2.NewInitConfig(&install),
			"gate":    awsec2.NewInitConfig(&gate),
		},
	})
	// As for the single instance (single/release.go): the metadata and its S3 authentication; the user data is ours.
	init.Attach(group, &awsec2.AttachInitOptions{
		InstanceRole: f.Role.WithoutPolicyUpdates(nil),
		Platform:     awsec2.OperatingSystemType_LINUX,
		UserData:     awsec2.UserData_ForLinux(nil),
	})
	// The stack's prefix of the asset bucket, as for the single instance: a release is no IAM change.
	host.GrantReleaseAssets(f.Role, binary, *stack.StackName())
	f.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadMetadataAndSignal"),
		Actions:   jsii.Strings("cloudformation:DescribeStackResource", "cloudformation:SignalResource"),
		Resources: jsii.Strings(*awscdk.Aws_STACK_ID()),
	}))
	// The gate asks the load balancer about this instance; DescribeTargetHealth takes no resource.
	f.Role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("GateOnTargetHealth"),
		Actions:   jsii.Strings("elasticloadbalancing:DescribeTargetHealth"),
		Resources: jsii.Strings("*"),
	}))

	// The release id covers the binary and everything cfn-init installs; the user data names it.
	release := host.HashJSON(binarySHA, fleetFilesDigest(), host.RDSCABundleSHA256, stack.Resolve(map[string]any{"env": env, "agent": cwAgent, "scrape": observability.PrometheusScrapeConfig(), "mount": mount, "gate": gateEnv}))
	script := RenderFleetUserData(*awscdk.Aws_REGION(), *awscdk.Aws_STACK_NAME(), *group.LogicalId(), release)
	_, body, _ := strings.Cut(script, "\n") // the shebang comes from UserData_ForLinux
	f.LaunchTemplate.UserData().AddCommands(jsii.String(strings.TrimRight(body, "\n")))
	return release
}

// fleetFilesDigest hashes the static files a fleet instance installs (bootstrap/ and fleetboot/).
func fleetFilesDigest() string {
	entries, _ := fleetbootFS.ReadDir("fleetboot")
	values := []any{host.StaticFilesDigest()}
	for _, e := range entries {
		values = append(values, e.Name(), FleetbootFile(e.Name()))
	}
	return host.HashJSON(values...)
}
