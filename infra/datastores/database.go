// Package datastores holds the stores of the service's data: the S3 data bucket, RDS PostgreSQL, and DocumentDB (or an
// external MongoDB), each with the secret of the service's own user.
package datastores

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/removal"
	"github.com/aircraftdata/platform/infra/serviceenv"
)

const (
	databaseName = serviceenv.DatabaseName // the service's DB_NAME
	databaseUser = "postgres"
	// Characters left out of generated passwords: those that need escaping in a URL, a libpq keyword/value string or a
	// shell, and those RDS and DocumentDB refuse (/ @ " and space).
	passwordExcludeCharacters = " %+~`#$&*()|[]{}:;<>?!'/@\"\\=,^"
)

// DatabaseProps configures the database.
type DatabaseProps struct {
	Protected           bool // prod after its first create: deletion protection
	Vpc                 awsec2.IVpc
	StackName           string
	Stage               string
	BackupRetentionDays int
	LogRetentionDays    int
}

// PostgreSQL major version and storage bounds. db.t3.micro offers PostgreSQL 17 (docs/infra.md shows the command that
// checks a version against the instance class); RDS picks and applies the minor versions.
const (
	PostgresMajor      = "17"
	storageGiB         = 20
	MaxStorageGiB      = 100 // storage autoscaling: RDS grows the volume up to this when it runs low
	dbIdentifierMaxLen = 54
	// MemoryBytes is the memory of the instance class, db.t3.micro (1 GiB): RDS derives max_connections from it.
	MemoryBytes = 1 << 30
)

// Database is the RDS box: PostgreSQL 17 on db.t3.micro, single-AZ, 20 GiB gp3 (autoscaling to 100), database
// aircraft_db, encrypted, TLS required, in the isolated subnets, not publicly accessible. Its generated credentials
// live in Secrets Manager. Its security group allows no egress; the stack admits the service on 5432.
type Database struct {
	constructs.Construct
	Instance      awsrds.DatabaseInstance
	SecurityGroup awsec2.SecurityGroup
	AppSecret     awssecretsmanager.Secret // the service's own user (appcredentials.go)
}

func NewDatabase(scope constructs.Construct, id string, props *DatabaseProps) *Database {
	this := constructs.NewConstruct(scope, &id)

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("RDS PostgreSQL: 5432 from the service only, no egress"),
		AllowAllOutbound: jsii.Bool(false),
	})

	prod := props.Stage == "prod"
	// PostgreSQL's log goes to CloudWatch Logs, into the group RDS names after the instance identifier: made here
	// first, with the stack's retention. It is operational, not data: it goes with the stack in every stage (a prod
	// stack keeps its final snapshot), so that a redeploy after a destroy does not collide with it.
	identifier := dbIdentifier(props.StackName)
	logs := awslogs.NewLogGroup(this, jsii.String("PostgresLog"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/rds/instance/" + identifier + "/postgresql"),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	logs.Node().DefaultChild().(awslogs.CfnLogGroup).SetRetentionInDays(jsii.Number(float64(props.LogRetentionDays)))
	instance := awsrds.NewDatabaseInstance(this, jsii.String("Instance"), &awsrds.DatabaseInstanceProps{
		InstanceIdentifier: jsii.String(identifier),
		Engine: awsrds.DatabaseInstanceEngine_Postgres(&awsrds.PostgresInstanceEngineProps{
			Version: awsrds.PostgresEngineVersion_Of(jsii.String(PostgresMajor), jsii.String(PostgresMajor), nil),
		}),
		InstanceType:          awsec2.InstanceType_Of(awsec2.InstanceClass_BURSTABLE3, awsec2.InstanceSize_MICRO),
		MultiAz:               jsii.Bool(false),
		AllocatedStorage:      jsii.Number(storageGiB),
		MaxAllocatedStorage:   jsii.Number(MaxStorageGiB),
		CloudwatchLogsExports: jsii.Strings("postgresql"),
		StorageType:           awsrds.StorageType_GP3,
		StorageEncrypted:      jsii.Bool(true),
		DatabaseName:          jsii.String(databaseName),
		Credentials:           awsrds.Credentials_FromGeneratedSecret(jsii.String(databaseUser), &awsrds.CredentialsBaseOptions{ExcludeCharacters: jsii.String(passwordExcludeCharacters)}),
		Parameters:            &map[string]*string{"rds.force_ssl": jsii.String("1")},
		// IAM database auth: the ingest worker connects with tokens of its role (rds-db:connect on its user only).
		IamAuthentication:  jsii.Bool(true),
		Vpc:                props.Vpc,
		VpcSubnets:         &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		SecurityGroups:     &[]awsec2.ISecurityGroup{sg},
		PubliclyAccessible: jsii.Bool(false),
		BackupRetention:    awscdk.Duration_Days(jsii.Number(float64(props.BackupRetentionDays))),
		// dev: the database goes with the stack; prod: a final snapshot is taken and the instance is protected.
		RemovalPolicy:          removal.SnapshotInProd(props.Stage),
		DeleteAutomatedBackups: jsii.Bool(!prod),
		DeletionProtection:     jsii.Bool(props.Protected), // not on a first create: it would block the rollback
		CopyTagsToSnapshot:     jsii.Bool(true),
	})

	instance.Node().AddDependency(logs)

	return &Database{Construct: this, Instance: instance, SecurityGroup: sg, AppSecret: newAppCredentials(this, "AppSecret", "PostgreSQL")}
}

// dbIdentifier is the RDS instance identifier of a stack: lower case, at most 54+3 characters, no "--".
func dbIdentifier(stackName string) string {
	id := strings.ToLower(stackName)
	for strings.Contains(id, "--") {
		id = strings.ReplaceAll(id, "--", "-")
	}
	if len(id) > dbIdentifierMaxLen {
		id = id[:dbIdentifierMaxLen]
	}
	return strings.TrimRight(id, "-") + "-pg"
}
