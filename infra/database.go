package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/serviceenv"
)

const (
	databaseName = serviceenv.DatabaseName // the service's DB_NAME
	databaseUser = "postgres"
	// Characters left out of generated passwords: those that need escaping in a URL, a libpq keyword/value
	// string or a shell, and those RDS and DocumentDB refuse (/ @ " and space).
	passwordExcludeCharacters = " %+~`#$&*()|[]{}:;<>?!'/@\"\\=,^"
)

// DatabaseProps configures the database.
type DatabaseProps struct {
	Vpc                 awsec2.IVpc
	Stage               string
	BackupRetentionDays int
}

// Database is the RDS box: PostgreSQL (current major) on db.t3.micro, single-AZ, 20 GiB gp3, database aircraft_db,
// encrypted, TLS required, in the isolated subnets, not publicly accessible. Its generated credentials live in
// Secrets Manager. Its security group allows no egress; the stack admits the service on 5432.
type Database struct {
	constructs.Construct
	Instance      awsrds.DatabaseInstance
	SecurityGroup awsec2.SecurityGroup
}

func NewDatabase(scope constructs.Construct, id string, props *DatabaseProps) *Database {
	this := constructs.NewConstruct(scope, &id)

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("RDS PostgreSQL: 5432 from the service only, no egress"),
		AllowAllOutbound: jsii.Bool(false),
	})

	prod := props.Stage == "prod"
	instance := awsrds.NewDatabaseInstance(this, jsii.String("Instance"), &awsrds.DatabaseInstanceProps{
		Engine: awsrds.DatabaseInstanceEngine_Postgres(&awsrds.PostgresInstanceEngineProps{
			Version: awsrds.PostgresEngineVersion_VER_18(), // major only: RDS applies minor versions
		}),
		InstanceType:       awsec2.InstanceType_Of(awsec2.InstanceClass_BURSTABLE3, awsec2.InstanceSize_MICRO),
		MultiAz:            jsii.Bool(false),
		AllocatedStorage:   jsii.Number(20),
		StorageType:        awsrds.StorageType_GP3,
		StorageEncrypted:   jsii.Bool(true),
		DatabaseName:       jsii.String(databaseName),
		Credentials:        awsrds.Credentials_FromGeneratedSecret(jsii.String(databaseUser), &awsrds.CredentialsBaseOptions{ExcludeCharacters: jsii.String(passwordExcludeCharacters)}),
		Parameters:         &map[string]*string{"rds.force_ssl": jsii.String("1")},
		Vpc:                props.Vpc,
		VpcSubnets:         &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		SecurityGroups:     &[]awsec2.ISecurityGroup{sg},
		PubliclyAccessible: jsii.Bool(false),
		BackupRetention:    awscdk.Duration_Days(jsii.Number(float64(props.BackupRetentionDays))),
		// dev: the database goes with the stack; prod: a final snapshot is taken and the instance is protected.
		RemovalPolicy:          removalPolicy(props.Stage),
		DeleteAutomatedBackups: jsii.Bool(!prod),
		DeletionProtection:     jsii.Bool(prod),
		CopyTagsToSnapshot:     jsii.Bool(true),
	})

	return &Database{Construct: this, Instance: instance, SecurityGroup: sg}
}

// removalPolicy of stateful resources: dev destroys them with the stack, prod snapshots them.
func removalPolicy(stage string) awscdk.RemovalPolicy {
	if stage == "prod" {
		return awscdk.RemovalPolicy_SNAPSHOT
	}
	return awscdk.RemovalPolicy_DESTROY
}
