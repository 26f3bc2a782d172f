package datastores

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdocdb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/removal"
)

// DocStoreProps configures the Mongo-wire store.
type DocStoreProps struct {
	Protected           bool // prod after its first create: deletion protection
	Vpc                 awsec2.IVpc
	Stage               string
	BackupRetentionDays int
	ExternalSecretArn   string // an external MongoDB: its URI is in this secret, and no DocumentDB is made
}

// DocStore is the Mongo-wire store of the file records: Amazon DocumentDB (one instance) in the isolated subnets, TLS
// required, encrypted, generated credentials in Secrets Manager, admitting the service on 27017 - or, with context
// mongoUriSecretArn, an external MongoDB whose URI is in that secret.
type DocStore struct {
	constructs.Construct
	Secret    awssecretsmanager.ISecret
	Cluster   awsdocdb.DatabaseCluster // nil with an external MongoDB
	AppSecret awssecretsmanager.Secret // the service's own DocumentDB user (appcredentials.go); nil with an external MongoDB
}

func NewDocStore(scope constructs.Construct, id string, props *DocStoreProps) *DocStore {
	this := constructs.NewConstruct(scope, &id)

	if props.ExternalSecretArn != "" {
		secret := awssecretsmanager.Secret_FromSecretCompleteArn(this, jsii.String("ExternalUri"), jsii.String(props.ExternalSecretArn))
		return &DocStore{Construct: this, Secret: secret}
	}

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("DocumentDB: 27017 from the service only, no egress"),
		AllowAllOutbound: jsii.Bool(false),
	})
	params := awsdocdb.NewClusterParameterGroup(this, jsii.String("Parameters"), &awsdocdb.ClusterParameterGroupProps{
		Family:      jsii.String("docdb5.0"),
		Description: jsii.String("DocumentDB 5.0 with TLS required"),
		Parameters:  &map[string]*string{"tls": jsii.String("enabled")},
	})
	cluster := awsdocdb.NewDatabaseCluster(this, jsii.String("Cluster"), &awsdocdb.DatabaseClusterProps{
		EngineVersion: jsii.String("5.0.0"),
		MasterUser: &awsdocdb.Login{
			Username:          jsii.String("aircraft"),
			ExcludeCharacters: jsii.String(passwordExcludeCharacters),
		},
		InstanceType:       awsec2.InstanceType_Of(awsec2.InstanceClass_BURSTABLE3, awsec2.InstanceSize_MEDIUM),
		Port:               jsii.Number(27017),
		Instances:          jsii.Number(1),
		Vpc:                props.Vpc,
		VpcSubnets:         &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		SecurityGroup:      sg,
		ParameterGroup:     params,
		StorageEncrypted:   jsii.Bool(true),
		Backup:             &awsdocdb.BackupProps{Retention: awscdk.Duration_Days(jsii.Number(float64(props.BackupRetentionDays)))},
		RemovalPolicy:      removal.SnapshotInProd(props.Stage),
		DeletionProtection: jsii.Bool(props.Protected), // not on a first create: it would block the rollback
		CopyTagsToSnapshot: jsii.Bool(true),
	})

	return &DocStore{Construct: this, Secret: cluster.Secret(), Cluster: cluster, AppSecret: newAppCredentials(this, "AppSecret", "DocumentDB")}
}
