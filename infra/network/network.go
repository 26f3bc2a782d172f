// Package network is the VPC of the stack: its own, or an existing one named by context.
package network

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Network is the VPC box of the diagram: 10.0.0.0/16 over two availability zones (RDS needs two), a public subnet for
// the service and an isolated one for the databases in each, no NAT gateway, and an S3 gateway endpoint so that bucket
// traffic stays inside AWS. Or, for an account at its VPC quota, an existing VPC named by context (ExistingVpc), whose
// subnets and S3 endpoint are its owner's.
type Network struct {
	constructs.Construct
	Vpc awsec2.IVpc
}

// ExistingVpc names a VPC of the account and its subnets (context vpcId, availabilityZones, publicSubnetIds,
// isolatedSubnetIds). No lookup: synth stays offline.
type ExistingVpc struct {
	ID                string
	AvailabilityZones []string
	PublicSubnetIDs   []string // map a public IP at launch, route to an internet gateway
	IsolatedSubnetIDs []string // the databases' (at least two availability zones)
}

// NewNetwork makes the VPC, or imports the existing one.
func NewNetwork(scope constructs.Construct, id string, existing *ExistingVpc) *Network {
	this := constructs.NewConstruct(scope, &id)
	if existing != nil {
		vpc := awsec2.Vpc_FromVpcAttributes(this, jsii.String("Vpc"), &awsec2.VpcAttributes{
			VpcId:             jsii.String(existing.ID),
			AvailabilityZones: jsii.Strings(existing.AvailabilityZones...),
			PublicSubnetIds:   jsii.Strings(existing.PublicSubnetIDs...),
			IsolatedSubnetIds: jsii.Strings(existing.IsolatedSubnetIDs...),
		})
		return &Network{Construct: this, Vpc: vpc}
	}

	vpc := awsec2.NewVpc(this, jsii.String("Vpc"), &awsec2.VpcProps{
		IpAddresses: awsec2.IpAddresses_Cidr(jsii.String("10.0.0.0/16")),
		MaxAzs:      jsii.Number(2),
		NatGateways: jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
			{Name: jsii.String("isolated"), SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED, CidrMask: jsii.Number(24)},
		},
		// public-hostname in IMDS (the self-signed certificate names it) needs DNS hostnames.
		EnableDnsHostnames: jsii.Bool(true),
		EnableDnsSupport:   jsii.Bool(true),
	})
	vpc.AddGatewayEndpoint(jsii.String("S3"), &awsec2.GatewayVpcEndpointOptions{
		Service: awsec2.GatewayVpcEndpointAwsService_S3(),
	})

	return &Network{Construct: this, Vpc: vpc}
}
