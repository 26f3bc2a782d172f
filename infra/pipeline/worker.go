// Package pipeline is the ingestion pipeline of the stack (docs/infra.md "Ingestion pipeline"): the worker Lambda
// function, the backfill state machine whose Distributed Map runs it over the bucket's listing, the queue of the
// bucket's new objects that runs it live, and their alarms. The stack wires it to the network, the data stores and the
// alarm topic; it knows nothing of the service that starts its backfills.
package pipeline

import (
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/appbuild"
	"github.com/aircraftdata/platform/infra/serviceenv"
)

// WorkerDBUser is the PostgreSQL login role of the worker: aircraftd creates it with rds_iam granted (its setting
// DB_WORKER_USER), and the worker connects as it with IAM database auth tokens, so it has no password anywhere.
const WorkerDBUser = "aircraft_worker"

// Paths inside the worker's code (the function's /var/task).
const (
	workerTaskRoot = "/var/task"
	workerCABundle = "rds-ca.pem"
)

// WorkerCode builds the worker (appbuild.BuildWorker: linux/arm64, named bootstrap) into outDir and copies the RDS CA
// bundle caBundle beside it, so that the worker verifies the database's certificate (sslmode=verify-full). The folder
// is the function's code asset; the build is reproducible, so its hash changes only with the code.
func WorkerCode(appDir, outDir, caBundle string) (string, error) {
	if _, err := appbuild.BuildWorker(appDir, outDir); err != nil {
		return "", err
	}
	return outDir, copyFile(caBundle, filepath.Join(outDir, workerCABundle))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// WorkerProps configures the worker.
type WorkerProps struct {
	Vpc                 awsec2.IVpc
	CodeDir             string // WorkerCode's folder
	Database            awsrds.DatabaseInstance
	Bucket              awss3.IBucket
	MemoryMB            int
	TimeoutSeconds      int
	ReservedConcurrency int // 0: none reserved
	LogRetentionDays    int
}

// Worker is the box "ingest worker": app/cmd/ingest-worker as a Lambda function (provided.al2023, arm64) in the
// isolated subnets. It reads the data bucket through the VPC's S3 gateway endpoint and writes PostgreSQL as
// WorkerDBUser with IAM database auth over TLS verify-full: it reads no secret, so it needs no interface endpoint and
// no NAT. Its security group lets it out to PostgreSQL on 5432 and to HTTPS (in the isolated subnets, whose only route
// beyond the VPC is the S3 endpoint's, that is S3).
type Worker struct {
	constructs.Construct
	Function      awslambda.Function
	Role          awsiam.Role
	SecurityGroup awsec2.SecurityGroup
	LogGroup      awslogs.LogGroup
}

// NewWorker makes the function, its role, security group and log group.
func NewWorker(scope constructs.Construct, id string, props *WorkerProps) *Worker {
	this := constructs.NewConstruct(scope, &id)

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("Ingest worker: out to PostgreSQL 5432 and to S3 over HTTPS (gateway endpoint), nothing in"),
		AllowAllOutbound: jsii.Bool(false),
	})
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("S3 through the gateway endpoint (the isolated subnets have no other route out)"), nil)
	props.Database.Connections().AllowFrom(sg, awsec2.Port_Tcp(jsii.Number(5432)), jsii.String("PostgreSQL from the ingest worker"))

	logs := awslogs.NewLogGroup(this, jsii.String("Logs"), &awslogs.LogGroupProps{
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	logs.Node().DefaultChild().(awslogs.CfnLogGroup).SetRetentionInDays(jsii.Number(float64(props.LogRetentionDays)))

	// A role of its own instead of the AWS-managed Lambda policies: its log group, the network interfaces of a function
	// in a VPC, the bucket's objects read-only, and the database as WorkerDBUser only.
	role := awsiam.NewRole(this, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Ingest worker: its logs, its network interfaces, the data bucket read-only, PostgreSQL as " + WorkerDBUser),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		// What AWSLambdaVPCAccessExecutionRole grants: Lambda attaches the function's interfaces with these, and EC2
		// takes no resource narrower than "*" for the describe and for interfaces that do not exist yet.
		Actions: jsii.Strings("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
			"ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"),
		Resources: jsii.Strings("*"),
	}))
	// The objects, read-only; listing the bucket only so that an object deleted since it was listed or notified answers
	// 404, not 403.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("s3:GetObject"), Resources: jsii.Strings(*props.Bucket.ArnForObjects(jsii.String("*"))),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("s3:ListBucket"), Resources: jsii.Strings(*props.Bucket.BucketArn()),
	}))
	props.Database.GrantConnect(role, jsii.String(WorkerDBUser))

	fn := awslambda.NewFunction(this, jsii.String("Function"), &awslambda.FunctionProps{
		Description:    jsii.String("Ingest worker: Distributed Map batches of backfills and the bucket's new objects (app/cmd/ingest-worker)"),
		Runtime:        awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:   awslambda.Architecture_ARM_64(),
		Handler:        jsii.String("bootstrap"),
		Code:           awslambda.Code_FromAsset(jsii.String(props.CodeDir), nil),
		MemorySize:     jsii.Number(float64(props.MemoryMB)),
		Timeout:        awscdk.Duration_Seconds(jsii.Number(float64(props.TimeoutSeconds))),
		Role:           role,
		LogGroup:       logs,
		Vpc:            props.Vpc,
		VpcSubnets:     &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		SecurityGroups: &[]awsec2.ISecurityGroup{sg},
		Environment:    workerEnvironment(props),
	})
	if props.ReservedConcurrency > 0 {
		fn.Node().DefaultChild().(awslambda.CfnFunction).SetReservedConcurrentExecutions(jsii.Number(float64(props.ReservedConcurrency)))
	}
	return &Worker{Construct: this, Function: fn, Role: role, SecurityGroup: sg, LogGroup: logs}
}

// workerEnvironment is the worker's configuration: aircraftd's settings (app/internal/config) that it reads. AWS_REGION
// is the function's own (Lambda sets it).
func workerEnvironment(props *WorkerProps) *map[string]*string {
	env := map[string]string{
		"S3_BUCKET":      *props.Bucket.BucketName(),
		"DB_HOST":        *props.Database.DbInstanceEndpointAddress(),
		"DB_PORT":        *props.Database.DbInstanceEndpointPort(),
		"DB_NAME":        serviceenv.DatabaseName,
		"DB_USER":        WorkerDBUser,
		"DB_IAM_AUTH":    "true",
		"DB_SSLMODE":     "verify-full",
		"DB_SSLROOTCERT": workerTaskRoot + "/" + workerCABundle,
		// The worker never serves reads: one connection of the read pool bounds what it could open there.
		"DB_READ_MAX_CONNS": strconv.Itoa(workerReadConns),
	}
	out := map[string]*string{}
	for k, v := range env {
		out[k] = jsii.String(v)
	}
	return &out
}
