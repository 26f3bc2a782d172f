package fleet

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsefs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/removal"
)

// SharedDownloadsProps configures the shared download folder.
type SharedDownloadsProps struct {
	Vpc   awsec2.IVpc
	Stage string
}

// SharedDownloads is the EFS box of the load-balanced mode: one encrypted file system with a mount target in each
// isolated subnet, and one access point that every instance mounts at DOWNLOAD_PATH, so that every instance sees every
// downloaded file. The access point pins the owner (uid/gid fleetUID) and the root folder; the file system policy
// admits only TLS clients through that access point with IAM authorization (no anonymous mounts). Its security group
// admits NFS (2049) from the fleet only and allows no egress.
type SharedDownloads struct {
	constructs.Construct
	FileSystem  awsefs.FileSystem
	AccessPoint awsefs.AccessPoint
}

func NewSharedDownloads(scope constructs.Construct, id string, props *SharedDownloadsProps) *SharedDownloads {
	this := constructs.NewConstruct(scope, &id)

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("EFS downloads: NFS 2049 from the fleet only, no egress"),
		AllowAllOutbound: jsii.Bool(false),
	})
	fs := awsefs.NewFileSystem(this, jsii.String("FileSystem"), &awsefs.FileSystemProps{
		Vpc:             props.Vpc,
		VpcSubnets:      &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		SecurityGroup:   sg,
		Encrypted:       jsii.Bool(true),
		PerformanceMode: awsefs.PerformanceMode_GENERAL_PURPOSE,
		ThroughputMode:  awsefs.ThroughputMode_ELASTIC,
		// Hours not read for a month move to Infrequent Access, and back on their first read.
		LifecyclePolicy:             awsefs.LifecyclePolicy_AFTER_30_DAYS,
		OutOfInfrequentAccessPolicy: awsefs.OutOfInfrequentAccessPolicy_AFTER_1_ACCESS,
		EnableAutomaticBackups:      jsii.Bool(props.Stage == "prod"),
		RemovalPolicy:               removal.RetainInProd(props.Stage),
		// The CDK's own "no anonymous access" statement would let every IAM principal write through any mount target;
		// the policy below admits none but the fleet's role (its grant), through the access point, over TLS. With a
		// file system policy in place, clients without IAM authorization get nothing.
		AllowAnonymousAccess:           jsii.Bool(true),
		ReplicationOverwriteProtection: awsefs.ReplicationOverwriteProtection_ENABLED,
	})
	ap := fs.AddAccessPoint(jsii.String("AccessPoint"), &awsefs.AccessPointOptions{
		Path:      jsii.String("/downloads"),
		PosixUser: &awsefs.PosixUser{Uid: jsii.String(strconv.Itoa(fleetUID)), Gid: jsii.String(strconv.Itoa(fleetUID))},
		CreateAcl: &awsefs.Acl{OwnerUid: jsii.String(strconv.Itoa(fleetUID)), OwnerGid: jsii.String(strconv.Itoa(fleetUID)), Permissions: jsii.String("750")},
	})
	// Encryption in transit, and access points only (it has one): the file system refuses clients without TLS, and
	// mounts that do not go through an access point (which pins the owner and the folder).
	fs.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DenyWithoutTLS"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("*"),
		Conditions: &map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}))
	fs.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("DenyWithoutAccessPoint"),
		Effect:     awsiam.Effect_DENY,
		Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions:    jsii.Strings("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"),
		// Not the access point's ARN: the file system would depend on its own access point.
		Conditions: &map[string]any{"Null": map[string]any{"elasticfilesystem:AccessPointArn": "true"}},
	}))

	return &SharedDownloads{Construct: this, FileSystem: fs, AccessPoint: ap}
}

// GrantMount lets role mount the file system read-write through the access point, and nothing else: no root access, no
// other access point.
func (d *SharedDownloads) GrantMount(role awsiam.IRole) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("MountSharedDownloads"),
		Actions:    jsii.Strings("elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"),
		Resources:  jsii.Strings(*d.FileSystem.FileSystemArn()),
		Conditions: &map[string]any{"StringEquals": map[string]any{"elasticfilesystem:AccessPointArn": d.AccessPoint.AccessPointArn()}},
	}))
}
