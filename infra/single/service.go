// Package single is the single-instance mode (instances = 1): one EC2 instance with an Elastic IP (Service), HTTPS by
// ACME or a self-signed certificate (HTTPS), and the in-place release of aircraftd with its gate (Release).
package single

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/host"
)

// ServiceProps configures the service instance.
type ServiceProps struct {
	Vpc                   awsec2.IVpc
	InstanceType          string
	AllowedCidr           string
	ACME                  bool // port 80 must admit the ACME CA's validation servers, i.e. the internet
	DataBucket            awss3.IBucket
	LogGroupName          string
	LogRetentionDays      int
	Stage                 string
	ElasticIPAllocationID string // a pre-allocated Elastic IP; "" = the stack allocates one
}

// Service is the EC2 box: one instance in a public subnet on Amazon Linux 2023 with IMDSv2 required, an encrypted root
// volume and an Elastic IP. No SSH key and no port 22 - Session Manager instead. Its security group admits 80 and 443
// from allowedCidr only, and lets out HTTPS plus what the stack connects it to (5432, 27017). Its role reads the data
// bucket and nothing else on S3; the stack adds its secrets, Release its deploy rights.
type Service struct {
	constructs.Construct
	Instance      awsec2.Instance
	SecurityGroup awsec2.SecurityGroup
	Role          awsiam.Role
	ElasticIP     *string // its public address; nil with a pre-allocated Elastic IP (the stack cannot read it offline)
	Association   awsec2.CfnEIPAssociation
	LogGroup      awslogs.LogGroup
	Arch          string // GOARCH of the instance: amd64 or arm64
}

func NewService(scope constructs.Construct, id string, props *ServiceProps) *Service {
	this := constructs.NewConstruct(scope, &id)

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("aircraftd: HTTPS in from allowedCidr (HTTP too with ACME); out HTTPS and the databases"),
		AllowAllOutbound: jsii.Bool(false),
	})
	clients := awsec2.Peer_Ipv4(jsii.String(props.AllowedCidr))
	sg.AddIngressRule(clients, awsec2.Port_Tcp(jsii.Number(443)), jsii.String("HTTPS API"), nil)
	if props.ACME {
		// Let's Encrypt validates http-01 from addresses it does not publish: port 80 (challenge and redirect only)
		// stays open to the internet however narrow allowedCidr is.
		sg.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(80)), jsii.String("HTTP: ACME http-01 challenge and redirect to HTTPS"), nil)
	} // without ACME, port 80 stays closed: nothing listens there

	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("HTTPS: AWS APIs (S3, Secrets Manager, SSM, CloudFormation, Logs), RDS CA bundle, dnf, ACME"), nil)

	role := awsiam.NewRole(this, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Description: jsii.String("EC2-S3-Access: aircraftd reads the data bucket and its own secrets"),
	})
	host.GrantReadData(role, props.DataBucket)
	host.GrantSessionManager(role) // no SSH: Session Manager, and only it
	logs := host.NewServiceLogs(this, role, props.LogGroupName, props.LogRetentionDays, props.Stage)

	arch := host.InstanceArch(props.InstanceType)
	instance := awsec2.NewInstance(this, jsii.String("Instance"), &awsec2.InstanceProps{
		Vpc:          props.Vpc,
		VpcSubnets:   &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC},
		InstanceType: awsec2.NewInstanceType(jsii.String(props.InstanceType)),
		// Resolved when the instance launches: a new AMI release does not replace a running instance.
		MachineImage:  host.ServiceImage(arch),
		SecurityGroup: sg,
		Role:          role,
		// No AssociatePublicIpAddress: it would render the security group inside a NetworkInterfaces block, whose every
		// change replaces the instance. The public subnets map a public IP at launch (no NAT gateway) until the Elastic
		// IP is associated, and SecurityGroupIds change without interruption. IMDSv2 only, and not reachable from
		// containers or forwarded traffic (hop limit 1).
		HttpEndpoint:                    jsii.Bool(true),
		HttpTokens:                      awsec2.HttpTokens_REQUIRED,
		HttpPutResponseHopLimit:         jsii.Number(1),
		BlockDevices:                    host.RootVolume(),
		PropagateTagsToVolumeOnCreation: jsii.Bool(true),
		UserDataCausesReplacement:       jsii.Bool(false),
		UserData:                        awsec2.UserData_ForLinux(&awsec2.LinuxUserDataOptions{Shebang: jsii.String("#!/bin/bash")}),
	})
	// The user data names the instance's own logical id, so it is added once the instance exists.
	cfnInstance := instance.Node().DefaultChild().(awsec2.CfnInstance)
	script := host.RenderUserData(*awscdk.Aws_REGION(), *awscdk.Aws_STACK_NAME(), *cfnInstance.LogicalId())
	_, body, _ := strings.Cut(script, "\n") // the shebang comes from UserData_ForLinux
	instance.UserData().AddCommands(jsii.String(strings.TrimRight(body, "\n")))

	// The Elastic IP: the stack's own, or one allocated beforehand (elasticIpAllocationId), which outlives the stack
	// and its rollbacks, so that a domain can point at it before the first create.
	allocation, address := jsii.String(props.ElasticIPAllocationID), (*string)(nil)
	if props.ElasticIPAllocationID == "" {
		eip := awsec2.NewCfnEIP(this, jsii.String("ElasticIp"), &awsec2.CfnEIPProps{Domain: jsii.String("vpc")})
		allocation, address = eip.AttrAllocationId(), eip.AttrPublicIp()
	}
	association := awsec2.NewCfnEIPAssociation(this, jsii.String("ElasticIpAssociation"), &awsec2.CfnEIPAssociationProps{
		AllocationId: allocation,
		InstanceId:   instance.InstanceId(),
	})

	return &Service{Construct: this, Instance: instance, SecurityGroup: sg, Role: role, ElasticIP: address,
		Association: association, LogGroup: logs, Arch: arch}
}

// AllowTo lets the service reach a database on its port: egress here, ingress on the database's security group.
func (s *Service) AllowTo(target awsec2.IConnectable, port int, what string) {
	target.Connections().AllowFrom(s.Instance, awsec2.Port_Tcp(jsii.Number(float64(port))),
		jsii.String(fmt.Sprintf("%s from the service", what)))
}

// AllowToNetwork lets the service out to the IPv4 network cidr on port (an external database).
func (s *Service) AllowToNetwork(cidr string, port int, what string) {
	s.SecurityGroup.AddEgressRule(awsec2.Peer_Ipv4(jsii.String(cidr)), awsec2.Port_Tcp(jsii.Number(float64(port))), jsii.String(what), nil)
}
